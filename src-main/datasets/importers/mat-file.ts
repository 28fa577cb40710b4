/**
 * A reader for MATLAB Level 5 MAT-files (MATLAB's `save` default up to -v7, and what
 * `scipy.io.savemat` writes), limited to what PASCAL-Part's `Annotations_Part/*.mat` hold:
 * struct arrays, cell arrays, char arrays and real numeric / logical matrices, stored plainly or
 * inside `miCOMPRESSED` (zlib) elements, little-endian.
 *
 * Why not a package: the one npm reader (`mat-for-js` 1.1.0, one author, ~1k downloads a month,
 * not installed here) turns every matrix into nested JS arrays — a 500×375 mask becomes 375
 * arrays of boxed numbers, ten-odd per image over ~10k images — while this reader keeps each
 * matrix as the typed array of its stored bytes. The element set is small and fixed by the
 * format document (MathWorks, "MAT-File Format", R2019b), and every branch is tested in
 * tests/unit/mat-file.test.ts against files written by scipy and by hand.
 *
 * Refused with a named reason: v7.3 files (HDF5), big-endian files, sparse, complex, object and
 * function-handle arrays — none occur in PASCAL-Part.
 */
import { inflateSync } from 'node:zlib';
import { LoupeError } from '../../../src-shared/contract/errors.ts';

export type MatValue =
  /** Numbers in column-major order, as stored (a double matrix may be stored as uint8 bytes). */
  | { kind: 'numeric'; className: string; dims: number[]; logical: boolean; data: ArrayLike<number> }
  /** One string per row (a 1×N char array is one string; 0×0 is no rows). */
  | { kind: 'char'; dims: number[]; rows: string[] }
  /** Elements in column-major order, each a field → value record. */
  | { kind: 'struct'; dims: number[]; fields: string[]; elements: Record<string, MatValue>[] }
  | { kind: 'cell'; dims: number[]; elements: MatValue[] };

// Data types of the element tags (Table 1-1 of the format document).
const MI = { INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9, INT64: 12, UINT64: 13, MATRIX: 14, COMPRESSED: 15, UTF8: 16, UTF16: 17, UTF32: 18 } as const;
// Array classes of the array-flags subelement (Table 1-3).
const CLASS_NAMES: Record<number, string> = { 1: 'cell', 2: 'struct', 3: 'object', 4: 'char', 5: 'sparse', 6: 'double', 7: 'single', 8: 'int8', 9: 'uint8', 10: 'int16', 11: 'uint16', 12: 'int32', 13: 'uint32', 14: 'int64', 15: 'uint64' };
const FLAG_COMPLEX = 0x08;
const FLAG_LOGICAL = 0x02;

interface Element {
  type: number;
  bytes: Uint8Array;
  /** Offset of the next element in the same buffer. */
  next: number;
}

class Cursor {
  private readonly view: DataView;
  readonly buf: Uint8Array;
  readonly what: string;
  constructor(buf: Uint8Array, what: string) {
    this.buf = buf;
    this.what = what;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(message: string): never {
    throw new LoupeError('bad-input', `MAT-file ${this.what}: ${message}`);
  }

  u32(at: number): number {
    if (at + 4 > this.buf.length) this.fail(`truncated at byte ${at}`);
    return this.view.getUint32(at, true);
  }

  /** The data element at `at`: an 8-byte tag (type, byte count) or the 4-byte "small element" form. */
  element(at: number, padded = true): Element {
    const first = this.u32(at);
    if (first >>> 16 !== 0) {
      const n = first >>> 16;
      if (n > 4) this.fail(`small element at byte ${at} claims ${n} bytes`);
      return { type: first & 0xffff, bytes: this.buf.subarray(at + 4, at + 4 + n), next: at + 8 };
    }
    const n = this.u32(at + 4);
    const start = at + 8;
    if (start + n > this.buf.length) this.fail(`element at byte ${at} needs ${n} bytes, ${this.buf.length - start} left`);
    // Elements are padded to 8 bytes, except compressed ones (MATLAB writes them back to back).
    const next = start + (padded ? Math.ceil(n / 8) * 8 : n);
    return { type: first, bytes: this.buf.subarray(start, start + n), next };
  }
}

/** The numbers of a numeric data element, as a typed array of its stored type (copied when unaligned). */
function numbers(el: Element, c: Cursor): ArrayLike<number> {
  const b = el.bytes;
  const typed = <T>(Ctor: { new (buf: ArrayBuffer, off: number, len: number): T; BYTES_PER_ELEMENT: number }): T => {
    if (b.length % Ctor.BYTES_PER_ELEMENT) c.fail(`${b.length} bytes is not a whole number of ${Ctor.BYTES_PER_ELEMENT}-byte values`);
    const aligned = b.byteOffset % Ctor.BYTES_PER_ELEMENT === 0 ? b : b.slice();
    return new Ctor(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.length / Ctor.BYTES_PER_ELEMENT);
  };
  switch (el.type) {
    case MI.INT8: return typed(Int8Array);
    case MI.UINT8: return b;
    case MI.INT16: return typed(Int16Array);
    case MI.UINT16: return typed(Uint16Array);
    case MI.INT32: return typed(Int32Array);
    case MI.UINT32: return typed(Uint32Array);
    case MI.SINGLE: return typed(Float32Array);
    case MI.DOUBLE: return typed(Float64Array);
    case MI.INT64: return Array.from(typed(BigInt64Array), Number);
    case MI.UINT64: return Array.from(typed(BigUint64Array), Number);
    default: return c.fail(`data type ${el.type} is not numeric`);
  }
}

function decodeChars(el: Element, c: Cursor): number[] {
  switch (el.type) {
    case MI.UTF8: return [...new TextDecoder('utf-8').decode(el.bytes)].map((ch) => ch.codePointAt(0)!);
    case MI.UTF16: case MI.UINT16: return Array.from(numbers({ ...el, type: MI.UINT16 }, c));
    case MI.UTF32: case MI.UINT32: return Array.from(numbers({ ...el, type: MI.UINT32 }, c));
    case MI.UINT8: case MI.INT8: return Array.from(el.bytes);
    default: return c.fail(`char data of type ${el.type}`);
  }
}

function count(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** One miMATRIX element's content (the bytes after its tag). */
function parseMatrix(bytes: Uint8Array, file: string, path: string): { name: string; value: MatValue } {
  if (bytes.length === 0) return { name: '', value: { kind: 'numeric', className: 'double', dims: [0, 0], logical: false, data: new Float64Array(0) } };
  const c = new Cursor(bytes, `${file}, ${path || 'a variable'}`);
  const flags = c.element(0);
  if (flags.type !== MI.UINT32 || flags.bytes.length < 8) c.fail('array flags missing');
  const flagWord = new DataView(flags.bytes.buffer, flags.bytes.byteOffset).getUint32(0, true);
  const cls = flagWord & 0xff;
  const className = CLASS_NAMES[cls] ?? `class ${cls}`;
  const dimsEl = c.element(flags.next);
  if (dimsEl.type !== MI.INT32) c.fail('dimensions missing');
  const dims = Array.from(numbers(dimsEl, c));
  const nameEl = c.element(dimsEl.next);
  const name = new TextDecoder('latin1').decode(nameEl.bytes);
  let at = nameEl.next;
  const n = count(dims);
  if (cls === 1) {
    const elements: MatValue[] = [];
    for (let k = 0; k < n; k++) {
      const el = c.element(at);
      if (el.type !== MI.MATRIX) c.fail(`cell ${k} is not a matrix`);
      elements.push(parseMatrix(el.bytes, file, `${path}{${k + 1}}`).value);
      at = el.next;
    }
    return { name, value: { kind: 'cell', dims, elements } };
  }
  if (cls === 2) {
    const lenEl = c.element(at);
    const fieldLen = numbers(lenEl, c)[0] ?? 0;
    const namesEl = c.element(lenEl.next);
    at = namesEl.next;
    const fields: string[] = [];
    for (let off = 0; fieldLen > 0 && off + fieldLen <= namesEl.bytes.length; off += fieldLen) {
      const raw = namesEl.bytes.subarray(off, off + fieldLen);
      const end = raw.indexOf(0);
      fields.push(new TextDecoder('latin1').decode(end < 0 ? raw : raw.subarray(0, end)));
    }
    const elements: Record<string, MatValue>[] = [];
    for (let k = 0; k < n; k++) {
      const rec: Record<string, MatValue> = {};
      for (const f of fields) {
        const el = c.element(at);
        if (el.type !== MI.MATRIX) c.fail(`field ${f} of element ${k} is not a matrix`);
        rec[f] = parseMatrix(el.bytes, file, `${path}(${k + 1}).${f}`).value;
        at = el.next;
      }
      elements.push(rec);
    }
    return { name, value: { kind: 'struct', dims, fields, elements } };
  }
  if (cls === 4) {
    const codes = n === 0 ? [] : decodeChars(c.element(at), c);
    if (codes.length !== n) c.fail(`char array of ${dims.join('×')} holds ${codes.length} characters`);
    const rowsN = dims[0] ?? 0;
    const rows: string[] = [];
    for (let r = 0; r < rowsN && n > 0; r++) {
      let s = '';
      for (let k = r; k < n; k += rowsN) s += String.fromCodePoint(codes[k]!);
      rows.push(s);
    }
    return { name, value: { kind: 'char', dims, rows } };
  }
  if (cls >= 6 && cls <= 15) {
    if (flagWord & (FLAG_COMPLEX << 8)) c.fail('complex matrices are not supported');
    const real = n === 0 ? { data: new Float64Array(0) } : { data: numbers(c.element(at), c) };
    if (real.data.length !== n) c.fail(`${className} matrix of ${dims.join('×')} holds ${real.data.length} values`);
    return { name, value: { kind: 'numeric', className, dims, logical: (flagWord & (FLAG_LOGICAL << 8)) !== 0, data: real.data } };
  }
  return c.fail(`${className} arrays are not supported`);
}

/** Every named variable of a Level 5 MAT-file. `what` names the file in errors. */
export function readMat(file: Uint8Array, what: string): Map<string, MatValue> {
  const head = new TextDecoder('latin1').decode(file.subarray(0, 116));
  if (head.startsWith('MATLAB 7.3')) throw new LoupeError('bad-input', `MAT-file ${what} is v7.3 (HDF5); save it with -v7 or read it with scipy/h5py`);
  if (file.length < 128 || !head.startsWith('MATLAB 5.0 MAT-file')) throw new LoupeError('bad-input', `${what} is not a MATLAB Level 5 MAT-file (no "MATLAB 5.0 MAT-file" header)`);
  const endian = String.fromCharCode(file[126]!, file[127]!);
  if (endian === 'MI') throw new LoupeError('bad-input', `MAT-file ${what} is big-endian, which Loupe does not read`);
  if (endian !== 'IM') throw new LoupeError('bad-input', `MAT-file ${what} has no endian indicator (bytes 126–127 are ${JSON.stringify(endian)})`);
  const c = new Cursor(file, what);
  const out = new Map<string, MatValue>();
  for (let at = 128; at < file.length; ) {
    const raw = c.element(at, false);
    let el = raw.type === MI.COMPRESSED ? raw : c.element(at);
    at = el.next;
    if (raw.type === MI.COMPRESSED) {
      let inflated: Uint8Array;
      try {
        inflated = inflateSync(el.bytes);
      } catch (e) {
        return c.fail(`compressed element does not inflate: ${(e as Error).message}`);
      }
      el = new Cursor(inflated, what).element(0);
    }
    if (el.type !== MI.MATRIX) continue; // other top-level elements carry no variables
    const { name, value } = parseMatrix(el.bytes, what, '');
    out.set(name, value);
  }
  return out;
}

/** The text of a 1×N (or empty) char array; `what` names the value in errors. */
export function matString(v: MatValue | undefined, what: string): string {
  if (v?.kind !== 'char' || v.rows.length > 1) throw new LoupeError('bad-input', `${what} is not a string (${v ? `${v.kind} ${v.dims.join('×')}` : 'missing'})`);
  return v.rows[0] ?? '';
}

/** A scalar number; `what` names the value in errors. */
export function matScalar(v: MatValue | undefined, what: string): number {
  if (v?.kind !== 'numeric' || v.data.length !== 1) throw new LoupeError('bad-input', `${what} is not a number (${v ? `${v.kind} ${v.dims.join('×')}` : 'missing'})`);
  return Number(v.data[0]);
}

/** A struct array's elements (an empty numeric matrix `[]` counts as no elements). */
export function matStructs(v: MatValue | undefined, what: string): Record<string, MatValue>[] {
  if (v?.kind === 'struct') return v.elements;
  if (v?.kind === 'numeric' && v.data.length === 0) return [];
  throw new LoupeError('bad-input', `${what} is not a struct array (${v ? `${v.kind} ${v.dims.join('×')}` : 'missing'})`);
}
