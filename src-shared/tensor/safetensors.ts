/**
 * safetensors encode/decode in pure TS (no Node Buffer), so the same code writes the
 * blob store on the engine side and reads exported files anywhere.
 *
 * Why not a package: the format is an 8-byte length, a JSON header and raw little-endian
 * bytes; the npm `safetensors` package is a 0.0.1 placeholder, and Hugging Face ships no
 * JS writer. Files written here load with Python's `safetensors.numpy.load_file`.
 */
import { type DType, type HostTensor, BYTES_PER_ELEMENT, elementCount, typedArrayFor } from './dtype.ts';

const TO_ST: Record<DType, string> = { float32: 'F32', float16: 'F16', int64: 'I64', int32: 'I32', uint8: 'U8', bool: 'BOOL' };
const FROM_ST: Record<string, DType> = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));

export class SafetensorsError extends Error {}

/** What a tensor needs for its header entry: the bytes come later (or never, for a size estimate). */
export interface TensorLayoutMeta {
  dtype: DType;
  shape: number[];
}

export interface SafetensorsLayout {
  /** The 8-byte length and the padded JSON header: the file's first `header.byteLength` bytes. */
  header: Uint8Array;
  /** Tensor names in file order (sorted), each with its byte range relative to the payload start. */
  entries: { name: string; begin: number; end: number }[];
  /** Total file size in bytes. */
  size: number;
}

/**
 * The exact header and payload layout `encodeSafetensors` writes, from shapes alone — so a
 * writer can stream the payload tensor by tensor, and an estimate can size a file unwritten.
 */
export function safetensorsLayout(tensors: Record<string, TensorLayoutMeta>, metadata: Record<string, string> = {}): SafetensorsLayout {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const entries: SafetensorsLayout['entries'] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const bytes = elementCount(t.shape) * BYTES_PER_ELEMENT[t.dtype];
    header[name] = { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    entries.push({ name, begin: offset, end: offset + bytes });
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the payload starts 8-byte aligned (readers may then view it in place).
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const jsonBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + jsonBytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  return { header: out, entries, size: out.length + offset };
}

/** A tensor's bytes as a Uint8Array view (no copy). */
export function bytesOf(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Checks that every tensor's data matches its shape, naming the first that does not. */
export function checkTensorSizes(tensors: Record<string, HostTensor>): void {
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = elementCount(t.shape) * BYTES_PER_ELEMENT[t.dtype];
    if (t.data.byteLength !== bytes) throw new SafetensorsError(`tensor ${name}: shape ${JSON.stringify(t.shape)} needs ${bytes} bytes, data has ${t.data.byteLength}`);
  }
}

/**
 * The file as pieces in order (header, then each tensor's bytes as a view of its own data):
 * writers stream these without ever joining them into one buffer (no 2 GiB limit, no copy).
 */
export function safetensorsPieces(tensors: Record<string, HostTensor>, metadata: Record<string, string> = {}): { pieces: Uint8Array[]; size: number } {
  checkTensorSizes(tensors);
  const layout = safetensorsLayout(tensors, metadata);
  return { pieces: [layout.header, ...layout.entries.map((e) => bytesOf(tensors[e.name]!))], size: layout.size };
}

export function encodeSafetensors(tensors: Record<string, HostTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const { pieces, size } = safetensorsPieces(tensors, metadata);
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Parses a header (the first 8 + n bytes of a file): tensor entries with absolute byte ranges. */
export function parseSafetensorsHeader(headerJson: Uint8Array, payloadStart: number): { tensors: Record<string, TensorLayoutMeta & { begin: number; end: number }>; metadata: Record<string, string> } {
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(headerJson));
  } catch (e) {
    throw new SafetensorsError(`safetensors: header is not valid JSON (${(e as Error).message})`);
  }
  const tensors: Record<string, TensorLayoutMeta & { begin: number; end: number }> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype: st, shape, data_offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const dtype = FROM_ST[st];
    if (!dtype) throw new SafetensorsError(`safetensors: tensor ${name} has unsupported dtype ${st}`);
    const [start, end] = data_offsets;
    if (end - start !== elementCount(shape) * BYTES_PER_ELEMENT[dtype]) throw new SafetensorsError(`safetensors: tensor ${name} offsets [${start}, ${end}] do not fit its shape`);
    tensors[name] = { dtype, shape, begin: payloadStart + start, end: payloadStart + end };
  }
  return { tensors, metadata };
}

export interface DecodedSafetensors {
  tensors: Record<string, HostTensor>;
  metadata: Record<string, string>;
}

export function decodeSafetensors(bytes: Uint8Array): DecodedSafetensors {
  if (bytes.byteLength < 8) throw new SafetensorsError(`safetensors: file is ${bytes.byteLength} bytes, shorter than its 8-byte header length`);
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + headerLen > bytes.byteLength) throw new SafetensorsError(`safetensors: header of ${headerLen} bytes runs past the end of a ${bytes.byteLength}-byte file (truncated?)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new SafetensorsError(`safetensors: header is not valid JSON (${(e as Error).message})`);
  }
  const base = 8 + headerLen;
  const tensors: Record<string, HostTensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype: st, shape, data_offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const dtype = FROM_ST[st];
    if (!dtype) throw new SafetensorsError(`safetensors: tensor ${name} has unsupported dtype ${st}`);
    const [start, end] = data_offsets;
    const n = elementCount(shape);
    if (end - start !== n * BYTES_PER_ELEMENT[dtype] || base + end > bytes.byteLength) {
      throw new SafetensorsError(`safetensors: tensor ${name} offsets [${start}, ${end}] do not fit its shape or the file (truncated?)`);
    }
    // Copy into a fresh aligned buffer: the payload offset need not be aligned for the element size.
    // Uint8Array's own slice: a Node Buffer's `slice` is a view on the same memory, not a copy.
    const copy = Uint8Array.prototype.slice.call(bytes, base + start, base + end);
    tensors[name] = { dtype, shape, data: typedArrayFor(dtype, copy.buffer, 0, n) };
  }
  return { tensors, metadata };
}
