/**
 * sha256 on another thread: a streamed blob's bytes are hashed there while this thread
 * produces (slices, converts) the next piece and libuv writes the last, so a capture's store
 * costs max(produce, hash, write) rather than produce + hash next to the write. Same digest as
 * hashing in order here: chunks are posted and hashed in file order.
 *
 * The worker is inline code (`eval`), so bundled builds need no separate file. Each chunk is
 * copied into its own buffer and transferred (the original stays with the writer); at most
 * `maxQueued` bytes wait for the hasher — beyond that `update` waits (memory stays bounded).
 */
import { Worker } from 'node:worker_threads';

const SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
// This thread allocates almost nothing itself, so V8 seldom collects here — and until it does,
// the messages' shared buffers (whole captures) stay alive. Collect every 256 MiB hashed.
require('node:v8').setFlagsFromString('--expose-gc');
const collect = require('node:vm').runInNewContext('gc');
let sinceGc = 0;
const hashes = new Map();
parentPort.on('message', (m) => {
  try {
    if (m.t === 'start') hashes.set(m.id, createHash('sha256'));
    else if (m.t === 'data') {
      hashes.get(m.id).update(new Uint8Array(m.b, m.o, m.n));
      parentPort.postMessage({ t: 'ack', id: m.id, n: m.n });
      sinceGc += m.n;
      // After this message's handler returns, so its buffer is no longer referenced.
      if (sinceGc >= 256 * 1024 * 1024) { sinceGc = 0; setImmediate(collect); }
    }
    else if (m.t === 'end') { const d = hashes.get(m.id).digest('hex'); hashes.delete(m.id); parentPort.postMessage({ t: 'digest', id: m.id, d }); }
    else if (m.t === 'drop') hashes.delete(m.id);
  } catch (e) { parentPort.postMessage({ t: 'error', id: m.id, message: String(e && e.message || e) }); }
});
`;

let shared: Worker | null = null;
let nextId = 1;
const listeners = new Map<number, (m: { t: string; n?: number; d?: string; message?: string }) => void>();

function hasher(): Worker {
  if (shared) return shared;
  const w = new Worker(SOURCE, { eval: true });
  w.on('message', (m: { t: string; id: number }) => listeners.get(m.id)?.(m));
  const fail = (e: Error) => {
    shared = null;
    for (const l of listeners.values()) l({ t: 'error', message: `the hashing thread stopped: ${e.message}` });
  };
  w.on('error', fail);
  w.on('exit', (code) => code !== 0 && fail(new Error(`exit code ${code}`)));
  // Keeps the process alive only while a hash is open (after the listeners: adding one refs the port again).
  w.unref();
  return (shared = w);
}

/** Open hashes: the thread is ref'd while there are any, so an awaited digest keeps the process alive and an idle hasher does not. */
function opened(w: Worker): void {
  if (listeners.size === 1) w.ref();
}
function closed(w: Worker): void {
  if (listeners.size === 0) w.unref();
}

export class OffThreadHash {
  private readonly id = nextId++;
  private readonly worker = hasher();
  private forget(): void {
    listeners.delete(this.id);
    closed(this.worker);
  }
  private queued = 0;
  private failure: Error | null = null;
  private drained: (() => void) | null = null;
  private digestWaiter: { resolve: (d: string) => void; reject: (e: Error) => void } | null = null;
  private readonly maxQueued: number;

  constructor(maxQueued = 256 << 20) {
    this.maxQueued = maxQueued;
    listeners.set(this.id, (m) => {
      if (m.t === 'ack') {
        this.queued -= m.n!;
        if (this.queued <= this.maxQueued && this.drained) {
          const d = this.drained;
          this.drained = null;
          d();
        }
      } else if (m.t === 'digest') {
        this.forget();
        this.digestWaiter?.resolve(m.d!);
      } else if (m.t === 'error') {
        this.failure = new Error(`sha256 on the hashing thread failed: ${m.message}`);
        this.forget();
        this.digestWaiter?.reject(this.failure);
        this.drained?.();
      }
    });
    opened(this.worker);
    this.worker.postMessage({ t: 'start', id: this.id });
  }

  /**
   * Queues `bytes` for hashing — shared memory in place (the caller must not change it until the
   * digest), other memory as a transferred copy; waits while more than `maxQueued` bytes are unhashed.
   */
  async update(bytes: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    this.queued += bytes.byteLength;
    if (typeof SharedArrayBuffer === 'function' && bytes.buffer instanceof SharedArrayBuffer) {
      this.worker.postMessage({ t: 'data', id: this.id, b: bytes.buffer, o: bytes.byteOffset, n: bytes.byteLength });
    } else {
      const copy = bytes.slice();
      this.worker.postMessage({ t: 'data', id: this.id, b: copy.buffer, o: 0, n: copy.byteLength }, [copy.buffer]);
    }
    if (this.queued > this.maxQueued) await new Promise<void>((r) => (this.drained = r));
    if (this.failure) throw this.failure;
  }

  digest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.digestWaiter = { resolve, reject };
      this.worker.postMessage({ t: 'end', id: this.id });
    });
  }

  /** Forgets a hash that will not be finished (the write failed). */
  drop(): void {
    this.forget();
    this.worker.postMessage({ t: 'drop', id: this.id });
  }
}
