/** Opens the app database: WAL for crash safety and concurrent readers, foreign keys on, migrated. */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { migrate } from './migrations.ts';

export type Db = Database.Database;

export function openDatabase(file: string): Db {
  mkdirSync(dirname(file), { recursive: true });
  let db: Db;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    // NORMAL is durable across process crashes in WAL mode (only an OS crash can lose the last commit).
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db);
  } catch (e) {
    throw new LoupeError('storage', `cannot open the database ${file}: ${(e as Error).message}`);
  }
  return db;
}

export function json<T>(text: string | null): T {
  return (text === null ? null : JSON.parse(text)) as T;
}

export function now(): string {
  return new Date().toISOString();
}
