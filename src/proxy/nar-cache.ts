/**
 * Verified NARs kept in memory, keyed by their NAR hash: a NAR goes in only after its bytes
 * hashed to the agreed hash, so any path whose agreed NarHash is the same gets the same bytes.
 * Least recently used NARs leave first once the byte budget is spent.
 */

/** One NAR may take at most this share of the budget, so small NARs are what stays. */
const ENTRY_SHARE = 16;

export class NarCache {
  private readonly nars = new Map<string, Buffer>();
  private used = 0;

  /** `maxBytes` 0 keeps nothing. */
  constructor(readonly maxBytes: number) {}

  /** Bytes held now. */
  get bytes(): number {
    return this.used;
  }

  /** Whether a NAR of `size` bytes would be kept (so it is worth collecting while streaming). */
  accepts(size: number): boolean {
    return this.maxBytes > 0 && size <= Math.floor(this.maxBytes / ENTRY_SHARE);
  }

  /** Whether the NAR is held (without making it the most recently used). */
  has(narHash: string): boolean {
    return this.nars.has(narHash);
  }

  get(narHash: string): Buffer | undefined {
    const nar = this.nars.get(narHash);
    if (nar !== undefined) {
      this.nars.delete(narHash);
      this.nars.set(narHash, nar);
    }
    return nar;
  }

  /** Keeps `nar`, whose bytes the caller verified against `narHash`. */
  put(narHash: string, nar: Buffer): void {
    if (!this.accepts(nar.length) || this.nars.has(narHash)) return;
    this.nars.set(narHash, nar);
    this.used += nar.length;
    for (const [key, old] of this.nars) {
      if (this.used <= this.maxBytes) break;
      this.nars.delete(key);
      this.used -= old.length;
    }
  }
}
