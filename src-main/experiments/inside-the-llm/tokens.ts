/**
 * A vlm-forward item's stored K/V captures as token matrices: `image_kv.<layer>.key|value`
 * [kvHeads, nImageTokens, headDim] with `image_token_map` rows (position, image, tile, row, col),
 * and `prompt_kv.*` with `prompt_token_map` rows (position, token id, word). A token's vector is
 * its K (or V) across all KV heads. Unit-normalised per-image matrices are built once per tensor
 * and reused by every probe.
 */
import { type Grid, unitRows } from '../../../src-shared/metrics/correspondence.ts';
import { type HostTensor, toFloat32 } from '../../../src-shared/tensor/dtype.ts';

export type KvKind = 'key' | 'value';

export interface KvTensor {
  /** Stored name, e.g. `image_kv.3.value`. */
  name: string;
  layer: number;
  kind: KvKind;
}

export interface ImageTokens {
  grid: Grid;
  /** Token index (along the tensor's token axis) of each row-major patch. */
  tokenOf: Int32Array;
}

/**
 * Per image, its whole-image view as a complete patch grid: the image's last tile (the only one
 * for LLaVA and Qwen2-VL images, the global view for Idefics3's tiles); prefix tokens (row −1)
 * are left out. An image whose grid is not complete is left out.
 */
export function imageGrids(map: ArrayLike<number>): Map<number, ImageTokens> {
  const n = Math.floor(map.length / 5);
  const lastTile = new Map<number, number>();
  for (let k = 0; k < n; k++) if (map[k * 5 + 3]! >= 0) lastTile.set(map[k * 5 + 1]!, Math.max(lastTile.get(map[k * 5 + 1]!) ?? -1, map[k * 5 + 2]!));
  const out = new Map<number, ImageTokens>();
  for (const [image, tile] of lastTile) {
    const ks = Array.from({ length: n }, (_, k) => k).filter((k) => map[k * 5 + 1] === image && map[k * 5 + 2] === tile && map[k * 5 + 3]! >= 0);
    const rows = Math.max(...ks.map((k) => map[k * 5 + 3]!)) + 1;
    const cols = Math.max(...ks.map((k) => map[k * 5 + 4]!)) + 1;
    const tokenOf = new Int32Array(rows * cols).fill(-1);
    for (const k of ks) tokenOf[map[k * 5 + 3]! * cols + map[k * 5 + 4]!] = k;
    if (tokenOf.every((t) => t >= 0)) out.set(image, { grid: { rows, cols }, tokenOf });
  }
  return out;
}

/** Tokens `which` of a [heads, n, dim] tensor as a which.length × (heads·dim) row-major matrix. */
export function gatherTokens(t: HostTensor, which: ArrayLike<number>): Float32Array {
  const [heads = 1, n = 0, dim = 0] = t.shape;
  const f = toFloat32(t);
  const out = new Float32Array(which.length * heads * dim);
  for (let i = 0; i < which.length; i++) {
    const j = which[i]!;
    for (let h = 0; h < heads; h++) out.set(f.subarray((h * n + j) * dim, (h * n + j + 1) * dim), (i * heads + h) * dim);
  }
  return out;
}

/** Width of a token vector of a [heads, n, dim] tensor. */
export function tokenWidth(t: HostTensor): number {
  const [heads = 1, , dim = 0] = t.shape;
  return heads * dim;
}

export function kvTensors(tensors: Record<string, HostTensor>, prefix: 'image' | 'prompt'): KvTensor[] {
  const re = new RegExp(`^${prefix}_kv\\.(\\d+)\\.(key|value)$`);
  return Object.keys(tensors)
    .flatMap((name) => {
      const m = re.exec(name);
      return m ? [{ name, layer: Number(m[1]), kind: m[2] as KvKind }] : [];
    })
    .sort((a, b) => a.layer - b.layer || a.kind.localeCompare(b.kind));
}

/** One item's captures with per-(tensor, image) unit token matrices built on first use. */
export class ItemTokens {
  readonly tensors: Record<string, HostTensor>;
  readonly images: Map<number, ImageTokens>;
  readonly kv: KvTensor[];
  private readonly cache = new Map<string, Float32Array>();

  constructor(tensors: Record<string, HostTensor>) {
    this.tensors = tensors;
    const map = tensors.image_token_map?.data as Int32Array | undefined;
    this.images = map ? imageGrids(map) : new Map();
    this.kv = kvTensors(tensors, 'image');
  }

  width(name: string): number {
    return tokenWidth(this.tensors[name]!);
  }

  /** Unit rows of image `image`'s tokens in row-major patch order (row p = patch p). */
  unit(name: string, image: number): Float32Array {
    const key = `${name}@${image}`;
    let m = this.cache.get(key);
    if (!m) {
      const tokens = this.images.get(image)!;
      m = unitRows(gatherTokens(this.tensors[name]!, tokens.tokenOf), tokens.tokenOf.length, this.width(name));
      this.cache.set(key, m);
    }
    return m;
  }
}
