/** `accord rebuild`: rebuild what a work list names with Nix and submit claims of the results. */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { NIX_STORE_DIR } from '../nix/index.js';
import {
  type ItemReport,
  type FailureReport,
  RebuildState,
  type WorkItem,
  parseWorkList,
  rebuild,
  reportFailures,
} from '../rebuild/index.js';
import { fetchBytes } from '../server/index.js';
import { type LogEndpoint, Spool, flushSpool } from '../submit/index.js';
import { EXIT, UsageError, defineCommand, readOptionFile } from './command.js';
import { readSignerKey } from './keyfile.js';
import { progressBar } from './progress.js';
import { positiveInteger } from './service.js';
import { defaultSpool, logUrl, readToken } from './submit.js';

const DEFAULT_STATE = join('accord-rebuild', 'state.db');
/** Some items failed or had no derivation: the run's exit code then. */
const EXIT_INCOMPLETE = 3;

/** A monitor's URL given with `flag`, without a trailing slash. */
function monitorUrl(flag: string, value: string | undefined): string {
  const base = (value ?? '').replace(/\/+$/, '');
  if (!/^https?:\/\/\S+$/.test(base))
    throw new UsageError(`${flag} ${JSON.stringify(base)}: want the monitor's http(s):// URL`);
  return base;
}

async function fetchText(flag: string, url: string): Promise<string> {
  try {
    return (await fetchBytes(url, 30_000, 64 << 20)).toString('utf8');
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${url}: ${(error as Error).message}`);
  }
}

/** The paths of a closure that fewer than k builders agree on, from the monitor's report. */
async function closureWork(path: string, monitor: string, k: number): Promise<WorkItem[]> {
  const [item] = parseList('--closure', path);
  if (item?.storePath === undefined) throw new UsageError('--closure: want a store path');
  const hashPart = item.storePath.slice(NIX_STORE_DIR.length + 1, NIX_STORE_DIR.length + 33);
  const url = `${monitor}/closure/${hashPart}?k=${k}&format=json`;
  let report: { paths?: { storePath?: unknown; status?: unknown; deriver?: unknown }[] };
  try {
    report = JSON.parse(await fetchText('--monitor', url)) as typeof report;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--monitor: ${url} did not answer a closure report`);
  }
  // The report is the monitor's word: every path in it is parsed like a work list's line.
  const lines = (report.paths ?? [])
    .filter((p) => p.status !== 'agreed')
    .map((p) => `${String(p.storePath)}${typeof p.deriver === 'string' ? ` ${p.deriver}` : ''}`);
  return parseList(`the closure report of ${monitor}`, `${lines.join('\n')}\n`);
}

async function workList(values: {
  wanted?: string;
  from?: string;
  closure?: string;
  monitor?: string;
  k?: string;
  limit?: string;
}): Promise<WorkItem[]> {
  const given = [values.wanted, values.from, values.closure].filter((v) => v !== undefined);
  if (given.length !== 1)
    throw new UsageError(
      'give one work list: --wanted MONITOR-URL, --from FILE or --closure STORE-PATH --monitor URL',
    );
  if (values.closure !== undefined)
    return closureWork(
      values.closure,
      monitorUrl('--monitor', values.monitor),
      positiveInteger(values.k, '--k', 2),
    );
  if (values.from !== undefined) {
    const text =
      values.from === '-'
        ? readFileSync(0, 'utf8')
        : readOptionFile('--from', values.from, (t) => t);
    return parseList('--from', text);
  }
  const base = monitorUrl('--wanted', values.wanted);
  const k = positiveInteger(values.k, '--k', 2);
  const limit = positiveInteger(values.limit, '--limit', 1000);
  const text = await fetchText('--wanted', `${base}/wanted?k=${k}&limit=${limit}&format=text`);
  return parseList(`the wanted list of ${base}`, text);
}

function parseList(what: string, text: string): WorkItem[] {
  try {
    return parseWorkList(text, NIX_STORE_DIR);
  } catch (error) {
    throw new UsageError(`${what}: ${(error as Error).message}`);
  }
}

function describe(r: ItemReport): string {
  const what = r.item.storePath ?? r.item.drv ?? '';
  switch (r.status) {
    case 'built':
      return `built ${what}`;
    case 'differs':
      return `built ${what}: other bytes than the store's copy (${r.reason ?? ''})`;
    case 'done-before':
      return `${what}: done in an earlier run`;
    case 'failed':
      return `FAILED ${what}:\n  ${(r.reason ?? '').split('\n').join('\n  ')}`;
    case 'no-derivation':
      return `cannot rebuild ${what}: ${r.reason ?? ''}`;
  }
}

export const rebuildCommand = defineCommand({
  name: 'rebuild',
  summary: 'rebuild the paths a work list names with Nix and submit claims to your log',
  help: `Usage: accord rebuild (--wanted MONITOR-URL | --from FILE | --closure STORE-PATH --monitor URL)
                      --log URL --token-file FILE [options]

Rebuilds, with the local Nix, every store path of a work list and submits a claim of what it
built to this rebuilder's own log, so that paths only one builder vouched for reach k. The work
list is a monitor's wanted list (--wanted: paths people asked a proxy for that were refused, or
that fewer than --k builders claim), a file (--from; '-' for standard input): one store path
per line, optionally followed by the derivation that produces it, or a derivation alone — or
a closure (--closure: the paths of its closure that fewer than --k builders agree on, from the
monitor's closure report; make this closure reach k).

Each path needs its derivation in the local store: named in the work list, or the deriver the
store records for it. Without one the path is reported with what to do (nix-instantiate of the
expression that produces it, from the same nixpkgs revision). The output under test is never
substituted: the derivation's inputs are realised first (substituters allowed), then it is built
with substitution off, or with --check when its output is already in the store (then a
differing build is kept beside it as <output>.check and claimed). A build that fails is reported
as failed, never claimed.

Claims go through the same durable spool as 'accord submit' (retried by the next run or by
'accord submit --flush'). A run killed at any point and started again skips what is done:
every item is built once and its claims submitted once.

With --report, the builds that failed are reported to a monitor at the end of the run, signed
with this rebuilder's log key (--key: the monitor takes reports only from the logs it
follows), and shown on its dashboard; failures not reported yet (the monitor was unreachable,
the run was killed) go with the next run's report, and the monitor counts each once.

Options:
  --wanted URL         the monitor whose wanted list to rebuild (GET URL/wanted)
  --k K                with --wanted or --closure: the agreeing builders wanted (default 2)
  --limit N            with --wanted: at most N paths, most wanted first (default 1000)
  --from FILE          the work list from a file ('-': standard input)
  --closure PATH       the paths of PATH's closure not agreed by --k builders, as --monitor
                       URL's closure report says
  --monitor URL        with --closure: the monitor to ask
  --log URL            this rebuilder's log
  --token-file FILE    its submit token ('accord log token'; or ACCORD_TOKEN)
  --jobs N             derivations built at the same time (default 1)
  --cache-dir DIR      keep the NAR of every output built here, as a file binary cache (give it
                       to the monitor, 'monitor serve --cache ORIGIN=file://DIR', or serve it,
                       so the dashboard shows which files differ)
  --build-timeout S    stop a build after S seconds (default: no limit)
  --state FILE         what each item came to (default ${DEFAULT_STATE})
  --spool FILE         the spool (default as 'accord submit')
  --retry-failed       try again the items that failed or had no derivation in earlier runs
  --report URL         report the failed builds to this monitor (POST URL/rebuilds)
  --key FILE           with --report: this rebuilder's log key ('accord keygen'; the key its
                       'accord log serve --key' signs checkpoints with)
  --json               print the summary as JSON
  --quiet              no progress bar

Exit codes: 0 every item rebuilt (or done in an earlier run) and the claims submitted or
spooled; ${EXIT_INCOMPLETE} some items failed or had no derivation; 1 the log refused claims, the
monitor refused the report, or a set-up error; 2 bad usage.`,
  options: {
    wanted: { type: 'string' },
    k: { type: 'string' },
    limit: { type: 'string' },
    from: { type: 'string' },
    closure: { type: 'string' },
    monitor: { type: 'string' },
    log: { type: 'string' },
    'token-file': { type: 'string' },
    jobs: { type: 'string' },
    'cache-dir': { type: 'string' },
    'build-timeout': { type: 'string' },
    state: { type: 'string' },
    spool: { type: 'string' },
    'retry-failed': { type: 'boolean' },
    report: { type: 'string' },
    key: { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
  },
  async run(values) {
    const url = logUrl(values);
    const endpoint: LogEndpoint = { url, token: readToken(values), timeoutMs: 30_000 };
    const jobs = positiveInteger(values.jobs, '--jobs', 1);
    const buildTimeoutMs = positiveInteger(values['build-timeout'], '--build-timeout', 0) * 1000;
    if ((values.report === undefined) !== (values.key === undefined))
      throw new UsageError('--report and --key go together: the report is signed with the log key');
    const reportTo =
      values.report === undefined ? undefined : monitorUrl('--report', values.report);
    const signer = values.key === undefined ? undefined : readSignerKey(values.key);
    const items = await workList(values);
    const quiet = values.quiet === true || values.json === true;
    const say = (text: string) => {
      if (!quiet) process.stderr.write(`accord rebuild: ${text}\n`);
    };
    const spool = new Spool(values.spool ?? defaultSpool());
    const state = new RebuildState(values.state ?? DEFAULT_STATE);
    try {
      if (values['retry-failed'] === true) say(`retrying ${state.forgetFailures()} failed items`);
      const bar = progressBar('rebuild', items.length, quiet);
      // Items done, or counted as Nix ends their builds: never going back.
      let shown = 0;
      const show = (done: number) => {
        shown = Math.max(shown, done);
        bar.update(shown);
      };
      const summary = await rebuild({
        items,
        spool,
        log: url,
        state,
        jobs,
        buildTimeoutMs,
        ...(values['cache-dir'] === undefined ? {} : { cacheDir: values['cache-dir'] }),
        onItem(done, _total, report) {
          if (report.status !== 'done-before' && report.status !== 'built')
            bar.note(describe(report));
          show(done);
        },
        onProgress: show,
      });
      bar.finish();
      const submitted = await flushSpool(endpoint, spool, performance.now() + 60_000);
      let reported: FailureReport | undefined;
      if (reportTo !== undefined && signer !== undefined)
        reported = await reportFailures({ state, monitor: reportTo, signer, timeoutMs: 30_000 });
      if (values.json === true) {
        process.stdout.write(
          `${JSON.stringify({ ...summary, submit: submitted, ...(reported === undefined ? {} : { report: reported }) }, null, 2)}\n`,
        );
      } else {
        say(
          `${summary.built} built, ${summary.differs} built with other bytes than the store's copy, ` +
            `${summary.failed} failed, ${summary.noDerivation} without a derivation, ` +
            `${summary.doneBefore} done before; submitted ${submitted.submitted} claims, ` +
            `${submitted.spooled} waiting in the spool` +
            (submitted.error === undefined ? '' : ` (${submitted.error})`),
        );
        if (reported !== undefined)
          say(
            `reported ${reported.reported} failures to the monitor, ${reported.pending} waiting` +
              (reported.error === undefined ? '' : ` (${reported.error})`),
          );
      }
      if (submitted.refused.length > 0 || submitted.errorKind === 'setup') return EXIT.failure;
      if (reported?.refused === true) return EXIT.failure;
      return summary.failed + summary.noDerivation > 0 ? EXIT_INCOMPLETE : EXIT.ok;
    } finally {
      state.close();
      spool.close();
    }
  },
});
