/** `accord submit`: the builder's client (post-build-hook, spool flush, backfill). */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ClaimJson } from '../claim/index.js';
import { pathInfoClaims, queryOutputs } from '../host/index.js';
import { NIX_STORE_DIR, parseNixPublicKey } from '../nix/index.js';
import {
  type BackfillProgress,
  type LogEndpoint,
  Spool,
  backfill,
  flushSpool,
  hashPartOf,
  submitOrSpool,
} from '../submit/index.js';
import { EXIT, UsageError, defineCommand } from './command.js';
import { progressBar } from './progress.js';

function defaultSpool(): string {
  const state = process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state');
  return join(state, 'accord', 'spool.db');
}

function readToken(values: { 'token-file'?: string }): string {
  const fromEnv = process.env.ACCORD_TOKEN;
  if (values['token-file'] !== undefined) return readFileSync(values['token-file'], 'utf8').trim();
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  throw new UsageError('give --token-file FILE (or set ACCORD_TOKEN)');
}

/** The output paths of the build the post-build-hook runs for. */
async function hookOutputs(): Promise<string[]> {
  const out = (process.env.OUT_PATHS ?? '').split(/\s+/).filter((p) => p !== '');
  if (out.length > 0) return out;
  // Nix 2.8.0 passes an empty OUT_PATHS (fixed in 2.8.1): ask the store instead.
  const drv = process.env.DRV_PATH;
  return drv === undefined || drv === '' ? [] : queryOutputs(drv);
}

export const submitCommand = defineCommand({
  name: 'submit',
  summary: 'submit build claims to a log (post-build-hook, spool, backfill)',
  help: `Usage: accord submit --log URL --token-file FILE [options] [STORE-PATH…]

Submits claims — store path, NAR hash and size, references, deriver, as the local Nix store
records them — to a builder's log. With no STORE-PATH it works as Nix's post-build-hook: it
reads OUT_PATHS and DRV_PATH (falling back to 'nix-store -q --outputs' when OUT_PATHS is
empty, as Nix 2.8.0 leaves it). Every run first retries the spool.

If the log cannot take the claims (down, slow, refusing), they are stored in a durable local
spool and the command still exits 0, so a build is never stopped by its log.

Use as a post-build-hook: put in nix.conf 'post-build-hook = /etc/accord/post-build' with
  #!/bin/sh
  exec accord submit --log https://log.example.org --token-file /etc/accord/token

Options:
  --log URL            the log's base URL (or ACCORD_LOG_URL)
  --token-file FILE    the submit token ('accord log token'; or ACCORD_TOKEN)
  --spool FILE         spool database (default $XDG_STATE_HOME/accord/spool.db,
                       ~/.local/state/accord/spool.db)
  --timeout MS         time allowed for talking to the log (default 5000)
  --flush              only retry the spool; exit 1 if claims remain in it
  --from-cache URL     backfill the log from a binary cache's narinfos (file:// caches are
                       listed; for http(s) caches give --paths)
  --paths FILE         store paths, base names or hash parts to backfill, one a line (- = stdin)
  --trusted-key KEY    backfill only narinfos signed by KEY (name:base64; repeatable)
  --jobs N             narinfos fetched at once when backfilling (default 16)
  --store-dir DIR      the store (default /nix/store)
  --json               print a JSON report on standard output
  --quiet              no progress or messages on standard error

Exit codes: 0 claims submitted or spooled; 1 failure (claims could not be computed, the
backfill stopped, or --flush left claims in the spool); 2 bad usage.`,
  options: {
    log: { type: 'string' },
    'token-file': { type: 'string' },
    spool: { type: 'string' },
    timeout: { type: 'string' },
    flush: { type: 'boolean' },
    'from-cache': { type: 'string' },
    paths: { type: 'string' },
    'trusted-key': { type: 'string', multiple: true },
    jobs: { type: 'string' },
    'store-dir': { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
  },
  positionals: { min: 0, max: 100_000 },
  async run(values, positionals) {
    const url = values.log ?? process.env.ACCORD_LOG_URL;
    if (url === undefined || !/^https?:\/\//.test(url))
      throw new UsageError('give --log http(s)://…');
    const timeoutMs = Number(values.timeout ?? 5000);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError('bad --timeout');
    const endpoint: LogEndpoint = { url, token: readToken(values), timeoutMs };
    const quiet = values.quiet === true;
    const say = (text: string) => {
      if (!quiet) process.stderr.write(`accord submit: ${text}\n`);
    };
    const spool = new Spool(values.spool ?? defaultSpool());
    try {
      if (values['from-cache'] !== undefined) {
        return await runBackfill(values['from-cache'], endpoint, spool, values, quiet, say);
      }
      if (values.flush === true) {
        const result = await flushSpool(endpoint, spool, performance.now() + timeoutMs * 20);
        const left = spool.count(url);
        if (values.json === true)
          process.stdout.write(`${JSON.stringify({ ...result, spooled: left })}\n`);
        say(
          `submitted ${result.submitted} spooled claims; ${left} remain${result.error === undefined ? '' : ` (${result.error})`}`,
        );
        return left === 0 ? EXIT.ok : EXIT.failure;
      }
      const paths = positionals.length > 0 ? positionals : await hookOutputs();
      const claims: ClaimJson[] = await pathInfoClaims(paths);
      const report = await submitOrSpool(endpoint, spool, claims, timeoutMs);
      if (values.json === true) process.stdout.write(`${JSON.stringify(report)}\n`);
      if (report.error !== undefined) {
        say(
          `${report.error}; ${claims.length} claims kept in the spool (${report.spooled} waiting)`,
        );
      } else {
        say(`submitted ${report.submitted} claims`);
      }
      return EXIT.ok;
    } finally {
      spool.close();
    }
  },
});

async function runBackfill(
  cache: string,
  endpoint: LogEndpoint,
  spool: Spool,
  values: {
    paths?: string;
    'trusted-key'?: string[];
    jobs?: string;
    'store-dir'?: string;
    json?: boolean;
  },
  quiet: boolean,
  say: (text: string) => void,
): Promise<number> {
  let hashParts: string[] | undefined;
  if (values.paths !== undefined) {
    const text = readFileSync(values.paths === '-' ? 0 : values.paths, 'utf8');
    hashParts = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((line) => {
        const h = hashPartOf(line);
        if (h === undefined)
          throw new UsageError(`--paths: ${JSON.stringify(line)} names no store path`);
        return h;
      });
  } else if (!cache.startsWith('file://')) {
    throw new UsageError('an HTTP cache cannot be listed: give --paths FILE');
  }
  const jobs = Number(values.jobs ?? 16);
  if (!Number.isSafeInteger(jobs) || jobs < 1 || jobs > 256) throw new UsageError('bad --jobs');
  let bar: ReturnType<typeof progressBar> | undefined;
  const detail = (p: BackfillProgress) =>
    `${p.skipped} already done, ${p.missing} missing, ${p.untrusted} untrusted, ${p.failed} failed`;
  const result = await backfill({
    cache,
    endpoint: { ...endpoint, timeoutMs: Math.max(endpoint.timeoutMs ?? 5000, 30_000) },
    spool,
    ...(hashParts === undefined ? {} : { hashParts }),
    ...(values['trusted-key'] === undefined
      ? {}
      : { trustedKeys: values['trusted-key'].map((k) => parseNixPublicKey(k)) }),
    storeDir: values['store-dir'] ?? NIX_STORE_DIR,
    jobs,
    onProgress: (p) => {
      bar ??= progressBar('backfill', p.total - p.skipped, quiet);
      bar.update(p.submitted + p.missing + p.untrusted + p.failed, detail(p));
    },
  });
  bar?.finish(detail(result));
  for (const e of result.errors) say(e);
  if (values.json === true) process.stdout.write(`${JSON.stringify(result)}\n`);
  say(`backfilled ${result.submitted} claims from ${cache} (${detail(result)})`);
  return result.failed === 0 ? EXIT.ok : EXIT.failure;
}
