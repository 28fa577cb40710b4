/**
 * Up-front checks of a model folder's `config.json` and `preprocessor_config.json`, run when a
 * model is imported and when a run opens it: dimensions that would make Loupe allocate absurd
 * arrays (a billion layers of KV names, an 8000-px blank image, a 64M-pixel resize) are refused
 * here, naming the file and the field, before anything is built from them.
 */
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { type LimitName, enforceLimit, limitValue } from './limits.ts';

type Json = Record<string, unknown>;

const asObject = (v: unknown): Json | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null);

/** A positive integer field, or an error naming the file and the field; absent fields pass (their defaults are small). */
function dimension(obj: Json, key: string, file: string, path: string, limit: LimitName): void {
  const v = obj[key];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new LoupeError('bad-input', `${file}: ${path}${key} is ${JSON.stringify(v)}, not a positive integer`);
  enforceLimit(limit, v, `${file} field ${path}${key}`);
}

const CONFIG_FIELDS: [string, LimitName][] = [
  ['num_hidden_layers', 'modelLayers'],
  ['depth', 'modelLayers'], // Qwen2-VL vision tower
  ['hidden_size', 'modelHiddenSize'],
  ['embed_dim', 'modelHiddenSize'],
  ['intermediate_size', 'modelHiddenSize'],
  ['head_dim', 'modelHiddenSize'],
  ['num_attention_heads', 'modelHeads'],
  ['num_key_value_heads', 'modelHeads'],
  ['num_heads', 'modelHeads'],
  ['vocab_size', 'modelVocab'],
  ['max_position_embeddings', 'modelPositions'],
  ['image_size', 'processorSide'],
  ['patch_size', 'processorSide'],
];

/** `config.json`: every dimension of the text and vision configs within the limits, and heads that divide evenly. */
export function checkModelConfig(config: Json, file = 'config.json'): void {
  const parts: [Json, string][] = [[config, '']];
  for (const key of ['text_config', 'vision_config']) {
    const sub = asObject(config[key]);
    if (sub) parts.push([sub, `${key}.`]);
    else if (config[key] !== undefined && config[key] !== null) throw new LoupeError('bad-input', `${file}: ${key} is ${JSON.stringify(config[key]).slice(0, 80)}, not an object`);
  }
  for (const [obj, path] of parts) for (const [key, limit] of CONFIG_FIELDS) dimension(obj, key, file, path, limit);
  for (const [obj, path] of parts) {
    const heads = obj.num_attention_heads as number | undefined;
    const kv = obj.num_key_value_heads as number | undefined;
    if (heads && kv && heads % kv !== 0) throw new LoupeError('bad-input', `${file}: ${path}num_attention_heads ${heads} is not a multiple of ${path}num_key_value_heads ${kv}`);
    const hidden = obj.hidden_size as number | undefined;
    // Without head_dim, Loupe (as transformers) takes hidden_size / num_attention_heads as the head size.
    if (path !== 'vision_config.' && heads && hidden && obj.head_dim === undefined && hidden % heads !== 0) {
      throw new LoupeError('bad-input', `${file}: ${path}hidden_size ${hidden} is not a multiple of ${path}num_attention_heads ${heads} (and no head_dim is given)`);
    }
  }
}

/**
 * A side-like field (a number, or an object of heights/widths/edges): each side within the
 * processor-side limit. `edgesArePixels`: Qwen2-VL-style processors put pixel counts in
 * size.shortest_edge / size.longest_edge (min_pixels / max_pixels), not sides.
 */
function sides(v: unknown, file: string, path: string, edgesArePixels = false): void {
  if (v === undefined || v === null) return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v <= 0) throw new LoupeError('bad-input', `${file}: ${path} is ${v}, not a positive size`);
    enforceLimit('processorSide', v, `${file} field ${path}`);
    return;
  }
  const obj = asObject(v);
  if (!obj) throw new LoupeError('bad-input', `${file}: ${path} is ${JSON.stringify(v).slice(0, 80)}, not a size`);
  for (const key of ['height', 'width']) sides(obj[key], file, `${path}.${key}`);
  for (const key of ['shortest_edge', 'longest_edge']) (edgesArePixels ? pixels : sides)(obj[key], file, `${path}.${key}`);
  for (const key of ['min_pixels', 'max_pixels']) pixels(obj[key], file, `${path}.${key}`);
}

/** A pixel-count field (Qwen2-VL's min_pixels / max_pixels): within the square of the processor-side limit. */
function pixels(v: unknown, file: string, path: string): void {
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new LoupeError('bad-input', `${file}: ${path} is ${JSON.stringify(v)}, not a positive pixel count`);
  const side = limitValue('processorSide');
  if (v > side * side) {
    throw new LoupeError('bad-input', `${file} field ${path}: ${v} pixels is over the limit of ${side}² = ${side * side} pixels (preprocessor image side ${side}; set LOUPE_MAX_PROCESSOR_SIDE to raise it)`, {
      limit: 'processorSide',
      value: side,
      seen: Math.sqrt(v),
      setting: 'LOUPE_MAX_PROCESSOR_SIDE',
    });
  }
}

/** `preprocessor_config.json`: every image size it asks for within the processor-side limit. */
export function checkPreprocessorConfig(pre: Json, file = 'preprocessor_config.json'): void {
  const size = asObject(pre.size);
  const pixelSized = pre.min_pixels !== undefined || pre.max_pixels !== undefined || size?.min_pixels !== undefined || size?.max_pixels !== undefined || /Qwen2/i.test(String(pre.image_processor_type ?? ''));
  for (const key of ['size', 'crop_size', 'max_image_size', 'patch_size']) sides(pre[key], file, key, pixelSized && key === 'size');
  for (const key of ['min_pixels', 'max_pixels']) pixels(pre[key], file, key);
  const pins = pre.image_grid_pinpoints;
  if (pins !== undefined && pins !== null) {
    if (!Array.isArray(pins)) throw new LoupeError('bad-input', `${file}: image_grid_pinpoints is not a list of [height, width] pairs`);
    pins.forEach((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2) throw new LoupeError('bad-input', `${file}: image_grid_pinpoints[${i}] is not a [height, width] pair`);
      pair.forEach((s, j) => sides(s, file, `image_grid_pinpoints[${i}][${j}]`));
    });
  }
}
