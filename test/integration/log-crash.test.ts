import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { claimFromJson, formatEntry } from '../../src/claim/index.js';
import { makeClaim } from '../support/claims.js';
import { type LogProcess, prepareLogFiles, startLogProcess } from '../support/log-process.js';
import { HAVE_POSTGRES, TEST_PG_URL, postgresSchemas, shouldRun } from '../support/requirements.js';
import { readAndVerifyLog } from '../support/tiles-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Submits batches of fresh claims from several concurrent clients to whichever servers are
 * up, until stopped; records each acknowledged entry with the index the server returned.
 */
function hammer(targets: () => string[], token: string, salt: string) {
  const acked = new Map<string, number>();
  let stopped = false;
  let next = 0;
  let failures = 0;
  const worker = async (w: number) => {
    while (!stopped) {
      const urls = targets();
      const url = urls[(next / 20 + w) % Math.max(urls.length, 1)];
      const base = next;
      next += 20;
      const claims = Array.from({ length: 20 }, (_, k) => makeClaim(base + k, 0, salt));
      try {
        if (url === undefined) throw new Error('no server up');
        const res = await fetch(`${url}/submit`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ claims }),
          signal: AbortSignal.timeout(5000),
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const { indexes } = (await res.json()) as { indexes: number[] };
        claims.forEach((c, k) => acked.set(formatEntry(claimFromJson(c)), indexes[k] ?? -1));
      } catch {
        failures++;
        await sleep(20);
      }
    }
  };
  const done = Promise.all([0, 1, 2, 3].map(worker));
  return {
    acked,
    failures: () => failures,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

/** Waits until the log's published size stops growing and covers every acknowledged index. */
async function settle(url: string, acked: Map<string, number>): Promise<void> {
  const need = Math.max(-1, ...acked.values()) + 1;
  let last = -1;
  for (let i = 0; i < 600; i++) {
    const text = await (await fetch(`${url}/checkpoint`)).text();
    const size = Number(text.split('\n')[1]);
    if (size >= need && size === last) return;
    last = size;
    await sleep(100);
  }
  throw new Error(`log did not settle at ≥ ${need}`);
}

/** Every acknowledged entry is in the (verified) log exactly once, at its acknowledged index. */
async function checkLog(url: string, vkey: string, acked: Map<string, number>): Promise<number> {
  await settle(url, acked);
  const log = await readAndVerifyLog(url, vkey);
  const seen = new Map<string, number>();
  log.entries.forEach((e, i) => {
    const text = e.toString();
    expect(seen.has(text), `entry at ${i} also at ${seen.get(text)}`).toBe(false);
    seen.set(text, i);
  });
  for (const [entry, index] of acked) expect(seen.get(entry)).toBe(index);
  return log.treeSize;
}

describe('kill -9 during sustained submission (SQLite)', () => {
  test('every acknowledged entry survives, exactly once, and the tree verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-crash-'));
    const files = prepareLogFiles(dir, 'crash.example/sqlite');
    const args = [
      '--key',
      files.key,
      '--submitters',
      files.submitters,
      '--store',
      `sqlite:${join(dir, 'log.db')}`,
      '--interval',
      '50',
    ];
    let server: LogProcess | undefined = await startLogProcess(args);
    const load = hammer(() => (server === undefined ? [] : [server.url]), files.token, 'sqlite');
    for (let round = 0; round < 3; round++) {
      await sleep(700);
      await server.kill('SIGKILL');
      server = undefined;
      await sleep(150);
      server = await startLogProcess(args);
    }
    await sleep(500);
    await load.stop();
    expect(load.acked.size).toBeGreaterThan(500);
    const size = await checkLog(server.url, files.vkey, load.acked);
    expect(size).toBeGreaterThanOrEqual(load.acked.size);
    await server.kill('SIGTERM');
  }, 120_000);
});

describe.runIf(shouldRun(HAVE_POSTGRES))('kill -9 of the sequencing replica (PostgreSQL)', () => {
  const schema = postgresSchemas()();

  test('another replica takes over; no acknowledged entry is lost or duplicated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-crash-pg-'));
    const files = prepareLogFiles(dir, 'crash.example/postgres');
    const args = [
      '--key',
      files.key,
      '--submitters',
      files.submitters,
      '--store',
      TEST_PG_URL,
      '--schema',
      schema,
      '--interval',
      '50',
    ];
    const servers: (LogProcess | undefined)[] = [
      await startLogProcess(args),
      await startLogProcess(args),
    ];
    const up = () => servers.flatMap((s) => (s === undefined ? [] : [s.url]));
    const load = hammer(up, files.token, 'postgres');
    const sequenced = async (s: LogProcess) => {
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      return Number(/^accord_log_entries_sequenced_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    };
    for (let round = 0; round < 3; round++) {
      await sleep(800);
      // Kill whichever replica is sequencing now.
      const counts = await Promise.all(
        servers.map((s) => (s === undefined ? Promise.resolve(-1) : sequenced(s))),
      );
      const victim = counts[0] !== undefined && counts[0] >= (counts[1] ?? -1) ? 0 : 1;
      const before = await sequenced(servers[1 - victim] as LogProcess);
      await servers[victim]?.kill('SIGKILL');
      servers[victim] = undefined;
      await sleep(800);
      const survivor = servers[1 - victim] as LogProcess;
      expect(await sequenced(survivor)).toBeGreaterThan(before);
      servers[victim] = await startLogProcess(args);
    }
    await load.stop();
    expect(load.acked.size).toBeGreaterThan(500);
    const survivor = servers[0] as LogProcess;
    await checkLog(survivor.url, files.vkey, load.acked);
    await Promise.all(servers.map((s) => s?.kill('SIGTERM') ?? Promise.resolve()));
  }, 120_000);
});
