/**
 * Grouping nodes into transformer layers by their names.
 *
 * Exporters keep the PyTorch module path in node names:
 *   TorchScript / dynamo (HF)   /vision_tower/layers.0/self_attn/MatMul, /language_model/layers.3/...
 *   onnxruntime-genai builder   /model/layers.0/attn/GroupQueryAttention
 *   GPT-2 / ViT style           /transformer/h.0/attn/..., /encoder/layer.5/..., /blocks.2/...
 *   dotted module paths         model.layers.0.self_attn.q_proj
 * A path segment `layers.N`, `layer.N`, `blocks.N`, `block.N` or `h.N` gives the layer index;
 * the text before it (e.g. `/language_model/layers`) names the *stack*, so a graph holding a
 * vision tower and a text model keeps them apart.
 *
 * A group counts as a layer only when it does real work (an attention op or a matrix
 * product): the genai builder names its final norm `/model/layers.N/final_norm_layernorm`,
 * which is not a layer.
 */
import type { GraphProto, NodeProto } from 'onnx-buf';

const LAYER_SEGMENT = /(^|[/.])(layers|layer|blocks|block|h)\.(\d+)(?=[/.]|$)/;

const WORK_OPS = new Set([
  'MatMul', 'Gemm', 'MatMulNBits', 'MatMulInteger', 'FusedMatMul', 'QLinearMatMul', 'MatMulBnb4', 'DynamicQuantizeMatMul',
  'Softmax', 'Attention', 'GroupQueryAttention', 'MultiHeadAttention', 'PackedAttention', 'Conv',
]);

export interface LayerGroup {
  stack: string;
  index: number;
  /** Positions in `graph.node`, ascending. */
  nodes: number[];
}

export function layerOf(node: NodeProto): { stack: string; index: number } | undefined {
  const m = LAYER_SEGMENT.exec(node.name);
  if (!m) return undefined;
  return { stack: node.name.slice(0, m.index) + m[1] + m[2], index: Number(m[3]) };
}

/** All stacks found in the graph, each with its layer groups sorted by index. */
export function layerStacks(graph: GraphProto): Map<string, LayerGroup[]> {
  const groups = new Map<string, Map<number, LayerGroup>>();
  graph.node.forEach((node, at) => {
    const l = layerOf(node);
    if (!l) return;
    let stack = groups.get(l.stack);
    if (!stack) groups.set(l.stack, (stack = new Map()));
    let g = stack.get(l.index);
    if (!g) stack.set(l.index, (g = { stack: l.stack, index: l.index, nodes: [] }));
    g.nodes.push(at);
  });
  const out = new Map<string, LayerGroup[]>();
  for (const [name, stack] of groups) {
    const layers = [...stack.values()].filter((g) => g.nodes.some((at) => WORK_OPS.has(graph.node[at]!.opType))).sort((a, b) => a.index - b.index);
    if (layers.length) out.set(name, layers);
  }
  return out;
}
