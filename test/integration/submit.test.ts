import { chmodSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseEntry } from '../../src/claim/index.js';
import { formatHash, parseHash } from '../../src/nix/index.js';
import { listen, close } from '../../src/server/index.js';
import { ACCORD_BIN, runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { build, buildClosure, nix, shDerivation } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';
import { readAndVerifyLog } from '../support/tiles-client.js';

interface PathInfo {
  path: string;
  narHash: string;
  narSize: number;
}

/** The claims a verified read of the log holds, keyed by store path. */
async function logClaims(log: TestLog, size: number) {
  await log.waitForSize(size);
  const read = await readAndVerifyLog(log.url, log.vkey);
  return new Map(
    read.entries.map((e) => {
      const claim = parseEntry(e);
      return [`${claim.storePath.storeDir}/${claim.storePath.baseName}`, claim];
    }),
  );
}

describe.runIf(shouldRun(HAVE_NIX))('accord submit with real Nix', () => {
  let log: TestLog;
  const dir = mkdtempSync(join(tmpdir(), 'accord-submit-'));
  const tokenFile = join(dir, 'token');

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    log = await startTestLog();
    writeFileSync(tokenFile, log.token);
  });
  afterAll(async () => {
    await log.close();
  });

  function hookScript(name: string, logUrl: string, timeoutMs = 5000): string {
    const path = join(dir, name);
    writeFileSync(
      path,
      `#!/bin/sh\nexec "${process.execPath}" "${ACCORD_BIN}" submit --log ${logUrl} --token-file ${tokenFile} ` +
        `--spool ${join(dir, 'spool.db')} --timeout ${timeoutMs} >> ${join(dir, `${name}.log`)} 2>&1\n`,
    );
    chmodSync(path, 0o755);
    return path;
  }

  test('a Nix build with post-build-hook = accord submit puts every output in the log with Nix’s narHash', async () => {
    const hook = hookScript('hook', log.url);
    const tag = `hook-${Date.now()}`;
    const expr = `derivation { name = "multi-${tag}"; system = builtins.currentSystem; builder = "/bin/sh"; outputs = [ "out" "dev" ]; args = [ "-c" "/bin/mkdir $out $dev; echo out > $out/o; echo $out > $dev/ref" ]; }`;
    const file = join(dir, 'multi.nix');
    writeFileSync(file, `${expr}\n`);
    await nix('nix-build', ['--no-out-link', '--option', 'post-build-hook', hook, file]);
    // nix-build prints only `out`; the hook must have submitted every output.
    const drv = (await nix('nix-instantiate', [file])).trim();
    const paths = (await nix('nix-store', ['--query', '--outputs', drv])).trim().split('\n');
    expect(paths).toHaveLength(2);
    const infos = JSON.parse(await nix('nix', ['path-info', '--json', ...paths])) as PathInfo[];
    const claims = await logClaims(log, 2);
    for (const info of infos) {
      const claim = claims.get(info.path);
      expect(claim, `${info.path} in the log`).toBeDefined();
      expect(formatHash(claim?.narHash ?? parseHash('sha256:0'))).toBe(
        formatHash(parseHash(info.narHash)),
      );
      expect(claim?.narSize).toBe(info.narSize);
      expect(claim?.deriver).toMatch(/-multi-hook-\d+\.drv$/);
    }
    // The dev output refers to out.
    const dev = paths.find((p) => p.endsWith('-dev')) ?? '';
    expect(claims.get(dev)?.references).toEqual([
      (paths.find((p) => !p.endsWith('-dev')) ?? '').slice(11),
    ]);
  });

  test('with the log hanging the hook exits 0 within its deadline and spools; a later run flushes', async () => {
    // The log's URL, through a gate that first accepts connections and never answers, then
    // forwards to the log: the same log going down and coming back.
    let forward = false;
    const gate = createServer((req, res) => {
      if (!forward) return;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void fetch(`${log.url}${req.url ?? ''}`, {
          method: req.method ?? 'GET',
          headers: req.headers as Record<string, string>,
          ...(req.method === 'POST' ? { body: Buffer.concat(chunks) } : {}),
        }).then(async (r) => {
          res.writeHead(r.status, { 'Content-Type': r.headers.get('content-type') ?? '' });
          res.end(Buffer.from(await r.arrayBuffer()));
        });
      });
    });
    const gateUrl = await listen(gate, '127.0.0.1', 0);
    const hook = hookScript('hook-down', gateUrl, 1500);
    const expr = shDerivation(
      `spooled-${Date.now()}`,
      '/bin/mkdir $out; echo spooled > $out/x',
      String(Date.now()),
    );
    const file = join(dir, 'spooled.nix');
    writeFileSync(file, `${expr}\n`);
    const out = await nix('nix-build', [
      '--no-out-link',
      '--option',
      'post-build-hook',
      hook,
      file,
    ]);
    const spooledPath = out.trim();
    expect(readFileSync(join(dir, 'hook-down.log'), 'utf8')).toMatch(
      /1 waiting in the spool \(log \S+ timed out\)/,
    );
    const before = (await log.service.storage.state()).nextIndex;
    forward = true;
    const flush = await runAccord([
      'submit',
      '--flush',
      '--json',
      '--log',
      gateUrl,
      '--token-file',
      tokenFile,
      '--spool',
      join(dir, 'spool.db'),
    ]);
    gate.closeAllConnections();
    await close(gate, 100);
    expect(flush.code).toBe(0);
    expect(JSON.parse(flush.stdout)).toMatchObject({ submitted: 1, spooled: 0 });
    expect((await log.service.storage.state()).nextIndex).toBe(before + 1);
    const claims = await logClaims(log, before + 1);
    expect(claims.has(spooledPath)).toBe(true);
  });

  test('a log that is not listening at all: claims spooled, exit 0; every later run retries the spool', async () => {
    const spool = join(dir, 'spool2.db');
    const path =
      (await build(shDerivation(`refused-${Date.now()}`, '/bin/mkdir $out', 'x')))[0] ?? '';
    const down = await runAccord([
      'submit',
      '--json',
      '--log',
      'http://127.0.0.1:9',
      '--token-file',
      tokenFile,
      '--spool',
      spool,
      path,
    ]);
    expect(down.code).toBe(0);
    expect(JSON.parse(down.stdout)).toMatchObject({ submitted: 0, spooled: 1 });
    expect(down.stderr).toMatch(/waiting in the spool \(log \S+ unreachable\)/);
    const stillDown = await runAccord([
      'submit',
      '--flush',
      '--log',
      'http://127.0.0.1:9',
      '--token-file',
      tokenFile,
      '--spool',
      spool,
    ]);
    expect(stillDown.code).toBe(1);
    // Spool entries are per log URL: the same URL up again takes them with the next submission.
    const other =
      (await build(shDerivation(`after-${Date.now()}`, '/bin/mkdir $out', 'y')))[0] ?? '';
    const before = (await log.service.storage.state()).nextIndex;
    const up = await runAccord([
      'submit',
      '--json',
      '--log',
      log.url,
      '--token-file',
      tokenFile,
      '--spool',
      spool,
      other,
    ]);
    expect(JSON.parse(up.stdout)).toMatchObject({ submitted: 1, spooled: 0 });
    expect((await log.service.storage.state()).nextIndex).toBe(before + 1);
    // The claim spooled for the dead URL still waits for it.
    const again = await runAccord([
      'submit',
      '--flush',
      '--json',
      '--log',
      'http://127.0.0.1:9',
      '--token-file',
      tokenFile,
      '--spool',
      spool,
    ]);
    expect(JSON.parse(again.stdout)).toMatchObject({ spooled: 1 });
  });

  test('--from-cache backfills a signed file:// cache and an HTTP cache, resumably', async () => {
    const root = await buildClosure(`backfill-${Date.now()}`);
    const secret = await nix('nix', ['key', 'generate-secret', '--key-name', 'cache-1']);
    writeFileSync(join(dir, 'cache.sk'), secret);
    const pub = await nix('nix', ['key', 'convert-secret-to-public'], secret);
    await nix('nix', ['store', 'sign', '--key-file', join(dir, 'cache.sk'), '-r', root]);
    const cache = join(dir, 'cache');
    await nix('nix', ['copy', '--to', `file://${cache}?compression=zstd`, root]);
    const narinfos = readdirSync(cache).filter((f) => f.endsWith('.narinfo'));
    expect(narinfos).toHaveLength(2);
    const spool = join(dir, 'spool3.db');
    const common = ['--log', log.url, '--token-file', tokenFile, '--spool', spool, '--json'];
    // First only one path (an interrupted run), then the whole cache: only the rest is sent.
    const first = join(dir, 'first');
    writeFileSync(first, `${narinfos[0] ?? ''}\n`);
    const part = await runAccord([
      'submit',
      '--from-cache',
      `file://${cache}`,
      '--paths',
      first,
      '--trusted-key',
      pub,
      ...common,
    ]);
    expect(part.code).toBe(0);
    expect(JSON.parse(part.stdout)).toMatchObject({ total: 1, submitted: 1 });
    const all = await runAccord([
      'submit',
      '--from-cache',
      `file://${cache}`,
      '--trusted-key',
      pub,
      ...common,
    ]);
    expect(JSON.parse(all.stdout)).toMatchObject({
      total: 2,
      skipped: 1,
      submitted: 1,
      untrusted: 0,
    });
    // A key that signed nothing here: everything is untrusted, nothing submitted.
    const wrong = await runAccord([
      'submit',
      '--from-cache',
      `file://${cache}`,
      '--trusted-key',
      'x:' + Buffer.alloc(32, 1).toString('base64'),
      '--spool',
      join(dir, 'spool4.db'),
      '--log',
      log.url,
      '--token-file',
      tokenFile,
      '--json',
    ]);
    expect(JSON.parse(wrong.stdout)).toMatchObject({ submitted: 0, untrusted: 2 });
    // The same cache over HTTP, with the list of paths on stdin.
    const http = createServer((req, res) => {
      const name = (req.url ?? '').slice(1);
      if (!narinfos.includes(name)) {
        res.writeHead(404).end();
        return;
      }
      res
        .writeHead(200, { 'Content-Type': 'text/x-nix-narinfo' })
        .end(readFileSync(join(cache, name)));
    });
    const httpUrl = await listen(http, '127.0.0.1', 0);
    const viaHttp = await runAccord(
      [
        'submit',
        '--from-cache',
        httpUrl,
        '--paths',
        '-',
        '--spool',
        join(dir, 'spool5.db'),
        '--log',
        log.url,
        '--token-file',
        tokenFile,
        '--json',
      ],
      { input: `${root}\n/nix/store/${'0'.repeat(32)}-absent\n` },
    );
    await close(http, 100);
    expect(JSON.parse(viaHttp.stdout)).toMatchObject({ total: 2, submitted: 1, missing: 1 });
    const claims = await logClaims(log, 1);
    expect(claims.has(root)).toBe(true);
  });
});
