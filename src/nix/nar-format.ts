/** The NAR wire format's shared pieces: string framing and the tokens of the grammar. */

/** `str(s)` = u64 little-endian length ‖ bytes ‖ zero padding to a multiple of 8. */
export function padding(length: number): number {
  return (8 - (length % 8)) % 8;
}

/** Frames `bytes` as a NAR string. */
export function narString(bytes: Uint8Array | string): Uint8Array {
  const data = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  const out = Buffer.alloc(8 + data.length + padding(data.length));
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.set(data, 8);
  return out;
}

/** The NAR magic string. */
export const NAR_MAGIC = 'nix-archive-1';

/** Longest directory entry name and symlink target accepted (Linux NAME_MAX·16, PATH_MAX). */
export const MAX_NAME_BYTES = 4096;
export const MAX_TARGET_BYTES = 4096;

/** Checks a directory entry name: not empty, `.` or `..`, no `/` and no NUL. */
export function validEntryName(name: Uint8Array): boolean {
  if (name.length === 0 || name.length > MAX_NAME_BYTES) return false;
  if (name.length <= 2 && name.every((c) => c === 0x2e)) return false;
  return !name.includes(0x2f) && !name.includes(0);
}
