import { create } from '@bufbuild/protobuf';
import { NodeProtoSchema } from 'onnx-buf';
import { describe, expect, it } from 'vitest';
import { addAttentionBiasInPlace, biasInputLayer } from '../../../src-main/engine/graph/ablation.ts';
import { AttentionSiteError, findAttentionSites } from '../../../src-main/engine/graph/attention-sites.ts';
import { allGraphs, cloneModel, readModelSync } from '../../../src-main/engine/graph/model-proto.ts';
import { buildIfModel, buildTransformer } from '../graph/builders.ts';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('attention sites', () => {
  it('finds one Softmax per layer and works out the score rank of the shipped micro-llava vision tower', () => {
    const m = readModelSync(join(ROOT, 'resources/models/micro-llava/onnx/vision_encoder.onnx'));
    const s = findAttentionSites(m);
    expect(s.stack).toBe('/vision_tower/layers');
    expect(s.layers).toEqual([0, 1, 2]);
    expect(s.sites.map((x) => [x.kind, x.node.name, x.rank])).toEqual([0, 1, 2].map((i) => ['softmax', `/vision_tower/layers.${i}/self_attn/Softmax`, 4]));
  });

  it('recognises fused ops by their bias slot', () => {
    expect(findAttentionSites(buildTransformer({ attention: 'gqa', layers: 2 })).sites.map((s) => [s.kind, s.biasSlot])).toEqual([['gqa', 10], ['gqa', 10]]);
    expect(findAttentionSites(buildTransformer({ attention: 'onnx-attention', layers: 1 })).sites.map((s) => [s.kind, s.biasSlot])).toEqual([['onnx-attention', 3]]);
    expect(findAttentionSites(buildTransformer({ attention: 'contrib', layers: 1 })).sites.map((s) => [s.kind, s.biasSlot])).toEqual([['ms-attention', 5]]);
  });

  it('refuses, naming the node, a Softmax that does not feed MatMul(·, V)', () => {
    const m = buildTransformer({ layers: 2 });
    const g = m.graph!;
    // Layer 1: route the probabilities through a Mul before the V product.
    const sm = g.node.find((n) => n.name === '/model/layers.1/attn/Softmax')!;
    const pv = g.node.find((n) => n.name === '/model/layers.1/attn/MatMul_1')!;
    g.node.splice(g.node.indexOf(pv), 0, create(NodeProtoSchema, { opType: 'Mul', name: '/model/layers.1/attn/Mul_probs', input: [sm.output[0]!, 'scale'], output: ['probs_scaled'] }));
    pv.input[0] = 'probs_scaled';
    expect(() => findAttentionSites(m)).toThrow(AttentionSiteError);
    expect(() => findAttentionSites(m)).toThrow(/layer 1: .*Softmax "\/model\/layers.1\/attn\/Softmax", which feeds Mul "\/model\/layers.1\/attn\/Mul_probs" \(input 0\), not a MatMul with V/);
  });

  it('refuses fused attention without a bias input', () => {
    const m = buildTransformer({ attention: 'contrib', layers: 1 });
    m.graph!.node.find((n) => n.opType === 'Attention')!.opType = 'PackedAttention';
    expect(() => findAttentionSites(m)).toThrow(/PackedAttention "\/model\/layers.0\/attn\/Attention" has no additive attention-bias input/);
  });
});

describe('addAttentionBiasInPlace', () => {
  it('rank-3 Softmax scores: reshape → Add → reshape back, one bias input per layer', () => {
    const m = buildTransformer({ layers: 2 });
    const info = addAttentionBiasInPlace(m);
    expect([...info.inputs.entries()]).toEqual([[0, 'loupe_attn_bias.0'], [1, 'loupe_attn_bias.1']]);
    const g = m.graph!;
    const sm = g.node.find((n) => n.name === '/model/layers.0/attn/Softmax')!;
    expect(sm.input[0]).toBe('/model/layers.0/attn/Softmax/loupe_ablate/biased');
    expect(g.node.find((n) => n.output[0] === sm.input[0])!.opType).toBe('Reshape');
    // Inserted before the Softmax (topological order kept).
    expect(g.node.findIndex((n) => n.output[0] === sm.input[0])).toBeLessThan(g.node.indexOf(sm));
    const input = g.input.find((v) => v.name === 'loupe_attn_bias.1')!;
    expect(input.type?.value.case).toBe('tensorType');
    expect(biasInputLayer('loupe_attn_bias.12')).toBe(12);
    expect(() => addAttentionBiasInPlace(m)).toThrow(/already has attention-bias inputs/);
  });

  it('GQA: pads the skipped optional inputs with "" and wires input 10', () => {
    const m = buildTransformer({ attention: 'gqa', layers: 1 });
    addAttentionBiasInPlace(m);
    const gqa = m.graph!.node.find((n) => n.opType === 'GroupQueryAttention')!;
    expect(gqa.input.length).toBe(11);
    expect(gqa.input.slice(7, 10)).toEqual(['', '', '']);
    expect(gqa.input[10]).toBe('loupe_attn_bias.0');
  });

  it('ONNX Attention: sums with the existing float attn_mask', () => {
    const m = buildTransformer({ attention: 'onnx-attention', layers: 1 });
    const info = addAttentionBiasInPlace(m);
    const att = m.graph!.node.find((n) => n.opType === 'Attention')!;
    const add = m.graph!.node.find((n) => n.output[0] === att.input[3])!;
    expect(add.opType).toBe('Add');
    expect(add.input).toEqual(['/model/rotary_emb/Mul_output_0', 'loupe_attn_bias.0']);
    expect(info.sites[0]!.how).toMatch(/summed with the existing input 3/);
  });

  it('reaches layers inside If branches, reading the main-graph input from the outer scope', () => {
    const m = buildIfModel();
    const before = cloneModel(m);
    const info = addAttentionBiasInPlace(m);
    expect([...info.inputs.keys()]).toEqual([0, 1]);
    expect(info.sites.every((s) => s.scope.includes('If'))).toBe(true);
    expect(m.graph!.input.map((v) => v.name)).toEqual([...before.graph!.input.map((v) => v.name), 'loupe_attn_bias.0', 'loupe_attn_bias.1']);
    const then = [...allGraphs(m)].find((s) => s.depth === 1 && s.label.includes('then_branch'))!;
    expect(then.graph.node.some((n) => n.input.includes('loupe_attn_bias.1'))).toBe(true);
  });
});
