/**
 * Why a path does not reproduce: two builders' NARs for it, fetched from their caches, checked
 * against the answers their logs claim, and compared entry by entry (type, size, SHA-256 and
 * executable bit of each file, symlink targets), with a line diff for small text files. The
 * caches are not trusted: a NAR is used only when its hash and size are the claimed ones, and
 * every fetch is capped in bytes (compressed and decompressed) and time.
 */
import { createHash } from 'node:crypto';
import {
  MAX_NARINFO_SIZE,
  NarParser,
  confineNarUrl,
  decompress,
  encodeNix32,
  formatHash,
  parseNarInfo,
} from '../nix/index.js';
import { fetchBytes } from '../server/index.js';
import type { NarEntry, NarEntryDiff } from '../web/index.js';

/** Files up to this size that are valid UTF-8 without NUL bytes get a line diff. */
export const MAX_TEXT_DIFF_BYTES = 64 * 1024;
/** Lines compared at most per file (the diff is quadratic in them). */
const MAX_DIFF_LINES = 2000;
/** Entries listed at most per comparison. */
export const MAX_DIFF_ENTRIES = 200;

/** An archive entry, with the text of a small text file. */
export interface ListedEntry extends NarEntry {
  readonly text?: string;
}

/** Every entry of a NAR by path (`''` is the root), each file hashed as it streams by. */
export function listNar(nar: Uint8Array): Map<string, ListedEntry> {
  const entries = new Map<string, ListedEntry>();
  let file:
    | {
        path: string;
        executable: boolean;
        size: number;
        hash: ReturnType<typeof createHash>;
        head: Buffer[];
      }
    | undefined;
  const finish = () => {
    if (file === undefined) return;
    const head = Buffer.concat(file.head);
    const text = file.size <= MAX_TEXT_DIFF_BYTES && !head.includes(0) ? utf8(head) : undefined;
    entries.set(file.path, {
      type: 'regular',
      size: file.size,
      sha256: encodeNix32(file.hash.digest()),
      executable: file.executable,
      ...(text === undefined ? {} : { text }),
    });
    file = undefined;
  };
  const parser = new NarParser({
    directory(path) {
      finish();
      entries.set(path, { type: 'directory' });
    },
    file(path, executable, size) {
      finish();
      file = { path, executable, size, hash: createHash('sha256'), head: [] };
    },
    contents(chunk) {
      if (file === undefined) return;
      file.hash.update(chunk);
      if (file.size <= MAX_TEXT_DIFF_BYTES) file.head.push(Buffer.from(chunk));
    },
    symlink(path, target) {
      finish();
      entries.set(path, { type: 'symlink', target: utf8(Buffer.from(target)) ?? '(not UTF-8)' });
    },
  });
  parser.push(nar);
  parser.end();
  finish();
  return entries;
}

function utf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function sameEntry(a: NarEntry, b: NarEntry): boolean {
  return (
    a.type === b.type &&
    a.sha256 === b.sha256 &&
    a.executable === b.executable &&
    a.target === b.target
  );
}

function plain(entry: ListedEntry): NarEntry {
  const { type, size, sha256, executable, target } = entry;
  return {
    type,
    ...(size === undefined ? {} : { size }),
    ...(sha256 === undefined ? {} : { sha256 }),
    ...(executable === undefined ? {} : { executable }),
    ...(target === undefined ? {} : { target }),
  };
}

/** The entries that differ between two listings, in path order, at most `max` of them. */
export function diffListings(
  a: ReadonlyMap<string, ListedEntry>,
  b: ReadonlyMap<string, ListedEntry>,
  max = MAX_DIFF_ENTRIES,
): { entries: NarEntryDiff[]; truncated: boolean } {
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  const entries: NarEntryDiff[] = [];
  let truncated = false;
  for (const path of paths) {
    const x = a.get(path);
    const y = b.get(path);
    if (x !== undefined && y !== undefined && sameEntry(x, y)) continue;
    if (entries.length === max) {
      truncated = true;
      break;
    }
    const textDiff =
      x?.text !== undefined && y?.text !== undefined ? lineDiff(x.text, y.text) : undefined;
    entries.push({
      path,
      ...(x === undefined ? {} : { a: plain(x) }),
      ...(y === undefined ? {} : { b: plain(y) }),
      ...(textDiff === undefined ? {} : { textDiff }),
    });
  }
  return { entries, truncated };
}

/**
 * A line diff of two texts: common lines prefixed ' ', lines only in `a` '-', only in `b` '+'
 * (a longest common subsequence; past {@link MAX_DIFF_LINES} lines, the rest as one change).
 */
export function lineDiff(a: string, b: string): string[] {
  const x = a.split('\n');
  const y = b.split('\n');
  if (x[x.length - 1] === '' && y[y.length - 1] === '') {
    x.pop();
    y.pop();
  }
  if (x.length > MAX_DIFF_LINES || y.length > MAX_DIFF_LINES)
    return [...x.slice(0, 20).map((l) => `-${l}`), ...y.slice(0, 20).map((l) => `+${l}`), ' …'];
  // lcs[i][j]: the longest common subsequence of x[i…] and y[j…].
  const lcs = Array.from({ length: x.length + 1 }, () => new Uint16Array(y.length + 1));
  for (let i = x.length - 1; i >= 0; i--) {
    const row = lcs[i] as Uint16Array;
    const below = lcs[i + 1] as Uint16Array;
    for (let j = y.length - 1; j >= 0; j--)
      row[j] =
        x[i] === y[j]
          ? (below[j + 1] as number) + 1
          : Math.max(below[j] as number, row[j + 1] as number);
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      out.push(` ${x[i++] ?? ''}`);
      j++;
    } else if (
      j < y.length &&
      (i === x.length || (lcs[i]?.[j + 1] ?? 0) > (lcs[i + 1]?.[j] ?? 0))
    ) {
      out.push(`+${y[j++] ?? ''}`);
    } else {
      out.push(`-${x[i++] ?? ''}`);
    }
  }
  return out;
}

/**
 * Fetches the NAR a cache serves for a path and returns it only if it is the claimed one (NAR
 * hash and size); the narinfo's URL must stay on the cache ({@link confineNarUrl}).
 */
export async function fetchClaimedNar(
  cache: string,
  hashPart: string,
  claimed: { readonly narHash: string; readonly narSize: number },
  options: { readonly timeoutMs: number; readonly maxNarBytes: number },
): Promise<Buffer> {
  const base = cache.replace(/\/+$/, '');
  const info = parseNarInfo(
    (await fetchBytes(`${base}/${hashPart}.narinfo`, options.timeoutMs, MAX_NARINFO_SIZE)).toString(
      'utf8',
    ),
  );
  if (info.narSize !== claimed.narSize || formatHash(info.narHash) !== claimed.narHash)
    throw new Error('its narinfo names another NAR than the log claims');
  if (info.narSize > options.maxNarBytes)
    throw new Error(
      `the NAR is ${info.narSize} bytes, more than the ${options.maxNarBytes} compared at most`,
    );
  const file = await fetchBytes(
    confineNarUrl(base, info.url),
    options.timeoutMs,
    options.maxNarBytes,
  );
  const chunks: Uint8Array[] = [];
  for await (const chunk of decompress(info.compression, [file], { maxOutput: info.narSize }))
    chunks.push(chunk);
  const nar = Buffer.concat(chunks);
  const digest = `sha256:${encodeNix32(createHash('sha256').update(nar).digest())}`;
  if (nar.length !== claimed.narSize || digest !== claimed.narHash)
    throw new Error('the NAR it served is not the one the log claims');
  return nar;
}
