/**
 * Pure parts of the run workbench on hand-computed cases: spec summaries and spec diffs,
 * tensor names read as (tower, layer, kind), and the paired comparison against a baseline
 * (Δ sign = run − baseline, McNemar's discordant counts and exact p, the agreement matrix).
 */
import { describe, expect, it } from 'vitest';
import { pairedCompare } from '../../../src-shared/metrics/paired-compare.ts';
import { compactRanges, specDiff, specSummary } from '../../../src-shared/runs/spec-summary.ts';
import { lastTwoAxes, tensorMeaning } from '../../../src-shared/runs/tensor-names.ts';

const run = (runId: string, correct: number[]) => ({ runId, results: correct.map((c, i) => ({ itemId: `i${i}`, metrics: { correct: c } })) });

describe('spec summary', () => {
  it('says what differs: ablation layers and edge set, dtype variant, limit', () => {
    expect(compactRanges([5, 0, 1, 2])).toBe('0–2, 5');
    const spec = {
      blind: 'blank',
      gram: true,
      limit: 8,
      variant: 'q8',
      ablation: { edits: [{ op: 'block', part: 'vision', layers: [1, 2], heads: 'all', queries: { kind: 'patches' }, keys: { kind: 'patches' }, excludeSelf: true }] },
    };
    expect(specSummary({ kind: 'readout', spec })).toBe('readout · ablation vision 1–2 patch↔patch · q8 · limit 8');
    expect(specSummary({ kind: 'readout', spec: { ablation: { edits: [{ op: 'scale', factor: 0.5, part: 'llm', layers: 'all', heads: [0, 2], queries: { kind: 'text' }, keys: { kind: 'image' } }] } } })).toBe(
      'readout · ablation llm all layers heads 0, 2 text→image ×0.5',
    );
    expect(specSummary({ kind: 'vlm-forward', spec: { image: 'blank', variant: { decoder_model_merged: 'q4' } } })).toBe('vlm-forward · image: blank · decoder q4');
  });

  it('lists only the keys whose values differ, a missing key as null', () => {
    const a = { limit: 8, variant: 'fp32', ablation: { edits: [{ layers: [1] }] } };
    const b = { limit: 8, variant: 'q8' };
    expect(specDiff([a, b])).toEqual([
      { key: 'ablation.edits[0].layers', values: ['[1]', null] },
      { key: 'variant', values: ['"fp32"', '"q8"'] },
    ]);
    expect(specDiff([a, a])).toEqual([]);
  });
});

describe('tensor names', () => {
  it('reads tower, layer and kind from catalogue and readout names', () => {
    expect(tensorMeaning('vision.hidden_states.3')).toMatchObject({ tower: 'vision', layer: 3, kind: 'hidden state', label: 'vision layer 3 · hidden state' });
    expect(tensorMeaning('text.attentions.1')).toMatchObject({ tower: 'llm', layer: 1, kind: 'attention' });
    expect(tensorMeaning('image_kv.0.key')).toMatchObject({ tower: 'llm', layer: 0, kind: 'image key' });
    expect(tensorMeaning('readout.text.hidden_states.2')).toMatchObject({ tower: 'llm', layer: 2, kind: 'readout features' });
    expect(tensorMeaning('gram.projector')).toMatchObject({ tower: 'projector', layer: null, kind: 'Gram patches' });
    expect(tensorMeaning('image_features')).toMatchObject({ tower: 'projector', label: 'projector · image features' });
    expect(tensorMeaning('something_else')).toMatchObject({ tower: 'other', label: 'something_else' });
    expect(tensorMeaning('vision.hidden_states.0').order).toBeLessThan(tensorMeaning('projector').order);
    expect(tensorMeaning('projector').order).toBeLessThan(tensorMeaning('text.hidden_states.0').order);
  });

  it('slices the last two axes at the leading indices', () => {
    // shape [2, 3, 4, 5]: index (1, 2) starts at 1·60 + 2·20 = 100.
    expect(lastTwoAxes([2, 3, 4, 5], [1, 2])).toEqual({ rows: 4, cols: 5, offset: 100 });
    expect(lastTwoAxes([7])).toEqual({ rows: 1, cols: 7, offset: 0 });
  });
});

describe('paired comparison', () => {
  it('Δ is run − baseline on the shared items, with McNemar on the discordant pairs', () => {
    // Baseline right on 3 of 5, run right on 4 of 5: Δ = +0.2. Discordant: base right/run wrong = 1 (i1), base wrong/run right = 2 (i2, i3).
    const base = run('base', [1, 1, 0, 0, 1]);
    const other = run('other', [1, 0, 1, 1, 1]);
    const c = pairedCompare([other, base], 'base', { resamples: 500 });
    const m = c.metrics.find((x) => x.name === 'correct')!;
    expect(m.binary).toBe(true);
    const p = m.perRun[0]!;
    expect(p.mean).toBeCloseTo(0.8, 12);
    expect(p.baseMean).toBeCloseTo(0.6, 12);
    expect(p.delta!.estimate).toBeCloseTo(0.2, 12);
    expect(p.delta!.low).toBeLessThanOrEqual(0.2);
    expect(p.delta!.high).toBeGreaterThanOrEqual(0.2);
    // Exact two-sided binomial with b = 1, c = 2: 2 · P(X ≤ 1 | n = 3, ½) = 2 · 4/8 = 1.
    expect(p.mcnemar).toMatchObject({ b: 1, c: 2, test: 'exact-binomial' });
    expect(p.mcnemar!.pValue).toBeCloseTo(1, 12);
    expect(m.perRun[1]).toMatchObject({ runId: 'base', delta: null, mcnemar: null, n: 5 });
  });

  it('a constant improvement has a zero-width interval; 8 discordant pairs one way give p = 2/256', () => {
    const c = pairedCompare([run('b', Array(10).fill(0)), run('r', [1, 1, 1, 1, 1, 1, 1, 1, 0, 0])], 'b', { resamples: 200 });
    const p = c.metrics[0]!.perRun[1]!;
    expect(p.delta!.estimate).toBeCloseTo(0.8, 12);
    expect(p.mcnemar).toMatchObject({ b: 0, c: 8 });
    expect(p.mcnemar!.pValue).toBeCloseTo(2 / 256, 12);
    const all = pairedCompare([run('b', Array(6).fill(0)), run('r', Array(6).fill(1))], 'b', { resamples: 200 });
    expect(all.metrics[0]!.perRun[1]!.delta).toEqual({ estimate: 1, low: 1, high: 1 });
  });

  it('pairs each run with the baseline on the items both have; agreement counts equal outcomes', () => {
    const base = run('base', [1, 0, 1, 0]);
    const short = { runId: 'short', results: [{ itemId: 'i0', metrics: { correct: 1 } }, { itemId: 'i1', metrics: { correct: 1 } }] };
    const c = pairedCompare([base, short], 'base', { resamples: 200 });
    expect(c.sharedItems).toBe(2);
    const p = c.metrics[0]!.perRun[1]!;
    expect(p.n).toBe(2);
    expect(p.baseMean).toBeCloseTo(0.5, 12);
    expect(p.delta!.estimate).toBeCloseTo(0.5, 12);
    // Same outcome on i0 only, of the 2 items both have.
    expect(c.agreement!.matrix).toEqual([[1, 0.5], [0.5, 1]]);
    expect(c.agreement!.items.map((x) => x.itemId)).toEqual(['i0', 'i1']);
    expect(() => pairedCompare([base], 'nope')).toThrow(/baseline nope is not one of the compared runs/);
  });
});
