/** Image sizes (from file headers, no decode) and instance masks for the K/V probes. */
import { decodeMaskPng, readCheckedImage } from '../../engine/image-decode.ts';
import { readImageHeader } from '../../engine/image-header.ts';
import type { Size } from '../../../src-shared/metrics/correspondence.ts';

/** Width and height of a PNG, JPEG or WebP from its header (engine/image-header.ts: the one header reader, limits-aware callers decode through image-decode.ts). */
export function imageSize(path: string): Size {
  const { header } = readImageHeader(path, `image ${path}`);
  return { width: header.width, height: header.height };
}

export interface InstanceMask extends Size {
  /** Instance id per pixel, row-major (0 = background); 16-bit masks keep ids above 255. */
  ids: Uint8Array | Int32Array;
}

/** An instance-id mask PNG (ids in the first channel, 8- or 16-bit), checked against the mask limits before decoding. */
export function readMask(path: string): InstanceMask {
  const { bytes } = readCheckedImage(path, `mask ${path}`, 'maskPixels');
  const m = decodeMaskPng(bytes, `mask ${path}`);
  return { width: m.width, height: m.height, ids: m.values };
}

/** The instance id under a pixel coordinate (0 outside the mask). */
export function idAt(mask: InstanceMask, at: readonly [number, number]): number {
  const x = Math.floor(at[0]);
  const y = Math.floor(at[1]);
  if (x < 0 || y < 0 || x >= mask.width || y >= mask.height) return 0;
  return mask.ids[y * mask.width + x]!;
}
