import { describe, expect, it } from 'vitest';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { dispatch } from '../../../src-main/engine/dispatcher.ts';
import type { Handlers } from '../../../src-main/engine/handlers.ts';

const info = { version: '1', executionProvider: 'cpu', availableProviders: ['cpu'], dataDir: '/d', host: 'server' } as const;
const handlers = {
  'app/info': async () => info,
  'runs/get': async ({ runId }: { runId: string }) => {
    throw new LoupeError('not-found', `no run with id ${runId}`);
  },
  'models/list': async () => [{ bogus: true }],
} as unknown as Handlers;

describe('dispatcher', () => {
  it('answers a valid request with the schema-checked result', async () => {
    const { response } = await dispatch(handlers, { t: 'req', id: 3, method: 'app/info', params: {} });
    expect(response).toEqual({ t: 'res', id: 3, ok: true, result: info });
  });

  it('turns a malformed envelope into a typed invalid-message error', async () => {
    const { response } = await dispatch(handlers, { t: 'req', id: 4, method: 42 });
    expect(response).toMatchObject({ id: 4, ok: false, error: { code: 'invalid-message' } });
    const garbage = await dispatch(handlers, 'not an object');
    expect(garbage.response).toMatchObject({ id: -1, ok: false, error: { code: 'invalid-message' } });
  });

  it('rejects params that fail the contract, naming the field', async () => {
    const { response } = await dispatch(handlers, { t: 'req', id: 5, method: 'runs/get', params: { runId: 12 } });
    expect(response.ok).toBe(false);
    if (!response.ok) {
      expect(response.error.code).toBe('invalid-message');
      expect(response.error.message).toMatch(/runId/);
    }
    const extra = await dispatch(handlers, { t: 'req', id: 6, method: 'app/info', params: { sneaky: 1 } });
    expect(extra.response).toMatchObject({ ok: false, error: { code: 'invalid-message' } });
  });

  it('reports unknown methods and handler errors with their codes', async () => {
    expect((await dispatch(handlers, { t: 'req', id: 7, method: 'fs/delete', params: {} })).response).toMatchObject({ ok: false, error: { code: 'unknown-method' } });
    expect((await dispatch(handlers, { t: 'req', id: 8, method: 'runs/get', params: { runId: 'r1' } })).response).toMatchObject({ ok: false, error: { code: 'not-found', message: 'no run with id r1' } });
  });

  it('does not let a handler return something outside the contract', async () => {
    const { response } = await dispatch(handlers, { t: 'req', id: 9, method: 'models/list', params: {} });
    expect(response).toMatchObject({ ok: false, error: { code: 'internal' } });
  });
});
