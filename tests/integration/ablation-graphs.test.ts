/**
 * The attention-bias rewrite run in ORT on every recognised site kind: hand-built graphs
 * (rank-3 Softmax scores, com.microsoft GroupQueryAttention / Attention, ONNX Attention
 * opset 23, layers inside If branches) and the independently exported alt-llava (PyTorch fused
 * MHA: [b·heads, q, k] scores in the vision tower; 5-D [b, kv, group, q, k] GQA scores in the
 * decoder). Zero bias → bit-identical outputs; a bias acts exactly like the model's own mask.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clone, create } from '@bufbuild/protobuf';
import { GraphProtoSchema, TensorProtoSchema, TensorProto_DataType } from 'onnx-buf';
import type { ModelProto } from 'onnx-buf';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { BLOCK_BIAS } from '../../src-shared/ablation/spec.ts';
import { addAttentionBiasInPlace } from '../../src-main/engine/graph/ablation.ts';
import { cloneModel, encodeModel, readModelSync } from '../../src-main/engine/graph/model-proto.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { type AttentionStyle, buildIfModel, buildTransformer } from '../unit/graph/builders.ts';

const opts: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 2, extra: { session: { intra_op: { allow_spinning: '0' } } } };
const S = 5;

async function sessions(model: ModelProto) {
  const dir = mkdtempSync(join(tmpdir(), 'loupe-ablation-'));
  const rewritten = cloneModel(model);
  const info = addAttentionBiasInPlace(rewritten);
  writeFileSync(join(dir, 'plain.onnx'), encodeModel(model));
  writeFileSync(join(dir, 'ablated.onnx'), encodeModel(rewritten));
  return { info, plain: await ort.InferenceSession.create(join(dir, 'plain.onnx'), opts), ablated: await ort.InferenceSession.create(join(dir, 'ablated.onnx'), opts) };
}

const same = (a: ort.Tensor, b: ort.Tensor) => {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  return x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
};
const maxDiff = (a: ort.Tensor, b: ort.Tensor) => (a.data as Float32Array).reduce((m, v, i) => Math.max(m, Math.abs(v - (b.data as Float32Array)[i]!)), 0);
/** Off-diagonal (and, if `causal`, only below the diagonal) blocked: every token sees itself only. */
const selfOnly = (n: number) => Float32Array.from({ length: n * n }, (_, i) => (Math.floor(i / n) === i % n ? 0 : BLOCK_BIAS));

function builtFeeds(style: AttentionStyle | 'if', mask: Float32Array): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt((i * 3) % 16)), [1, S]),
    attention_bias: new ort.Tensor('float32', mask, [S, S]),
  };
  if (style === 'gqa') {
    for (let i = 0; i < 2; i++) for (const kv of ['key', 'value']) feeds[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, 1, 0, 8]);
    feeds.seqlens_k = new ort.Tensor('int32', Int32Array.of(S - 1), [1]);
    feeds.total_seq_len = new ort.Tensor('int32', Int32Array.of(S), []);
  }
  if (style === 'if') feeds.use_cache_branch = new ort.Tensor('bool', Uint8Array.of(0), [1]);
  return feeds;
}

/** The builders' graphs, made runnable: ORT's contrib Attention CPU kernel crashes without its QKV `bias` input; the If condition must be bool. */
function built(style: AttentionStyle | 'if'): ModelProto {
  if (style === 'if') {
    const m = buildIfModel();
    const cond = m.graph!.input.find((v) => v.name === 'use_cache_branch')!;
    if (cond.type?.value.case === 'tensorType') cond.type.value.value.elemType = TensorProto_DataType.BOOL;
    // Both branches hold the layers (as in Optimum merged decoders), so both must be rewritten.
    const [then, other] = m.graph!.node[0]!.attribute;
    other!.g = clone(GraphProtoSchema, then!.g!);
    other!.g.name = 'else';
    return m;
  }
  const m = buildTransformer({ attention: style, layers: 2 });
  if (style === 'contrib') {
    for (const n of m.graph!.node.filter((x) => x.opType === 'Attention')) n.input[2] = 'qkv_bias';
    m.graph!.initializer.push(create(TensorProtoSchema, { name: 'qkv_bias', dims: [24n], dataType: TensorProto_DataType.FLOAT, floatData: Array.from({ length: 24 }, (_, i) => i / 100) }));
  }
  return m;
}

const biasFeeds = (layers: Iterable<number>, data: (layer: number) => Float32Array, heads = 1): Record<string, ort.Tensor> =>
  Object.fromEntries([...layers].map((l) => [`loupe_attn_bias.${l}`, new ort.Tensor('float32', data(l), [1, heads, S, S])]));

describe('bias rewrite on hand-built graphs, run in ORT', () => {
  for (const style of ['softmax', 'onnx-attention', 'gqa', 'contrib', 'if'] as const) {
    it(`${style}: zero bias is bit-identical; a bias acts like the model's own additive mask`, async () => {
      const model = built(style);
      const { info, plain, ablated } = await sessions(model);
      try {
        const base = await plain.run(builtFeeds(style, new Float32Array(S * S)));
        const zero = await ablated.run({ ...builtFeeds(style, new Float32Array(S * S)), ...biasFeeds(info.inputs.keys(), () => new Float32Array(S * S)) });
        expect(same(zero.logits!, base.logits!)).toBe(true);
        const blocked = await ablated.run({ ...builtFeeds(style, new Float32Array(S * S)), ...biasFeeds(info.inputs.keys(), () => selfOnly(S)) });
        expect((blocked.logits!.data as Float32Array).every(Number.isFinite)).toBe(true);
        expect(maxDiff(blocked.logits!, base.logits!)).toBeGreaterThan(1e-4);
        if (style === 'softmax' || style === 'onnx-attention' || style === 'if') {
          // These graphs add their `attention_bias` input (×0.25) to the scores: the same block through it must agree.
          const own = await plain.run(builtFeeds(style, Float32Array.from(selfOnly(S), (v) => v * 4)));
          expect(maxDiff(blocked.logits!, own.logits!)).toBeLessThan(1e-5);
        }
      } finally {
        await Promise.all([plain.release(), ablated.release()]);
      }
    });
  }

  it('gqa: a blocked edge gets probability 0 (output_qk) and its row still sums to 1', async () => {
    const { info, ablated, plain } = await sessions(buildTransformer({ attention: 'gqa', layers: 1, gqaWithOutputQk: true }));
    try {
      const bias = new Float32Array(S * S);
      bias[(S - 1) * S + 0] = BLOCK_BIAS; // last query → first key
      const out = await ablated.run({ ...builtFeeds('gqa', new Float32Array(S * S)), ...biasFeeds(info.inputs.keys(), () => bias) });
      const p = out['/model/layers.0/attn/qk']!.data as Float32Array;
      const row = p.subarray((S - 1) * S, S * S);
      expect(row[0]).toBe(0);
      expect(row.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
      const before = (await plain.run(builtFeeds('gqa', new Float32Array(S * S))))['/model/layers.0/attn/qk']!.data as Float32Array;
      expect(before[(S - 1) * S]).toBeGreaterThan(0.01);
    } finally {
      await Promise.all([plain.release(), ablated.release()]);
    }
  });
});

describe('bias rewrite on the alt exporter (3-D fused-MHA and 5-D GQA scores)', () => {
  const dir = join(REPO_ROOT, 'tests', 'fixtures', 'alt-llava', 'model', 'onnx');

  it('vision ([b·heads, q, k]): per-head bias lands on the right head; zero is bit-identical; patch isolation holds', async () => {
    const { info, plain, ablated } = await sessions(readModelSync(join(dir, 'vision_encoder.onnx')));
    expect(info.sites.every((s) => s.how.startsWith('reshape rank-3'))).toBe(true);
    try {
      const n = 65; // CLS + 8×8 patches (32 px / 4 px)
      const px = (edit: boolean) => {
        const d = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37));
        if (edit) for (let ch = 0; ch < 3; ch++) for (let y = 8; y < 12; y++) for (let x = 12; x < 16; x++) d[(ch * 32 + y) * 32 + x] = 2;
        return { pixel_values: new ort.Tensor('float32', d, [1, 3, 32, 32]) };
      };
      const zeros = Object.fromEntries([...info.inputs.values()].map((name) => [name, new ort.Tensor('float32', new Float32Array(n * n), [1, 1, n, n])]));
      const base = await plain.run(px(false));
      expect(same((await ablated.run({ ...px(false), ...zeros })).image_features!, base.image_features!)).toBe(true);
      // Patches see only themselves (CLS is untouched): patch (2, 3) = index 19 changes, no other row may.
      const iso = Float32Array.from({ length: n * n }, (_, i) => {
        const q = Math.floor(i / n);
        const k = i % n;
        return q > 0 && k !== q ? BLOCK_BIAS : 0;
      });
      // Per-head tensor with the mask on every head but head 2, then the same on all heads: only the latter isolates.
      const feeds = (heads: number[]) => Object.fromEntries([...info.inputs.values()].map((name) => {
        const d = new Float32Array(4 * n * n);
        for (const h of heads) d.set(iso, h * n * n);
        return [name, new ort.Tensor('float32', d, [1, 4, n, n])];
      }));
      const rowsDiff = async (heads: number[]) => {
        const a = (await ablated.run({ ...px(false), ...feeds(heads) })).image_features!.data as Float32Array;
        const b = (await ablated.run({ ...px(true), ...feeds(heads) })).image_features!.data as Float32Array;
        const hidden = a.length / 64;
        let other = 0;
        for (let r = 0; r < 64; r++) if (r !== 19) for (let j = 0; j < hidden; j++) other = Math.max(other, Math.abs(a[r * hidden + j]! - b[r * hidden + j]!));
        return other;
      };
      expect(await rowsDiff([0, 1, 2, 3])).toBeLessThanOrEqual(1e-6);
      expect(await rowsDiff([0, 1, 3])).toBeGreaterThan(1e-4);
    } finally {
      await Promise.all([plain.release(), ablated.release()]);
    }
  });

  it('decoder ([b, kv, group, q, k]): zero is bit-identical; blocking a head through the bias differs from blocking another', async () => {
    const { info, plain, ablated } = await sessions(readModelSync(join(dir, 'decoder_model_merged.onnx')));
    try {
      const T = 6;
      const feeds: Record<string, ort.Tensor> = {
        inputs_embeds: new ort.Tensor('float32', Float32Array.from({ length: T * 64 }, (_, i) => Math.cos(i * 0.21)), [1, T, 64]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, i) => BigInt(i)), [1, T]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(T).fill(1n), [1, T]),
      };
      for (const name of plain.inputNames.filter((x) => x.startsWith('past_key_values.'))) feeds[name] = new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 16]);
      const bias = (head: number | 'all') => Object.fromEntries([...info.inputs.values()].map((name) => {
        const d = new Float32Array(4 * T * T);
        for (let h = 0; h < 4; h++) if (head === 'all' || head === h) for (let q = 1; q < T; q++) d[(h * T + q) * T] = BLOCK_BIAS; // queries 1.. → key 0
        return [name, new ort.Tensor('float32', d, [1, 4, T, T])];
      }));
      const base = await plain.run(feeds);
      const zero = await ablated.run({ ...feeds, ...Object.fromEntries([...info.inputs.values()].map((name) => [name, new ort.Tensor('float32', new Float32Array(T * T), [1, 1, T, T])])) });
      expect(same(zero.logits!, base.logits!)).toBe(true);
      const h0 = await ablated.run({ ...feeds, ...bias(0) });
      const h3 = await ablated.run({ ...feeds, ...bias(3) });
      const all = await ablated.run({ ...feeds, ...bias('all') });
      expect(maxDiff(h0.logits!, base.logits!)).toBeGreaterThan(1e-4);
      expect(maxDiff(h0.logits!, h3.logits!)).toBeGreaterThan(1e-4);
      // Position 0 attends only to itself anyway (causal): its logits never move.
      const row0 = (t: ort.Tensor) => new ort.Tensor('float32', (t.data as Float32Array).slice(0, 100), [100]);
      expect(same(row0(all.logits!), row0(base.logits!))).toBe(true);
    } finally {
      await Promise.all([plain.release(), ablated.release()]);
    }
  });
});
