/**
 * Lossless encodings of binary masks (one byte per pixel, 0/1, row-major `width × height`):
 *
 * - COCO run-length encoding (`segmentation: { size: [h, w], counts }`): runs over the pixels in
 *   column-major order, starting with a run of zeros; `counts` as the compressed string of
 *   pycocotools (`rleToString`/`rleFrString`: deltas against the count two back, 5-bit groups
 *   offset by 48) or as a plain array.
 * - PNG bytes (8-bit greyscale, the pixel value is the instance id — 1 for a binary mask), the
 *   format the dataset folder stores; deflated with the web-standard `CompressionStream`
 *   (present in browsers and Node ≥ 18), so the renderer can encode a mask without Node.
 * - base64, to carry those PNG bytes in a JSON request (the wire has no client→engine binary frame).
 */

/** COCO RLE counts of a row-major mask: alternating runs of 0 and 1 in column-major order, zeros first. */
export function rleCounts(mask: ArrayLike<number>, width: number, height: number): number[] {
  if (mask.length !== width * height) throw new Error(`mask of ${mask.length} pixels is not ${width}×${height}`);
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x] ? 1 : 0;
      if (v !== current) {
        counts.push(run);
        run = 0;
        current = v;
      }
      run++;
    }
  }
  counts.push(run);
  return counts;
}

/** Row-major binary mask from COCO RLE counts; the counts must cover exactly `width × height` pixels. */
export function rleDecode(counts: readonly number[], width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  let p = 0;
  counts.forEach((c, k) => {
    if (!Number.isInteger(c) || c < 0) throw new Error(`RLE count ${c} is not a non-negative integer`);
    if (p + c > width * height) throw new Error(`RLE counts cover more than ${width}×${height} pixels`);
    if (k % 2 === 1) {
      for (let j = p; j < p + c; j++) out[(j % height) * width + Math.floor(j / height)] = 1;
    }
    p += c;
  });
  if (p !== width * height) throw new Error(`RLE counts cover ${p} pixels, not ${width}×${height}`);
  return out;
}

/** pycocotools' compressed RLE string (rleToString in maskApi.c). */
export function rleToString(counts: readonly number[]): string {
  let s = '';
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i]!;
    if (i > 2) x -= counts[i - 2]!;
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** Inverse of `rleToString` (rleFrString in maskApi.c). */
export function rleFromString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error('compressed RLE string ends inside a count');
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new Error(`compressed RLE string has a bad character ${JSON.stringify(s[p])}`);
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2]!;
    counts.push(x);
  }
  return counts;
}

// --- PNG --------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

async function zlib(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** 8-bit greyscale PNG of a `width × height` map (values are written as they are: 0/1 for a binary mask). */
export async function encodeMaskPng(values: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  if (values.length !== width * height) throw new Error(`mask of ${values.length} pixels is not ${width}×${height}`);
  const raw = new Uint8Array(height * (width + 1)); // filter byte 0 (None) before every row
  for (let y = 0; y < height; y++) raw.set(values.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 0, 0, 0, 0], 8); // bit depth 8, colour type 0 (grey), deflate, adaptive filter, no interlace
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', await zlib(raw)), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// --- base64 -------------------------------------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Map([...B64].map((ch, i) => [ch, i]));

export function bytesToBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    s += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + (i + 1 < bytes.length ? B64[(n >> 6) & 63]! : '=') + (i + 2 < bytes.length ? B64[n & 63]! : '=');
  }
  return s;
}

export function base64ToBytes(s: string): Uint8Array {
  if (s.length % 4 !== 0) throw new Error('base64 text length is not a multiple of 4');
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    let n = 0;
    for (let k = 0; k < 4; k++) {
      const ch = s[i + k]!;
      const d = ch === '=' && i + k >= s.length - pad ? 0 : B64_INDEX.get(ch);
      if (d === undefined) throw new Error(`base64 text has a bad character ${JSON.stringify(ch)}`);
      n = (n << 6) | d;
    }
    if (o < out.length) out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}
