/**
 * Failed rebuilds on the dashboard, with real Nix: a rebuilder whose derivation fails reports
 * the failure to the monitor (signed with its log's key), the path page lists it as "rebuild
 * failed at <rebuilder>"; a failure recorded while the monitor was unreachable is reported by
 * the next run, and nothing is counted twice. The monitor refuses a report signed by a key of
 * no followed log, a replay, an oversized and a malformed report, and counts each refusal.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  MAX_REPORT_BYTES,
  demandSigner,
  parseReporters,
  signRebuildReport,
} from '../../src/demand/index.js';
import { formatNixPublicKey, generateNixSecretKey } from '../../src/nix/index.js';
import { type MonitorService, startMonitor } from '../../src/monitor/index.js';
import { parsePolicy } from '../../src/policy/index.js';
import { silentLogger } from '../../src/server/index.js';
import { SIG_TYPE_ED25519, formatSignerKey, newSigner } from '../../src/tlog/index.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { NIX_CONFIG, nixEnv } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';

const exec = promisify(execFile);
const hashPart = (path: string) => path.slice('/nix/store/'.length, '/nix/store/'.length + 32);

interface PathPage {
  storePath: string | null;
  claims: unknown[];
  failures: {
    attempts: number;
    builders: number;
    recent: { builder: string; at: number; reason: string }[];
  } | null;
}

describe.runIf(shouldRun(HAVE_NIX))(
  'rebuild failures reported to the monitor, with real Nix',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-rebuild-report-'));
    const seed = randomBytes(32);
    const origin = 'failing-rebuilder.example/log';
    const signer = newSigner(origin, SIG_TYPE_ED25519, seed);
    const keyFile = join(dir, 'rebuilder.key');
    // A proxy whose demand reports the monitor takes, named as the rebuilder's log.
    const proxyKey = generateNixSecretKey(origin);
    let log: TestLog;
    let monitor: MonitorService;
    const drvs: Record<'broken' | 'later', string> = { broken: '', later: '' };
    const outs: Record<'broken' | 'later', string> = { broken: '', later: '' };

    beforeAll(async () => {
      requireAvailable(HAVE_NIX, 'Nix');
      log = await startTestLog({ origin, seed });
      writeFileSync(keyFile, `${formatSignerKey(signer)}\n`);
      writeFileSync(join(dir, 'token'), `${log.token}\n`);
      const file = join(dir, 'broken.nix');
      const salt = `${Date.now()}`;
      writeFileSync(
        file,
        `let mk = name: derivation { inherit name; salt = "${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo this derivation fails; exit 1" ]; };
in { broken = mk "report-broken"; later = mk "report-later"; }
`,
      );
      for (const attr of ['broken', 'later'] as const) {
        drvs[attr] = (
          await exec('nix-instantiate', [file, '-A', attr], { env: nixEnv })
        ).stdout.trim();
        outs[attr] = (
          await exec('nix-store', ['--query', '--outputs', drvs[attr]], { env: nixEnv })
        ).stdout.trim();
      }
      const policy = `log ${log.vkey} ${log.url}\ndecide ${origin}\nquorum none\n`;
      monitor = await startMonitor({
        policy: parsePolicy(policy),
        statePath: join(dir, 'monitor.db'),
        storeDir: '/nix/store',
        logger: silentLogger,
        intervalMs: 0,
        timeoutMs: 5000,
        concurrency: 4,
        listen: { host: '127.0.0.1', port: 0 },
        reporters: parseReporters(formatNixPublicKey(proxyKey)),
      });
    }, 120_000);
    afterAll(async () => {
      await monitor.close();
      await log.close();
    });

    const rebuild = (drv: string, report: string, key = keyFile) => {
      const work = join(dir, `work-${hashPart(drv)}`);
      writeFileSync(work, `${drv}\n`);
      return runAccord(
        [
          'rebuild',
          '--from',
          work,
          '--log',
          log.url,
          '--token-file',
          join(dir, 'token'),
          '--state',
          join(dir, 'state.db'),
          '--spool',
          join(dir, 'spool.db'),
          '--report',
          report,
          '--key',
          key,
          '--json',
        ],
        { env: { NIX_CONFIG } },
      );
    };
    const page = async (out: string) =>
      (await (
        await fetch(`${monitor.url ?? ''}/paths/${hashPart(out)}?format=json`)
      ).json()) as PathPage;

    test('a failing derivation is reported, not claimed, and the path page shows where it failed; a run that could not report reports next time, once', async () => {
      const first = await rebuild(drvs.broken, monitor.url ?? '');
      expect(first.code, first.stderr).toBe(3);
      const summary = JSON.parse(first.stdout) as {
        failed: number;
        report: { reported: number; pending: number };
      };
      expect(summary).toMatchObject({ failed: 1, report: { reported: 1, pending: 0 } });
      const broken = await page(outs.broken);
      expect(broken.claims).toEqual([]);
      expect(broken.storePath).toBe(outs.broken);
      expect(broken.failures).toMatchObject({ attempts: 1, builders: 1 });
      expect(broken.failures?.recent[0]?.builder).toBe(origin);
      expect(broken.failures?.recent[0]?.reason).toMatch(
        /^builder for '.*-report-broken\.drv' failed with exit code 1 \| last log lines: \| > this derivation fails$/,
      );
      const html = await (
        await fetch(`${monitor.url ?? ''}/paths/${hashPart(outs.broken)}?format=html`)
      ).text();
      expect(html).toContain(`rebuild failed at <code>${origin}</code>`);

      // The monitor unreachable: the failure waits in the state; the run fails only on its build.
      const closed = 'http://127.0.0.1:9';
      const offline = await rebuild(drvs.later, closed);
      expect(offline.code, offline.stderr).toBe(3);
      expect(JSON.parse(offline.stdout)).toMatchObject({ report: { reported: 0, pending: 1 } });
      expect((await page(outs.later)).failures).toBeNull();
      // The next run reports it; the first failure is not reported again.
      const next = await rebuild(drvs.later, monitor.url ?? '');
      expect(JSON.parse(next.stdout)).toMatchObject({ report: { reported: 1, pending: 0 } });
      expect((await page(outs.later)).failures?.attempts).toBe(1);
      expect((await page(outs.broken)).failures?.attempts).toBe(1);

      // A key of no followed log: the monitor refuses the report, the run says so (exit 1).
      const strangerKey = join(dir, 'stranger.key');
      writeFileSync(
        strangerKey,
        `${formatSignerKey(newSigner('stranger.example/log', SIG_TYPE_ED25519, randomBytes(32)))}\n`,
      );
      const retry = await runAccord(
        [
          'rebuild',
          '--from',
          join(dir, `work-${hashPart(drvs.broken)}`),
          '--log',
          log.url,
          '--token-file',
          join(dir, 'token'),
          '--state',
          join(dir, 'state-stranger.db'),
          '--spool',
          join(dir, 'spool.db'),
          '--report',
          monitor.url ?? '',
          '--key',
          strangerKey,
          '--json',
        ],
        { env: { NIX_CONFIG } },
      );
      expect(retry.code, retry.stderr).toBe(1);
      expect(JSON.parse(retry.stdout)).toMatchObject({ report: { reported: 0, pending: 1 } });
      expect((await page(outs.broken)).failures?.attempts).toBe(1);
    }, 300_000);

    test('an unknown key, a replay, an oversized or malformed report: refused, nothing changes', async () => {
      const post = (body: string | Uint8Array) =>
        fetch(`${monitor.url ?? ''}/rebuilds`, { method: 'POST', body });
      const at = Date.now() - 1000;
      const failure = {
        hashPart: '0'.repeat(32),
        name: 'forged',
        attempt: at - 1,
        reason: 'forged',
      };
      const good = signRebuildReport({ reporter: origin, at, failures: [failure] }, signer);
      const ok = await post(good);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toMatchObject({ status: 'accepted', failures: 1, added: 1 });
      const stranger = newSigner(origin, SIG_TYPE_ED25519, randomBytes(32));
      const cases: [string, string | Uint8Array, number][] = [
        [
          'unknown key',
          signRebuildReport({ reporter: origin, at: at + 1, failures: [failure] }, stranger),
          403,
        ],
        [
          "a proxy's reporter key",
          signRebuildReport(
            { reporter: origin, at: at + 2, failures: [failure] },
            demandSigner(proxyKey),
          ),
          403,
        ],
        ['replay', good, 409],
        ['oversized', Buffer.alloc(MAX_REPORT_BYTES + 1, 'a'), 413],
        ['malformed', 'accord/rebuild/v1\n', 400],
      ];
      for (const [what, body, status] of cases) {
        const res = await post(body);
        expect([what, res.status]).toEqual([what, status]);
        await res.arrayBuffer();
      }
      const forged = (await (
        await fetch(`${monitor.url ?? ''}/paths/${'0'.repeat(32)}?format=json`)
      ).json()) as PathPage;
      expect(forged.failures?.attempts).toBe(1);
      expect((await fetch(`${monitor.url ?? ''}/rebuilds`)).status).toBe(405);
      const metrics = await (await fetch(`${monitor.url ?? ''}/metrics`)).text();
      for (const outcome of ['accepted', 'untrusted', 'replay', 'too-large', 'malformed'])
        expect(metrics).toMatch(
          new RegExp(`accord_monitor_rebuild_reports_total\\{outcome="${outcome}"\\} [1-9]`),
        );
    });
  },
);
