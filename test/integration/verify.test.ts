/**
 * Decisions anyone can re-check, with real Nix: a 2-of-3 proxy over two witnessed builder
 * logs and one signing cache writes its evidence into every narinfo (a tlog-proof per
 * supporting log, the cache's Sig); Nix 2.8 substitutes through it (it ignores the fields),
 * `accord verify` accepts every narinfo the proxy served and refuses each edited one.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
} from '../../src/nix/index.js';
import { PROOF_FIELD, SIGNATURE_FIELD } from '../../src/policy/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import {
  SIG_TYPE_COSIGNATURE_V1,
  formatVerifierKey,
  generateKey,
  parseSignerKey,
  parseVerifierKey,
} from '../../src/tlog/index.js';
import { type WitnessService, startWitness } from '../../src/witness/index.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { build, isValid, nix, shDerivation, substituteFrom } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';
import { type StaticServer, serveDirectory } from '../support/static-server.js';

describe.runIf(shouldRun(HAVE_NIX))('accord verify re-checks what the proxy served', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-verify-'));
  const run = `verify-${Date.now()}`;
  const witnessKey = parseSignerKey(
    generateKey('verify.test/w', SIG_TYPE_COSIGNATURE_V1).signerKey,
  );
  const cacheKey = generateNixSecretKey('verify-cache-1');
  const proxyKey = generateNixSecretKey('verify-proxy-1');
  let witness: WitnessService;
  const logs: TestLog[] = [];
  const servers: StaticServer[] = [];
  let proxy: ProxyService;
  const paths: Record<'lib' | 'app' | 'logAndCache' | 'logsOnly', string> = {
    lib: '',
    app: '',
    logAndCache: '',
    logsOnly: '',
  };
  const served = new Map<string, string>(); // name → narinfo file

  const submit = async (i: number, storePaths: string[]) => {
    const log = logs[i] as TestLog;
    writeFileSync(join(dir, `token${i}`), log.token);
    const r = await runAccord([
      'submit',
      '--json',
      '--log',
      log.url,
      '--token-file',
      join(dir, `token${i}`),
      '--spool',
      join(dir, `spool${i}.db`),
      ...storePaths,
    ]);
    expect(JSON.parse(r.stdout)).toMatchObject({ submitted: storePaths.length });
  };
  const verify = (...args: string[]) =>
    runAccord(['verify', '--policy', join(dir, 'policy'), ...args]);
  /** Writes an edited copy of a served narinfo and returns its file. */
  const edited = (name: keyof typeof paths, edit: (text: string) => string) => {
    const text = readFileSync(served.get(name) ?? '', 'utf8');
    const changed = edit(text);
    expect(changed).not.toBe(text);
    const file = join(dir, `${name}-edited-${Math.random().toString(36).slice(2)}.narinfo`);
    writeFileSync(file, changed);
    return file;
  };

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    const logKeys = [0, 1].map((i) =>
      parseSignerKey(generateKey(`verify-b${i + 1}.example/log`, 1).signerKey),
    );
    witness = await startWitness({
      signer: witnessKey,
      logs: logKeys.map((k) => parseVerifierKey(formatVerifierKey(k))),
      store: { kind: 'sqlite', path: join(dir, 'witness.db') },
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger,
    });
    const w = { url: witness.url, verifier: parseVerifierKey(formatVerifierKey(witnessKey)) };
    for (const k of logKeys)
      logs.push(await startTestLog({ origin: k.name, seed: k.seed, witnesses: [w] }));
    const libExpr = shDerivation('verify-lib', '/bin/mkdir $out; echo lib > $out/data', run);
    const withLib = (name: string) =>
      `let lib = ${libExpr}; in ${shDerivation(name, `/bin/mkdir $out; echo \${lib} > $out/lib; echo ${name} > $out/data`, run)}`;
    paths.lib = (await build(libExpr))[0] ?? '';
    paths.app = (await build(withLib('verify-app')))[0] ?? '';
    paths.logAndCache =
      (
        await build(shDerivation('verify-one-log', '/bin/mkdir $out; echo x > $out/data', run))
      )[0] ?? '';
    paths.logsOnly = (await build(withLib('verify-logs-only')))[0] ?? '';
    // The signing cache has the closure and logAndCache; an unsigned one has logsOnly's NAR.
    writeFileSync(join(dir, 'cache.sk'), formatNixSecretKey(cacheKey));
    await nix('nix', [
      'copy',
      '--to',
      `file://${dir}/signed?compression=none&secret-key=${dir}/cache.sk`,
      paths.app,
      paths.logAndCache,
    ]);
    await nix('nix', ['copy', '--to', `file://${dir}/unsigned?compression=none`, paths.logsOnly]);
    await submit(0, [paths.lib, paths.app, paths.logAndCache, paths.logsOnly]);
    await submit(1, [paths.lib, paths.app, paths.logsOnly]);
    for (const log of logs) await log.waitForSize(log === logs[0] ? 4 : 3);
    for (const d of ['signed', 'unsigned']) servers.push(await serveDirectory(join(dir, d)));
    writeFileSync(
      join(dir, 'policy'),
      [
        ...logs.map((l) => `log ${l.vkey} ${l.url}`),
        `cache signed ${servers[0]?.url ?? ''} ${formatNixPublicKey(cacheKey)}`,
        `trust mixed 2 ${logs.map((l) => l.origin).join(' ')} signed`,
        'decide mixed',
        `witness W ${formatVerifierKey(witnessKey)}`,
        'quorum W',
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(proxyKey));
    writeFileSync(
      join(dir, 'proxy.toml'),
      [
        'listen = "127.0.0.1:0"',
        'signing-key = "proxy.sk"',
        'policy = "policy"',
        'state = "proxy.db"',
        'nar-disk-cache = "nars"',
        'cache-ttl-seconds = 0',
        `[[upstream]]\nurl = "${servers[1]?.url ?? ''}"`,
        '',
      ].join('\n'),
    );
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger);
    await nix('nix-store', ['--delete', paths.app, paths.logAndCache, paths.logsOnly, paths.lib]);
  }, 180_000);

  afterAll(async () => {
    await proxy.close();
    // The signing cache was stopped by a test.
    await Promise.allSettled(servers.map((s) => s.close()));
    for (const l of logs) await l.close();
    await witness.close();
  });

  test('Nix 2.8 substitutes narinfos carrying evidence; each carries a proof per supporting log', async () => {
    await substituteFrom(proxy.url, formatNixPublicKey(proxyKey), [
      paths.app,
      paths.logAndCache,
      paths.logsOnly,
    ]);
    for (const [name, path] of Object.entries(paths)) {
      expect(await isValid(path)).toBe(true);
      const text = await (await fetch(`${proxy.url}/${path.slice(11, 43)}.narinfo`)).text();
      const file = join(dir, `${name}.narinfo`);
      writeFileSync(file, text);
      served.set(name, file);
    }
    const count = (name: keyof typeof paths, field: string) =>
      readFileSync(served.get(name) ?? '', 'utf8')
        .split('\n')
        .filter((l) => l.startsWith(`${field}: `)).length;
    expect([count('app', PROOF_FIELD), count('app', SIGNATURE_FIELD)]).toEqual([2, 1]);
    expect([count('logAndCache', PROOF_FIELD), count('logAndCache', SIGNATURE_FIELD)]).toEqual([
      1, 1,
    ]);
    expect([count('logsOnly', PROOF_FIELD), count('logsOnly', SIGNATURE_FIELD)]).toEqual([2, 0]);
  });

  test('accord verify accepts every narinfo the proxy served', async () => {
    const files = [...served.values()];
    const r = await verify('--proxy-key', formatNixPublicKey(proxyKey), '--json', ...files);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const results = JSON.parse(r.stdout) as { ok: boolean }[];
    expect(results.map((x) => x.ok)).toEqual(files.map(() => true));
  });

  test.each([
    [
      'the NAR hash',
      'logsOnly',
      (t: string) =>
        t.replace(
          /^NarHash: sha256:(.)/m,
          (_, c: string) => `NarHash: sha256:${c === '0' ? '1' : '0'}`,
        ),
      /evidence trusts/,
    ],
    [
      'the NAR size',
      'logsOnly',
      (t: string) => t.replace(/^NarSize: (\d+)/m, (_, n: string) => `NarSize: ${Number(n) + 1}`),
      /evidence trusts/,
    ],
    [
      'the references',
      'logsOnly',
      (t: string) => t.replace(/^References: .*$/m, 'References: '),
      /evidence trusts/,
    ],
    ['a hash of an inclusion proof', 'app', editProofHash, /evidence field 1: .*proof/i],
    [
      'a missing supporter',
      'logAndCache',
      (t: string) => t.replace(/^Accord-Signature: .*\n/m, ''),
      /does not satisfy the policy/,
    ],
    [
      'the cache’s signature moved to another path',
      'logAndCache',
      (t: string) =>
        t.replace(
          /^Accord-Signature: .*$/m,
          readFileSync(served.get('app') ?? '', 'utf8').match(/^Accord-Signature: .*$/m)?.[0] ?? '',
        ),
      /does not verify/,
    ],
  ] as const)('accord verify refuses a narinfo with %s edited', async (_, name, edit, why) => {
    const r = await verify(edited(name, edit));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/REFUSED/);
    expect(r.stdout).toMatch(why);
  });

  test('with --proxy-key, a narinfo without the proxy’s Sig is refused', async () => {
    const r = await verify(
      '--proxy-key',
      formatNixPublicKey(proxyKey),
      edited('app', (t) => t.replace(/^Sig: .*\n/m, '')),
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/no Sig by the proxy keys/);
  });

  test('with the signing cache offline, its stored signature is still shown, and verifies', async () => {
    await servers[0]?.close();
    const res = await fetch(`${proxy.url}/${paths.logAndCache.slice(11, 43)}.narinfo`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^Accord-Signature: signed verify-cache-1:/m);
    const file = join(dir, 'offline.narinfo');
    writeFileSync(file, text);
    const r = await verify('--proxy-key', formatNixPublicKey(proxyKey), file);
    expect(r.stdout).toMatch(/OK/);
    expect(r.code).toBe(0);
  });
});

/** Changes one base64 character of the first inclusion-proof hash in the first Accord-Proof. */
function editProofHash(text: string): string {
  return text.replace(/^Accord-Proof: (.*)$/m, (_, value: string) => {
    const proof = Buffer.from(value, 'base64').toString('utf8');
    const lines = proof.split('\n');
    const at = lines.findIndex((l) => l.startsWith('index '));
    const hash = lines[at + 1] ?? '';
    lines[at + 1] = `${hash[0] === 'A' ? 'B' : 'A'}${hash.slice(1)}`;
    return `Accord-Proof: ${Buffer.from(lines.join('\n')).toString('base64')}`;
  });
}
