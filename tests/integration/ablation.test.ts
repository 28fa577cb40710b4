/**
 * Attention ablation through the engine on micro-llava (graph rewrite → bias feeds built per
 * step in the compute worker). Each claim is checked against a control that must fail it, so
 * none can pass by accident:
 *   - vision: with every patch blocked from every other token (other patches and CLS), a change
 *     to one 8×8 patch's pixels leaves every other patch's output unchanged; without the mask it
 *     changes them;
 *   - LLM: with text → image blocked, the text positions' logits do not depend on the image
 *     (two different images, same prompt: equal), also through greedy decoding; without it they do;
 *   - an all-zero bias gives outputs bit-identical to the unedited graphs;
 *   - the vlm-forward job applies the spec and stores it with the run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attentionBiases, llmLayout } from '../../src-shared/ablation/mask.ts';
import { AblationSpec } from '../../src-shared/ablation/spec.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { type HostTensor, toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import { dispatch } from '../../src-main/engine/dispatcher.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { ablationRequest } from '../../src-main/engine/vlm/ablation.ts';
import { type ResolvedTaps, resolveTaps } from '../../src-main/engine/vlm/tap-sets.ts';
import { type ForwardResult, Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { FIXTURE_DIR, fixtureIndex, fixtureTensors, relativeError } from '../helpers/reference.ts';
import { startTestEngine } from '../helpers/engine.ts';

const MODEL_DIR = join(RESOURCES_DIR, 'models', 'micro-llava');
const TAPS = { projector: false, imageKV: false, visionLayers: true, llmLayers: false, attention: false };
/** The last vision layer in the export (vision_feature_layer −2 of 4 → layers 0..2 → hidden_states.3). */
const LAST_VISION = 'vision.hidden_states.3';

const ISOLATE_PATCHES = AblationSpec.parse({ edits: [{ op: 'block', part: 'vision', queries: { kind: 'patches' }, keys: { kind: 'all' }, excludeSelf: true }] });
const TEXT_BLIND = AblationSpec.parse({ edits: [{ op: 'block', part: 'llm', queries: { kind: 'text' }, keys: { kind: 'image' } }] });
/** Scale by 1 everywhere: every bias is log(1) = 0 — exercises the mask path with all-zero tensors. */
const ZERO = AblationSpec.parse({
  edits: [
    { op: 'scale', part: 'vision', factor: 1, queries: { kind: 'all' }, keys: { kind: 'all' } },
    { op: 'scale', part: 'llm', factor: 1, queries: { kind: 'all' }, keys: { kind: 'all' } },
  ],
});

const lastVision = (taps: ResolvedTaps) => taps.vision.find((t) => t.name === LAST_VISION)!.tensor;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function bitIdentical(a: HostTensor | Float32Array, b: HostTensor | Float32Array): boolean {
  const x = a instanceof Float32Array ? a : toFloat32(a);
  const y = b instanceof Float32Array ? b : toFloat32(b);
  return x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
}

/** Rows of a [.., tokens, hidden] tensor, except `skip`, concatenated; and row `skip` alone. */
function rowsExcept(t: HostTensor, skip: number): { others: Float32Array; row: Float32Array } {
  const data = toFloat32(t);
  const hidden = t.shape[t.shape.length - 1]!;
  const tokens = t.shape[t.shape.length - 2]!;
  const others: number[] = [];
  for (let r = 0; r < tokens; r++) if (r !== skip) others.push(...data.subarray(r * hidden, (r + 1) * hidden));
  return { others: Float32Array.from(others), row: data.slice(skip * hidden, (skip + 1) * hidden) };
}

describe('attention ablation on micro-llava', () => {
  let compute: ComputeClient;
  let plain: Vlm;
  let ablated: Vlm;
  let plainTaps: ResolvedTaps;
  let ablatedTaps: ResolvedTaps;
  const c = fixtureIndex().cases.find((x) => x.num_images === 1)!;
  const ref = fixtureTensors(c);
  const pixels = ref.pixel_values!;
  const PATCH = { row: 3, col: 4 };
  const patchIndex = PATCH.row * 8 + PATCH.col;

  /** The same image with one 8×8 patch's pixels changed (all channels). */
  const edited: HostTensor = (() => {
    const data = Float32Array.from(pixels.data as Float32Array);
    for (let ch = 0; ch < 3; ch++) for (let y = PATCH.row * 8; y < PATCH.row * 8 + 8; y++) for (let x = PATCH.col * 8; x < PATCH.col * 8 + 8; x++) data[(ch * 64 + y) * 64 + x] = 1.5 - data[(ch * 64 + y) * 64 + x]!;
    return { dtype: 'float32', shape: [...pixels.shape], data };
  })();
  /** A different image: the preprocessed blank (black) image, (0 − mean) / std per channel. */
  const blank: HostTensor = (() => {
    const mean = [0.48145466, 0.4578275, 0.40821073];
    const std = [0.26862954, 0.26130258, 0.27577711];
    const data = new Float32Array(3 * 64 * 64);
    for (let ch = 0; ch < 3; ch++) data.fill(Math.fround(-mean[ch]! / std[ch]!), ch * 4096, (ch + 1) * 4096);
    return { dtype: 'float32', shape: [1, 3, 64, 64], data };
  })();

  beforeAll(async () => {
    compute = new ComputeClient();
    await compute.init('cpu');
    const folder = openModelFolder(MODEL_DIR);
    const place = { cacheRoot: tempDir(), modelHash: 'ablation-test' };
    plainTaps = await resolveTaps(folder, TAPS, place);
    ablatedTaps = await resolveTaps(folder, TAPS, place, ZERO);
    plain = await Vlm.open(folder, compute, `plain-${plainTaps.key}`, plainTaps.files);
    ablated = await Vlm.open(folder, compute, `ablated-${ablatedTaps.key}`, ablatedTaps.files);
  });
  afterAll(() => compute?.close());

  const run = (vlm: Vlm, taps: ResolvedTaps, px: HostTensor, ablation?: AblationSpec, extra: { maxNewTokens?: number } = {}): Promise<ForwardResult> =>
    vlm.forwardEncoded(c.prompt, ref.input_ids!, px, { visionTaps: [lastVision(taps)], fullLogits: true, ...extra, ...(ablation && { ablation }) });

  it('rewrites both towers into one cached file each, taps included', () => {
    expect(ablatedTaps.files.vision).toMatch(/vision_encoder\.loupe-taps-ablate-[0-9a-f]{16}\.onnx$/);
    expect(ablatedTaps.files.decoder).toMatch(/decoder_model_merged\.loupe-taps-ablate-[0-9a-f]{16}\.onnx$/);
    expect(ablatedTaps.files.vision).not.toBe(plainTaps.files.vision);
  });

  it('an all-zero bias is bit-identical to the unedited graphs (vision hidden state, image features, every logit)', async () => {
    const base = await run(plain, plainTaps, pixels);
    for (const spec of [ZERO, undefined]) {
      const zero = await run(ablated, ablatedTaps, pixels, spec);
      expect(bitIdentical(zero.taps[lastVision(ablatedTaps)]!, base.taps[lastVision(plainTaps)]!)).toBe(true);
      expect(bitIdentical(zero.imageFeatures!, base.imageFeatures!)).toBe(true);
      expect(bitIdentical(zero.fullLogits!, base.fullLogits!)).toBe(true);
    }
  });

  it('vision: patches blocked from every other token → one patch\'s pixels move only its own outputs', async () => {
    const measure = async (spec?: AblationSpec) => {
      const a = await run(ablated, ablatedTaps, pixels, spec);
      const b = await run(ablated, ablatedTaps, edited, spec);
      // Hidden state rows: CLS at 0, patch p at 1 + p; image_features rows: patch p at p.
      const ha = rowsExcept(a.taps[lastVision(ablatedTaps)]!, 1 + patchIndex);
      const hb = rowsExcept(b.taps[lastVision(ablatedTaps)]!, 1 + patchIndex);
      // CLS is a query too and still sees every patch: compare patch rows only (drop row 0).
      const hidden = a.taps[lastVision(ablatedTaps)]!.shape.at(-1)!; // the vision width (row 0 is CLS)
      const fa = rowsExcept(a.imageFeatures!, patchIndex);
      const fb = rowsExcept(b.imageFeatures!, patchIndex);
      return {
        otherPatches: maxAbsDiff(ha.others.subarray(hidden), hb.others.subarray(hidden)),
        otherFeatures: maxAbsDiff(fa.others, fb.others),
        ownPatch: maxAbsDiff(ha.row, hb.row),
      };
    };
    const masked = await measure(ISOLATE_PATCHES);
    const open = await measure();
    console.log('vision patch isolation (max |Δ|):', { masked, unmasked: open });
    expect(masked.otherPatches).toBeLessThanOrEqual(1e-6);
    expect(masked.otherFeatures).toBeLessThanOrEqual(1e-6);
    expect(masked.ownPatch).toBeGreaterThan(1e-2); // the edit itself is visible
    expect(open.otherPatches).toBeGreaterThan(1e-3);
    // The projector damps it (untrained micro-llava: ~7e-5), still 70× the equality bound; masked it is 0.
    expect(open.otherFeatures).toBeGreaterThan(1e-5);
  });

  it('LLM: text → image blocked → text positions do not depend on the image (prefill and greedy decoding)', async () => {
    const textPositions = Array.from(ref.input_ids!.data as BigInt64Array, Number).flatMap((id, i) => (id === 4 ? [] : [i]));
    const vocab = 76;
    const textLogits = (r: ForwardResult) => {
      const all = toFloat32(r.fullLogits!);
      return Float32Array.from(textPositions.flatMap((p) => Array.from(all.subarray(p * vocab, (p + 1) * vocab))));
    };
    const a = await run(ablated, ablatedTaps, pixels, TEXT_BLIND, { maxNewTokens: 4 });
    const b = await run(ablated, ablatedTaps, blank, TEXT_BLIND, { maxNewTokens: 4 });
    const oa = await run(ablated, ablatedTaps, pixels, undefined, { maxNewTokens: 4 });
    const ob = await run(ablated, ablatedTaps, blank, undefined, { maxNewTokens: 4 });
    const masked = { last: maxAbsDiff(a.lastLogits, b.lastLogits), textPositions: maxAbsDiff(textLogits(a), textLogits(b)) };
    const open = { last: maxAbsDiff(oa.lastLogits, ob.lastLogits), textPositions: maxAbsDiff(textLogits(oa), textLogits(ob)) };
    console.log('LLM text→image block (max |Δ| image vs blank):', { masked, unmasked: open, greedy: JSON.stringify({ masked: [a.generated, b.generated], unmasked: [oa.generated, ob.generated] }) });
    expect(masked.last).toBeLessThanOrEqual(1e-5);
    expect(masked.textPositions).toBeLessThanOrEqual(1e-5);
    expect(open.last).toBeGreaterThan(1e-3);
    // Generated tokens are text queries too (their bias rows are built per step): same continuation.
    expect(a.generated).toEqual(b.generated);
    // Image-token positions still see the image: their logits differ.
    expect(maxAbsDiff(toFloat32(a.fullLogits!), toFloat32(b.fullLogits!))).toBeGreaterThan(1e-3);
  });

  it('refuses edits the session cannot apply, and token ablation', async () => {
    await expect(run(plain, plainTaps, pixels, TEXT_BLIND)).rejects.toThrow(/no attention-bias inputs/);
    const folder = openModelFolder(MODEL_DIR);
    await expect(resolveTaps(folder, TAPS, { cacheRoot: tempDir(), modelHash: 'x' }, AblationSpec.parse({ edits: [{ op: 'zero', part: 'llm', tokens: { kind: 'image' } }] }))).rejects.toThrow(/token ablation \(zero\) is not implemented/);
    await expect(run(ablated, ablatedTaps, pixels, AblationSpec.parse({ edits: [{ op: 'block', part: 'vision', layers: [3], queries: { kind: 'all' }, keys: { kind: 'all' } }] }))).rejects.toThrow(/vision layer\(s\) 3 are not in the model's graph/);
  });
});

describe('vlm-forward job with an ablation spec', () => {
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

  it('stores the spec with the run, and text → image blocking makes the answers image-independent', async () => {
    const spec = { limit: 2, ablation: TEXT_BLIND };
    const withImage = await run({ ...spec, image: 'image' });
    const blind = await run({ ...spec, image: 'blank' });
    expect(withImage.run).toMatchObject({ status: 'done', done: 2, failed: 0 });
    expect((withImage.run.spec as { ablation?: unknown }).ablation).toEqual(TEXT_BLIND);
    const probs = (r: typeof withImage) => r.results.map((x) => x.values.choiceProbs as Record<string, number>);
    const a = probs(withImage);
    const b = probs(blind);
    for (let i = 0; i < a.length; i++) for (const k of Object.keys(a[i]!)) expect(Math.abs(a[i]![k]! - b[i]![k]!)).toBeLessThan(1e-5);
  });
});

/**
 * PyTorch reference (tools/micro-vlm/ablation_fixtures.py, from the trained checkpoint): the
 * exact biases it used must equal the mask builder's, and the engine's ablated outputs PyTorch's
 * `attn_bias` forward. Skipped, saying so, until those fixtures have been generated.
 */
const ABLATION_FIXTURES = process.env.LOUPE_ABLATION_FIXTURES ?? join(FIXTURE_DIR, 'ablation.json');
interface AblationFixture {
  name: string;
  file: string;
  source_case: string;
  spec: unknown;
}
describe.skipIf(!existsSync(ABLATION_FIXTURES))(`ablated outputs equal PyTorch (${ABLATION_FIXTURES})`, () => {
  const index = existsSync(ABLATION_FIXTURES) ? (JSON.parse(readFileSync(ABLATION_FIXTURES, 'utf8')) as { cases: AblationFixture[] }) : { cases: [] };
  const tensorsOf = (f: AblationFixture) => {
    const bytes = readFileSync(join(dirname(ABLATION_FIXTURES), f.file));
    return decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
  };
  let compute: ComputeClient;
  let vlm: Vlm;
  let taps: ResolvedTaps;
  const folder = openModelFolder(MODEL_DIR);
  beforeAll(async () => {
    compute = new ComputeClient();
    await compute.init('cpu');
    const all = AblationSpec.parse({ edits: [ZERO.edits[0], ZERO.edits[1]] });
    taps = await resolveTaps(folder, TAPS, { cacheRoot: tempDir(), modelHash: 'ablation-ref' }, all);
    vlm = await Vlm.open(folder, compute, `ablation-ref-${taps.key}`, taps.files);
  });
  afterAll(() => compute?.close());

  it.each(index.cases)('$name: the mask builder gives PyTorch\'s exact biases', (f) => {
    const ref = tensorsOf(f);
    const src = fixtureTensors(fixtureIndex().cases.find((c) => c.name === f.source_case)!);
    const spec = AblationSpec.parse(f.spec);
    const ids = src.input_ids!.data as BigInt64Array;
    const req = ablationRequest(folder, spec, vlm.family.mapTokens(ids), ids.length);
    const vision = attentionBiases(spec, req.vision!.layout, { layers: [0, 1, 2], heads: 4 });
    const llm = attentionBiases(spec, llmLayout({ length: ids.length, promptLength: ids.length, imageTokens: req.llm!.imageTokens }), { layers: [0, 1, 2, 3], heads: 4 });
    const expected = Object.keys(ref).filter((k) => k.startsWith('bias.')).sort();
    expect([...[...vision.keys()].map((l) => `bias.vision.${l}`), ...[...llm.keys()].map((l) => `bias.llm.${l}`)].sort()).toEqual(expected);
    for (const [part, m] of [['vision', vision], ['llm', llm]] as const) {
      for (const [l, b] of m) {
        const r = ref[`bias.${part}.${l}`]!;
        expect(r.shape).toEqual([1, b.heads, b.q, b.k]);
        expect(bitIdentical(b.data, r)).toBe(true);
      }
    }
  });

  it.each(index.cases)('$name: engine logits, image features and vision states equal PyTorch within 1e-4 relative', async (f) => {
    const ref = tensorsOf(f);
    const src = fixtureTensors(fixtureIndex().cases.find((c) => c.name === f.source_case)!);
    const res = await vlm.forwardEncoded(f.source_case, src.input_ids!, src.pixel_values, { visionTaps: [lastVision(taps)], fullLogits: true, ablation: AblationSpec.parse(f.spec) });
    const errors = { logits: relativeError(res.fullLogits!, ref.logits!), image_features: relativeError(res.imageFeatures!, ref.image_features!), [LAST_VISION]: relativeError(res.taps[lastVision(taps)]!, ref[LAST_VISION]!) };
    console.log(`${f.name}: relative error vs PyTorch`, errors);
    for (const [k, e] of Object.entries(errors)) expect(e, k).toBeLessThan(1e-4);
    // Not vacuous: the ablation moved PyTorch's logits well beyond that tolerance.
    expect(relativeError(ref.logits!, src.logits!)).toBeGreaterThan(1e-3);
  });
});
if (!existsSync(ABLATION_FIXTURES)) {
  it.skip(`PyTorch ablation reference: ${ABLATION_FIXTURES} not generated yet — run /usr/bin/python3 tools/micro-vlm/ablation_fixtures.py once the trained checkpoint exists`, () => {});
}
