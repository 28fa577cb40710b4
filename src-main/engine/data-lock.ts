/**
 * One engine per data folder. Two engines on one folder both resume the same runs and compute
 * every item twice (issue 23 item 8), so `Engine.start` takes this lock before it opens the store.
 *
 * Why an SQLite lock and not a pid file: the lock is the kernel's (POSIX `fcntl` byte-range locks on
 * Linux/macOS, `LockFileEx` on Windows), taken by SQLite on `<data>/engine.lock` in exclusive
 * locking mode. The kernel drops it when the holder exits in any way — kill -9, a crash, power loss
 * — so there is no stale lock to detect, and no pid-liveness check that a reused pid could fool.
 * An O_EXCL pid file needs both; Node has no `flock`. Caveat: locks on network filesystems (NFS,
 * SMB) are only as good as their lock daemons; keep the data folder on a local disk.
 *
 * The lock file cannot be read while it is held, so the holder also writes who it is (pid, host,
 * command, since) to `<data>/engine.lock.json`; a second engine names that holder in its error.
 * That file is informational only — the kernel lock decides — and a leftover one (from a killed
 * holder) is simply overwritten by the next engine, which reports that it took over.
 */
import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { writeFileAtomicSync } from '../util/atomic-write.ts';

export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export const LOCK_FILE = 'engine.lock';
export const HOLDER_FILE = 'engine.lock.json';

function readHolder(dataDir: string): LockHolder | null {
  try {
    return JSON.parse(readFileSync(join(dataDir, HOLDER_FILE), 'utf8')) as LockHolder;
  } catch {
    return null;
  }
}

const describe = (h: LockHolder) => `pid ${h.pid} on ${h.host}, running \`${h.command}\` since ${h.since}`;

export class DataLock {
  readonly dataDir: string;
  /** The holder info a previous engine left behind without releasing (it was killed or crashed), if any. */
  readonly tookOverFrom: LockHolder | null;
  private db: Database.Database | null;

  private constructor(dataDir: string, db: Database.Database, tookOverFrom: LockHolder | null) {
    this.dataDir = dataDir;
    this.db = db;
    this.tookOverFrom = tookOverFrom;
  }

  /** Takes the data folder's lock or throws `conflict` naming the engine that holds it. */
  static acquire(dataDir: string): DataLock {
    mkdirSync(dataDir, { recursive: true });
    // timeout 0: never wait for the holder — a second engine must fail at once, not hang.
    const db = new Database(join(dataDir, LOCK_FILE), { timeout: 0 });
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      // Nothing is ever written; keep SQLite from leaving an `engine.lock-journal` beside it.
      db.pragma('journal_mode = MEMORY');
      // BEGIN EXCLUSIVE takes the exclusive lock; in exclusive locking mode SQLite keeps it after
      // COMMIT until the connection closes. Nothing is written, so this works on a full disk too.
      db.exec('BEGIN EXCLUSIVE');
      db.exec('COMMIT');
    } catch (e) {
      db.close();
      const code = (e as { code?: string }).code ?? '';
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
        const holder = readHolder(dataDir);
        throw new LoupeError(
          'conflict',
          `the data folder ${dataDir} is in use by another Loupe engine (${holder ? describe(holder) : 'holder unknown: it has not written ' + HOLDER_FILE + ' yet'}); ` +
            'stop that one first, or give this one another data folder (--data-dir or LOUPE_DATA_DIR)',
          { dataDir, holder },
        );
      }
      throw new LoupeError('storage', `cannot lock the data folder ${dataDir} (${join(dataDir, LOCK_FILE)}): ${(e as Error).message}`);
    }
    const previous = readHolder(dataDir);
    const me: LockHolder = { pid: process.pid, host: hostname(), command: redactCommand(process.argv), since: new Date().toISOString() };
    try {
      writeFileAtomicSync(join(dataDir, HOLDER_FILE), `${JSON.stringify(me)}\n`);
    } catch {
      // Informational only (e.g. the disk is full): the lock itself is held; a rival just cannot name us.
    }
    return new DataLock(dataDir, db, previous);
  }

  /** Who holds the lock now, as written by the holder (null if unknown). */
  static holder(dataDir: string): LockHolder | null {
    return readHolder(dataDir);
  }

  get held(): boolean {
    return this.db !== null;
  }

  /** Releases the lock (idempotent). The holder file goes first, so a rival never reads us after we let go. */
  release(): void {
    if (!this.db) return;
    const mine = readHolder(this.dataDir);
    if (mine?.pid === process.pid) rmSync(join(this.dataDir, HOLDER_FILE), { force: true });
    this.db.close();
    this.db = null;
  }
}

export { describe as describeHolder };

/**
 * The command line as recorded in engine.lock.json and shown to a second engine: secrets on it
 * (a queue URL's password, a serve token) are replaced by *** — the file is readable by anyone who
 * can read the data folder, and the message goes to logs.
 */
export function redactCommand(argv: readonly string[]): string {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@\s/]*@/gi, '$1***@');
    const flag = /^--(token|password)(=.*)?$/.exec(a);
    if (flag?.[2] !== undefined) out.push(`--${flag[1]}=***`);
    else if (flag) {
      out.push(a);
      if (i + 1 < argv.length) {
        out.push('***');
        i++;
      }
    } else out.push(a);
  }
  return out.join(' ');
}
