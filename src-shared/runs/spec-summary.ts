/**
 * A run's name that says what differs from its neighbours: the job kind plus the spec fields
 * that change what was computed (ablation, dtype variant, blind mode, generation, limit…),
 * e.g. "readout · ablation vision 1–2 patch↔patch · q8". Pure, so the Runs view and the
 * CLI word runs the same way; `specDiff` lists the keys that differ between runs (Compare).
 */

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** [0, 1, 2, 5] → "0–2, 5". */
export function compactRanges(values: readonly number[]): string {
  const sorted = [...new Set(values)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? `${sorted[i]}` : `${sorted[i]}–${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

function tokenSet(t: Json): string {
  if (!isObject(t)) return '?';
  switch (t.kind) {
    case 'patches':
      return Array.isArray(t.indices) ? `patch ${compactRanges(t.indices as number[])}` : 'patch';
    case 'positions':
      return `pos ${compactRanges((t.positions as number[]) ?? [])}`;
    default:
      return String(t.kind);
  }
}

function layers(l: Json): string {
  return Array.isArray(l) ? compactRanges(l as number[]) : 'all layers';
}

/** One ablation edit in a few words: "vision 1–2 patch↔patch", "llm all layers text→image ×0.5". */
export function editSummary(e: Json): string {
  if (!isObject(e)) return '?';
  if (e.op === 'zero' || e.op === 'mean') return `${e.op} ${String(e.part)} ${layers(e.layers)} ${tokenSet(e.tokens)}`;
  const q = tokenSet(e.queries);
  const k = tokenSet(e.keys);
  // "patch↔patch": a set attending to itself (both directions of every pair), the common sweep edit.
  const edge = q === k ? `${q}↔${k}` : `${q}→${k}`;
  const heads = Array.isArray(e.heads) ? ` heads ${compactRanges(e.heads as number[])}` : '';
  const scale = e.op === 'scale' ? ` ×${String(e.factor)}` : '';
  return `${String(e.part)} ${layers(e.layers)}${heads} ${edge}${scale}`;
}

function variantSummary(v: Json): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v)) {
    const short: Record<string, string> = { decoder_model_merged: 'decoder', vision_encoder: 'vision', embed_tokens: 'embed' };
    const parts = Object.entries(v).map(([s, d]) => `${short[s] ?? s} ${String(d)}`);
    return parts.length ? parts.join(', ') : null;
  }
  return null;
}

/** The spec summary of a run: kind first, then what its spec changes from the defaults. */
export function specSummary(run: { kind: string; spec: Record<string, Json> }): string {
  const s = run.spec;
  const parts: string[] = [run.kind];
  const ablation = s.ablation;
  if (isObject(ablation) && Array.isArray(ablation.edits)) parts.push(`ablation ${ablation.edits.map(editSummary).join(' + ')}`);
  if (typeof s.image === 'string' && s.image !== 'image') parts.push(`image: ${s.image}`);
  if (typeof s.textPrefix === 'string' && s.textPrefix) parts.push(`prefix "${s.textPrefix.length > 20 ? `${s.textPrefix.slice(0, 20)}…` : s.textPrefix}"`);
  if (s.blind === 'none') parts.push('blind: no image');
  if (typeof s.generate === 'number' && s.generate > 0) parts.push(`generate ${s.generate}`);
  if (typeof s.maxNewTokens === 'number' && s.maxNewTokens > 0) parts.push(`generate ${s.maxNewTokens}`);
  if (s.scoreBy === 'letter') parts.push('letters');
  if (isObject(s.taps)) {
    const on = Object.entries(s.taps).filter(([, v]) => v === true).map(([k]) => k);
    if (on.length) parts.push(`taps ${on.join(', ')}`);
  }
  if (typeof s.prompt === 'string' && s.prompt) parts.push('own prompt');
  const variant = variantSummary(s.variant);
  if (variant) parts.push(variant);
  if (typeof s.storeDtype === 'string' && s.storeDtype !== 'float16') parts.push(`store ${s.storeDtype}`);
  if (typeof s.limit === 'number' && s.limit > 0) parts.push(`limit ${s.limit}`);
  return parts.join(' · ');
}

/** Flattens a spec to dotted keys with JSON leaf values (arrays of plain values stay whole). */
export function flattenSpec(spec: Json, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (isObject(spec)) {
    const keys = Object.keys(spec);
    if (!keys.length && prefix) out[prefix] = '{}';
    for (const k of keys) flattenSpec(spec[k], prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(spec) && spec.some((x) => isObject(x) || Array.isArray(x))) {
    spec.forEach((x, i) => flattenSpec(x, `${prefix}[${i}]`, out));
  } else if (prefix) out[prefix] = JSON.stringify(spec);
  return out;
}

export interface SpecDiffRow {
  key: string;
  /** The JSON value per run, in the order given; null where the run's spec lacks the key. */
  values: (string | null)[];
}

/** The keys whose values differ between the specs (a key one spec lacks counts as differing). */
export function specDiff(specs: readonly Json[]): SpecDiffRow[] {
  const flat = specs.map((s) => flattenSpec(s));
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort();
  return keys.map((key) => ({ key, values: flat.map((f) => f[key] ?? null) })).filter((r) => r.values.some((v) => v !== r.values[0]));
}
