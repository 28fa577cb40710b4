/**
 * Small hand-built transformer graphs for the graph-surgery tests. Shapes are tiny and
 * weights arbitrary. The softmax, GQA and ONNX-Attention variants are valid models that ORT
 * runs (input_ids int64 [1, S], attention_bias float [S, S]; GQA adds empty past
 * [1, 1, 0, 8], seqlens_k int32 [1] = S - 1, total_seq_len int32 scalar = S).
 * Node names follow the exporters' conventions (`/model/layers.N/...`).
 */
import { create } from '@bufbuild/protobuf';
import { AttributeProto_AttributeType, ModelProtoSchema, TensorProto_DataLocation, TensorProto_DataType } from 'onnx-buf';
import type { ModelProto } from 'onnx-buf';

export type AttentionStyle = 'softmax' | 'gqa' | 'onnx-attention' | 'contrib';

interface NodeInit {
  opType: string;
  name: string;
  input: string[];
  output: string[];
  domain?: string;
  attribute?: { name: string; type: AttributeProto_AttributeType; i?: bigint; f?: number; ints?: bigint[]; g?: object }[];
}

const D = 8;

function weight(name: string, dims: number[], external = false) {
  const n = dims.reduce((a, b) => a * b, 1);
  if (external) {
    return {
      name,
      dims: dims.map(BigInt),
      dataType: TensorProto_DataType.FLOAT,
      dataLocation: TensorProto_DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: 'weights.onnx_data' },
        { key: 'offset', value: '0' },
        { key: 'length', value: String(n * 4) },
      ],
    };
  }
  return { name, dims: dims.map(BigInt), dataType: TensorProto_DataType.FLOAT, floatData: Array.from({ length: n }, (_, i) => ((i * 7) % 5) / 10) };
}

const intAttr = (name: string, i: number) => ({ name, type: AttributeProto_AttributeType.INT, i: BigInt(i) });
const INPUT_TYPES: Record<string, TensorProto_DataType> = { input_ids: TensorProto_DataType.INT64, seqlens_k: TensorProto_DataType.INT32, total_seq_len: TensorProto_DataType.INT32 };
const io = (name: string) => ({ name, type: { value: { case: 'tensorType' as const, value: { elemType: INPUT_TYPES[name] ?? TensorProto_DataType.FLOAT } } } });

export interface BuildOptions {
  layers?: number;
  attention?: AttentionStyle;
  /** Layer path prefix, default `/model/layers`. */
  prefix?: string;
  /** onnxruntime-genai builder style: residual Adds folded into Skip*LayerNormalization. */
  genai?: boolean;
  /** Post-norm blocks (BERT style): x → Add → LayerNorm. */
  postNorm?: boolean;
  /** Final norm + lm_head producing `logits`; otherwise the last layer output goes out as `last_hidden_state`. */
  lmHead?: boolean;
  /** Store weights as external data (`weights.onnx_data`). */
  external?: boolean;
  /** Give the GQA node its `output_qk` output already (with qk_output=2). */
  gqaWithOutputQk?: boolean;
}

/** Nodes and initializers of a decoder-ish transformer: Gather embedding → layers → [norm → lm_head]. */
export function buildTransformer(o: BuildOptions = {}): ModelProto {
  const layers = o.layers ?? 3;
  const attention = o.attention ?? 'softmax';
  const prefix = o.prefix ?? '/model/layers';
  const nodes: NodeInit[] = [];
  const inits: ReturnType<typeof weight>[] = [weight('embed.weight', [16, D], o.external)];
  const outputs: string[] = [];
  const inputs = ['input_ids', 'attention_bias'];
  const n = (opType: string, name: string, input: string[], output: string[], extra: Partial<NodeInit> = {}) => nodes.push({ opType, name, input, output, ...extra });
  const w = (name: string, dims = [D, D]) => {
    inits.push(weight(name, dims, o.external));
    return name;
  };
  w('ln.w', [D]);
  w('ln.b', [D]);
  inits.push({ name: 'scale', dims: [], dataType: TensorProto_DataType.FLOAT, floatData: [0.25] } as never);
  n('Gather', '/model/embed_tokens/Gather', ['embed.weight', 'input_ids'], ['/model/embed_tokens/Gather_output_0']);
  // A shared tensor every layer reads that is *not* the residual stream (like rotary tables / masks).
  n('Mul', '/model/rotary_emb/Mul', ['attention_bias', 'scale'], ['/model/rotary_emb/Mul_output_0']);
  let x = '/model/embed_tokens/Gather_output_0';
  let pendingSkip: { mlp: string; residual: string } | undefined; // genai: residual add done by the next norm
  for (let i = 0; i < layers; i++) {
    const P = `${prefix}.${i}`;
    const t = (s: string) => `${P}/${s}_output_0`;
    // ---- norm 1 (and, for genai, the previous layer's last residual add)
    let ln1: string;
    if (o.genai && pendingSkip) {
      n('SkipSimplifiedLayerNormalization', `${P}/input_layernorm/SkipLayerNorm`, [pendingSkip.mlp, pendingSkip.residual, 'ln.w'], [t('input_layernorm'), '', '', `${P}/input_layernorm/output_3`], { domain: 'com.microsoft' });
      x = `${P}/input_layernorm/output_3`;
      ln1 = t('input_layernorm');
    } else if (o.genai) {
      n('SimplifiedLayerNormalization', `${P}/input_layernorm/LayerNorm`, [x, 'ln.w'], [t('input_layernorm')]);
      ln1 = t('input_layernorm');
    } else if (o.postNorm) {
      ln1 = x;
    } else {
      n('LayerNormalization', `${P}/ln1/LayerNormalization`, [x, 'ln.w', 'ln.b'], [t('ln1/LayerNormalization')]);
      ln1 = t('ln1/LayerNormalization');
    }
    // ---- attention
    for (const p of ['q', 'k', 'v']) n('MatMul', `${P}/attn/${p}_proj/MatMul`, [ln1, w(`${P}.${p}`)], [t(`attn/${p}_proj/MatMul`)]);
    const [q, k, v] = ['q', 'k', 'v'].map((p) => t(`attn/${p}_proj/MatMul`)) as [string, string, string];
    let attnOut: string;
    if (attention === 'softmax') {
      n('Transpose', `${P}/attn/Transpose`, [k], [t('attn/Transpose')], { attribute: [{ name: 'perm', type: AttributeProto_AttributeType.INTS, ints: [0n, 2n, 1n] }] });
      n('MatMul', `${P}/attn/MatMul`, [q, t('attn/Transpose')], [t('attn/MatMul')]);
      n('Mul', `${P}/attn/Mul`, [t('attn/MatMul'), 'scale'], [t('attn/Mul')]);
      n('Add', `${P}/attn/Add`, [t('attn/Mul'), '/model/rotary_emb/Mul_output_0'], [t('attn/Add')]);
      n('Softmax', `${P}/attn/Softmax`, [t('attn/Add')], [t('attn/Softmax')], { attribute: [intAttr('axis', -1)] });
      n('MatMul', `${P}/attn/MatMul_1`, [t('attn/Softmax'), v], [t('attn/MatMul_1')]);
      attnOut = t('attn/MatMul_1');
    } else if (attention === 'gqa') {
      const outs = [t('attn/GroupQueryAttention'), `present.${i}.key`, `present.${i}.value`];
      if (o.gqaWithOutputQk) outs.push(`${P}/attn/qk`);
      n('GroupQueryAttention', `${P}/attn/GroupQueryAttention`, [q, k, v, `past_key_values.${i}.key`, `past_key_values.${i}.value`, 'seqlens_k', 'total_seq_len'], outs, {
        domain: 'com.microsoft',
        attribute: [intAttr('num_heads', 1), intAttr('kv_num_heads', 1), ...(o.gqaWithOutputQk ? [intAttr('qk_output', 2)] : [])],
      });
      outputs.push(`present.${i}.key`, `present.${i}.value`);
      if (o.gqaWithOutputQk) outputs.push(`${P}/attn/qk`);
      inputs.push(`past_key_values.${i}.key`, `past_key_values.${i}.value`);
      attnOut = t('attn/GroupQueryAttention');
    } else if (attention === 'onnx-attention') {
      n('Attention', `${P}/attn/Attention`, [q, k, v, '/model/rotary_emb/Mul_output_0'], [t('attn/Attention')], { attribute: [intAttr('q_num_heads', 1), intAttr('kv_num_heads', 1)] });
      attnOut = t('attn/Attention');
    } else {
      n('Attention', `${P}/attn/Attention`, [ln1, w(`${P}.qkv`, [D, 3 * D])], [t('attn/Attention')], { domain: 'com.microsoft', attribute: [intAttr('num_heads', 1)] });
      attnOut = t('attn/Attention');
    }
    n('MatMul', `${P}/attn/o_proj/MatMul`, [attnOut, w(`${P}.o`)], [t('attn/o_proj/MatMul')]);
    const o1 = t('attn/o_proj/MatMul');
    // ---- residual 1 + norm 2
    let mid: string;
    let ln2: string;
    if (o.genai) {
      n('SkipSimplifiedLayerNormalization', `${P}/post_attention_layernorm/SkipLayerNorm`, [o1, x, 'ln.w'], [t('post_attention_layernorm'), '', '', `${P}/post_attention_layernorm/output_3`], { domain: 'com.microsoft' });
      mid = `${P}/post_attention_layernorm/output_3`;
      ln2 = t('post_attention_layernorm');
    } else {
      n('Add', `${P}/Add`, [x, o1], [t('Add')]);
      mid = t('Add');
      if (o.postNorm) {
        n('LayerNormalization', `${P}/ln1/LayerNormalization`, [mid, 'ln.w', 'ln.b'], [t('ln1/LayerNormalization')]);
        mid = t('ln1/LayerNormalization');
        ln2 = mid;
      } else {
        n('LayerNormalization', `${P}/ln2/LayerNormalization`, [mid, 'ln.w', 'ln.b'], [t('ln2/LayerNormalization')]);
        ln2 = t('ln2/LayerNormalization');
      }
    }
    // ---- MLP + residual 2
    n('MatMul', `${P}/mlp/fc1/MatMul`, [ln2, w(`${P}.fc1`)], [t('mlp/fc1/MatMul')]);
    n('Relu', `${P}/mlp/Relu`, [t('mlp/fc1/MatMul')], [t('mlp/Relu')]);
    n('MatMul', `${P}/mlp/fc2/MatMul`, [t('mlp/Relu'), w(`${P}.fc2`)], [t('mlp/fc2/MatMul')]);
    if (o.genai) {
      pendingSkip = { mlp: t('mlp/fc2/MatMul'), residual: mid };
    } else {
      n('Add', `${P}/Add_1`, [mid, t('mlp/fc2/MatMul')], [t('Add_1')]);
      x = t('Add_1');
      if (o.postNorm) {
        n('LayerNormalization', `${P}/ln2/LayerNormalization`, [x, 'ln.w', 'ln.b'], [t('ln2/LayerNormalization')]);
        x = t('ln2/LayerNormalization');
      }
    }
  }
  if (o.lmHead ?? true) {
    let normed: string;
    if (o.genai) {
      const name = `${prefix}.${layers}/final_norm_layernorm/SkipLayerNorm`;
      n('SkipSimplifiedLayerNormalization', name, [pendingSkip!.mlp, pendingSkip!.residual, 'ln.w'], ['/model/final_norm'], { domain: 'com.microsoft' });
      normed = '/model/final_norm';
    } else {
      n('LayerNormalization', '/model/norm/LayerNormalization', [x, 'ln.w', 'ln.b'], ['/model/norm/LayerNormalization_output_0']);
      normed = '/model/norm/LayerNormalization_output_0';
    }
    n('MatMul', '/lm_head/MatMul', [normed, w('lm_head.weight', [D, 16])], ['logits']);
    outputs.unshift('logits');
  } else {
    n('Identity', '/Identity', [x], ['last_hidden_state']);
    outputs.unshift('last_hidden_state');
  }
  if (attention === 'gqa') inputs.push('seqlens_k', 'total_seq_len');
  const opset = attention === 'onnx-attention' ? 23n : 17n;
  return create(ModelProtoSchema, {
    irVersion: attention === 'onnx-attention' ? 10n : 8n,
    producerName: 'loupe-test',
    opsetImport: [
      { domain: '', version: opset },
      { domain: 'com.microsoft', version: 1n },
    ],
    graph: { name: 'test_graph', node: nodes, initializer: inits, input: inputs.map(io), output: outputs.map(io) },
  });
}

/** A main graph whose layers live in both branches of an If node (like Optimum's merged decoders). */
export function buildIfModel(): ModelProto {
  const inner = buildTransformer({ layers: 2 }).graph!;
  const then = { name: 'then', node: inner.node, initializer: inner.initializer, output: [io('logits')] };
  const other = {
    name: 'else',
    node: [{ opType: 'Identity', name: '/else/Identity', input: ['input_ids'], output: ['else_out'] }],
    output: [io('else_out')],
  };
  return create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [{ domain: '', version: 17n }],
    graph: {
      name: 'merged',
      input: [io('use_cache_branch'), io('input_ids'), io('attention_bias')],
      node: [
        {
          opType: 'If',
          name: '/If',
          input: ['use_cache_branch'],
          output: ['logits'],
          attribute: [
            { name: 'then_branch', type: AttributeProto_AttributeType.GRAPH, g: then },
            { name: 'else_branch', type: AttributeProto_AttributeType.GRAPH, g: other },
          ],
        },
      ],
      output: [io('logits')],
    },
  });
}

/**
 * Optimum's merged-decoder shape: an If on `use_cache_branch` whose two branches each hold the
 * whole decoder (here the same layers; tensor names prefixed per branch, as two exports would name them).
 */
export function buildMergedModel(layers = 2): ModelProto {
  const branch = (prefix: string) => {
    const inner = buildTransformer({ layers }).graph!;
    const outer = new Set(['input_ids', 'attention_bias', ...inner.initializer.map((t) => t.name)]);
    const rename = (t: string) => (t === '' || outer.has(t) ? t : `${prefix}${t}`);
    return {
      name: prefix,
      node: inner.node.map((n) => ({ ...n, name: `${prefix}${n.name}`, input: n.input.map(rename), output: n.output.map(rename) })),
      initializer: inner.initializer,
      output: [io(`${prefix}logits`)],
    };
  };
  return create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [{ domain: '', version: 17n }],
    graph: {
      name: 'merged',
      input: [{ name: 'use_cache_branch', type: { value: { case: 'tensorType' as const, value: { elemType: TensorProto_DataType.BOOL } } } }, io('input_ids'), io('attention_bias')],
      node: [
        {
          opType: 'If',
          name: 'optimum::if',
          input: ['use_cache_branch'],
          output: ['logits'],
          attribute: [
            { name: 'then_branch', type: AttributeProto_AttributeType.GRAPH, g: branch('with_past/') },
            { name: 'else_branch', type: AttributeProto_AttributeType.GRAPH, g: branch('no_past/') },
          ],
        },
      ],
      output: [io('logits')],
    },
  });
}
