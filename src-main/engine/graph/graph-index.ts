/**
 * Producer/consumer lookups over one GraphProto, built once so the catalogue heuristics can
 * ask "who makes this tensor, who reads it" in O(1).
 *
 * ONNX requires nodes to be stored in topological order, so a node's position in
 * `graph.node` is also its execution order; the catalogue relies on that to tell "the
 * next layer" from "earlier".
 */
import type { GraphProto, NodeProto } from 'onnx-buf';

export interface Use {
  node: NodeProto;
  /** Position of the node in `graph.node`. */
  at: number;
  /** Input slot, or -1 when the tensor is read from inside one of the node's subgraphs. */
  slot: number;
}

export interface Production {
  node: NodeProto;
  at: number;
  slot: number;
}

export interface GraphIndex {
  graph: GraphProto;
  producer: Map<string, Production>;
  consumers: Map<string, Use[]>;
  graphInputs: Set<string>;
  graphOutputs: Set<string>;
  initializers: Set<string>;
  /**
   * Tensors whose value does not depend on any graph input: initializers, Constant outputs,
   * and outputs of nodes fed only by constants (exporters emit `Identity(weight)` chains and
   * shape arithmetic on constants). They are never activations, so never tap candidates.
   */
  constants: Set<string>;
}

export function indexGraph(graph: GraphProto): GraphIndex {
  const producer = new Map<string, Production>();
  const consumers = new Map<string, Use[]>();
  const initializers = new Set<string>([...graph.initializer.map((t) => t.name), ...graph.sparseInitializer.map((t) => t.values?.name ?? '')]);
  initializers.delete('');
  const graphInputs = new Set(graph.input.map((v) => v.name).filter((n) => !initializers.has(n)));
  const graphOutputs = new Set(graph.output.map((v) => v.name));
  const constants = new Set(initializers);
  const use = (name: string, u: Use) => {
    if (!name) return;
    const list = consumers.get(name);
    if (list) list.push(u);
    else consumers.set(name, [u]);
  };
  graph.node.forEach((node, at) => {
    node.input.forEach((name, slot) => use(name, { node, at, slot }));
    // A node with subgraphs (If/Loop/Scan) also reads every outer tensor its bodies capture.
    const captured = capturedNames(node);
    for (const name of captured) use(name, { node, at, slot: -1 });
    node.output.forEach((name, slot) => {
      if (name) producer.set(name, { node, at, slot });
    });
    const inputs = node.input.filter((n) => n !== '');
    const isConst = node.opType === 'Constant' || (inputs.length + captured.size > 0 && inputs.every((n) => constants.has(n)) && [...captured].every((n) => constants.has(n)));
    if (isConst && !isRandom(node)) for (const o of node.output) if (o) constants.add(o);
  });
  return { graph, producer, consumers, graphInputs, graphOutputs, initializers, constants };
}

function isRandom(node: NodeProto): boolean {
  return node.opType.startsWith('Random') || node.opType === 'Multinomial' || node.opType === 'Bernoulli';
}

/** Names a node's subgraphs read from the enclosing scope (defined neither inside nor as subgraph inputs). */
export function capturedNames(node: NodeProto): Set<string> {
  const out = new Set<string>();
  for (const attr of node.attribute) {
    for (const g of attr.g ? [attr.g] : attr.graphs) for (const n of outerReads(g)) out.add(n);
  }
  return out;
}

function outerReads(g: GraphProto): Set<string> {
  const defined = new Set<string>([...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
  const reads = new Set<string>();
  for (const node of g.node) {
    for (const n of node.input) if (n && !defined.has(n)) reads.add(n);
    for (const n of capturedNames(node)) if (!defined.has(n)) reads.add(n);
    for (const o of node.output) if (o) defined.add(o);
  }
  for (const o of g.output) if (!defined.has(o.name)) reads.add(o.name);
  return reads;
}

/** Every tensor name defined in the graph: inputs, initializers and node outputs. */
export function definedNames(ix: GraphIndex): Set<string> {
  return new Set<string>([...ix.graphInputs, ...ix.initializers, ...ix.producer.keys()]);
}
