import { createReadStream, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  type NarInfo,
  decompress,
  formatHash,
  formatNarInfo,
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
  hashNarStream,
  nixPublicKey,
  parseHash,
  parseNarInfo,
  parseNixPublicKey,
  parseNixSecretKey,
  parseStorePath,
  sha256,
  signNarInfo,
  verifiedSigners,
  verifyDetached,
  fingerprint,
} from '../../src/nix/index.js';
import { buildClosure, nix } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';

function narinfos(cache: string): { file: string; text: string }[] {
  return readdirSync(cache)
    .filter((f) => f.endsWith('.narinfo'))
    .map((f) => ({ file: join(cache, f), text: readFileSync(join(cache, f), 'utf8') }));
}

describe.runIf(shouldRun(HAVE_NIX))('narinfo and keys against real Nix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-narinfo-'));
  let demo: string;
  let nixSecret: string;
  let nixPublic: string;

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    demo = await buildClosure(`signed-${Date.now()}`);
    nixSecret = await nix('nix', ['key', 'generate-secret', '--key-name', 'nix-made-1']);
    writeFileSync(join(dir, 'nix.sk'), nixSecret);
    nixPublic = await nix('nix', ['key', 'convert-secret-to-public'], nixSecret);
    await nix('nix', ['store', 'sign', '--key-file', join(dir, 'nix.sk'), '-r', demo]);
  });

  test.each(['none', 'xz', 'zstd'])(
    'narinfos from nix copy (compression=%s) parse, re-serialise byte-identically and verify',
    async (compression) => {
      const cache = join(dir, `cache-${compression}`);
      await nix('nix', ['copy', '--to', `file://${cache}?compression=${compression}`, demo]);
      const infos = narinfos(cache);
      expect(infos).toHaveLength(2);
      for (const { text } of infos) {
        const info = parseNarInfo(text);
        expect(formatNarInfo(info)).toBe(text);
        expect(info.compression).toBe(compression);
        expect(verifiedSigners(info, [parseNixPublicKey(nixPublic)])).toEqual(['nix-made-1']);
        // The NAR behind it: FileHash/FileSize of the file, NarHash/NarSize once decompressed.
        const file = join(cache, info.url);
        const bytes = readFileSync(file);
        expect(formatHash(sha256(bytes))).toBe(info.fileHash && formatHash(info.fileHash));
        expect(bytes.length).toBe(info.fileSize);
        const summary = await hashNarStream(decompress(compression, createReadStream(file)));
        expect(formatHash(summary.narHash)).toBe(formatHash(info.narHash));
        expect(summary.narSize).toBe(info.narSize);
      }
      const top = parseNarInfo(infos.find((i) => i.text.includes(demo))?.text ?? '');
      expect(top.references).toHaveLength(1);
      expect(top.deriver).toMatch(/-demo-signed-\d+\.drv$/);
    },
  );

  test('a narinfo signed by Accord passes nix store verify --sigs-needed 1 with only Accord trusted', async () => {
    const fresh = await buildClosure(`accord-${Date.now()}`);
    const cache = join(dir, 'cache-accord');
    await nix('nix', ['copy', '--to', `file://${cache}?compression=none`, fresh]);
    const accord = generateNixSecretKey('accord-proxy-1');
    const accordPublic = formatNixPublicKey(accord);
    const verify = (trusted: string, path: string) =>
      nix('nix', [
        'store',
        'verify',
        '--store',
        `file://${cache}`,
        '--sigs-needed',
        '1',
        '--option',
        'trusted-public-keys',
        trusted,
        path,
      ]);
    // Unsigned: Nix refuses. Signed by Accord: accepted. Another key trusted: refused.
    await expect(verify(accordPublic, fresh)).rejects.toThrow(/untrusted/);
    for (const { file, text } of narinfos(cache)) {
      const info: NarInfo = { ...parseNarInfo(text), sigs: [] };
      writeFileSync(file, formatNarInfo(signNarInfo(info, accord)));
    }
    await verify(accordPublic, fresh);
    await expect(
      verify(formatNixPublicKey(generateNixSecretKey('other-1')), fresh),
    ).rejects.toThrow(/untrusted/);
    // A signature over a tampered field no longer verifies for Nix either.
    const top = narinfos(cache).find((i) => i.text.includes(fresh));
    if (top === undefined) throw new Error('narinfo of the top path missing');
    writeFileSync(
      top.file,
      top.text.replace(/NarSize: (\d+)/, (_, n: string) => `NarSize: ${Number(n) + 1}`),
    );
    await expect(verify(accordPublic, fresh)).rejects.toThrow();
  });

  test('a key Accord generates works with nix store sign, and its signatures verify in Accord', async () => {
    const accord = generateNixSecretKey('accord-made-1');
    const keyFile = join(dir, 'accord.sk');
    writeFileSync(keyFile, formatNixSecretKey(accord));
    await nix('nix', ['store', 'sign', '--key-file', keyFile, demo]);
    await nix('nix', [
      'store',
      'verify',
      '--sigs-needed',
      '1',
      '--option',
      'trusted-public-keys',
      formatNixPublicKey(accord),
      demo,
    ]);
    const [info] = JSON.parse(await nix('nix', ['path-info', '--json', demo])) as {
      narHash: string;
      narSize: number;
      references: string[];
      signatures: string[];
    }[];
    if (info === undefined) throw new Error('no path-info');
    const message = fingerprint({
      storePath: parseStorePath(demo),
      narHash: parseHash(info.narHash),
      narSize: info.narSize,
      references: info.references.map((r) => parseStorePath(r).baseName),
    });
    const sig = info.signatures.find((s) => s.startsWith('accord-made-1:'));
    expect(sig).toBeDefined();
    expect(verifyDetached(message, sig ?? '', [nixPublicKey(accord)])).toBe(true);
    expect(verifyDetached(message, sig ?? '', [parseNixPublicKey(nixPublic)])).toBe(false);
  });

  test('a key nix key generate-secret makes signs narinfos in Accord that Nix accepts', async () => {
    const secret = parseNixSecretKey(nixSecret);
    expect(formatNixSecretKey(secret)).toBe(nixSecret);
    expect(formatNixPublicKey(secret)).toBe(nixPublic);
    const fresh = await buildClosure(`nixkey-${Date.now()}`);
    const cache = join(dir, 'cache-nixkey');
    await nix('nix', ['copy', '--to', `file://${cache}?compression=xz`, fresh]);
    for (const { file, text } of narinfos(cache)) {
      writeFileSync(file, formatNarInfo(signNarInfo({ ...parseNarInfo(text), sigs: [] }, secret)));
    }
    await nix('nix', [
      'store',
      'verify',
      '--store',
      `file://${cache}`,
      '--sigs-needed',
      '1',
      '--option',
      'trusted-public-keys',
      nixPublic,
      '-r',
      fresh,
    ]);
  });
});
