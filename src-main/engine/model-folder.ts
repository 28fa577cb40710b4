/**
 * Opens a model folder in the transformers.js / onnx-community layout and says what it is.
 * Errors name the missing file or unknown family, so a user knows what to fix.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ModelInfo } from '../../src-shared/contract/domain.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { DEFAULT_DTYPE_ORDER, type ModelDtype, type ModelVariant, SESSION_NAMES, type SessionName, fileNameOf, parseSessionFile, requestedDtype } from '../../src-shared/jobs/variant.ts';
import { checkModelConfig, checkPreprocessorConfig } from './model-config-check.ts';
import { assertLinksInside, containmentRoots } from './inside-folder.ts';
import { resolveChatTemplate } from './vlm/chat-templates.ts';

/** `model_type` values and the family Loupe treats them as. */
const FAMILIES: Record<string, string> = {
  llava: 'llava',
  llava_next: 'llava-next',
  llava_onevision: 'llava-onevision',
  llava_qwen2: 'llava-onevision',
  idefics3: 'idefics3',
  smolvlm: 'idefics3',
  qwen2_vl: 'qwen2-vl',
  qwen2_5_vl: 'qwen2-vl',
  paligemma: 'paligemma',
};

export { SESSION_NAMES };
export type { SessionName };

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
  /** The dtype of each chosen file. */
  dtypes: Record<SessionName, ModelDtype>;
}

function readJson(path: string, what: string): Record<string, unknown> {
  if (!existsSync(path)) throw new LoupeError('bad-input', `model folder is missing ${what} (${basename(path)})`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new LoupeError('bad-input', `${basename(path)} is not valid JSON: ${(e as Error).message}`);
  }
  // `null`, a number or a list would fail later as a TypeError deep in the loader.
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new LoupeError('bad-input', `${basename(path)} is not a JSON object`);
  return parsed as Record<string, unknown>;
}

/** One export of a session in the folder: its dtype, graph file, and bytes with its external data. */
export interface SessionVariant {
  dtype: ModelDtype;
  file: string;
  bytes: number;
}

/** Every dtype each session has in `onnxDir`, in the default pick order. */
export function sessionVariants(onnxDir: string): Record<SessionName, SessionVariant[]> {
  const entries = readdirSync(onnxDir);
  const size = (n: string) => {
    try {
      return statSync(join(onnxDir, n)).size;
    } catch {
      return 0;
    }
  };
  const out = Object.fromEntries(SESSION_NAMES.map((n) => [n, [] as SessionVariant[]])) as Record<SessionName, SessionVariant[]>;
  for (const name of entries) {
    const parsed = parseSessionFile(name);
    if (!parsed) continue;
    const bytes = entries.filter((e) => e === name || e.startsWith(`${name}_data`) || e.startsWith(`${name}.data`)).reduce((s, e) => s + size(e), 0);
    out[parsed.session].push({ dtype: parsed.dtype, file: name, bytes });
  }
  for (const n of SESSION_NAMES) out[n].sort((a, b) => DEFAULT_DTYPE_ORDER.indexOf(a.dtype) - DEFAULT_DTYPE_ORDER.indexOf(b.dtype));
  return out;
}

/**
 * The session's file for the requested dtype, else the first in the default order. A requested
 * dtype that is absent is an error naming the missing file and the dtypes the folder has.
 */
function pickSession(onnxDir: string, name: SessionName, variants: SessionVariant[], dtype?: ModelDtype): { file: string; dtype: ModelDtype } {
  const has = variants.map((v) => v.dtype).join(', ') || 'none';
  if (dtype) {
    const found = variants.find((v) => v.dtype === dtype);
    if (!found) throw new LoupeError('bad-input', `model folder has no onnx/${fileNameOf(name, dtype)} (variant ${dtype} of ${name}); ${name} variants in this folder: ${has}`);
    return { file: join(onnxDir, found.file), dtype };
  }
  const first = variants[0];
  if (!first) throw new LoupeError('bad-input', `model folder has no onnx/${fileNameOf(name, 'fp32')} (nor any dtype variant of ${name})`);
  return { file: join(onnxDir, first.file), dtype: first.dtype };
}

/** Opens a model folder; `variant` picks the dtype per session (default: fp32, else the first variant present). */
export function openModelFolder(path: string, variant?: ModelVariant): ModelFolder {
  if (!existsSync(path)) throw new LoupeError('not-found', `model folder ${path} does not exist`);
  // Every file read below (configs, tokenizer, onnx/ graphs and external data) is in these two folders.
  const roots = containmentRoots(path);
  assertLinksInside(path, path, 'model file', roots);
  const config = readJson(join(path, 'config.json'), 'config.json');
  const modelType = String(config.model_type ?? '');
  const family = FAMILIES[modelType];
  if (!family) throw new LoupeError('bad-input', `unsupported model_type "${modelType}" in config.json (supported: ${Object.keys(FAMILIES).join(', ')})`);
  checkModelConfig(config);
  const preprocessor = readJson(join(path, 'preprocessor_config.json'), 'preprocessor_config.json');
  checkPreprocessorConfig(preprocessor);
  const onnxDir = join(path, 'onnx');
  if (!existsSync(onnxDir)) throw new LoupeError('bad-input', `model folder ${path} has no onnx/ subfolder`);
  assertLinksInside(path, onnxDir, 'model file', roots);
  const variants = sessionVariants(onnxDir);
  const picked = Object.fromEntries(SESSION_NAMES.map((n) => [n, pickSession(onnxDir, n, variants[n], requestedDtype(variant, n))])) as Record<SessionName, { file: string; dtype: ModelDtype }>;
  const files = Object.fromEntries(SESSION_NAMES.map((n) => [n, picked[n].file])) as Record<SessionName, string>;
  const dtypes = Object.fromEntries(SESSION_NAMES.map((n) => [n, picked[n].dtype])) as Record<SessionName, ModelDtype>;
  const processorConfig = existsSync(join(path, 'processor_config.json')) ? readJson(join(path, 'processor_config.json'), 'processor_config.json') : {};
  return { path, name: basename(path), family, config, preprocessor, processorConfig, files, dtypes };
}

/** `models/variants`: the dtype exports of each session, the default pick, and the dtypes every session has. */
export function modelVariants(model: { id: string; path: string }) {
  const folder = openModelFolder(model.path);
  const variants = sessionVariants(join(folder.path, 'onnx'));
  const sessions = SESSION_NAMES.map((session) => ({ session, default: folder.dtypes[session], variants: variants[session] }));
  const common = DEFAULT_DTYPE_ORDER.filter((d) => SESSION_NAMES.every((n) => variants[n].some((v) => v.dtype === d)));
  return { modelId: model.id, sessions, common };
}

/** What the Models view should say about how a model's folder is used (ModelInfo.notes). */
export function modelNotes(path: string, family: string): string[] {
  try {
    const chat = resolveChatTemplate(path, family);
    return chat.note ? [chat.note] : [];
  } catch (e) {
    return [(e as Error).message];
  }
}

/** The stored model with its notes, computed from the folder as it is now. */
export function withNotes(model: ModelInfo): ModelInfo {
  const notes = existsSync(model.path) ? modelNotes(model.path, model.family) : [`model folder ${model.path} does not exist`];
  return notes.length ? { ...model, notes } : model;
}

/**
 * The language model's settings: `text_config` where the family nests them (LLaVA, Idefics3), the
 * top level where its config class is flat (Qwen2-VL and Qwen2.5-VL in transformers ≤ 4.49).
 */
export function textConfigOf(config: Record<string, unknown>): Record<string, unknown> {
  const nested = config.text_config;
  return nested && typeof nested === 'object' ? (nested as Record<string, unknown>) : config;
}
