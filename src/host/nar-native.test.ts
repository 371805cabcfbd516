import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { NixError, hashNarSource, writeNar } from '../nix/index.js';
import { requireAvailable, shouldRun } from '../../test/support/requirements.js';
import { ODD_NAMES, writeRandomTree } from '../../test/support/trees.js';
import { narSourceFromPath } from './nar-fs.js';
import { HAVE_NATIVE_NAR, hashNarPath, serialiseNative } from './nar-native.js';

function nativeBytes(path: string | Buffer): Buffer {
  const pieces: Buffer[] = [];
  serialiseNative(path, (piece) => pieces.push(Buffer.from(piece)));
  return Buffer.concat(pieces);
}

function javascriptBytes(path: string | Buffer): Buffer {
  return Buffer.concat([...writeNar(narSourceFromPath(path))]);
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe.runIf(shouldRun(HAVE_NATIVE_NAR))('serialiseNative()', () => {
  const base = mkdtempSync(join(tmpdir(), 'accord-nar-native-'));
  beforeAll(() => {
    requireAvailable(HAVE_NATIVE_NAR, 'the native NAR serialiser (npm run build, with cc)');
  });
  afterAll(() => execFileSync('rm', ['-rf', base]));

  test.each(Array.from({ length: 40 }, (_, i) => i + 1))(
    'gives the JavaScript serialiser’s bytes for random tree %i',
    (seed) => {
      const root = join(base, `random-${seed}`);
      writeRandomTree(root, seed, 120);
      expect(nativeBytes(root).equals(javascriptBytes(root))).toBe(true);
    },
  );

  test('gives the same bytes for odd names, a file spanning many buffers and a deep tree', () => {
    const root = join(base, 'mixed');
    mkdirSync(root);
    for (const [i, name] of ODD_NAMES.entries())
      writeFileSync(Buffer.concat([Buffer.from(`${root}/`), name]), Buffer.alloc(i * 1000, i));
    writeFileSync(join(root, 'big'), Buffer.alloc(1_000_003, 5));
    let deep = join(root, 'deep');
    for (let i = 0; i < 200; i++) deep = join(deep, 'd');
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'leaf'), 'leaf');
    expect(nativeBytes(root).equals(javascriptBytes(root))).toBe(true);
    expect(hashNarPath(root)).toEqual(hashNarSource(narSourceFromPath(root)));
  });

  test('archives a root that is a file, a symlink or an empty directory', () => {
    const file = join(base, 'root-file');
    writeFileSync(file, 'contents');
    const link = join(base, 'root-link');
    symlinkSync('/nowhere', link);
    const empty = join(base, 'root-empty');
    mkdirSync(empty);
    for (const path of [file, link, empty])
      expect(nativeBytes(path).equals(javascriptBytes(path))).toBe(true);
  });

  test('rejects a FIFO, at the root or inside a tree, as unsupported', () => {
    const dir = join(base, 'with-fifo');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a'), 'a');
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    const fds = openFds();
    for (const path of [dir, join(dir, 'pipe')]) {
      const error = thrown(() => nativeBytes(path));
      expect(error).toBeInstanceOf(NixError);
      expect((error as NixError).code).toBe('unsupported');
      expect((error as NixError).message).toContain(`${dir}/pipe is not a regular file`);
    }
    expect(openFds()).toBe(fds);
  });

  test('rejects a file that does not hold the bytes its size says (it changed)', () => {
    // /proc files say size 0 and hold more: to a reader, a file that grew.
    expect(() => nativeBytes('/proc/self/status')).toThrow(
      expect.objectContaining({ name: 'NixError', code: 'mismatch' }),
    );
    expect(() => javascriptBytes('/proc/self/status')).toThrow(
      expect.objectContaining({ name: 'NixError', code: 'mismatch' }),
    );
  });

  test('reports a missing path with its errno code and the path', () => {
    const missing = join(base, 'missing');
    expect(() => nativeBytes(missing)).toThrow(
      `ENOENT: no such file or directory, lstat '${missing}'`,
    );
    expect(() => nativeBytes(missing)).toThrow(
      expect.objectContaining({ code: 'ENOENT', errno: -2, syscall: 'lstat', path: missing }),
    );
  });

  test('stops at an exception thrown by emit, with every file closed', () => {
    const root = join(base, 'stop');
    writeRandomTree(root, 7, 120);
    for (let i = 0; i < 8; i++) writeFileSync(join(root, `big-${i}`), Buffer.alloc(100_000, i));
    const fds = openFds();
    let calls = 0;
    expect(() =>
      serialiseNative(root, () => {
        if (++calls === 1) throw new Error('reader went away');
      }),
    ).toThrow('reader went away');
    expect(calls).toBe(1);
    expect(openFds()).toBe(fds);
  });

  test('refuses a tree nested deeper than 2048 directories, without crashing', () => {
    const root = join(base, 'deepest');
    mkdirSync(root);
    // Made by relative steps: the full path is longer than the system's path limit.
    const script = `const fs = require('fs');
      for (let i = 0; i < 2100; i++) { fs.mkdirSync('d'); process.chdir('d'); }`;
    execFileSync(process.execPath, ['-e', script], { cwd: root });
    expect(() => nativeBytes(root)).toThrow(
      expect.objectContaining({ name: 'NixError', code: 'limit' }),
    );
    // hashNarPath then lets the JavaScript serialiser decide, which fails on the path length.
    const javascript = thrown(() => javascriptBytes(root)) as { code?: string };
    expect(javascript.code).toBe('ENAMETOOLONG');
    expect(() => hashNarPath(root)).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
  });

  test('refuses an emit that takes the buffer away', () => {
    const root = join(base, 'taken');
    mkdirSync(root);
    writeFileSync(join(root, 'big'), Buffer.alloc(200_000, 1));
    expect(() =>
      serialiseNative(root, (piece) =>
        structuredClone(piece, { transfer: [piece.buffer as ArrayBuffer] }),
      ),
    ).toThrow(/must not transfer/);
  });

  test('rejects a path with a NUL byte or an empty path', () => {
    expect(() => nativeBytes(Buffer.from('a\0b'))).toThrow(/NUL/);
    expect(() => nativeBytes('')).toThrow(/empty/);
  });
});
