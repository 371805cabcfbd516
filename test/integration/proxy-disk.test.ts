/**
 * The proxy's disk tier: NARs up to verify-before-send-mib are downloaded to disk and checked
 * whole before a byte is sent, so a wrong NAR from the preferred cache never reaches the client
 * when another cache has the right one; verified NARs stay on disk (content-addressed,
 * size-capped, least recently used out first) across restarts, for every client, with the
 * upstreams gone.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeNix32 } from '../../src/nix/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { close, listen, silentLogger } from '../../src/server/index.js';
import { claimWithNar } from '../support/claims.js';
import { runAccord } from '../support/cli.js';
import { type LogProcess, startServerProcess } from '../support/log-process.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { narinfoFor, writeProxyFiles } from '../support/proxy-world.js';

/** A path with a NAR of about `size` bytes. */
const pathOfSize = (i: number, size: number) =>
  claimWithNar(i, 'disk', `contents of path ${i}\n${'x'.repeat(size)}`);
type Path = ReturnType<typeof pathOfSize>;

/** One character of the file's contents changed: the archive stays well-formed. */
function otherContents(nar: Buffer): Buffer {
  const changed = Buffer.from(nar);
  changed[changed.indexOf('contents of path')] = 'C'.charCodeAt(0);
  return changed;
}

/** A binary cache of `paths`, serving `serve(p, nar)` as each NAR; it counts NAR requests. */
async function cache(paths: readonly Path[], serve: (nar: Buffer) => Buffer) {
  let narRequests = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const name = (req.url ?? '').slice(1);
    for (const p of paths) {
      if (name === `${p.hashPart}.narinfo`) {
        return void res.writeHead(200).end(narinfoFor(p));
      }
      if (name === `nar/${p.hashPart}.nar`) {
        narRequests++;
        return void res.writeHead(200).end(serve(p.nar));
      }
    }
    res.writeHead(404).end();
  });
  const url = await listen(server, '127.0.0.1', 0);
  return { url, narRequests: () => narRequests, close: () => close(server, 100) };
}

/** The NAR files under the disk cache, with whether each one's contents hash to its name. */
function diskFiles(dir: string): { name: string; verified: boolean }[] {
  return readdirSync(join(dir, 'nar')).map((name) => {
    const digest = createHash('sha256')
      .update(readFileSync(join(dir, 'nar', name)))
      .digest();
    return { name, verified: name === `${encodeNix32(digest)}.nar` };
  });
}

describe('the proxy disk tier', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-disk-'));
  const diskDir = join(dir, 'nars');
  // Over and under the 1 MiB a streamed NAR holds back, and a small one.
  const paths = [
    pathOfSize(0, 20_000),
    pathOfSize(1, 300_000),
    pathOfSize(2, 2_500_000),
    pathOfSize(3, 6_000_000),
  ];
  let logs: TestLog[];
  let liar: Awaited<ReturnType<typeof cache>>;
  let honest: Awaited<ReturnType<typeof cache>>;
  let proxy: ProxyService;
  const writeConfig = (extra = '') =>
    writeFileSync(
      join(dir, 'proxy.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "proxy.db"\nnar-cache-mib = 0\nprefetch-nars = false\n` +
        `nar-disk-cache = "nars"\n${extra}` +
        `[[upstream]]\nurl = "${liar.url}"\npriority = 10\n[[upstream]]\nurl = "${honest.url}"\npriority = 20\n`,
    );
  const narOf = async (p: Path) => {
    const narinfo = await fetch(`${proxy.url}/${p.hashPart}.narinfo`);
    expect(narinfo.status).toBe(200);
    const url = /^URL: (\S+)$/m.exec(await narinfo.text())?.[1] ?? '';
    const res = await fetch(`${proxy.url}/${url}`);
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  };

  beforeAll(async () => {
    logs = [await startTestLog(), await startTestLog()];
    for (const log of logs) {
      expect((await log.submit(paths.map((p) => p.claim))).status).toBe(200);
      await log.waitForSize(paths.length);
    }
    liar = await cache(paths, otherContents);
    honest = await cache(paths, (nar) => nar);
    writeProxyFiles(dir, 'disk-proxy-1', logs);
    writeConfig();
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger, '127.0.0.1:0');
  });
  afterAll(async () => {
    await proxy.close();
    await liar.close().catch(() => undefined);
    await honest.close().catch(() => undefined);
    for (const log of logs) await log.close();
  });

  test('a well-formed wrong NAR from the preferred cache: the first request gets the honest NAR whole', async () => {
    for (const p of paths) {
      const got = await narOf(p);
      expect(got.status).toBe(200);
      expect(got.body.equals(p.nar), `NAR of ${p.claim.narSize} bytes`).toBe(true);
    }
    expect(liar.narRequests()).toBe(paths.length);
    // Only verified NARs are on disk: one per path, each named by the hash of its contents.
    expect(diskFiles(diskDir)).toEqual(
      paths
        .map((p) => ({ name: `${p.claim.narHash.slice(7)}.nar`, verified: true }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    );
    expect(readdirSync(join(diskDir, 'tmp'))).toEqual([]);
  });

  test('/explain and accord explain --json say, per upstream, why it gave the NAR or not, as plain data', async () => {
    const p = paths[2] as Path;
    const http = await (await fetch(`${proxy.url}/explain/${p.hashPart}`)).text();
    const cli = await runAccord([
      'explain',
      '--json',
      '--config',
      join(dir, 'proxy.toml'),
      p.claim.storePath,
    ]);
    expect(cli.code).toBe(0);
    const [fromHttp, fromCli] = [http, cli.stdout].map(
      (t) => JSON.parse(t) as Record<string, unknown>,
    );
    expect(fromCli).toEqual(fromHttp);
    expect(fromHttp).toMatchObject({
      verdict: 'trusted',
      served: true,
      nar: { narHash: p.claim.narHash, narSize: p.claim.narSize },
      upstreams: [
        { upstream: liar.url, outcome: 'caught with a wrong NAR' },
        { upstream: honest.url, outcome: 'serves the NAR' },
      ],
    });
    // Plain data: hashes are sha256:<nix32> strings, never byte arrays.
    expect(http).not.toMatch(/"digest"|"0":/);
    expect(JSON.stringify(fromHttp?.logs)).toContain(p.claim.narHash);
    const text = await runAccord([
      'explain',
      '--config',
      join(dir, 'proxy.toml'),
      p.claim.storePath,
    ]);
    expect(text.stdout).toContain(
      `upstream caches:\n  ${liar.url}: caught with a wrong NAR\n  ${honest.url}: serves the NAR\n`,
    );
  });

  test('with the upstreams gone, another client — and a restarted proxy — is served from disk', async () => {
    await liar.close();
    await honest.close();
    for (const p of paths) {
      const got = await narOf(p);
      expect(got.status).toBe(200);
      expect(got.body.equals(p.nar)).toBe(true);
    }
    await proxy.close();
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger, '127.0.0.1:0');
    for (const p of paths) expect((await narOf(p)).body.equals(p.nar)).toBe(true);
  });

  test('the cache is capped: least recently used NARs leave first, on start too', async () => {
    await proxy.close();
    // 8 MiB holds the 6 MB NAR and one small one at most; the most recently used stay.
    writeConfig('nar-disk-cache-mib = 8\n');
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger, '127.0.0.1:0');
    const kept = diskFiles(diskDir).map((f) => f.name);
    const size = (p: Path) => p.claim.narSize;
    expect(kept.length).toBeLessThan(paths.length);
    const total = paths
      .filter((p) => kept.includes(`${p.claim.narHash.slice(7)}.nar`))
      .reduce((n, p) => n + size(p), 0);
    expect(total).toBeLessThanOrEqual(8 << 20);
    // The NAR served last (of path 3, in the test before) is among those kept.
    expect(kept).toContain(`${paths[3]?.claim.narHash.slice(7) ?? ''}.nar`);
  });
});

describe('kill -9 of the proxy during NAR downloads', () => {
  test('repeated, leaves no partial file that is ever served', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-disk-kill-'));
    const diskDir = join(dir, 'nars');
    const p = pathOfSize(10, 4_000_000);
    const logs = [await startTestLog(), await startTestLog()];
    for (const log of logs) {
      expect((await log.submit([p.claim])).status).toBe(200);
      await log.waitForSize(1);
    }
    // A cache that sends the NAR's first 1 MB at once and then nothing until released.
    let trickle = true;
    const started: (() => void)[] = [];
    const server = createServer((req, res) => {
      if (req.url === `/${p.hashPart}.narinfo`) {
        return void res.writeHead(200).end(narinfoFor(p));
      }
      if (req.url !== `/nar/${p.hashPart}.nar`) return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Length': String(p.nar.length) });
      if (!trickle) return void res.end(p.nar);
      res.write(p.nar.subarray(0, 1_000_000));
      for (const s of started.splice(0)) s();
    });
    const url = await listen(server, '127.0.0.1', 0);
    writeProxyFiles(dir, 'kill-proxy-1', logs);
    writeFileSync(
      join(dir, 'proxy.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "proxy.db"\nnar-disk-cache = "nars"\nupstream-timeout-ms = 20000\n[[upstream]]\nurl = "${url}"\n`,
    );
    const start = () =>
      startServerProcess(['proxy', '--config', join(dir, 'proxy.toml'), '--listen', '127.0.0.1:0']);
    const narUrl = async (proxy: LogProcess) => {
      const narinfo = await fetch(`${proxy.url}/${p.hashPart}.narinfo`);
      expect(narinfo.status).toBe(200);
      return `${proxy.url}/${/^URL: (\S+)$/m.exec(await narinfo.text())?.[1] ?? ''}`;
    };
    try {
      for (let round = 0; round < 3; round++) {
        const proxy = await start();
        const nar = await narUrl(proxy);
        const begun = new Promise<void>((resolve) => started.push(resolve));
        const request = fetch(nar).then(
          (r) => r.status,
          () => 'cut',
        );
        await begun;
        // The download is under way: part of the NAR is in tmp/, nothing under nar/.
        for (let i = 0; i < 50 && readdirSync(join(diskDir, 'tmp')).length === 0; i++)
          await new Promise((r) => setTimeout(r, 20));
        expect(readdirSync(join(diskDir, 'tmp')).length).toBeGreaterThan(0);
        expect(readdirSync(join(diskDir, 'nar'))).toEqual([]);
        await proxy.kill('SIGKILL');
        // Nix got no byte of it: the proxy sends nothing before the NAR verified.
        expect(await request).toBe('cut');
      }
      // Started again with the cache gone: no NAR to serve, and the half-written files are gone.
      server.closeAllConnections();
      await close(server, 100);
      const again = await start();
      expect(readdirSync(join(diskDir, 'tmp'))).toEqual([]);
      expect(readdirSync(join(diskDir, 'nar'))).toEqual([]);
      const refused = await fetch(`${again.url}/nar/${p.hashPart}-${p.claim.narHash.slice(7)}.nar`);
      expect(refused.status).toBe(404);
      await again.kill('SIGKILL');
      // With the cache back and fast, the NAR is served whole and kept, verified.
      trickle = false;
      await listen(server, '127.0.0.1', Number(new URL(url).port));
      const last = await start();
      const got = await fetch(await narUrl(last));
      expect(got.status).toBe(200);
      expect(Buffer.from(await got.arrayBuffer()).equals(p.nar)).toBe(true);
      expect(diskFiles(diskDir)).toEqual([
        { name: `${p.claim.narHash.slice(7)}.nar`, verified: true },
      ]);
      await last.kill('SIGKILL');
    } finally {
      server.closeAllConnections();
      await close(server, 100).catch(() => undefined);
      for (const log of logs) await log.close();
    }
  });
});
