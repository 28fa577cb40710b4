/**
 * Entry of the engine utility process. Each window's MessagePort speaks the same wire
 * protocol as `loupe serve`'s WebSocket, through the same dispatcher (full validation).
 */
import type { MessagePortMain } from 'electron';
import { dispatch } from '../engine/dispatcher.ts';
import { Engine } from '../engine/engine.ts';
import { toErrorPayload } from '../../src-shared/contract/errors.ts';
import { ENGINE_FATAL_EXIT } from './engine-restart.ts';

const [dataDir = '', resourcesDir = '', version = '0.0.0'] = process.argv.slice(2);
const parent = process.parentPort;

let engine: Engine;
try {
  engine = await Engine.start({ dataDir, resourcesDir, host: 'electron', version, workerUrl: new URL('./compute-worker.js', import.meta.url) });
} catch (e) {
  // A start that cannot succeed by retrying (another engine holds the data folder, the disk is
  // full) is reported to the supervisor, which then stops restarting and shows the reason.
  const error = toErrorPayload(e);
  parent.postMessage({ type: 'fatal', code: error.code, message: error.message });
  process.exit(ENGINE_FATAL_EXIT);
}
const ports = new Set<MessagePortMain>();

engine.onEvent((name, payload) => {
  for (const p of ports) p.postMessage({ t: 'evt', name, payload });
});

parent.on('message', (e) => {
  if ((e.data as { type?: string })?.type !== 'port' || !e.ports[0]) return;
  const port = e.ports[0];
  ports.add(port);
  port.on('close', () => ports.delete(port));
  port.on('message', async (m) => {
    const { response, tensor } = await dispatch(engine.handlers, m.data);
    if (tensor) port.postMessage(tensor);
    port.postMessage(response);
  });
  port.start();
});
