/** Browser host: the engine contract over a WebSocket to `loupe serve` (authenticated by the session cookie, or a token in the page URL). */
import type { Transport } from '../../../../src-shared/contract/client.ts';
import { type ServerMessage, type RequestEnvelope, decodeTensorFrame } from '../../../../src-shared/contract/wire.ts';

export async function openWebSocketTransport(url: string): Promise<Transport> {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`cannot connect to the engine at ${url.replace(/token=[^&]+/, 'token=…')}`));
  });
  let sink: (m: ServerMessage) => void = () => {};
  let closed: (reason: string) => void = () => {};
  ws.onmessage = (e) => sink(typeof e.data === 'string' ? (JSON.parse(e.data) as ServerMessage) : decodeTensorFrame(e.data as ArrayBuffer));
  ws.onclose = (e) =>
    closed(e.reason || (e.code === 1009 ? 'a message was larger than loupe serve accepts (close code 1009; LOUPE_MAX_MESSAGE_BYTES on the server raises the limit)' : `code ${e.code}`));
  return {
    send: (m: RequestEnvelope) => ws.send(JSON.stringify(m)),
    onMessage: (h) => (sink = h),
    onClose: (h) => (closed = h),
    close: () => ws.close(),
  };
}
