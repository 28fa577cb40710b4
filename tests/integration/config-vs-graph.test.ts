/**
 * config.json against the graph that actually runs (issue 23 item 7): a config whose layer count,
 * KV heads or head size disagree with the decoder's KV-cache inputs fails the run before any item,
 * naming both numbers — instead of mislabelling every tap. The bundled micro-llava decoder has 4
 * layers, 2 KV heads of size 32 (past_key_values.N.key [batch, 2, past, 32]).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src-main/engine/engine.ts';
import { DATASET_ID } from '../helpers/fixtures.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { modelFolder } from '../helpers/bad-input-harness.ts';
import { tempDir } from '../helpers/fixtures.ts';

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

async function runWith(edit: (text: Record<string, unknown>) => void) {
  const dir = modelFolder(tempDir(), (file, json) => {
    if (file !== 'config.json') return undefined;
    edit(json.text_config as Record<string, unknown>);
    return json;
  });
  const model = engine.importModel(dir);
  const run = await callEngine<{ id: string }>(engine, 'jobs/start', { kind: 'vlm-forward', modelId: model.id, datasetId: DATASET_ID, spec: { limit: 2 } });
  await engine.queue.drained();
  return engine.store.runs.get(run.id);
}

describe('config.json vs the decoder graph', () => {
  it('the unedited config runs', async () => {
    expect(await runWith(() => {})).toMatchObject({ status: 'done', done: 2 });
  });

  it.each([
    ['layer count', (t: Record<string, unknown>) => void (t.num_hidden_layers = 3), /config\.json says the language model has 3 layers \(num_hidden_layers\) but decoder .* has 4/],
    ['KV heads', (t: Record<string, unknown>) => void (t.num_key_value_heads = 1), /config\.json gives 1 key\/value heads .* caches 2/],
    ['head size', (t: Record<string, unknown>) => void (t.head_dim = 8), /config\.json gives a head size of 8 .* caches 32/],
  ])('a wrong %s fails the run naming both numbers', async (_what, edit, message) => {
    const run = await runWith(edit);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(message);
    expect(run.done).toBe(0);
  });
});
