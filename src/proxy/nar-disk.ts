/**
 * Verified NARs on disk, shared by every machine that uses the proxy: content-addressed by NAR
 * hash (`nar/<nix32 hash>.nar`), capped in bytes, least recently used out first, kept across
 * restarts. A NAR is written to `tmp/` as it downloads and moved to its name only once its
 * whole contents hashed to the agreed hash and reached the disk (fsync, then rename), so a
 * file under `nar/` is always a complete verified NAR: a crash or kill -9 leaves at most files
 * in `tmp/`, which the next start deletes.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { type FileHandle, open, rename, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../server/index.js';

const NAME = /^([0-9a-df-np-sv-z]{52})\.nar$/;

interface Entry {
  readonly size: number;
  lastUse: number;
}

/** How filling the cache with a NAR ended (the caller's download decides). */
export type FillOutcome<T> =
  | { readonly kind: 'ok'; readonly file: string; readonly result: T }
  | { readonly kind: 'not-stored'; readonly result: T };

export class NarDisk {
  private readonly entries = new Map<string, Entry>();
  private used = 0;

  /** Opens (creating) the cache in `dir`; `maxBytes` caps the NARs kept. */
  constructor(
    private readonly dir: string,
    readonly maxBytes: number,
    private readonly logger: Logger,
  ) {
    mkdirSync(join(dir, 'nar'), { recursive: true });
    // What a process that died left half written.
    rmSync(join(dir, 'tmp'), { recursive: true, force: true });
    mkdirSync(join(dir, 'tmp'));
    for (const name of readdirSync(join(dir, 'nar'))) {
      const hash = NAME.exec(name)?.[1];
      if (hash === undefined) continue;
      const stat = statSync(join(dir, 'nar', name));
      this.entries.set(`sha256:${hash}`, { size: stat.size, lastUse: stat.mtimeMs });
      this.used += stat.size;
    }
    this.evict();
  }

  /** Bytes of NARs kept. */
  get bytes(): number {
    return this.used;
  }

  /** Whether a NAR of `size` bytes can be kept. */
  accepts(size: number): boolean {
    return size <= this.maxBytes;
  }

  private file(narHash: string): string {
    return join(this.dir, 'nar', `${narHash.slice('sha256:'.length)}.nar`);
  }

  /** The file of a kept NAR of that hash and size (now the most recently used), if any. */
  lookup(narHash: string, narSize: number): string | undefined {
    const entry = this.entries.get(narHash);
    if (entry?.size !== narSize) return undefined;
    entry.lastUse = Date.now();
    const file = this.file(narHash);
    // The time of last use survives a restart as the file's mtime.
    const now = new Date(entry.lastUse);
    utimes(file, now, now).catch(() => undefined);
    return file;
  }

  /** Whether a NAR of that hash (and size) is kept; it does not count as a use. */
  has(narHash: string, narSize?: number): boolean {
    const entry = this.entries.get(narHash);
    return entry !== undefined && (narSize === undefined || entry.size === narSize);
  }

  /** Forgets a kept NAR whose file turned out to be gone. */
  forget(narHash: string): void {
    const entry = this.entries.get(narHash);
    if (entry === undefined) return;
    this.entries.delete(narHash);
    this.used -= entry.size;
  }

  /**
   * Fills the cache with the NAR of `narHash`: `download` writes its bytes through `write` (the
   * bytes it checks as they come) and `verified` says from its result whether they were the
   * agreed NAR; only then is the file kept.
   */
  async fill<T>(
    narHash: string,
    narSize: number,
    download: (write: (chunk: Uint8Array) => Promise<void>) => Promise<T>,
    verified: (result: T) => boolean,
  ): Promise<FillOutcome<T>> {
    const tmp = join(this.dir, 'tmp', randomBytes(12).toString('hex'));
    let handle: FileHandle | undefined = await open(tmp, 'wx', 0o644);
    let stored = false;
    try {
      let written = 0;
      const result = await download(async (chunk) => {
        written += chunk.length;
        // The NAR is checked as it comes; bytes past its size are never written.
        if (written > narSize) throw new Error(`more than ${narSize} bytes`);
        await handle?.write(chunk);
      });
      if (!verified(result) || written !== narSize) return { kind: 'not-stored', result };
      await handle.sync();
      await handle.close();
      handle = undefined;
      const file = this.file(narHash);
      await rename(tmp, file);
      stored = true;
      if (!this.entries.has(narHash)) {
        this.entries.set(narHash, { size: narSize, lastUse: Date.now() });
        this.used += narSize;
      }
      this.evict(narHash);
      return { kind: 'ok', file, result };
    } finally {
      await handle?.close().catch(() => undefined);
      if (!stored) await unlink(tmp).catch(() => undefined);
    }
  }

  /** Removes least recently used NARs until the cap holds (never `keep`, just stored). */
  private evict(keep?: string): void {
    if (this.used <= this.maxBytes) return;
    const byUse = [...this.entries].sort((a, b) => a[1].lastUse - b[1].lastUse);
    for (const [narHash, entry] of byUse) {
      if (this.used <= this.maxBytes) break;
      if (narHash === keep) continue;
      this.entries.delete(narHash);
      this.used -= entry.size;
      // A response reading the file keeps its open handle; the name goes now (one quick call,
      // so that the cap holds when this returns).
      try {
        rmSync(this.file(narHash), { force: true });
      } catch (error) {
        this.logger.warn('could not remove a NAR from the disk cache', { narHash, error });
      }
    }
  }
}
