/**
 * The rebuild report (`accord/rebuild/v1`): the builds a rebuilder tried and that failed, one
 * line per output path and attempt, as a C2SP signed note signed by the rebuilder's log key
 * (see docs/rebuild.md, "Failures on the dashboard"). A failure is not a claim: what was built
 * is in the rebuilder's log; this says what could not be. Parsing is strict and canonical, the
 * caps and the signature rules are every signed report's ({@link openSignedReport}).
 *
 * ```
 * accord/rebuild/v1
 * reporter rebuilder.example/log
 * at 1764720000123
 * <hash part> <attempt: ms since the epoch> failed <name> <reason>
 * ```
 *
 * The log key cannot be made to sign a checkpoint by it: a checkpoint's second line is a
 * tree size, a rebuild report's is `reporter …`.
 */
import { HASH_PART_LENGTH, MAX_NAME_LENGTH, checkStorePathName, isHashPart } from '../nix/index.js';
import { type NoteSigner, type NoteVerifier, isValidKeyName, signNote } from '../tlog/index.js';
import { DemandError } from './errors.js';
import { MAX_REPORT_BYTES, openSignedReport, parseCount } from './signed.js';

/** The first line of every rebuild report. */
export const REBUILD_HEADER = 'accord/rebuild/v1';
/** Most failure lines in one report (so that a full report stays under the byte cap). */
export const MAX_REBUILD_FAILURES = 1000;
/** Longest reason of a failure, in bytes (printable ASCII). */
export const MAX_REASON_BYTES = 256;

/** One failed attempt to build one output path. */
export interface RebuildFailure {
  readonly hashPart: string;
  /** The output path's name (after `<hash part>-`). */
  readonly name: string;
  /** When the attempt failed (ms since the epoch): with the reporter and path, its identity. */
  readonly attempt: number;
  /** Why, in one line of printable ASCII, at most {@link MAX_REASON_BYTES} ({@link shortReason}). */
  readonly reason: string;
}

export interface RebuildReport {
  /** The reporter's key name: its log's origin. */
  readonly reporter: string;
  /** When the report was made (ms since the epoch); no attempt is later. */
  readonly at: number;
  /** Sorted by hash part then attempt, no (hash part, attempt) twice. */
  readonly failures: readonly RebuildFailure[];
}

const REASON = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

function malformed(why: string): DemandError {
  return new DemandError('malformed', `malformed rebuild report: ${why}`);
}

function checkTime(ms: number, what: string): void {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms >= 1e15)
    throw malformed(`${what} must be from 0 to 10^15 - 1 ms`);
}

function checkFailure(f: RebuildFailure, at: number, previous: RebuildFailure | undefined): void {
  if (!isHashPart(f.hashPart)) throw malformed(`${JSON.stringify(f.hashPart)} is not a hash part`);
  checkTime(f.attempt, `attempt of ${f.hashPart}`);
  if (f.attempt > at) throw malformed(`attempt of ${f.hashPart} is later than the report`);
  if (
    previous !== undefined &&
    (f.hashPart < previous.hashPart ||
      (f.hashPart === previous.hashPart && f.attempt <= previous.attempt))
  )
    throw malformed(`failure ${f.hashPart} ${f.attempt} is out of order or repeated`);
  try {
    checkStorePathName(f.name);
  } catch (cause) {
    throw new DemandError('malformed', `malformed rebuild report: ${f.hashPart}: bad name`, {
      cause,
    });
  }
  if (f.reason.length > MAX_REASON_BYTES || !REASON.test(f.reason))
    throw malformed(
      `reason of ${f.hashPart} is not one line of 1 to ${MAX_REASON_BYTES} printable ASCII characters`,
    );
}

/**
 * A build log's tail as a failure's reason: its non-blank lines joined with ` | `, anything but
 * printable ASCII replaced by `?`, and when too long its end kept (where Nix says what failed).
 */
export function shortReason(text: string): string {
  const line = text
    .split('\n')
    .map((l) =>
      l
        .replace(/[^\x20-\x7e]/g, '?')
        .replace(/ +/g, ' ')
        .trim(),
    )
    .filter((l) => l !== '')
    .join(' | ');
  if (line === '') return 'failed';
  return line.length <= MAX_REASON_BYTES
    ? line
    : `...${line.slice(-(MAX_REASON_BYTES - 3)).trimStart()}`;
}

/** The report's note text (unsigned); throws on a report that would not parse back. */
export function formatRebuildReport(report: RebuildReport): string {
  if (!isValidKeyName(report.reporter))
    throw malformed(`reporter name ${JSON.stringify(report.reporter)}`);
  checkTime(report.at, 'report time');
  if (report.failures.length > MAX_REBUILD_FAILURES)
    throw new DemandError(
      'too-large',
      `${report.failures.length} failures, limit ${MAX_REBUILD_FAILURES}`,
    );
  const lines = [`${REBUILD_HEADER}\n`, `reporter ${report.reporter}\n`, `at ${report.at}\n`];
  let previous: RebuildFailure | undefined;
  for (const f of report.failures) {
    checkFailure(f, report.at, previous);
    previous = f;
    lines.push(`${f.hashPart} ${f.attempt} failed ${f.name} ${f.reason}\n`);
  }
  return lines.join('');
}

/**
 * Parses a report's note text (attacker-controlled; the signature is not checked here: see
 * {@link openRebuildReport}). The line count is capped before the lines are split.
 */
export function parseRebuildReport(text: string): RebuildReport {
  if (Buffer.byteLength(text) > MAX_REPORT_BYTES)
    throw new DemandError('too-large', `rebuild report larger than ${MAX_REPORT_BYTES} bytes`);
  let newlines = 0;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) {
    if (++newlines > 3 + MAX_REBUILD_FAILURES)
      throw new DemandError(
        'too-large',
        `rebuild report has more than ${MAX_REBUILD_FAILURES} failures`,
      );
  }
  if (!text.endsWith('\n')) throw malformed('does not end in a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines[0] !== REBUILD_HEADER) throw malformed(`first line is not ${REBUILD_HEADER}`);
  const reporter = /^reporter (\S+)$/.exec(lines[1] ?? '')?.[1];
  if (reporter === undefined || !isValidKeyName(reporter)) throw malformed('bad reporter line');
  const atLine = /^at (\S+)$/.exec(lines[2] ?? '');
  if (atLine === null) throw malformed('bad at line');
  const at = parseCount(atLine[1], 'report time', 'rebuild');
  checkTime(at, 'report time');
  const failures: RebuildFailure[] = [];
  let previous: RebuildFailure | undefined;
  for (const line of lines.slice(3)) {
    // The reason is the rest of the line: it may hold spaces.
    const m = /^(\S+) (\S+) failed (\S+) (.+)$/.exec(line);
    if (m === null) throw malformed(`bad failure line ${JSON.stringify(line.slice(0, 80))}`);
    const [, hashPart = '', attempt, name = '', reason = ''] = m;
    if (hashPart.length !== HASH_PART_LENGTH || name.length > MAX_NAME_LENGTH)
      throw malformed(`bad failure line ${JSON.stringify(line.slice(0, 80))}`);
    const f: RebuildFailure = {
      hashPart,
      name,
      attempt: parseCount(attempt, `attempt of ${hashPart}`, 'rebuild'),
      reason,
    };
    checkFailure(f, at, previous);
    previous = f;
    failures.push(f);
  }
  return { reporter, at, failures };
}

/** Formats and signs a report with the rebuilder's log key (its name is the reporter). */
export function signRebuildReport(report: RebuildReport, signer: NoteSigner): string {
  if (signer.name !== report.reporter)
    throw new Error(`bug: report of ${report.reporter} signed by ${signer.name}`);
  return signNote(formatRebuildReport(report), [signer]);
}

/**
 * Opens a signed rebuild report (attacker-controlled) against the trusted reporter keys (the
 * keys of the logs a monitor follows), under the rules every signed report follows.
 */
export function openRebuildReport(
  msg: string | Uint8Array,
  reporters: readonly NoteVerifier[],
): { readonly report: RebuildReport; readonly verifier: NoteVerifier } {
  return openSignedReport(msg, reporters, 'rebuild', parseRebuildReport);
}
