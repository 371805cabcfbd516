/**
 * The demand report (`accord/demand/v1`): a proxy's narinfo request counts per store path for
 * one period, as a C2SP signed note signed by the proxy's Nix signing key (see
 * docs/dashboard.md, "Demand reporting and privacy"). Parsing is strict and canonical: one
 * text per report, size caps checked first.
 */
import { HASH_PART_LENGTH, checkStorePathName, isHashPart } from '../nix/index.js';
import { type NoteSigner, type NoteVerifier, isValidKeyName, signNote } from '../tlog/index.js';
import { DemandError } from './errors.js';
import { MAX_REPORT_BYTES, openSignedReport, parseCount } from './signed.js';

/** The first line of every demand report. */
export const DEMAND_HEADER = 'accord/demand/v1';
/** Largest signed report in bytes, text and signature together (every signed report's cap). */
export const MAX_DEMAND_BYTES = MAX_REPORT_BYTES;
/** Most path lines in one report. */
export const MAX_DEMAND_PATHS = 10_000;
/** Shortest and longest period a report may cover, in seconds (a minute, a week). */
export const MIN_PERIOD_SECONDS = 60;
export const MAX_PERIOD_SECONDS = 7 * 86_400;

/** One store path's counts in a period. */
export interface DemandPath {
  readonly hashPart: string;
  /** narinfo requests for it (at least 1). */
  readonly requests: number;
  /** Of those, the ones answered with a refusal (not trusted, not found): at most `requests`. */
  readonly refused: number;
  /** The store path's name (after `<hash part>-`), when the reporter knows it. */
  readonly name?: string;
}

/** What one reporter saw in one period. */
export interface DemandReport {
  /** The reporter's key name (its Nix signing key's name). */
  readonly reporter: string;
  /** Start of the period, POSIX seconds, a multiple of `periodSeconds`. */
  readonly periodStart: number;
  readonly periodSeconds: number;
  /** Sorted by hash part, no hash part twice. */
  readonly paths: readonly DemandPath[];
}

function malformed(why: string): DemandError {
  return new DemandError('malformed', `malformed demand report: ${why}`);
}

function count(text: string | undefined, what: string): number {
  return parseCount(text, what, 'demand');
}

function checkPeriod(start: number, seconds: number): void {
  if (
    !Number.isSafeInteger(seconds) ||
    seconds < MIN_PERIOD_SECONDS ||
    seconds > MAX_PERIOD_SECONDS
  )
    throw malformed(
      `period of ${seconds} s is not from ${MIN_PERIOD_SECONDS} to ${MAX_PERIOD_SECONDS}`,
    );
  if (!Number.isSafeInteger(start) || start < 0 || start % seconds !== 0)
    throw malformed(`period start ${start} is not a multiple of its length ${seconds}`);
}

function checkPath(p: DemandPath, previous: string | undefined): void {
  if (!isHashPart(p.hashPart)) throw malformed(`${JSON.stringify(p.hashPart)} is not a hash part`);
  if (previous !== undefined && p.hashPart <= previous)
    throw malformed(`path ${p.hashPart} is out of order or repeated`);
  if (!Number.isSafeInteger(p.requests) || p.requests < 1 || p.requests >= 1e15)
    throw malformed(`path ${p.hashPart}: requests must be from 1 to 10^15 - 1`);
  if (!Number.isSafeInteger(p.refused) || p.refused < 0 || p.refused > p.requests)
    throw malformed(`path ${p.hashPart}: refused must be from 0 to its requests`);
  if (p.name !== undefined) {
    try {
      checkStorePathName(p.name);
    } catch (cause) {
      throw new DemandError('malformed', `malformed demand report: path ${p.hashPart}: bad name`, {
        cause,
      });
    }
  }
}

/** One path line, with its newline. */
export function formatDemandLine(p: DemandPath): string {
  return `${p.hashPart} ${p.requests} ${p.refused}${p.name === undefined ? '' : ` ${p.name}`}\n`;
}

/** The report's note text (unsigned); throws on a report that would not parse back. */
export function formatDemandReport(report: DemandReport): string {
  if (!isValidKeyName(report.reporter))
    throw malformed(`reporter name ${JSON.stringify(report.reporter)}`);
  checkPeriod(report.periodStart, report.periodSeconds);
  if (report.paths.length > MAX_DEMAND_PATHS)
    throw new DemandError('too-large', `${report.paths.length} paths, limit ${MAX_DEMAND_PATHS}`);
  let previous: string | undefined;
  const lines = [
    `${DEMAND_HEADER}\n`,
    `reporter ${report.reporter}\n`,
    `period ${report.periodStart} ${report.periodSeconds}\n`,
  ];
  for (const p of report.paths) {
    checkPath(p, previous);
    previous = p.hashPart;
    lines.push(formatDemandLine(p));
  }
  return lines.join('');
}

/**
 * Parses a report's note text (attacker-controlled; the signature is not checked here: see
 * {@link openDemandReport}). The line count is capped before the lines are split.
 */
export function parseDemandReport(text: string): DemandReport {
  if (Buffer.byteLength(text) > MAX_DEMAND_BYTES)
    throw new DemandError('too-large', `demand report larger than ${MAX_DEMAND_BYTES} bytes`);
  let newlines = 0;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) {
    if (++newlines > 3 + MAX_DEMAND_PATHS)
      throw new DemandError('too-large', `demand report has more than ${MAX_DEMAND_PATHS} paths`);
  }
  if (!text.endsWith('\n')) throw malformed('does not end in a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines[0] !== DEMAND_HEADER) throw malformed(`first line is not ${DEMAND_HEADER}`);
  const reporter = /^reporter (\S+)$/.exec(lines[1] ?? '')?.[1];
  if (reporter === undefined || !isValidKeyName(reporter)) throw malformed('bad reporter line');
  const period = /^period ([0-9]+) ([0-9]+)$/.exec(lines[2] ?? '');
  if (period === null) throw malformed('bad period line');
  const periodStart = count(period[1], 'period start');
  const periodSeconds = count(period[2], 'period length');
  checkPeriod(periodStart, periodSeconds);
  const paths: DemandPath[] = [];
  let previous: string | undefined;
  for (const line of lines.slice(3)) {
    const fields = line.split(' ');
    if (fields.length < 3 || fields.length > 4)
      throw malformed(`bad path line ${JSON.stringify(line.slice(0, 80))}`);
    const [hashPart = '', requests, refused, name] = fields;
    if (hashPart.length !== HASH_PART_LENGTH)
      throw malformed(`bad hash part ${JSON.stringify(hashPart)}`);
    const p: DemandPath = {
      hashPart,
      requests: count(requests, `path ${hashPart}: requests`),
      refused: count(refused, `path ${hashPart}: refused`),
      ...(name === undefined ? {} : { name }),
    };
    checkPath(p, previous);
    previous = hashPart;
    paths.push(p);
  }
  return { reporter, periodStart, periodSeconds, paths };
}

/** Formats and signs a report with the reporter's note signer (its name is the reporter). */
export function signDemandReport(report: DemandReport, signer: NoteSigner): string {
  if (signer.name !== report.reporter)
    throw new Error(`bug: report of ${report.reporter} signed by ${signer.name}`);
  return signNote(formatDemandReport(report), [signer]);
}

/**
 * Opens a signed report (attacker-controlled) against the trusted reporter keys, under the
 * rules every signed report follows ({@link openSignedReport}).
 */
export function openDemandReport(
  msg: string | Uint8Array,
  reporters: readonly NoteVerifier[],
): { readonly report: DemandReport; readonly verifier: NoteVerifier } {
  return openSignedReport(msg, reporters, 'demand', parseDemandReport);
}
