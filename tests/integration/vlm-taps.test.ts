/**
 * Built-in taps through the engine (graph rewrite → tapped sessions → capture) against the
 * PyTorch reference, and the vlm-forward job's stored captures against a direct forward.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import { dispatch } from '../../src-main/engine/dispatcher.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { resolveTaps } from '../../src-main/engine/vlm/tap-sets.ts';
import { gatherSequence } from '../../src-main/engine/vlm/slicing.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { fixtureIndex, fixtureTensors, relativeError } from '../helpers/reference.ts';
import { startTestEngine } from '../helpers/engine.ts';

const MODEL_DIR = join(RESOURCES_DIR, 'models', 'micro-llava');
const ALL = { projector: true, imageKV: true, visionLayers: true, llmLayers: true, attention: true };

describe('built-in taps equal the PyTorch reference', () => {
  let compute: ComputeClient;
  beforeAll(async () => {
    compute = new ComputeClient();
    await compute.init('cpu');
  });
  afterAll(() => compute?.close());

  it.each(fixtureIndex().cases.filter((c) => c.num_images > 0))('$name: every vision and LLM hidden state', async (c) => {
    const folder = openModelFolder(MODEL_DIR);
    const taps = await resolveTaps(folder, ALL, { cacheRoot: tempDir(), modelHash: 'test' });
    const vlm = await Vlm.open(folder, compute, `taps-${c.name}`, taps.files);
    const ref = fixtureTensors(c);
    const res = await vlm.forwardEncoded(c.prompt, ref.input_ids!, ref.pixel_values, { visionTaps: taps.vision.map((t) => t.tensor), decoderTaps: taps.decoder.map((t) => t.tensor) });
    const hidden = [...taps.vision, ...taps.decoder].filter((t) => t.name.includes('hidden_states') || t.name.endsWith('final_norm'));
    // The export keeps vision layers 0..2 (vision_feature_layer −2 of 4) → hidden states 0..3; the LLM all 5 + final norm.
    expect(hidden.map((t) => t.name).sort()).toEqual(
      ['vision.hidden_states.0', 'vision.hidden_states.1', 'vision.hidden_states.2', 'vision.hidden_states.3', 'text.hidden_states.0', 'text.hidden_states.1', 'text.hidden_states.2', 'text.hidden_states.3', 'text.hidden_states.4', 'text.final_norm'].sort(),
    );
    for (const t of hidden) expect(relativeError(res.taps[t.tensor]!, ref[t.name]!), t.name).toBeLessThan(1e-4);
    // Attention taps are probabilities: rows sum to one.
    const attn = taps.decoder.find((t) => t.name === 'text.attentions.0')!;
    const a = toFloat32(res.taps[attn.tensor]!);
    const seq = res.inputIds.length;
    for (let q = 0; q < seq; q += 7) expect(a.subarray(q * seq, (q + 1) * seq).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
  });
});

describe('vlm-forward job stores what was asked, as computed', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startTestEngine();
  });
  afterAll(() => engine?.close());

  async function run(spec: object) {
    const { response } = await dispatch(engine.handlers, { t: 'req', id: 1, method: 'jobs/start', params: { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'colour-at-point', spec } });
    if (!response.ok) throw new Error(response.error.message);
    await engine.queue.drained();
    const id = (response.result as { id: string }).id;
    return { run: engine.store.runs.get(id), results: engine.store.runs.results(id) };
  }

  it('captures image K/V at image positions with the patch map, equal to a direct forward', async () => {
    const { run: r, results } = await run({ limit: 3, storeDtype: 'float32', taps: { imageKV: true, projector: true } });
    expect(r).toMatchObject({ status: 'done', done: 3, failed: 0 });
    const first = results[0]!;
    const tensors = Object.fromEntries(first.tensors.map((t) => [t.name, engine.store.blobs.getTensors(t.blob)[t.name]!]));
    expect(Object.keys(tensors).sort()).toEqual(['image_token_map', 'projector', ...Array.from({ length: 4 }, (_, i) => [`image_kv.${i}.key`, `image_kv.${i}.value`]).flat()].sort());
    const map = tensors.image_token_map!.data as Int32Array;
    // Row-major 8×8 grid of one image: token k → (row k/8, col k%8), positions contiguous.
    for (let k = 0; k < 64; k++) expect([map[k * 5 + 1], map[k * 5 + 2], map[k * 5 + 3], map[k * 5 + 4]]).toEqual([0, 0, Math.floor(k / 8), k % 8]);

    const item = engine.store.datasets.item('colour-at-point', first.itemId);
    const compute = engine.compute;
    const vlm = await Vlm.open(openModelFolder(MODEL_DIR), compute, 'direct');
    const direct = await vlm.forward(item.prompt!, { kind: 'files', paths: [join(RESOURCES_DIR, 'datasets', 'colour-at-point', item.images[0]!)] }, { decoderTaps: ['present.2.value'], choices: item.choices! });
    const positions = direct.imageTokens.map((t) => t.position);
    expect(Array.from(map.filter((_, i) => i % 5 === 0))).toEqual(positions);
    expect(relativeError(tensors['image_kv.2.value']!, gatherSequence(direct.taps['present.2.value']!, positions))).toBe(0);
    expect(first.values.prediction).toBe(direct.choiceScores!.reduce((a, b) => (b.prob > a.prob ? b : a)).choice);
    expect(first.metrics.correct).toBe(first.values.prediction === item.answer ? 1 : 0);
  });

  it('blind runs: no image → no image tokens or image tensors; blank → same prompt length as with the image', async () => {
    const none = await run({ limit: 2, image: 'none', taps: { imageKV: true } });
    expect(none.results.every((x) => x.metrics.imageTokens === 0 && x.tensors.length === 0)).toBe(true);
    const blank = await run({ limit: 2, image: 'blank' });
    const seen = await run({ limit: 2, image: 'image' });
    expect(blank.results.map((x) => x.metrics.promptTokens)).toEqual(seen.results.map((x) => x.metrics.promptTokens));
    expect(blank.results[0]!.values.choiceProbs).not.toEqual(seen.results[0]!.values.choiceProbs);
  });
});
