/** `accord submit`: the builder's client (post-build-hook, spool flush, backfill). */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ClaimJson } from '../claim/index.js';
import { pathInfoClaims, queryOutputs } from '../host/index.js';
import { parseGuixPublicKey } from '../guix/index.js';
import { checkStoreDir, parseNixPublicKey } from '../nix/index.js';
import {
  type BackfillProgress,
  type LogEndpoint,
  Spool,
  backfill,
  hashPartOf,
  submitOrSpool,
} from '../submit/index.js';
import { EXIT, UsageError, defineCommand, readOptionFile } from './command.js';
import { progressBar } from './progress.js';

export function defaultSpool(): string {
  const state = process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state');
  return join(state, 'accord', 'spool.db');
}

/** The log's URL: `--log`, else ACCORD_LOG_URL; an http(s) URL. */
export function logUrl(values: { log?: string }): string {
  const url = values.log ?? process.env.ACCORD_LOG_URL;
  if (url === undefined) throw new UsageError('--log URL is required (or ACCORD_LOG_URL)');
  if (!/^https?:\/\/\S+$/.test(url))
    throw new UsageError(`--log ${JSON.stringify(url)}: want the log's http(s):// URL`);
  return url;
}

export function readToken(values: { 'token-file'?: string }): string {
  const fromEnv = process.env.ACCORD_TOKEN;
  if (values['token-file'] !== undefined)
    return readOptionFile('--token-file', values['token-file'], (text) => {
      const token = text.trim();
      if (token === '') throw new Error('the file is empty: want the token from accord log token');
      return token;
    });
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

Every claim is first stored in a durable local spool. If the log cannot take it now (down,
slow, a set-up error such as a wrong token), it waits there for the next run. If the log
refuses a claim for good (HTTP 400, 413 or 422), the claim is set aside with the log's answer
and the claims after it go on: --status lists what was set aside.

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
  --status             what waits in the spool and what the log refused, without contacting
                       the log (no token needed); exit 1 if any claim was refused
  --retry-refused      move the refused claims back into the spool and retry them
  --forget-refused     delete the refused claims
  --from-cache URL     backfill the log from a binary cache's narinfos (file:// caches are
                       listed; for http(s) caches, guix publish servers too, give --paths)
  --paths FILE         store paths, base names or hash parts to backfill, one a line (- = stdin)
  --trusted-key KEY    backfill only narinfos signed by KEY (name:base64; repeatable)
  --guix-key FILE      the cache is a guix publish server: backfill only its Guix narinfos
                       signed by the key in FILE (as guix archive --generate-key writes
                       signing-key.pub; repeatable; not with --trusted-key)
  --jobs N             narinfos fetched at once when backfilling (default 16)
  --store-dir DIR      the store (default: what the cache's nix-cache-info says, else
                       /nix/store, or /gnu/store with --guix-key); a cache that names
                       another store is refused
  --json               print a JSON report on standard output
  --quiet              no progress or messages on standard error

Exit codes: 0 claims submitted or spooled; 1 failure (claims could not be computed, the log
refused a claim or the set-up (token, URL), the backfill stopped, --flush left claims in the
spool, or --status found refused claims); 2 bad usage. Only a log that is down or slow is a
quiet spool (exit 0): as a post-build-hook, a refusal or a set-up error stops Nix's builds
until it is fixed, rather than letting a builder publish nothing unnoticed.`,
  options: {
    log: { type: 'string' },
    'token-file': { type: 'string' },
    spool: { type: 'string' },
    timeout: { type: 'string' },
    flush: { type: 'boolean' },
    status: { type: 'boolean' },
    'retry-refused': { type: 'boolean' },
    'forget-refused': { type: 'boolean' },
    'from-cache': { type: 'string' },
    paths: { type: 'string' },
    'trusted-key': { type: 'string', multiple: true },
    'guix-key': { type: 'string', multiple: true },
    jobs: { type: 'string' },
    'store-dir': { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
  },
  positionals: { min: 0, max: 100_000 },
  async run(values, positionals) {
    const url = logUrl(values);
    const timeoutMs = Number(values.timeout ?? 5000);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError('bad --timeout');
    const quiet = values.quiet === true;
    const say = (text: string) => {
      if (!quiet) process.stderr.write(`accord submit: ${text}\n`);
    };
    const spool = new Spool(values.spool ?? defaultSpool());
    try {
      if (values.status === true) return status(spool, url, values.json === true);
      if (values['forget-refused'] === true) {
        say(`forgot ${spool.clearRefused(url, true)} refused claims`);
        return EXIT.ok;
      }
      const endpoint: LogEndpoint = { url, token: readToken(values), timeoutMs };
      if (values['from-cache'] !== undefined) {
        return await runBackfill(values['from-cache'], endpoint, spool, values, quiet, say);
      }
      if (values['retry-refused'] === true)
        say(`retrying ${spool.clearRefused(url, false)} refused claims`);
      const flushOnly = values.flush === true || values['retry-refused'] === true;
      const paths = flushOnly ? [] : positionals.length > 0 ? positionals : await hookOutputs();
      const claims: ClaimJson[] = await pathInfoClaims(paths);
      const report = await submitOrSpool(
        endpoint,
        spool,
        claims,
        flushOnly ? timeoutMs * 20 : timeoutMs,
      );
      if (values.json === true) process.stdout.write(`${JSON.stringify(report)}\n`);
      for (const r of report.refused)
        say(`set aside ${r.storePath}: ${r.reason} (see accord submit --status)`);
      say(
        `submitted ${report.submitted} claims; ${report.spooled} waiting in the spool` +
          (report.error === undefined ? '' : ` (${report.error})`),
      );
      // Only a log that is down or slow is a quiet spool: a refusal or a set-up error fails the
      // run (as a post-build-hook too, where it stops Nix's builds until someone fixes it).
      const failed =
        report.refused.length > 0 ||
        report.errorKind === 'setup' ||
        (flushOnly && report.spooled > 0);
      return failed ? EXIT.failure : EXIT.ok;
    } finally {
      spool.close();
    }
  },
});

/** `--status`: what waits in the spool and what the log refused, without contacting it. */
function status(spool: Spool, log: string, json: boolean): number {
  const waiting = spool.count(log);
  const refused = spool.refused(log);
  if (json) {
    const durable = spool.synchronous === 2;
    process.stdout.write(`${JSON.stringify({ log, waiting, refused, durable })}\n`);
  } else {
    process.stdout.write(`${log}: ${waiting} claims waiting, ${refused.length} refused\n`);
    for (const r of refused) {
      process.stdout.write(
        `refused ${new Date(r.refused).toISOString()} ${r.claim.storePath}\n  ${r.reason}\n`,
      );
    }
    if (refused.length > 0) {
      process.stdout.write(
        'fix the cause, then --retry-refused submits them again (--forget-refused drops them)\n',
      );
    }
  }
  return refused.length === 0 ? EXIT.ok : EXIT.failure;
}

async function runBackfill(
  cache: string,
  endpoint: LogEndpoint,
  spool: Spool,
  values: {
    paths?: string;
    'trusted-key'?: string[];
    'guix-key'?: string[];
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
  if (values['guix-key'] !== undefined && values['trusted-key'] !== undefined)
    throw new UsageError(
      '--guix-key (a Guix cache) and --trusted-key (a Nix cache) exclude each other',
    );
  const guixKeys = values['guix-key']?.map((file) =>
    readOptionFile('--guix-key', file, (text) => parseGuixPublicKey(text)),
  );
  if (values['store-dir'] !== undefined) {
    try {
      checkStoreDir(values['store-dir']);
    } catch (e) {
      throw new UsageError(`--store-dir: ${(e as Error).message}`);
    }
  }
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
    ...(guixKeys === undefined ? {} : { guixKeys }),
    ...(values['store-dir'] === undefined ? {} : { storeDir: values['store-dir'] }),
    jobs,
    onProgress: (p) => {
      bar ??= progressBar('backfill', p.total - p.skipped, quiet);
      bar.update(p.submitted + p.missing + p.untrusted + p.failed, detail(p));
    },
  });
  bar?.finish(detail(result));
  for (const e of result.errors) say(e);
  for (const r of result.refusals) say(`untrusted ${r}`);
  if (values.json === true) process.stdout.write(`${JSON.stringify(result)}\n`);
  say(`backfilled ${result.submitted} ${result.storeDir} claims from ${cache} (${detail(result)})`);
  return result.failed === 0 ? EXIT.ok : EXIT.failure;
}
