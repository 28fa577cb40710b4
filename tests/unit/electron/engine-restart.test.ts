import { describe, expect, it } from 'vitest';
import { ENGINE_FATAL_EXIT, afterEngineExit } from '../../../src-main/electron/engine-restart.ts';

describe('engine restart policy', () => {
  it('retries crashes with capped exponential backoff', () => {
    expect(afterEngineExit(1, 1, null)).toEqual({ restart: true, delayMs: 1000, reason: 'engine exited with code 1' });
    expect(afterEngineExit(null, 3, null)).toMatchObject({ restart: true, delayMs: 4000 });
    expect(afterEngineExit(1, 50, null)).toMatchObject({ restart: true, delayMs: 30_000 });
  });

  it('does not loop on a fatal start (another engine holds the data folder)', () => {
    const fatal = { code: 'conflict', message: 'data folder /d is in use by pid 42' };
    expect(afterEngineExit(ENGINE_FATAL_EXIT, 1, fatal)).toEqual({ restart: false, reason: 'the engine could not start (conflict): data folder /d is in use by pid 42' });
    expect(afterEngineExit(ENGINE_FATAL_EXIT, 1, null)).toMatchObject({ restart: false });
  });
});
