/**
 * Every size limit Loupe enforces on its inputs, in one table: what is limited, the default, the
 * unit, and the environment variable that raises it. Limits are checked *before* the work they
 * guard (file headers before decoding, config fields before graphs are built), so a small hostile
 * file cannot cost gigabytes or minutes. A refusal names the limit, the value seen and the setting.
 *
 * Settings are environment variables read on every check (no restart of a test or a server needed
 * to change one between inputs); an unparsable setting is itself an error, never silently ignored.
 * Limits fixed in the contract (string lengths, array lengths: `src-shared/dataset/limits.ts`) are
 * listed too, with no setting: the renderer validates with the same schemas, so they cannot differ
 * per engine.
 */
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { CONTRACT_LIMITS } from '../../src-shared/dataset/limits.ts';

export interface LimitDef {
  /** The limit as errors and docs name it. */
  name: string;
  value: number;
  unit: string;
  /** Environment variable that raises (or lowers) it; null for limits fixed in the contract. */
  env: string | null;
  why: string;
}

const MiB = 1024 * 1024;

export const LIMITS = {
  imagePixels: {
    name: 'image pixels',
    value: 89_478_485, // Pillow's Image.MAX_IMAGE_PIXELS: the processors Loupe mirrors refuse the same images
    unit: 'pixels',
    env: 'LOUPE_MAX_IMAGE_PIXELS',
    why: 'width × height from the file header; a decode costs ≥ 4 bytes per pixel',
  },
  imageFileBytes: { name: 'image file size', value: 256 * MiB, unit: 'bytes', env: 'LOUPE_MAX_IMAGE_FILE_BYTES', why: 'an image file is read whole before decoding' },
  maskPixels: {
    name: 'mask pixels',
    value: 33_554_432, // 8192 × 4096: a mask is decoded to RGBA (16-bit masks to 8 bytes per pixel)
    unit: 'pixels',
    env: 'LOUPE_MAX_MASK_PIXELS',
    why: 'width × height from the mask PNG header',
  },
  decodedRatio: {
    name: 'decoded-size ratio',
    value: 256,
    unit: 'decoded bytes per file byte',
    env: 'LOUPE_MAX_DECODED_RATIO',
    why: 'catches compression bombs (photos decode to 5-50× their file size); applies above the decoded-size floor',
  },
  decodedRatioFloor: {
    name: 'decoded-size floor for the ratio check',
    value: 64 * MiB,
    unit: 'bytes',
    env: 'LOUPE_DECODED_RATIO_FLOOR_BYTES',
    why: 'small flat images compress extremely well and are harmless; the ratio applies only above this decoded (RGBA) size',
  },
  processorSide: {
    name: 'preprocessor image side',
    value: 4096,
    unit: 'pixels',
    env: 'LOUPE_MAX_PROCESSOR_SIDE',
    why: 'size / crop_size / longest_edge in preprocessor_config.json; pixel-count fields (min_pixels, max_pixels) are held to its square',
  },
  modelLayers: { name: 'model layers', value: 512, unit: 'layers', env: 'LOUPE_MAX_MODEL_LAYERS', why: 'num_hidden_layers in config.json (text and vision)' },
  modelHiddenSize: { name: 'model hidden size', value: 65_536, unit: 'channels', env: 'LOUPE_MAX_MODEL_HIDDEN_SIZE', why: 'hidden_size, intermediate_size, head_dim in config.json' },
  modelHeads: { name: 'model attention heads', value: 1024, unit: 'heads', env: 'LOUPE_MAX_MODEL_HEADS', why: 'num_attention_heads, num_key_value_heads in config.json' },
  modelVocab: { name: 'model vocabulary', value: 4_194_304, unit: 'tokens', env: 'LOUPE_MAX_MODEL_VOCAB', why: 'vocab_size in config.json' },
  modelPositions: { name: 'model positions', value: 16_777_216, unit: 'positions', env: 'LOUPE_MAX_MODEL_POSITIONS', why: 'max_position_embeddings in config.json' },
  datasetItems: { name: 'dataset items', value: 250_000, unit: 'items', env: 'LOUPE_MAX_DATASET_ITEMS', why: 'items in a manifest, or in a dataset after adding images' },
  manifestBytes: { name: 'dataset manifest size', value: 256 * MiB, unit: 'bytes', env: 'LOUPE_MAX_MANIFEST_BYTES', why: 'dataset.json is parsed whole' },
  imagesPerItem: { name: 'images per item', value: 256, unit: 'images', env: 'LOUPE_MAX_IMAGES_PER_ITEM', why: 'each image becomes hundreds of tokens in one prompt' },
  labelsPerItem: { name: 'labels per item', value: 10_000, unit: 'labels', env: 'LOUPE_MAX_LABELS_PER_ITEM', why: 'labels of an item are listed and drawn together' },
  ...CONTRACT_LIMITS,
} satisfies Record<string, LimitDef>;

export type LimitName = keyof typeof LIMITS;

/** The limit in force: its environment variable when set (a positive number), else the default. */
export function limitValue(name: LimitName): number {
  const def: LimitDef = LIMITS[name];
  const raw = def.env ? process.env[def.env] : undefined;
  if (raw === undefined || raw === '') return def.value;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new LoupeError('bad-input', `setting ${def.env}="${raw}" is not a positive number (it sets the ${def.name} limit, default ${def.value} ${def.unit})`);
  return v;
}

/** The error for `seen` over limit `name`, naming the input, the limit, the value and the setting. */
export function overLimit(name: LimitName, seen: number, where: string): LoupeError {
  const def: LimitDef = LIMITS[name];
  const value = limitValue(name);
  const raise = def.env ? `set ${def.env} to raise it` : 'fixed in the contract';
  return new LoupeError('bad-input', `${where}: ${def.name} ${seen} is over the limit of ${value} ${def.unit} (${raise})`, { limit: name, value, seen, setting: def.env });
}

/** Throws {@link overLimit} when `seen` exceeds the limit in force. */
export function enforceLimit(name: LimitName, seen: number, where: string): void {
  if (!(seen <= limitValue(name))) throw overLimit(name, seen, where);
}

/** The table as rows, for docs and `loupe limits`-style listings. */
export function limitsTable(): (LimitDef & { key: string; inForce: number })[] {
  return Object.entries(LIMITS).map(([key, def]) => ({ key, ...(def as LimitDef), inForce: limitValue(key as LimitName) }));
}
