/** `accord audit`: re-checks a local Nix store's paths against today's logs and policy. */
import { readFileSync } from 'node:fs';
import {
  AUDIT_CATEGORIES,
  AuditError,
  type AuditFailure,
  type AuditReport,
  type LocalPath,
  NIX_DB_PATH,
  NixStoreDb,
  auditStore,
  isFailure,
} from '../audit/index.js';
import { parseStorePath } from '../nix/index.js';
import { type ProxyConfig, loadProxyConfig, openResolver } from '../proxy/index.js';
import { refuseFetches, silentLogger } from '../server/index.js';
import { EXIT, UsageError, defineCommand } from './command.js';
import { progressBar } from './progress.js';

/** Exit code: the store (or the proxy's state) could not be read; nothing was concluded. */
const EXIT_UNREADABLE = 3;

/** The largest `--paths` list read (a store of millions of paths lists in under this). */
const MAX_PATHS_BYTES = 512 << 20;

/** A log lookup of a whole batch of paths gets at least this long (the proxy's is per path). */
const MIN_BATCH_TIMEOUT_MS = 30_000;

/** Reads `--paths`: one store path a line (blank lines skipped), strictly, without repeats. */
function readPathList(source: string, storeDir: string): string[] {
  let text: string;
  try {
    const bytes = readFileSync(source === '-' ? 0 : source);
    if (bytes.length > MAX_PATHS_BYTES)
      throw new UsageError(`--paths ${source}: larger than ${MAX_PATHS_BYTES} bytes`);
    text = bytes.toString('utf8');
  } catch (cause) {
    if (cause instanceof UsageError) throw cause;
    throw new UsageError(`--paths ${source}: ${(cause as Error).message}`);
  }
  const paths = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    try {
      parseStorePath(line, storeDir);
    } catch (cause) {
      throw new UsageError(`--paths ${source}: line ${i + 1}: ${(cause as Error).message}`);
    }
    paths.add(line);
  });
  return [...paths];
}

/** The config the audit resolves with: the proxy's, fitted to batches and to no serving. */
function auditConfig(config: ProxyConfig): ProxyConfig {
  return {
    ...config,
    // Upstream narinfos matter to the decision only as caches' signature votes: without cache
    // members in the policy, no upstream is asked.
    upstreams: config.policy.caches.length === 0 ? [] : config.upstreams,
    logTimeoutMs: Math.max(config.logTimeoutMs, MIN_BATCH_TIMEOUT_MS),
    narinfoDeadlineMs: Math.max(config.narinfoDeadlineMs, MIN_BATCH_TIMEOUT_MS),
  };
}

function summaryLine(report: AuditReport, offline: boolean): string {
  const failing = report.failures.length;
  const parts = AUDIT_CATEGORIES.filter((c) => isFailure(c) && report.counts[c] > 0).map(
    (c) => `${report.counts[c]} ${c}`,
  );
  return (
    `${report.paths} paths audited (${offline ? 'offline: stored evidence only' : 'logs asked now'}): ` +
    `${report.counts.ok} ok, ${report.counts.unknown} unknown, ${failing} failing` +
    (parts.length === 0 ? '' : ` (${parts.join(', ')})`)
  );
}

function describeFailure(f: AuditFailure): string {
  const lines = [`${f.finding.category.toUpperCase()} ${f.local.path}`, `  ${f.finding.reason}`];
  const e = f.evidence;
  for (const a of e.answers)
    lines.push(
      `  answer ${a.answer.narHash} ${a.answer.narSize} bytes: ${a.supporters.join(', ') || '(none)'}${a.satisfied ? ' (satisfies the policy)' : ''}`,
    );
  for (const log of e.logs)
    if (log.status === 'missing') lines.push(`  ${log.origin}: missing — ${log.reason}`);
    else if (log.verifiedEarlier) lines.push(`  ${log.origin}: verified earlier (not now)`);
  for (const cache of e.caches)
    if (cache.status === 'missing') lines.push(`  ${cache.cache}: missing — ${cache.reason}`);
  lines.push('  what to do:', ...f.advice.map((a) => `    ${a}`));
  return lines.join('\n');
}

export const auditCommand = defineCommand({
  name: 'audit',
  summary: "re-check the local Nix store's paths against today's logs and policy",
  help: `Usage: accord audit --config FILE [--offline] [--json] [--paths FILE|-] [--store-db PATH]

Walks the valid paths of the local Nix store (read-only, from Nix's database) and runs the
proxy's decision for each — the same logs, proofs, checkpoints and stored evidence as
'accord proxy', in batches of one lookup per log — then compares the answer trusted now with
what the store holds (NAR hash, NAR size, references). Each path is:

  ok             trusted now, the same NAR as in the store
  unknown        no configured log or cache says anything (built here, or from elsewhere)
  no-quorum-now  too few members support it now
  differs        the trusted answer is another NAR than the store's
  conflict       two answers each satisfy the policy
  distrusted     a member that supported it is distrusted now, for a fork
  revoked        a member that supported it has its key revoked

Each failing path is printed with its evidence and what to do. Claims and checkpoints verified
are stored in the proxy's state, as the proxy would. See docs/audit.md.

Options:
  --config FILE      the proxy's TOML config (required)
  --offline          ask nothing over the network: decide from the evidence the proxy stored
  --json             print the counts and every failing path with its evidence as JSON
  --paths FILE|-     audit only these store paths (one a line; - reads standard input)
  --store-db PATH    Nix's database (default ${NIX_DB_PATH})

Exit codes: 0 no path failed; 1 some path's trust no longer holds; 2 bad usage; 3 the store's
database (or the proxy's state) could not be read.`,
  options: {
    config: { type: 'string' },
    offline: { type: 'boolean' },
    json: { type: 'boolean' },
    paths: { type: 'string' },
    'store-db': { type: 'string' },
  },
  async run(values) {
    if (values.config === undefined) throw new UsageError('--config FILE is required');
    let config: ProxyConfig;
    try {
      config = auditConfig(loadProxyConfig(values.config));
    } catch (cause) {
      throw new UsageError(`--config ${values.config}: ${(cause as Error).message}`);
    }
    const only =
      values.paths === undefined ? undefined : readPathList(values.paths, config.storeDir);
    const offline = values.offline === true;
    let store: NixStoreDb | undefined;
    let opened: ReturnType<typeof openResolver> | undefined;
    try {
      store = NixStoreDb.open(values['store-db'] ?? NIX_DB_PATH, config.storeDir);
      let pages: Iterable<LocalPath[]>;
      let total: number;
      if (only === undefined) {
        total = store.count();
        pages = store.pages(1000);
      } else {
        const { found, missing } = store.lookup(only);
        if (missing.length > 0)
          throw new UsageError(
            `--paths: ${missing.length} of the paths are not valid in the store (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''})`,
          );
        total = found.length;
        pages = [found];
      }
      if (offline) refuseFetches('not asked (accord audit --offline)');
      opened = openResolver(config, silentLogger);
      const progress = progressBar('audit', total, total < 1000 && !process.stderr.isTTY);
      const report = await auditStore(
        opened.resolver,
        opened.state,
        config.policy,
        config.storeDir,
        pages,
        {
          onProgress: (done) => {
            progress.update(done);
          },
        },
      );
      progress.finish();
      if (!offline) await opened.gossip.drain();
      if (values.json === true) {
        const json = {
          offline,
          paths: report.paths,
          counts: report.counts,
          failures: report.failures.map((f) => ({
            path: f.local.path,
            category: f.finding.category,
            reason: f.finding.reason,
            ...(f.finding.differences === undefined ? {} : { differences: f.finding.differences }),
            ...(f.finding.members === undefined ? {} : { members: f.finding.members }),
            store: {
              narHash: f.local.narHash,
              narSize: f.local.narSize,
              references: f.local.references,
              ...(f.local.deriver === undefined ? {} : { deriver: f.local.deriver }),
            },
            advice: f.advice,
            evidence: f.evidence,
          })),
        };
        process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
      } else {
        const text = [summaryLine(report, offline), ...report.failures.map(describeFailure)];
        process.stdout.write(`${text.join('\n')}\n`);
      }
      return report.failures.length === 0 ? EXIT.ok : EXIT.failure;
    } catch (error) {
      if (error instanceof UsageError) throw error;
      const what = error instanceof AuditError ? '' : 'could not complete the audit: ';
      process.stderr.write(`accord audit: ${what}${(error as Error).message}\n`);
      return EXIT_UNREADABLE;
    } finally {
      opened?.state.close();
      store?.close();
    }
  },
});
