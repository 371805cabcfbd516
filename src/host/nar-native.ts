/**
 * The native NAR serialiser (`native/nar-serialise.c`, built by `npm run build` when a C
 * compiler is present): the same bytes as `writeNar(narSourceFromPath(path))`, without
 * JavaScript's cost per system call, which dominates for trees of many small files.
 */
import { createHash } from 'node:crypto';
import { getSystemErrorName } from 'node:util';
import { loadAddon } from '../crypto/index.js';
import { NixError, type NixErrorCode, type NarSummary, hashNarSource } from '../nix/index.js';
import { narSourceFromPath } from './nar-fs.js';

interface Addon {
  serialise(path: Buffer, buffer: Buffer, emit: (length: number) => void): void;
}

const addon = loadAddon('nar-serialise') as Addon | undefined;

/** Whether the native serialiser was built and loads. */
export const HAVE_NATIVE_NAR = addon !== undefined;

const NIX_CODES: ReadonlySet<string> = new Set<NixErrorCode>([
  'malformed',
  'mismatch',
  'unsupported',
  'limit',
]);
// 64 KiB: the bytes are hashed while still in the CPU's cache.
const BUFFER_BYTES = 64 * 1024;

/**
 * Serialises the tree at `path` natively, calling `emit` with each piece of the NAR in order.
 * The piece's memory is reused once `emit` returns: copy what must be kept. Throws what
 * `narSourceFromPath` and `writeNar` throw: `NixError` for a file that changed while read or an
 * unsupported file type, a system error (with `code`, e.g. `ENOENT`) otherwise.
 */
export function serialiseNative(path: string | Buffer, emit: (piece: Uint8Array) => void): void {
  if (addon === undefined) throw new Error('bug: the native NAR serialiser is not built');
  const buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  try {
    addon.serialise(Buffer.from(path), buffer, (length) => {
      emit(buffer.subarray(0, length));
    });
  } catch (e) {
    throw nodeError(e as NativeError);
  }
}

interface NativeError extends Error {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  path?: unknown;
}

/** The native serialiser's errors as Node's own: `NixError`s, and system errors by name. */
function nodeError(e: NativeError): Error {
  if (typeof e.code === 'string' && NIX_CODES.has(e.code))
    return new NixError(e.code as NixErrorCode, e.message);
  if (typeof e.errno !== 'number' || !Buffer.isBuffer(e.path)) return e;
  const code = getSystemErrorName(-e.errno);
  const path = e.path.toString();
  const message = `${code}: ${e.message.toLowerCase()}, ${String(e.syscall)} '${path}'`;
  return Object.assign(new Error(message), { code, errno: -e.errno, syscall: e.syscall, path });
}

/**
 * NAR hash and size of the tree at `path`, as `nix hash path` computes them: natively when the
 * serialiser was built, otherwise with `hashNarSource(narSourceFromPath(path))`.
 */
export function hashNarPath(path: string | Buffer): NarSummary {
  if (addon === undefined) return hashNarSource(narSourceFromPath(path));
  const hash = createHash('sha256');
  let narSize = 0;
  try {
    serialiseNative(path, (piece) => {
      hash.update(piece);
      narSize += piece.length;
    });
  } catch (e) {
    // A tree too deep for the native serialiser (2048 levels, or one file descriptor per level
    // beyond what the process may open): the JavaScript one holds none and decides.
    const code = (e as { code?: unknown }).code;
    if (code === 'limit' || code === 'EMFILE' || code === 'ENFILE')
      return hashNarSource(narSourceFromPath(path));
    throw e;
  }
  return { narHash: { algorithm: 'sha256', digest: hash.digest() }, narSize };
}
