/**
 * The module path in a node's name, used only to *label* a layer stack that the structural
 * site finder (layer-sites.ts) found — never to find layers.
 *
 * Exporters keep the PyTorch module path in node names:
 *   TorchScript / dynamo (HF)   /vision_tower/layers.0/self_attn/MatMul, /language_model/layers.3/...
 *   onnxruntime-genai builder   /model/layers.0/attn/GroupQueryAttention
 *   GPT-2 / ViT style           /transformer/h.0/attn/..., /encoder/layer.5/..., /blocks.2/...
 *   dotted module paths         model.layers.0.self_attn.q_proj
 * A path segment `layers.N`, `layer.N`, `blocks.N`, `block.N` or `h.N` gives the layer index;
 * the text before it (e.g. `/language_model/layers`) names the stack. ORT's transformer
 * optimizer names fused nodes `Attention_0`, which carry no path.
 */
import type { NodeProto } from 'onnx-buf';

const LAYER_SEGMENT = /(^|[/.])(layers|layer|blocks|block|h)\.(\d+)(?=[/.]|$)/;

export function layerOf(node: NodeProto): { stack: string; index: number } | undefined {
  const m = LAYER_SEGMENT.exec(node.name);
  if (!m) return undefined;
  return { stack: node.name.slice(0, m.index) + m[1] + m[2], index: Number(m[3]) };
}
