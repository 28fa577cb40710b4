/**
 * Desktop host: the engine contract over a MessagePort handed to this window by the
 * preload (one port per window, wired by main straight to the engine's utility process).
 * Tensor frames arrive with their ArrayBuffer transferred, not copied.
 */
import type { Transport } from '../../../../src-shared/contract/client.ts';
import type { RequestEnvelope, ServerMessage } from '../../../../src-shared/contract/wire.ts';

export function messagePortTransport(port: MessagePort): Transport {
  let sink: (m: ServerMessage) => void = () => {};
  let closed: (reason: string) => void = () => {};
  port.onmessage = (e: MessageEvent<ServerMessage>) => sink(e.data);
  port.addEventListener('close', () => closed('engine port closed'));
  port.start();
  return {
    send: (m: RequestEnvelope) => port.postMessage(m),
    onMessage: (h) => (sink = h),
    onClose: (h) => (closed = h),
    close: () => port.close(),
  };
}
