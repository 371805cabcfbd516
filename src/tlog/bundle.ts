/** C2SP tlog-tiles entry bundles: entries, each prefixed by its big-endian uint16 length. */
import { TlogError } from './errors.js';
import { TILE_WIDTH } from './tile.js';

/** The largest entry a bundle can hold. */
export const MAX_ENTRY_SIZE = 0xffff;

/** Encodes up to 256 entries as a bundle; throws `limit` for an entry over 65,535 bytes. */
export function formatEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  if (entries.length > TILE_WIDTH) {
    throw new TlogError(
      'limit',
      `an entry bundle holds at most 256 entries, got ${entries.length}`,
    );
  }
  let size = 0;
  for (const e of entries) {
    if (e.length > MAX_ENTRY_SIZE) {
      throw new TlogError('limit', `entry of ${e.length} bytes exceeds ${MAX_ENTRY_SIZE}`);
    }
    size += 2 + e.length;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const e of entries) {
    out.writeUInt16BE(e.length, at);
    out.set(e, at + 2);
    at += 2 + e.length;
  }
  return out;
}

/**
 * Decodes a bundle (attacker-controlled bytes): exactly `width` entries when given, at most 256,
 * no truncated entry and no trailing bytes. Entries are views into `data`.
 */
export function parseEntryBundle(data: Uint8Array, width?: number): Uint8Array[] {
  const entries: Uint8Array[] = [];
  let at = 0;
  while (at < data.length) {
    if (entries.length === TILE_WIDTH) {
      throw new TlogError('malformed', 'entry bundle has more than 256 entries');
    }
    if (at + 2 > data.length) throw new TlogError('malformed', 'entry bundle: truncated length');
    const length = ((data[at] as number) << 8) | (data[at + 1] as number);
    if (at + 2 + length > data.length) {
      throw new TlogError('malformed', `entry bundle: entry ${entries.length} is truncated`);
    }
    entries.push(data.subarray(at + 2, at + 2 + length));
    at += 2 + length;
  }
  if (width !== undefined && entries.length !== width) {
    throw new TlogError('malformed', `entry bundle has ${entries.length} entries, want ${width}`);
  }
  return entries;
}
