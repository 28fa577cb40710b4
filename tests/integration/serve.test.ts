/** `loupe serve`: token and origin gate, schema errors as typed replies, events and binary tensors. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { type RunningServer, serve } from '../../src-main/server/serve.ts';
import { DATASET_ID, MODEL_ID, tempDir } from '../helpers/fixtures.ts';
import { connectNode, rawExchange } from '../helpers/node-ws-transport.ts';
import { startTestEngine } from '../helpers/engine.ts';

const TOKEN = 'test-token-0123456789abcdefghijklmnop'; // ≥ 128 bits, as serve requires
let engine: Engine;
let server: RunningServer;
let origin: string;
let wsUrl: string;

beforeAll(async () => {
  const staticRoot = tempDir();
  mkdirSync(staticRoot, { recursive: true });
  writeFileSync(join(staticRoot, 'index.html'), '<!doctype html><title>t</title>');
  engine = await startTestEngine();
  server = await serve(engine, { host: '127.0.0.1', port: 0, token: TOKEN, staticRoot });
  origin = `http://127.0.0.1:${server.port}`;
  wsUrl = `ws://127.0.0.1:${server.port}/engine?token=${TOKEN}`;
});

afterAll(async () => {
  await server?.close();
  await engine?.close();
});

const rpc = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${origin}/api/rpc`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

describe('serve: who may connect', () => {
  it('serves the page with a CSP and refuses paths outside the root', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const page = await fetch(`${origin}/`, { headers: auth });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect((await fetch(`${origin}/..%2f..%2fetc%2fpasswd`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${origin}/`)).status).toBe(401);
  });

  it('refuses a WebSocket without the token, with a wrong token, or from another origin', async () => {
    await expect(connectNode(`ws://127.0.0.1:${server.port}/engine`, origin)).rejects.toThrow(/403/);
    await expect(connectNode(`ws://127.0.0.1:${server.port}/engine?token=nope`, origin)).rejects.toThrow(/403/);
    await expect(connectNode(wsUrl, 'https://evil.example')).rejects.toThrow(/403/);
    const ok = await connectNode(wsUrl, origin);
    expect((await ok.call('app/info', {})).executionProvider).toBe('cpu');
    ok.close();
  });

  it('refuses HTTP RPC without the token or from another origin', async () => {
    expect((await rpc({ method: 'app/info', params: {} })).status).toBe(401);
    expect((await rpc({ method: 'app/info', params: {} }, { authorization: `Bearer ${TOKEN}`, origin: 'https://evil.example' })).status).toBe(403);
    const ok = await rpc({ method: 'app/info', params: {} }, { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { result: { version: string } }).result.version).toBe('0.0.0-test');
  });
});

describe('serve: bad messages get typed errors, not crashes', () => {
  it('answers schema failures over HTTP and WebSocket, then keeps serving', async () => {
    const bad = await rpc({ method: 'jobs/start', params: { kind: 'no-such-kind', modelId: MODEL_ID, datasetId: DATASET_ID } }, { authorization: `Bearer ${TOKEN}` });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'invalid-message', message: expect.stringMatching(/kind/) });

    expect(await rawExchange(wsUrl, origin, '{not json')).toMatchObject({ ok: false, error: { code: 'invalid-message' } });
    expect(await rawExchange(wsUrl, origin, JSON.stringify({ t: 'req', id: 9, method: 'runs/get', params: { runId: '' } }))).toMatchObject({ id: 9, ok: false, error: { code: 'invalid-message' } });

    const client = await connectNode(wsUrl, origin);
    const err = await client.call('runs/get', { runId: 'does-not-exist' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoupeError);
    expect((err as LoupeError).code).toBe('not-found');
    expect((await client.call('models/list', {})).map((m) => m.id)).toContain(MODEL_ID);
    client.close();
  });
});

describe('serve: execution provider override', () => {
  it('switches to a working provider and refuses one this machine cannot run', async () => {
    const client = await connectNode(wsUrl, origin);
    const err = await client.call('app/set-provider', { provider: 'cuda' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'bad-input', message: expect.stringMatching(/cuda does not work on this machine/) });
    const before = engine.compute.restarts;
    expect(await client.call('app/set-provider', { provider: 'cpu' })).toEqual({ executionProvider: 'cpu', availableProviders: ['cpu'] });
    expect(engine.compute.restarts).toBe(before + 1);
    expect((await client.call('app/info', {})).executionProvider).toBe('cpu');
    client.close();
  });
});

describe('serve: jobs stream progress and tensors arrive as binary', () => {
  it('runs a job, streams progress events, and returns stored tensors bit-exact', async () => {
    const client = await connectNode(wsUrl, origin);
    const progress: number[] = [];
    client.on('job/progress', (p) => progress.push(p.done));
    const finished = new Promise<void>((r) => client.on('job/state', (run) => run.status === 'done' && r()));
    const run = await client.call('jobs/start', { kind: 'encode-images', modelId: MODEL_ID, datasetId: DATASET_ID, spec: { limit: 12, storeDtype: 'float32', storeFeatures: true } });
    expect(run.status).toBe('queued');
    await finished;
    expect(progress).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));

    const { results } = await client.call('runs/get', { runId: run.id });
    expect(results).toHaveLength(12);
    const meta = results[0]!.tensors[0]!;
    expect(meta).toMatchObject({ name: 'image_features', dtype: 'float32', shape: [1, 64, 128] });
    const streamed = await client.tensor(meta.id);
    const stored = engine.store.blobs.getTensors(meta.blob).image_features!;
    expect(streamed.shape).toEqual([1, 64, 128]);
    expect(Array.from(toFloat32(streamed))).toEqual(Array.from(toFloat32(stored)));
    // The summary metric is derived from the same features: recompute it independently.
    const f = toFloat32(stored);
    let sum = 0;
    for (let t = 0; t < 64; t++) sum += Math.hypot(...f.subarray(t * 128, (t + 1) * 128));
    expect(results[0]!.metrics.meanTokenNorm).toBeCloseTo(sum / 64, 5);
    client.close();
  });
});
