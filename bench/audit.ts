/**
 * `accord audit` over a store of 10,000 paths against `nix-store --verify` of the same store,
 * in the same run. The store is a separate Nix store under a temporary root (`--store DIR`:
 * the same /nix/store paths, its own database), filled by one `nix-store --add` of 10,000 small
 * files; three logs in this process each claim every path, and a 2-of-3 policy decides.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ClaimJson } from '../src/claim/index.js';
import {
  type LogService,
  newToken,
  parseSubmitters,
  startLogService,
  submitterLine,
} from '../src/log/index.js';
import { formatNixSecretKey, generateNixSecretKey } from '../src/nix/index.js';
import { silentLogger } from '../src/server/index.js';
import { SIG_TYPE_ED25519, formatVerifierKey, newSigner } from '../src/tlog/index.js';
import type { Row } from './harness.js';

const exec = promisify(execFile);
const BIN = new URL('../../bin/accord.js', import.meta.url).pathname;
const NIX_CONFIG = ['experimental-features = nix-command', 'substituters ='].join('\n');
const env = { ...process.env, NIX_CONFIG };

/** Runs a command asynchronously (the logs answering the audit run in this process). */
async function timed(command: string, args: readonly string[]) {
  const start = performance.now();
  const r = await exec(command, [...args], { env, maxBuffer: 1 << 30, encoding: 'utf8' }).catch(
    (e: unknown) => e as { stdout: string; stderr: string; code: number },
  );
  return { seconds: (performance.now() - start) / 1000, stdout: r.stdout, stderr: r.stderr };
}

interface PathInfo {
  path: string;
  narHash: string;
  narSize: number;
  references: string[];
}

export async function benchAudit(count = 10_000): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'accord-bench-audit-'));
  const root = join(dir, 'root');
  const files = join(dir, 'files');
  mkdirSync(files);
  const logs: LogService[] = [];
  try {
    const salt = randomBytes(8).toString('hex');
    const names = Array.from({ length: count }, (_, i) => join(files, `f${i}`));
    names.forEach((file, i) => {
      writeFileSync(file, `accord audit bench ${salt} ${i}\n`);
    });
    const add = await timed('nix-store', ['--store', root, '--add', ...names]);
    const infos = JSON.parse(
      (
        await exec('nix', ['--store', root, 'path-info', '--json', '--all'], {
          env,
          maxBuffer: 1 << 30,
        })
      ).stdout,
    ) as PathInfo[];
    if (infos.length !== count) throw new Error(`the bench store has ${infos.length} paths`);
    const claims: ClaimJson[] = infos.map((i) => ({
      storePath: i.path,
      narHash: i.narHash,
      narSize: i.narSize,
      references: i.references.map((r) => r.slice(r.lastIndexOf('/') + 1)),
    }));
    const submitStart = performance.now();
    const vkeys: string[] = [];
    for (let b = 0; b < 3; b++) {
      const origin = `bench.example/audit-log-${b}`;
      const signer = newSigner(origin, SIG_TYPE_ED25519, randomBytes(32));
      const token = newToken();
      const log = await startLogService({
        origin,
        signer,
        store: { kind: 'sqlite', path: join(dir, `log${b}.db`) },
        host: '127.0.0.1',
        port: 0,
        submitters: parseSubmitters(submitterLine('bench', token)),
        storeDir: '/nix/store',
        intervalMs: 50,
        maxBodyBytes: 8 << 20,
        maxClaims: 1000,
        logger: silentLogger,
      });
      logs.push(log);
      vkeys.push(`log ${formatVerifierKey(signer)} ${log.url}`);
      for (let i = 0; i < claims.length; i += 1000) {
        const r = await fetch(`${log.url}/submit`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ claims: claims.slice(i, i + 1000) }),
        });
        if (r.status !== 200) throw new Error(`submit: HTTP ${r.status}`);
      }
      for (let t = 0; (await log.storage.state()).treeSize < count; t++) {
        if (t > 2000) throw new Error('the log did not sequence the claims');
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    const submitSeconds = (performance.now() - submitStart) / 1000;
    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(generateNixSecretKey('bench-1')));
    writeFileSync(
      join(dir, 'policy'),
      [
        ...vkeys,
        `trust builders 2 ${[0, 1, 2].map((b) => `bench.example/audit-log-${b}`).join(' ')}`,
        'decide builders',
        'quorum none',
        '',
      ].join('\n'),
    );
    const config = join(dir, 'proxy.toml');
    // The upstream is never asked: with no cache in the policy, the audit asks no upstream.
    writeFileSync(
      config,
      'signing-key = "proxy.sk"\npolicy = "policy"\nstate = "proxy.db"\n[[upstream]]\nurl = "http://127.0.0.1:9"\n',
    );
    const db = join(root, 'nix/var/nix/db/db.sqlite');
    const audit = async (extra: string[]) => {
      // ACCORD_BENCH_PROF=DIR writes a CPU profile of each audit there (node --cpu-prof).
      const prof = process.env.ACCORD_BENCH_PROF;
      const node = prof === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${prof}`];
      const r = await timed(process.execPath, [
        ...node,
        BIN,
        'audit',
        '--config',
        config,
        '--store-db',
        db,
        '--json',
        ...extra,
      ]);
      const report = JSON.parse(r.stdout || '{}') as { counts?: { ok?: number } };
      if (report.counts?.ok !== count)
        throw new Error(`accord audit found ${report.counts?.ok ?? 0} of ${count} ok: ${r.stderr}`);
      return r.seconds;
    };
    const first = await audit([]);
    const again = await audit([]);
    const offline = await audit(['--offline']);
    const verify = (await timed('nix-store', ['--store', root, '--verify'])).seconds;
    const contents = (await timed('nix-store', ['--store', root, '--verify', '--check-contents']))
      .seconds;
    const n = count.toLocaleString('en');
    const rows = (what: string, seconds: number): Row[] => [
      {
        name: `accord audit, ${n} paths, 2-of-3 logs: ${what}`,
        value: `${seconds.toFixed(2)} s`,
        baseline: `${verify.toFixed(2)} s (nix-store --verify)`,
        ratio: (verify / seconds).toFixed(3),
        note: `${((1e6 * seconds) / count).toFixed(0)} µs a path; --check-contents ${contents.toFixed(2)} s (${(contents / seconds).toFixed(2)}× Accord)`,
      },
    ];
    return [
      ...rows('first run (every claim verified)', first),
      ...rows('again (claims stored, logs asked)', again),
      ...rows('--offline (stored evidence only)', offline),
      {
        name: `setup: nix-store --add of ${n} files; 3 × ${n} claims submitted and sequenced`,
        value: `${submitSeconds.toFixed(2)} s (claims)`,
        baseline: `${add.seconds.toFixed(2)} s (nix-store --add)`,
        ratio: '',
        note: 'not part of the comparison',
      },
    ];
  } finally {
    for (const log of logs) await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
