/** What the Ablation view's "Run with this spec" starts: the listed edits, never the form's edit twice. */
import { describe, expect, it } from 'vitest';
import { type AblationEdit, AblationSpec } from '../../../src-shared/ablation/spec.ts';
import { describeEdits, previewEdits, sameEdit, specToRun } from '../../../src-renderer/src/views/ablation/spec-to-run.ts';

const edit = (o: object): AblationEdit => AblationSpec.parse({ edits: [{ op: 'block', part: 'vision', queries: { kind: 'patches' }, keys: { kind: 'patches' }, excludeSelf: true, ...o }] }).edits[0]!;

describe('specToRun', () => {
  const a = edit({ layers: [0] });
  const b = edit({ layers: [1, 2] });

  it('with nothing added, runs the form edit once and says so', () => {
    expect(specToRun([], a)).toEqual({ edits: [a], fromForm: true, formNotAdded: false });
    expect(specToRun([], null)).toEqual({ edits: [], fromForm: false, formNotAdded: false });
  });

  it('after "Add edit", runs the list as is: the form (still equal to the added edit) is not appended again', () => {
    const r = specToRun([a], { ...a, layers: [0] });
    expect(r.edits).toEqual([a]);
    expect(r.formNotAdded).toBe(false);
  });

  it('a changed form does not sneak in: the list runs, and the view is told the form is not added', () => {
    const r = specToRun([a], b);
    expect(r.edits).toEqual([a]);
    expect(r.formNotAdded).toBe(true);
  });

  it('compares edits by value, not key order', () => {
    const reordered = JSON.parse('{"excludeSelf":true,"keys":{"kind":"patches"},"queries":{"kind":"patches"},"heads":"all","layers":[0],"part":"vision","op":"block"}') as AblationEdit;
    expect(sameEdit(a, reordered)).toBe(true);
    expect(sameEdit(a, b)).toBe(false);
  });

  it('previews the form on top of the list without doubling it', () => {
    expect(previewEdits([a], a)).toEqual([a]);
    expect(previewEdits([a], b)).toEqual([a, b]);
  });

  it('names runs by what they do', () => {
    expect(describeEdits([b])).toBe('block vision patches→patches (not self) L1,2');
    expect(describeEdits([a, edit({ part: 'llm', queries: { kind: 'text' }, keys: { kind: 'image' }, excludeSelf: false, heads: [3] })])).toBe('block vision patches→patches (not self) L0 (+1 more)');
    expect(describeEdits([edit({ op: 'scale', factor: 0.5, layers: 'all', queries: { kind: 'patches', indices: [1, 2] }, keys: { kind: 'cls' }, excludeSelf: false })])).toBe('scale×0.5 vision patches[2]→cls all layers');
  });
});
