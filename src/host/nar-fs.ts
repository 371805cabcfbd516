/** NAR sources read from the local file system, with synchronous system calls (CLI use). */
import {
  type Dirent,
  type Stats,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
} from 'node:fs';
import { type NarSource, NixError } from '../nix/index.js';

const CHUNK = 1 << 20;
/** Files up to this size are read whole when their directory entry is visited. */
const SMALL_FILE = 64 * 1024;
const SLASH = Buffer.from('/');
// O_NONBLOCK: should a regular file be swapped for a FIFO meanwhile, opening it cannot hang.
const OPEN_FILE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Reads up to `size + 1` bytes from `fd` in chunks: asking for one byte more than expected
 * detects a file that grew while being read, without another read call (a regular file only
 * returns fewer bytes at its end).
 */
function* readChunks(fd: number, size: number): Generator<Uint8Array> {
  let left = size;
  for (;;) {
    const buffer = Buffer.allocUnsafe(Math.min(CHUNK, left + 1));
    const n = readSync(fd, buffer, 0, buffer.length, null);
    if (n === 0) return; // shrank or done: the writer checks the total against the size
    left -= n;
    yield buffer.subarray(0, n);
    if (left <= 0 && n < buffer.length) return;
  }
}

function* fileContents(path: Buffer, size: number): Generator<Uint8Array> {
  const fd = openSync(path, OPEN_FILE);
  try {
    // Opened without following a symlink; it must still be the regular file lstat saw.
    if (!fstatSync(fd).isFile())
      throw new NixError('unsupported', `${path.toString()} is not a regular file any more`);
    yield* readChunks(fd, size);
  } finally {
    closeSync(fd);
  }
}

function regular(st: Stats, contents: () => Iterable<Uint8Array>): NarSource {
  return { type: 'regular', executable: (st.mode & 0o100) !== 0, size: st.size, contents };
}

/**
 * A small regular file, read now: open (no symlink followed), fstat, one read, close — one
 * path lookup instead of the two of lstat and open. Undefined when it is not (or no longer) a
 * small regular file, so the caller looks again with lstat.
 */
function smallFile(path: Buffer): NarSource | undefined {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FILE);
  } catch {
    return undefined; // a symlink now (ELOOP), gone, or unreadable: lstat will tell
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > SMALL_FILE) return undefined;
    const chunks = [...readChunks(fd, st.size)];
    return regular(st, () => chunks);
  } finally {
    closeSync(fd);
  }
}

function directory(path: Buffer): NarSource {
  return {
    type: 'directory',
    *entries() {
      const list: Dirent<Buffer>[] = readdirSync(path, { encoding: 'buffer', withFileTypes: true });
      for (const entry of list) {
        const child = Buffer.concat([path, SLASH, entry.name]);
        // The entry's type as the directory lists it saves a stat; an entry that changed
        // since is still caught (readdir of a non-directory fails, and smallFile checks what
        // it opened).
        const node = entry.isDirectory()
          ? () => directory(child)
          : entry.isFile()
            ? () => smallFile(child) ?? narSourceFromPath(child)
            : () => narSourceFromPath(child);
        yield [entry.name, node] as const;
      }
    },
  };
}

/**
 * The tree at `path` as a {@link NarSource}: regular files (only the owner-execute bit kept),
 * symlinks (not followed) and directories; names are raw bytes, so any file name works. Other
 * file types are `NixError('unsupported')`, as in Nix.
 */
export function narSourceFromPath(path: string | Buffer): NarSource {
  const p = typeof path === 'string' ? Buffer.from(path) : path;
  const st = lstatSync(p);
  if (st.isFile()) return regular(st, () => fileContents(p, st.size));
  if (st.isSymbolicLink())
    return { type: 'symlink', target: readlinkSync(p, { encoding: 'buffer' }) };
  if (st.isDirectory()) return directory(p);
  throw new NixError('unsupported', `${p.toString()} is not a regular file, symlink or directory`);
}
