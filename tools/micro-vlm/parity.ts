/**
 * Measures ONNX-vs-PyTorch agreement on the fixtures and prints it as JSON (for the model card).
 * The pass/fail check is tests/integration/micro-vlm-parity.test.ts; this only reports numbers.
 *
 *   node tools/micro-vlm/parity.ts > /tmp/parity.json
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'resources', 'models', 'micro-llava');
const FIX = join(ROOT, 'tests', 'fixtures', 'micro-llava');
const cases = JSON.parse(readFileSync(join(FIX, 'cases.json'), 'utf8'));
const cfg = JSON.parse(readFileSync(join(MODEL, 'config.json'), 'utf8')).text_config;
const opts: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 2 };
const session = (f: string) => ort.InferenceSession.create(join(MODEL, 'onnx', f), opts);
const [vision, embed, decoder] = await Promise.all([session('vision_encoder.onnx'), session('embed_tokens.onnx'), session('decoder_model_merged.onnx')]);

function past(n: number): Record<string, ort.Tensor> {
  const f: Record<string, ort.Tensor> = {};
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    for (const kv of ['key', 'value']) f[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, cfg.num_key_value_heads, n, cfg.head_dim]);
  }
  return f;
}

let maxRel = 0;
let maxAbs = 0;
let greedyIdentical = true;
const perCase: Record<string, unknown> = {};
for (const c of cases.cases) {
  const t = decodeSafetensors(new Uint8Array(readFileSync(join(FIX, c.file)))).tensors;
  const ids = t.input_ids!;
  const s = ids.shape[1]!;
  const emb = (await embed.run({ input_ids: new ort.Tensor('int64', ids.data as BigInt64Array, ids.shape) })).inputs_embeds!;
  const e = new Float32Array(emb.data as Float32Array);
  const h = emb.dims[2]!;
  if (t.pixel_values) {
    const f = (await vision.run({ pixel_values: new ort.Tensor('float32', t.pixel_values.data as Float32Array, t.pixel_values.shape) })).image_features!.data as Float32Array;
    let row = 0;
    (ids.data as BigInt64Array).forEach((v, p) => {
      if (Number(v) === cases.image_token_index) e.set(f.subarray(row * h, ++row * h), p * h);
    });
  }
  let out = await decoder.run({
    inputs_embeds: new ort.Tensor('float32', e, [1, s, h]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(s).fill(1n), [1, s]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: s }, (_, i) => BigInt(i)), [1, s]),
    ...past(0),
  });
  const a = out.logits!.data as Float32Array;
  const b = t.logits!.data as Float32Array;
  let d = 0;
  let sc = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    sc = Math.max(sc, Math.abs(b[i]!));
  }
  maxRel = Math.max(maxRel, d / sc);
  maxAbs = Math.max(maxAbs, d);
  // Greedy with the KV cache.
  const tokens: number[] = [];
  let n = s;
  for (let step = 0; step < cases.max_new_tokens; step++) {
    const l = out.logits!;
    const v = l.dims[2]!;
    const last = (l.data as Float32Array).subarray((l.dims[1]! - 1) * v, l.dims[1]! * v);
    const tok = last.indexOf(Math.max(...last));
    tokens.push(tok);
    if (tok === cases.eos_token_id) break;
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: (await embed.run({ input_ids: new ort.Tensor('int64', BigInt64Array.of(BigInt(tok)), [1, 1]) })).inputs_embeds!,
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n + 1).fill(1n), [1, n + 1]),
      position_ids: new ort.Tensor('int64', BigInt64Array.of(BigInt(n)), [1, 1]),
    };
    for (let i = 0; i < cfg.num_hidden_layers; i++) for (const kv of ['key', 'value']) feeds[`past_key_values.${i}.${kv}`] = out[`present.${i}.${kv}`]!;
    out = await decoder.run(feeds);
    n++;
  }
  const same = JSON.stringify(tokens) === JSON.stringify(c.greedy_tokens);
  greedyIdentical &&= same;
  perCase[c.name] = { max_rel_logits: d / sc, max_abs_logits: d, greedy_tokens: tokens, greedy_identical: same };
}
console.log(JSON.stringify({ max_rel_logits: maxRel, max_abs_logits: maxAbs, greedy_identical: greedyIdentical, cases: perCase }, null, 1));
