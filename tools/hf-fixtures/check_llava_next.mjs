// Parity check of tests/fixtures/hf-llava-next and hf-llava-onevision with onnxruntime-node, against the PyTorch
// references (tools/hf-fixtures/build_llava_next.py).
//
//   node tools/hf-fixtures/check_llava_next.mjs            (from the repository root; both fixtures)
//   node tools/hf-fixtures/check_llava_next.mjs onevision  (one of them)
//
// Per reference case: vision (pixel_values + image_sizes from HF's processor) -> embed -> the packed features
// scattered into the `<image>` rows -> decoder prefill (zero-length past) -> one cached decode step -> greedy
// decoding. Per shapes/ entry: the one vision graph against HF's get_image_features + pack_image_features at that
// image size (the graph is meant to serve every size). Prints max|a-b| / max|b| and whether the greedy tokens match;
// also checks the hand-written tokenizer + chat template with transformers.js. Exits 1 over 1e-4 or on a mismatch.
// All of this for model/ and, when present, model-ort-fused/ (ONNX Runtime's transformer optimizer:
// tools/hf-fixtures/build_more_fused.py); on shapes/ the fused vision graph is also compared with model/'s.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { argmaxLast, readSafetensors, relErr } from './check_common.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FAMILIES = { next: 'hf-llava-next', onevision: 'hf-llava-onevision' };
const only = process.argv[2];
if (only && !FAMILIES[only]) throw new Error(`unknown family ${only} (next, onevision)`);

const f32 = (data, dims) => new ort.Tensor('float32', data, dims);
const i64 = (arr, dims) => new ort.Tensor('int64', BigInt64Array.from(arr, (v) => BigInt(v)), dims);
const KV = ['key', 'value'];
const opts = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };

async function checkTokenizer(dir, index) {
  let transformers;
  try {
    transformers = await import('@huggingface/transformers');
  } catch (e) {
    console.log(`tokenizer: @huggingface/transformers not importable (${e.message}); skipped`);
    return true;
  }
  const tok = await transformers.AutoTokenizer.from_pretrained(join(dir, 'model'), { local_files_only: true });
  let ok = true;
  for (const c of index.cases) {
    const content = [...Array.from({ length: c.num_images }, () => ({ type: 'image' })), { type: 'text', text: c.question }];
    const prompt = tok.apply_chat_template([{ role: 'user', content }], { tokenize: false, add_generation_prompt: true });
    // the processor's count (reference.json num_image_tokens) per <image>
    const expanded = prompt.replaceAll('<image>', '<image>'.repeat(c.num_image_tokens ?? 0));
    const ids = tok.encode(expanded);
    const same = prompt === c.prompt && ids.join(',') === c.input_ids.join(',');
    ok &&= same;
    console.log(`  tokenizer (transformers.js): ${c.name.padEnd(11)} prompt ${prompt === c.prompt ? '=' : '!='} ref, input_ids ${ids.join(',') === c.input_ids.join(',') ? '=' : '!='} ref (${ids.length} tokens)`);
  }
  return ok;
}

async function checkFamily(family, style, modelShapeFeatures) {
  const DIR = join(ROOT, 'tests', 'fixtures', FAMILIES[family]);
  const index = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8'));
  const ref = readSafetensors(join(DIR, 'reference.safetensors'));
  const R = (name) => {
    if (!ref[name]) throw new Error(`reference.safetensors has no ${name}`);
    return ref[name];
  };
  console.log(`\n${FAMILIES[family]}/${style} (${index.model_class}, transformers ${index.transformers_version})`);
  const path = (f) => join(DIR, style, 'onnx', f);
  const sizes = ['vision_encoder.onnx', 'embed_tokens.onnx', 'decoder_model_merged.onnx'].map((f) => `${f} ${statSync(path(f)).size} B`).join(', ');
  console.log(`  [${sizes}]`);
  const [vision, embed, decoder] = await Promise.all(['vision_encoder.onnx', 'embed_tokens.onnx', 'decoder_model_merged.onnx'].map((f) => ort.InferenceSession.create(path(f), opts)));
  console.log(`  vision inputs ${vision.inputNames.join(', ')} -> ${vision.outputNames.join(', ')}`);
  const worst = { image_features: 0, logits: 0, presents: 0, decode: 0, shapes: 0, vsModel: 0, ok: true };
  const runVision = async (key) => {
    const px = R(`${key}/pixel_values`);
    const sz = R(`${key}/image_sizes`);
    const out = await vision.run({ pixel_values: f32(px.data, px.dims), image_sizes: new ort.Tensor('int64', sz.data, sz.dims) });
    return out.image_features;
  };
  for (const c of index.cases) {
    const seq = c.input_ids.length;
    const ids = R(`${c.name}/input_ids`);
    const emb = await embed.run({ input_ids: new ort.Tensor('int64', ids.data, ids.dims) });
    const x = Float32Array.from(emb.inputs_embeds.data);
    const hidden = emb.inputs_embeds.dims[2];
    const line = [`  ${c.name.padEnd(11)}`];
    if (c.num_images > 0) {
      const feats = await runVision(c.name);
      const e = relErr(feats.data, R(`${c.name}/image_features`).data);
      worst.image_features = Math.max(worst.image_features, e);
      line.push(`image_features ${e.toExponential(2)} [${feats.dims}]`);
      if (feats.dims[0] !== c.image_token_positions.length) throw new Error(`${c.name}: ${feats.dims[0]} features for ${c.image_token_positions.length} <image> tokens`);
      c.image_token_positions.forEach((pos, j) => x.set(feats.data.subarray(j * hidden, (j + 1) * hidden), pos * hidden));
    }
    const feeds = {
      inputs_embeds: f32(x, [1, seq, hidden]),
      attention_mask: i64(Array(seq).fill(1), [1, seq]),
      position_ids: i64(Array.from({ length: seq }, (_, i) => i), [1, seq]),
    };
    const k0 = R(`${c.name}/present.0.key`).dims;
    for (let i = 0; i < index.text_layers; i++) for (const k of KV) feeds[`past_key_values.${i}.${k}`] = f32(new Float32Array(0), [1, k0[1], 0, k0[3]]);
    const out = await decoder.run(feeds);
    const eL = relErr(out.logits.data, R(`${c.name}/logits`).data);
    let eP = 0;
    for (let i = 0; i < index.text_layers; i++) for (const k of KV) eP = Math.max(eP, relErr(out[`present.${i}.${k}`].data, R(`${c.name}/present.${i}.${k}`).data));
    worst.logits = Math.max(worst.logits, eL);
    worst.presents = Math.max(worst.presents, eP);
    line.push(`logits ${eL.toExponential(2)}`, `presents ${eP.toExponential(2)}`);
    const tokens = [argmaxLast(out.logits)];
    let past = out;
    let total = seq;
    for (let step = 1; step < c.greedy_tokens.length; step++) {
      const tok = step === 1 ? c.greedy_tokens[0] : tokens[step - 1];
      const e = await embed.run({ input_ids: i64([tok], [1, 1]) });
      total += 1;
      const f = { inputs_embeds: e.inputs_embeds, attention_mask: i64(Array(total).fill(1), [1, total]), position_ids: i64([total - 1], [1, 1]) };
      for (let i = 0; i < index.text_layers; i++) for (const k of KV) f[`past_key_values.${i}.${k}`] = past[`present.${i}.${k}`];
      const o = await decoder.run(f);
      if (step === 1) {
        const eD = relErr(o.logits.data, R(`${c.name}/decode.logits`).data);
        worst.decode = Math.max(worst.decode, eD);
        line.push(`decode-step ${eD.toExponential(2)}`);
      }
      tokens.push(argmaxLast(o.logits));
      past = o;
    }
    const ok = tokens.join(',') === c.greedy_tokens.join(',');
    worst.ok &&= ok;
    line.push(`greedy [${tokens}] ${ok ? '=' : '!='} ref [${c.greedy_tokens}]`);
    console.log(line.join('  '));
  }
  for (const s of index.shapes) {
    const key = `shapes/${s.width}x${s.height}`;
    const feats = await runVision(key);
    const e = relErr(feats.data, R(`${key}/image_features`).data);
    worst.shapes = Math.max(worst.shapes, e);
    let vs = '';
    if (style === 'model') modelShapeFeatures[key] = feats.data;
    else {
      const eM = relErr(feats.data, modelShapeFeatures[key]);
      worst.vsModel = Math.max(worst.vsModel, eM);
      vs = `  vs model/ ${eM.toExponential(2)}`;
    }
    console.log(`  vision graph at ${key.padEnd(14)} grid ${s.crop_grid.join('x')}  ${String(feats.dims[0]).padStart(3)} tokens (HF ${s.num_image_tokens})  image_features ${e.toExponential(2)}${vs}`);
    if (feats.dims[0] !== s.num_image_tokens) worst.ok = false;
  }
  worst.ok &&= await checkTokenizer(DIR, index);
  console.log(`  max relative error: image_features ${worst.image_features.toExponential(2)}, logits ${worst.logits.toExponential(2)}, presents ${worst.presents.toExponential(2)}, decode ${worst.decode.toExponential(2)}, vision graph over ${index.shapes.length} shapes ${worst.shapes.toExponential(2)}${style === 'model' ? '' : ` (vs model/ ${worst.vsModel.toExponential(2)})`}; greedy/tokens ${worst.ok ? 'match' : 'DIFFER'}`);
  return worst.ok && Math.max(worst.image_features, worst.logits, worst.presents, worst.decode, worst.shapes, worst.vsModel) <= 1e-4;
}

console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}`);
let ok = true;
for (const family of only ? [only] : Object.keys(FAMILIES)) {
  if (!existsSync(join(ROOT, 'tests', 'fixtures', FAMILIES[family], 'reference.json'))) {
    console.log(`${FAMILIES[family]}: not built`);
    ok = false;
    continue;
  }
  const modelShapeFeatures = {};
  for (const style of ['model', 'model-ort-fused']) {
    if (!existsSync(join(ROOT, 'tests', 'fixtures', FAMILIES[family], style, 'onnx'))) continue;
    ok = (await checkFamily(family, style, modelShapeFeatures)) && ok;
  }
}
console.log(ok ? 'OK' : 'FAILED');
process.exit(ok ? 0 : 1);
