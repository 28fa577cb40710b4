/** Labels of dataset items, edited one at a time (autosave) and read back per item. */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { StoredLabel } from '../../../src-shared/contract/methods.ts';
import type { Label } from '../../../src-shared/dataset/format.ts';
import { type Db, json, now } from '../database.ts';

interface Row {
  id: number;
  dataset_id: string;
  item_id: string;
  data: string;
  updated_at: string;
}

const toLabel = (r: Row): StoredLabel => ({ id: r.id, datasetId: r.dataset_id, itemId: r.item_id, label: json<Label>(r.data), updatedAt: r.updated_at });

export class LabelsRepo {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  list(datasetId: string, itemId: string): StoredLabel[] {
    return (this.db.prepare('SELECT * FROM labels WHERE dataset_id = ? AND item_id = ? ORDER BY id').all(datasetId, itemId) as Row[]).map(toLabel);
  }

  get(id: number): StoredLabel {
    const row = this.db.prepare('SELECT * FROM labels WHERE id = ?').get(id) as Row | undefined;
    if (!row) throw new LoupeError('not-found', `no label with id ${id}`);
    return toLabel(row);
  }

  put(datasetId: string, itemId: string, label: Label, id?: number): StoredLabel {
    const exists = this.db.prepare('SELECT 1 FROM items WHERE dataset_id = ? AND id = ?').get(datasetId, itemId);
    if (!exists) throw new LoupeError('not-found', `dataset ${datasetId} has no item ${itemId}`);
    const t = now();
    if (id !== undefined) {
      const r = this.db.prepare('UPDATE labels SET kind = ?, data = ?, updated_at = ? WHERE id = ? AND dataset_id = ? AND item_id = ?').run(label.kind, JSON.stringify(label), t, id, datasetId, itemId);
      if (r.changes === 0) throw new LoupeError('not-found', `no label ${id} on item ${itemId}`);
      return this.get(id);
    }
    const r = this.db.prepare('INSERT INTO labels (dataset_id, item_id, kind, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run(datasetId, itemId, label.kind, JSON.stringify(label), t, t);
    return this.get(Number(r.lastInsertRowid));
  }

  /**
   * Creates (no id) or replaces (id) a mask label together with its pixels (PNG bytes) in one
   * transaction. `build` makes the label from its id, so a new label can name its file after it.
   */
  putMask(datasetId: string, itemId: string, build: (id: number) => Label, png: Uint8Array, width: number, height: number, id?: number): StoredLabel {
    return this.db.transaction(() => {
      let labelId = id;
      if (labelId === undefined) {
        const exists = this.db.prepare('SELECT 1 FROM items WHERE dataset_id = ? AND id = ?').get(datasetId, itemId);
        if (!exists) throw new LoupeError('not-found', `dataset ${datasetId} has no item ${itemId}`);
        const t = now();
        labelId = Number(this.db.prepare("INSERT INTO labels (dataset_id, item_id, kind, data, created_at, updated_at) VALUES (?, ?, 'mask', '{}', ?, ?)").run(datasetId, itemId, t, t).lastInsertRowid);
      }
      this.put(datasetId, itemId, build(labelId), labelId);
      this.db
        .prepare('INSERT INTO label_masks (label_id, width, height, png) VALUES (?, ?, ?, ?) ON CONFLICT(label_id) DO UPDATE SET width = excluded.width, height = excluded.height, png = excluded.png')
        .run(labelId, width, height, png);
      return this.get(labelId);
    })();
  }

  /** The stored pixels of a user-drawn mask label, or null (a mask that lives in a file of the dataset folder). */
  mask(id: number): { width: number; height: number; png: Uint8Array } | null {
    const row = this.db.prepare('SELECT width, height, png FROM label_masks WHERE label_id = ?').get(id) as { width: number; height: number; png: Buffer } | undefined;
    return row ? { width: row.width, height: row.height, png: new Uint8Array(row.png.buffer, row.png.byteOffset, row.png.byteLength) } : null;
  }

  /** Stored mask pixels of a dataset's labels by label id, for export. */
  masks(datasetId: string): Map<number, { width: number; height: number; png: Uint8Array; file: string }> {
    const rows = this.db
      .prepare('SELECT m.label_id, m.width, m.height, m.png, l.data FROM label_masks m JOIN labels l ON l.id = m.label_id WHERE l.dataset_id = ?')
      .all(datasetId) as { label_id: number; width: number; height: number; png: Buffer; data: string }[];
    return new Map(rows.map((r) => [r.label_id, { width: r.width, height: r.height, png: new Uint8Array(r.png.buffer, r.png.byteOffset, r.png.byteLength), file: (json<Label>(r.data) as { file?: string }).file ?? '' }]));
  }

  delete(id: number): StoredLabel {
    const label = this.get(id);
    this.db.prepare('DELETE FROM labels WHERE id = ?').run(id);
    return label;
  }

  /** Every label of a dataset grouped by item, for export. */
  byItem(datasetId: string): Map<string, Label[]> {
    const out = new Map<string, Label[]>();
    for (const [item, list] of this.storedByItem(datasetId)) out.set(item, list.map((l) => l.label));
    return out;
  }

  /** The same with label ids (export looks up the pixels of mask labels by id). */
  storedByItem(datasetId: string): Map<string, StoredLabel[]> {
    const out = new Map<string, StoredLabel[]>();
    for (const r of this.db.prepare('SELECT * FROM labels WHERE dataset_id = ? ORDER BY id').all(datasetId) as Row[]) {
      const list = out.get(r.item_id) ?? [];
      list.push(toLabel(r));
      out.set(r.item_id, list);
    }
    return out;
  }
}
