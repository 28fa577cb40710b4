// Parity check of tests/fixtures/hf-llava/model-optimum-merged (Optimum-merged decoder) with onnxruntime-node.
//
//   node tools/hf-fixtures/check_llava_merged.mjs            (from the repository root)
//
// On each reference case: vision -> embed -> image features scattered into the `<image>` rows -> prefill through
// the no-past branch (`use_cache_branch` [false], zero-length past [1, 2, 0, 16]: what Optimum's
// ORTModelForCausalLM and transformers.js 4.3.1 feed on the first step) -> one decode step through the with-past
// branch (`use_cache_branch` [true], the presents as past, the reference's greedy token 1) -> greedy decoding.
// Compared with reference.safetensors: image_features, prefill logits, presents, decode-step logits
// (max|a-b| / max|b|) and the greedy tokens. Also: the prefill with Optimum's export-validation dummy past
// (length 1, ignored by the no-past branch) must give the same logits bit for bit, and the with-past branch on
// the prefill (zero-length past, use_cache_branch [true]) is reported for information. Exits 1 over 1e-4.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { argmaxLast, readSafetensors, relErr } from './check_common.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIR = join(ROOT, 'tests', 'fixtures', 'hf-llava');
const MODEL = join(DIR, 'model-optimum-merged');
const index = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8'));
const record = JSON.parse(readFileSync(join(MODEL, 'loupe-fixture.json'), 'utf8'));
const TOL = 1e-4;

const ref = readSafetensors(join(DIR, 'reference.safetensors'));
const R = (c, name) => {
  const t = ref[`${c.name}/${name}`];
  if (!t) throw new Error(`reference.safetensors has no ${c.name}/${name}`);
  return t;
};
const f32 = (data, dims) => new ort.Tensor('float32', data, dims);
const i64 = (arr, dims) => new ort.Tensor('int64', BigInt64Array.from(arr, (v) => BigInt(v)), dims);
const bool = (v) => new ort.Tensor('bool', Uint8Array.from([v ? 1 : 0]), [1]);

const LAYERS = index.text_layers;
const KV = ['key', 'value'];
const opts = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
const open = (f) => ort.InferenceSession.create(join(MODEL, 'onnx', f), opts);
if (!existsSync(join(MODEL, 'onnx', 'decoder_model_merged.onnx'))) {
  console.log('model-optimum-merged missing: run tools/hf-fixtures/build_llava_merged.py');
  process.exit(1);
}
const vision = await open('vision_encoder.onnx');
const embed = await open('embed_tokens.onnx');
const decoder = await open('decoder_model_merged.onnx');

console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}; ${record.merge.tool} of optimum ${record.merge.optimum.version} (${record.merge.optimum.commit})`);
console.log(`decoder inputs: ${decoder.inputNames.join(', ')}`);
console.log(`decoder outputs: ${decoder.outputNames.join(', ')}`);
const pastMeta = decoder.inputMetadata?.find?.((m) => m.name === 'past_key_values.0.key');
if (pastMeta) console.log(`past_key_values.0.key metadata shape: [${pastMeta.shape.join(', ')}] (transformers.js: symbolic dims but batch_size -> 0)`);

const worst = { image_features: 0, logits: 0, presents: 0, decode: 0, dummyPast1: 0, withPastPrefill: 0, greedyOk: true };
for (const c of index.cases) {
  const seq = c.input_ids.length;
  const ids = R(c, 'input_ids');
  const emb = await embed.run({ input_ids: new ort.Tensor('int64', ids.data, ids.dims) });
  const x = Float32Array.from(emb.inputs_embeds.data);
  const hidden = emb.inputs_embeds.dims[2];
  const line = [`  ${c.name.padEnd(12)}`];
  if (c.num_images > 0) {
    const px = R(c, 'pixel_values');
    const feats = (await vision.run({ pixel_values: f32(px.data, px.dims) })).image_features;
    const e = relErr(feats.data, R(c, 'image_features').data);
    worst.image_features = Math.max(worst.image_features, e);
    line.push(`image_features ${e.toExponential(2)}`);
    c.image_token_positions.forEach((pos, j) => x.set(feats.data.subarray(j * hidden, (j + 1) * hidden), pos * hidden));
  }
  const kvDims = R(c, 'present.0.key').dims;
  const prefill = (useCache, pastLen) => {
    const feeds = {
      inputs_embeds: f32(x, [1, seq, hidden]),
      attention_mask: i64(Array(seq).fill(1), [1, seq]),
      position_ids: i64(Array.from({ length: seq }, (_, i) => i), [1, seq]),
      use_cache_branch: bool(useCache),
    };
    const dims = [1, kvDims[1], pastLen, kvDims[3]];
    for (let i = 0; i < LAYERS; i++) for (const k of KV) feeds[`past_key_values.${i}.${k}`] = f32(new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
    return decoder.run(feeds);
  };
  const out = await prefill(false, 0);
  const eL = relErr(out.logits.data, R(c, 'logits').data);
  let eP = 0;
  for (let i = 0; i < LAYERS; i++) for (const k of KV) eP = Math.max(eP, relErr(out[`present.${i}.${k}`].data, R(c, `present.${i}.${k}`).data));
  worst.logits = Math.max(worst.logits, eL);
  worst.presents = Math.max(worst.presents, eP);
  line.push(`logits ${eL.toExponential(2)}`, `presents ${eP.toExponential(2)}`);
  // Optimum's export validation feeds a dummy past of length 1 with use_cache_branch [false]
  const out1 = await prefill(false, 1);
  const e1 = relErr(out1.logits.data, out.logits.data);
  worst.dummyPast1 = Math.max(worst.dummyPast1, e1);
  // the with-past branch on the prefill (information only)
  const outW = await prefill(true, 0);
  const eW = relErr(outW.logits.data, R(c, 'logits').data);
  worst.withPastPrefill = Math.max(worst.withPastPrefill, eW);

  const tokens = [argmaxLast(out.logits)];
  let past = out;
  let total = seq;
  for (let step = 1; step < c.greedy_tokens.length; step++) {
    const tok = step === 1 ? c.greedy_tokens[0] : tokens[step - 1];
    const e = await embed.run({ input_ids: i64([tok], [1, 1]) });
    total += 1;
    const f = {
      inputs_embeds: e.inputs_embeds,
      attention_mask: i64(Array(total).fill(1), [1, total]),
      position_ids: i64([total - 1], [1, 1]),
      use_cache_branch: bool(true),
    };
    for (let i = 0; i < LAYERS; i++) for (const k of KV) f[`past_key_values.${i}.${k}`] = past[`present.${i}.${k}`];
    const o = await decoder.run(f);
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
  line.push(`greedy [${tokens}] ${ok ? '=' : '!='} ref [${c.greedy_tokens}]`, `| dummy past 1 vs 0: ${e1.toExponential(2)}`, `with-past branch prefill: ${eW.toExponential(2)}`);
  console.log(line.join('  '));
}
console.log(`\nmax relative error over the cases: image_features ${worst.image_features.toExponential(2)}  prefill logits (use_cache_branch false, past 0) ${worst.logits.toExponential(2)}  presents ${worst.presents.toExponential(2)}  decode step (use_cache_branch true) ${worst.decode.toExponential(2)}  greedy ${worst.greedyOk ? 'match' : 'differ'}`);
console.log(`prefill with a length-1 dummy past vs zero-length: ${worst.dummyPast1.toExponential(2)}; with-past branch used for the prefill: ${worst.withPastPrefill.toExponential(2)} (information)`);
const failed = Math.max(worst.image_features, worst.logits, worst.presents, worst.decode) > TOL || worst.dummyPast1 !== 0 || !worst.greedyOk;
console.log(failed ? 'FAILED' : 'OK');
process.exit(failed ? 1 : 0);
