/** Model registry rows. Opening and validating a model folder is the engine's job (engine/model-folder.ts). */
import type { ModelInfo } from '../../../src-shared/contract/domain.ts';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { type Db, json, now } from '../database.ts';

interface Row {
  id: string;
  name: string;
  family: string;
  path: string;
  hash: string;
  bundled: number;
  config: string;
  added_at: string;
}

const toInfo = (r: Row): ModelInfo => ({ id: r.id, name: r.name, family: r.family, path: r.path, hash: r.hash, bundled: r.bundled === 1, addedAt: r.added_at, config: json(r.config) });

export class ModelsRepo {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  upsert(m: Omit<ModelInfo, 'addedAt'>): ModelInfo {
    this.db
      .prepare(
        `INSERT INTO models (id, name, family, path, hash, bundled, config, added_at) VALUES (@id, @name, @family, @path, @hash, @bundled, @config, @added_at)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, family = excluded.family, path = excluded.path, hash = excluded.hash, bundled = excluded.bundled, config = excluded.config`,
      )
      .run({ ...m, bundled: m.bundled ? 1 : 0, config: JSON.stringify(m.config), added_at: now() });
    return this.get(m.id);
  }

  list(): ModelInfo[] {
    return (this.db.prepare('SELECT * FROM models ORDER BY bundled DESC, name').all() as Row[]).map(toInfo);
  }

  get(id: string): ModelInfo {
    const row = this.db.prepare('SELECT * FROM models WHERE id = ?').get(id) as Row | undefined;
    if (!row) throw new LoupeError('not-found', `no model with id ${id}`);
    return toInfo(row);
  }
}
