/** NAR sources read from the local file system, with synchronous system calls (CLI use). */
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { type NarSource, NixError } from '../nix/index.js';

const CHUNK = 1 << 20;
const SLASH = Buffer.from('/');

function* fileContents(path: Buffer, size: number): Generator<Uint8Array> {
  const fd = openSync(path, 'r');
  try {
    let left = size;
    for (;;) {
      // Asking for one byte more than expected detects a file that grew while being read,
      // without another read call: a regular file only returns fewer bytes at its end.
      const buffer = Buffer.allocUnsafe(Math.min(CHUNK, left + 1));
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) return; // shrank or done: the writer checks the total against the size
      left -= n;
      yield buffer.subarray(0, n);
      if (left <= 0 && n < buffer.length) return;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The tree at `path` as a {@link NarSource}: regular files (only the owner-execute bit kept),
 * symlinks (not followed) and directories; names are raw bytes, so any file name works. Other
 * file types are `NixError('unsupported')`, as in Nix.
 */
export function narSourceFromPath(path: string | Buffer): NarSource {
  const p = typeof path === 'string' ? Buffer.from(path) : path;
  const st = lstatSync(p);
  if (st.isFile()) {
    const size = st.size;
    return {
      type: 'regular',
      executable: (st.mode & 0o100) !== 0,
      size,
      contents: () => fileContents(p, size),
    };
  }
  if (st.isSymbolicLink())
    return { type: 'symlink', target: readlinkSync(p, { encoding: 'buffer' }) };
  if (st.isDirectory()) {
    return {
      type: 'directory',
      *entries() {
        for (const name of readdirSync(p, { encoding: 'buffer' })) {
          yield [name, () => narSourceFromPath(Buffer.concat([p, SLASH, name]))] as const;
        }
      },
    };
  }
  throw new NixError('unsupported', `${p.toString()} is not a regular file, symlink or directory`);
}
