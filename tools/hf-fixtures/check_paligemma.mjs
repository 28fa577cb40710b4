// Parity check of tests/fixtures/hf-paligemma with onnxruntime-node, against the PyTorch references.
//
//   node tools/hf-fixtures/check_paligemma.mjs            (from the repository root)
//
// Per reference case, on the case's own inputs (pixel_values and input_ids from HF's PaliGemmaProcessor):
// vision_encoder -> embed_tokens -> the image features scattered into the `<image>` rows in order -> decoder prefill
// (zero-length past, 2-D attention_mask, position ids 1..seq as HF and transformers.js make them) -> one cached
// decode step -> greedy decoding. Prints the max relative error max|a-b| / max|b| of image_features, the merged
// embeddings x sqrt(hidden) vs HF's text.hidden_states.0, prefill logits, presents and the decode-step logits, and
// whether the greedy tokens match. The decode step checks the in-graph prefix mask: the graph was traced through
// HF's `sequence_length != 1` branch and the reference step took HF's `== 1` branch.
// Also a causality probe: changing the last prompt token's embedding must change the logits at position 0 (the
// prefix attends bidirectionally), as it does in PyTorch.
// Then what transformers.js 4.x's own tokenizer and PaliGemmaProcessor make of the folder (informative for
// pixel_values: its resize is not Pillow's; input_ids must match).
// Exits 1 when an error exceeds 1e-4, greedy tokens differ, or transformers.js's input_ids differ.
// The graphs of model/ and, when present, model-ort-fused/ (ONNX Runtime's transformer optimizer:
// tools/hf-fixtures/build_more_fused.py) go through the same checks; the fused vision graph is also compared with
// model/'s on every shapes/ entry's pixel_values.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { argmaxLast, readSafetensors, relErr } from './check_common.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIR = join(ROOT, 'tests', 'fixtures', 'hf-paligemma');
const index = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8'));

const ref = readSafetensors(join(DIR, 'reference.safetensors'));
const R = (c, name) => {
  const t = ref[`${c.name}/${name}`];
  if (!t) throw new Error(`reference.safetensors has no ${c.name}/${name}`);
  return t;
};

const f32 = (data, dims) => new ort.Tensor('float32', data, dims);
const i64 = (arr, dims) => new ort.Tensor('int64', BigInt64Array.from(arr, (v) => BigInt(v)), dims);

const LAYERS = index.text_layers;
const KV = ['key', 'value'];
const opts = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}; fixture by ${index.generator} (transformers ${index.transformers_version}, torch ${index.torch_version})`);
let failed = false;

const modelShapeFeatures = {};
for (const style of ['model', 'model-ort-fused']) {
const onnxDir = join(DIR, style, 'onnx');
if (!existsSync(onnxDir)) continue;
console.log(`\n${style}/`);
const vision = await ort.InferenceSession.create(join(onnxDir, 'vision_encoder.onnx'), opts);
const embed = await ort.InferenceSession.create(join(onnxDir, 'embed_tokens.onnx'), opts);
const decoder = await ort.InferenceSession.create(join(onnxDir, 'decoder_model_merged.onnx'), opts);
console.log(`decoder inputs: ${decoder.inputNames.join(', ')}`);
const worst = { image_features: 0, embeds: 0, logits: 0, presents: 0, decode: 0 };

function prefillFeeds(x, seq, hidden, kvHeads, headDim) {
  const feeds = {
    inputs_embeds: f32(x, [1, seq, hidden]),
    attention_mask: i64(Array(seq).fill(1), [1, seq]),
    position_ids: i64(Array.from({ length: seq }, (_, i) => i + index.position_ids_start), [1, seq]),
  };
  for (let i = 0; i < LAYERS; i++) for (const k of KV) feeds[`past_key_values.${i}.${k}`] = f32(new Float32Array(0), [1, kvHeads, 0, headDim]);
  return feeds;
}

for (const c of index.cases) {
  const seq = c.input_ids.length;
  const ids = R(c, 'input_ids');
  const emb = await embed.run({ input_ids: new ort.Tensor('int64', ids.data, ids.dims) });
  const x = Float32Array.from(emb.inputs_embeds.data);
  const hidden = emb.inputs_embeds.dims[2];
  const line = [`${c.name.padEnd(11)}`];
  if (c.num_images > 0) {
    const px = R(c, 'pixel_values');
    const v = await vision.run({ pixel_values: f32(px.data, px.dims) });
    const feats = v.image_features;
    const e = relErr(feats.data, R(c, 'image_features').data);
    worst.image_features = Math.max(worst.image_features, e);
    line.push(`images ${px.dims[0]}`, `image_features ${e.toExponential(2)} [${feats.dims}]`);
    if (c.image_token_positions.length * hidden !== feats.data.length) throw new Error(`${c.name}: ${c.image_token_positions.length} image tokens vs features [${feats.dims}]`);
    c.image_token_positions.forEach((pos, j) => x.set(feats.data.subarray(j * hidden, (j + 1) * hidden), pos * hidden));
  }
  // HF's text.hidden_states.0 is the merged embeddings times Gemma's normalizer sqrt(hidden) (computed in float32).
  const norm = Math.fround(Math.sqrt(hidden));
  const eEmb = relErr(x.map((v) => Math.fround(v * norm)), R(c, 'text.hidden_states.0').data);
  worst.embeds = Math.max(worst.embeds, eEmb);
  line.push(`embeds ${eEmb.toExponential(2)}`);
  const k0 = R(c, 'present.0.key').dims;
  const out = await decoder.run(prefillFeeds(x, seq, hidden, k0[1], k0[3]));
  const eL = relErr(out.logits.data, R(c, 'logits').data);
  let eP = 0;
  for (let i = 0; i < LAYERS; i++) for (const k of KV) eP = Math.max(eP, relErr(out[`present.${i}.${k}`].data, R(c, `present.${i}.${k}`).data));
  worst.logits = Math.max(worst.logits, eL);
  worst.presents = Math.max(worst.presents, eP);
  line.push(`logits ${eL.toExponential(2)}`, `presents ${eP.toExponential(2)}`);

  // Bidirectional prefix: perturb the last prompt embedding; position 0's logits must move.
  const y = Float32Array.from(x);
  for (let j = 0; j < hidden; j++) y[(seq - 1) * hidden + j] += 0.5;
  const moved = await decoder.run(prefillFeeds(y, seq, hidden, k0[1], k0[3]));
  const vocab = out.logits.dims[2];
  const d0 = relErr(moved.logits.data.subarray(0, vocab), out.logits.data.subarray(0, vocab));
  line.push(`pos-0 logits move with the last token: ${d0 > 1e-3 ? 'yes' : 'NO'} (${d0.toExponential(1)})`);
  if (!(d0 > 1e-3)) failed = true;

  const tokens = [argmaxLast(out.logits)];
  let past = out;
  let total = seq;
  for (let step = 1; step < c.greedy_tokens.length; step++) {
    const tok = step === 1 ? c.greedy_tokens[0] : tokens[step - 1]; // the reference token: like with like
    const e = await embed.run({ input_ids: i64([tok], [1, 1]) });
    total += 1;
    const f = { inputs_embeds: e.inputs_embeds, attention_mask: i64(Array(total).fill(1), [1, total]), position_ids: i64([total - 1 + index.position_ids_start], [1, 1]) };
    for (let i = 0; i < LAYERS; i++) for (const k of KV) f[`past_key_values.${i}.${k}`] = past[`present.${i}.${k}`];
    const o = await decoder.run(f);
    if (step === 1) {
      const eD = relErr(o.logits.data, R(c, 'decode.logits').data);
      worst.decode = Math.max(worst.decode, eD);
      line.push(`decode-step ${eD.toExponential(2)}`);
    }
    tokens.push(argmaxLast(o.logits));
    past = o;
  }
  const ok = tokens.join(',') === c.greedy_tokens.join(',');
  if (!ok) failed = true;
  line.push(`greedy [${tokens}] ${ok ? '=' : '!='} ref [${c.greedy_tokens}]`);
  console.log(line.join('  '));
}
// the vision graph on shapes/ (pixel_values only in the references): the fused graph against model/'s
for (const s of index.shapes) {
  const px = ref[s.tensor];
  const feats = (await vision.run({ pixel_values: f32(px.data, px.dims) })).image_features;
  if (style === 'model') modelShapeFeatures[s.tensor] = feats.data;
  else {
    const e = relErr(feats.data, modelShapeFeatures[s.tensor]);
    worst.shapes_vs_model = Math.max(worst.shapes_vs_model ?? 0, e);
    console.log(`vision graph on ${s.tensor.padEnd(26)} [${feats.dims}] vs model/ ${e.toExponential(2)}`);
  }
}
console.log(`${style}/ worst: ${Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
if (Math.max(...Object.values(worst)) > 1e-4) failed = true;
}

// transformers.js's own view of the folder
try {
  const { AutoProcessor, RawImage } = await import('@huggingface/transformers');
  const proc = await AutoProcessor.from_pretrained(join(DIR, 'model'), { local_files_only: true });
  for (const c of index.cases.filter((c) => c.num_images > 0)) {
    const images = await Promise.all(c.images.map((p) => RawImage.read(join(DIR, p))));
    const out = await proc(images, c.question);
    const ids = Array.from(out.input_ids.data, Number);
    const same = ids.join(',') === c.input_ids.join(',');
    if (!same) failed = true;
    console.log(`transformers.js PaliGemmaProcessor: ${c.name.padEnd(11)} input_ids ${same ? '=' : '!='} ref (${ids.length} vs ${c.input_ids.length}), pixel_values [${out.pixel_values.dims}] max rel diff ${relErr(out.pixel_values.data, R(c, 'pixel_values').data).toExponential(2)} (its own resize, not Pillow's)`);
  }
} catch (e) {
  console.log(`transformers.js check failed: ${e.message}`);
  failed = true;
}
process.exit(failed ? 1 : 0);
