/**
 * Makes transformers.js resize images as Pillow does, in this process.
 *
 * Every image processor in transformers.js resizes through `RawImage.prototype.resize`, which in
 * Node uses sharp's `affine` — point sampling when downscaling. The Hugging Face processors the
 * models were trained with resize with Pillow (antialiased), so the processors' own code stays in
 * charge of sizes, crops, tiles and normalisation and only the one resampling step is replaced
 * by src-shared/image/pil-resample.ts (exact to Pillow, tests/unit/pil-resample.test.ts).
 */
import { RawImage } from '@huggingface/transformers';
import { PIL_FILTER_CODES, type PilFilter, pilResize } from '../../../src-shared/image/pil-resample.ts';

const NAMES = new Set<string>(Object.values(PIL_FILTER_CODES));
let installed = false;

/** Resample option (PIL code or name) → filter; transformers.js defaults to bilinear (2), as PIL's processors do. */
export function filterOf(resample: unknown): PilFilter {
  if (resample === undefined || resample === null) return 'bilinear';
  const name = typeof resample === 'number' ? PIL_FILTER_CODES[resample] : String(resample);
  if (!name || !NAMES.has(name)) throw new Error(`unsupported resampling method ${JSON.stringify(resample)} (Pillow knows ${[...NAMES].join(', ')})`);
  return name as PilFilter;
}

export function usePillowResize(): void {
  if (installed) return;
  installed = true;
  const original = RawImage.prototype.resize;
  RawImage.prototype.resize = async function (this: RawImage, width: number | null, height: number | null, options: { resample?: unknown } = {}) {
    // Pillow resizes L and RGB channel by channel; RGBA it premultiplies first — leave that to the original.
    if (this.channels === 4) return original.call(this, width as number, height as number, options as never);
    let w = width ?? undefined;
    let h = height ?? undefined;
    if (w === undefined && h === undefined) return this;
    if (w === undefined) w = (h! / this.height) * this.width;
    if (h === undefined) h = (w / this.width) * this.height;
    if (!Number.isInteger(w) || !Number.isInteger(h)) throw new Error(`image resize to a fractional size ${w}×${h}`);
    if (w === this.width && h === this.height) return this;
    const data = pilResize(this.data, this.width, this.height, this.channels, w, h, filterOf(options.resample));
    return new RawImage(data, w, h, this.channels as 1 | 2 | 3 | 4);
  } as typeof RawImage.prototype.resize;
}
