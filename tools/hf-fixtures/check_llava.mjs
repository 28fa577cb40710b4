// Parity check of tests/fixtures/hf-llava with onnxruntime-node, against the PyTorch references.
//
//   node tools/hf-fixtures/check_llava.mjs            (from the repository root)
//
// For model/ (fp32 and each variant in model/onnx/) and model-ort-fused/: vision -> embed -> the image features
// scattered into the `<image>` rows -> decoder prefill (zero-length past) -> one cached decode step -> greedy
// decoding, on each reference case's own inputs (pixel_values and input_ids from HF's processor). Prints the max
// relative error max|a-b| / max|b| of image_features, prefill logits, presents and the decode-step logits, and
// whether the greedy tokens match. Also checks the hand-written tokenizer + chat template with transformers.js.
// Exits 1 when an fp32 graph (model/, model-ort-fused/) is off by more than 1e-4 or its greedy tokens differ.
import { readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { argmaxLast, readSafetensors, relErr } from './check_common.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIR = join(ROOT, 'tests', 'fixtures', 'hf-llava');
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

async function open(dir, file) {
  const path = join(DIR, dir, 'onnx', file);
  if (!existsSync(path)) return null;
  return { path, size: statSync(path).size, session: await ort.InferenceSession.create(path, opts) };
}

async function checkSet(label, dir, files) {
  const vision = await open(dir, files.vision);
  const embed = await open(dir, files.embed);
  const decoder = await open(dir, files.decoder);
  if (!vision || !embed || !decoder) {
    console.log(`${label}: missing (${[files.vision, files.embed, files.decoder].join(', ')})`);
    return null;
  }
  const worst = { image_features: 0, logits: 0, presents: 0, decode: 0, greedyOk: true };
  console.log(`\n${label}  [${dir}/onnx: ${files.vision} ${vision.size} B, ${files.embed} ${embed.size} B, ${files.decoder} ${decoder.size} B]`);
  for (const c of index.cases) {
    const seq = c.input_ids.length;
    const ids = R(c, 'input_ids');
    const emb = await embed.session.run({ input_ids: new ort.Tensor('int64', ids.data, ids.dims) });
    const x = Float32Array.from(emb.inputs_embeds.data);
    const hidden = emb.inputs_embeds.dims[2];
    const line = [`  ${c.name.padEnd(12)}`];
    if (c.num_images > 0) {
      const px = R(c, 'pixel_values');
      const v = await vision.session.run({ pixel_values: f32(px.data, px.dims) });
      const feats = v.image_features;
      const e = relErr(feats.data, R(c, 'image_features').data);
      worst.image_features = Math.max(worst.image_features, e);
      line.push(`image_features ${e.toExponential(2)}`);
      // scatter the features into the <image> rows, in order (what masked_scatter does)
      c.image_token_positions.forEach((pos, j) => x.set(feats.data.subarray(j * hidden, (j + 1) * hidden), pos * hidden));
    }
    const feeds = {
      inputs_embeds: f32(x, [1, seq, hidden]),
      attention_mask: i64(Array(seq).fill(1), [1, seq]),
      position_ids: i64(Array.from({ length: seq }, (_, i) => i), [1, seq]),
    };
    const kvShape = (len) => [1, ...R(c, 'present.0.key').dims.slice(1, 2), len, R(c, 'present.0.key').dims[3]];
    for (let i = 0; i < LAYERS; i++) for (const k of KV) feeds[`past_key_values.${i}.${k}`] = f32(new Float32Array(0), kvShape(0));
    const out = await decoder.session.run(feeds);
    const eL = relErr(out.logits.data, R(c, 'logits').data);
    let eP = 0;
    for (let i = 0; i < LAYERS; i++) for (const k of KV) eP = Math.max(eP, relErr(out[`present.${i}.${k}`].data, R(c, `present.${i}.${k}`).data));
    worst.logits = Math.max(worst.logits, eL);
    worst.presents = Math.max(worst.presents, eP);
    line.push(`logits ${eL.toExponential(2)}`, `presents ${eP.toExponential(2)}`);

    // greedy decoding with the cache; the first cached step is compared with the reference decode.logits
    const tokens = [argmaxLast(out.logits)];
    let past = out;
    let total = seq;
    for (let step = 1; step < c.greedy_tokens.length; step++) {
      // feed the reference token so that the decode-step logits compare like with like
      const tok = step === 1 ? c.greedy_tokens[0] : tokens[step - 1];
      const e = await embed.session.run({ input_ids: i64([tok], [1, 1]) });
      total += 1;
      const f = {
        inputs_embeds: e.inputs_embeds,
        attention_mask: i64(Array(total).fill(1), [1, total]),
        position_ids: i64([total - 1], [1, 1]),
      };
      for (let i = 0; i < LAYERS; i++) for (const k of KV) f[`past_key_values.${i}.${k}`] = past[`present.${i}.${k}`];
      const o = await decoder.session.run(f);
      if (step === 1) {
        const eD = relErr(o.logits.data, R(c, 'decode.logits').data);
        worst.decode = Math.max(worst.decode, eD);
        line.push(`decode-step logits ${eD.toExponential(2)}`);
      }
      tokens.push(argmaxLast(o.logits));
      past = o;
    }
    const ok = tokens.join(',') === c.greedy_tokens.join(',');
    worst.greedyOk &&= ok;
    line.push(`greedy [${tokens}] ${ok ? '=' : '!='} ref [${c.greedy_tokens}]`);
    console.log(line.join('  '));
  }
  return worst;
}

async function checkTokenizer() {
  let transformers;
  try {
    transformers = await import('@huggingface/transformers');
  } catch (e) {
    console.log(`tokenizer: @huggingface/transformers not importable (${e.message}); skipped`);
    return true;
  }
  const tok = await transformers.AutoTokenizer.from_pretrained(join(DIR, 'model'), { local_files_only: true });
  let ok = true;
  for (const c of index.cases) {
    const content = [...Array.from({ length: c.num_images }, () => ({ type: 'image' })), { type: 'text', text: c.question }];
    const prompt = tok.apply_chat_template([{ role: 'user', content }], { tokenize: false, add_generation_prompt: true });
    const expanded = prompt.replaceAll('<image>', '<image>'.repeat(index.image_seq_length));
    const ids = tok.encode(expanded);
    const same = prompt === c.prompt && ids.join(',') === c.input_ids.join(',');
    ok &&= same;
    console.log(`tokenizer (transformers.js): ${c.name.padEnd(12)} prompt ${prompt === c.prompt ? '=' : '!='} ref, input_ids ${ids.join(',') === c.input_ids.join(',') ? '=' : '!='} ref (${ids.length} tokens)`);
  }
  return ok;
}

const sets = [
  ['model fp32', 'model', { vision: 'vision_encoder.onnx', embed: 'embed_tokens.onnx', decoder: 'decoder_model_merged.onnx' }, true],
  ['model-ort-fused fp32', 'model-ort-fused', { vision: 'vision_encoder.onnx', embed: 'embed_tokens.onnx', decoder: 'decoder_model_merged.onnx' }, true],
  ['model int8 (*_quantized)', 'model', { vision: 'vision_encoder_quantized.onnx', embed: 'embed_tokens_quantized.onnx', decoder: 'decoder_model_merged_quantized.onnx' }, false],
  ['model q4 decoder (fp32 vision/embed)', 'model', { vision: 'vision_encoder.onnx', embed: 'embed_tokens.onnx', decoder: 'decoder_model_merged_q4.onnx' }, false],
];
console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}; fixture by ${index.generator} (transformers ${index.transformers_version}, torch ${index.torch_version})`);
let failed = !(await checkTokenizer());
const summary = [];
for (const [label, dir, files, strict] of sets) {
  const w = await checkSet(label, dir, files);
  if (!w) continue;
  summary.push(`${label.padEnd(38)} image_features ${w.image_features.toExponential(2)}  logits ${w.logits.toExponential(2)}  presents ${w.presents.toExponential(2)}  decode ${w.decode.toExponential(2)}  greedy ${w.greedyOk ? 'match' : 'differ'}`);
  if (strict && (Math.max(w.image_features, w.logits, w.presents, w.decode) > 1e-4 || !w.greedyOk)) failed = true;
}
console.log(`\nmax relative error (max|a-b|/max|b|) over the cases:\n${summary.join('\n')}`);
console.log(failed ? 'FAILED' : 'OK');
process.exit(failed ? 1 : 0);
