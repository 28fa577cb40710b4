/**
 * One edge count for the Ablation preview and the sweeps: blocked edges causal attention could
 * use. Hand-computed on layouts small enough to draw.
 */
import { describe, expect, it } from 'vitest';
import { attentionBiases, llmLayout, visionLayout } from '../../../src-shared/ablation/mask.ts';
import { AblationSpec } from '../../../src-shared/ablation/spec.ts';
import { usableBlockedEdges } from '../../../src-shared/ablation/sweep-grid.ts';

const spec = (edit: object) => AblationSpec.parse({ edits: [{ op: 'block', layers: [0], ...edit }] });

describe('usableBlockedEdges', () => {
  // Prompt of 5 tokens: text 0, image patches at 1 and 2, text 3 and 4.
  //        keys 0 1 2 3 4
  //   q0 (text)  . x x . .   ← 0→1, 0→2 are later positions: masked by causality anyway
  //   q3 (text)  . x x . .
  //   q4 (text)  . x x . .
  const llm = llmLayout({ length: 5, promptLength: 5, imageTokens: [{ position: 1, patch: 0 }, { position: 2, patch: 1 }] });

  it('counts text→image in the causal LLM only where the key comes before the query', () => {
    const bias = attentionBiases(spec({ part: 'llm', queries: { kind: 'text' }, keys: { kind: 'image' } }), llm, { layers: [0], heads: 2 }).get(0)!;
    // The mask builder marks all 3·2 = 6 text→image edges; 4 of them (from q3, q4) are usable.
    expect(Array.from(bias.data).filter((v) => v <= -1e8).length).toBe(6);
    expect(usableBlockedEdges(bias, llm, 2, 0)).toBe(4);
    // Shared bias (heads = 1): 4 per head × 2 heads.
    expect(usableBlockedEdges(bias, llm, 2)).toBe(8);
  });

  it('counts image↔image (not self) causally: only patch 1 → patch 0', () => {
    const bias = attentionBiases(spec({ part: 'llm', queries: { kind: 'patches' }, keys: { kind: 'patches' }, excludeSelf: true }), llm, { layers: [0], heads: 3 }).get(0)!;
    expect(usableBlockedEdges(bias, llm, 3, 1)).toBe(1);
    expect(usableBlockedEdges(bias, llm, 3)).toBe(3);
  });

  it('uses the query positions of a decode step (past > 0): every key is at or before them', () => {
    const step = llmLayout({ length: 5, past: 4, promptLength: 3, imageTokens: [{ position: 1, patch: 0 }, { position: 2, patch: 1 }] });
    const bias = attentionBiases(spec({ part: 'llm', queries: { kind: 'text' }, keys: { kind: 'image' } }), step, { layers: [0], heads: 1 }).get(0)!;
    expect(bias.q).toBe(1);
    expect(usableBlockedEdges(bias, step, 1)).toBe(2);
  });

  it('counts both directions in the vision tower, per head for head-specific edits', () => {
    // CLS + 2×2 patches; patch → every other patch in head 1 only: 4·3 = 12 edges, none in head 0.
    const vision = visionLayout({ cls: 1, rows: 2, cols: 2 });
    const bias = attentionBiases(spec({ part: 'vision', heads: [1], queries: { kind: 'patches' }, keys: { kind: 'patches' }, excludeSelf: true }), vision, { layers: [0], heads: 2 }).get(0)!;
    expect(bias.heads).toBe(2);
    expect(usableBlockedEdges(bias, vision, 2, 0)).toBe(0);
    expect(usableBlockedEdges(bias, vision, 2, 1)).toBe(12);
    expect(usableBlockedEdges(bias, vision, 2)).toBe(12);
  });
});
