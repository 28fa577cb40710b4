/**
 * Where a benchmark importer puts what it reads: a staging folder under `<data>/datasets/` that
 * becomes a Loupe dataset folder (`dataset.json` + `images/` + `masks/`) only when the import
 * finishes. A failed or cancelled import removes the staging folder, so no half-made dataset is
 * ever registered or left behind.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { PNG } from 'pngjs';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { DATASET_FORMAT, DATASET_FORMAT_VERSION, DatasetItem, DatasetManifest } from '../../../src-shared/dataset/format.ts';
import { writeFileAtomicSync } from '../../util/atomic-write.ts';

export interface ImportProgress {
  format: string;
  phase: string;
  done: number;
  /** Null while the importer does not yet know how many there are. */
  total: number | null;
}

export interface DatasetMeta {
  name: string;
  description: string;
  task: string;
  source: Record<string, unknown>;
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp']);

/** Lets the event loop run (progress events, other requests) between batches of a long synchronous import. */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A file path named by a benchmark's annotations, resolved inside `root`; `..`, absolute paths and
 * symlinks that lead out of the downloaded folder are refused (annotations are data, not a licence
 * to read anywhere on disk).
 */
export function resolveInside(root: string, rel: string, what: string): string {
  const base = realpathSync(resolve(root));
  const path = resolve(base, rel);
  if (path !== base && !path.startsWith(base + sep)) throw new LoupeError('bad-input', `${what} ${rel} lies outside ${root}`);
  if (!existsSync(path)) throw new LoupeError('bad-input', `${what} ${rel} is missing from ${root}`);
  const real = realpathSync(path);
  if (real !== base && !real.startsWith(base + sep)) throw new LoupeError('bad-input', `${what} ${rel} is a link leading outside ${root}`);
  return real;
}

export class DatasetWriter {
  readonly staging: string;
  private readonly items: DatasetItem[] = [];
  private readonly ids = new Set<string>();
  private readonly files = new Set<string>();
  private lastProgress = 0;
  private readonly dataDir: string;
  readonly format: string;
  private readonly onProgress: (p: ImportProgress) => void;

  constructor(dataDir: string, format: string, onProgress: (p: ImportProgress) => void = () => {}) {
    this.dataDir = dataDir;
    this.format = format;
    this.onProgress = onProgress;
    this.staging = join(dataDir, 'datasets', `.import-${format}-${randomBytes(4).toString('hex')}`);
    mkdirSync(join(this.staging, 'images'), { recursive: true });
    mkdirSync(join(this.staging, 'masks'), { recursive: true });
  }

  get itemCount(): number {
    return this.items.length;
  }

  get labelCount(): number {
    return this.items.reduce((n, i) => n + i.labels.length, 0);
  }

  /** A file name under `folder/` not used yet: benchmarks reuse names across folders (DAVIS frames, SPair categories). */
  private fresh(folder: string, preferred: string, ext: string): string {
    const stem = preferred.replace(/\.[^./]+$/, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '') || 'file';
    for (let k = 0; ; k++) {
      const rel = `${folder}/${stem}${k ? `-${k}` : ''}${ext}`;
      if (!this.files.has(rel)) {
        this.files.add(rel);
        return rel;
      }
    }
  }

  /** Copies an image the importer resolved (see `resolveInside`); returns its path in the dataset. */
  copyImage(src: string, preferredName: string): string {
    const ext = extname(src).toLowerCase();
    if (!IMAGE_EXTENSIONS.has(ext)) throw new LoupeError('bad-input', `${src} is not a PNG, JPEG or WebP image`);
    if (!statSync(src).isFile()) throw new LoupeError('bad-input', `${src} is not a file`);
    const rel = this.fresh('images', preferredName, ext === '.jpeg' ? '.jpg' : ext);
    copyFileSync(src, join(this.staging, rel));
    return rel;
  }

  /** Writes image bytes embedded in the benchmark (parquet cells); the format comes from the bytes, not a name. */
  writeImage(bytes: Uint8Array, preferredName: string): string {
    const ext = sniffImage(bytes);
    if (!ext) throw new LoupeError('bad-input', `embedded image ${preferredName} is not PNG, JPEG or WebP (first bytes ${[...bytes.slice(0, 4)].map((b) => b.toString(16)).join(' ')})`);
    const rel = this.fresh('images', preferredName, ext);
    writeFileAtomicSync(join(this.staging, rel), bytes);
    return rel;
  }

  /**
   * Writes an instance-id map (0 = background) as a greyscale PNG — 8-bit when every id fits, else
   * 16-bit — the form `mask` labels reference; returns its path in the dataset.
   */
  writeMask(ids: Uint8Array | Uint16Array, width: number, height: number, preferredName: string): string {
    if (ids.length !== width * height) throw new LoupeError('bad-input', `mask ${preferredName}: ${ids.length} values for ${width}×${height}`);
    let max = 0;
    for (const v of ids) if (v > max) max = v;
    const bitDepth = max > 255 ? 16 : 8;
    const opts = { width, height, colorType: 0 as const, inputColorType: 0 as const, inputHasAlpha: false, bitDepth: bitDepth as 8 | 16 };
    const png = new PNG(opts);
    if (bitDepth === 8) png.data = Buffer.from(Uint8Array.from(ids));
    else {
      // pngjs takes 16-bit input samples in the machine's byte order (a Uint16Array's bytes) and
      // writes them big-endian as PNG requires; handing it big-endian bytes swapped ids > 255.
      png.data = Buffer.from(Uint16Array.from(ids).buffer);
    }
    const rel = this.fresh('masks', preferredName, '.png');
    writeFileAtomicSync(join(this.staging, rel), PNG.sync.write(png, opts));
    return rel;
  }

  /** Adds one item; validated now so a bad annotation fails the import naming the item. */
  addItem(item: DatasetItem): void {
    const parsed = DatasetItem.safeParse(item);
    if (!parsed.success) throw new LoupeError('bad-input', `${this.format} item ${item.id}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    if (this.ids.has(item.id)) throw new LoupeError('bad-input', `${this.format}: item id ${item.id} appears twice`);
    this.ids.add(item.id);
    this.items.push(parsed.data);
  }

  /** Reports progress, at most every 100 ms unless `force` (first and last calls). */
  progress(phase: string, done: number, total: number | null, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastProgress < 100) return;
    this.lastProgress = now;
    this.onProgress({ format: this.format, phase, done, total });
  }

  /** Writes `dataset.json` and moves the folder to its final name; returns that folder. */
  commit(meta: DatasetMeta): string {
    if (this.items.length === 0) throw new LoupeError('bad-input', `${this.format} import found no items to import`);
    const manifest = DatasetManifest.parse({ format: DATASET_FORMAT, version: DATASET_FORMAT_VERSION, ...meta, items: this.items });
    writeFileAtomicSync(join(this.staging, 'dataset.json'), JSON.stringify(manifest));
    const slug = meta.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || this.format;
    const final = join(this.dataDir, 'datasets', `${slug}-${randomBytes(3).toString('hex')}`);
    renameSync(this.staging, final);
    this.progress('done', this.items.length, this.items.length, true);
    return final;
  }

  /** Removes the staging folder (a failed import leaves nothing). */
  abort(): void {
    rmSync(this.staging, { recursive: true, force: true });
  }
}

/** The image format from its magic bytes (`.png`, `.jpg`, `.webp`), or null. */
export function sniffImage(b: Uint8Array): '.png' | '.jpg' | '.webp' | null {
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return '.png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return '.jpg';
  if (b.length >= 12 && b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return '.webp';
  return null;
}
