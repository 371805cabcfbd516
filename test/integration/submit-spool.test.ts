/**
 * The submit spool against a real log: a claim the log refuses for good is set aside and never
 * blocks the others; set-up errors keep claims and say what to fix; the spool is durable.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ClaimJson, claimFromJson } from '../../src/claim/index.js';
import { formatNarInfo } from '../../src/nix/index.js';
import { close, listen } from '../../src/server/index.js';
import { newToken } from '../../src/log/index.js';
import { Spool, backfill, flushSpool, submitOrSpool } from '../../src/submit/index.js';
import { makeClaim } from '../support/claims.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { readAndVerifyLog } from '../support/tiles-client.js';

/** A claim that passes no log's checks for /nix/store: a Guix path (spooled by another set-up). */
function refusedClaim(i: number): ClaimJson {
  const c = makeClaim(i, 0, 'refused');
  return { ...c, storePath: c.storePath.replace('/nix/store/', '/gnu/store/'), references: [] };
}

/** Store paths in the log's published tree, read and verified as a client does. */
async function logPaths(log: TestLog): Promise<string[]> {
  const read = await readAndVerifyLog(log.url, log.vkey);
  return read.entries.map((e) => /store-path (\S+)/.exec(Buffer.from(e).toString())?.[1] ?? '');
}

describe('the submit spool', () => {
  let log: TestLog;
  const revoked = newToken();
  const dir = mkdtempSync(join(tmpdir(), 'accord-spool-'));
  let n = 0;
  const newSpool = () => new Spool(join(dir, `spool-${n++}.db`));
  const deadline = () => performance.now() + 20_000;

  beforeAll(async () => {
    log = await startTestLog({ revoked });
  });
  afterAll(async () => {
    await log.close();
  });

  test('is opened with synchronous = FULL, so a stored claim survives a crash of the machine', () => {
    const spool = newSpool();
    expect(spool.synchronous).toBe(2);
    spool.close();
  });

  test('a claim the log refuses for good is set aside, reported, and never blocks the claims around it', async () => {
    const spool = newSpool();
    const endpoint = { url: log.url, token: log.token };
    // Refused claims at the head, in the middle and at the end of one batch.
    const good = [1, 2, 3, 4, 5].map((i) => makeClaim(i, 0, 'spool'));
    const bad = [0, 1, 2].map(refusedClaim);
    const [b0, b1, b2] = bad as [ClaimJson, ClaimJson, ClaimJson];
    const [g0, g1, g2, g3, g4] = good as [ClaimJson, ClaimJson, ClaimJson, ClaimJson, ClaimJson];
    spool.add(log.url, [b0, g0, g1, b1, g2, g3, g4, b2]);
    const report = await flushSpool(endpoint, spool, deadline());
    expect(report.error).toBeUndefined();
    expect(report.submitted).toBe(5);
    expect(report.spooled).toBe(0);
    expect(report.refused.map((r) => r.storePath).sort()).toEqual(
      bad.map((c) => c.storePath).sort(),
    );
    for (const r of report.refused) expect(r.reason).toMatch(/HTTP 400: claim 0: .*gnu\/store/);
    expect(spool.refused(log.url).map((r) => r.claim)).toEqual(bad);
    await log.waitForSize(5);
    const inLog = await logPaths(log);
    expect(inLog).toEqual(expect.arrayContaining(good.map((c) => c.storePath)));
    for (const c of bad) expect(inLog).not.toContain(c.storePath);

    // The next run submits new claims at once: nothing waits behind the refused ones.
    const later = makeClaim(6, 0, 'spool');
    const next = await submitOrSpool(endpoint, spool, [later], 20_000);
    expect(next).toEqual({ submitted: 1, spooled: 0, refused: [] });
    spool.close();
  });

  test('accord submit --status lists refused claims and exits 1; --retry-refused and --forget-refused clear them', async () => {
    const path = join(dir, 'cli.db');
    const spool = new Spool(path);
    const bad = refusedClaim(10);
    spool.add(log.url, [bad, makeClaim(10, 0, 'cli')]);
    spool.close();
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, log.token);
    const common = ['--log', log.url, '--spool', path];

    const flush = await runAccord(['submit', ...common, '--token-file', tokenFile, '--flush']);
    expect(flush.stderr).toContain(`set aside ${bad.storePath}: log refused the claims: HTTP 400`);
    expect(flush.code).toBe(1);

    const status = await runAccord(['submit', ...common, '--status']);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain('0 claims waiting, 1 refused');
    expect(status.stdout).toContain(bad.storePath);
    const json = await runAccord(['submit', ...common, '--status', '--json']);
    const listed = JSON.parse(json.stdout) as {
      waiting: number;
      durable: boolean;
      refused: { claim: ClaimJson; reason: string }[];
    };
    expect(listed).toMatchObject({ waiting: 0, durable: true, refused: [{ claim: bad }] });
    expect(listed.refused[0]?.reason).toMatch(/HTTP 400/);

    // Retried, it is refused again (the log still refuses it) and set aside again.
    const retry = await runAccord([
      'submit',
      ...common,
      '--token-file',
      tokenFile,
      '--retry-refused',
    ]);
    expect(retry.stderr).toContain('retrying 1 refused claims');
    expect(retry.code).toBe(1);
    expect((await runAccord(['submit', ...common, '--status'])).code).toBe(1);

    const forget = await runAccord(['submit', ...common, '--forget-refused']);
    expect(forget.code).toBe(0);
    const after = await runAccord(['submit', ...common, '--status']);
    expect(after.stdout).toContain('0 claims waiting, 0 refused');
    expect(after.code).toBe(0);
  });

  test.each([
    ['an unknown token', () => newToken(), 401, /check --token-file/],
    ['a revoked token', () => revoked, 403, /revoked/],
  ])('%s keeps every claim spooled and says what to fix', async (_, token, status, hint) => {
    const spool = newSpool();
    const claims = [makeClaim(20, 0, `auth-${status}`), makeClaim(21, 0, `auth-${status}`)];
    const report = await submitOrSpool({ url: log.url, token: token() }, spool, claims, 20_000);
    expect(report).toMatchObject({ submitted: 0, spooled: 2, refused: [], errorKind: 'setup' });
    expect(report.error).toMatch(new RegExp(`HTTP ${status}`));
    expect(report.error).toMatch(hint);
    expect(spool.refused(log.url)).toEqual([]);
    // Once the token is right, they go.
    const fixed = await flushSpool({ url: log.url, token: log.token }, spool, deadline());
    expect(fixed).toMatchObject({ submitted: 2, spooled: 0 });
    spool.close();
  });

  test('a URL that is not a log keeps claims spooled (a set-up error); a log that is down is transient', async () => {
    const other = createServer((_req, res) => {
      res.writeHead(404).end('no such page\n');
    });
    const url = await listen(other, '127.0.0.1', 0);
    const spool = newSpool();
    const claims = [makeClaim(30, 0, 'url')];
    const notLog = await submitOrSpool({ url, token: log.token }, spool, claims, 20_000);
    expect(notLog).toMatchObject({ spooled: 1, errorKind: 'setup' });
    expect(notLog.error).toMatch(/HTTP 404.*check --log/);
    await close(other);
    const down = await flushSpool({ url, token: log.token }, spool, deadline());
    expect(down).toMatchObject({ spooled: 1, errorKind: 'transient' });
    expect(spool.refused(url)).toEqual([]);
    spool.close();
  });

  test('as a post-build-hook, a set-up error exits 1 naming what to fix; the claim stays spooled', async () => {
    const path = join(dir, 'hook.db');
    const tokenFile = join(dir, 'bad-token');
    writeFileSync(tokenFile, newToken());
    const spool = new Spool(path);
    spool.add(log.url, [makeClaim(40, 0, 'hook')]);
    spool.close();
    const run = await runAccord(
      ['submit', '--log', log.url, '--token-file', tokenFile, '--spool', path],
      { env: { OUT_PATHS: '', DRV_PATH: '' } },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /1 waiting in the spool \(log refused the claims: HTTP 401.*token-file/,
    );
  });

  test('the log answers an unauthenticated submission without reading its body, and closes the connection', async () => {
    const res = await fetch(`${log.url}/submit`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${newToken()}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ claims: [makeClaim(50)] }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="accord-log"');
    expect(res.headers.get('connection')).toBe('close');
  });
});

describe('backfill progress', () => {
  test('is kept per log identity (origin and key), not per URL: a new log at the same address gets everything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-backfill-'));
    const cache = join(dir, 'cache');
    mkdirSync(cache);
    const claims = [1, 2, 3].map((i) => makeClaim(i, 0, 'backfill'));
    for (const c of claims) {
      const claim = claimFromJson(c);
      const text = formatNarInfo({
        ...claim,
        url: `nar/${claim.storePath.hashPart}.nar`,
        compression: 'none',
        sigs: [],
      });
      writeFileSync(join(cache, `${claim.storePath.hashPart}.narinfo`), text);
    }
    const spool = new Spool(join(dir, 'spool.db'));
    const run = async (log: TestLog) =>
      backfill({ cache: `file://${cache}`, endpoint: { url: log.url, token: log.token }, spool });

    const first = await startTestLog();
    expect(await run(first)).toMatchObject({ total: 3, submitted: 3, skipped: 0 });
    expect(await run(first)).toMatchObject({ total: 3, submitted: 0, skipped: 3 });
    const port = new URL(first.url).port;
    await first.close();
    // Another log (another key) at the very same address.
    const second = await startTestLog({ port: Number(port) });
    expect(second.url).toBe(first.url);
    expect(await run(second)).toMatchObject({ total: 3, submitted: 3, skipped: 0 });
    await second.waitForSize(3);
    expect(new Set(await logPaths(second))).toEqual(new Set(claims.map((c) => c.storePath)));
    await second.close();
    spool.close();
  });
});
