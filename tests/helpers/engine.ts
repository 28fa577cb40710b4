/** An in-process engine on a temp data dir with the bundled resources, and typed-error calls through the dispatcher. */
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { dispatch } from '../../src-main/engine/dispatcher.ts';
import { Engine } from '../../src-main/engine/engine.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { tempDir } from './fixtures.ts';

export function startTestEngine(): Promise<Engine> {
  return Engine.start({ dataDir: tempDir(), resourcesDir: RESOURCES_DIR, host: 'server', version: '0.0.0-test', provider: 'cpu' });
}

/** Calls a contract method as a transport would; a failure rejects with the engine's LoupeError (code + message). */
export async function callEngine<T>(engine: Engine, method: string, params: unknown): Promise<T> {
  const { response } = await dispatch(engine.handlers, { t: 'req', id: 1, method, params });
  if (!response.ok) throw LoupeError.from(response.error);
  return response.result as T;
}
