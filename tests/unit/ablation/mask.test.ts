import { describe, expect, it } from 'vitest';
import { attentionBiases, llmLayout, refuseTokenAblation, resolveTokenSet, visionLayout } from '../../../src-shared/ablation/mask.ts';
import { AblationSpec, BLOCK_BIAS } from '../../../src-shared/ablation/spec.ts';

const B = BLOCK_BIAS;
const spec = (edits: unknown[]) => AblationSpec.parse({ edits });
const rows = (data: Float32Array, k: number) => Array.from({ length: data.length / k }, (_, r) => Array.from(data.subarray(r * k, (r + 1) * k)));

describe('token layouts and sets', () => {
  // CLS + 2×2 patches: positions 0 (CLS), 1..4 = patches 0..3.
  const v = visionLayout({ cls: 1, rows: 2, cols: 2 });
  // Prompt of 7: text 0, image tokens 1..4 (patches 0..3), text 5, 6; one generated token at 7.
  const img = [1, 2, 3, 4].map((position, i) => ({ position, patch: i }));
  const l = llmLayout({ length: 8, promptLength: 7, imageTokens: img });

  it('resolves each kind', () => {
    expect(Array.from(resolveTokenSet({ kind: 'cls' }, v))).toEqual([1, 0, 0, 0, 0]);
    expect(Array.from(resolveTokenSet({ kind: 'patches' }, v))).toEqual([0, 1, 1, 1, 1]);
    expect(Array.from(resolveTokenSet({ kind: 'patches', indices: [3, 0] }, v))).toEqual([0, 1, 0, 0, 1]);
    expect(Array.from(resolveTokenSet({ kind: 'image' }, v))).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(resolveTokenSet({ kind: 'image' }, l))).toEqual([0, 1, 1, 1, 1, 0, 0, 0]);
    expect(Array.from(resolveTokenSet({ kind: 'text' }, l))).toEqual([1, 0, 0, 0, 0, 1, 1, 1]);
    expect(Array.from(resolveTokenSet({ kind: 'last' }, l))).toEqual([0, 0, 0, 0, 0, 0, 1, 0]);
    expect(Array.from(resolveTokenSet({ kind: 'patches', indices: [2] }, l))).toEqual([0, 0, 0, 1, 0, 0, 0, 0]);
    expect(Array.from(resolveTokenSet({ kind: 'positions', positions: [0, 7] }, l))).toEqual([1, 0, 0, 0, 0, 0, 0, 1]);
  });

  it('refuses sets that mean nothing in the tower or select nothing', () => {
    expect(() => resolveTokenSet({ kind: 'text' }, v)).toThrow(/vision tower/);
    expect(() => resolveTokenSet({ kind: 'last' }, v)).toThrow(/only in the LLM/);
    expect(() => resolveTokenSet({ kind: 'patches', indices: [4] }, v)).toThrow(/outside the patch grid/);
    expect(() => resolveTokenSet({ kind: 'positions', positions: [5] }, v)).toThrow(/outside/);
    expect(() => resolveTokenSet({ kind: 'cls' }, l)).toThrow(/selects no token/);
  });
});

describe('attention biases, hand-computed', () => {
  it('vision: patch → other patches blocked, diagonal kept, CLS untouched', () => {
    const v = visionLayout({ cls: 1, rows: 1, cols: 2 }); // CLS, p0, p1
    const m = attentionBiases(spec([{ op: 'block', part: 'vision', queries: { kind: 'patches' }, keys: { kind: 'patches' }, excludeSelf: true }]), v, { layers: [0, 1], heads: 4 });
    expect([...m.keys()]).toEqual([0, 1]);
    const b = m.get(1)!;
    expect([b.heads, b.q, b.k]).toEqual([1, 3, 3]);
    expect(rows(b.data, 3)).toEqual([
      [0, 0, 0],
      [0, 0, B],
      [0, B, 0],
    ]);
  });

  it('block never touches the diagonal even without excludeSelf', () => {
    const v = visionLayout({ cls: 1, rows: 1, cols: 2 });
    const b = attentionBiases(spec([{ op: 'block', part: 'vision', layers: [0], queries: { kind: 'all' }, keys: { kind: 'all' } }]), v, { layers: [0], heads: 2 }).get(0)!;
    expect(rows(b.data, 3)).toEqual([
      [0, B, B],
      [B, 0, B],
      [B, B, 0],
    ]);
  });

  it('LLM prefill: text → image blocked; head-specific scale sums with it, block wins', () => {
    // Prompt: t0, i1 (patch 0), i2 (patch 1), t3.
    const l = llmLayout({ length: 4, promptLength: 4, imageTokens: [{ position: 1, patch: 0 }, { position: 2, patch: 1 }] });
    const s = spec([
      { op: 'block', part: 'llm', layers: [2], queries: { kind: 'text' }, keys: { kind: 'image' } },
      { op: 'scale', part: 'llm', layers: [2], heads: [1], factor: 2, queries: { kind: 'last' }, keys: { kind: 'all' } },
      { op: 'scale', part: 'llm', layers: [2], heads: [1], factor: 4, queries: { kind: 'last' }, keys: { kind: 'positions', positions: [0] } },
    ]);
    const m = attentionBiases(s, l, { layers: [0, 1, 2, 3], heads: 2 });
    expect([...m.keys()]).toEqual([2]);
    const b = m.get(2)!;
    expect([b.heads, b.q, b.k]).toEqual([2, 4, 4]);
    const l2 = Math.fround(Math.log(2));
    const l2l4 = Math.fround(Math.log(2)) + Math.fround(Math.log(4));
    expect(rows(b.data.subarray(0, 16), 4)).toEqual([
      [0, B, B, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [0, B, B, 0],
    ]);
    expect(rows(b.data.subarray(16), 4)).toEqual([
      [0, B, B, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [Math.fround(l2l4), B, B, l2],
    ]);
  });

  it('decode step: one query row for the new token, keys over past + new', () => {
    // Prompt t0 i1 t2 (last prompt token = 2), generated token at 3: queries = [3].
    const l = llmLayout({ length: 4, past: 3, promptLength: 3, imageTokens: [{ position: 1, patch: 0 }] });
    const s = spec([
      { op: 'block', part: 'llm', queries: { kind: 'text' }, keys: { kind: 'image' } },
      { op: 'scale', part: 'llm', factor: 0.5, queries: { kind: 'all' }, keys: { kind: 'last' } },
    ]);
    const b = attentionBiases(s, l, { layers: [0], heads: 4 }).get(0)!;
    expect([b.heads, b.q, b.k]).toEqual([1, 1, 4]);
    expect(Array.from(b.data)).toEqual([0, B, Math.fround(Math.log(0.5)), 0]);
  });

  it('edits of the other tower are ignored; unknown layers and heads are refused', () => {
    const v = visionLayout({ cls: 1, rows: 1, cols: 2 });
    expect(attentionBiases(spec([{ op: 'block', part: 'llm', queries: { kind: 'text' }, keys: { kind: 'image' } }]), v, { layers: [0], heads: 2 }).size).toBe(0);
    expect(() => attentionBiases(spec([{ op: 'block', part: 'vision', layers: [3], queries: { kind: 'all' }, keys: { kind: 'all' } }]), v, { layers: [0, 1, 2], heads: 2 })).toThrow(/layer\(s\) 3 are not in the model's graph/);
    expect(() => attentionBiases(spec([{ op: 'block', part: 'vision', heads: [2], queries: { kind: 'all' }, keys: { kind: 'all' } }]), v, { layers: [0], heads: 2 })).toThrow(/head\(s\) 2 do not exist/);
  });
});

describe('spec schema', () => {
  it('fills defaults, rejects scale without a positive factor, refuses token ablation clearly', () => {
    const s = spec([{ op: 'block', part: 'vision', queries: { kind: 'patches' }, keys: { kind: 'patches' } }]);
    expect(s.edits[0]).toMatchObject({ layers: 'all', heads: 'all', excludeSelf: false });
    expect(() => spec([{ op: 'scale', part: 'llm', queries: { kind: 'all' }, keys: { kind: 'all' } }])).toThrow();
    expect(() => spec([{ op: 'scale', part: 'llm', factor: 0, queries: { kind: 'all' }, keys: { kind: 'all' } }])).toThrow();
    const t = spec([{ op: 'zero', part: 'llm', tokens: { kind: 'image' } }]);
    expect(() => refuseTokenAblation(t)).toThrow(/token ablation \(zero\) is not implemented/);
    // Round trip through JSON (stored with runs).
    expect(AblationSpec.parse(JSON.parse(JSON.stringify(s)))).toEqual(s);
  });
});
