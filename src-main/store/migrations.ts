/**
 * Ordered, append-only schema migrations. Never edit a shipped migration: add the next one.
 * Each runs in its own transaction and records itself, so a failure leaves the database at
 * the last good version and says which migration broke.
 */
import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  name: string;
  up(db: Database.Database): void;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'initial schema: models, datasets, items, labels, runs, run items, results, tensors',
    up(db) {
      db.exec(`
        CREATE TABLE models (
          id TEXT PRIMARY KEY,
          name TEXT NOT NULL,
          family TEXT NOT NULL,
          path TEXT NOT NULL,
          hash TEXT NOT NULL,
          bundled INTEGER NOT NULL DEFAULT 0,
          config TEXT NOT NULL,
          added_at TEXT NOT NULL
        );
        CREATE TABLE datasets (
          id TEXT PRIMARY KEY,
          name TEXT NOT NULL,
          task TEXT NOT NULL,
          description TEXT NOT NULL DEFAULT '',
          path TEXT NOT NULL,
          hash TEXT NOT NULL,
          bundled INTEGER NOT NULL DEFAULT 0,
          source TEXT,
          added_at TEXT NOT NULL
        );
        CREATE TABLE items (
          dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
          id TEXT NOT NULL,
          ord INTEGER NOT NULL,
          images TEXT NOT NULL,
          prompt TEXT,
          choices TEXT,
          answer TEXT,
          split TEXT,
          meta TEXT,
          PRIMARY KEY (dataset_id, id)
        );
        CREATE TABLE labels (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          dataset_id TEXT NOT NULL,
          item_id TEXT NOT NULL,
          kind TEXT NOT NULL,
          data TEXT NOT NULL,
          created_at TEXT NOT NULL,
          updated_at TEXT NOT NULL,
          FOREIGN KEY (dataset_id, item_id) REFERENCES items(dataset_id, id) ON DELETE CASCADE
        );
        CREATE INDEX labels_by_item ON labels(dataset_id, item_id);
        CREATE TABLE runs (
          id TEXT PRIMARY KEY,
          kind TEXT NOT NULL,
          name TEXT NOT NULL,
          status TEXT NOT NULL,
          model_id TEXT NOT NULL REFERENCES models(id),
          dataset_id TEXT NOT NULL REFERENCES datasets(id),
          spec TEXT NOT NULL,
          provenance TEXT NOT NULL,
          error TEXT,
          created_at TEXT NOT NULL,
          updated_at TEXT NOT NULL
        );
        CREATE TABLE run_items (
          run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
          item_id TEXT NOT NULL,
          ord INTEGER NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
          error TEXT,
          attempts INTEGER NOT NULL DEFAULT 0,
          finished_at TEXT,
          PRIMARY KEY (run_id, item_id)
        );
        CREATE INDEX run_items_pending ON run_items(run_id, status, ord);
        CREATE TABLE results (
          run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
          item_id TEXT NOT NULL,
          metrics TEXT NOT NULL,
          value TEXT NOT NULL,
          PRIMARY KEY (run_id, item_id)
        );
        CREATE TABLE tensors (
          id TEXT PRIMARY KEY,
          run_id TEXT REFERENCES runs(id) ON DELETE CASCADE,
          item_id TEXT,
          name TEXT NOT NULL,
          dtype TEXT NOT NULL,
          shape TEXT NOT NULL,
          blob TEXT NOT NULL,
          created_at TEXT NOT NULL
        );
        CREATE INDEX tensors_by_run ON tensors(run_id, item_id);
      `);
    },
  },
  {
    version: 2,
    name: 'sweeps: a grid of runs over specs, with run membership',
    up(db) {
      db.exec(`
        CREATE TABLE sweeps (
          id TEXT PRIMARY KEY,
          name TEXT NOT NULL,
          spec TEXT NOT NULL,
          created_at TEXT NOT NULL
        );
        ALTER TABLE runs ADD COLUMN sweep_id TEXT REFERENCES sweeps(id);
        CREATE INDEX runs_by_sweep ON runs(sweep_id);
      `);
    },
  },
  {
    version: 3,
    name: 'label masks: the pixels of user-drawn mask labels (PNG bytes), deleted with their label',
    up(db) {
      db.exec(`
        CREATE TABLE label_masks (
          label_id INTEGER PRIMARY KEY REFERENCES labels(id) ON DELETE CASCADE,
          width INTEGER NOT NULL,
          height INTEGER NOT NULL,
          png BLOB NOT NULL
        );
      `);
    },
  },
  {
    version: 4,
    name: "run states and blob sizes: finished runs with failed items become 'partial' or 'failed' with a reason; blob_files records each blob's size",
    up(db) {
      db.exec(`
        CREATE TABLE blob_files (
          sha TEXT PRIMARY KEY,
          size INTEGER NOT NULL,
          verified_at TEXT NOT NULL
        );
      `);
      // Before version 4 a run whose items failed still said 'done' with no error (issue 23 item 9).
      // Self-contained on purpose: a shipped migration must not change when the runs repo does.
      const runs = db
        .prepare(
          `SELECT r.id,
             (SELECT COUNT(*) FROM run_items x WHERE x.run_id = r.id) AS total,
             (SELECT COUNT(*) FROM run_items x WHERE x.run_id = r.id AND x.status = 'done') AS done,
             (SELECT COUNT(*) FROM run_items x WHERE x.run_id = r.id AND x.status = 'failed') AS failed
           FROM runs r WHERE r.status = 'done'`,
        )
        .all() as { id: string; total: number; done: number; failed: number }[];
      const reasons = db.prepare(`SELECT error, COUNT(*) AS n FROM run_items WHERE run_id = ? AND status = 'failed' GROUP BY error ORDER BY n DESC, MIN(ord) LIMIT 1`);
      const distinct = db.prepare(`SELECT COUNT(DISTINCT error) AS n FROM run_items WHERE run_id = ? AND status = 'failed'`);
      const update = db.prepare('UPDATE runs SET status = ?, error = ? WHERE id = ?');
      for (const r of runs) {
        if (r.failed === 0) continue;
        const top = (reasons.all(r.id) as { error: string | null }[])[0]?.error ?? 'no reason recorded';
        const others = (distinct.get(r.id) as { n: number }).n - 1;
        const error = `${r.failed} of ${r.total} items failed: ${top}${others > 0 ? ` (and ${others} other reason${others > 1 ? 's' : ''})` : ''}`;
        update.run(r.done === 0 ? 'failed' : 'partial', error, r.id);
      }
    },
  },
  {
    version: 5,
    name: 'run management: tags, notes, and soft delete (deleted_at) so a deleted run can be restored until it is purged',
    up(db) {
      db.exec(`
        ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN deleted_at TEXT;
        CREATE INDEX runs_deleted ON runs(deleted_at);
        CREATE INDEX tensors_by_blob ON tensors(blob);
      `);
    },
  },
];

export class MigrationError extends Error {}

/** Brings the database to the newest version; returns the versions applied. */
export function migrate(db: Database.Database, list: readonly Migration[] = migrations): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const current = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  const newest = list.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new MigrationError(`database schema is version ${current}, newer than this Loupe knows (${newest}); open it with a newer Loupe`);
  }
  const applied: number[] = [];
  for (const m of list) {
    if (m.version <= current) continue;
    const step = db.transaction(() => {
      m.up(db);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, new Date().toISOString());
      db.pragma(`user_version = ${m.version}`);
    });
    try {
      step();
    } catch (e) {
      throw new MigrationError(`migration ${m.version} (${m.name}) failed and was rolled back: ${(e as Error).message}`);
    }
    applied.push(m.version);
  }
  return applied;
}
