/**
 * Selective capture ops on hand-built tensors whose values are their own flat index, so every
 * expected output is read off by hand: K/V rows and heads, hidden-state rows, attention rows
 * and heads, head sums and top-k (ties to the lower key). And the size estimate equals the
 * bytes the blob store writes for the same ops.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyCapture, captureShape, captureViews } from '../../src-shared/tensor/capture-ops.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { storeCapture } from '../../src-main/compute/capture/store-capture.ts';
import { estimateItemBytes, keptLayers, planCapture, withFp16Sources } from '../../src-main/jobs/capture-plan.ts';
import { f32ToF16 } from '../../src-shared/tensor/half.ts';
import { TapSelection } from '../../src-shared/jobs/specs.ts';

const iota = (shape: number[]): HostTensor => ({ dtype: 'float32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i) });
const vals = (t: HostTensor | undefined) => Array.from(t!.data as Float32Array | Int32Array);

describe('capture ops', () => {
  it('fp16 sources (the runtime converted them) are gathered as bits: equal to converting the float32 source', () => {
    const f32 = iota([1, 3, 4, 2]);
    const f16: HostTensor = { dtype: 'float16', shape: f32.shape, data: f32ToF16(f32.data as Float32Array) };
    const op = { name: 'k', source: 'present.0.key', layout: 'kv' as const, heads: [2, 0], rows: [3, 1] };
    const a = applyCapture(op, f16, 'float16').k!;
    expect(a.dtype).toBe('float16');
    expect(Array.from(a.data as Uint16Array)).toEqual(Array.from(applyCapture(op, f32, 'float16').k!.data as Uint16Array));
    const attn: HostTensor = { dtype: 'float16', shape: [1, 2, 3, 3], data: f32ToF16(Float32Array.from({ length: 18 }, (_, i) => i / 18)) };
    const full = applyCapture({ name: 'a', source: 's', layout: 'attention', heads: [1], rows: [2] }, attn, 'float16').a!;
    expect(Array.from(full.data as Uint16Array)).toEqual(Array.from((attn.data as Uint16Array).subarray(15, 18)));
    // Unselected raw/hidden sources are stored as they came (no copy, no conversion).
    expect(applyCapture({ name: 'r', source: 's', layout: 'raw' }, attn, 'float16').r!.data).toBe(attn.data);
  });

  it('rows in runs (0,1,2 · 5,6 · 3) are gathered as a row-by-row copy would, fp32 and fp16, fp32 and fp16 sources', () => {
    const rows = [0, 1, 2, 5, 6, 3];
    const src = iota([1, 2, 8, 3]); // kv: 2 heads × 8 positions × 3
    const want = [1, 0].flatMap((h) => rows.flatMap((r) => [0, 1, 2].map((x) => (h * 8 + r) * 3 + x)));
    const op = { name: 'k', source: 's', layout: 'kv' as const, heads: [1, 0], rows };
    expect(vals(applyCapture(op, src, 'float32').k)).toEqual(want);
    const halves = Array.from(f32ToF16(Float32Array.from(want)));
    expect(Array.from(applyCapture(op, src, 'float16').k!.data as Uint16Array)).toEqual(halves);
    const src16: HostTensor = { dtype: 'float16', shape: src.shape, data: f32ToF16(src.data as Float32Array) };
    expect(Array.from(applyCapture(op, src16, 'float16').k!.data as Uint16Array)).toEqual(halves);
  });

  it('captureViews: fp16 sources in shared memory become views of their runs, byte-equal to the gathered copy; other memory is gathered', () => {
    const f32 = iota([1, 2, 8, 3]);
    const bits = f32ToF16(f32.data as Float32Array);
    const shared = new Uint16Array(new SharedArrayBuffer(bits.byteLength));
    shared.set(bits);
    const src: HostTensor = { dtype: 'float16', shape: f32.shape, data: shared };
    for (const op of [
      { name: 'k', source: 's', layout: 'kv' as const, heads: [1, 0], rows: [0, 1, 2, 5, 6, 3] },
      { name: 'k', source: 's', layout: 'kv' as const },
      { name: 'k', source: 's', layout: 'raw' as const },
    ]) {
      const views = captureViews(op, src, 'float16')!;
      expect(views.every((v) => v.buffer === shared.buffer)).toBe(true); // no copy
      const joined = views.flatMap((v) => Array.from(new Uint16Array(v.buffer, v.byteOffset, v.byteLength / 2)));
      expect(joined).toEqual(Array.from(applyCapture(op, src, 'float16').k!.data as Uint16Array));
    }
    expect(captureViews({ name: 'k', source: 's', layout: 'kv' }, { ...src, data: bits }, 'float16')).toBeNull(); // not shared: gathered
    expect(captureViews({ name: 'k', source: 's', layout: 'kv' }, src, 'float32')).toBeNull();
    expect(() => captureViews({ name: 'k', source: 's', layout: 'kv', rows: [8] }, src, 'float16')).toThrow(/position 8 is outside 0\.\.7/);
  });

  it('withFp16Sources: ops read the runtime\'s fp16 copies where the graph has them, and only those are fetched', () => {
    const plan = {
      visionFetches: ['v.h0'],
      decoderFetches: ['present.0.key', 'h3'],
      ops: [
        { name: 'projector', source: 'image_features', layout: 'raw' as const },
        { name: 'vision.hidden_states.0', source: 'v.h0', layout: 'raw' as const },
        { name: 'image_kv.0.key', source: 'present.0.key', layout: 'kv' as const, rows: [1] },
        { name: 'text.attentions.3', source: 'h3', layout: 'attention' as const, attention: { mode: 'topk' as const, k: 2 } },
      ],
    };
    const out = withFp16Sources(plan, { image_features: 'loupe_fp16:image_features', 'v.h0': 'loupe_fp16:v.h0', 'present.0.key': 'loupe_fp16:present.0.key' });
    expect(out.ops.map((o) => o.source)).toEqual(['loupe_fp16:image_features', 'loupe_fp16:v.h0', 'loupe_fp16:present.0.key', 'h3']);
    expect(out.visionFetches.sort()).toEqual(['loupe_fp16:image_features', 'loupe_fp16:v.h0']);
    expect(out.decoderFetches.sort()).toEqual(['h3', 'loupe_fp16:present.0.key']);
    expect(withFp16Sources(plan, {})).toBe(plan);
  });

  it('K/V [1, 3 heads, 4 positions, 2 dims]: heads 2,0 at positions 3,1', () => {
    const out = applyCapture({ name: 'k', source: 'present.0.key', layout: 'kv', heads: [2, 0], rows: [3, 1] }, iota([1, 3, 4, 2]), 'float32');
    expect(out.k!.shape).toEqual([2, 2, 2]);
    // head h, position p starts at (h·4 + p)·2: (2,3)→22, (2,1)→18, (0,3)→6, (0,1)→2
    expect(vals(out.k)).toEqual([22, 23, 18, 19, 6, 7, 2, 3]);
  });

  it('hidden [1, 5, 3]: rows 4 and 0, stored fp16', () => {
    const out = applyCapture({ name: 'h', source: 'x', layout: 'hidden', rows: [4, 0] }, iota([1, 5, 3]), 'float16');
    expect(out.h!.dtype).toBe('float16');
    // 12, 13, 14, 0, 1, 2 as halves: 12 = 0x4a00, 13 = 0x4a80, 14 = 0x4b00, 0, 1 = 0x3c00, 2 = 0x4000
    expect(Array.from(out.h!.data as Uint16Array)).toEqual([0x4a00, 0x4a80, 0x4b00, 0, 0x3c00, 0x4000]);
  });

  it('attention [1, 2 heads, 3 q, 3 k] from a [heads, q, k] export: head sum and top-2 of row 1', () => {
    const src: HostTensor = { dtype: 'float32', shape: [2, 3, 3], data: Float32Array.from([0.1, 0.6, 0.3, 0.5, 0.2, 0.3, 0.3, 0.3, 0.4, 0, 1, 0, 0.2, 0.2, 0.6, 0.5, 0.5, 0]) };
    const sum = applyCapture({ name: 'a', source: 's', layout: 'attention', attentionHeads: 2, rows: [1], attention: { mode: 'headsum' } }, src, 'float32');
    expect(sum.a!.shape).toEqual([1, 1, 1, 3]);
    expect(vals(sum.a).map((v) => +v.toFixed(6))).toEqual([0.7, 0.4, 0.9]); // row 1 of head 0 + row 1 of head 1
    const top = applyCapture({ name: 'a', source: 's', layout: 'attention', attentionHeads: 2, rows: [1, 2], attention: { mode: 'topk', k: 2 } }, src, 'float32');
    expect(top['a.topk_index']!.shape).toEqual([1, 2, 2, 2]);
    // head 0 row 1 [.5 .2 .3] → 0, 2; row 2 [.3 .3 .4] → 2, 0 (tie .3/.3 to the lower index); head 1 row 1 [.2 .2 .6] → 2, 0; row 2 [.5 .5 0] → 0, 1
    expect(vals(top['a.topk_index'])).toEqual([0, 2, 2, 0, 2, 0, 0, 1]);
    expect(vals(top['a.topk_value']).map((v) => +v.toFixed(6))).toEqual([0.5, 0.3, 0.4, 0.3, 0.6, 0.2, 0.5, 0.5]);
  });

  it('refuses an index outside the tensor, naming the capture and the source', () => {
    expect(() => applyCapture({ name: 'k', source: 'present.0.key', layout: 'kv', rows: [4] }, iota([1, 1, 4, 2]), 'float32')).toThrow(/capture k: position 4 is outside 0\.\.3 of present\.0\.key/);
  });

  it('keeps layers by set and stride', () => {
    expect(keptLayers([0, 1, 2, 3, 4, 5, 6, 7], undefined, 2)).toEqual([0, 2, 4, 6]);
    expect(keptLayers([0, 1, 2, 3, 4, 5, 6, 7], [1, 3, 5, 7], 2)).toEqual([1, 5]);
  });

  it('estimates exactly the bytes the worker writes (image K/V at layers 1, 3 + hidden states, fp16)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'loupe-capture-est-'));
    try {
      const taps = { vision: [], decoder: [0, 1, 2, 3, 4].map((l) => ({ name: `llm.hidden_states.${l}`, tensor: `h${l}` })) };
      const sel = TapSelection.parse({ imageKV: true, llmLayers: true, layers: [1, 3], tokens: 'image' });
      const seq = 12;
      const plan = planCapture({ taps: sel }, taps, { textLayers: 4, textHeads: 4, visionHeads: 2 }, { imagePositions: [2, 3, 4, 5] }, seq);
      expect(plan.decoderFetches.sort()).toEqual(['h1', 'h3', 'present.1.key', 'present.1.value', 'present.3.key', 'present.3.value']);
      const sources: Record<string, HostTensor> = { h1: iota([1, seq, 8]), h3: iota([1, seq, 8]) };
      for (const l of [1, 3]) for (const p of ['key', 'value']) sources[`present.${l}.${p}`] = iota([1, 2, seq, 4]);
      const extra = { image_token_map: { dtype: 'int32' as const, shape: [4, 5], data: new Int32Array(20) } };
      const est = estimateItemBytes(plan, { shapeOf: (s) => sources[s]?.shape }, 'float16', extra);
      const stored = (await storeCapture({ blobRoot: root, dtype: 'float16', ops: plan.ops, extra }, (n) => sources[n], () => {}))!;
      expect(est.bytes).toBe(stored.size);
      expect(statSync(join(root, stored.sha.slice(0, 2), `${stored.sha}.safetensors`)).size).toBe(stored.size);
      expect(captureShape(plan.ops.find((o) => o.name === 'llm.hidden_states.1')!, [1, seq, 8], 'float16')[0]!.shape).toEqual([1, 4, 8]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
