import { describe, expect, it } from 'vitest';
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

  it('contrib Attention has no probabilities: noted, hidden states still found', () => {
    const cat = buildCatalogue(buildTransformer({ attention: 'contrib' }));
    expect(cat.layers.every((l) => l.attention === undefined)).toBe(true);
    expect(cat.notes.join('\n')).toMatch(/com\.microsoft::Attention exposes no attention probabilities/);
    expect(cat.layers[2]!.output).toBe('/model/layers.2/Add_1_output_0');
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
  it('names the graph and what was looked for when there are no layers', () => {
    const m = buildTransformer({ layers: 2 });
    for (const node of m.graph!.node) node.name = node.name.replace(/layers\.(\d)/, 'stage$1');
    expect(() => buildCatalogue(m, { label: 'x.onnx' })).toThrow(CatalogueError);
    expect(() => buildCatalogue(m, { label: 'x.onnx' })).toThrow(/graph "test_graph" \(x\.onnx\): found no transformer layers — looked for .*layers\.N/);
  });

  it('explains that layers inside an If subgraph are not supported', () => {
    expect(() => buildCatalogue(buildIfModel())).toThrow(/inside a subgraph \(main > If "\/If" \. then_branch\).*merged/);
  });

  it('refuses a layer whose residual input cannot be identified', () => {
    const m = buildTransformer({ layers: 2 });
    // Remove the residual Add and norms of layer 0: nothing looks like a residual stream.
    m.graph!.node = m.graph!.node.filter((n) => !/layers\.0\/(Add|ln\d)/.test(n.name));
    expect(() => buildCatalogue(m)).toThrow(/could not identify the residual stream entering layer 0/);
  });

  it('refuses an unknown stack', () => {
    expect(() => buildCatalogue(buildTransformer(), { stack: '/nope/layers' })).toThrow(/no layer stack "\/nope\/layers"; stacks found: \/model\/layers/);
  });
});
