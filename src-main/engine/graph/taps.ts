/**
 * Exposing internal tensors ("taps") as graph outputs, and caching the rewritten file.
 *
 * A tap is a `ValueInfoProto` appended to `graph.output`. Only the name is needed: ORT infers
 * type and shape (and keeps graph outputs alive through its optimizers). Where the graph's
 * `value_info` already describes the tensor, that entry is copied so tools see the type.
 * Taps that name an optional output of a fused op (GQA `output_qk`, ONNX Attention
 * `qk_matmul_output`, skip-norm `input_skip_bias_sum`) first switch that output on
 * (optional-outputs.ts).
 *
 * Tensors inside If/Loop/Scan subgraphs are refused: a subgraph tensor can reach the main
 * graph only by becoming an output of *every* branch (If branches must agree on their
 * outputs) and of the If node, under a new name (ONNX forbids reusing a name across scopes),
 * and Loop/Scan bodies would return it once per iteration with different shapes. Optimum
 * "merged" decoders are the case in practice; their unmerged decoder files tap fine.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { clone, create } from '@bufbuild/protobuf';
import { ValueInfoProtoSchema } from 'onnx-buf';
import type { ModelProto, NodeProto } from 'onnx-buf';
import { allGraphs, cloneModel, decodeModel, encodeModel } from './model-proto.ts';
import { definedNames, indexGraph } from './graph-index.ts';
import { enableOptionalOutput, optionalOutputName, optionalOutputSpec } from './optional-outputs.ts';
import { addShadowProbs, hasShadowProbs, shadowProbsName } from './attention-probs.ts';
import { elemTypeOf } from './attention-sites.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';

/** Bump when the rewrite changes, so cached tapped files from older code are not reused. */
export const TAP_FORMAT_VERSION = 2;

export class TapError extends Error {
  override name = 'TapError';
}

/** A copy of `model` whose main graph also outputs `tensorNames` (deduplicated; existing outputs kept as they are). */
export function addTaps(model: ModelProto, tensorNames: readonly string[]): ModelProto {
  return addTapsInPlace(cloneModel(model), tensorNames);
}

/** addTaps without the copy, for a model decoded just for this (a multi-GB inline-weight model is not duplicated). */
export function addTapsInPlace(out: ModelProto, tensorNames: readonly string[]): ModelProto {
  const graph = out.graph;
  if (!graph) throw new TapError('model has no graph');
  const ix = indexGraph(graph);
  const defined = definedNames(ix);

  // Synthetic names of optional outputs not yet switched on, and of shadow probabilities → their node.
  const optional = new Map<string, { at: number }>();
  const shadows = new Map<string, NodeProto>();
  graph.node.forEach((node, at) => {
    const spec = optionalOutputSpec(node);
    if (spec) optional.set(optionalOutputName(node, spec), { at });
    if (hasShadowProbs(node)) shadows.set(shadowProbsName(node), node);
  });

  const missing: string[] = [];
  const inSubgraph: string[] = [];
  const wanted = [...new Set(tensorNames)];
  for (const name of wanted) {
    if (ix.graphOutputs.has(name)) continue;
    if (ix.initializers.has(name)) throw new TapError(`tap "${name}" is an initializer (a weight), not an activation`);
    const opt = optional.get(name);
    const shadow = shadows.get(name);
    if (shadow && !defined.has(name)) {
      const scope = { graph, label: 'main', depth: 0 };
      const elemType = elemTypeOf(ix, shadow.input[0]!, scope);
      if (elemType === undefined) throw new TapError(`cannot tell the float type of "${shadow.input[0]}" for the probabilities of ${shadow.opType} "${shadow.name}"`);
      try {
        addShadowProbs(graph, shadow, elemType);
      } catch (e) {
        throw new TapError(`attention probabilities of com.microsoft::${shadow.opType} "${shadow.name}": ${(e as Error).message}`);
      }
    } else if (opt) {
      const node = graph.node[opt.at]!;
      const spec = optionalOutputSpec(node)!;
      const existing = node.output[spec.slot];
      const inUse = !!existing && ((ix.consumers.get(existing)?.length ?? 0) > 0 || ix.graphOutputs.has(existing));
      enableOptionalOutput(node, spec, name, inUse);
    } else if (!defined.has(name)) {
      (subgraphDefines(out, name) ? inSubgraph : missing).push(name);
      continue;
    }
    const info = graph.valueInfo.find((v) => v.name === name);
    graph.output.push(info ? clone(ValueInfoProtoSchema, info) : create(ValueInfoProtoSchema, { name }));
    ix.graphOutputs.add(name);
  }
  if (inSubgraph.length) {
    throw new TapError(
      `tap tensor(s) ${inSubgraph.map((n) => `"${n}"`).join(', ')} live inside an If/Loop/Scan subgraph; only main-graph tensors can be tapped ` +
        '(a subgraph tensor would have to become an output of every branch and of the If node under a new name). For Optimum merged decoders use the unmerged decoder file.',
    );
  }
  if (missing.length) throw new TapError(`tap tensor(s) not found in graph "${graph.name}": ${missing.map((n) => `"${n}"`).join(', ')}`);
  return out;
}

function subgraphDefines(model: ModelProto, name: string): boolean {
  for (const scope of allGraphs(model)) {
    if (scope.depth === 0) continue;
    if (scope.graph.node.some((n) => n.output.includes(name))) return true;
  }
  return false;
}

/** File name of the tapped copy: `<stem>.loupe-taps-<hash>.onnx`, hash over the original's content, the sorted tap names and the format version. */
export function tappedFileName(originalPath: string, originalBytes: Uint8Array, tensorNames: readonly string[]): string {
  const contentSha = createHash('sha256').update(originalBytes).digest('hex');
  const taps = [...new Set(tensorNames)].sort();
  const key = createHash('sha256').update(JSON.stringify({ content: contentSha, taps, format: TAP_FORMAT_VERSION })).digest('hex');
  const stem = basename(originalPath, extname(originalPath));
  return join(dirname(originalPath), `${stem}.loupe-taps-${key.slice(0, 16)}.onnx`);
}

/**
 * Path of a copy of the model at `originalPath` that also outputs `tensorNames`, written next
 * to the original (same folder: ORT resolves external-data `location`s relative to the model
 * file and rejects `..`, absolute paths and symlinks escaping it). Reused when already there;
 * the cache key covers the original's bytes, so an edited original gets a new file.
 * Written to a temp file and renamed, so a crash never leaves a half-written model under the
 * final name. Only the `.onnx` graph file is read; `.onnx_data` files are never touched.
 */
export async function tappedModelPath(originalPath: string, tensorNames: readonly string[]): Promise<string> {
  const bytes = new Uint8Array(await readFile(originalPath));
  const target = tappedFileName(originalPath, bytes, tensorNames);
  if (existsSync(target)) return target;
  const rewritten = encodeModel(addTapsInPlace(decodeModel(bytes), tensorNames));
  await writeFileAtomic(target, rewritten);
  return target;
}
