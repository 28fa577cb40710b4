/**
 * Object-part LogitLens end to end on the bundled micro model and the world's object-parts set:
 * vlm-forward runs (intact and with a vision self-attention ablation) → parts/logit-lens.
 *
 * Checked against an independent recomputation written here from the definitions, not from the
 * code under test: the micro model's RMSNorm (x / sqrt(mean(x²) + eps) · w, eps from config.json)
 * and lm_head read by name from its decoder's initializers, applied in float64 to the stored
 * hidden states; part tokens from the mask by hand (64×64 images, 8×8 grid, no resize or crop:
 * pixel (x, y) → cell ⌊y/8⌋·8 + ⌊x/8⌋); ranks by sorting the vocabulary.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src-main/engine/engine.ts';
import { readModel } from '../../src-main/engine/graph/model-proto.ts';
import { readMask } from '../../src-main/experiments/inside-the-llm/images.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import type { ResultOf } from '../../src-shared/contract/methods.ts';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

type Lens = ResultOf<'parts/logit-lens'>;

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);
const ITEMS = 12;

async function forward(spec: object): Promise<string> {
  const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'object-parts', spec: { limit: ITEMS, storeDtype: 'float32', taps: { llmLayers: true }, ...spec } });
  await engine.queue.drained();
  expect(engine.store.runs.get(run.id)).toMatchObject({ status: 'done', done: ITEMS, failed: 0 });
  return run.id;
}

/** RMSNorm weight and lm_head [hidden, vocab] of the micro decoder, by their export names. */
async function headWeights() {
  const model = await readModel(join(RESOURCES_DIR, 'models/micro-llava/onnx/decoder_model_merged.onnx'));
  const g = model.graph!;
  const f32 = (name: string) => {
    const t = g.initializer.find((i) => i.name === name)!;
    const raw = t.rawData;
    return { dims: t.dims.map(Number), data: raw.length ? new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) : Float32Array.from(t.floatData) };
  };
  const head = g.node.find((n) => n.name === '/lm_head/MatMul')!;
  return { norm: f32('language_model.norm.weight').data, lm: f32(head.input[1]!) };
}

/** Independent ranks for one run: item → part → per layer best rank. */
async function reference(runId: string) {
  const { norm, lm } = await headWeights();
  const [hidden, vocab] = lm.dims as [number, number];
  const ds = engine.store.datasets.get('object-parts');
  const out = new Map<string, Map<string, number[]>>();
  for (const r of engine.store.runs.results(runId)) {
    const item = engine.store.datasets.item('object-parts', r.itemId);
    const tensors = Object.assign({}, ...[...new Set(r.tensors.map((t) => t.blob))].map((b) => engine.store.blobs.getTensors(b)));
    const map = tensors.image_token_map.data as Int32Array;
    const posOfCell = new Map<number, number>();
    for (let k = 0; k < map.length / 5; k++) posOfCell.set(map[k * 5 + 3]! * 8 + map[k * 5 + 4]!, map[k * 5]!);
    const parts = new Map<string, number[]>();
    for (const l of item.labels) {
      if (l.kind !== 'mask' || !l.name?.includes('/')) continue;
      const mask = readMask(join(ds.path, l.file));
      const cells = new Set<number>();
      for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) if (l.ids!.includes(mask.ids[y * 64 + x]!)) cells.add(Math.floor(y / 8) * 8 + Math.floor(x / 8));
      parts.set(l.name, [...cells].map((c) => posOfCell.get(c)!));
    }
    const perPart = new Map<string, number[]>();
    for (const [name, positions] of parts) {
      const word = name.split('/')[1]!;
      const tokenId = VOCAB.indexOf(word);
      const ranks: number[] = [];
      for (let layer = 0; ; layer++) {
        const h = tensors[`text.hidden_states.${layer}`];
        if (!h) break;
        const f = toFloat32(h);
        let best = Infinity;
        for (const pos of positions) {
          const x = f.subarray(pos * hidden, (pos + 1) * hidden);
          const ms = x.reduce((s, v) => s + v * v, 0) / hidden;
          const inv = 1 / Math.sqrt(ms + 1e-5);
          const logits = new Float64Array(vocab);
          for (let i = 0; i < hidden; i++) {
            const xi = x[i]! * inv * norm[i]!;
            for (let v = 0; v < vocab; v++) logits[v]! += xi * lm.data[i * vocab + v]!;
          }
          const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]! || a - b);
          best = Math.min(best, order.indexOf(tokenId) + 1);
        }
        ranks.push(best);
      }
      perPart.set(name, ranks);
    }
    out.set(r.itemId, perPart);
  }
  return out;
}

const binomial = (n: number, k: number): number => {
  let r = 1;
  for (let j = 1; j <= k; j++) r = (r * (n - k + j)) / j;
  return r;
};

/** The micro model's WordLevel vocabulary in id order. */
let VOCAB: string[] = [];

describe('object-part LogitLens on the micro model', () => {
  it('ranks every part at every LLM layer as an independent float64 recomputation does, and aggregates them', async () => {
    const { readFileSync } = await import('node:fs');
    const tok = JSON.parse(readFileSync(join(RESOURCES_DIR, 'models/micro-llava/tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
    VOCAB = Object.entries(tok.model.vocab).sort((a, b) => a[1] - b[1]).map(([w]) => w);
    const runId = await forward({});
    const lens = await call<Lens>('parts/logit-lens', { runIds: [runId], topK: 5, perItem: true });
    expect(lens.vocab).toBe(76);
    expect(lens.chance).toBeCloseTo(5 / 76, 12);
    expect(lens.skippedCount).toBe(0);
    for (const p of lens.parts) expect(p.tokenId).toBe(VOCAB.indexOf(p.part.split('/')[1]!));
    const ref = await reference(runId);
    const instances = lens.instances!;
    expect(instances.length).toBe([...ref.values()].reduce((s, m) => s + m.size, 0));
    let near = 0;
    let total = 0;
    for (const i of instances) {
      const want = ref.get(i.itemId)!.get(i.part)!;
      expect(i.ranks).toHaveLength(5); // hidden_states 0…4 of the 4-layer LLM
      total += want.length;
      i.ranks.forEach((r, l) => (r === want[l] ? 0 : near++));
    }
    // float32 ORT vs float64 here: ranks agree unless two logits tie to ~1e-6.
    console.log(`micro: ${instances.length} part instances × 5 layers, ${near}/${total} ranks differ from the float64 recomputation`);
    expect(near).toBe(0);
    // Aggregates from the instances, by the definitions.
    for (const row of lens.runs[0]!.rows) {
      const ranks = instances.filter((i) => i.part === row.part).map((i) => i.ranks[row.layer]!);
      const s = [...ranks].sort((a, b) => a - b);
      const median = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
      expect(row).toMatchObject({ n: ranks.length, medianRank: median, hits: ranks.filter((r) => r <= 5).length });
      expect(row.meanRank).toBeCloseTo(ranks.reduce((a, b) => a + b, 0) / ranks.length, 12);
    }
    expect(lens.runs[0]!.overall.map((o) => o.n)).toEqual(Array(5).fill(instances.length));
    for (const o of lens.runs[0]!.overall) expect(o.medianLow <= o.medianRank && o.medianRank <= o.medianHigh).toBe(true);
    console.log(lens.runs[0]!.overall.map((o) => `layer ${o.layer}: median ${o.medianRank} mean ${o.meanRank.toFixed(1)} top-5 ${(100 * o.hitRate).toFixed(0)} %`).join('\n'));
  }, 120_000);

  it('compares an ablated run on the shared items: recovery per layer against the intact run', async () => {
    const intact = await forward({});
    // Paper 1's "patch → all" in every vision layer: patches see neither each other nor CLS.
    const ablated = await forward({ ablation: { edits: [{ op: 'block', part: 'vision', queries: { kind: 'patches' }, keys: { kind: 'all' }, excludeSelf: true }] } });
    const lens = await call<Lens>('parts/logit-lens', { runIds: [intact, ablated], topK: 5, perItem: true });
    expect(lens.sharedItems).toBe(ITEMS);
    expect(lens.runs.map((r) => r.runId)).toEqual([intact, ablated]);
    const [a, b] = lens.runs;
    // The LLM layer-0 input (embeddings of the projected features) changes under a vision ablation.
    expect(b!.overall.map((o) => o.meanRank)).not.toEqual(a!.overall.map((o) => o.meanRank));
    const rec = lens.recovery[0]!;
    expect(rec.runId).toBe(ablated);
    for (const l of rec.layers) {
      const i = a!.overall[l.layer]!;
      const x = b!.overall[l.layer]!;
      expect(l).toMatchObject({ intactHitRate: i.hitRate, ablatedHitRate: x.hitRate, intactMedianRank: i.medianRank, ablatedMedianRank: x.medianRank });
      const span = i.hitRate - lens.chance;
      expect(l.recovery).toBe(Math.abs(span) < 1e-12 ? null : (x.hitRate - lens.chance) / span);
      // Paired statistics over the instances both runs ranked, from the definitions: the mean hit difference,
      // and McNemar's exact p = min(1, 2·P(X ≤ min(nb, nc))), X ~ Bin(nb + nc, ½), on the discordant pairs (< 25 here).
      const byKey = (runId: string) => new Map(lens.instances!.filter((q) => q.runId === runId).map((q) => [`${q.itemId} ${q.part}`, q.ranks[l.layer]! <= 5]));
      const [hi, ha] = [byKey(intact), byKey(ablated)];
      const keys = [...hi.keys()].filter((k) => ha.has(k));
      expect(rec.pairs).toBe(keys.length);
      const nb = keys.filter((k) => hi.get(k) && !ha.get(k)).length;
      const nc = keys.filter((k) => !hi.get(k) && ha.get(k)).length;
      expect(l.hitRateDiff!.estimate).toBeCloseTo((nc - nb) / keys.length, 12);
      expect(l.hitRateDiff!.low).toBeLessThanOrEqual(l.hitRateDiff!.estimate);
      expect(l.hitRateDiff!.high).toBeGreaterThanOrEqual(l.hitRateDiff!.estimate);
      let tail = 0;
      for (let j = 0; j <= Math.min(nb, nc); j++) tail += binomial(nb + nc, j) / 2 ** (nb + nc);
      expect(l.mcnemarP!).toBeCloseTo(nb === nc ? 1 : Math.min(1, 2 * tail), 10);
    }
  }, 120_000);

  it('refuses runs without LLM hidden states, blind runs and a selection with no part', async () => {
    const bare = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'object-parts', spec: { limit: 2 } });
    await engine.queue.drained();
    await expect(call('parts/logit-lens', { runIds: [bare.id] })).rejects.toThrow(/captured no LLM hidden states.*taps.llmLayers/);
    const blind = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'object-parts', spec: { limit: 2, image: 'blank', taps: { llmLayers: true } } });
    await engine.queue.drained();
    await expect(call('parts/logit-lens', { runIds: [blind.id] })).rejects.toThrow(/blind/);
    const run = await forward({});
    await expect(call('parts/logit-lens', { runIds: [run], parts: ['wheel'] })).rejects.toThrow(/no item with a part to rank.*selected: wheel/);
  }, 120_000);

  it('reads PASCAL-Part imports (<class>/<part> labels, 16-bit-capable layers, abbreviations as words) and reports parts the vocabulary lacks', async () => {
    const imported = await call<{ dataset: { id: string } }>('datasets/import-benchmark', { format: 'pascal-part', path: join(import.meta.dirname, '../fixtures/benchmarks/pascal-part') });
    // PASCAL-Part has no questions: the spec's prompt asks one of every image.
    const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: imported.dataset.id, spec: { storeDtype: 'float32', taps: { llmLayers: true }, prompt: 'what is in the image ?' } });
    await engine.queue.drained();
    expect(engine.store.runs.get(run.id)).toMatchObject({ status: 'done', done: 4, failed: 0 });
    // The micro model's word-level vocabulary has shape and colour words only: every part is reported, none ranked.
    await expect(call('parts/logit-lens', { runIds: [run.id] })).rejects.toThrow(/no item with a part to rank.*"(head|torso|hand|tail|wheel|window|body|engine)" is not in model micro-llava's vocabulary/);
  }, 120_000);
});
