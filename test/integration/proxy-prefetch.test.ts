/**
 * Closure prefetch: once a path is trusted, the proxy decides its references with one batched
 * `POST /lookup` per log, so the narinfos Nix asks for next are answered without another
 * lookup; with `prefetch-references = false` each is looked up when asked.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ClaimJson } from '../../src/claim/index.js';
import {
  formatNarInfo,
  formatNixSecretKey,
  generateNixSecretKey,
  parseStorePath,
} from '../../src/nix/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { close, createLogger, listen } from '../../src/server/index.js';
import { hashPartOf, makeNar } from '../support/claims.js';
import { type GatewayMode, gateway } from '../support/gateway.js';
import { type TestLog, startTestLog } from '../support/log.js';

const LEAVES = 30;

function path(i: number, references: readonly string[]) {
  const { nar, hash, size } = makeNar(`prefetch path ${i}\n`);
  const hashPart = hashPartOf(i, 'prefetch');
  const claim: ClaimJson = {
    storePath: `/nix/store/${hashPart}-q${i}`,
    narHash: hash,
    narSize: size,
    references: [...references].sort(),
  };
  return { hashPart, claim, nar, baseName: `${hashPart}-q${i}` };
}

/** How many requests a log answered on `route`, from its /metrics. */
async function requests(log: TestLog, route: string): Promise<number> {
  const text = await (await fetch(`${log.url}/metrics`)).text();
  const re = new RegExp(`accord_log_http_requests_total\\{route="${route}",status="200"\\} (\\d+)`);
  return Number(re.exec(text)?.[1] ?? 0);
}

type Rewrite = (answer: { status: number; text: string }) => { status: number; body: string };

/** Rewrites batch lookup answers (POST /lookup) only. */
const onBatches =
  (rewrite: Rewrite): GatewayMode =>
  async (req, upstream) => {
    const text = await upstream.text();
    return req.method === 'POST'
      ? rewrite({ status: upstream.status, text })
      : { status: upstream.status, body: text };
  };

/** Changes the parsed JSON of a batch answer. */
const batchRewrite =
  (change: (body: { paths: Record<string, { entry: string; proof: string }[]> }) => unknown) =>
  ({ text }: { text: string }) => ({
    status: 200,
    body: JSON.stringify(change(JSON.parse(text) as Parameters<typeof change>[0])),
  });

describe('accord proxy prefetches the references of a trusted path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-prefetch-'));
  const leaves = Array.from({ length: LEAVES }, (_, i) => path(i + 1, []));
  const top = path(
    0,
    leaves.map((l) => l.baseName),
  );
  const all = [top, ...leaves];
  let logs: TestLog[];
  let gate: Awaited<ReturnType<typeof gateway>>;
  let upstream: ReturnType<typeof createServer>;
  let upstreamUrl: string;
  const proxies: ProxyService[] = [];

  beforeAll(async () => {
    logs = [
      await startTestLog({ origin: 'p1.example/log' }),
      await startTestLog({ origin: 'p2.example/log' }),
    ];
    for (const log of logs) {
      await log.submit(all.map((p) => p.claim));
      await log.waitForSize(all.length);
    }
    gate = await gateway(() => logs[1]?.url ?? '');
    upstream = createServer((req, res) => {
      const p = all.find(
        (x) => req.url === `/${x.hashPart}.narinfo` || req.url === `/nar/${x.hashPart}.nar`,
      );
      if (p === undefined) res.writeHead(404).end();
      else if (req.url?.endsWith('.narinfo') === true) {
        res.writeHead(200).end(
          formatNarInfo({
            storePath: parseStorePath(p.claim.storePath),
            url: `nar/${p.hashPart}.nar`,
            compression: 'none',
            narHash: {
              algorithm: 'sha256',
              digest: createHash('sha256').update(p.nar).digest(),
            },
            narSize: p.nar.length,
            references: p.claim.references,
            sigs: [],
          }),
        );
      } else res.writeHead(200).end(p.nar);
    });
    upstreamUrl = await listen(upstream, '127.0.0.1', 0);
    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(generateNixSecretKey('pf-proxy-1')));
    writeFileSync(
      join(dir, 'policy'),
      [
        `log ${logs[0]?.vkey ?? ''} ${logs[0]?.url ?? ''}`,
        `log ${logs[1]?.vkey ?? ''} ${gate.url}`,
        'trust builders 2 p1.example/log p2.example/log',
        'decide builders',
        'quorum none',
        '',
      ].join('\n'),
    );
  }, 60_000);

  afterAll(async () => {
    for (const p of proxies) await p.close();
    await gate.close();
    upstream.closeAllConnections();
    await close(upstream, 100);
    for (const l of logs) await l.close();
  });

  async function proxy(name: string, extra: string) {
    writeFileSync(
      join(dir, `${name}.toml`),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "${name}.db"\ncache-ttl-seconds = 60\n${extra}[[upstream]]\nurl = "${upstreamUrl}"\n`,
    );
    const lines: string[] = [];
    const service = await startProxy(
      loadProxyConfig(join(dir, `${name}.toml`)),
      createLogger({ level: 'info', write: (line) => lines.push(line) }),
      '127.0.0.1:0',
    );
    proxies.push(service);
    return { service, lines };
  }

  const counts = async () =>
    Promise.all(
      logs.map(async (l) => ({
        one: await requests(l, 'lookup'),
        many: await requests(l, 'lookup-many'),
      })),
    );

  test('after the top path, every reference is answered without another lookup', async () => {
    const { service, lines } = await proxy('on', '');
    const before = await counts();
    const res = await fetch(`${service.url}/${top.hashPart}.narinfo`);
    expect(res.status).toBe(200);
    // The prefetch runs after the answer: wait until every leaf was decided.
    for (let i = 0; i < 200; i++) {
      if (lines.filter((l) => l.includes('"prefetched":true')).length === LEAVES) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(lines.filter((l) => l.includes('"prefetched":true'))).toHaveLength(LEAVES);
    const prefetched = await counts();
    for (const [i, c] of prefetched.entries()) {
      expect(c.one - (before[i]?.one ?? 0)).toBe(1); // the top path
      expect(c.many - (before[i]?.many ?? 0)).toBe(1); // all its references at once
    }
    for (const leaf of leaves) {
      const answer = await fetch(`${service.url}/${leaf.hashPart}.narinfo`);
      expect(answer.status).toBe(200);
      expect(await answer.text()).toContain(`StorePath: ${leaf.claim.storePath}\n`);
      const nar = Buffer.from(
        await (
          await fetch(`${service.url}/nar/${leaf.hashPart}-${leaf.claim.narHash.slice(7)}.nar`)
        ).arrayBuffer(),
      );
      expect(nar.equals(leaf.nar)).toBe(true);
    }
    expect(await counts()).toEqual(prefetched);
  });

  test('with prefetch-references = false each path is looked up when Nix asks', async () => {
    const { service, lines } = await proxy('off', 'prefetch-references = false\n');
    const before = await counts();
    for (const p of all)
      expect((await fetch(`${service.url}/${p.hashPart}.narinfo`)).status).toBe(200);
    const after = await counts();
    for (const [i, c] of after.entries()) {
      expect(c.one - (before[i]?.one ?? 0)).toBe(all.length);
      expect(c.many - (before[i]?.many ?? 0)).toBe(0);
    }
    expect(lines.some((l) => l.includes('"prefetched":true'))).toBe(false);
  });

  test.each<[string, Rewrite, RegExp]>([
    ['an answer that is not JSON', () => ({ status: 200, body: '{"paths": ' }), /not JSON/],
    ['a 500', () => ({ status: 500, body: 'oops' }), /HTTP 500/],
    [
      'a path left out',
      batchRewrite((b) => ({
        ...b,
        paths: Object.fromEntries(Object.entries(b.paths).slice(1)),
      })),
      /lacks/,
    ],
    [
      'a flipped proof hash',
      batchRewrite((b) => {
        const [first] = Object.values(b.paths);
        if (first?.[0] !== undefined) {
          first[0].proof = first[0].proof.replace(
            /\nindex (\d+)\n(.)/,
            (_, n: string, c: string) => `\nindex ${n}\n${c === 'A' ? 'B' : 'A'}`,
          );
        }
        return b;
      }),
      /inclusion|proof/,
    ],
    [
      'entries swapped between two paths',
      batchRewrite((b) => {
        const keys = Object.keys(b.paths);
        const [x, y] = [keys[0] ?? '', keys[1] ?? ''];
        [b.paths[x], b.paths[y]] = [b.paths[y] ?? [], b.paths[x] ?? []];
        return b;
      }),
      /is about/,
    ],
  ])(
    'a batch answer with %s is rejected whole; each path is decided when asked',
    async (name, rewrite, reason) => {
      gate.set(onBatches(rewrite));
      const { service, lines } = await proxy(`bad-${name.replace(/\W+/g, '-')}`, '');
      try {
        expect((await fetch(`${service.url}/${top.hashPart}.narinfo`)).status).toBe(200);
        for (let i = 0; i < 200 && !lines.some((l) => l.includes('"paths":30')); i++) {
          await new Promise((r) => setTimeout(r, 25));
        }
        const failure = lines.find(
          (l) => l.includes('log lookup failed') && l.includes('"paths":30'),
        );
        expect(failure).toMatch(reason);
        expect(lines.some((l) => l.includes('"prefetched":true'))).toBe(false);
      } finally {
        gate.set(undefined);
      }
      // Nothing wrong was kept: asked now, a leaf is looked up afresh and served.
      const leaf = leaves[5] ?? top;
      expect((await fetch(`${service.url}/${leaf.hashPart}.narinfo`)).status).toBe(200);
      expect(lines.some((l) => l.includes('distrusted'))).toBe(false);
    },
  );

  test('a request that joins a failing prefetch is decided on its own, never refused for it', async () => {
    // The batch answer comes late and broken, so the leaf's request below waits on it.
    gate.set(async (req, upstream) => {
      const text = await upstream.text();
      if (req.method !== 'POST') return { status: upstream.status, body: text };
      await new Promise((r) => setTimeout(r, 300));
      return { status: 200, body: '{"paths": ' };
    });
    const { service, lines } = await proxy('joined', '');
    try {
      expect((await fetch(`${service.url}/${top.hashPart}.narinfo`)).status).toBe(200);
      const leaf = leaves[7] ?? top;
      const answer = await fetch(`${service.url}/${leaf.hashPart}.narinfo`);
      expect(lines.some((l) => l.includes('log lookup failed') && l.includes('"paths":30'))).toBe(
        true,
      );
      expect(answer.status).toBe(200);
      expect(await answer.text()).toContain(`StorePath: ${leaf.claim.storePath}\n`);
    } finally {
      gate.set(undefined);
    }
  });
});
