/**
 * The typed client every front end uses (Svelte renderer, CLI tests, e2e helpers).
 * It knows nothing of Electron or WebSockets: a `Transport` moves envelopes.
 */
import type { EventName, EventPayload } from './events.ts';
import { LoupeError } from './errors.ts';
import type { MethodName, ParamsOf, ResultOf } from './methods.ts';
import type { HostTensor } from '../tensor/dtype.ts';
import type { RequestEnvelope, ServerMessage, TensorFrame } from './wire.ts';

export interface Transport {
  send(message: RequestEnvelope): void;
  /** Registers the single sink for everything the engine sends. */
  onMessage(handler: (message: ServerMessage) => void): void;
  /** Called when the connection is lost; pending requests are failed. */
  onClose(handler: (reason: string) => void): void;
  close(): void;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: LoupeError) => void; tensor?: TensorFrame };
type Listener = (payload: never) => void;

export class EngineClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly transport: Transport;

  constructor(transport: Transport) {
    this.transport = transport;
    transport.onMessage((m) => this.receive(m));
    transport.onClose((reason) => {
      for (const p of this.pending.values()) p.reject(new LoupeError('engine-crashed', `connection to the engine closed: ${reason}`));
      this.pending.clear();
    });
  }

  call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    return this.request(method, params) as Promise<ResultOf<M>>;
  }

  /** A call whose answer carries a tensor: the bytes arrive as a binary frame, never as JSON. */
  async callTensor<M extends 'tensors/get' | 'datasets/image' | 'labels/mask'>(method: M, params: ParamsOf<M>): Promise<{ result: ResultOf<M>; tensor: HostTensor }> {
    const id = this.nextId;
    const result = await this.call(method, params);
    const frame = this.lastTensor.get(id);
    this.lastTensor.delete(id);
    if (!frame) throw new LoupeError('internal', `${method}: the answer arrived without its binary frame`);
    return { result, tensor: { dtype: frame.header.dtype, shape: frame.header.shape, data: frame.data } };
  }

  /** Fetches a stored tensor by id. */
  async tensor(tensorId: string): Promise<HostTensor> {
    return (await this.callTensor('tensors/get', { tensorId })).tensor;
  }

  on<E extends EventName>(name: E, listener: (payload: EventPayload<E>) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as Listener);
    return () => set.delete(listener as Listener);
  }

  close(): void {
    this.transport.close();
  }

  private readonly lastTensor = new Map<number, TensorFrame>();

  private request(method: string, params: unknown): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.transport.send({ t: 'req', id, method, params });
    });
  }

  private receive(m: ServerMessage): void {
    if (m.t === 'evt') {
      for (const l of this.listeners.get(m.name) ?? []) (l as (p: unknown) => void)(m.payload);
      return;
    }
    if (m.t === 'tensor') {
      // The frame precedes its JSON response; park it until the response settles the call.
      this.lastTensor.set(m.header.id, m);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(LoupeError.from(m.error));
  }
}
