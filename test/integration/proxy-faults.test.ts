/**
 * The proxy against hostile and failing logs and upstream caches (no Nix needed): every bad
 * answer is a 404 with a logged reason — never a crash, a 5xx, or a trusted answer — and a log
 * that never answers does not hold a request past the deadline.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import {
  NarParser,
  formatNarInfo,
  formatNixSecretKey,
  generateNixSecretKey,
  parseStorePath,
} from '../../src/nix/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { close, createLogger, listen } from '../../src/server/index.js';
import { claimWithNar } from '../support/claims.js';
import { type GatewayMode, gateway } from '../support/gateway.js';
import { type TestLog, startTestLog } from '../support/log.js';

/** A claim for test path `i` with a real NAR behind it (`pad` more bytes of contents). */
const pathWithNar = (i: number, pad = 0) =>
  claimWithNar(i, 'faults', `contents of path ${i}\n${'x'.repeat(pad)}`);

/** Rewrites the JSON of a /lookup answer. */
const lookupRewrite =
  (change: (body: Record<string, unknown>) => unknown): GatewayMode =>
  async (req, upstream) => {
    const text = await upstream.text();
    if (!(req.url ?? '').startsWith('/lookup/')) return { status: upstream.status, body: text };
    return {
      status: 200,
      body: JSON.stringify(change(JSON.parse(text) as Record<string, unknown>)),
    };
  };

describe('accord proxy against hostile logs and upstreams', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-faults-'));
  const logLines: string[] = [];
  let logs: TestLog[];
  let shadow: TestLog; // same key and origin as log 3, different history (a fork)
  let gate: Awaited<ReturnType<typeof gateway>>;
  let cache: {
    url: string;
    set: (
      h: (
        path: string,
      ) => { status: number; body: Buffer | string } | { cut: Buffer } | 'hang' | undefined,
    ) => void;
    close: () => Promise<void>;
  };
  let proxy: ProxyService;
  const paths = Array.from({ length: 40 }, (_, i) => pathWithNar(i));
  // Paths whose NARs the upstream corrupts, one per case: six small (fetched whole), six
  // large (over 64 KiB, streamed). Logs 1 and 2 claim them.
  const corruptible = [
    ...Array.from({ length: 6 }, (_, i) => pathWithNar(40 + i)),
    ...Array.from({ length: 6 }, (_, i) => pathWithNar(60 + i, 70_000)),
  ];
  const big = pathWithNar(48, 70_000); // a large NAR served honestly
  // For the proxy that fetches NARs ahead: honest small, wrong small, large.
  const aheadPaths = [pathWithNar(50), pathWithNar(51), pathWithNar(52, 70_000)];
  const twoCaches = pathWithNar(53); // the preferred cache serves a wrong NAR, the other the right one
  const cutBig = pathWithNar(70, 70_000); // its download breaks after the first bytes
  const extra = [...corruptible, big, ...aheadPaths, twoCaches, cutBig];
  const narinfo = (p: (typeof paths)[number]) =>
    formatNarInfo({
      storePath: parseStorePath(p.claim.storePath),
      url: `nar/${p.hashPart}.nar`,
      compression: 'none',
      narHash: { algorithm: 'sha256', digest: createHash('sha256').update(p.nar).digest() },
      narSize: p.nar.length,
      references: [],
      sigs: [],
    });

  beforeAll(async () => {
    logs = [
      await startTestLog({ origin: 'f1.example/log' }),
      await startTestLog({ origin: 'f2.example/log' }),
    ];
    const seed = randomBytes(32);
    logs.push(await startTestLog({ origin: 'f3.example/log', seed }));
    shadow = await startTestLog({ origin: 'f3.example/log', seed });
    gate = await gateway(() => logs[2]?.url ?? '');
    // Log 1 claims every path; log 2 only the first 10 ("agreed"); log 3 all but those.
    await logs[0]?.submit([...paths, ...extra].map((p) => p.claim));
    await logs[1]?.submit([...paths.slice(0, 10), ...extra].map((p) => p.claim));
    await logs[2]?.submit(paths.slice(10).map((p) => p.claim));
    // The shadow log has as many entries as log 3, in another order: a fork of equal size.
    await shadow.submit(
      paths
        .slice(10)
        .reverse()
        .map((p) => p.claim),
    );
    for (const l of [...logs, shadow])
      await l.waitForSize((await l.service.storage.state()).nextIndex);
    // The upstream: serves every narinfo and NAR unless a test says otherwise.
    let handler: Parameters<typeof cache.set>[0] = () => undefined;
    const upstream = createServer((req, res) => {
      const path = req.url ?? '';
      const special = handler(path);
      if (special === 'hang') return;
      if (special !== undefined && 'cut' in special) {
        // Headers and a first piece, then the connection drops.
        res.writeHead(200, { 'Content-Length': String(special.cut.length + 1) });
        res.write(special.cut);
        setTimeout(() => res.socket?.destroy(), 10);
        return;
      }
      if (special !== undefined) {
        res.writeHead(special.status).end(special.body);
        return;
      }
      const p = [...paths, ...extra].find(
        (x) => path === `/${x.hashPart}.narinfo` || path === `/nar/${x.hashPart}.nar`,
      );
      if (p === undefined) res.writeHead(404).end();
      else if (path.endsWith('.narinfo')) res.writeHead(200).end(narinfo(p));
      else res.writeHead(200, { 'Content-Length': String(p.nar.length) }).end(p.nar);
    });
    const upstreamUrl = await listen(upstream, '127.0.0.1', 0);
    cache = {
      url: upstreamUrl,
      set: (h) => {
        handler = h;
      },
      close: () => {
        upstream.closeAllConnections();
        return close(upstream, 100);
      },
    };
    writeFileSync(
      join(dir, 'proxy.sk'),
      formatNixSecretKey(generateNixSecretKey('faults-proxy-1')),
    );
    writeFileSync(
      join(dir, 'policy'),
      [
        `log ${logs[0]?.vkey ?? ''} ${logs[0]?.url ?? ''}`,
        `log ${logs[1]?.vkey ?? ''} ${logs[1]?.url ?? ''}`,
        `log ${logs[2]?.vkey ?? ''} ${gate.url}`,
        'trust builders 2 f1.example/log f2.example/log f3.example/log',
        'decide builders',
        'quorum none',
        '',
      ].join('\n'),
    );
    writeFileSync(
      // No disk tier: every NAR over 64 KiB streams, the path these cases test (proxy-disk
      // tests the disk tier).
      join(dir, 'proxy.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "proxy.db"\nlog-timeout-ms = 800\nnarinfo-deadline-ms = 2000\nupstream-timeout-ms = 800\ncache-ttl-seconds = 0\nnegative-ttl-seconds = 0\nprefetch-nars = false\nverify-before-send-mib = 0\nnar-disk-cache-mib = 0\n[[upstream]]\nurl = "${cache.url}"\n`,
    );
    const logger = createLogger({ level: 'debug', write: (line) => logLines.push(line) });
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), logger, '127.0.0.1:0');
  }, 60_000);

  afterAll(async () => {
    await proxy.close();
    await gate.close();
    await cache.close();
    for (const l of [...logs, shadow]) await l.close();
  });

  const get = (p: (typeof paths)[number]) => fetch(`${proxy.url}/${p.hashPart}.narinfo`);
  const explain = async (p: (typeof paths)[number]) =>
    (await (await fetch(`${proxy.url}/explain/${p.hashPart}`)).json()) as {
      verdict: string;
      logs: { origin: string; status: string; reason?: string }[];
    };

  test('the honest baseline: a path two logs claim is served; the NAR streams verified', async () => {
    const res = await get(paths[10] as (typeof paths)[number]);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^StorePath: /);
    const url = /URL: (\S+)/.exec(text)?.[1] ?? '';
    const nar = Buffer.from(await (await fetch(`${proxy.url}/${url}`)).arrayBuffer());
    expect(nar.equals(paths[10]?.nar ?? Buffer.alloc(0))).toBe(true);
    // A NAR over 64 KiB is streamed rather than fetched whole.
    const bigInfo = await (await get(big)).text();
    const bigUrl = /URL: (\S+)/.exec(bigInfo)?.[1] ?? '';
    const bigNar = Buffer.from(await (await fetch(`${proxy.url}/${bigUrl}`)).arrayBuffer());
    expect([bigNar.length > 64 << 10, bigNar.equals(big.nar)]).toEqual([true, true]);
  });

  test('a verified NAR is served again from memory, without asking the upstream', async () => {
    const p = paths[3] as (typeof paths)[number];
    let downloads = 0;
    cache.set((path) => {
      if (path === `/nar/${p.hashPart}.nar`) downloads++;
      return undefined;
    });
    try {
      const info = await (await get(p)).text();
      expect(info).toMatch(/^StorePath: /);
      const url = /URL: (\S+)/.exec(info)?.[1] ?? '';
      for (let i = 0; i < 3; i++) {
        const nar = Buffer.from(await (await fetch(`${proxy.url}/${url}`)).arrayBuffer());
        expect(nar.equals(p.nar)).toBe(true);
      }
      const head = await fetch(`${proxy.url}/${url}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(p.nar.length));
      expect(downloads).toBe(1);
      const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
      expect(metrics).toMatch(/accord_proxy_nar_total\{outcome="cached"\} 3\n/);
      expect(metrics).toMatch(/accord_proxy_nar_cache_bytes \d+\n/);
    } finally {
      cache.set(() => undefined);
    }
  });

  // Paths 11… are claimed by log 1 and log 3 only: a bad answer from log 3 must refuse them.
  test.each<[string, GatewayMode, RegExp]>([
    [
      'a lookup answer that is not JSON',
      async () => Promise.resolve({ status: 200, body: '{"checkpoint": ' }),
      /not JSON/,
    ],
    [
      'an oversized lookup answer',
      async () => Promise.resolve({ status: 200, body: 'x'.repeat(5 << 20) }),
      /larger than/,
    ],
    ['a 500 from the log', async () => Promise.resolve({ status: 500, body: 'oops' }), /HTTP 500/],
    [
      'a checkpoint with a broken signature',
      lookupRewrite((b) => ({
        ...b,
        checkpoint: String(b.checkpoint).replace(
          / (\S)(\S{20})/,
          (_, c: string, rest: string) => ` ${c}${rest.split('').reverse().join('')}`,
        ),
      })),
      /answer rejected/,
    ],
    [
      'a checkpoint signed by another key',
      lookupRewrite((b) => ({
        ...b,
        checkpoint: String(b.checkpoint).replace(/\n— .*\n$/, '\n— f3.example/log AAAAAAAA\n'),
      })),
      /answer rejected/,
    ],
    [
      'an inclusion proof with a flipped hash',
      lookupRewrite((b) => ({
        ...b,
        entries: (b.entries as { proof: string }[]).map((e) => ({
          ...e,
          proof: e.proof.replace(
            /\nindex (\d+)\n(.)/,
            (_, n: string, c: string) => `\nindex ${n}\n${c === 'A' ? 'B' : 'A'}`,
          ),
        })),
      })),
      /answer rejected|inclusion/,
    ],
    [
      'an entry swapped for another path',
      lookupRewrite((b) => ({
        ...b,
        entries: (b.entries as { entry: string }[]).map((e) => ({
          ...e,
          entry: e.entry.replace('nar-size', 'nar-size 9'),
        })),
      })),
      /answer rejected/,
    ],
    [
      'a proof against another checkpoint',
      lookupRewrite((b) => ({
        ...b,
        checkpoint: String(b.checkpoint).replace(/\n\d+\n/, '\n1\n'),
      })),
      /answer rejected/,
    ],
  ])('%s: refused with a reason, nothing trusted', async (_, mode, reason) => {
    const p = paths[11] as (typeof paths)[number];
    gate.set(mode);
    try {
      const res = await get(p);
      expect(res.status).toBe(404);
      expect(res.headers.get('x-accord-reason')).toMatch(/no-quorum/);
      const log3 = (await explain(p)).logs.find((l) => l.origin === 'f3.example/log');
      // The claim log 3 made honestly earlier would still count (verified before); this path
      // was never asked before, so the vote is simply missing, with the reason.
      expect(log3?.status).toBe('missing');
      expect(log3?.reason).toMatch(reason);
    } finally {
      gate.set(undefined);
    }
  });

  test('a log that never answers does not hold the request past the deadline', async () => {
    gate.set(() => Promise.resolve('hang'));
    try {
      const res = await get(paths[12] as (typeof paths)[number]);
      expect(res.status).toBe(404);
      const log3 = (await explain(paths[12] as (typeof paths)[number])).logs.find(
        (l) => l.origin === 'f3.example/log',
      );
      expect(log3?.reason).toMatch(/no answer within|within 800 ms/);
    } finally {
      gate.set(undefined);
    }
  });

  test('a fork (same origin and key, another history) distrusts the log and is reported', async () => {
    // The proxy has seen log 3's real tree; now it is shown the shadow tree of the same size.
    expect((await get(paths[13] as (typeof paths)[number])).status).toBe(200);
    gate.set(async (req) => {
      const res = await fetch(`${shadow.url}${req.url ?? ''}`);
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
    });
    try {
      const res = await get(paths[30] as (typeof paths)[number]);
      expect(res.status).toBe(404);
      const log3 = (await explain(paths[30] as (typeof paths)[number])).logs.find(
        (l) => l.origin === 'f3.example/log',
      );
      expect(log3?.reason).toMatch(/distrusted: fork: two roots for size 30/);
      expect(logLines.some((l) => l.includes('log misbehaves: distrusted'))).toBe(true);
      const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
      expect(metrics).toMatch(/accord_proxy_log_misbehaviour_total\{log="f3.example\/log"\} 1/);
    } finally {
      gate.set(undefined);
    }
    // Distrust is for good: even the honest log 3 no longer counts, and the headline says so.
    const after = await get(paths[14] as (typeof paths)[number]);
    expect(after.status).toBe(404);
    expect(after.headers.get('x-accord-reason')).toMatch(
      /\(distrusted for a fork: f3\.example\/log\)$/,
    );
  });

  // Paths 0–9 are claimed by logs 1 and 2 (trusted); the upstream misbehaves.
  test('a small NAR is fetched ahead with its narinfo; a wrong one is caught then, never sent', async () => {
    writeFileSync(
      join(dir, 'ahead.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "ahead.db"\n[[upstream]]\nurl = "${cache.url}"\n`,
    );
    const ahead = await startProxy(
      loadProxyConfig(join(dir, 'ahead.toml')),
      createLogger({ level: 'debug', write: (line) => logLines.push(line) }),
      '127.0.0.1:0',
    );
    const [honest, wrong, large] = aheadPaths as [
      (typeof paths)[number],
      (typeof paths)[number],
      (typeof paths)[number],
    ];
    const seen: string[] = [];
    cache.set((path) => {
      seen.push(path);
      return path === `/nar/${wrong.hashPart}.nar`
        ? { status: 200, body: Buffer.alloc(wrong.nar.length, 7) }
        : undefined;
    });
    try {
      const urls: string[] = [];
      for (const p of aheadPaths) {
        const info = await (await fetch(`${ahead.url}/${p.hashPart}.narinfo`)).text();
        urls.push(/URL: (\S+)/.exec(info)?.[1] ?? '');
      }
      let metrics = '';
      const settled = (m: string) =>
        /outcome="mismatch"\} 1\n/.test(m) && /outcome="prefetched"\} 1\n/.test(m);
      for (let i = 0; i < 100 && !settled(metrics); i++) {
        await new Promise((r) => setTimeout(r, 20));
        metrics = await (await fetch(`${ahead.url}/metrics`)).text();
      }
      expect(metrics).toMatch(/accord_proxy_nar_total\{outcome="prefetched"\} 1\n/);
      expect(metrics).toMatch(/accord_proxy_nar_total\{outcome="mismatch"\} 1\n/);
      const narRequests = (p: (typeof paths)[number]) =>
        seen.filter((x) => x === `/nar/${p.hashPart}.nar`).length;
      // Before Nix asks: the small NARs were fetched, the large one was not.
      expect([narRequests(honest), narRequests(wrong), narRequests(large)]).toEqual([1, 1, 0]);
      const honestNar = await fetch(`${ahead.url}/${urls[0] ?? ''}`);
      expect(Buffer.from(await honestNar.arrayBuffer()).equals(honest.nar)).toBe(true);
      expect(narRequests(honest)).toBe(1);
      // The only upstream is out for the wrong one: 404, and its bytes are never sent.
      const wrongNar = await fetch(`${ahead.url}/${urls[1] ?? ''}`);
      expect(wrongNar.status).toBe(404);
      expect(logLines.some((l) => l.includes('upstream NAR does not match: caught ahead'))).toBe(
        true,
      );
      const largeNar = await fetch(`${ahead.url}/${urls[2] ?? ''}`);
      expect(Buffer.from(await largeNar.arrayBuffer()).equals(large.nar)).toBe(true);
    } finally {
      cache.set(() => undefined);
      await ahead.close();
    }
  });

  test("a wrong small NAR from the preferred cache: the same request gets the next cache's copy", async () => {
    // A second, honest cache with the same narinfo and NAR for this path.
    const honestRequests: string[] = [];
    const honestCache = createServer((req, res) => {
      honestRequests.push(req.url ?? '');
      if (req.url === `/${twoCaches.hashPart}.narinfo`) res.writeHead(200).end(narinfo(twoCaches));
      else if (req.url === `/nar/${twoCaches.hashPart}.nar`) res.writeHead(200).end(twoCaches.nar);
      else res.writeHead(404).end();
    });
    const honestUrl = await listen(honestCache, '127.0.0.1', 0);
    writeFileSync(
      join(dir, 'two.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "two.db"\nprefetch-nars = false\n` +
        `[[upstream]]\nurl = "${cache.url}"\npriority = 10\n[[upstream]]\nurl = "${honestUrl}"\npriority = 20\n`,
    );
    const two = await startProxy(
      loadProxyConfig(join(dir, 'two.toml')),
      createLogger({ level: 'debug', write: (line) => logLines.push(line) }),
      '127.0.0.1:0',
    );
    let wrongServed = 0;
    cache.set((path) => {
      if (path !== `/nar/${twoCaches.hashPart}.nar`) return undefined;
      wrongServed++;
      return { status: 200, body: Buffer.from(twoCaches.nar).fill(0x41, 60, 61) };
    });
    try {
      const info = await (await fetch(`${two.url}/${twoCaches.hashPart}.narinfo`)).text();
      const url = /URL: (\S+)/.exec(info)?.[1] ?? '';
      const res = await fetch(`${two.url}/${url}`);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(twoCaches.nar)).toBe(true);
      expect(wrongServed).toBe(1);
      expect(honestRequests.filter((r) => r.startsWith('/nar/'))).toHaveLength(1);
      const metrics = await (await fetch(`${two.url}/metrics`)).text();
      expect(metrics).toMatch(/accord_proxy_nar_total\{outcome="mismatch"\} 1\n/);
      expect(metrics).toMatch(/accord_proxy_nar_total\{outcome="ok"\} 1\n/);
    } finally {
      cache.set(() => undefined);
      await two.close();
      await close(honestCache);
    }
  });

  /** One character of the file's contents changed: the archive stays well-formed. */
  const otherContents = (nar: Buffer) => {
    const changed = Buffer.from(nar);
    const at = changed.indexOf('contents of path');
    changed[at] = 'C'.charCodeAt(0);
    return changed;
  };
  const corruptions: [string, (nar: Buffer) => Buffer][] = [
    ['a well-formed NAR with other contents', otherContents],
    ['bytes that are not a NAR', (nar) => Buffer.alloc(nar.length, 7)],
    [
      'a NAR with one byte changed',
      (nar) => Buffer.from(nar).fill(0x41, nar.length - 20, nar.length - 19),
    ],
    ['a NAR one byte short', (nar) => nar.subarray(0, nar.length - 1)],
    ['a NAR with trailing bytes', (nar) => Buffer.concat([nar, Buffer.alloc(8)])],
    ['an empty body', () => Buffer.alloc(0)],
  ];

  /** Has the upstream serve `corrupt(nar)` for `p`, and asks the proxy for p's NAR. */
  async function fetchCorrupted(p: (typeof paths)[number], corrupt: (nar: Buffer) => Buffer) {
    cache.set((path) =>
      path === `/nar/${p.hashPart}.nar` ? { status: 200, body: corrupt(p.nar) } : undefined,
    );
    try {
      const info = await (await get(p)).text();
      const url = /URL: (\S+)/.exec(info)?.[1];
      if (url === undefined) throw new Error(`no narinfo: ${info}`);
      let status: number | undefined;
      try {
        const res = await fetch(`${proxy.url}/${url}`);
        status = res.status;
        return { status, body: Buffer.from(await res.arrayBuffer()) };
      } catch {
        return { status, body: undefined }; // the connection was cut
      }
    } finally {
      cache.set(() => undefined);
    }
  }

  test.each(corruptions.map(([name, corrupt], i) => [name, corrupt, i] as const))(
    'upstream serving %s for a small NAR: 404 before a byte of it is sent',
    async (_, corrupt, i) => {
      const p = corruptible[i] as (typeof paths)[number];
      const { status, body } = await fetchCorrupted(p, corrupt);
      expect(status).toBe(404);
      expect(body?.toString()).toMatch(/no upstream cache has the agreed NAR/);
      // The only upstream is never used for this path again.
      expect((await get(p)).status).toBe(404);
    },
  );

  test.each(corruptions.map(([name, corrupt], i) => [name, corrupt, i] as const))(
    'upstream serving %s for a large NAR: the response is cut, never a complete wrong NAR',
    async (name, corrupt, i) => {
      const p = corruptible[6 + i] as (typeof paths)[number];
      expect(p.nar.length).toBeGreaterThan(64 << 10);
      const { status, body } = await fetchCorrupted(p, corrupt);
      // Caught before the response began (its first MiB is held back): a 404, as there is no
      // other cache. Otherwise the response began and is cut.
      if (name === 'an empty body') expect(status).toBe(404); // nothing began: no empty reply
      if (status === 404) expect(body?.toString()).toMatch(/no upstream cache has the agreed NAR/);
      else if (body !== undefined) {
        expect(body.equals(corrupt(p.nar))).toBe(false);
        expect(body.length).toBeLessThan(p.nar.length);
      }
      expect((await get(p)).status).toBe(404);
    },
  );

  test.each<
    [
      string,
      (path: string) => { status: number; body: Buffer | string } | 'hang' | undefined,
      RegExp,
    ]
  >([
    ['a malformed narinfo', () => ({ status: 200, body: 'StorePath: nonsense\n' }), /no upstream/],
    [
      'a narinfo with another NarHash',
      (path) =>
        path.endsWith('.narinfo')
          ? {
              status: 200,
              body: narinfo(paths[9] as (typeof paths)[number]).replace(
                paths[9]?.hashPart ?? '',
                paths[1]?.hashPart ?? '',
              ),
            }
          : undefined,
      /no upstream/,
    ],
    ['a 500 for the narinfo', () => ({ status: 500, body: 'down' }), /no upstream/],
    ['a narinfo that never comes', () => 'hang', /no upstream/],
  ])('upstream with %s: 404, never a 5xx', async (_, handler, reason) => {
    cache.set(handler);
    try {
      const res = await get(paths[1] as (typeof paths)[number]);
      expect(res.status).toBe(404);
      expect(res.headers.get('x-accord-reason')).toMatch(reason);
    } finally {
      cache.set(() => undefined);
    }
  });

  test.each([
    ['another host', () => 'http://upstream.invalid/nar/x.nar', /another host or port/, 5],
    [
      'another port',
      (port: number) => `http://127.0.0.1:${port}/nar/x.nar`,
      /another host or port/,
      6,
    ],
    ['a file:// path', () => 'file:///etc/passwd', /leaves http:/, 7],
    ['credentials', () => `${cache.url.replace('//', '//user:pw@')}/nar/x.nar`, /credentials/, 8],
  ] as const)(
    'a narinfo whose URL names %s makes no request there and is a 404 naming the reason',
    async (_, target, reason, i) => {
      let asked = 0;
      const elsewhere = createServer((req, res) => {
        asked++;
        res.writeHead(200).end('x');
      });
      const port = Number(new URL(await listen(elsewhere, '127.0.0.1', 0)).port);
      const p = paths[i] as (typeof paths)[number];
      cache.set((path) =>
        path === `/${p.hashPart}.narinfo`
          ? { status: 200, body: narinfo(p).replace(/^URL: .*$/m, `URL: ${target(port)}`) }
          : undefined,
      );
      try {
        // Earlier tests made the upstream fail: wait out its back-off.
        await vi.waitFor(
          () => {
            expect(proxy.resolver.upstreams.every((u) => u.available())).toBe(true);
          },
          { timeout: 30_000, interval: 100 },
        );
        const res = await get(p);
        expect(res.status).toBe(404);
        expect(res.headers.get('x-accord-reason')).toMatch(reason);
        expect(res.headers.get('x-accord-reason')).toMatch(/no upstream cache has the agreed NAR/);
        expect(asked).toBe(0);
      } finally {
        cache.set(() => undefined);
        await close(elsewhere, 100);
      }
    },
  );

  test('a large NAR whose download breaks after its first bytes: a 404, never an empty 200', async () => {
    cache.set((path) =>
      path === `/nar/${cutBig.hashPart}.nar` ? { cut: cutBig.nar.subarray(0, 1000) } : undefined,
    );
    try {
      const info = await (await get(cutBig)).text();
      const url = /URL: (\S+)/.exec(info)?.[1] ?? '';
      const res = await fetch(`${proxy.url}/${url}`);
      expect(res.status).toBe(404);
      const text = await res.text();
      expect(text).toMatch(/^NAR not available: /);
      expect(text).not.toContain(`/nar/${cutBig.hashPart}.nar`);
    } finally {
      cache.set(() => undefined);
    }
  });

  test('the well-formed corruption is a valid archive: only the hash check can catch it', () => {
    for (const p of [corruptible[0], corruptible[6]] as (typeof paths)[number][]) {
      const changed = otherContents(p.nar);
      expect(changed.equals(p.nar)).toBe(false);
      const parser = new NarParser();
      parser.push(changed);
      parser.end();
    }
  });
});
