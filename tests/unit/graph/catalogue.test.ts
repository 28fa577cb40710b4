import { create } from '@bufbuild/protobuf';
import { AttributeProtoSchema, AttributeProto_AttributeType, NodeProtoSchema } from 'onnx-buf';
import { addTaps } from '../../../src-main/engine/graph/taps.ts';
import { describe, expect, it } from 'vitest';
import { findAttentionSites } from '../../../src-main/engine/graph/attention-sites.ts';
import { CatalogueError, buildCatalogue } from '../../../src-main/engine/graph/catalogue.ts';
import { layerOf } from '../../../src-main/engine/graph/layer-groups.ts';
import { buildIfModel, buildTransformer } from './builders.ts';

const EMBED = '/model/embed_tokens/Gather_output_0';

describe('catalogue: plain MatMul → Softmax attention', () => {
  const cat = buildCatalogue(buildTransformer({ layers: 3 }));

  it('chains the residual stream through the layers, skipping the shared mask/rotary tensor', () => {
    expect(cat.stack).toBe('/model/layers');
    expect(cat.embeddingOutput).toBe(EMBED);
    expect(cat.layers.map((l) => [l.index, l.input, l.output])).toEqual([
      [0, EMBED, '/model/layers.0/Add_1_output_0'],
      [1, '/model/layers.0/Add_1_output_0', '/model/layers.1/Add_1_output_0'],
      [2, '/model/layers.1/Add_1_output_0', '/model/layers.2/Add_1_output_0'],
    ]);
    expect(cat.hiddenStates).toEqual({
      'hidden_states.0': EMBED,
      'hidden_states.1': '/model/layers.0/Add_1_output_0',
      'hidden_states.2': '/model/layers.1/Add_1_output_0',
      'hidden_states.3': '/model/layers.2/Add_1_output_0',
    });
  });

  it('reports the Softmax output as the attention probabilities', () => {
    expect(cat.layers[1]!.attention).toEqual({ tensor: '/model/layers.1/attn/Softmax_output_0', kind: 'softmax', node: '/model/layers.1/attn/Softmax' });
  });

  it('finds the final norm feeding lm_head', () => {
    expect(cat.finalNorm).toBe('/model/norm/LayerNormalization_output_0');
  });

  it('has no final norm for an encoder without lm_head, and tolerates dropped last layers', () => {
    const enc = buildCatalogue(buildTransformer({ layers: 2, lmHead: false, prefix: '/vision_tower/encoder/layers' }));
    expect(enc.finalNorm).toBeUndefined();
    expect(enc.stack).toBe('/vision_tower/encoder/layers');
    expect(Object.keys(enc.hiddenStates)).toEqual(['hidden_states.0', 'hidden_states.1', 'hidden_states.2']);
  });
});

describe('catalogue: fused attention ops', () => {
  it('GroupQueryAttention → output_qk (to be switched on by addTaps)', () => {
    const cat = buildCatalogue(buildTransformer({ attention: 'gqa' }));
    expect(cat.layers[0]!.attention).toEqual({
      tensor: '/model/layers.0/attn/GroupQueryAttention/loupe_output_qk',
      kind: 'gqa',
      node: '/model/layers.0/attn/GroupQueryAttention',
    });
    // The present.* KV outputs produced in each layer are not mistaken for the residual stream.
    expect(cat.layers[0]!.output).toBe('/model/layers.0/Add_1_output_0');
  });

  it('GroupQueryAttention that already outputs output_qk → that tensor', () => {
    const cat = buildCatalogue(buildTransformer({ attention: 'gqa', gqaWithOutputQk: true }));
    expect(cat.layers[2]!.attention?.tensor).toBe('/model/layers.2/attn/qk');
  });

  it('ONNX Attention (opset 23) → qk_matmul_output', () => {
    const cat = buildCatalogue(buildTransformer({ attention: 'onnx-attention' }));
    expect(cat.layers.map((l) => l.attention?.kind)).toEqual(['onnx-attention', 'onnx-attention', 'onnx-attention']);
    expect(cat.layers[0]!.attention?.tensor).toBe('/model/layers.0/attn/Attention/loupe_qk_matmul_output');
  });

  it('contrib Attention: probabilities from a shadow branch addTaps builds; refused with the reason where it cannot be recomputed', () => {
    const cat = buildCatalogue(buildTransformer({ attention: 'contrib' }));
    expect(cat.layers.map((l) => l.attention)).toEqual([0, 1, 2].map((i) => ({ tensor: `/model/layers.${i}/attn/Attention/loupe_attention_probs`, kind: 'shadow', node: `/model/layers.${i}/attn/Attention` })));
    expect(cat.layers[2]!.output).toBe('/model/layers.2/Add_1_output_0');
    const tapped = addTaps(buildTransformer({ attention: 'contrib' }), [cat.layers[1]!.attention!.tensor]);
    const softmax = tapped.graph!.node.find((n) => n.output[0] === cat.layers[1]!.attention!.tensor)!;
    expect(softmax.opType).toBe('Softmax');
    // The shadow sits before the fused op it reads from, and the fused op is untouched.
    const fusedAt = tapped.graph!.node.findIndex((n) => n.name === '/model/layers.1/attn/Attention');
    expect(tapped.graph!.node.indexOf(softmax)).toBeLessThan(fusedAt);

    const causal = buildTransformer({ attention: 'contrib' });
    for (const n of causal.graph!.node) if (n.opType === 'Attention') n.attribute.push(create(AttributeProtoSchema, { name: 'unidirectional', type: AttributeProto_AttributeType.INT, i: 1n }));
    const refused = buildCatalogue(causal);
    expect(refused.layers.every((l) => l.attention === undefined)).toBe(true);
    expect(refused.notes.join('\n')).toMatch(/layer 0: com\.microsoft::Attention "\/model\/layers\.0\/attn\/Attention" exposes no attention probabilities and they cannot be recomputed: .*causal \(unidirectional=1\)/);
  });
});

describe('catalogue: other block layouts', () => {
  it('onnxruntime-genai builder: residual adds folded into the next SkipSimplifiedLayerNormalization', () => {
    const cat = buildCatalogue(buildTransformer({ genai: true, attention: 'gqa', layers: 3 }));
    expect(cat.layers.map((l) => l.index)).toEqual([0, 1, 2]); // layers.3/final_norm_layernorm is not a layer
    expect(cat.embeddingOutput).toBe(EMBED);
    expect(cat.layers.map((l) => l.output)).toEqual([
      '/model/layers.1/input_layernorm/output_3',
      '/model/layers.2/input_layernorm/output_3',
      '/model/layers.3/final_norm_layernorm/SkipLayerNorm/loupe_input_skip_bias_sum',
    ]);
    expect(cat.finalNorm).toBe('/model/final_norm');
  });

  it('post-norm blocks: the output is the norm after the last residual Add', () => {
    const cat = buildCatalogue(buildTransformer({ postNorm: true, layers: 2 }));
    expect(cat.layers.map((l) => l.output)).toEqual(['/model/layers.0/ln2/LayerNormalization_output_0', '/model/layers.1/ln2/LayerNormalization_output_0']);
    expect(cat.layers[1]!.input).toBe('/model/layers.0/ln2/LayerNormalization_output_0');
  });

  it('groups by the usual path segments', () => {
    const node = (name: string) => layerOf({ name } as never);
    expect(node('/vision_tower/layers.0/self_attn/MatMul')).toEqual({ stack: '/vision_tower/layers', index: 0 });
    expect(node('/language_model/layers.13/Add_1')).toEqual({ stack: '/language_model/layers', index: 13 });
    expect(node('/transformer/h.2/attn/Softmax')).toEqual({ stack: '/transformer/h', index: 2 });
    expect(node('/encoder/layer.5/attention/MatMul')).toEqual({ stack: '/encoder/layer', index: 5 });
    expect(node('/blocks.1/attn/MatMul')).toEqual({ stack: '/blocks', index: 1 });
    expect(node('model.layers.4.self_attn.q_proj')).toEqual({ stack: 'model.layers', index: 4 });
    expect(node('/model/layers_norm/Mul')).toBeUndefined();
    expect(node('/graph/h.2x/Add')).toBeUndefined();
  });
});

describe('catalogue: clear errors', () => {
  it('finds layers by structure when node names carry no module path (ORT-optimised graphs: Attention_0 …)', () => {
    const named = buildCatalogue(buildTransformer({ layers: 2 }));
    const m = buildTransformer({ layers: 2 });
    const rename = new Map<string, string>();
    m.graph!.node.forEach((node, i) => {
      node.name = `${node.opType}_${i}`;
      node.output = node.output.map((o) => {
        if (!o || m.graph!.output.some((v) => v.name === o)) return o;
        const fresh = `t${rename.size}`;
        rename.set(o, fresh);
        return fresh;
      });
    });
    for (const node of m.graph!.node) node.input = node.input.map((t) => rename.get(t) ?? t);
    const cat = buildCatalogue(m);
    expect(cat.stack).toMatch(/^chain@Softmax_\d+$/);
    expect(cat.layers.map((l) => [l.input, l.output, l.attention?.tensor])).toEqual(named.layers.map((l) => [rename.get(l.input!), rename.get(l.output), rename.get(l.attention!.tensor)]));
    expect(cat.finalNorm).toBe(rename.get(named.finalNorm!));
  });

  it('names the graph and what was looked for when there is no attention', () => {
    const m = buildTransformer({ layers: 2 });
    for (const node of m.graph!.node) if (node.opType === 'Softmax') node.opType = 'Relu';
    expect(() => buildCatalogue(m, { label: 'x.onnx' })).toThrow(CatalogueError);
    expect(() => buildCatalogue(m, { label: 'x.onnx' })).toThrow(/graph "test_graph" \(x\.onnx\): found no transformer layers — looked for attention .*; no attention ops found/);
  });

  it('explains that layers inside an If subgraph are not supported', () => {
    expect(() => buildCatalogue(buildIfModel())).toThrow(/inside a subgraph \(main > If "\/If" \. then_branch\).*merged/);
  });

  it('refuses, naming the node, an attention op among the layers that sits in no residual block', () => {
    const m = buildTransformer({ layers: 3 });
    // Layer 0's attention residual becomes a product: its Softmax is live but in no residual block.
    m.graph!.node.find((n) => n.name === '/model/layers.0/Add')!.opType = 'Mul';
    expect(() => buildCatalogue(m)).toThrow(/Softmax "\/model\/layers\.0\/attn\/Softmax" sits among the layers of \/model\/layers but in no residual block/);
  });

  it('follows the residual stream through a Cast (the RMSNorm upcast) and probabilities through Softmax → Cast → MatMul', () => {
    const m = buildTransformer({ layers: 2 });
    const g = m.graph!;
    const cast = (name: string, input: string, output: string) => create(NodeProtoSchema, { opType: 'Cast', name, input: [input], output: [output], attribute: [{ name: 'to', type: AttributeProto_AttributeType.INT, i: 1n }] });
    // Layer 0's residual Add reads the embedding through a Cast; layer 1's probabilities reach V through a Cast.
    const add0 = g.node.find((n) => n.name === '/model/layers.0/Add')!;
    g.node.splice(g.node.indexOf(add0), 0, cast('/model/layers.0/Cast', EMBED, 'embed_cast'));
    add0.input[0] = 'embed_cast';
    const pv = g.node.find((n) => n.name === '/model/layers.1/attn/MatMul_1')!;
    g.node.splice(g.node.indexOf(pv), 0, cast('/model/layers.1/attn/Cast', '/model/layers.1/attn/Softmax_output_0', 'probs_cast'));
    pv.input[0] = 'probs_cast';
    const cat = buildCatalogue(m);
    expect(cat.embeddingOutput).toBe(EMBED);
    expect(cat.layers.map((l) => l.attention?.tensor)).toEqual(['/model/layers.0/attn/Softmax_output_0', '/model/layers.1/attn/Softmax_output_0']);
    expect(findAttentionSites(m).layers).toEqual([0, 1]);
  });

  it('refuses an unknown stack', () => {
    expect(() => buildCatalogue(buildTransformer(), { stack: '/nope/layers' })).toThrow(/no layer stack "\/nope\/layers"; stacks found: \/model\/layers/);
  });
});
