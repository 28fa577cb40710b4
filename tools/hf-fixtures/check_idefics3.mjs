// Parity check of tests/fixtures/hf-idefics3 with onnxruntime-node, against the PyTorch references.
//
//   node tools/hf-fixtures/check_idefics3.mjs            (from the repository root)
//
// Per reference case, on the case's own inputs (pixel_values, pixel_attention_mask and input_ids from HF's
// Idefics3Processor): vision_encoder -> embed_tokens -> the image features scattered into the `<image>` rows in order
// -> decoder prefill (zero-length past) -> one cached decode step -> greedy decoding. Prints the max relative error
// max|a-b| / max|b| of image_features, prefill logits, presents and the decode-step logits, and whether the greedy
// tokens match. Then the vision graph on other image counts: the two image cases batched ([2, 5, ...], the single
// image padded with four all-zero images, dropped in-graph) must give the same features as each case alone.
// All of this for model/ and, when present, model-ort-fused/ (ONNX Runtime's transformer optimizer:
// tools/hf-fixtures/build_idefics3_fused.py).
// Also reports what transformers.js 4.x's own tokenizer and Idefics3Processor make of the folder (informative: its
// processor resizes differently from HF's; see tools/hf-fixtures/README.md).
// Exits 1 when an fp32 error exceeds 1e-4 or greedy tokens differ.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { argmaxLast, readSafetensors, relErr } from './check_common.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIR = join(ROOT, 'tests', 'fixtures', 'hf-idefics3');
const index = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8'));

const ref = readSafetensors(join(DIR, 'reference.safetensors'));
const R = (c, name) => {
  const t = ref[`${c.name}/${name}`];
  if (!t) throw new Error(`reference.safetensors has no ${c.name}/${name}`);
  return t;
};

const f32 = (data, dims) => new ort.Tensor('float32', data, dims);
const i64 = (arr, dims) => new ort.Tensor('int64', BigInt64Array.from(arr, (v) => BigInt(v)), dims);
const boolMask = (t) => new ort.Tensor('bool', Uint8Array.from(t.data, (v) => (v ? 1 : 0)), t.dims);

const LAYERS = index.text_layers;
const KV = ['key', 'value'];
const opts = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}; fixture by ${index.generator} (transformers ${index.transformers_version}, torch ${index.torch_version})`);
let failed = false;
const summary = [];

async function checkFolder(style) {
  const onnxDir = join(DIR, style, 'onnx');
  const vision = await ort.InferenceSession.create(join(onnxDir, 'vision_encoder.onnx'), opts);
  const embed = await ort.InferenceSession.create(join(onnxDir, 'embed_tokens.onnx'), opts);
  const decoder = await ort.InferenceSession.create(join(onnxDir, 'decoder_model_merged.onnx'), opts);

  console.log(`\n${style}/onnx: vision_encoder inputs ${vision.inputNames.join(', ')} -> ${vision.outputNames.join(', ')}`);
  const worst = { image_features: 0, logits: 0, presents: 0, decode: 0 };

  for (const c of index.cases) {
    const seq = c.input_ids.length;
    const ids = R(c, 'input_ids');
    const emb = await embed.run({ input_ids: new ort.Tensor('int64', ids.data, ids.dims) });
    const x = Float32Array.from(emb.inputs_embeds.data);
    const hidden = emb.inputs_embeds.dims[2];
    const line = [`${c.name.padEnd(13)}`];
    if (c.num_images > 0) {
      const px = R(c, 'pixel_values');
      const v = await vision.run({ pixel_values: f32(px.data, px.dims), pixel_attention_mask: boolMask(R(c, 'pixel_attention_mask')) });
      const feats = v.image_features;
      const e = relErr(feats.data, R(c, 'image_features').data);
      worst.image_features = Math.max(worst.image_features, e);
      line.push(`tiles ${px.dims[1]}`, `image_features ${e.toExponential(2)} [${feats.dims}]`);
      // scatter the features into the <image> rows, in order (what inputs_merger does)
      if (c.image_token_positions.length * hidden !== feats.data.length) throw new Error(`${c.name}: ${c.image_token_positions.length} image tokens vs features [${feats.dims}]`);
      c.image_token_positions.forEach((pos, j) => x.set(feats.data.subarray(j * hidden, (j + 1) * hidden), pos * hidden));
    }
    const eEmb = relErr(x, R(c, 'text.hidden_states.0').data);
    line.push(`inputs_embeds ${eEmb.toExponential(2)}`);
    const feeds = {
      inputs_embeds: f32(x, [1, seq, hidden]),
      attention_mask: i64(Array(seq).fill(1), [1, seq]),
      position_ids: i64(Array.from({ length: seq }, (_, i) => i), [1, seq]),
    };
    const k0 = R(c, 'present.0.key').dims;
    for (let i = 0; i < LAYERS; i++) for (const k of KV) feeds[`past_key_values.${i}.${k}`] = f32(new Float32Array(0), [1, k0[1], 0, k0[3]]);
    const out = await decoder.run(feeds);
    const eL = relErr(out.logits.data, R(c, 'logits').data);
    let eP = 0;
    for (let i = 0; i < LAYERS; i++) for (const k of KV) eP = Math.max(eP, relErr(out[`present.${i}.${k}`].data, R(c, `present.${i}.${k}`).data));
    worst.logits = Math.max(worst.logits, eL, eEmb);
    worst.presents = Math.max(worst.presents, eP);
    line.push(`logits ${eL.toExponential(2)}`, `presents ${eP.toExponential(2)}`);

    const tokens = [argmaxLast(out.logits)];
    let past = out;
    let total = seq;
    for (let step = 1; step < c.greedy_tokens.length; step++) {
      const tok = step === 1 ? c.greedy_tokens[0] : tokens[step - 1]; // the reference token: like with like
      const e = await embed.run({ input_ids: i64([tok], [1, 1]) });
      total += 1;
      const f = { inputs_embeds: e.inputs_embeds, attention_mask: i64(Array(total).fill(1), [1, total]), position_ids: i64([total - 1], [1, 1]) };
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

  // Other image counts through the one graph: [2, 5] = image-split's 5 tiles, and image-single's 1 tile + 4 zero images.
  {
    const split = index.cases.find((c) => c.name === 'image-split');
    const single = index.cases.find((c) => c.name === 'image-single');
    const a = R(split, 'pixel_values');
    const b = R(single, 'pixel_values');
    const n = a.dims[1];
    const tile = a.data.length / n;
    const px = new Float32Array(2 * n * tile);
    px.set(a.data, 0);
    px.set(b.data, n * tile);
    const mask = new Uint8Array(2 * n * 32 * 32);
    mask.fill(1, 0, (n + 1) * 32 * 32);
    const v = await vision.run({ pixel_values: f32(px, [2, n, 3, 32, 32]), pixel_attention_mask: new ort.Tensor('bool', mask, [2, n, 32, 32]) });
    const want = new Float32Array([...R(split, 'image_features').data, ...R(single, 'image_features').data]);
    const e = relErr(v.image_features.data, want);
    worst.image_features = Math.max(worst.image_features, e);
    console.log(`batched [2, ${n}] with 4 padding images -> image_features [${v.image_features.dims}] vs the cases' ${e.toExponential(2)}`);
  }
  summary.push(`${style.padEnd(16)} image_features ${worst.image_features.toExponential(2)}  logits ${worst.logits.toExponential(2)}  presents ${worst.presents.toExponential(2)}  decode ${worst.decode.toExponential(2)}`);
  if (Math.max(worst.image_features, worst.logits, worst.presents, worst.decode) > 1e-4) failed = true;
}

for (const style of ['model', 'model-ort-fused']) {
  if (existsSync(join(DIR, style, 'onnx', 'decoder_model_merged.onnx'))) await checkFolder(style);
  else console.log(`\n${style}: missing`);
}

// transformers.js's own view of the folder (informative)
try {
  const { AutoTokenizer, AutoProcessor, RawImage } = await import('@huggingface/transformers');
  const tok = await AutoTokenizer.from_pretrained(join(DIR, 'model'), { local_files_only: true });
  const proc = await AutoProcessor.from_pretrained(join(DIR, 'model'), { local_files_only: true });
  for (const c of index.cases) {
    const content = [...Array.from({ length: c.num_images }, () => ({ type: 'image' })), { type: 'text', text: c.question }];
    const prompt = tok.apply_chat_template([{ role: 'user', content }], { tokenize: false, add_generation_prompt: true });
    let msg = `transformers.js: ${c.name.padEnd(13)} prompt ${prompt === c.prompt ? '=' : '!='} ref`;
    if (c.num_images === 0) {
      const ids = tok.encode(prompt);
      msg += `, input_ids ${ids.join(',') === c.input_ids.join(',') ? '=' : '!='} ref`;
      if (prompt !== c.prompt || ids.join(',') !== c.input_ids.join(',')) failed = true;
    } else {
      const image = await RawImage.read(join(DIR, c.image));
      const out = await proc(prompt, [image], { do_image_splitting: c.do_image_splitting });
      const ids = Array.from(out.input_ids.data, Number);
      const px = out.pixel_values;
      const refPx = R(c, 'pixel_values');
      const samePx = px.dims.join(',') === refPx.dims.join(',');
      msg += `, input_ids ${ids.join(',') === c.input_ids.join(',') ? '=' : '!='} ref (${ids.length} vs ${c.input_ids.length})`;
      msg += `, pixel_values [${px.dims}] ${samePx ? `max rel diff ${relErr(px.data, refPx.data).toExponential(2)}` : `!= ref [${refPx.dims}]`}`;
    }
    console.log(msg);
  }
  for (const s of index.shapes) {
    const image = await RawImage.read(join(DIR, s.image));
    const out = await proc.image_processor([image], { return_row_col_info: true });
    const refPx = ref[s.pixel_values];
    const rc = `${out.rows[0][0]}x${out.cols[0][0]}`;
    const same = out.pixel_values.dims.join(',') === refPx.dims.join(',');
    console.log(`transformers.js image processor ${`${s.width}x${s.height}`.padEnd(7)} rows x cols ${rc} (HF ${s.rows}x${s.cols}), pixel_values [${out.pixel_values.dims}] ${same ? `max rel diff ${relErr(out.pixel_values.data, refPx.data).toExponential(2)}` : `!= HF [${refPx.dims}]`}`);
  }
} catch (e) {
  console.log(`transformers.js checks skipped: ${e.message}`);
}

console.log(`\nmax relative error (max|a-b|/max|b|) over the cases:\n${summary.join('\n')}`);
console.log(failed ? 'FAILED' : 'OK');
process.exit(failed ? 1 : 0);
