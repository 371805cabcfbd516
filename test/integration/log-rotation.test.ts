/**
 * Rotating a log's key with an overlap: the log signs each checkpoint with every key it is
 * given, so a client or a witness that knows either key verifies it, before, during and after.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type LogService,
  newToken,
  parseSubmitters,
  startLogService,
  submitterLine,
} from '../../src/log/index.js';
import { silentLogger } from '../../src/server/index.js';
import {
  formatSignerKey,
  type NoteSigner,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  TlogError,
  formatVerifierKey,
  newSigner,
  openCheckpoint,
  parseVerifierKey,
} from '../../src/tlog/index.js';
import { type WitnessService, startWitness } from '../../src/witness/index.js';
import { writeFileSync } from 'node:fs';
import { makeClaim } from '../support/claims.js';
import { runAccord } from '../support/cli.js';
import { prepareLogFiles, startLogProcess } from '../support/log-process.js';

const ORIGIN = 'rotate.test/log';
const seed = (n: number) => new Uint8Array(32).fill(n);
const [oldKey, newKey] = [
  newSigner(ORIGIN, SIG_TYPE_ED25519, seed(1)),
  newSigner(ORIGIN, SIG_TYPE_ED25519, seed(2)),
];
const verifier = (k: NoteSigner) => parseVerifierKey(formatVerifierKey(k));
const witnessKeys = [3, 4].map((n) =>
  newSigner(`w${n}.rotate.test`, SIG_TYPE_COSIGNATURE_V1, seed(n)),
);

describe('log key rotation with overlap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-rotate-'));
  const token = newToken();
  let witnesses: WitnessService[] = [];
  let log: LogService | undefined;

  beforeAll(async () => {
    // One witness knows only the old key, the other only the new one.
    witnesses = await Promise.all(
      [oldKey, newKey].map((logKey, i) =>
        startWitness({
          signer: witnessKeys[i] as NoteSigner,
          logs: [verifier(logKey)],
          store: { kind: 'sqlite', path: join(dir, `witness-${i}.db`) },
          host: '127.0.0.1',
          port: 0,
          logger: silentLogger,
        }),
      ),
    );
  });
  afterAll(async () => {
    await log?.close();
    await Promise.all(witnesses.map((w) => w.close()));
  });

  const start = (signer: NoteSigner, extraSigners: NoteSigner[] = []) =>
    startLogService({
      origin: ORIGIN,
      signer,
      extraSigners,
      store: { kind: 'sqlite', path: join(dir, 'log.db') },
      host: '127.0.0.1',
      port: 0,
      submitters: parseSubmitters(submitterLine('builder', token)),
      storeDir: '/nix/store',
      intervalMs: 20,
      maxBodyBytes: 1 << 20,
      witnesses: witnesses.map((w, i) => ({
        url: w.url,
        verifier: verifier(witnessKeys[i] as NoteSigner),
      })),
      logger: silentLogger,
    });

  const submit = async (i: number) => {
    const res = await fetch(`${log?.url ?? ''}/submit`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ claims: [makeClaim(i, 0, 'rotate')] }),
    });
    expect(res.status).toBe(200);
  };

  /** The published checkpoint once it has `size` entries and `signatures` signature lines. */
  const checkpoint = async (size: number, signatures: number) => {
    for (let i = 0; i < 400; i++) {
      const res = await fetch(`${log?.url ?? ''}/checkpoint`);
      const note = res.ok ? await res.text() : '';
      const lines = note
        .slice(note.lastIndexOf('\n\n') + 2)
        .split('\n')
        .filter((l) => l !== '');
      if (note.startsWith(`${ORIGIN}\n${size}\n`) && lines.length === signatures) return note;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no checkpoint of size ${size} with ${signatures} signatures`);
  };

  /** Which keys verify `note` as the log's, and which witnesses cosigned it. */
  const verifiedBy = (note: string) => ({
    old: opens(note, oldKey),
    new: opens(note, newKey),
    cosigners: openCheckpoint(note, [verifier(oldKey), verifier(newKey)], witnessKeys.map(verifier))
      .note.verified.filter((v) => v.verifier.name !== ORIGIN)
      .map((v) => v.verifier.name)
      .sort(),
  });
  const opens = (note: string, key: NoteSigner) => {
    try {
      return openCheckpoint(note, [verifier(key)]).checkpoint.treeSize;
    } catch (e) {
      expect(e).toBeInstanceOf(TlogError);
      return 'refused';
    }
  };

  test('old key only, then both keys (the published tree re-signed at once), then the new key only', async () => {
    log = await start(oldKey);
    await submit(1);
    let note = await checkpoint(1, 2);
    expect(verifiedBy(note)).toEqual({ old: 1, new: 'refused', cosigners: ['w3.rotate.test'] });
    await log.close();

    // The overlap: both keys sign; the tree published before is signed again with no new entry.
    log = await start(oldKey, [newKey]);
    note = await checkpoint(1, 4);
    expect(verifiedBy(note)).toEqual({
      old: 1,
      new: 1,
      cosigners: ['w3.rotate.test', 'w4.rotate.test'],
    });
    await submit(2);
    note = await checkpoint(2, 4);
    expect(verifiedBy(note)).toEqual({
      old: 2,
      new: 2,
      cosigners: ['w3.rotate.test', 'w4.rotate.test'],
    });
    await log.close();

    // The old key retired.
    log = await start(newKey);
    note = await checkpoint(2, 2);
    expect(verifiedBy(note)).toEqual({ old: 'refused', new: 2, cosigners: ['w4.rotate.test'] });
    await submit(3);
    note = await checkpoint(3, 2);
    expect(verifiedBy(note)).toEqual({ old: 'refused', new: 3, cosigners: ['w4.rotate.test'] });
  });

  test('a key of another origin, or the same key twice, is refused', async () => {
    const other = newSigner('other.test/log', SIG_TYPE_ED25519, seed(9));
    await expect(start(oldKey, [other])).rejects.toThrow(/not named as the origin/);
    await expect(start(oldKey, [oldKey])).rejects.toThrow(/twice/);
  });
});

describe('accord log serve --key FILE --key FILE', () => {
  test('signs every checkpoint with both keys; a key of another origin exits 2 naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-rotate-cli-'));
    const files = prepareLogFiles(dir, ORIGIN);
    writeFileSync(join(dir, 'new.key'), `${formatSignerKey(newKey)}\n`, { mode: 0o600 });
    const other = newSigner('other.test/log', SIG_TYPE_ED25519, seed(9));
    writeFileSync(join(dir, 'other.key'), `${formatSignerKey(other)}\n`, { mode: 0o600 });
    const refused = await runAccord([
      'log',
      'serve',
      '--data-dir',
      dir,
      '--submitters',
      files.submitters,
      '--key',
      files.key,
      '--key',
      join(dir, 'other.key'),
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /--key .*other\.key is named other\.test\/log, not the origin rotate\.test\/log/,
    );
    const server = await startLogProcess([
      '--data-dir',
      dir,
      '--submitters',
      files.submitters,
      '--key',
      files.key,
      '--key',
      join(dir, 'new.key'),
    ]);
    try {
      const note = await (await fetch(`${server.url}/checkpoint`)).text();
      expect(openCheckpoint(note, [parseVerifierKey(files.vkey)]).checkpoint.treeSize).toBe(0);
      expect(openCheckpoint(note, [verifier(newKey)]).checkpoint.treeSize).toBe(0);
    } finally {
      await server.kill('SIGTERM');
    }
  });
});
