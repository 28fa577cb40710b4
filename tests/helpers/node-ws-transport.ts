/** The contract client over a WebSocket from Node (tests act as a browser would, minus the DOM). */
import WebSocket from 'ws';
import { EngineClient, type Transport } from '../../src-shared/contract/client.ts';
import { type ServerMessage, decodeTensorFrame } from '../../src-shared/contract/wire.ts';

export async function connectNode(url: string, origin?: string): Promise<EngineClient> {
  const ws = new WebSocket(url, origin ? { origin } : {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  let sink: (m: ServerMessage) => void = () => {};
  let closed: (r: string) => void = () => {};
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      const buf = data as Buffer;
      sink(decodeTensorFrame(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer));
    } else sink(JSON.parse(data.toString()) as ServerMessage);
  });
  ws.on('close', (code) => closed(`code ${code}`));
  const transport: Transport = {
    send: (m) => ws.send(JSON.stringify(m)),
    onMessage: (h) => (sink = h),
    onClose: (h) => (closed = h),
    close: () => ws.close(),
  };
  return new EngineClient(transport);
}

/** Sends raw text on a fresh socket and returns the first reply (for malformed-message tests). */
export async function rawExchange(url: string, origin: string, text: string): Promise<unknown> {
  const ws = new WebSocket(url, { origin });
  await new Promise((r) => ws.once('open', r));
  const reply = new Promise<unknown>((r) => ws.once('message', (d) => r(JSON.parse(d.toString()))));
  ws.send(text);
  const out = await reply;
  ws.close();
  return out;
}
