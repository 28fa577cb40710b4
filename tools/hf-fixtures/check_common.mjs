/**
 * What every hf-fixtures check script needs: the references (safetensors: F32, I64, and F16
 * widened to float32), the relative error used for every parity number, and greedy argmax.
 */
import { readFileSync } from 'node:fs';

/** IEEE half → float. */
export function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** name → { dims, data } (Float32Array for F32/F16, BigInt64Array for I64). */
export function readSafetensors(path) {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  const out = {};
  for (const [name, meta] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = meta.data_offsets;
    const copy = new Uint8Array(b - a);
    copy.set(buf.subarray(base + a, base + b));
    let data;
    if (meta.dtype === 'F32') data = new Float32Array(copy.buffer);
    else if (meta.dtype === 'I64') data = new BigInt64Array(copy.buffer);
    else if (meta.dtype === 'F16') data = Float32Array.from(new Uint16Array(copy.buffer), halfToFloat);
    else throw new Error(`${name}: dtype ${meta.dtype}`);
    out[name] = { dims: meta.shape, data };
  }
  return out;
}

/** max |a − b| / max |b|; Infinity when the lengths differ (fails every bound). */
export function relErr(a, b) {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

/** Greedy token at the last position of [1, seq, vocab] logits. */
export const argmaxLast = (logits) => {
  const [, s, v] = logits.dims;
  const row = logits.data.subarray((s - 1) * v, s * v);
  let best = 0;
  for (let i = 1; i < v; i++) if (row[i] > row[best]) best = i;
  return best;
};
