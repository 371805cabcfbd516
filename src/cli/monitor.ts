/**
 * `accord monitor serve`, `accord monitor report`, `accord monitor path`, `accord monitor
 * demand` and `accord monitor wanted`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseReporters } from '../demand/index.js';
import {
  FINDING_KINDS,
  type Finding,
  MAX_DEMAND_LIMIT,
  MonitorStore,
  demandTop,
  formatWantedList,
  pathReport,
  startMonitor,
  wantedList,
} from '../monitor/index.js';
import { NIX_STORE_DIR, checkStoreDir } from '../nix/index.js';
import { logOrigins, parsePolicy } from '../policy/index.js';
import { lockStore } from '../db/index.js';
import { parseListen } from '../server/index.js';
import { hashPartOf } from '../submit/index.js';
import { type Command, EXIT, UsageError, defineCommand, readOptionFile } from './command.js';
import { type Progress, progressBar } from './progress.js';
import { positiveInteger, runUntilSignal, serviceLogger, tlsOptions } from './service.js';

const DEFAULT_STATE = join('accord-monitor', 'monitor.db');
const KINDS = FINDING_KINDS;

/** Findings exist: the exit code of `report` and `serve --once` when anything was found. */
const EXIT_FINDINGS = 3;

function alertKinds(text: string): ReadonlySet<Finding['kind']> {
  const kinds = text.split(',').map((k) => k.trim());
  for (const k of kinds) {
    if (!(KINDS as readonly string[]).includes(k))
      throw new UsageError(
        `--alert-on: unknown kind ${JSON.stringify(k)}; want ${KINDS.join(',')}`,
      );
  }
  return new Set(kinds as Finding['kind'][]);
}

/** `--cache ORIGIN=URL` values: each origin a followed log's, once; each URL http(s) or file. */
function cacheOptions(values: readonly string[], origins: readonly string[]): Map<string, string> {
  const caches = new Map<string, string>();
  for (const value of values) {
    const at = value.lastIndexOf('=');
    const origin = value.slice(0, at);
    const url = value.slice(at + 1).replace(/\/+$/, '');
    if (at <= 0 || !/^(https?|file):\/\/./.test(url))
      throw new UsageError(
        `--cache: want ORIGIN=URL with an http, https or file URL, got ${JSON.stringify(value)}`,
      );
    if (!origins.includes(origin))
      throw new UsageError(`--cache: ${origin} is not a log of the policy (${origins.join(', ')})`);
    if (caches.has(origin)) throw new UsageError(`--cache: ${origin} is given twice`);
    caches.set(origin, url);
  }
  return caches;
}

function openState(path: string): MonitorStore {
  if (!existsSync(path))
    throw new UsageError(`${path} does not exist: run 'accord monitor serve' first`);
  return new MonitorStore(path);
}

const serve = defineCommand({
  name: 'monitor serve',
  summary: 'follow builder logs, verify every entry, report forks and disagreements',
  help: `Usage: accord monitor serve --policy FILE [options]

Follows every log of an Accord policy file through its tiles: checks each new checkpoint's
signature and its consistency with the last one verified, downloads every entry, hashes it
into its own copy of the tree and indexes it by store path. It asks the policy's witnesses
(those with a URL) for the checkpoints they cosigned, and proxies can POST the checkpoints they
have seen to /checkpoints; any of them not in the verified tree is a fork.

Findings — forks (with both signed checkpoints), a log claiming two NARs for one path, builders
disagreeing on a path, entries that do not match a log's tree — are stored with their
evidence, logged, and raise the alert hooks once each. A path has one disagreement and one
equivocation finding at most, updated as claims about it come in.

With --listen it serves the dashboard to browsers — overview, a page per store path (with the
files that differ between disagreeing builders' NARs, from the caches given with --cache),
closure reports, findings, demand and the wanted list — and the same pages as JSON to
everything else; plus the API: GET /logs, /findings[?since=ID], /paths/<hash part>, /metrics,
/health; POST /checkpoints with a checkpoint note. Demand (see docs/dashboard.md): POST /demand
with a proxy's signed demand report (taken only from the keys of --reporters), GET
/demand[?limit=N] for the most requested paths, GET /wanted?k=K[&limit=N][&format=text] for the
wanted list.

Options:
  --policy FILE         the Accord policy file naming the logs (and witnesses) to follow
  --state FILE          the monitor's SQLite database (default ${DEFAULT_STATE})
  --listen HOST:PORT    serve the HTTP API here
  --interval SECONDS    time between polls (default 30)
  --cache ORIGIN=URL    the binary cache (http, https or file URL) of the builder whose log is
                        ORIGIN, to compare NARs on the dashboard; repeat for each builder
  --once                poll every log and witness once, print a summary and exit
                        (exit ${EXIT_FINDINGS} when there are findings)
  --json                with --once: print the summary as JSON
  --alert-command CMD   run CMD (with sh -c) per new finding: the finding as JSON on standard
                        input, ACCORD_FINDING_KIND, _ID and _SUMMARY in the environment
  --alert-webhook URL   POST each new finding as JSON to URL
  --alert-on KINDS      alert only on these kinds (comma-separated: ${KINDS.join(',')})
  --reporters FILE      take demand reports from the proxies whose Nix public keys
                        (name:base64, one per line, # comments) FILE lists
  --store-dir DIR       the Nix store directory of the entries (default ${NIX_STORE_DIR})
  --concurrency N       entry bundles fetched at once per log (default 16)
  --timeout-ms MS       deadline of each HTTP request (default 10000)
  --tls-cert FILE       serve the API over HTTPS with this PEM certificate (chain), with
                        --tls-key FILE its PEM key; both re-read when they change
  --log-level LEVEL     debug, info, warn or error (default info)`,
  options: {
    policy: { type: 'string' },
    state: { type: 'string' },
    listen: { type: 'string' },
    interval: { type: 'string' },
    cache: { type: 'string', multiple: true },
    once: { type: 'boolean' },
    json: { type: 'boolean' },
    'alert-command': { type: 'string' },
    'alert-webhook': { type: 'string' },
    'alert-on': { type: 'string' },
    reporters: { type: 'string' },
    'store-dir': { type: 'string' },
    concurrency: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'log-level': { type: 'string' },
  },
  async run(values) {
    if (values.policy === undefined) throw new UsageError('--policy FILE is required');
    const policy = readOptionFile('--policy', values.policy, parsePolicy);
    const once = values.once === true;
    const logger = serviceLogger(values['log-level'] ?? (once ? 'warn' : 'info'), 'accord-monitor');
    const storeDir = values['store-dir'] ?? NIX_STORE_DIR;
    checkStoreDir(storeDir);
    const bars = new Map<string, Progress>();
    const statePath = values.state ?? DEFAULT_STATE;
    const intervalMs = once ? 0 : positiveInteger(values.interval, '--interval', 30) * 1000;
    const timeoutMs = positiveInteger(values['timeout-ms'], '--timeout-ms', 10_000);
    const concurrency = positiveInteger(values.concurrency, '--concurrency', 16);
    const listen = values.listen === undefined ? undefined : parseListen(values.listen);
    const caches = cacheOptions(values.cache ?? [], logOrigins(policy));
    const tls = tlsOptions(values);
    const reporters =
      values.reporters === undefined
        ? undefined
        : readOptionFile('--reporters', values.reporters, parseReporters);
    const alerts = {
      ...(values['alert-command'] === undefined ? {} : { command: values['alert-command'] }),
      ...(values['alert-webhook'] === undefined ? {} : { webhook: values['alert-webhook'] }),
      ...(values['alert-on'] === undefined ? {} : { kinds: alertKinds(values['alert-on']) }),
    };
    lockStore({ kind: 'sqlite', path: statePath });
    const service = await startMonitor({
      policy,
      statePath,
      storeDir,
      logger,
      intervalMs,
      timeoutMs,
      concurrency,
      ...(listen === undefined ? {} : { listen }),
      ...(tls === undefined ? {} : { tls }),
      caches,
      ...(reporters === undefined ? {} : { reporters }),
      alerts,
      onProgress(origin, done, total) {
        if (!once || values.json === true) return;
        let bar = bars.get(origin);
        if (bar === undefined) bars.set(origin, (bar = progressBar(origin, total)));
        if (done < total) bar.update(done);
        else bar.finish();
      },
    });
    if (!once) {
      if (service.url !== undefined) process.stdout.write(`${service.url}\n`);
      return runUntilSignal(service, logger);
    }
    try {
      const results = await service.pollAll();
      const findings = service.store.findings();
      if (values.json === true) {
        process.stdout.write(
          `${JSON.stringify({ logs: results, findings: findings.length }, null, 2)}\n`,
        );
      } else {
        for (const r of results) {
          const what = r.error === undefined ? `+${r.added}` : `error: ${r.error}`;
          process.stdout.write(`${r.origin}: ${r.size} entries verified (${what})\n`);
        }
        process.stdout.write(`${findings.length} finding(s); see 'accord monitor report'\n`);
      }
      if (results.some((r) => r.error !== undefined)) return EXIT.failure;
      return findings.length > 0 ? EXIT_FINDINGS : EXIT.ok;
    } finally {
      await service.close();
    }
  },
});

function describeFinding(f: Finding): string {
  return `#${f.id} ${new Date(f.at).toISOString()} ${f.kind}: ${f.summary}`;
}

const report = defineCommand({
  name: 'monitor report',
  summary: "print the monitor's findings",
  help: `Usage: accord monitor report [--state FILE] [--since ID] [--json]

Prints every finding of the monitor (one line each, or as JSON with the evidence: signed
checkpoints, consistency and inclusion proofs). Exits ${EXIT_FINDINGS} when there are findings, 0 when
there are none.

Options:
  --state FILE   the monitor's database (default ${DEFAULT_STATE})
  --since ID     only findings after this one
  --json         print the findings as a JSON array, with their evidence`,
  options: { state: { type: 'string' }, since: { type: 'string' }, json: { type: 'boolean' } },
  run(values) {
    const since = values.since === undefined ? 0 : positiveInteger(values.since, '--since', 0);
    const store = openState(values.state ?? DEFAULT_STATE);
    try {
      const findings = store.findings(since);
      if (values.json === true) process.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
      else if (findings.length === 0) process.stdout.write('no findings\n');
      else for (const f of findings) process.stdout.write(`${describeFinding(f)}\n`);
      return Promise.resolve(findings.length > 0 ? EXIT_FINDINGS : EXIT.ok);
    } finally {
      store.close();
    }
  },
});

const path = defineCommand({
  name: 'monitor path',
  summary: 'show what every followed log claims about a store path',
  help: `Usage: accord monitor path [--state FILE] [--json] STORE-PATH

Prints the verified claims of every followed log about a store path (a full path, a base name
or a hash part): NAR hash, size and references per builder, and whether they agree.

Options:
  --state FILE      the monitor's database (default ${DEFAULT_STATE})
  --store-dir DIR   the Nix store directory (default ${NIX_STORE_DIR})
  --json            print the claims as JSON`,
  options: {
    state: { type: 'string' },
    'store-dir': { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: { min: 1, max: 1 },
  run(values, [arg]) {
    const storeDir = values['store-dir'] ?? NIX_STORE_DIR;
    const hashPart = hashPartOf(arg ?? '');
    if (hashPart === undefined)
      throw new UsageError(`${JSON.stringify(arg)} is not a store path, base name or hash part`);
    const store = openState(values.state ?? DEFAULT_STATE);
    try {
      const r = pathReport(store, hashPart, storeDir);
      if (values.json === true) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else {
        const verdict = r.claims.length === 0 ? 'no claims' : r.agree ? 'agree' : 'DISAGREE';
        process.stdout.write(`${hashPart}: ${r.claims.length} claim(s), ${verdict}\n`);
        for (const c of r.claims)
          process.stdout.write(`  ${c.log} #${c.index}: ${c.narHash} ${c.narSize} bytes\n`);
      }
      return Promise.resolve(r.agree ? EXIT.ok : EXIT_FINDINGS);
    } finally {
      store.close();
    }
  },
});

function limitOption(text: string | undefined): number {
  const limit = positiveInteger(text, '--limit', 20);
  if (limit < 1 || limit > MAX_DEMAND_LIMIT)
    throw new UsageError(`--limit must be from 1 to ${MAX_DEMAND_LIMIT}`);
  return limit;
}

const demand = defineCommand({
  name: 'monitor demand',
  summary: 'print the most requested store paths the proxies reported',
  help: `Usage: accord monitor demand [--state FILE] [--limit N] [--json]

Prints the store paths most requested across the proxies that report demand to this monitor
(see 'accord monitor serve --reporters'): requests, refused requests, how many proxies asked,
most requests first.

Options:
  --state FILE      the monitor's database (default ${DEFAULT_STATE})
  --limit N         at most N paths (default 20)
  --store-dir DIR   the Nix store directory (default ${NIX_STORE_DIR})
  --json            print {reporters, periods, paths} as JSON`,
  options: {
    state: { type: 'string' },
    limit: { type: 'string' },
    'store-dir': { type: 'string' },
    json: { type: 'boolean' },
  },
  run(values) {
    const limit = limitOption(values.limit);
    const storeDir = values['store-dir'] ?? NIX_STORE_DIR;
    const store = openState(values.state ?? DEFAULT_STATE);
    try {
      const top = demandTop(store, { limit, storeDir });
      if (values.json === true) process.stdout.write(`${JSON.stringify(top, null, 2)}\n`);
      else {
        process.stdout.write(
          `${top.reporters} reporter(s), ${top.periods} period(s)\nrequests refused proxies path\n`,
        );
        for (const p of top.paths)
          process.stdout.write(
            `${p.requests} ${p.refused} ${p.reporters} ${p.storePath ?? p.hashPart}\n`,
          );
      }
      return Promise.resolve(EXIT.ok);
    } finally {
      store.close();
    }
  },
});

const wanted = defineCommand({
  name: 'monitor wanted',
  summary: 'print the wanted list: requested paths refused, or claimed by fewer than k logs',
  help: `Usage: accord monitor wanted [--k K] [--state FILE] [--limit N] [--json]

Prints the requested store paths that a proxy refused, or that fewer than K followed logs
agree on, most refused first, then most requested: one store path per line, its deriver after
it (separated by a space) when a claim names one; paths whose name nobody reported or claimed
are left out of the text. This is the list a rebuilder reads (also GET /wanted?format=text).

Options:
  --k K             paths fewer than K logs agree on are wanted (default 1)
  --state FILE      the monitor's database (default ${DEFAULT_STATE})
  --limit N         at most N paths (default 20)
  --store-dir DIR   the Nix store directory (default ${NIX_STORE_DIR})
  --json            print the paths as JSON, with their counts and derivers`,
  options: {
    k: { type: 'string' },
    state: { type: 'string' },
    limit: { type: 'string' },
    'store-dir': { type: 'string' },
    json: { type: 'boolean' },
  },
  run(values) {
    const k = positiveInteger(values.k, '--k', 1);
    if (k > 1_000_000) throw new UsageError('--k must be at most 1000000');
    const limit = limitOption(values.limit);
    const storeDir = values['store-dir'] ?? NIX_STORE_DIR;
    const store = openState(values.state ?? DEFAULT_STATE);
    try {
      const paths = wantedList(store, { k, limit, storeDir });
      process.stdout.write(
        values.json === true
          ? `${JSON.stringify({ k, paths }, null, 2)}\n`
          : formatWantedList(paths),
      );
      return Promise.resolve(EXIT.ok);
    } finally {
      store.close();
    }
  },
});

const subcommands = new Map([
  ['serve', serve],
  ['report', report],
  ['path', path],
  ['demand', demand],
  ['wanted', wanted],
]);

/** `accord monitor <serve|report|path>`. */
export const monitorCommand: Command = {
  summary: 'follow logs and report forks and disagreements: serve, report, path, demand, wanted',
  async run(argv) {
    const [sub, ...rest] = argv;
    const command = subcommands.get(sub ?? '');
    if (command !== undefined) return command.run(rest);
    const help = `Usage: accord monitor serve --policy FILE [--once] [options]
       accord monitor report [--json]
       accord monitor path STORE-PATH
       accord monitor demand [--limit N] [--json]
       accord monitor wanted [--k K] [--limit N] [--json]
Run 'accord monitor <subcommand> --help' for options.
`;
    if (sub === '--help' || sub === '-h') {
      process.stdout.write(help);
      return EXIT.ok;
    }
    process.stderr.write(
      `accord monitor: unknown subcommand ${JSON.stringify(sub ?? '')}\n${help}`,
    );
    return EXIT.usage;
  },
};
