// Parity check of tests/fixtures/hf-qwen2-vl and hf-qwen2_5-vl with onnxruntime-node, against the PyTorch references
// written by tools/hf-fixtures/build_qwen2_vl.py (HF transformers v4.46.1 Qwen2-VL, v4.49.0 Qwen2.5-VL).
//
//   node tools/hf-fixtures/check_qwen2_vl.mjs            (from the repository root)
//
// Per fixture and case: vision_encoder (pixel_values + grid input, named as transformers.js 4.3.1 feeds it) ->
// embed_tokens -> the image features scattered into the <|image_pad|> rows -> decoder prefill (zero-length past) with
// the reference M-RoPE position_ids [3, 1, seq] -> one cached decode step at the reference decode position ids ->
// greedy decoding (decode positions cache_position + rope_delta on all three axes, as HF generate). Prints the max
// relative error max|a-b| / max|b| of image_features, prefill logits, presents and decode-step logits, and whether
// the greedy tokens match. Then: which shapes/<w>x<h> grids the traced one-image vision graph reproduces, and
// transformers.js's own tokenizer / chat template / Qwen2VLProcessor against HF's (pixel_values informational).
// The graphs of model/ and, when present, model-ort-fused/ (ONNX Runtime's transformer optimizer:
// tools/hf-fixtures/build_qwen2_vl_fused.py) go through the same checks; on shapes/ the fused vision graph is also
// compared with model/'s on every grid, reproduced or not (the fusions must not change results).
// Exits 1 when a graph is off by more than 1e-4, greedy tokens differ, a grid listed in reference.json's
// vision_graph_grids_reproduced is not reproduced, the fused vision graph differs from model/'s on a shapes/ grid
// (> 1e-4), or transformers.js's prompt / input_ids differ from HF's.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { argmaxLast, readSafetensors, relErr } from './check_common.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURES = ['hf-qwen2-vl', 'hf-qwen2_5-vl'];

const f32 = (data, dims) => new ort.Tensor('float32', data, dims);
const i64 = (arr, dims) => new ort.Tensor('int64', BigInt64Array.from(arr, (v) => BigInt(v)), dims);
const opts = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
const e = (x) => (Number.isFinite(x) ? x.toExponential(2) : String(x));

async function checkFixture(name) {
  const dir = join(ROOT, 'tests', 'fixtures', name);
  const index = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
  const ref = readSafetensors(join(dir, 'reference.safetensors'));
  const results = {};
  let modelFeatures = null; // model/'s features on shapes/, to compare the fused graph with
  for (const style of ['model', 'model-ort-fused']) {
    if (!existsSync(join(dir, style, 'onnx', 'decoder_model_merged.onnx'))) {
      console.log(`\n${name}/${style}: missing`);
      continue;
    }
    const r = await checkFolder(name, style, dir, index, ref, modelFeatures);
    if (style === 'model') modelFeatures = r.shapeFeatures;
    results[style] = r;
  }
  const tokOk = await checkTransformersJs(dir, index, ref);
  return { results, tokOk };
}

async function checkFolder(name, style, dir, index, ref, modelFeatures) {
  const R = (c, t) => {
    const x = ref[`${c.name}/${t}`];
    if (!x) throw new Error(`reference.safetensors has no ${c.name}/${t}`);
    return x;
  };
  const onnxDir = join(dir, style, 'onnx');
  const open = (f) => ort.InferenceSession.create(join(onnxDir, f), opts);
  const [vision, embed, decoder] = await Promise.all(['vision_encoder.onnx', 'embed_tokens.onnx', 'decoder_model_merged.onnx'].map(open));
  const sizes = ['vision_encoder.onnx', 'embed_tokens.onnx', 'decoder_model_merged.onnx'].map((f) => `${f} ${statSync(join(onnxDir, f)).size} B`);
  console.log(`\n${name}/${style}  (${index.hf_class}, transformers ${index.transformers_version}; ${sizes.join(', ')})`);
  console.log(`  vision inputs [${vision.inputNames}] -> [${vision.outputNames}]; decoder inputs [${decoder.inputNames.slice(0, 3)}, past_key_values.*]`);
  const gridName = vision.inputNames.find((n) => n !== 'pixel_values');
  const LAYERS = index.text_layers;
  const KV = ['key', 'value'];
  const worst = { image_features: 0, logits: 0, presents: 0, decode: 0, greedyOk: true };

  for (const c of index.cases) {
    const seq = c.input_ids.length;
    const ids = R(c, 'input_ids');
    const emb = await embed.run({ input_ids: new ort.Tensor('int64', ids.data, ids.dims) });
    const x = Float32Array.from(emb.inputs_embeds.data);
    const hidden = emb.inputs_embeds.dims[2];
    const line = [`  ${c.name.padEnd(10)}`];
    if (c.num_images > 0) {
      const px = R(c, 'pixel_values');
      const grid = R(c, 'image_grid_thw');
      const v = await vision.run({ pixel_values: f32(px.data, px.dims), [gridName]: new ort.Tensor('int64', grid.data, grid.dims) });
      const feats = v.image_features;
      const err = relErr(feats.data, R(c, 'image_features').data);
      worst.image_features = Math.max(worst.image_features, err);
      line.push(`image_features ${e(err)}`);
      c.image_token_positions.forEach((pos, j) => x.set(feats.data.subarray(j * hidden, (j + 1) * hidden), pos * hidden));
    }
    const pos = R(c, 'position_ids');
    const kvDims = (len) => [1, R(c, 'present.0.key').dims[1], len, R(c, 'present.0.key').dims[3]];
    const feeds = {
      inputs_embeds: f32(x, [1, seq, hidden]),
      attention_mask: i64(Array(seq).fill(1), [1, seq]),
      position_ids: new ort.Tensor('int64', pos.data, pos.dims),
    };
    for (let i = 0; i < LAYERS; i++) for (const k of KV) feeds[`past_key_values.${i}.${k}`] = f32(new Float32Array(0), kvDims(0));
    const out = await decoder.run(feeds);
    const eL = relErr(out.logits.data, R(c, 'logits').data);
    let eP = 0;
    for (let i = 0; i < LAYERS; i++) for (const k of KV) eP = Math.max(eP, relErr(out[`present.${i}.${k}`].data, R(c, `present.${i}.${k}`).data));
    worst.logits = Math.max(worst.logits, eL);
    worst.presents = Math.max(worst.presents, eP);
    line.push(`logits ${e(eL)}`, `presents ${e(eP)}`);

    const tokens = [argmaxLast(out.logits)];
    let past = out;
    let total = seq;
    for (let step = 1; step < c.greedy_tokens.length; step++) {
      const tok = step === 1 ? c.greedy_tokens[0] : tokens[step - 1];
      const te = await embed.run({ input_ids: i64([tok], [1, 1]) });
      const p = total + c.rope_delta; // cache_position + rope_deltas, all three axes
      total += 1;
      const f = { inputs_embeds: te.inputs_embeds, attention_mask: i64(Array(total).fill(1), [1, total]), position_ids: i64([p, p, p], [3, 1, 1]) };
      for (let i = 0; i < LAYERS; i++) for (const k of KV) f[`past_key_values.${i}.${k}`] = past[`present.${i}.${k}`];
      const o = await decoder.run(f);
      if (step === 1) {
        const refPos = Array.from(R(c, 'decode.position_ids').data, Number);
        const samePos = refPos.every((v) => v === p);
        const eD = relErr(o.logits.data, R(c, 'decode.logits').data);
        worst.decode = Math.max(worst.decode, samePos ? eD : Infinity);
        line.push(`decode-step logits ${e(eD)} (positions ${p}${samePos ? ' = ref' : ` != ref ${refPos}`})`);
      }
      tokens.push(argmaxLast(o.logits));
      past = o;
    }
    const ok = tokens.join(',') === c.greedy_tokens.join(',');
    worst.greedyOk &&= ok;
    line.push(`greedy [${tokens}] ${ok ? '=' : '!='} ref [${c.greedy_tokens}]`);
    console.log(line.join('  '));
  }

  // Which grids the traced vision graph reproduces (it was exported for one image of one grid).
  const gridReport = [];
  const listed = new Set(index.vision_graph_grids_reproduced.map((g) => g.join(',')));
  let gridsOk = true;
  const shapeFeatures = {};
  for (const s of index.shapes) {
    const px = ref[`shapes/${s.width}x${s.height}/pixel_values`];
    const grid = ref[`shapes/${s.width}x${s.height}/image_grid_thw`];
    const want = ref[`shapes/${s.width}x${s.height}/image_features`];
    let res;
    try {
      const v = await vision.run({ pixel_values: f32(px.data, px.dims), [gridName]: new ort.Tensor('int64', grid.data, grid.dims) });
      const err = relErr(v.image_features.data, want.data);
      res = err < 1e-4 ? `ok ${e(err)}` : `WRONG ${e(err)}`;
      shapeFeatures[s.image] = v.image_features.data;
      if (modelFeatures) {
        // fused vs model/ on the same grid: must agree even where the traced graph is wrong for the grid
        const base = modelFeatures[s.image];
        const d = base ? relErr(v.image_features.data, base) : Infinity;
        if (!(d < 1e-4)) gridsOk = false;
        res += `; vs model/ ${e(d)}`;
      }
    } catch (err) {
      res = `error: ${String(err.message).split('\n')[0].slice(0, 120)}`;
    }
    const claimed = listed.has(s.image_grid_thw.join(','));
    if (claimed && !res.startsWith('ok')) gridsOk = false;
    gridReport.push(`    ${`${s.width}x${s.height}`.padEnd(8)} grid [${s.image_grid_thw}]  ${res}${claimed ? '  (listed as reproduced)' : ''}`);
  }
  console.log(`  vision graph (exported for grid [${index.vision_graph_exported_for.image_grid_thw}]) on shapes/:\n${gridReport.join('\n')}`);
  return { worst, gridsOk, shapeFeatures };
}

async function checkTransformersJs(dir, index, ref) {
  let transformers;
  try {
    transformers = await import('@huggingface/transformers');
  } catch (err) {
    console.log(`  transformers.js not importable (${err.message}); skipped`);
    return true;
  }
  const { AutoProcessor, RawImage, env } = transformers;
  env.allowRemoteModels = false;
  const processor = await AutoProcessor.from_pretrained(join(dir, 'model'), { local_files_only: true });
  let ok = true;
  for (const c of index.cases) {
    const content = [...Array.from({ length: c.num_images }, () => ({ type: 'image' })), { type: 'text', text: c.question }];
    const prompt = processor.tokenizer.apply_chat_template([{ role: 'user', content }], { tokenize: false, add_generation_prompt: true });
    const images = c.image ? [(await RawImage.read(join(dir, c.image))).rgb()] : null;
    const enc = await processor(prompt, images);
    const ids = Array.from(enc.input_ids.data, Number);
    const same = prompt === c.prompt && ids.join(',') === c.input_ids.join(',');
    ok &&= same;
    const extra = [];
    if (images) {
      const grid = Array.from(enc.image_grid_thw.data, Number);
      extra.push(`image_grid_thw [${grid}] ${grid.join(',') === c.image_grid_thw[0].join(',') ? '=' : '!='} ref`);
      const px = ref[`${c.name}/pixel_values`];
      extra.push(`pixel_values ${enc.pixel_values.dims.join('x') === px.dims.join('x') ? `max rel diff ${e(relErr(enc.pixel_values.data, px.data))}` : `shape ${enc.pixel_values.dims} != ${px.dims}`}`);
    }
    console.log(`  transformers.js ${c.name.padEnd(10)} prompt ${prompt === c.prompt ? '=' : '!='} ref, input_ids ${ids.join(',') === c.input_ids.join(',') ? '=' : '!='} ref (${ids.length} tokens)${extra.length ? `, ${extra.join(', ')}` : ''}`);
  }
  // Preprocessing parity on the shapes (transformers.js's own resize, not Loupe's Pillow port): informational.
  const rows = [];
  for (const s of index.shapes) {
    const img = (await RawImage.read(join(dir, s.image))).rgb();
    const out = await processor.image_processor([img]);
    const grid = Array.from(out.image_grid_thw.data, Number);
    const px = ref[`shapes/${s.width}x${s.height}/pixel_values`];
    const sameGrid = grid.join(',') === s.image_grid_thw.join(',');
    rows.push(`    ${`${s.width}x${s.height}`.padEnd(8)} grid [${grid}] ${sameGrid ? '=' : `!= HF [${s.image_grid_thw}]`}${sameGrid ? `, pixel_values max rel diff ${e(relErr(out.pixel_values.data, px.data))}` : ''}`);
  }
  console.log(`  transformers.js Qwen2VLImageProcessor on shapes/ (its own resize):\n${rows.join('\n')}`);
  return ok;
}

console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}`);
let failed = false;
const summary = [];
for (const name of FIXTURES) {
  const { results, tokOk } = await checkFixture(name);
  if (!tokOk) failed = true;
  for (const [style, { worst: w, gridsOk }] of Object.entries(results)) {
    summary.push(`${`${name}/${style}`.padEnd(31)} image_features ${e(w.image_features)}  logits ${e(w.logits)}  presents ${e(w.presents)}  decode ${e(w.decode)}  greedy ${w.greedyOk ? 'match' : 'differ'}  tokenizer ${tokOk ? 'match' : 'differ'}  listed grids ${gridsOk ? 'reproduced' : 'NOT reproduced'}${style === 'model' ? '' : `, all shapes/ ${gridsOk ? '=' : '!='} model/`}`);
    if (Math.max(w.image_features, w.logits, w.presents, w.decode) > 1e-4 || !w.greedyOk || !gridsOk) failed = true;
  }
}
console.log(`\nmax relative error (max|a-b|/max|b|) over the cases:\n${summary.join('\n')}`);
console.log(failed ? 'FAILED' : 'OK');
process.exit(failed ? 1 : 0);
