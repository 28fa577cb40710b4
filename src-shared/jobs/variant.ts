/**
 * Model variants: which dtype export of each ONNX session a run loads. Model folders in the
 * transformers.js / onnx-community layout hold `onnx/<session><suffix>.onnx` per dtype, and
 * often mix them (a q4 decoder next to an fp32 vision encoder). A variant is one dtype for
 * every session, or a per-session map (sessions left out get the default pick).
 */
import { z } from 'zod';

export const SESSION_NAMES = ['vision_encoder', 'embed_tokens', 'decoder_model_merged'] as const;
export const SessionName = z.enum(SESSION_NAMES);
export type SessionName = z.infer<typeof SessionName>;

/** dtype → file-name suffix, as transformers.js names them (`q8` is the `_quantized` file). */
export const DTYPE_SUFFIX = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
} as const;
export const ModelDtype = z.enum(Object.keys(DTYPE_SUFFIX) as [keyof typeof DTYPE_SUFFIX, ...(keyof typeof DTYPE_SUFFIX)[]]);
export type ModelDtype = z.infer<typeof ModelDtype>;

/** Which dtype a session gets when the run names none: fp32 first, then in this order. */
export const DEFAULT_DTYPE_ORDER: readonly ModelDtype[] = ['fp32', 'fp16', 'q8', 'q4', 'q4f16', 'int8', 'uint8', 'bnb4'];

export const SessionVariants = z
  .object({ vision_encoder: ModelDtype.optional(), embed_tokens: ModelDtype.optional(), decoder_model_merged: ModelDtype.optional() })
  .strict()
  .refine((m) => Object.values(m).some((v) => v !== undefined), { message: 'a per-session variant names at least one session' });

/** `"q4"` (every session) or `{ decoder_model_merged: "q4", vision_encoder: "fp32" }`. */
export const ModelVariant = z.union([ModelDtype, SessionVariants]);
export type ModelVariant = z.infer<typeof ModelVariant>;

/** The dtype asked of `session`, or undefined (default pick). */
export function requestedDtype(variant: ModelVariant | undefined, session: SessionName): ModelDtype | undefined {
  if (variant === undefined) return undefined;
  return typeof variant === 'string' ? variant : variant[session];
}

export function fileNameOf(session: SessionName, dtype: ModelDtype): string {
  return `${session}${DTYPE_SUFFIX[dtype]}.onnx`;
}

/** `onnx/` entry name → its session and dtype; null for anything else (external data, rewritten copies, other graphs). */
export function parseSessionFile(name: string): { session: SessionName; dtype: ModelDtype } | null {
  for (const session of SESSION_NAMES) {
    for (const dtype of ModelDtype.options) if (name === fileNameOf(session, dtype)) return { session, dtype };
  }
  return null;
}

/**
 * The CLI's `--variant`: `q4` (every session) or `decoder_model_merged=q4,vision_encoder=fp32`.
 * Throws with the accepted names on anything else.
 */
export function parseVariantFlag(text: string): ModelVariant {
  const s = text.trim();
  const bad = (why: string) => new Error(`--variant ${JSON.stringify(text)}: ${why} (dtypes: ${ModelDtype.options.join(', ')}; sessions: ${SESSION_NAMES.join(', ')})`);
  if (!s.includes('=')) {
    const one = ModelDtype.safeParse(s);
    if (!one.success) throw bad(`unknown dtype "${s}"`);
    return one.data;
  }
  const map: Partial<Record<SessionName, ModelDtype>> = {};
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name = '', dtype = '', ...rest] = part.split('=').map((p) => p.trim());
    const session = SessionName.safeParse(name);
    const d = ModelDtype.safeParse(dtype);
    if (rest.length || !session.success) throw bad(`unknown session "${name}"`);
    if (!d.success) throw bad(`unknown dtype "${dtype}" for ${name}`);
    if (map[session.data] !== undefined) throw bad(`${name} is given twice`);
    map[session.data] = d.data;
  }
  return ModelVariant.parse(map);
}

/** Short text for a variant: `q4`, `decoder_model_merged=q4,vision_encoder=fp32`, `default`. */
export function formatVariant(variant: ModelVariant | undefined): string {
  if (variant === undefined) return 'default';
  if (typeof variant === 'string') return variant;
  return SESSION_NAMES.filter((n) => variant[n] !== undefined)
    .map((n) => `${n}=${variant[n]}`)
    .join(',');
}
