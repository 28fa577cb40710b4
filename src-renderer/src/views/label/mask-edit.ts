/**
 * Label-view state that is not Svelte: label references that survive undo/redo re-creating a
 * label under a new id, mask snapshots for undo, the serial queue every engine write goes
 * through (so a stroke that ends before the previous one is saved edits the same label), and
 * the keyboard shortcuts the view handles and lists.
 */
import type { Pt } from '../../../../src-shared/dataset/mask-raster.ts';
import { binaryOf } from '../../../../src-shared/dataset/mask-raster.ts';

/** A label as the user sees it; `id` changes when undo/redo deletes and re-creates it (0 while deleted or unsaved). */
export interface Ref {
  id: number;
  /** Stable key for keyed rendering. */
  readonly key: number;
}

export class Refs {
  private readonly byId = new Map<number, Ref>();
  private next = 1;

  /** The reference of stored label `id` (the same object every time). */
  of(id: number): Ref {
    let r = this.byId.get(id);
    if (!r) this.byId.set(id, (r = { id, key: this.next++ }));
    return r;
  }

  /** A reference for a label not saved yet. */
  fresh(): Ref {
    return { id: 0, key: this.next++ };
  }

  /** The label was (re-)created under `id`. */
  bind(ref: Ref, id: number): void {
    if (ref.id) this.byId.delete(ref.id);
    ref.id = id;
    this.byId.set(id, ref);
  }

  /** The label was deleted; a later save creates it anew. */
  forget(ref: Ref): void {
    this.byId.delete(ref.id);
    ref.id = 0;
  }

  clear(): void {
    this.byId.clear();
  }
}

/** A mask shown over an image: instance ids (0/1 for masks drawn here) and what the label says of them. */
export interface MaskView {
  image: number;
  width: number;
  height: number;
  map: Uint8Array | Int32Array;
  ids?: number[] | undefined;
  name?: string | undefined;
  polygons: Pt[][] | null;
  /** More than one instance id in the map: coloured per instance, restored from its file on undo. */
  multi: boolean;
}

/** What undo/redo puts back: the binary pixels and the label's name and polygons. */
export interface MaskSnapshot {
  image: number;
  width: number;
  height: number;
  data: Uint8Array;
  name?: string | undefined;
  polygons: Pt[][] | null;
}

export function snapshot(v: MaskView): MaskSnapshot {
  return { image: v.image, width: v.width, height: v.height, data: binaryOf(v.map, v.ids), name: v.name, polygons: v.polygons ? v.polygons.map((p) => [...p]) : null };
}

export function viewOf(s: MaskSnapshot): MaskView {
  return { image: s.image, width: s.width, height: s.height, map: s.data.slice(), ids: [1], name: s.name, polygons: s.polygons ? s.polygons.map((p) => [...p]) : null, multi: false };
}

export function distinctIds(map: ArrayLike<number>): number {
  const seen = new Set<number>();
  for (let i = 0; i < map.length; i++) if (map[i]) seen.add(map[i]!);
  return seen.size;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Runs engine writes one after another, in the order they were asked for. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => {});
    return p;
  }
}

/** Every key the Label view handles, as listed in its shortcuts panel. */
export const SHORTCUTS: readonly (readonly [string, string])[] = [
  ['P', 'point tool (click)'],
  ['C', 'point-pair tool (click A, then B — across the item’s images)'],
  ['B', 'box tool (drag)'],
  ['K', 'class tool (type a class, Add)'],
  ['M', 'mask brush (drag to paint)'],
  ['L', 'mask polygon (click vertices)'],
  ['E', 'toggle paint / erase for brush and polygon'],
  ['[  ]', 'brush radius smaller / larger'],
  ['Enter · double-click', 'close the polygon'],
  ['Backspace', 'remove the last polygon vertex'],
  ['Esc', 'cancel the polygon; else stop editing the mask'],
  ['N', 'new mask: the next stroke starts another object'],
  ['V', 'show / hide the other masks'],
  ['Delete', 'delete the selected label'],
  ['←  →', 'previous / next item'],
  ['Ctrl+Z · Ctrl+Shift+Z', 'undo / redo (also Ctrl+Y)'],
];

/** Which name field a tool uses: the mask tools share one (a polygon may continue a brushed object), the others each their own. */
export type NameField = 'point' | 'pair' | 'box' | 'class' | 'mask';
export function nameField(tool: 'point' | 'pair' | 'box' | 'class' | 'brush' | 'polygon'): NameField {
  return tool === 'brush' || tool === 'polygon' ? 'mask' : tool;
}
