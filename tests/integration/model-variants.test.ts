/**
 * Variants through the engine: a copy of micro-llava with extra dtype files (`_q4` = a copy of
 * the fp32 decoder, `_int8` = a corrupt one), so which file a run loads shows in its outcome.
 * The run records the requested variant (spec) and the file each session loaded (provenance);
 * an absent variant is refused at jobs/start naming the file; models/variants lists them.
 */
import { copyFileSync, cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInfo, RunInfo } from '../../src-shared/contract/domain.ts';
import type { ResultOf } from '../../src-shared/contract/methods.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { DATASET_ID, tempDir } from '../helpers/fixtures.ts';

let engine: Engine;
let model: ModelInfo;
beforeAll(async () => {
  engine = await startTestEngine();
  const dir = join(tempDir(), 'variant-llava');
  cpSync(join(RESOURCES_DIR, 'models', 'micro-llava'), dir, { recursive: true });
  copyFileSync(join(dir, 'onnx', 'decoder_model_merged.onnx'), join(dir, 'onnx', 'decoder_model_merged_q4.onnx'));
  copyFileSync(join(dir, 'onnx', 'vision_encoder.onnx'), join(dir, 'onnx', 'vision_encoder_fp16.onnx'));
  writeFileSync(join(dir, 'onnx', 'decoder_model_merged_int8.onnx'), 'not a graph');
  model = engine.importModel(dir);
});
afterAll(() => engine?.close());

async function run(spec: object): Promise<RunInfo> {
  const started = await callEngine<RunInfo>(engine, 'jobs/start', { kind: 'vlm-forward', modelId: model.id, datasetId: DATASET_ID, spec: { limit: 2, ...spec } });
  await engine.queue.drained();
  return engine.store.runs.get(started.id);
}

describe('model variants', () => {
  it('lists the dtypes of each session', async () => {
    const v = await callEngine<ResultOf<'models/variants'>>(engine, 'models/variants', { modelId: model.id });
    expect(v.sessions.map((s) => [s.session, s.default, s.variants.map((x) => x.dtype)])).toEqual([
      ['vision_encoder', 'fp32', ['fp32', 'fp16']],
      ['embed_tokens', 'fp32', ['fp32']],
      ['decoder_model_merged', 'fp32', ['fp32', 'q4', 'int8']],
    ]);
    expect(v.common).toEqual(['fp32']);
  });

  it('a vlm-forward run with a per-session variant loads and records those files', async () => {
    const r = await run({ variant: { decoder_model_merged: 'q4', vision_encoder: 'fp16' }, taps: { llmLayers: true } });
    expect(r).toMatchObject({ status: 'done', done: 2, failed: 0 });
    expect(r.spec.variant).toEqual({ decoder_model_merged: 'q4', vision_encoder: 'fp16' });
    expect(r.provenance.sessionFiles).toEqual({ vision_encoder: 'onnx/vision_encoder_fp16.onnx', embed_tokens: 'onnx/embed_tokens.onnx', decoder_model_merged: 'onnx/decoder_model_merged_q4.onnx' });
    // Through the contract too (the result schema keeps the field).
    const got = await callEngine<ResultOf<'runs/get'>>(engine, 'runs/get', { runId: r.id });
    expect(got.run.provenance.sessionFiles?.decoder_model_merged).toBe('onnx/decoder_model_merged_q4.onnx');
    const plain = await run({});
    expect(plain.provenance.sessionFiles?.decoder_model_merged).toBe('onnx/decoder_model_merged.onnx');
  });

  it('the chosen file is the one loaded: the corrupt int8 decoder fails the run', async () => {
    const r = await run({ variant: { decoder_model_merged: 'int8' } });
    expect(r.status).toBe('failed');
    expect(r.provenance.sessionFiles?.decoder_model_merged).toBe('onnx/decoder_model_merged_int8.onnx');
  });

  it('an absent variant is refused at start, naming the file and what the session has', async () => {
    await expect(callEngine(engine, 'jobs/start', { kind: 'vlm-forward', modelId: model.id, datasetId: DATASET_ID, spec: { variant: 'q4' } })).rejects.toThrow(
      /no onnx\/vision_encoder_q4\.onnx \(variant q4 of vision_encoder\); vision_encoder variants in this folder: fp32, fp16/,
    );
    await expect(callEngine(engine, 'jobs/start', { kind: 'readout', modelId: model.id, datasetId: DATASET_ID, spec: { variant: { decoder_model_merged: 'fp16' } } })).rejects.toThrow(/decoder_model_merged variants in this folder: fp32, q4, int8/);
    await expect(callEngine(engine, 'jobs/start', { kind: 'vlm-forward', modelId: model.id, datasetId: DATASET_ID, spec: { variant: 'q3' } })).rejects.toMatchObject({ code: 'invalid-message' });
  });

  it('encode-images loads the chosen vision encoder', async () => {
    const started = await callEngine<RunInfo>(engine, 'jobs/start', { kind: 'encode-images', modelId: model.id, datasetId: DATASET_ID, spec: { limit: 1, variant: 'fp32' } });
    await engine.queue.drained();
    expect(engine.store.runs.get(started.id)).toMatchObject({ status: 'done', provenance: { sessionFiles: { vision_encoder: 'onnx/vision_encoder.onnx' } } });
  });
});
