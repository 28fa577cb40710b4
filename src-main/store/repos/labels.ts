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

  delete(id: number): StoredLabel {
    const label = this.get(id);
    this.db.prepare('DELETE FROM labels WHERE id = ?').run(id);
    return label;
  }

  /** Every label of a dataset grouped by item, for export. */
  byItem(datasetId: string): Map<string, Label[]> {
    const out = new Map<string, Label[]>();
    for (const r of this.db.prepare('SELECT * FROM labels WHERE dataset_id = ? ORDER BY id').all(datasetId) as Row[]) {
      const list = out.get(r.item_id) ?? [];
      list.push(json<Label>(r.data));
      out.set(r.item_id, list);
    }
    return out;
  }
}
