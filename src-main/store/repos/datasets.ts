/** Datasets and their items, stored from a validated manifest (src-shared/dataset/format.ts). */
import type { DatasetInfo } from '../../../src-shared/contract/domain.ts';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { DatasetItem, DatasetManifest } from '../../../src-shared/dataset/format.ts';
import { type Db, json, now } from '../database.ts';

interface Row {
  id: string;
  name: string;
  task: string;
  description: string;
  path: string;
  hash: string;
  bundled: number;
  added_at: string;
  item_count: number;
}

interface ItemRow {
  id: string;
  images: string;
  prompt: string | null;
  choices: string | null;
  answer: string | null;
  split: string | null;
  meta: string | null;
}

export interface StoredItem extends DatasetItem {
  ord: number;
}

const toInfo = (r: Row): DatasetInfo => ({
  id: r.id,
  name: r.name,
  task: r.task,
  description: r.description,
  path: r.path,
  hash: r.hash,
  itemCount: r.item_count,
  bundled: r.bundled === 1,
  addedAt: r.added_at,
});

const SELECT = `SELECT d.*, (SELECT COUNT(*) FROM items i WHERE i.dataset_id = d.id) AS item_count FROM datasets d`;

export class DatasetsRepo {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  /** Replaces a dataset and its items in one transaction (re-import of a changed folder). */
  put(id: string, path: string, hash: string, bundled: boolean, manifest: DatasetManifest): DatasetInfo {
    const existing = this.db.prepare('SELECT hash FROM datasets WHERE id = ?').get(id) as { hash: string } | undefined;
    if (existing?.hash === hash) return this.get(id);
    const insertItem = this.db.prepare(
      'INSERT INTO items (dataset_id, id, ord, images, prompt, choices, answer, split, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const insertLabel = this.db.prepare('INSERT INTO labels (dataset_id, item_id, kind, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      const t = now();
      this.db.prepare('DELETE FROM items WHERE dataset_id = ?').run(id);
      this.db
        .prepare(
          `INSERT INTO datasets (id, name, task, description, path, hash, bundled, source, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET name = excluded.name, task = excluded.task, description = excluded.description, path = excluded.path, hash = excluded.hash, bundled = excluded.bundled, source = excluded.source`,
        )
        .run(id, manifest.name, manifest.task, manifest.description, path, hash, bundled ? 1 : 0, JSON.stringify(manifest.source ?? null), t);
      manifest.items.forEach((item, ord) => {
        insertItem.run(id, item.id, ord, JSON.stringify(item.images), item.prompt ?? null, item.choices ? JSON.stringify(item.choices) : null, item.answer ?? null, item.split ?? null, item.meta ? JSON.stringify(item.meta) : null);
        for (const label of item.labels) insertLabel.run(id, item.id, label.kind, JSON.stringify(label), t, t);
      });
    })();
    return this.get(id);
  }

  /** Appends items to an existing dataset (user datasets grow; their labels must survive). */
  addItems(datasetId: string, items: { id: string; images: string[] }[], hash: string): number {
    const next = (this.db.prepare('SELECT COALESCE(MAX(ord) + 1, 0) AS n FROM items WHERE dataset_id = ?').get(datasetId) as { n: number }).n;
    const insert = this.db.prepare('INSERT OR IGNORE INTO items (dataset_id, id, ord, images) VALUES (?, ?, ?, ?)');
    let added = 0;
    this.db.transaction(() => {
      items.forEach((item, i) => (added += insert.run(datasetId, item.id, next + i, JSON.stringify(item.images)).changes));
      this.db.prepare('UPDATE datasets SET hash = ? WHERE id = ?').run(hash, datasetId);
    })();
    return added;
  }

  list(): DatasetInfo[] {
    return (this.db.prepare(`${SELECT} ORDER BY d.bundled DESC, d.name`).all() as Row[]).map(toInfo);
  }

  get(id: string): DatasetInfo {
    const row = this.db.prepare(`${SELECT} WHERE d.id = ?`).get(id) as Row | undefined;
    if (!row) throw new LoupeError('not-found', `no dataset with id ${id}`);
    return toInfo(row);
  }

  items(datasetId: string, offset: number, limit: number): StoredItem[] {
    const rows = this.db.prepare('SELECT * FROM items WHERE dataset_id = ? ORDER BY ord LIMIT ? OFFSET ?').all(datasetId, limit, offset) as (ItemRow & { ord: number })[];
    return rows.map((r) => this.toItem(datasetId, r));
  }

  private toItem(datasetId: string, r: ItemRow & { ord: number }): StoredItem {
    const labels = this.db.prepare('SELECT data FROM labels WHERE dataset_id = ? AND item_id = ? ORDER BY id');
    return {
      id: r.id,
      ord: r.ord,
      images: json<string[]>(r.images),
      ...(r.prompt !== null && { prompt: r.prompt }),
      ...(r.choices !== null && { choices: json<string[]>(r.choices) }),
      ...(r.answer !== null && { answer: r.answer }),
      ...(r.split !== null && { split: r.split as 'train' | 'test' }),
      ...(r.meta !== null && { meta: json<Record<string, unknown>>(r.meta) }),
      labels: (labels.all(datasetId, r.id) as { data: string }[]).map((l) => JSON.parse(l.data)),
    };
  }

  /** Replaces an item's prompt, choices and answer (already validated: src-shared/dataset/question.ts). */
  setQuestion(datasetId: string, itemId: string, q: { prompt: string | null; choices: string[] | null; answer: string | null }): void {
    const r = this.db
      .prepare('UPDATE items SET prompt = ?, choices = ?, answer = ? WHERE dataset_id = ? AND id = ?')
      .run(q.prompt, q.choices ? JSON.stringify(q.choices) : null, q.answer, datasetId, itemId);
    if (r.changes === 0) throw new LoupeError('not-found', `dataset ${datasetId} has no item ${itemId}`);
  }

  item(datasetId: string, itemId: string): StoredItem {
    // By id, never by position: `ord` may have gaps (INSERT OR IGNORE), and OFFSET ord would then return another item.
    const row = this.db.prepare('SELECT * FROM items WHERE dataset_id = ? AND id = ?').get(datasetId, itemId) as (ItemRow & { ord: number }) | undefined;
    if (!row) throw new LoupeError('not-found', `dataset ${datasetId} has no item ${itemId}`);
    return this.toItem(datasetId, row);
  }
}
