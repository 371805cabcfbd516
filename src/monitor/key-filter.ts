/**
 * A Bloom filter of the path keys in one run of the claim index, kept in memory: a lookup asks
 * only the runs that may hold its key (a path's claims are mostly in one run), instead of a
 * SQLite query in every run. Keys are 48-bit prefixes of a keyed SHA-256, so their bits are
 * already uniform: the positions come from the key itself by double hashing. It never says
 * "absent" for a key it was given; about 1% of absent keys are "maybe".
 */

/** Bits per key (10 bits and 7 probes: about 0.8% false positives). */
const BITS_PER_KEY = 10;
const PROBES = 7;

export class KeyFilter {
  private readonly bits: Uint32Array;
  private readonly size: number;

  /** A filter for about `keys` keys. */
  constructor(keys: number) {
    this.size = Math.max(64, keys * BITS_PER_KEY);
    this.bits = new Uint32Array(Math.ceil(this.size / 32));
  }

  private *positions(key: number): Generator<number> {
    // The 48-bit key as two halves: a start and a step (odd, so every position is reached).
    const low = key % 0x1000000;
    const high = Math.floor(key / 0x1000000);
    const step = (high * 2 + 1) % this.size;
    let at = low % this.size;
    for (let i = 0; i < PROBES; i++) {
      yield at;
      at = (at + step) % this.size;
    }
  }

  add(key: number): void {
    for (const p of this.positions(key))
      this.bits[p >>> 5] = (this.bits[p >>> 5] ?? 0) | (1 << (p & 31));
  }

  /** False only when `key` was never added. */
  mayHold(key: number): boolean {
    for (const p of this.positions(key))
      if (((this.bits[p >>> 5] ?? 0) & (1 << (p & 31))) === 0) return false;
    return true;
  }
}
