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
import { AttributeProto_AttributeType, NodeProtoSchema, TensorProto_DataType, ValueInfoProtoSchema } from 'onnx-buf';
import type { GraphProto, ModelProto, NodeProto } from 'onnx-buf';
import { allGraphs, cloneModel, decodeModel, encodeModel } from './model-proto.ts';
import { type GraphIndex, definedNames, indexGraph } from './graph-index.ts';
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
  const main = new TapScope(graph);
  const missing: string[] = [];
  const inSubgraph: string[] = [];
  const tapOne = (name: string): boolean => {
    if (main.ix.graphOutputs.has(name)) return true;
    const branch = parseBranchTap(name);
    if (branch) {
      addBranchTap(main, name, branch);
      return true;
    }
    if (!main.materialize(name)) {
      (subgraphDefines(out, name) ? inSubgraph : missing).push(name);
      return false;
    }
    main.output(name);
    return true;
  };
  for (const name of new Set(tensorNames)) {
    const fp16Of = parseFp16Tap(name);
    if (fp16Of === undefined) tapOne(name);
    else if (tapOne(fp16Of) && !main.ix.graphOutputs.has(name)) addFp16Tap(main, fp16Of, name);
  }
  if (inSubgraph.length) {
    throw new TapError(
      `tap tensor(s) ${inSubgraph.map((n) => `"${n}"`).join(', ')} live inside an If/Loop/Scan subgraph; name them as branch taps (branchTapName: the tensor in each If branch) ` +
        '— a subgraph tensor reaches the main graph only as an output of every branch and of the If node.',
    );
  }
  if (missing.length) throw new TapError(`tap tensor(s) not found in graph "${graph.name}": ${missing.map((n) => `"${n}"`).join(', ')}`);
  return out;
}

/** One graph being tapped: makes tapped tensors exist (optional outputs, shadow probabilities) and outputs them. */
class TapScope {
  readonly graph: GraphProto;
  readonly ix: GraphIndex;
  private readonly defined: Set<string>;
  /** Synthetic names of optional outputs not yet switched on, and of shadow probabilities → their node. */
  private readonly optional = new Map<string, NodeProto>();
  private readonly shadows = new Map<string, NodeProto>();

  constructor(graph: GraphProto) {
    this.graph = graph;
    this.ix = indexGraph(graph);
    this.defined = definedNames(this.ix);
    for (const node of graph.node) {
      const spec = optionalOutputSpec(node);
      if (spec) this.optional.set(optionalOutputName(node, spec), node);
      if (hasShadowProbs(node)) this.shadows.set(shadowProbsName(node), node);
    }
  }

  /** Makes `name` a tensor of this graph; false when the graph has no such tensor. */
  materialize(name: string): boolean {
    if (this.ix.initializers.has(name)) throw new TapError(`tap "${name}" is an initializer (a weight), not an activation`);
    const shadow = this.defined.has(name) ? undefined : this.shadows.get(name);
    // An optional output that already exists may hold other semantics (GQA qk_output=1): enableOptionalOutput checks.
    const opt = this.optional.get(name);
    if (shadow) {
      const elemType = elemTypeOf(this.ix, shadow.input[0]!, { graph: this.graph, label: this.graph.name, depth: 0 });
      if (elemType === undefined) throw new TapError(`cannot tell the float type of "${shadow.input[0]}" for the probabilities of ${shadow.opType} "${shadow.name}"`);
      try {
        addShadowProbs(this.graph, shadow, elemType);
      } catch (e) {
        throw new TapError(`attention probabilities of com.microsoft::${shadow.opType} "${shadow.name}": ${(e as Error).message}`);
      }
    } else if (opt) {
      const spec = optionalOutputSpec(opt)!;
      const existing = opt.output[spec.slot];
      const inUse = !!existing && ((this.ix.consumers.get(existing)?.length ?? 0) > 0 || this.ix.graphOutputs.has(existing));
      enableOptionalOutput(opt, spec, name, inUse);
    } else if (!this.defined.has(name)) {
      return false;
    }
    this.defined.add(name);
    return true;
  }

  /** Appends `name` to the graph's outputs (with its value info when the graph has one). */
  output(name: string): void {
    const info = this.graph.valueInfo.find((v) => v.name === name);
    this.graph.output.push(info ? clone(ValueInfoProtoSchema, info) : create(ValueInfoProtoSchema, { name }));
    this.ix.graphOutputs.add(name);
  }

  /** Appends `name` as a new output slot even when it already is an output (through an Identity copy). */
  newOutput(name: string): void {
    if (!this.ix.graphOutputs.has(name)) return this.output(name);
    const copy = `${name}/loupe_tap_copy`;
    this.graph.node.push(create(NodeProtoSchema, { opType: 'Identity', name: copy, input: [name], output: [copy] }));
    this.output(copy);
  }
}

const FP16_TAP = 'loupe_fp16:';

/**
 * A tap of `tensor` converted to float16 inside the graph, for captures stored as fp16: the
 * runtime converts (ORT's Cast: MLAS vector code on CPU, on the device with a GPU provider), so
 * the tensor leaves the runtime at half the bytes and the store only gathers rows and writes.
 * ORT's Cast rounds to nearest-even exactly as `f32ToF16` (src-shared/tensor/half.ts) does on
 * every non-NaN float32 (tests/integration/fp16-cast-taps.test.ts); NaNs stay NaN (payload kept
 * as the hardware keeps it, where f32ToF16 writes the canonical 0x7e00).
 * `tensor` may itself be any tap name (a branch tap of a merged decoder included).
 */
export function fp16TapName(tensor: string): string {
  return `${FP16_TAP}${tensor}`;
}

function parseFp16Tap(name: string): string | undefined {
  return name.startsWith(FP16_TAP) ? name.slice(FP16_TAP.length) : undefined;
}

/** Cast(tensor → float16) as output `name`; an Identity where the tensor is fp16 already (fp16 exports). */
function addFp16Tap(main: TapScope, tensor: string, name: string): void {
  const elemType = elemTypeOf(main.ix, tensor, { graph: main.graph, label: main.graph.name, depth: 0 });
  const node =
    elemType === TensorProto_DataType.FLOAT16
      ? create(NodeProtoSchema, { opType: 'Identity', name: `${name}/loupe_identity`, input: [tensor], output: [name] })
      : create(NodeProtoSchema, { opType: 'Cast', name: `${name}/loupe_cast`, input: [tensor], output: [name], attribute: [{ name: 'to', type: AttributeProto_AttributeType.INT, i: BigInt(TensorProto_DataType.FLOAT16) }] });
  main.graph.node.push(node);
  main.graph.output.push(create(ValueInfoProtoSchema, { name, type: { value: { case: 'tensorType', value: { elemType: TensorProto_DataType.FLOAT16 } } } }));
  main.ix.graphOutputs.add(name);
}

/**
 * Taps inside the two branches of an If node (Optimum "merged" decoders keep the whole decoder in
 * `then_branch` = with past and `else_branch` = without): the tensor each branch computes for the
 * same site becomes an output of its branch and, under one new name, of the If node and the
 * main graph — whichever branch runs, the tap holds its value.
 */
export function branchTapName(ifNode: string, thenTensor: string, elseTensor: string): string {
  return `${BRANCH_TAP}${JSON.stringify([ifNode, thenTensor, elseTensor])}`;
}

const BRANCH_TAP = 'loupe_branch_tap:';

function parseBranchTap(name: string): [string, string, string] | undefined {
  if (!name.startsWith(BRANCH_TAP)) return undefined;
  const parsed = JSON.parse(name.slice(BRANCH_TAP.length)) as unknown;
  if (!Array.isArray(parsed) || parsed.length !== 3 || !parsed.every((x) => typeof x === 'string')) throw new TapError(`malformed branch tap name ${name}`);
  return parsed as [string, string, string];
}

function addBranchTap(main: TapScope, name: string, [ifName, thenTensor, elseTensor]: [string, string, string]): void {
  const node = main.graph.node.find((n) => n.opType === 'If' && (n.name || n.output[0]) === ifName);
  if (!node) throw new TapError(`branch tap: no If node "${ifName}" in graph "${main.graph.name}"`);
  const branch = (attr: string) => {
    const g = node.attribute.find((a) => a.name === attr)?.g;
    if (!g) throw new TapError(`If "${ifName}" has no ${attr}`);
    return new TapScope(g);
  };
  for (const [scope, tensor, which] of [[branch('then_branch'), thenTensor, 'then_branch'], [branch('else_branch'), elseTensor, 'else_branch']] as const) {
    if (!scope.materialize(tensor)) throw new TapError(`branch tap: no tensor "${tensor}" in If "${ifName}" . ${which}`);
    // Branch outputs are positional: the same slot in both branches and in the If node.
    scope.newOutput(tensor);
  }
  node.output.push(name);
  main.output(name);
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
