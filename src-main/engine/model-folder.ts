/**
 * Opens a model folder in the transformers.js / onnx-community layout and says what it is.
 * Errors name the missing file or unknown family, so a user knows what to fix.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';

/** `model_type` values and the family Loupe treats them as. */
const FAMILIES: Record<string, string> = {
  llava: 'llava',
  llava_onevision: 'llava-onevision',
  llava_qwen2: 'llava-onevision',
  idefics3: 'idefics3',
  smolvlm: 'idefics3',
  qwen2_vl: 'qwen2-vl',
  qwen2_5_vl: 'qwen2-vl',
};

export const SESSION_NAMES = ['vision_encoder', 'embed_tokens', 'decoder_model_merged'] as const;
export type SessionName = (typeof SESSION_NAMES)[number];

export interface ModelFolder {
  path: string;
  name: string;
  family: string;
  config: Record<string, unknown>;
  preprocessor: Record<string, unknown>;
  /** `processor_config.json` when present (image_token, image_seq_len, …), else {}. */
  processorConfig: Record<string, unknown>;
  /** Chosen file per session; the dtype suffix (`_fp16`, `_q4` …) is kept as found. */
  files: Record<SessionName, string>;
}

function readJson(path: string, what: string): Record<string, unknown> {
  if (!existsSync(path)) throw new LoupeError('bad-input', `model folder is missing ${what} (${basename(path)})`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new LoupeError('bad-input', `${basename(path)} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Picks `<name>.onnx` if present, else the first dtype variant in a fixed order. */
function pickSession(onnxDir: string, name: SessionName, entries: string[], dtype?: string): string {
  const order = dtype ? [`${name}_${dtype}.onnx`] : [`${name}.onnx`, `${name}_fp16.onnx`, `${name}_quantized.onnx`, `${name}_q4.onnx`, `${name}_q4f16.onnx`, `${name}_int8.onnx`, `${name}_uint8.onnx`, `${name}_bnb4.onnx`];
  const found = order.find((f) => entries.includes(f));
  if (!found) throw new LoupeError('bad-input', `model folder has no onnx/${order[0]}${dtype ? '' : ' (nor any dtype variant)'}`);
  return join(onnxDir, found);
}

export function openModelFolder(path: string, dtype?: string): ModelFolder {
  if (!existsSync(path)) throw new LoupeError('not-found', `model folder ${path} does not exist`);
  const config = readJson(join(path, 'config.json'), 'config.json');
  const modelType = String(config.model_type ?? '');
  const family = FAMILIES[modelType];
  if (!family) throw new LoupeError('bad-input', `unsupported model_type "${modelType}" in config.json (supported: ${Object.keys(FAMILIES).join(', ')})`);
  const preprocessor = readJson(join(path, 'preprocessor_config.json'), 'preprocessor_config.json');
  const onnxDir = join(path, 'onnx');
  if (!existsSync(onnxDir)) throw new LoupeError('bad-input', `model folder ${path} has no onnx/ subfolder`);
  const entries = readdirSync(onnxDir);
  const files = Object.fromEntries(SESSION_NAMES.map((n) => [n, pickSession(onnxDir, n, entries, dtype)])) as Record<SessionName, string>;
  const processorConfig = existsSync(join(path, 'processor_config.json')) ? readJson(join(path, 'processor_config.json'), 'processor_config.json') : {};
  return { path, name: basename(path), family, config, preprocessor, processorConfig, files };
}
