import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MigrationError, migrate, migrations } from '../../../src-main/store/migrations.ts';

const tables = (db: Database.Database) => (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);

describe('migrations', () => {
  it('creates every table and records the version once', () => {
    const db = new Database(':memory:');
    expect(migrate(db)).toEqual(migrations.map((m) => m.version));
    expect(tables(db)).toEqual(expect.arrayContaining(['models', 'datasets', 'items', 'labels', 'runs', 'run_items', 'results', 'tensors', 'schema_migrations']));
    expect(db.pragma('user_version', { simple: true })).toBe(migrations.at(-1)!.version);
    expect(migrate(db)).toEqual([]);
  });

  it('rolls back a failing migration and names it', () => {
    const db = new Database(':memory:');
    const broken = [
      ...migrations,
      {
        version: 99,
        name: 'add a table then fail',
        up: (d: Database.Database) => {
          d.exec('CREATE TABLE half_done (x)');
          d.exec('THIS IS NOT SQL');
        },
      },
    ];
    expect(() => migrate(db, broken)).toThrow(/migration 99 \(add a table then fail\) failed and was rolled back/);
    expect(tables(db)).not.toContain('half_done');
    expect(db.pragma('user_version', { simple: true })).toBe(migrations.at(-1)!.version);
  });

  it('refuses a database from a newer version of the app', () => {
    const db = new Database(':memory:');
    migrate(db);
    db.prepare('INSERT INTO schema_migrations VALUES (500, ?, ?)').run('future', 'x');
    expect(() => migrate(db)).toThrow(MigrationError);
  });
});
