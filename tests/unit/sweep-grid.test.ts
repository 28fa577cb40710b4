import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blockedEdges, modelShape, sampleLayouts, sweepGrid, windowSizes } from '../../src-shared/ablation/sweep-grid.ts';
import { attentionBiases } from '../../src-shared/ablation/mask.ts';
import { AblationSpec, BLOCK_BIAS } from '../../src-shared/ablation/spec.ts';

const layersOf = (s: AblationSpec) => s.edits.map((e) => e.layers);

/** A LLaVA-style config: CLIP tower of `vision` layers on a side×side grid, `llm` decoder layers. */
function config(o: { vision: number; llm: number; side: number; heads?: number; featureLayer?: number | number[] }) {
  return {
    model_type: 'llava',
    ...(o.featureLayer !== undefined && { vision_feature_layer: o.featureLayer }),
    vision_config: { model_type: 'clip_vision_model', num_hidden_layers: o.vision, num_attention_heads: o.heads ?? 2, image_size: 8 * o.side, patch_size: 8 },
    text_config: { num_hidden_layers: o.llm, num_attention_heads: o.heads ?? 2 },
  };
}

describe('model shape', () => {
  it('keeps the vision layers up to vision_feature_layer, as the exported graph does', () => {
    expect(modelShape(config({ vision: 4, llm: 2, side: 2, featureLayer: -1 })).vision.layers).toEqual([0, 1, 2, 3]);
    expect(modelShape(config({ vision: 4, llm: 2, side: 2, featureLayer: -2 })).vision.layers).toEqual([0, 1, 2]);
    expect(modelShape(config({ vision: 4, llm: 2, side: 2, featureLayer: 1 })).vision.layers).toEqual([0, 1]);
    expect(modelShape(config({ vision: 4, llm: 2, side: 2, featureLayer: [-3, -2] })).vision.layers).toEqual([0, 1, 2]);
    expect(modelShape(config({ vision: 4, llm: 2, side: 2 })).vision.layers).toEqual([0, 1, 2, 3]);
  });

  it('reads the bundled micro-llava: 3 exported CLIP layers on an 8×8 grid with CLS, 4 LLM layers', () => {
    const cfg = JSON.parse(readFileSync(join(import.meta.dirname, '../../resources/models/micro-llava/config.json'), 'utf8')) as Record<string, unknown>;
    const s = modelShape(cfg);
    expect(s.vision).toMatchObject({ layers: [0, 1, 2], cls: 1, rows: 8, cols: 8 });
    expect(s.llm.layers).toEqual([0, 1, 2, 3]);
  });
});

describe('sweep grids', () => {
  const shape = modelShape(config({ vision: 4, llm: 3, side: 2, featureLayer: -1 }));

  it('family (a): patch↔patch in the last k of a 4-layer tower, k = 1…4', () => {
    const grid = sweepGrid({ kind: 'vision-patches' }, shape);
    expect(grid.map((g) => layersOf(g.spec))).toEqual([[[3]], [[2, 3]], [[1, 2, 3]], [[0, 1, 2, 3]]]);
    expect(grid.map((g) => g.label)).toEqual([1, 2, 3, 4].map((k) => `vision patch↔patch · last ${k}`));
    for (const g of grid) {
      expect(AblationSpec.parse(g.spec)).toEqual(g.spec); // valid, and already in parsed form
      expect(g.spec.edits[0]).toMatchObject({ op: 'block', part: 'vision', queries: { kind: 'patches' }, keys: { kind: 'patches' }, excludeSelf: true });
    }
  });

  it('family (a) variants: patch → all (CLS included) from the first layer, and single layers', () => {
    const toAll = sweepGrid({ kind: 'vision-patches', keys: 'all', from: 'first' }, shape);
    expect(toAll.map((g) => layersOf(g.spec))).toEqual([[[0]], [[0, 1]], [[0, 1, 2]], [[0, 1, 2, 3]]]);
    expect(toAll[0]!.label).toBe('vision patch→all · first 1');
    expect(toAll[0]!.spec.edits[0]).toMatchObject({ queries: { kind: 'patches' }, keys: { kind: 'all' }, excludeSelf: true });
    const single = sweepGrid({ kind: 'vision-single', keys: 'all' }, shape);
    expect(single.map((g) => layersOf(g.spec))).toEqual([[[0]], [[1]], [[2]], [[3]]]);
    expect(single.map((g) => g.label)).toEqual([0, 1, 2, 3].map((l) => `vision patch→all · layer ${l}`));
  });

  it('families (b) and (c): windows growing from the first or the last LLM layer', () => {
    const first = sweepGrid({ kind: 'llm-text-image', from: 'first' }, shape);
    expect(first.map((g) => layersOf(g.spec))).toEqual([[[0]], [[0, 1]], [[0, 1, 2]]]);
    expect(first[0]!.spec.edits[0]).toMatchObject({ part: 'llm', queries: { kind: 'text' }, keys: { kind: 'image' } });
    const last = sweepGrid({ kind: 'llm-image-image', from: 'last' }, shape);
    expect(last.map((g) => layersOf(g.spec))).toEqual([[[2]], [[1, 2]], [[0, 1, 2]]]);
    expect(last[2]!.spec.edits[0]).toMatchObject({ part: 'llm', queries: { kind: 'patches' }, keys: { kind: 'patches' }, excludeSelf: true });
    expect(last[2]!.label).toBe('llm patch↔patch · last 3');
  });

  it('steps through deep towers and always ends with the whole tower', () => {
    expect(windowSizes(4)).toEqual([1, 2, 3, 4]);
    expect(windowSizes(10, 4)).toEqual([4, 8, 10]);
    expect(windowSizes(8, 4)).toEqual([4, 8]);
    expect(windowSizes(0)).toEqual([]);
    expect(() => windowSizes(4, 0)).toThrow(/positive integer/);
    const deep = modelShape(config({ vision: 2, llm: 24, side: 2 }));
    expect(sweepGrid({ kind: 'llm-text-image', from: 'last' }, deep, 8).map((g) => layersOf(g.spec)[0]!.length)).toEqual([8, 16, 24]);
    expect(() => sweepGrid({ kind: 'vision-patches' }, modelShape({ text_config: { num_hidden_layers: 2 } }))).toThrow(/no exported vision layers/);
  });
});

describe('blocked edges on the sample layouts', () => {
  // CLS + 2×2 patches, 2 heads; LLM sample prompt: 4 text, 4 image tokens, 12 text.
  const shape = modelShape(config({ vision: 3, llm: 2, side: 2, heads: 2, featureLayer: -1 }));

  it('counts layers × heads × pairs, by hand', () => {
    const [k1, k2] = sweepGrid({ kind: 'vision-patches' }, shape);
    // Each patch → the 3 other patches: 4·3 = 12 edges per head, 2 heads.
    expect(blockedEdges(k1!.spec, shape)).toEqual({ layers: 1, blocked: 12 * 2 });
    expect(blockedEdges(k2!.spec, shape)).toEqual({ layers: 2, blocked: 2 * 12 * 2 });
    // Patch → all: also each patch → CLS, 4·4 = 16 edges per head (patches no longer reach each other through CLS).
    const [a1] = sweepGrid({ kind: 'vision-patches', keys: 'all' }, shape);
    expect(blockedEdges(a1!.spec, shape)).toEqual({ layers: 1, blocked: 16 * 2 });
    // Text → image in the causal LLM: only the 12 text tokens after the image see it: 12·4 per head.
    const [t1] = sweepGrid({ kind: 'llm-text-image', from: 'first' }, shape);
    expect(blockedEdges(t1!.spec, shape)).toEqual({ layers: 1, blocked: 12 * 4 * 2 });
    // Patch ↔ other patch, causal: the 4·3/2 = 6 pairs with the key before the query.
    const [, i2] = sweepGrid({ kind: 'llm-image-image', from: 'last' }, shape);
    expect(blockedEdges(i2!.spec, shape)).toEqual({ layers: 2, blocked: 2 * 6 * 2 });
  });

  it('counts head-specific and mixed-layer edits per group, equal to the full mask builder', () => {
    const spec = AblationSpec.parse({
      edits: [
        { op: 'block', part: 'vision', layers: [0, 1], heads: [1], queries: { kind: 'cls' }, keys: { kind: 'patches' } },
        { op: 'block', part: 'vision', layers: [1, 2], queries: { kind: 'patches', indices: [0] }, keys: { kind: 'all' } },
        { op: 'scale', part: 'vision', layers: 'all', queries: { kind: 'all' }, keys: { kind: 'all' }, factor: 0.5 },
      ],
    });
    // Reference: build every layer with the mask builder, count per head.
    const full = attentionBiases(spec, sampleLayouts(shape).vision, shape.vision);
    let reference = 0;
    for (const b of full.values()) reference += b.data.reduce((s, v) => s + (v <= BLOCK_BIAS / 2 ? 1 : 0), 0) * (b.heads === 1 ? 2 : 1);
    // By hand: layer 0: CLS→4 patches in head 1 = 4; layer 1: that + patch 0 → the 4 others (CLS, 3 patches) in both heads = 4 + 2·4;
    // layer 2: 2·4. Scales block nothing.
    expect(reference).toBe(4 + 12 + 8);
    expect(blockedEdges(spec, shape)).toEqual({ layers: 3, blocked: reference });
  });

  it('refuses, naming the problem, layers the graph lacks and patches outside the grid', () => {
    const bad = (edit: object) => () => blockedEdges(AblationSpec.parse({ edits: [{ op: 'block', queries: { kind: 'patches' }, keys: { kind: 'patches' }, ...edit }] }), shape);
    expect(bad({ part: 'vision', layers: [3] })).toThrow(/vision layer\(s\) 3 are not in the model's graph/);
    expect(bad({ part: 'llm', heads: [2] })).toThrow(/head\(s\) 2 do not exist/);
    expect(bad({ part: 'vision', keys: { kind: 'patches', indices: [4] } })).toThrow(/outside the patch grid/);
  });
});
