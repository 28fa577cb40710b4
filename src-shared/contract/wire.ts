/**
 * Envelopes on the wire, and the binary frame that carries tensors.
 *
 * Control messages are small JSON objects; tensors never are: over a WebSocket they are a
 * binary frame (`encodeTensorFrame`), over a MessagePort the ArrayBuffer is transferred.
 */
import { z } from 'zod';
import type { ErrorPayload } from './errors.ts';
import { ERROR_CODES } from './errors.ts';
import { type DType, type TypedArray, BYTES_PER_ELEMENT, elementCount, typedArrayFor } from '../tensor/dtype.ts';

export const RequestEnvelope = z
  .object({
    t: z.literal('req'),
    id: z.number().int().nonnegative(),
    method: z.string().min(1).max(100),
    params: z.unknown(),
  })
  .strict();
export type RequestEnvelope = z.infer<typeof RequestEnvelope>;

export const ErrorPayloadSchema = z.object({ code: z.enum(ERROR_CODES), message: z.string(), details: z.unknown().optional() });

export const ResponseEnvelope = z.discriminatedUnion('ok', [
  z.object({ t: z.literal('res'), id: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.object({ t: z.literal('res'), id: z.number().int(), ok: z.literal(false), error: ErrorPayloadSchema }),
]);
export type ResponseEnvelope = { t: 'res'; id: number; ok: true; result: unknown } | { t: 'res'; id: number; ok: false; error: ErrorPayload };

export const EventEnvelope = z.object({ t: z.literal('evt'), name: z.string(), payload: z.unknown() });
export type EventEnvelope = z.infer<typeof EventEnvelope>;

export interface TensorFrameHeader {
  /** The request this tensor answers. */
  id: number;
  name: string;
  dtype: DType;
  shape: number[];
}
export interface TensorFrame {
  t: 'tensor';
  header: TensorFrameHeader;
  data: TypedArray;
}

export type ServerMessage = ResponseEnvelope | EventEnvelope | TensorFrame;

const MAGIC = 0x3154504c; // "LPT1" little-endian
const TensorFrameHeaderSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  dtype: z.enum(['float32', 'float16', 'int64', 'int32', 'uint8', 'bool']),
  shape: z.array(z.number().int().nonnegative()),
});

/** [magic u32][header length u32][header JSON][pad to 8][raw little-endian data] */
export function encodeTensorFrame(frame: TensorFrame): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify(frame.header));
  const dataStart = Math.ceil((8 + header.length) / 8) * 8;
  const out = new Uint8Array(dataStart + frame.data.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, header.length, true);
  out.set(header, 8);
  out.set(new Uint8Array(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength), dataStart);
  return out;
}

export function decodeTensorFrame(bytes: ArrayBuffer): TensorFrame {
  if (bytes.byteLength < 8) throw new Error(`tensor frame of ${bytes.byteLength} bytes is too short`);
  const view = new DataView(bytes);
  if (view.getUint32(0, true) !== MAGIC) throw new Error('binary frame is not a Loupe tensor frame (bad magic)');
  const headerLen = view.getUint32(4, true);
  if (8 + headerLen > bytes.byteLength) throw new Error('tensor frame header runs past the frame');
  const header = TensorFrameHeaderSchema.parse(JSON.parse(new TextDecoder().decode(new Uint8Array(bytes, 8, headerLen))));
  const dataStart = Math.ceil((8 + headerLen) / 8) * 8;
  const n = elementCount(header.shape);
  if (dataStart + n * BYTES_PER_ELEMENT[header.dtype] !== bytes.byteLength) throw new Error(`tensor frame ${header.name}: payload does not match shape ${JSON.stringify(header.shape)}`);
  return { t: 'tensor', header, data: typedArrayFor(header.dtype, bytes, dataStart, n) };
}
