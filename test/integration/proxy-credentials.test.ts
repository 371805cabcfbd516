/**
 * Upstream caches that need credentials: a bearer token from an upstream's `token-file`, Basic
 * from Nix's `netrc-file` convention; sent to that cache only, never logged, never answered.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ConfigError,
  type ProxyService,
  loadProxyConfig,
  parseProxyConfig,
  startProxy,
} from '../../src/proxy/index.js';
import { close, createLogger, listen } from '../../src/server/index.js';
import { claimWithNar, hashPartOf } from '../support/claims.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { narinfoFor, writeProxyFiles } from '../support/proxy-world.js';

const TOKEN = 'cachix-secret-token-0123456789';
const LOGIN = 'alice';
const PASSWORD = 'netrc-secret-password';

/** A cache at 127.0.0.1 holding `files`, answering 401 to requests without `authorization`. */
async function privateCache(files: Map<string, Buffer | string>, authorization: string) {
  const seen: (string | undefined)[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    seen.push(req.headers.authorization);
    if (req.headers.authorization !== authorization) return void res.writeHead(401).end();
    const body = files.get(req.url ?? '');
    if (body === undefined) return void res.writeHead(404).end();
    res.writeHead(200).end(body);
  });
  const url = await listen(server, '127.0.0.1', 0);
  return { url, seen, close: () => close(server, 100) };
}

describe('upstream credentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-creds-'));
  const logLines: string[] = [];
  let logs: TestLog[];
  let bearer: Awaited<ReturnType<typeof privateCache>>;
  let basic: Awaited<ReturnType<typeof privateCache>>;
  let proxy: ProxyService;
  const paths = [0, 1].map((i) => claimWithNar(i, 'creds', `private path ${i}\n`));
  const filesFor = (p: (typeof paths)[number]) =>
    new Map<string, Buffer | string>([
      [`/${p.hashPart}.narinfo`, narinfoFor(p)],
      [`/nar/${p.hashPart}.nar`, p.nar],
    ]);

  beforeAll(async () => {
    logs = [await startTestLog(), await startTestLog()];
    for (const log of logs) {
      expect((await log.submit(paths.map((p) => p.claim))).status).toBe(200);
      await log.waitForSize(2);
    }
    const [p0, p1] = paths as [(typeof paths)[number], (typeof paths)[number]];
    bearer = await privateCache(filesFor(p0), `Bearer ${TOKEN}`);
    basic = await privateCache(
      filesFor(p1),
      `Basic ${Buffer.from(`${LOGIN}:${PASSWORD}`).toString('base64')}`,
    );
    writeProxyFiles(dir, 'creds-proxy-1', logs);
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    writeFileSync(
      join(dir, 'netrc'),
      `# as Nix reads it\nmachine 127.0.0.1\n  login ${LOGIN}\n  password ${PASSWORD}\n`,
    );
    writeFileSync(
      join(dir, 'proxy.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "proxy.db"\nnetrc-file = "netrc"\nprefetch-nars = false\n` +
        `[[upstream]]\nurl = "${bearer.url}"\ntoken-file = "token"\npriority = 10\n` +
        `[[upstream]]\nurl = "${basic.url}"\npriority = 20\n`,
    );
    const logger = createLogger({ level: 'debug', write: (line: string) => logLines.push(line) });
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), logger, '127.0.0.1:0');
  });
  afterAll(async () => {
    await proxy.close();
    await bearer.close();
    await basic.close();
    for (const log of logs) await log.close();
  });

  test('a token-file upstream gets its bearer token, a netrc host its login, and the paths are served', async () => {
    for (const p of paths) {
      const narinfo = await fetch(`${proxy.url}/${p.hashPart}.narinfo`);
      expect(narinfo.status).toBe(200);
      const url = /^URL: (\S+)$/m.exec(await narinfo.text())?.[1] ?? '';
      const nar = await fetch(`${proxy.url}/${url}`);
      expect(nar.status).toBe(200);
      expect(Buffer.from(await nar.arrayBuffer())).toEqual(p.nar);
    }
    // The token went to its own cache only: the netrc cache got its Basic login (same host,
    // another port: a bearer token is per upstream, not per host).
    expect(new Set(bearer.seen)).toEqual(new Set([`Bearer ${TOKEN}`]));
    expect(basic.seen.every((a) => a?.startsWith('Basic ') === true)).toBe(true);
  });

  test('no credential appears in a log line, an /explain answer or a reason header', async () => {
    // A path neither cache has (each answers 404): failures are logged with their URLs.
    const missing = hashPartOf(99, 'creds');
    const res = await fetch(`${proxy.url}/${missing}.narinfo`);
    const explain = await (await fetch(`${proxy.url}/explain/${paths[0]?.hashPart ?? ''}`)).text();
    const texts = [...logLines, explain, res.headers.get('x-accord-reason') ?? ''];
    expect(logLines.length).toBeGreaterThan(0);
    for (const secret of [TOKEN, PASSWORD, Buffer.from(`${LOGIN}:${PASSWORD}`).toString('base64')])
      for (const text of texts) expect(text).not.toContain(secret);
  });

  test('credentials for a plain-http cache elsewhere, or an unreadable token-file, are refused by name', () => {
    const config = (upstream: string) =>
      `signing-key = "proxy.sk"\npolicy = "policy"\n[[upstream]]\n${upstream}\n`;
    expect(() =>
      parseProxyConfig(config('url = "http://cache.example"\ntoken-file = "token"'), dir),
    ).toThrow(
      /upstream 1: credentials for http:\/\/cache.example would cross the network in clear text/,
    );
    expect(() =>
      parseProxyConfig(config('url = "https://cache.example"\ntoken-file = "nope"'), dir),
    ).toThrow(ConfigError);
    const ok = parseProxyConfig(config('url = "https://cache.example"\ntoken-file = "token"'), dir);
    expect(ok.upstreams[0]?.authorization).toBe(`Bearer ${TOKEN}`);
  });
});
