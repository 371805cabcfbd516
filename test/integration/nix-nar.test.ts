import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { HAVE_NATIVE_NAR, narSourceFromPath } from '../../src/host/index.js';
import { formatHash, hashNarSource } from '../../src/nix/index.js';
import { runAccordBytes, runAccord } from '../support/cli.js';
import { nix, nixBytes } from '../support/nix.js';
import { HAVE_NIX, IN_CI, requireAvailable, shouldRun } from '../support/requirements.js';
import { ODD_NAMES, prng, writeRandomTree } from '../support/trees.js';

describe.runIf(shouldRun(HAVE_NIX))('accord nar dump/hash against real Nix', () => {
  const base = mkdtempSync(join(tmpdir(), 'accord-nar-'));
  beforeAll(() => {
    requireAvailable(HAVE_NIX, 'nix');
  });

  async function compare(path: string) {
    const [ours, theirs] = await Promise.all([
      runAccordBytes(['nar', 'dump', path]),
      nixBytes('nix-store', ['--dump', path]),
    ]);
    expect(ours.code).toBe(0);
    expect(ours.stdout.equals(theirs)).toBe(true);
    const hash = await runAccord(['nar', 'hash', path]);
    const nix32 = (await nix('nix', ['hash', 'path', '--base32', path])).trim();
    expect(hash.stdout).toBe(`sha256:${nix32} ${theirs.length}\n`);
    // `nar hash` runs the native serialiser where it is built (always in CI); the JavaScript
    // one, which `nar dump` runs, must give the same hash.
    expect(HAVE_NATIVE_NAR || !IN_CI).toBe(true);
    const { narHash, narSize } = hashNarSource(narSourceFromPath(path));
    expect(`${formatHash(narHash)} ${narSize}\n`).toBe(hash.stdout);
  }

  test('a tree of every entry kind and odd names is byte-identical to nix-store --dump', async () => {
    const root = join(base, 'odd');
    mkdirSync(root);
    for (const [i, name] of ODD_NAMES.entries()) {
      const path = Buffer.concat([Buffer.from(`${root}/`), name]);
      if (i % 3 === 0) writeFileSync(path, `file ${i}\n`);
      else if (i % 3 === 1) symlinkSync(`target-${i}`, path);
      else mkdirSync(path);
    }
    mkdirSync(join(root, 'empty'));
    mkdirSync(join(root, 'deep/er/and/deeper'), { recursive: true });
    writeFileSync(join(root, 'deep/er/and/deeper/leaf'), '');
    writeFileSync(join(root, 'exe'), '#!/bin/sh\n');
    chmodSync(join(root, 'exe'), 0o755);
    writeFileSync(join(root, 'group-exec-only'), 'x');
    chmodSync(join(root, 'group-exec-only'), 0o654);
    writeFileSync(join(root, 'padding-7'), 'seven!!');
    writeFileSync(join(root, 'big'), Buffer.alloc(3 * 1024 * 1024 + 3, 7));
    await compare(root);
  });

  test('a single file, an executable, a symlink and an empty directory as roots', async () => {
    const file = join(base, 'root-file');
    writeFileSync(file, 'just a file');
    const exe = join(base, 'root-exe');
    writeFileSync(exe, '');
    chmodSync(exe, 0o700);
    const link = join(base, 'root-link');
    symlinkSync('/somewhere/else', link);
    const empty = join(base, 'root-empty');
    mkdirSync(empty);
    for (const p of [file, exe, link, empty]) await compare(p);
  });

  test('a tree of 2,000 files of mixed sizes and modes is byte-identical', async () => {
    // Many small files fill the writer's 64 KiB stage again and again; one large file per
    // directory is handed on in chunks of its own.
    const root = join(base, 'many');
    const random = prng(99);
    for (let d = 0; d < 40; d++) {
      const dir = join(root, `d${d}`, d % 3 === 0 ? 'nested' : '');
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < 50; f++) {
        const odd = (ODD_NAMES[f % ODD_NAMES.length] ?? Buffer.from('x')).subarray(0, 200);
        const name = Buffer.concat([Buffer.from(`${dir}/${f}-`), odd]);
        if (f % 17 === 5) {
          symlinkSync(`link-${f}`, name);
          continue;
        }
        const size = f === 7 ? 200_000 : Math.floor(random() * 5000);
        writeFileSync(name, Buffer.alloc(size, f + d));
        if (f % 4 === 1) chmodSync(name, 0o755);
        if (f % 9 === 2) chmodSync(name, 0o654);
      }
    }
    mkdirSync(join(root, 'd5', 'empty'));
    await compare(root);
  });

  test.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])(
    'random tree (seed %i) is byte-identical to nix-store --dump',
    async (seed) => {
      const root = join(base, `random-${seed}`);
      expect(writeRandomTree(root, seed)).toBeGreaterThanOrEqual(4);
      await compare(root);
    },
  );
});
