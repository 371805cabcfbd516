import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import {
  type NarSource,
  encodeNix32,
  formatNarInfo,
  parseHash,
  parseStorePath,
  writeNar,
} from '../nix/index.js';
import { MAX_DIFF_ENTRIES, diffListings, fetchClaimedNar, lineDiff, listNar } from './nar-diff.js';

const file = (text: string, executable = false): NarSource => {
  const data = Buffer.from(text);
  return { type: 'regular', executable, size: data.length, contents: () => [data] };
};
const dir = (entries: Record<string, NarSource>): NarSource => ({
  type: 'directory',
  entries: () =>
    Object.entries(entries).map(([name, node]) => [Buffer.from(name), () => node] as const),
});
const xzSync = (data: Buffer) => execFileSync('xz', ['-c'], { input: data, maxBuffer: 1 << 30 });
const nar = (source: NarSource) => Buffer.concat([...writeNar(source)]);
const nix32 = (data: Uint8Array) => encodeNix32(createHash('sha256').update(data).digest());

describe('listNar()', () => {
  test('lists every entry with its type, size, digest, executable bit and small texts', () => {
    const entries = listNar(
      nar(
        dir({
          bin: dir({ hello: file('#!/bin/sh\necho hi\n', true) }),
          data: file('\0binary'),
          link: { type: 'symlink', target: Buffer.from('bin/hello') },
        }),
      ),
    );
    expect([...entries.keys()]).toEqual(['', 'bin', 'bin/hello', 'data', 'link']);
    expect(entries.get('bin/hello')).toEqual({
      type: 'regular',
      size: 18,
      sha256: nix32(Buffer.from('#!/bin/sh\necho hi\n')),
      executable: true,
      text: '#!/bin/sh\necho hi\n',
    });
    expect(entries.get('data')?.text).toBeUndefined();
    expect(entries.get('link')).toEqual({ type: 'symlink', target: 'bin/hello' });
  });

  test('refuses an archive that is not a valid NAR', () => {
    const bytes = nar(file('x'));
    expect(() => listNar(bytes.subarray(0, bytes.length - 8))).toThrow(/truncated/);
  });
});

describe('diffListings()', () => {
  const a = listNar(
    nar(dir({ same: file('1'), changed: file('a\nb\n'), gone: file('x'), mode: file('m') })),
  );
  const b = listNar(
    nar(dir({ same: file('1'), changed: file('a\nc\n'), added: file('y'), mode: file('m', true) })),
  );

  test('names each entry that differs, with a line diff of small texts, and nothing else', () => {
    const { entries, truncated } = diffListings(a, b);
    expect(truncated).toBe(false);
    expect(entries.map((e) => e.path)).toEqual(['added', 'changed', 'gone', 'mode']);
    expect(entries[0]?.a).toBeUndefined();
    expect(entries[2]?.b).toBeUndefined();
    expect(entries[1]?.textDiff).toEqual([' a', '-b', '+c']);
    expect(entries[3]?.a?.executable).toBe(false);
    expect(entries[3]?.b?.executable).toBe(true);
    expect(JSON.stringify(entries)).not.toContain('"text"');
  });

  test('lists at most the limit and says there were more', () => {
    const many = (n: number, v: string) =>
      listNar(
        nar(dir(Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, file(v)])))),
      );
    const { entries, truncated } = diffListings(
      many(MAX_DIFF_ENTRIES + 1, 'a'),
      many(MAX_DIFF_ENTRIES + 1, 'b'),
    );
    expect(entries).toHaveLength(MAX_DIFF_ENTRIES);
    expect(truncated).toBe(true);
    expect(diffListings(many(MAX_DIFF_ENTRIES, 'a'), many(MAX_DIFF_ENTRIES, 'b')).truncated).toBe(
      false,
    );
  });
});

describe('lineDiff()', () => {
  test('keeps common lines and marks the changed ones, deletions first', () => {
    expect(lineDiff('a\nb\nc\n', 'a\nx\nc\n')).toEqual([' a', '-b', '+x', ' c']);
    expect(lineDiff('', 'new\n')).toEqual(['+new']);
    expect(lineDiff('same\n', 'same\n')).toEqual([' same']);
  });

  test('stays bounded on long texts', () => {
    const long = Array.from({ length: 5000 }, (_, i) => `${i}`).join('\n');
    expect(lineDiff(long, `${long}x`).length).toBeLessThanOrEqual(41);
  });
});

describe('fetchClaimedNar()', () => {
  const honest = nar(dir({ README: file('hello\n') }));
  const other = nar(dir({ README: file('HELLO\n') }));
  const hashPart = '0'.repeat(31) + '1';
  const claimed = { narHash: `sha256:${nix32(honest)}`, narSize: honest.length };
  const options = { timeoutMs: 5000, maxNarBytes: 1 << 20 };

  /** A file:// cache whose narinfo says `info` and whose NAR file holds `bytes`. */
  function cache(
    bytes: Buffer,
    info: { narHash?: string; narSize?: number; url?: string; compression?: string } = {},
  ) {
    const root = mkdtempSync(join(tmpdir(), 'accord-diff-cache-'));
    mkdirSync(join(root, 'nar'));
    writeFileSync(join(root, 'nar', 'x.nar'), bytes);
    writeFileSync(
      join(root, `${hashPart}.narinfo`),
      formatNarInfo({
        storePath: parseStorePath(`/nix/store/${hashPart}-demo`),
        url: info.url ?? 'nar/x.nar',
        compression: info.compression ?? 'none',
        narHash: parseHash(info.narHash ?? claimed.narHash),
        narSize: info.narSize ?? claimed.narSize,
        references: [],
        sigs: [],
      }),
    );
    return `file://${root}`;
  }

  test('returns the NAR when it is the claimed one, also compressed', async () => {
    expect(await fetchClaimedNar(cache(honest), hashPart, claimed, options)).toEqual(honest);
    const xz = cache(xzSync(honest), { compression: 'xz' });
    expect(await fetchClaimedNar(xz, hashPart, claimed, options)).toEqual(honest);
  });

  test('refuses other bytes under the claimed hash, a narinfo naming another NAR, and a URL off the cache', async () => {
    await expect(fetchClaimedNar(cache(other), hashPart, claimed, options)).rejects.toThrow(
      /not the one the log claims/,
    );
    const named = cache(other, { narHash: `sha256:${nix32(other)}` });
    await expect(fetchClaimedNar(named, hashPart, claimed, options)).rejects.toThrow(/another NAR/);
    const away = cache(honest, { url: '../../etc/passwd' });
    await expect(fetchClaimedNar(away, hashPart, claimed, options)).rejects.toThrow(/outside/);
  });

  test('stops decompressing at the claimed size (a bomb is not expanded)', async () => {
    const bomb = cache(xzSync(Buffer.alloc(64 << 20)), { compression: 'xz' });
    await expect(fetchClaimedNar(bomb, hashPart, claimed, options)).rejects.toThrow(/exceeds/);
  });

  test('refuses a NAR larger than it compares', async () => {
    await expect(
      fetchClaimedNar(cache(honest), hashPart, claimed, {
        ...options,
        maxNarBytes: honest.length - 1,
      }),
    ).rejects.toThrow(/more than/);
  });
});
