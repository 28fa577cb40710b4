/**
 * Object-part LogitLens on a real family fixture (tests/fixtures/hf-llava: HF's LlavaForConditionalGeneration,
 * CLIP + Llama), against tools/hf-fixtures/logit_lens_llava.py: Hugging Face's own norm and lm_head on
 * output_hidden_states, part patches through HF's resize + center_crop, ranks with the same tie rule. Loupe's ranks
 * (vlm-forward with float32 hidden states → parts/logit-lens, the lens cut from the ONNX decoder) must be equal,
 * integer for integer, for every part and layer — on the plain export, the ORT-fused one (final norm fused with the
 * last residual Add) and Optimum's merged decoder (layers inside If branches).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src-main/engine/engine.ts';
import type { ResultOf } from '../../src-shared/contract/methods.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

const DIR = join(import.meta.dirname, '../fixtures/hf-llava');

interface Expected {
  cases: { item: string; parts: { name: string; token_id: number; ranks: number[]; min_gap: number[] }[]; skipped: string[] }[];
  min_gap_overall: number;
}
const expected = JSON.parse(readFileSync(join(DIR, 'parts/expected.json'), 'utf8')) as Expected;

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

describe('object-part LogitLens on the hf-llava fixture', () => {
  for (const style of ['model', 'model-ort-fused', 'model-optimum-merged']) {
    it(`${style}: every part's rank at every layer equals the PyTorch recomputation`, async () => {
      const model = engine.importModel(join(DIR, style));
      const dataset = engine.importDataset(join(DIR, 'parts'));
      const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: model.id, datasetId: dataset.id, spec: { storeDtype: 'float32', taps: { llmLayers: true } } });
      await engine.queue.drained();
      expect(engine.store.runs.get(run.id)).toMatchObject({ status: 'done', done: 2, failed: 0 });
      const lens = await call<ResultOf<'parts/logit-lens'>>('parts/logit-lens', { runIds: [run.id], topK: 20, perItem: true });
      expect(lens.vocab).toBe(100);
      const got = new Map(lens.instances!.map((i) => [`${i.itemId} ${i.part}`, i.ranks]));
      const want = new Map(expected.cases.flatMap((c) => c.parts.map((p) => [`${c.item} ${p.name}`, p.ranks] as const)));
      expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
      for (const c of expected.cases) for (const p of c.parts) expect(lens.parts.find((x) => x.part === p.name)?.tokenId).toBe(p.token_id);
      // The part wholly cropped away by the processor is reported, not ranked.
      expect(lens.skipped.map((s) => `${s.itemId} ${s.part}`)).toEqual(expected.cases.flatMap((c) => c.skipped.map((s) => `${c.item} ${s}`)));
      expect(lens.skipped[0]!.reason).toMatch(/covers no image token/);
      console.log(`hf-llava ${style}: ${got.size} part instances × 3 layers equal PyTorch's ranks (smallest logit gap around a target ${expected.min_gap_overall.toExponential(2)})`);
    }, 120_000);
  }
});
