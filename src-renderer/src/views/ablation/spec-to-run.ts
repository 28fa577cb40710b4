/**
 * What "Run with this spec" starts: exactly the edits listed under "Edits in the spec", or, while
 * that list is empty, the single edit the form describes (listed in its place, so what is shown
 * is still what runs). The form's edit is never appended to a non-empty list behind the user's
 * back: that is how an edit that had just been added went into a run twice.
 */
import { type AblationEdit, type TokenSet, isAttentionEdit } from '../../../../src-shared/ablation/spec.ts';

/** Two edits are the same when their JSON is (the form builds them with a fixed key order). */
export function sameEdit(a: AblationEdit, b: AblationEdit): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export interface SpecToRun {
  /** The edits that run, in order. */
  edits: AblationEdit[];
  /** True when the list was empty and the form's edit stands in for it. */
  fromForm: boolean;
  /** The form describes an edit that is not in a non-empty list (it will not run until added). */
  formNotAdded: boolean;
}

export function specToRun(listed: readonly AblationEdit[], form: AblationEdit | null): SpecToRun {
  if (!listed.length) return { edits: form ? [form] : [], fromForm: form !== null, formNotAdded: false };
  return { edits: [...listed], fromForm: false, formNotAdded: form !== null && !listed.some((e) => sameEdit(e, form)) };
}

/** The edits the mask preview shows: what runs plus the form's edit while it is being composed (not twice). */
export function previewEdits(listed: readonly AblationEdit[], form: AblationEdit | null): AblationEdit[] {
  return form && !listed.some((e) => sameEdit(e, form)) ? [...listed, form] : [...listed];
}

const setName = (s: TokenSet): string => (s.kind === 'patches' && s.indices ? `patches[${s.indices.length}]` : s.kind);
const layerName = (l: AblationEdit['layers']): string => (l === 'all' ? 'all layers' : `L${l.join(',')}`);

function describeEdit(e: AblationEdit): string {
  if (!isAttentionEdit(e)) return `${e.op} ${e.part} ${setName(e.tokens)} ${layerName(e.layers)}`;
  const op = e.op === 'scale' ? `scale×${e.factor}` : e.op;
  const heads = e.heads === 'all' ? '' : ` h${e.heads.join(',')}`;
  return `${op} ${e.part} ${setName(e.queries)}→${setName(e.keys)}${e.excludeSelf ? ' (not self)' : ''} ${layerName(e.layers)}${heads}`;
}

/** A short run name that says what the spec does, e.g. "block vision patches→patches (not self) L0,1 (+1 more)". */
export function describeEdits(edits: readonly AblationEdit[]): string {
  const first = edits[0];
  if (!first) return 'no edits';
  return edits.length > 1 ? `${describeEdit(first)} (+${edits.length - 1} more)` : describeEdit(first);
}
