/**
 * Built-in taps on the shipped micro-llava, checked against PyTorch.
 *
 * The catalogue finds the residual stream per layer, the attention probabilities and the
 * final norm in vision_encoder.onnx and decoder_model_merged.onnx; tappedModelPath writes
 * copies exposing them (into a temp copy of the model folder, never into resources/); ORT
 * (CPU) runs them and the taps are compared with tools/micro-vlm/fixtures.py's reference
 * internals. The decoder is fed the fixture's own image features scattered into the
 * image-token rows, so vision and text are checked independently.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { relativeError } from '../helpers/reference.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { encodeModel, readModelSync } from '../../src-main/engine/graph/model-proto.ts';
import { type TapCatalogue, buildCatalogue } from '../../src-main/engine/graph/catalogue.ts';
import { tappedModelPath } from '../../src-main/engine/graph/taps.ts';
import { type AttentionStyle, buildTransformer } from '../unit/graph/builders.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'resources', 'models', 'micro-llava');
const FIXTURES = join(ROOT, 'tests', 'fixtures', 'micro-llava');
const TOLERANCE = 1e-4;
const TIMING_RUNS = 20;

interface Case {
  name: string;
  file: string;
  num_images: number;
  image_token_runs: [number, number][];
}
const cases: { text_layers: number; cases: Case[] } = JSON.parse(readFileSync(join(FIXTURES, 'cases.json'), 'utf8'));
const config = JSON.parse(readFileSync(join(MODEL, 'config.json'), 'utf8'));
const kvHeads: number = config.text_config.num_key_value_heads;
const headDim: number = config.text_config.head_dim;

// No thread spinning: four sessions alternate on a small shared machine, and a pool still
// spinning after its run would steal the cores of the next session and skew the timings.
const opts: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 2, extra: { session: { intra_op: { allow_spinning: '0' } } } };
let work: string;
let visionCat: TapCatalogue;
let decoderCat: TapCatalogue;
const s: Record<'vision' | 'decoder' | 'embed' | 'visionTapped' | 'decoderTapped', ort.InferenceSession> = {} as never;
/** Worst relative error per tap name over all cases, printed at the end. */
const worst = new Map<string, number>();

function load(name: string): Record<string, HostTensor> {
  return decodeSafetensors(new Uint8Array(readFileSync(join(FIXTURES, name)))).tensors;
}

function check(tap: string, got: ort.Tensor | undefined, want: HostTensor | undefined): void {
  expect(got, `tap ${tap} missing from the outputs`).toBeDefined();
  expect(want, `fixture lacks ${tap}`).toBeDefined();
  expect(got!.dims, tap).toEqual(want!.shape);
  const e = relativeError(got!.data as Float32Array, want!.data as Float32Array);
  worst.set(tap, Math.max(worst.get(tap) ?? 0, e));
  expect(e, `${tap}: max|a-b|/max|b|`).toBeLessThan(TOLERANCE);
}

/** Every row (last axis) sums to 1; with `causal`, entries above the diagonal are 0. */
function checkProbabilities(name: string, t: ort.Tensor, causal: boolean): void {
  const dims = t.dims as number[];
  const [q, k] = [dims[dims.length - 2]!, dims[dims.length - 1]!];
  const d = t.data as Float32Array;
  let maxRowErr = 0;
  let maxAbove = 0;
  for (let r = 0; r < d.length / k; r++) {
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const v = d[r * k + j]!;
      expect(v).toBeGreaterThanOrEqual(0);
      sum += v;
      if (causal && j > r % q) maxAbove = Math.max(maxAbove, v);
    }
    maxRowErr = Math.max(maxRowErr, Math.abs(sum - 1));
  }
  expect(maxRowErr, `${name}: rows sum to 1`).toBeLessThan(1e-5);
  if (causal) expect(maxAbove, `${name}: causal zeros above the diagonal`).toBe(0);
}

function decoderFeeds(t: Record<string, HostTensor>, c: Case, embeds: Float32Array): Record<string, ort.Tensor> {
  const seq = t.input_ids!.shape[1]!;
  const hidden = embeds.length / seq;
  const merged = new Float32Array(embeds);
  if (c.image_token_runs.length) {
    const feats = t.image_features!.data as Float32Array;
    let row = 0;
    for (const [start, end] of c.image_token_runs) for (let p = start; p < end; p++, row++) merged.set(feats.subarray(row * hidden, (row + 1) * hidden), p * hidden);
    expect(row * hidden).toBe(feats.length);
  }
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: new ort.Tensor('float32', merged, [1, seq, hidden]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(seq).fill(1n), [1, seq]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: seq }, (_, i) => BigInt(i)), [1, seq]),
  };
  for (let i = 0; i < cases.text_layers; i++) {
    for (const kv of ['key', 'value']) feeds[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
  }
  return feeds;
}

function allTaps(cat: TapCatalogue): string[] {
  return [...Object.values(cat.hiddenStates), ...cat.layers.flatMap((l) => (l.attention ? [l.attention.tensor] : [])), ...(cat.finalNorm ? [cat.finalNorm] : [])];
}

async function embedIds(ids: HostTensor): Promise<Float32Array> {
  const { inputs_embeds } = await s.embed.run({ input_ids: new ort.Tensor('int64', ids.data as BigInt64Array, ids.shape) });
  return inputs_embeds!.data as Float32Array;
}

beforeAll(async () => {
  // A temp copy of the model folder: tapped files are written next to the originals.
  work = mkdtempSync(join(tmpdir(), 'loupe-graph-taps-'));
  mkdirSync(join(work, 'onnx'));
  for (const f of readdirSync(join(MODEL, 'onnx'))) copyFileSync(join(MODEL, 'onnx', f), join(work, 'onnx', f));
  const visionPath = join(work, 'onnx', 'vision_encoder.onnx');
  const decoderPath = join(work, 'onnx', 'decoder_model_merged.onnx');
  visionCat = buildCatalogue(readModelSync(visionPath), { label: 'vision_encoder.onnx' });
  decoderCat = buildCatalogue(readModelSync(decoderPath), { label: 'decoder_model_merged.onnx' });
  s.vision = await ort.InferenceSession.create(visionPath, opts);
  s.decoder = await ort.InferenceSession.create(decoderPath, opts);
  s.embed = await ort.InferenceSession.create(join(work, 'onnx', 'embed_tokens.onnx'), opts);
  s.visionTapped = await ort.InferenceSession.create(await tappedModelPath(visionPath, allTaps(visionCat)), opts);
  s.decoderTapped = await ort.InferenceSession.create(await tappedModelPath(decoderPath, allTaps(decoderCat)), opts);
});

afterAll(async () => {
  await Promise.all(Object.values(s).map((x) => x?.release()));
  if (work) rmSync(work, { recursive: true, force: true });
  if (worst.size) {
    console.log('graph-taps: worst max|a-b|/max|b| per tap over all cases');
    for (const [k, v] of [...worst].sort()) console.log(`  ${k.padEnd(26)} ${v.toExponential(2)}`);
  }
});

describe('tap catalogue on micro-llava', () => {
  it('finds every vision layer present (the export drops layers after vision_feature_layer) and each decoder layer', () => {
    const visionLayers: number = config.vision_config.num_hidden_layers;
    const kept = visionLayers + 1 + config.vision_feature_layer; // hidden_states index the projector reads
    expect(visionCat.layers.map((l) => l.index)).toEqual(Array.from({ length: kept }, (_, i) => i));
    expect(Object.keys(visionCat.hiddenStates)).toEqual(Array.from({ length: kept + 1 }, (_, k) => `hidden_states.${k}`));
    expect(visionCat.finalNorm).toBeUndefined();
    expect(decoderCat.layers.map((l) => l.index)).toEqual(Array.from({ length: cases.text_layers }, (_, i) => i));
    expect(decoderCat.embeddingOutput).toBe('inputs_embeds');
    expect(decoderCat.finalNorm).toBeDefined();
    for (const cat of [visionCat, decoderCat]) for (const l of cat.layers) expect(l.attention?.kind).toBe('softmax');
  });

  it('reuses the cached tapped file and keys it on the tap set', async () => {
    const path = join(work, 'onnx', 'vision_encoder.onnx');
    const a = await tappedModelPath(path, allTaps(visionCat));
    const mtime = statSync(a).mtimeMs;
    expect(await tappedModelPath(path, [...allTaps(visionCat)].reverse())).toBe(a);
    expect(statSync(a).mtimeMs).toBe(mtime);
    expect(a).toMatch(/onnx[/\\]vision_encoder\.loupe-taps-[0-9a-f]{16}\.onnx$/);
    const b = await tappedModelPath(path, [visionCat.embeddingOutput]);
    expect(b).not.toBe(a);
    expect(readdirSync(join(work, 'onnx')).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  for (const c of cases.cases) {
    it(`${c.name}: hidden states, final norm and attention match PyTorch`, async () => {
      const t = load(c.file);
      if (c.num_images) {
        const out = await s.visionTapped.run({ pixel_values: new ort.Tensor('float32', t.pixel_values!.data as Float32Array, t.pixel_values!.shape) });
        for (const [hs, tensor] of Object.entries(visionCat.hiddenStates)) check(`vision.${hs}`, out[tensor], t[`vision.${hs}`]);
        for (const l of visionCat.layers) checkProbabilities(`vision layer ${l.index}`, out[l.attention!.tensor]!, false);
      }
      const out = await s.decoderTapped.run(decoderFeeds(t, c, await embedIds(t.input_ids!)));
      for (const [hs, tensor] of Object.entries(decoderCat.hiddenStates)) check(`text.${hs}`, out[tensor], t[`text.${hs}`]);
      check('text.final_norm', out[decoderCat.finalNorm!], t['text.final_norm']);
      check('logits (tapped model)', out.logits, t.logits);
      for (const l of decoderCat.layers) checkProbabilities(`text layer ${l.index}`, out[l.attention!.tensor]!, true);
    });
  }

  it('a wrong reference is caught (the comparison can fail)', async () => {
    const c = cases.cases.find((x) => x.num_images > 0)!;
    const t = load(c.file);
    const out = await s.decoderTapped.run(decoderFeeds(t, c, await embedIds(t.input_ids!)));
    // hidden_states.2 compared against hidden_states.1's reference must fail.
    expect(relativeError(out[decoderCat.hiddenStates['hidden_states.2']!]!.data as Float32Array, t['text.hidden_states.1']!.data as Float32Array)).toBeGreaterThan(TOLERANCE);
  });

  it('prints the overhead of all built-in taps (vision + decoder forward, median of 20)', async () => {
    const c = cases.cases.find((x) => x.num_images > 0)!;
    const t = load(c.file);
    const px = new ort.Tensor('float32', t.pixel_values!.data as Float32Array, t.pixel_values!.shape);
    const feeds = decoderFeeds(t, c, await embedIds(t.input_ids!));
    const once = async (vision: ort.InferenceSession, decoder: ort.InferenceSession) => {
      const t0 = performance.now();
      await vision.run({ pixel_values: px });
      const t1 = performance.now();
      await decoder.run(feeds);
      return [t1 - t0, performance.now() - t1] as const;
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    // Alternate plain and tapped runs so background load on the shared machine hits both alike.
    const plainV: number[] = [], plainD: number[] = [], tapV: number[] = [], tapD: number[] = [];
    for (let i = 0; i < TIMING_RUNS + 2; i++) {
      const [pv, pd] = await once(s.vision, s.decoder);
      const [tv, td] = await once(s.visionTapped, s.decoderTapped);
      if (i < 2) continue; // warm-up
      plainV.push(pv);
      plainD.push(pd);
      tapV.push(tv);
      tapD.push(td);
    }
    const p = median(plainV.map((v, i) => v + plainD[i]!));
    const q = median(tapV.map((v, i) => v + tapD[i]!));
    console.log(
      `graph-taps per-part medians: vision ${median(plainV).toFixed(2)} → ${median(tapV).toFixed(2)} ms, decoder ${median(plainD).toFixed(2)} → ${median(tapD).toFixed(2)} ms`,
    );
    const nTaps = allTaps(visionCat).length + allTaps(decoderCat).length;
    console.log(`graph-taps overhead: plain ${p.toFixed(2)} ms, tapped (${nTaps} taps) ${q.toFixed(2)} ms, ratio ${(q / p).toFixed(2)} (median of ${TIMING_RUNS}, seq ${t.input_ids!.shape[1]})`);
  });
});

describe('attention taps on hand-built graphs run in ORT', () => {
  const cases: [AttentionStyle, boolean][] = [['softmax', false], ['gqa', true], ['onnx-attention', false]];
  for (const [style, causal] of cases) {
    it(`${style}: the tap is a probability and the model's own outputs are unchanged`, async () => {
      const S = 5;
      const path = join(work, `${style}.onnx`);
      const model = buildTransformer({ attention: style, layers: 2 });
      writeFileSync(path, encodeModel(model));
      const cat = buildCatalogue(model);
      expect(cat.layers.map((l) => l.attention?.kind)).toEqual(Array(2).fill(style === 'gqa' ? 'gqa' : style));
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt((i * 3) % 16)), [1, S]),
        attention_bias: new ort.Tensor('float32', new Float32Array(S * S), [S, S]),
      };
      if (style === 'gqa') {
        for (let i = 0; i < 2; i++) for (const kv of ['key', 'value']) feeds[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, 1, 0, 8]);
        feeds.seqlens_k = new ort.Tensor('int32', Int32Array.of(S - 1), [1]);
        feeds.total_seq_len = new ort.Tensor('int32', Int32Array.of(S), []);
      }
      const plain = await ort.InferenceSession.create(path, opts);
      const tapped = await ort.InferenceSession.create(await tappedModelPath(path, allTaps(cat)), opts);
      try {
        const a = await plain.run(feeds);
        const b = await tapped.run(feeds);
        // GQA takes another kernel path when output_qk is requested: equal up to float rounding.
        expect(relativeError(b.logits!.data as Float32Array, a.logits!.data as Float32Array)).toBeLessThan(1e-5);
        for (const l of cat.layers) {
          const p = b[l.attention!.tensor]!;
          expect(p.dims.slice(-2)).toEqual([S, S]);
          checkProbabilities(`${style} layer ${l.index}`, p, causal);
        }
        for (const t of Object.values(cat.hiddenStates)) expect(b[t]!.dims).toEqual([1, S, 8]);
      } finally {
        await Promise.all([plain.release(), tapped.release()]);
      }
    });
  }
});
