/**
 * Packs an image's binary masks into as few instance-id PNGs as keep every mask exact: each mask
 * goes into the first layer where it overlaps no earlier mask and takes the next id there. A
 * `mask` label then names its layer's file and its id (`ids: [k]`). Benchmarks annotate many
 * masks per image (PASCAL-Part objects and their parts, COCO instances, which may overlap), so one
 * file per mask would mean hundreds of thousands of files, and one file per image would lose the
 * pixels where masks overlap.
 */
import type { DatasetWriter } from './dataset-writer.ts';

/** Ids one 16-bit layer can hold (0 is background). */
const MAX_IDS = 65535;

export interface PackedMask {
  /** Index into the files `write` returns. */
  layer: number;
  id: number;
}

export class MaskLayers {
  private readonly layers: { ids: Uint16Array; next: number }[] = [];
  readonly width: number;
  readonly height: number;

  constructor(width: number, height: number) {
    this.width = width;
    this.height = height;
  }

  /** Places a row-major binary mask (non-zero = inside, `width × height`). */
  add(mask: ArrayLike<number>): PackedMask {
    const n = this.width * this.height;
    if (mask.length !== n) throw new Error(`mask of ${mask.length} pixels is not ${this.width}×${this.height}`);
    let layer = this.layers.findIndex((l) => l.next <= MAX_IDS && !overlaps(l.ids, mask));
    if (layer < 0) {
      this.layers.push({ ids: new Uint16Array(n), next: 1 });
      layer = this.layers.length - 1;
    }
    const l = this.layers[layer]!;
    const id = l.next++;
    for (let i = 0; i < n; i++) if (mask[i]) l.ids[i] = id;
    return { layer, id };
  }

  /** Writes one PNG per layer (8-bit when its ids fit); returns their paths in the dataset. */
  write(out: DatasetWriter, stem: string): string[] {
    return this.layers.map((l, k) => out.writeMask(l.next <= 256 ? Uint8Array.from(l.ids) : l.ids, this.width, this.height, this.layers.length > 1 ? `${stem}-layer${k}` : stem));
  }
}

function overlaps(ids: Uint16Array, mask: ArrayLike<number>): boolean {
  for (let i = 0; i < ids.length; i++) if (mask[i] && ids[i]) return true;
  return false;
}
