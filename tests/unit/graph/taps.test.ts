import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildCatalogue } from '../../../src-main/engine/graph/catalogue.ts';
import { allGraphs, decodeModel, encodeModel, readModelSync } from '../../../src-main/engine/graph/model-proto.ts';
import { TapError, addTaps, branchTapName, tappedModelPath } from '../../../src-main/engine/graph/taps.ts';
import { buildIfModel, buildMergedModel, buildTransformer } from './builders.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const attr = (node: { attribute: { name: string; i: bigint }[] }, name: string) => node.attribute.find((a) => a.name === name)?.i;

describe('model-proto', () => {
  it('round-trips an untouched model byte for byte (built here and the shipped micro-llava)', () => {
    const files = [encodeModel(buildTransformer({ attention: 'gqa' }))];
    for (const f of ['vision_encoder', 'decoder_model_merged']) files.push(new Uint8Array(readFileSync(join(ROOT, 'resources/models/micro-llava/onnx', `${f}.onnx`))));
    for (const bytes of files) expect(Buffer.from(encodeModel(decodeModel(bytes))).equals(Buffer.from(bytes))).toBe(true);
  });

  it('keeps fields the schema does not know, through a rewrite', () => {
    // Field 99 (varint 42) is unknown to ONNX 1.20's ModelProto.
    const bytes = new Uint8Array([...encodeModel(buildTransformer()), 0x98, 0x06, 42]);
    const tapped = encodeModel(addTaps(decodeModel(bytes), ['/model/layers.0/Add_output_0']));
    expect(Buffer.from(tapped).subarray(-3)).toEqual(Buffer.from([0x98, 0x06, 42]));
  });

  it('walks If/Loop subgraphs', () => {
    expect([...allGraphs(buildIfModel())].map((s) => s.label)).toEqual(['main', 'main > If "/If" . then_branch', 'main > If "/If" . else_branch']);
  });
});

describe('addTaps', () => {
  it('appends Softmax/hidden-state taps as name-only outputs, leaving the input model alone', () => {
    const m = buildTransformer();
    const before = encodeModel(m);
    const cat = buildCatalogue(m);
    const taps = [...Object.values(cat.hiddenStates), cat.layers[0]!.attention!.tensor, cat.finalNorm!];
    const out = addTaps(m, [...taps, taps[0]!, 'logits']);
    expect(out.graph!.output.map((o) => o.name)).toEqual(['logits', ...taps]);
    expect(out.graph!.output.at(-1)!.type).toBeUndefined();
    expect(Buffer.from(encodeModel(m)).equals(Buffer.from(before))).toBe(true);
    expect(out.graph!.node.length).toBe(m.graph!.node.length);
  });

  it('switches GroupQueryAttention output_qk on (qk_output=2)', () => {
    const m = buildTransformer({ attention: 'gqa' });
    const tap = buildCatalogue(m).layers[1]!.attention!.tensor;
    const out = addTaps(m, [tap]);
    const node = out.graph!.node.find((n) => n.name === '/model/layers.1/attn/GroupQueryAttention')!;
    expect(node.output).toEqual(['/model/layers.1/attn/GroupQueryAttention_output_0', 'present.1.key', 'present.1.value', tap]);
    expect(attr(node, 'qk_output')).toBe(2n);
    expect(out.graph!.output.at(-1)!.name).toBe(tap);
    // Other layers untouched.
    expect(attr(out.graph!.node.find((n) => n.name === '/model/layers.0/attn/GroupQueryAttention')!, 'qk_output')).toBeUndefined();
  });

  it('switches ONNX Attention qk_matmul_output on (mode 3), padding the skipped optional outputs', () => {
    const m = buildTransformer({ attention: 'onnx-attention' });
    const tap = buildCatalogue(m).layers[0]!.attention!.tensor;
    const node = addTaps(m, [tap]).graph!.node.find((n) => n.opType === 'Attention')!;
    expect(node.output).toEqual(['/model/layers.0/attn/Attention_output_0', '', '', tap]);
    expect(attr(node, 'qk_matmul_output_mode')).toBe(3n);
  });

  it('switches on the genai final skip-norm residual output', () => {
    const m = buildTransformer({ genai: true, layers: 2 });
    const last = buildCatalogue(m).layers[1]!.output;
    const node = addTaps(m, [last]).graph!.node.find((n) => n.name === '/model/layers.2/final_norm_layernorm/SkipLayerNorm')!;
    expect(node.output).toEqual(['/model/final_norm', '', '', last]);
  });

  it('refuses to re-purpose an output_qk that already carries raw scores for another reader', () => {
    const m = buildTransformer({ attention: 'gqa', gqaWithOutputQk: true });
    const node = m.graph!.node.find((n) => n.name === '/model/layers.0/attn/GroupQueryAttention')!;
    node.attribute.find((a) => a.name === 'qk_output')!.i = 1n;
    m.graph!.output = m.graph!.output.filter((o) => o.name !== '/model/layers.0/attn/qk');
    m.graph!.node.push({ ...m.graph!.node[0]!, opType: 'Identity', name: 'reader', input: ['/model/layers.0/attn/qk'], output: ['r'] });
    expect(() => addTaps(m, ['/model/layers.0/attn/qk'])).toThrow(/already exposes output 3 with qk_output=1/);
  });

  it('names unknown tensors', () => {
    expect(() => addTaps(buildTransformer(), ['/model/layers.0/Add_1_output_0', 'nope', 'also/nope'])).toThrow(TapError);
    expect(() => addTaps(buildTransformer(), ['nope', 'also/nope'])).toThrow(/not found in graph "test_graph": "nope", "also\/nope"/);
  });

  it('refuses initializers and explains subgraph tensors', () => {
    expect(() => addTaps(buildTransformer(), ['lm_head.weight'])).toThrow(/initializer/);
    expect(() => addTaps(buildIfModel(), ['/model/layers.1/Add_1_output_0'])).toThrow(/live inside an If\/Loop\/Scan subgraph.*branch taps/);
  });
});

describe('merged decoders (layers in both branches of an If)', () => {
  it('catalogues both branches and names each tap as the pair of branch tensors', () => {
    const cat = buildCatalogue(buildMergedModel(2));
    expect(cat.layers.length).toBe(2);
    expect(cat.hiddenStates['hidden_states.1']).toBe(branchTapName('optimum::if', 'with_past//model/layers.0/Add_1_output_0', 'no_past//model/layers.0/Add_1_output_0'));
    expect(cat.layers[1]!.attention!.tensor).toBe(branchTapName('optimum::if', 'with_past//model/layers.1/attn/Softmax_output_0', 'no_past//model/layers.1/attn/Softmax_output_0'));
    expect(cat.notes[0]).toMatch(/both branches of If "optimum::if"/);
  });

  it('a branch tap becomes an output of both branches (same slot) and of the If node and main graph', () => {
    const cat = buildCatalogue(buildMergedModel(2));
    const names = [cat.hiddenStates['hidden_states.2']!, cat.layers[0]!.attention!.tensor];
    const m = addTaps(buildMergedModel(2), names);
    const ifNode = m.graph!.node.find((n) => n.opType === 'If')!;
    expect(ifNode.output).toEqual(['logits', ...names]);
    expect(m.graph!.output.map((o) => o.name)).toEqual(['logits', ...names]);
    const then = ifNode.attribute.find((a) => a.name === 'then_branch')!.g!;
    const other = ifNode.attribute.find((a) => a.name === 'else_branch')!.g!;
    expect(then.output.map((o) => o.name)).toEqual(['with_past/logits', 'with_past//model/layers.1/Add_1_output_0', 'with_past//model/layers.0/attn/Softmax_output_0']);
    expect(other.output.map((o) => o.name)).toEqual(['no_past/logits', 'no_past//model/layers.1/Add_1_output_0', 'no_past//model/layers.0/attn/Softmax_output_0']);
  });

  it('names a branch tensor that is missing, and a malformed or unknown If', () => {
    expect(() => addTaps(buildMergedModel(2), [branchTapName('optimum::if', 'with_past/nope', 'no_past/nope')])).toThrow(/no tensor "with_past\/nope" in If "optimum::if" \. then_branch/);
    expect(() => addTaps(buildMergedModel(2), [branchTapName('other', 'a', 'b')])).toThrow(/no If node "other"/);
  });
});

describe('tappedModelPath', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'loupe-taps-unit-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes next to the original, caches by content + tap set, and never touches external data', async () => {
    const model = join(dir, 'decoder.onnx');
    const data = join(dir, 'weights.onnx_data');
    writeFileSync(model, encodeModel(buildTransformer({ external: true })));
    writeFileSync(data, new Uint8Array(64));
    const dataStat = statSync(data);
    const taps = ['/model/layers.0/Add_1_output_0', '/model/layers.1/Add_1_output_0'];

    const a = await tappedModelPath(model, taps);
    expect(basename(a)).toMatch(/^decoder\.loupe-taps-[0-9a-f]{16}\.onnx$/);
    expect(readdirSync(dir).sort()).toEqual([basename(a), 'decoder.onnx', 'weights.onnx_data'].sort());
    const tapped = readModelSync(a);
    expect(tapped.graph!.output.slice(-2).map((o) => o.name)).toEqual(taps);
    // External initializers still point at the same relative file.
    const external = tapped.graph!.initializer.filter((t) => t.externalData.length > 0);
    expect(external.length).toBeGreaterThan(10);
    expect(external.every((t) => t.externalData.find((e) => e.key === 'location')?.value === 'weights.onnx_data')).toBe(true);
    expect(statSync(data).mtimeMs).toBe(dataStat.mtimeMs);

    // Same set in another order → cached file, not rewritten.
    const mtime = statSync(a).mtimeMs;
    expect(await tappedModelPath(model, [...taps].reverse())).toBe(a);
    expect(statSync(a).mtimeMs).toBe(mtime);
    // Another tap set, or a changed original → another file.
    expect(await tappedModelPath(model, taps.slice(0, 1))).not.toBe(a);
    writeFileSync(model, encodeModel(buildTransformer({ external: true, layers: 4 })));
    expect(await tappedModelPath(model, taps)).not.toBe(a);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('leaves nothing behind when the rewrite fails', async () => {
    const model = join(dir, 'm.onnx');
    writeFileSync(model, encodeModel(buildTransformer()));
    await expect(tappedModelPath(model, ['missing'])).rejects.toThrow(/"missing"/);
    expect(readdirSync(dir)).toEqual(['m.onnx']);
  });
});
