/**
 * The MAT v5 reader on files assembled here byte by byte from the format document (MathWorks,
 * "MAT-File Format"), in the forms MATLAB itself writes and scipy never does: chars as UTF-16 and
 * UTF-8, a double stored as uint8 bytes, 4-byte "small" elements, empty `[]` as a 0-byte matrix,
 * zlib-compressed variables; and the refusals. (scipy-written files are read by the PASCAL-Part
 * import test.)
 */
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { matScalar, matString, matStructs, readMat, type MatValue } from '../../src-main/datasets/importers/mat-file.ts';

const MI = { INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, DOUBLE: 9, MATRIX: 14, COMPRESSED: 15, UTF8: 16 };
const CLASS = { CELL: 1, STRUCT: 2, CHAR: 4, SPARSE: 5, DOUBLE: 6, UINT8: 9, INT16: 10 };

const cat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));
const u32 = (...v: number[]) => new Uint8Array(Uint32Array.from(v).buffer);
/** A data element; ≤ 4 bytes go in the small form (MATLAB does this for short names and scalars). */
function el(type: number, data: Uint8Array, small = data.length <= 4): Uint8Array {
  if (small) return cat(u32((data.length << 16) | type), data, new Uint8Array(4 - data.length));
  return cat(u32(type, data.length), data, new Uint8Array((8 - (data.length % 8)) % 8));
}
const ascii = (s: string) => new TextEncoder().encode(s);
const utf16 = (s: string) => new Uint8Array(Uint16Array.from([...s].map((c) => c.charCodeAt(0))).buffer);
function matrix(cls: number, dims: number[], name: string, body: Uint8Array[], flags = 0): Uint8Array {
  return el(MI.MATRIX, cat(el(MI.UINT32, u32(cls | (flags << 8), 0)), el(MI.INT32, new Uint8Array(Int32Array.from(dims).buffer)), el(MI.INT8, ascii(name)), ...body), false);
}
const char16 = (s: string, name = '') => matrix(CLASS.CHAR, [1, s.length], name, [el(MI.UINT16, utf16(s))]);
const char8 = (s: string) => matrix(CLASS.CHAR, [1, s.length], '', [el(MI.UTF8, ascii(s))]);
function struct(dims: number[], name: string, fields: string[], values: Uint8Array[]): Uint8Array {
  const len = 32; // MATLAB pads every field name to 32 bytes
  const names = new Uint8Array(len * fields.length);
  fields.forEach((f, i) => names.set(ascii(f), i * len));
  return matrix(CLASS.STRUCT, dims, name, [el(MI.INT32, new Uint8Array(Int32Array.from([len]).buffer)), el(MI.INT8, names), ...values]);
}
function file(...vars: Uint8Array[]): Uint8Array {
  const header = new Uint8Array(128).fill(32);
  header.set(ascii('MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024'));
  header.set([0, 0, 0, 0, 0, 0, 0, 0], 116);
  header.set([0x00, 0x01], 124); // version 0x0100, little-endian
  header.set(ascii('IM'), 126);
  return cat(header, ...vars);
}

// anno.imname = 'ab1'; anno.objects(1) = cat, class_ind 8 stored as one uint8 byte, a logical 2×3
// mask, parts = []; anno.objects(2) = dog, class_ind 12 as a double, parts(1) = head.
const mask1 = matrix(CLASS.UINT8, [2, 3], '', [el(MI.UINT8, Uint8Array.from([1, 0, 0, 1, 1, 0]), false)], 0x02);
const obj = [char8('cat'), matrix(CLASS.DOUBLE, [1, 1], '', [el(MI.UINT8, Uint8Array.from([8]))]), mask1, el(MI.MATRIX, new Uint8Array(0), false)];
const head = struct([1, 1], '', ['part_name', 'mask'], [char16('head'), matrix(CLASS.UINT8, [2, 3], '', [el(MI.UINT8, Uint8Array.from([0, 0, 1, 0, 0, 0]), false)], 0x02)]);
const obj2 = [char16('dog'), matrix(CLASS.DOUBLE, [1, 1], '', [el(MI.DOUBLE, new Uint8Array(Float64Array.from([12]).buffer))]), matrix(CLASS.UINT8, [2, 3], '', [el(MI.UINT8, new Uint8Array(6), false)], 0x02), head];
const anno = struct([1, 1], 'anno', ['imname', 'objects'], [char16('ab1'), struct([1, 2], '', ['class', 'class_ind', 'mask', 'parts'], [...obj, ...obj2])]);
const cell = matrix(CLASS.CELL, [1, 2], 'c', [char16('x'), matrix(CLASS.INT16, [1, 2], '', [el(MI.INT16, new Uint8Array(Int16Array.from([5, -6]).buffer))])]);

function checkAnno(vars: Map<string, MatValue>): void {
  const [a] = matStructs(vars.get('anno'), 'anno');
  expect(matString(a!.imname, 'imname')).toBe('ab1');
  const objects = matStructs(a!.objects, 'objects');
  expect(objects.map((o) => [matString(o.class, 'class'), matScalar(o.class_ind, 'class_ind')])).toEqual([['cat', 8], ['dog', 12]]);
  expect(objects[0]!.mask).toMatchObject({ kind: 'numeric', className: 'uint8', dims: [2, 3], logical: true });
  const m = objects[0]!.mask;
  expect(Array.from(m?.kind === 'numeric' ? m.data : [])).toEqual([1, 0, 0, 1, 1, 0]);
  expect(matStructs(objects[0]!.parts, 'parts')).toEqual([]);
  const parts = matStructs(objects[1]!.parts, 'parts');
  expect(matString(parts[0]!.part_name, 'part_name')).toBe('head');
  const c = vars.get('c');
  expect(c?.kind).toBe('cell');
  if (c?.kind === 'cell') {
    expect(matString(c.elements[0], 'c{1}')).toBe('x');
    expect(Array.from((c.elements[1] as { data: ArrayLike<number> }).data)).toEqual([5, -6]);
  }
}

describe('readMat', () => {
  it('reads MATLAB-style structs, chars (UTF-16, UTF-8), narrowed doubles, logical masks, [] and cells', () => {
    checkAnno(readMat(file(anno, cell), 'hand.mat'));
  });

  it('reads the same variables zlib-compressed (miCOMPRESSED, unpadded, back to back)', () => {
    const z = (m: Uint8Array) => {
      const d = deflateSync(m);
      return cat(u32(MI.COMPRESSED, d.length), d);
    };
    checkAnno(readMat(file(z(anno), z(cell)), 'hand-z.mat'));
  });

  it('reads multi-row char arrays column by column', () => {
    const two = matrix(CLASS.CHAR, [2, 3], 'names', [el(MI.UINT16, utf16('acebdf'))]);
    expect(readMat(file(two), 'rows.mat').get('names')).toMatchObject({ kind: 'char', rows: ['aed', 'cbf'] });
    expect(() => matString(readMat(file(two), 'rows.mat').get('names'), 'names')).toThrow(/names is not a string \(char 2×3\)/);
  });

  it('refuses v7.3, big-endian, non-MAT, truncated, complex and sparse input by name', () => {
    const v73 = file();
    v73.set(ascii('MATLAB 7.3 MAT-file'));
    expect(() => readMat(v73, 'a.mat')).toThrow(/a\.mat is v7\.3 \(HDF5\)/);
    const be = file(anno);
    be.set(ascii('MI'), 126);
    expect(() => readMat(be, 'b.mat')).toThrow(/b\.mat is big-endian/);
    expect(() => readMat(ascii('hello'), 'c.mat')).toThrow(/c\.mat is not a MATLAB Level 5 MAT-file/);
    expect(() => readMat(file(anno).subarray(0, 300), 'd.mat')).toThrow(/MAT-file d\.mat: element at byte 128 needs \d+ bytes/);
    const complex = matrix(CLASS.DOUBLE, [1, 1], 'z', [el(MI.DOUBLE, new Uint8Array(8)), el(MI.DOUBLE, new Uint8Array(8))], 0x08);
    expect(() => readMat(file(complex), 'e.mat')).toThrow(/complex matrices are not supported/);
    expect(() => readMat(file(matrix(CLASS.SPARSE, [2, 2], 's', [])), 'f.mat')).toThrow(/sparse arrays are not supported/);
    expect(() => readMat(file(cat(u32(MI.COMPRESSED, 4), ascii('nope'))), 'g.mat')).toThrow(/g\.mat: compressed element does not inflate/);
  });
});
