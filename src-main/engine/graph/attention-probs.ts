/**
 * Attention probabilities for fused com.microsoft Attention / MultiHeadAttention, which compute
 * them internally and have no output for them (ORT's transformer optimizer fuses CLIP, BERT and
 * ViT attention into these). A tap on `<node>/loupe_attention_probs` adds a *shadow* branch that
 * recomputes softmax(q·kᵀ·scale + attention_bias) from the fused op's own inputs with plain ops;
 * the fused op itself is left as it is, so the model's outputs stay bit-identical.
 *
 *   Attention (packed)      qkv = input · W + b, split by qkv_hidden_sizes (default 3 equal parts)
 *   MultiHeadAttention      q = query + b[0:D], k = key + b[D:2D] (bias optional), 3-D query/key
 * Then per head: [B, S, N·h] → [B, N, S, h]; scores = q·kᵀ · scale (attribute, default 1/√h)
 * + attention_bias (input 5, the additive bias ablation wires in, when present); Softmax(-1).
 *
 * Refused by name (TapError from addTaps): masks other than the additive bias (mask_index,
 * key_padding_mask), past state, causal (`unidirectional=1`) Attention, packed QKV in MHA,
 * rotary inside the op (`do_rotary`), or weights whose shape is not in the graph.
 */
import { create } from '@bufbuild/protobuf';
import { AttributeProto_AttributeType, NodeProtoSchema, TensorProto_DataType } from 'onnx-buf';
import type { GraphProto, NodeProto, TensorProto } from 'onnx-buf';

const MS = 'com.microsoft';
const SUFFIX = 'loupe_attention_probs';

/** Fused ops whose probabilities a shadow branch can give. */
export function hasShadowProbs(node: NodeProto): boolean {
  return node.domain === MS && (node.opType === 'Attention' || node.opType === 'MultiHeadAttention');
}

export function shadowProbsName(node: NodeProto): string {
  return `${node.name || node.output[0]}/${SUFFIX}`;
}

const attr = (node: NodeProto, name: string) => node.attribute.find((a) => a.name === name);
const intAttr = (node: NodeProto, name: string) => {
  const a = attr(node, name);
  return a ? Number(a.i) : undefined;
};

/** Why the shadow cannot be built for this node, or undefined when it can. */
export function shadowProbsRefusal(graph: GraphProto, node: NodeProto): string | undefined {
  const used = (slot: number) => !!node.input[slot];
  const what = `com.microsoft::${node.opType} "${node.name}"`;
  if (!intAttr(node, 'num_heads')) return `${what} has no num_heads attribute`;
  if (intAttr(node, 'do_rotary')) return `${what} applies rotary inside the op (do_rotary); its probabilities cannot be recomputed from its inputs`;
  if (node.opType === 'Attention') {
    if (intAttr(node, 'unidirectional')) return `${what} is causal (unidirectional=1); probability taps support bidirectional Attention only`;
    if (used(3)) return `${what} takes a mask_index (input 3); probability taps support the additive attention_bias only`;
    if (used(4) || used(6)) return `${what} takes past state; probability taps need a graph without past`;
    if (!weightDims(graph, node.input[1]!)) return `${what}: the shape of its weights "${node.input[1]}" is not in the graph`;
  } else {
    if (!used(1) || !used(2)) return `${what} has packed QKV (no separate key/value inputs); not supported for probability taps`;
    if (used(4)) return `${what} takes a key_padding_mask (input 4); probability taps support the additive attention_bias only`;
    if (used(6) || used(7)) return `${what} takes past state; probability taps need a graph without past`;
  }
  return undefined;
}

function weightDims(graph: GraphProto, name: string): number[] | undefined {
  const t: TensorProto | undefined = graph.initializer.find((i) => i.name === name);
  return t ? t.dims.map(Number) : undefined;
}

/**
 * Inserts the shadow branch right before `node` (it reads only the node's inputs) and returns
 * the probabilities' name. `elemType` is the float type of the node's input.
 */
export function addShadowProbs(graph: GraphProto, node: NodeProto, elemType: TensorProto_DataType): string {
  const refusal = shadowProbsRefusal(graph, node);
  if (refusal) throw new Error(refusal);
  const heads = intAttr(node, 'num_heads')!;
  const base = `${node.name || node.output[0]}/loupe_probs`;
  const t = (s: string) => `${base}/${s}`;
  const nodes: NodeProto[] = [];
  const add = (opType: string, name: string, input: string[], output: string[], attribute: NodeProto['attribute'] = []) =>
    nodes.push(create(NodeProtoSchema, { opType, name: t(name), input, output, attribute }));
  const ints = (name: string, values: number[]) =>
    add('Constant', name, [], [t(name)], [{ name: 'value', type: AttributeProto_AttributeType.TENSOR, t: { dims: [BigInt(values.length)], dataType: TensorProto_DataType.INT64, int64Data: values.map(BigInt) } } as never]);
  const floatScalar = (name: string, value: number) =>
    add('Constant', name, [], [t(name)], [{ name: 'value', type: AttributeProto_AttributeType.TENSOR, t: { dims: [], dataType: TensorProto_DataType.FLOAT, floatData: [value] } } as never]);

  let q: string;
  let k: string;
  let hidden: number | undefined;
  if (node.opType === 'Attention') {
    const [, cols] = weightDims(graph, node.input[1]!)!;
    const sizesAttr = attr(node, 'qkv_hidden_sizes');
    const sizes = sizesAttr?.ints.length ? sizesAttr.ints.map(Number) : [cols! / 3, cols! / 3, cols! / 3];
    hidden = sizes[0]!;
    add('MatMul', 'MatMul', [node.input[0]!, node.input[1]!], [t('qkv')]);
    let qkv = t('qkv');
    if (node.input[2]) {
      add('Add', 'AddBias', [qkv, node.input[2]], [t('qkv_b')]);
      qkv = t('qkv_b');
    }
    ints('split', sizes);
    add('Split', 'Split', [qkv, t('split')], [t('q'), t('k'), t('v')], [{ name: 'axis', type: AttributeProto_AttributeType.INT, i: -1n } as never]);
    q = t('q');
    k = t('k');
  } else {
    q = node.input[0]!;
    k = node.input[1]!;
    if (node.input[3]) {
      // Bias [3·D]: q gets the first third, k the second.
      add('Shape', 'BiasShape', [node.input[3]], [t('bias_shape')]);
      ints('zero', [0]);
      ints('three', [3]);
      add('Div', 'Third', [t('bias_shape'), t('three')], [t('d')]);
      add('Add', 'TwoThirds', [t('d'), t('d')], [t('d2')]);
      add('Slice', 'BiasQ', [node.input[3], t('zero'), t('d'), t('zero')], [t('bq')]);
      add('Slice', 'BiasK', [node.input[3], t('d'), t('d2'), t('zero')], [t('bk')]);
      add('Add', 'AddQ', [q, t('bq')], [t('q_b')]);
      add('Add', 'AddK', [k, t('bk')], [t('k_b')]);
      q = t('q_b');
      k = t('k_b');
    }
  }
  // [B, S, N·h] → [B, N, S, h] (q) and [B, N, h, S] (kᵀ).
  ints('heads_shape', [0, 0, heads, -1]);
  add('Reshape', 'ReshapeQ', [q, t('heads_shape')], [t('q4')]);
  add('Reshape', 'ReshapeK', [k, t('heads_shape')], [t('k4')]);
  add('Transpose', 'TransposeQ', [t('q4')], [t('qh')], [{ name: 'perm', type: AttributeProto_AttributeType.INTS, ints: [0n, 2n, 1n, 3n] } as never]);
  add('Transpose', 'TransposeK', [t('k4')], [t('kt')], [{ name: 'perm', type: AttributeProto_AttributeType.INTS, ints: [0n, 2n, 3n, 1n] } as never]);
  add('MatMul', 'Scores', [t('qh'), t('kt')], [t('qk')]);
  const scale = attr(node, 'scale')?.f;
  if (scale) {
    floatScalar('scale', scale);
  } else if (hidden !== undefined) {
    floatScalar('scale', 1 / Math.sqrt(hidden / heads));
  } else {
    // 1/√h from the query's last dimension.
    add('Shape', 'HeadDim', [t('qh')], [t('qh_shape')]);
    ints('minus1', [-1]);
    ints('end', [2 ** 53]);
    ints('axis0', [0]);
    add('Slice', 'HeadDimSlice', [t('qh_shape'), t('minus1'), t('end'), t('axis0')], [t('hd')]);
    add('Cast', 'HeadDimFloat', [t('hd')], [t('hd_f')], [{ name: 'to', type: AttributeProto_AttributeType.INT, i: BigInt(TensorProto_DataType.FLOAT) } as never]);
    add('Sqrt', 'SqrtHeadDim', [t('hd_f')], [t('sqrt_hd')]);
    add('Reciprocal', 'InvSqrt', [t('sqrt_hd')], [t('scale_vec')]);
    add('Squeeze', 'ScaleScalar', [t('scale_vec'), t('axis0')], [t('scale')]);
  }
  let scaleName = t('scale');
  if (elemType !== TensorProto_DataType.FLOAT) {
    add('Cast', 'ScaleCast', [scaleName], [t('scale_cast')], [{ name: 'to', type: AttributeProto_AttributeType.INT, i: BigInt(elemType) } as never]);
    scaleName = t('scale_cast');
  }
  add('Mul', 'Scale', [t('qk'), scaleName], [t('scores')]);
  let scores = t('scores');
  // The additive bias (ablation wires its input here too, so the tap sees the edited attention).
  if (node.input[5]) {
    add('Add', 'Bias', [scores, node.input[5]], [t('scores_b')]);
    scores = t('scores_b');
  }
  const out = shadowProbsName(node);
  add('Softmax', 'Softmax', [scores], [out], [{ name: 'axis', type: AttributeProto_AttributeType.INT, i: -1n } as never]);
  graph.node.splice(graph.node.indexOf(node), 0, ...nodes);
  return out;
}
