/**
 * Builder identities end to end with real Nix: the proxy's policy names builder 1 by its
 * identity (root key) and log origin, not by a log key. Builder 1 rotates its log key while the
 * proxy runs — paths published before and after keep substituting, the config untouched; a
 * statement not signed by the root is refused and reported, and the key it names never counts;
 * a key revoked after it supported a tampered path stops that path at once, while what it
 * signed before the revocation time still counts. What the proxy served re-checks offline
 * from the statements its narinfos carry, and a monitor's fork evidence counts against the
 * identity's log only when signed by a key its statements name and never revoked.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type KeyStatement,
  checkStatement,
  formatStatement,
  signStatement,
  statementHash,
} from '../../src/identity/index.js';
import {
  encodeNix32,
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
  parseNarInfo,
} from '../../src/nix/index.js';
import { type Finding, Monitor, MonitorStore } from '../../src/monitor/index.js';
import { type Policy, parsePolicy, recheckNarInfo } from '../../src/policy/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { type Logger, close, listen, silentLogger } from '../../src/server/index.js';
import {
  type NoteSigner,
  SIG_TYPE_ED25519,
  formatCheckpoint,
  formatForkEvidence,
  formatVerifierKey,
  newSigner,
  hashLeaf,
  parseVerifierKey,
  signNote,
} from '../../src/tlog/index.js';
import { STATEMENTS_LOOKUP_KEY } from '../../src/claim/index.js';
import { makeClaim } from '../support/claims.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import {
  build,
  isValid,
  nix,
  serveOtherBytes,
  shDerivation,
  substituteFrom,
} from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';
import { type StaticServer, serveDirectory } from '../support/static-server.js';

const ORIGIN = 'builder1.test/log';
const seed = (n: number) => createHash('sha256').update(`log key ${n}`).digest();
const key = (n: number): NoteSigner => newSigner(ORIGIN, SIG_TYPE_ED25519, seed(n));
const root = newSigner('builder1.test', SIG_TYPE_ED25519, new Uint8Array(32).fill(7));
const rootVerifier = parseVerifierKey(formatVerifierKey(root));
const now = () => Math.floor(Date.now() / 1000);

describe.runIf(shouldRun(HAVE_NIX))('identities: rotation, forged statements, revocation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-identity-'));
  const run = `identity-${Date.now()}`;
  const proxyKey = generateNixSecretKey('identity-proxy-1');
  const warnings: { msg: string; fields?: Record<string, unknown> }[] = [];
  const recording: Logger = {
    ...silentLogger,
    warn: (msg, fields) => {
      warnings.push({ msg, ...(fields === undefined ? {} : { fields }) });
    },
    child: () => recording,
  };
  let builder1: TestLog; // restarted with each new key, same storage and port
  let port = 0;
  let evil: TestLog; // the same origin under a key the root never named
  let builder2: TestLog;
  let cache: StaticServer;
  const front = { toEvil: new Set<string>(), forged: '' };
  let frontUrl = '';
  const frontServer = createServer((req, res) => {
    void forward(req, res);
  });
  const proxies: ProxyService[] = [];
  const paths: Record<string, string> = {};

  /** Builder 1's log as the proxy reaches it: through a front that can lie for it. */
  async function forward(req: IncomingMessage, res: ServerResponse) {
    const path = req.url ?? '/';
    const hash = /^\/lookup\/([0-9a-z]{32})$/.exec(path)?.[1];
    const target = hash !== undefined && front.toEvil.has(hash) ? evil.url : builder1.url;
    const answer = await fetch(`${target}${path}`);
    let body = Buffer.from(await answer.arrayBuffer());
    if (path === '/lookup/accord-keys' && front.forged !== '' && answer.ok) {
      const json = JSON.parse(body.toString()) as {
        entries: { index: number; entry: string; proof?: string }[];
      };
      const [first] = json.entries;
      json.entries.push({
        index: 1_000_000,
        entry: front.forged,
        ...(first?.proof === undefined ? {} : { proof: first.proof }),
      });
      body = Buffer.from(JSON.stringify(json));
    }
    res.writeHead(answer.status, {
      'Content-Type': answer.headers.get('content-type') ?? 'application/octet-stream',
    });
    res.end(body);
  }

  /** The next statement of builder 1's identity, signed by `signer` (the root by default). */
  function statement(
    keys: KeyStatement['keys'],
    revocations: KeyStatement['revocations'] = [],
    signer = root,
  ): { note: string; statement: KeyStatement } {
    const previous = chain.at(-1)?.statement;
    const s = checkStatement({
      identity: 'builder1.test',
      sequence: chain.length,
      ...(previous === undefined ? {} : { previous: statementHash(formatStatement(previous)) }),
      issued: now(),
      keys,
      revocations,
    });
    return { note: signStatement(s, signer), statement: s };
  }
  const chain: { note: string; statement: KeyStatement }[] = [];
  async function publish(
    keys: KeyStatement['keys'],
    revocations: KeyStatement['revocations'] = [],
  ) {
    const next = statement(keys, revocations);
    const res = await builder1
      .submitStatement(next.note)
      .catch(() => builder1.submitStatement(next.note));
    expect(res.status).toBe(200);
    chain.push(next);
    await builder1.waitForSize((await builder1.service.storage.state()).nextIndex);
  }
  async function restartBuilder1(n: number) {
    await builder1.close();
    builder1 = await startTestLog({
      origin: ORIGIN,
      seed: seed(n),
      store: { kind: 'sqlite', path: join(dir, 'b1.db') },
      port,
      identity: { root: rootVerifier },
    });
  }
  async function claim(log: TestLog, storePaths: string[]) {
    const claims = storePaths.map((p) => claimOf(p));
    // A connection kept alive to a log that restarted fails once.
    const res = await log.submit(claims).catch(() => log.submit(claims));
    expect(res.status).toBe(200);
    await log.waitForSize((await log.service.storage.state()).nextIndex);
  }
  function claimOf(path: string) {
    const info = parseNarInfo(
      readFileSync(join(dir, 'cache', `${path.slice(11, 43)}.narinfo`), 'utf8'),
    );
    return {
      storePath: path,
      narHash: `sha256:${encodeNix32(info.narHash.digest)}`,
      narSize: info.narSize,
      references: [...info.references],
    };
  }
  async function proxyWith(name: string, decide: string[], settings: string[] = []) {
    writeFileSync(
      join(dir, `${name}.policy`),
      [
        `identity ${formatVerifierKey(root)} ${ORIGIN} ${frontUrl}`,
        `log ${builder2.vkey} ${builder2.url}`,
        ...decide,
        'quorum none',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, `${name}.toml`),
      [
        'listen = "127.0.0.1:0"',
        'signing-key = "proxy.sk"',
        `policy = "${name}.policy"`,
        `state = "${name}.db"`,
        `nar-disk-cache = "${name}-nars"`,
        'cache-ttl-seconds = 0',
        'negative-ttl-seconds = 0',
        'statement-refresh-seconds = 0',
        ...settings,
        `[[upstream]]\nurl = "${cache.url}"`,
        '',
      ].join('\n'),
    );
    const p = await startProxy(loadProxyConfig(join(dir, `${name}.toml`)), recording);
    proxies.push(p);
    return p;
  }
  /** A narinfo the proxy serves now, and what re-checking it offline finds. */
  async function recheck(p: ProxyService, name: string, policy: Policy) {
    const res = await fetch(`${p.url}/${hashOf(name)}.narinfo`);
    expect(res.status, name).toBe(200);
    const text = await res.text();
    return { text, result: recheckNarInfo(policy, text) };
  }
  const substitute = (p: ProxyService, path: string) =>
    substituteFrom(p.url, formatNixPublicKey(proxyKey), [path]);
  const remove = (...ps: string[]) => nix('nix-store', ['--delete', ...ps]);

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(proxyKey));
    for (const name of ['before', 'after', 'forged', 'honest-early', 'tampered']) {
      const [p] = await build(
        shDerivation(`identity-${name}`, `/bin/mkdir $out; echo ${name} payload > $out/data`, run),
      );
      paths[name] = p ?? '';
    }
    await nix('nix', [
      'copy',
      '--to',
      `file://${dir}/cache?compression=none`,
      ...Object.values(paths),
    ]);
    // The cache's `tampered` is other bytes: builder 1's stolen key will vouch for them.
    serveOtherBytes(join(dir, 'cache'), paths.tampered ?? '');
    cache = await serveDirectory(join(dir, 'cache'));
    builder1 = await startTestLog({
      origin: ORIGIN,
      seed: seed(1),
      store: { kind: 'sqlite', path: join(dir, 'b1.db') },
      identity: { root: rootVerifier },
    });
    port = Number(new URL(builder1.url).port);
    builder2 = await startTestLog({ origin: 'builder2.test/log' });
    evil = await startTestLog({ origin: ORIGIN, seed: seed(3) });
    frontUrl = await listen(frontServer, '127.0.0.1', 0);
    await publish([{ kind: 'log', key: formatVerifierKey(key(1)), from: now() - 3600 }]);
    await Promise.all(Object.values(paths).map((p) => remove(p).catch(() => undefined)));
  }, 180_000);

  afterAll(async () => {
    for (const p of proxies) await p.close();
    frontServer.closeAllConnections();
    await close(frontServer);
    for (const l of [builder1, builder2, evil]) await l.close();
    await cache.close();
  });

  const findings: Finding[] = [];
  let monitor: Monitor;

  test('a log key rotated while the proxy and a monitor run: paths from before and after substitute, no config change, and what it served re-checks offline', async () => {
    const honest = ['before', 'after', 'forged', 'honest-early'].map((n) => paths[n] ?? '');
    await claim(builder2, honest);
    await claim(builder1, [paths.before ?? '']);
    const proxy = await proxyWith('both', [
      `trust both 2 ${ORIGIN} builder2.test/log`,
      'decide both',
    ]);
    // A monitor configured from the same policy follows builder 1 by its identity.
    const policy = parsePolicy(readFileSync(join(dir, 'both.policy'), 'utf8'));
    monitor = new Monitor({
      store: new MonitorStore(join(dir, 'monitor.db')),
      logs: [...policy.logs, ...policy.identities],
      witnesses: [],
      storeDir: '/nix/store',
      logger: silentLogger,
      timeoutMs: 5000,
      concurrency: 2,
      onFinding: (f) => findings.push(f),
    });
    const first = await monitor.poll(ORIGIN);
    expect([first.size, first.error]).toEqual([2, undefined]);
    await substitute(proxy, paths.before ?? '');
    // What the proxy served re-checks offline: the narinfo carries the identity's statements.
    const served = await recheck(proxy, 'before', policy);
    expect(served.text).toContain('Accord-Statement: ');
    expect(served.result).toMatchObject({ ok: true });
    // Rotation: key 1 until an hour from now, key 2 from now; the log restarts with key 2.
    const k1 = formatVerifierKey(key(1));
    await publish([
      { kind: 'log', key: k1, from: now() - 3600, until: now() + 3600 },
      { kind: 'log', key: formatVerifierKey(key(2)), from: now() },
    ]);
    await restartBuilder1(2);
    await claim(builder1, [paths.after ?? '']);
    await substitute(proxy, paths.after ?? '');
    await remove(paths.before ?? '');
    await substitute(proxy, paths.before ?? '');
    expect(await isValid(paths.after ?? '')).toBe(true);
    expect(await isValid(paths.before ?? '')).toBe(true);
    for (const name of ['before', 'after'])
      expect((await recheck(proxy, name, policy)).result, name).toMatchObject({ ok: true });
    // Without the statements, the proof of builder 1's claim has no key to verify under.
    const bare = served.text
      .split('\n')
      .filter((l) => !l.startsWith('Accord-Statement: '))
      .join('\n');
    expect(recheckNarInfo(policy, bare).reason).toMatch(/no key statement of builder1\.test/);
    // accord verify takes them from files instead (as saved from the log).
    writeFileSync(join(dir, 'bare.narinfo'), bare);
    const files = chain.map((c, i) => {
      writeFileSync(join(dir, `statement-${i}`), c.note);
      return ['--statements', join(dir, `statement-${i}`)];
    });
    const cli = (extra: string[]) =>
      runAccord([
        'verify',
        '--policy',
        join(dir, 'both.policy'),
        ...extra,
        join(dir, 'bare.narinfo'),
      ]);
    const given = await cli(files.flat());
    expect([given.code, given.stdout], given.stderr).toEqual([0, expect.stringContaining(': OK')]);
    expect((await cli([])).code).toBe(1);
    // A file with a newline too many (as jq -r writes an entry) is still the statement; a file
    // that is no statement of the policy's identities is refused, not silently set aside.
    writeFileSync(join(dir, 'statement-0'), `${chain[0]?.note ?? ''}\n\n`);
    expect((await cli(files.flat())).code).toBe(0);
    writeFileSync(join(dir, 'not-a-statement'), 'accord/keys/v1\nnothing signed\n');
    const refused = await cli(['--statements', join(dir, 'not-a-statement')]);
    expect([refused.code, refused.stderr]).toEqual([
      2,
      expect.stringMatching(/--statements .*not-a-statement: not a key statement of an identity/),
    ]);
    // The monitor follows the log under its new key, from the statements.
    const second = await monitor.poll(ORIGIN);
    expect([second.size, second.error]).toEqual([4, undefined]);
    expect(findings).toEqual([]);
  });

  test('a statement the root did not sign is refused and reported; the key it names never counts', async () => {
    const proxy = proxies[0] as ProxyService;
    // A log under key 3 (never named by the root) claims `forged`, as builder 2 does; the
    // front shows it for that path, with a statement by a look-alike root naming key 3.
    await claim(evil, [paths.forged ?? '']);
    const impostor = newSigner('builder1.test', SIG_TYPE_ED25519, new Uint8Array(32).fill(9));
    const current = chain.at(-1)?.statement.keys ?? [];
    front.forged = statement(
      [...current, { kind: 'log', key: formatVerifierKey(key(3)), from: now() - 60 }],
      [],
      impostor,
    ).note;
    front.toEvil.add(hashOf('forged'));
    const res = await fetch(`${proxy.url}/${hashOf('forged')}.narinfo`);
    expect(res.status).toBe(404);
    await expect(substitute(proxy, paths.forged ?? '')).rejects.toThrow();
    expect(warnings).toContainEqual(
      expect.objectContaining({
        msg: 'key statement refused',
        fields: expect.objectContaining({ log: ORIGIN, code: 'not-root' }) as unknown,
      }),
    );
    const why = await explain(proxy, 'forged');
    expect(why.logs.find((l) => l.origin === ORIGIN)).toMatchObject({ status: 'missing' });
    front.toEvil.clear();
    front.forged = '';
  });

  test('a key revoked since T: the tampered path it vouched for stops at once, its claims before T still count', async () => {
    // Builder 1 alone decides here: its stolen key 2 is all a tampered path needs.
    const solo = await proxyWith('solo', [`decide ${ORIGIN}`]);
    await claim(builder1, [paths['honest-early'] ?? '']);
    await substitute(solo, paths['honest-early'] ?? '');
    const since = now() + 1;
    while (now() <= since) await new Promise((r) => setTimeout(r, 100));
    await claim(builder1, [paths.tampered ?? '']);
    await substitute(solo, paths.tampered ?? '');
    // Nix took it: the proxy trusted builder 1's claim.
    expect(readFileSync(join(paths.tampered ?? '', 'data'), 'utf8')).toBe('tampered Payload\n');
    // The root revokes key 2 since T and names key 4; the log restarts with key 4.
    const kept = (chain.at(-1)?.statement.keys ?? []).filter(
      (k) => k.key !== formatVerifierKey(key(1)),
    );
    await publish(
      [...kept, { kind: 'log', key: formatVerifierKey(key(4)), from: now() }],
      [{ kind: 'log', key: formatVerifierKey(key(2)), since }],
    );
    await restartBuilder1(4);
    expect((await fetch(`${solo.url}/${hashOf('tampered')}.narinfo`)).status).toBe(404);
    const why = await explain(solo, 'tampered');
    expect(why.verdict).toBe('no-quorum');
    expect(why.logs.find((l) => l.origin === ORIGIN)?.excluded?.[0]?.reason).toMatch(
      /revoked as compromised/,
    );
    // What key 2 signed before T still counts.
    expect((await fetch(`${solo.url}/${hashOf('honest-early')}.narinfo`)).status).toBe(200);
    // With no witness to date its checkpoint, that cannot be re-checked offline (the proxy
    // alone saw when each tree came): accord verify says so rather than trust it.
    const early = await recheck(
      solo,
      'honest-early',
      parsePolicy(readFileSync(join(dir, 'solo.policy'), 'utf8')),
    );
    expect(early.result.reason).toMatch(/revoked since .* no witness quorum dates this checkpoint/);
  });
  test('a statement slipped into the log that the root did not sign is reported by the monitor', async () => {
    const impostor = newSigner('builder1.test', SIG_TYPE_ED25519, new Uint8Array(32).fill(8));
    const current = chain.at(-1)?.statement.keys ?? [];
    const forged = statement(
      [...current, { kind: 'log', key: formatVerifierKey(key(5)), from: now() - 60 }],
      [],
      impostor,
    ).note;
    const data = Buffer.from(forged);
    await builder1.service.storage.addEntries([
      { data, leafHash: hashLeaf(data), hashPart: STATEMENTS_LOOKUP_KEY },
    ]);
    await builder1.waitForSize((await builder1.service.storage.state()).nextIndex);
    expect((await monitor.poll(ORIGIN)).error).toBeUndefined();
    expect(findings.map((f) => f.kind)).toEqual(['bad-statement']);
    expect(findings[0]?.summary).toMatch(/not a key statement signed by the identity's root key/);
  });

  const hashOf = (name: string) => (paths[name] ?? '').slice(11, 43);
  test("a monitor's fork evidence distrusts the identity's log only when signed by a key its statements name and never revoked", async () => {
    // A monitor that calls every checkpoint of builder 1 a fork, with the evidence it is given.
    let evidence = '';
    const monitorServer = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200).end(JSON.stringify({ status: 'fork', evidence })));
    });
    const monitorUrl = await listen(monitorServer, '127.0.0.1', 0);
    const forkBy = (signer: NoteSigner) => {
      const notes = [1, 2]
        .map((n) => ({ n, root: createHash('sha256').update(`fork ${n}`).digest() }))
        .sort((a, b) => Buffer.compare(a.root, b.root))
        .map(({ root: rootHash }) =>
          signNote(formatCheckpoint({ origin: ORIGIN, treeSize: 1000, rootHash, extensions: [] }), [
            signer,
          ]),
        );
      return formatForkEvidence({ notes: notes as [string, string], proof: [] });
    };
    try {
      const proxy = await proxyWith(
        'gossip',
        [`decide ${ORIGIN}`],
        [`monitors = ["${monitorUrl}"]`],
      );
      const builder1Status = async () =>
        (await explain(proxy, 'after')).logs.find((l) => l.origin === ORIGIN);
      // Each round: a new checkpoint of builder 1 (the log grew), which the proxy gossips.
      let grown = 0;
      const round = async (signer: NoteSigner) => {
        evidence = forkBy(signer);
        const res = await builder1.submit([makeClaim(grown++, 0, run)]);
        expect(res.status).toBe(200);
        await builder1.waitForSize((await builder1.service.storage.state()).nextIndex);
        await fetch(`${proxy.url}/${hashOf('after')}.narinfo`);
        await proxy.gossip.drain();
      };
      await round(key(3)); // a key the root never named
      expect(warnings.at(-1)?.msg).toMatch(/without evidence that verifies: ignored/);
      await round(key(2)); // revoked: a stolen key signs anything
      expect(warnings.at(-1)?.msg).toMatch(/without evidence that verifies: ignored/);
      expect(await builder1Status()).toMatchObject({ status: 'answered' });
      await round(key(4));
      expect((await builder1Status())?.reason).toMatch(/fork: shown by monitor/);
    } finally {
      monitorServer.closeAllConnections();
      await close(monitorServer);
    }
  });

  const explain = async (p: ProxyService, name: string) =>
    (await (await fetch(`${p.url}/explain/${hashOf(name)}`)).json()) as {
      verdict: string;
      logs: { origin: string; status: string; reason?: string; excluded?: { reason: string }[] }[];
    };
});
