/**
 * Reading the local Nix store's valid paths from Nix's own database (`db.sqlite`: tables
 * `ValidPaths` and `Refs`), read-only: never created, never written, and a database busy with
 * Nix's writes is waited for. Each row is checked as it is read: a path outside the store
 * directory, a hash Nix would not write or a missing NAR size is an error naming the row.
 */
import Database from 'better-sqlite3';
import { formatHash, parseHash, parseStorePath } from '../nix/index.js';
import type { LocalPath } from './classify.js';
import { AuditError } from './errors.js';

/** Where Nix keeps its database in a default installation. */
export const NIX_DB_PATH = '/nix/var/nix/db/db.sqlite';

/** How long a read waits for Nix to finish writing (SQLite's busy timeout). */
const BUSY_TIMEOUT_MS = 30_000;

interface PathRow {
  id: number;
  path: string;
  hash: unknown;
  narSize: unknown;
  deriver: string | null;
}

/** The valid paths of a Nix store, read from its database. */
export class NixStoreDb {
  private constructor(
    private readonly db: Database.Database,
    private readonly dbPath: string,
    private readonly storeDir: string,
  ) {}

  /** Opens Nix's database at `path` read-only; throws an AuditError when it cannot be read. */
  static open(path: string, storeDir: string): NixStoreDb {
    let db: Database.Database;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
      // A file that is not a Nix database fails here, not halfway through the walk.
      db.prepare('SELECT id, path, hash, narSize, deriver FROM ValidPaths LIMIT 0').all();
      db.prepare('SELECT referrer, reference FROM Refs LIMIT 0').all();
    } catch (cause) {
      throw new AuditError(
        'store-unreadable',
        `cannot read the Nix database ${path}: ${(cause as Error).message}`,
        { cause },
      );
    }
    return new NixStoreDb(db, path, storeDir);
  }

  /** Runs a read in one transaction (one consistent snapshot), errors named by the database. */
  private read<T>(what: string, fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (cause) {
      if (cause instanceof AuditError) throw cause;
      throw new AuditError(
        'store-unreadable',
        `cannot read ${what} from ${this.dbPath}: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  /** How many valid paths the store has. */
  count(): number {
    return (
      this.read('the number of valid paths', () =>
        this.db.prepare<[], number>('SELECT count(*) FROM ValidPaths').pluck().get(),
      ) ?? 0
    );
  }

  /**
   * The valid paths in pages of at most `size`, in the order Nix registered them. Each page is
   * one snapshot; a path deleted between pages is not seen, one added after the walk passed is
   * not either.
   */
  *pages(size: number): Generator<LocalPath[]> {
    const page = this.db.prepare<[number, number], PathRow>(
      'SELECT id, path, hash, narSize, deriver FROM ValidPaths WHERE id > ? ORDER BY id LIMIT ?',
    );
    const refs = this.db.prepare<[number, number], { referrer: number; path: string }>(
      'SELECT r.referrer AS referrer, v.path AS path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer BETWEEN ? AND ?',
    );
    let after = 0;
    for (;;) {
      const found = this.read('valid paths', () => {
        const rows = page.all(after, size);
        const first = rows[0];
        const last = rows.at(-1);
        if (first === undefined || last === undefined) return [];
        return this.withReferences(rows, refs.all(first.id, last.id));
      });
      if (found.length === 0) return;
      after = found.at(-1)?.id ?? after;
      yield found.map((f) => f.local);
    }
  }

  /**
   * The store's records of `paths` (full store paths); `missing` lists those that are not
   * valid paths of the store.
   */
  lookup(paths: readonly string[]): { found: LocalPath[]; missing: string[] } {
    const one = this.db.prepare<[string], PathRow>(
      'SELECT id, path, hash, narSize, deriver FROM ValidPaths WHERE path = ?',
    );
    const refs = this.db.prepare<[number, number], { referrer: number; path: string }>(
      'SELECT r.referrer AS referrer, v.path AS path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer BETWEEN ? AND ?',
    );
    return this.read('valid paths', () => {
      const found: LocalPath[] = [];
      const missing: string[] = [];
      for (const path of paths) {
        const row = one.get(path);
        if (row === undefined) missing.push(path);
        else
          found.push(...this.withReferences([row], refs.all(row.id, row.id)).map((f) => f.local));
      }
      return { found, missing };
    });
  }

  /** Checks each row and joins it with its references. */
  private withReferences(
    rows: readonly PathRow[],
    refs: readonly { referrer: number; path: string }[],
  ): { id: number; local: LocalPath }[] {
    const byReferrer = new Map<number, string[]>();
    for (const r of refs) {
      const base = this.baseName(r.path, `a reference of row ${r.referrer}`);
      const list = byReferrer.get(r.referrer);
      if (list === undefined) byReferrer.set(r.referrer, [base]);
      else list.push(base);
    }
    return rows.map((row) => ({ id: row.id, local: this.localPath(row, byReferrer.get(row.id)) }));
  }

  private baseName(path: string, what: string): string {
    try {
      return parseStorePath(path, this.storeDir).baseName;
    } catch (cause) {
      throw new AuditError(
        'store-malformed',
        `${this.dbPath}: ${what}: ${(cause as Error).message} (is store-dir right?)`,
        { cause },
      );
    }
  }

  private localPath(row: PathRow, refs: readonly string[] = []): LocalPath {
    const at = `ValidPaths row ${row.id}`;
    if (typeof row.path !== 'string') throw new AuditError('store-malformed', `${at}: no path`);
    const storePath = parseStorePathOrThrow(row.path, this.storeDir, `${this.dbPath}: ${at}`);
    let narHash: string;
    try {
      if (typeof row.hash !== 'string') throw new Error('no hash');
      narHash = formatHash(parseHash(row.hash));
    } catch (cause) {
      throw new AuditError(
        'store-malformed',
        `${this.dbPath}: ${at} (${row.path}): ${(cause as Error).message}`,
        { cause },
      );
    }
    if (typeof row.narSize !== 'number' || !Number.isSafeInteger(row.narSize) || row.narSize < 0)
      throw new AuditError(
        'store-malformed',
        `${this.dbPath}: ${at} (${row.path}): no valid NAR size`,
      );
    let deriver: string | undefined;
    if (typeof row.deriver === 'string' && row.deriver !== '') {
      // Informative only (the rebuild advice): a deriver Nix recorded oddly is left out.
      try {
        deriver = `${this.storeDir}/${parseStorePath(row.deriver, this.storeDir).baseName}`;
      } catch {
        deriver = undefined;
      }
    }
    return {
      path: row.path,
      hashPart: storePath.hashPart,
      narHash,
      narSize: row.narSize,
      references: [...refs].sort(),
      ...(deriver === undefined ? {} : { deriver }),
    };
  }

  close(): void {
    this.db.close();
  }
}

function parseStorePathOrThrow(path: string, storeDir: string, at: string) {
  try {
    return parseStorePath(path, storeDir);
  } catch (cause) {
    throw new AuditError(
      'store-malformed',
      `${at}: ${(cause as Error).message} (is store-dir right?)`,
      { cause },
    );
  }
}
