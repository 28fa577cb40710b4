/**
 * Fused ops whose interesting tensor is an *optional output* that the exporter may not have
 * asked for. To tap it we switch the output on: give the output slot a name (padding the
 * skipped slots with '' as ONNX requires for positional optional outputs) and set the
 * attribute that selects what it holds.
 *
 *   com.microsoft::GroupQueryAttention  output 3 `output_qk`, attribute `qk_output=2`
 *                                        (1 = raw scores, 2 = after softmax) — CPU-verified.
 *   ai.onnx::Attention (opset 23)        output 3 `qk_matmul_output`, `qk_matmul_output_mode=3`
 *                                        (post-softmax; mode 1 behaved like 0 in ORT 1.30).
 *   com.microsoft::Skip[Simplified]LayerNormalization
 *                                        output 3 `input_skip_bias_sum` = the residual stream
 *                                        (the onnxruntime-genai builder folds the residual Add
 *                                        into the next layer's norm; no attribute needed).
 *
 * When the slot is unnamed, the catalogue reports a deterministic synthetic name
 * (`<node>/loupe_<what>`); addTaps recognises it and switches the output on.
 */
import { create } from '@bufbuild/protobuf';
import { AttributeProtoSchema, AttributeProto_AttributeType } from 'onnx-buf';
import type { NodeProto } from 'onnx-buf';

export type OptionalOutputKind = 'gqa-probs' | 'onnx-attention-probs' | 'skip-norm-residual';

interface Spec {
  kind: OptionalOutputKind;
  slot: number;
  suffix: string;
  attribute?: { name: string; value: bigint };
}

const MS = 'com.microsoft';

export function optionalOutputSpec(node: NodeProto): Spec | undefined {
  const domain = node.domain === 'ai.onnx' ? '' : node.domain;
  if (domain === MS && node.opType === 'GroupQueryAttention') return { kind: 'gqa-probs', slot: 3, suffix: 'output_qk', attribute: { name: 'qk_output', value: 2n } };
  if (domain === '' && node.opType === 'Attention') return { kind: 'onnx-attention-probs', slot: 3, suffix: 'qk_matmul_output', attribute: { name: 'qk_matmul_output_mode', value: 3n } };
  if (domain === MS && (node.opType === 'SkipLayerNormalization' || node.opType === 'SkipSimplifiedLayerNormalization')) return { kind: 'skip-norm-residual', slot: 3, suffix: 'input_skip_bias_sum' };
  return undefined;
}

/** The name the optional output has, or will have once switched on. */
export function optionalOutputName(node: NodeProto, spec: Spec): string {
  const existing = node.output[spec.slot];
  if (existing) return existing;
  return `${node.name || node.output[0] || node.opType}/loupe_${spec.suffix}`;
}

/** Whether the node already produces the output with the wanted semantics. */
export function attributeValue(node: NodeProto, name: string): bigint | undefined {
  const a = node.attribute.find((x) => x.name === name);
  return a ? a.i : undefined;
}

/**
 * Switch the optional output on, in place. Throws when the slot is already used with other
 * semantics (e.g. GQA `qk_output=1`, raw scores) by something else in the graph: changing the
 * attribute would silently change what that consumer reads.
 */
export function enableOptionalOutput(node: NodeProto, spec: Spec, name: string, slotInUse: boolean): void {
  if (spec.attribute) {
    const current = attributeValue(node, spec.attribute.name);
    if (current !== undefined && current !== spec.attribute.value && current !== 0n && slotInUse) {
      throw new Error(`node "${node.name}" (${node.opType}) already exposes output ${spec.slot} with ${spec.attribute.name}=${current}, which other nodes or outputs read; refusing to switch it to ${spec.attribute.value}`);
    }
    const attr = node.attribute.find((x) => x.name === spec.attribute!.name);
    if (attr) {
      attr.i = spec.attribute.value;
      attr.type = AttributeProto_AttributeType.INT;
    } else {
      node.attribute.push(create(AttributeProtoSchema, { name: spec.attribute.name, type: AttributeProto_AttributeType.INT, i: spec.attribute.value }));
    }
  }
  while (node.output.length <= spec.slot) node.output.push('');
  node.output[spec.slot] = name;
}
