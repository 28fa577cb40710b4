/**
 * When the engine utility process exits, whether to start it again. A crash is retried with
 * backoff; an engine that reported a fatal start error (another engine holds the data folder, the
 * disk is full, the database cannot be opened) exits with ENGINE_FATAL_EXIT and is not restarted —
 * retrying would only loop — and the reason is shown instead. Pure, so it is unit-tested without Electron.
 */
export const ENGINE_FATAL_EXIT = 3;

export type RestartDecision = { restart: true; delayMs: number; reason: string } | { restart: false; reason: string };

export function afterEngineExit(code: number | null, restarts: number, fatal: { code: string; message: string } | null): RestartDecision {
  if (code === ENGINE_FATAL_EXIT || fatal) return { restart: false, reason: fatal ? `the engine could not start (${fatal.code}): ${fatal.message}` : `the engine could not start (exit code ${code})` };
  return { restart: true, delayMs: Math.min(30_000, 500 * 2 ** Math.min(restarts, 6)), reason: `engine exited with code ${code}` };
}
