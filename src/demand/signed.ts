/**
 * The one opener of the signed reports a monitor takes (`accord/demand/v1` from proxies,
 * `accord/rebuild/v1` from rebuilders): a C2SP signed note whose size is capped before anything
 * is parsed, with exactly one signature, by a known reporter key whose name is the reporter the
 * report names, and that verifies. Each report's grammar is its own; these rules are here only.
 */
import { type NoteVerifier, TlogError, openNote } from '../tlog/index.js';
import { DemandError } from './errors.js';

/** Largest signed report in bytes, text and signature together. */
export const MAX_REPORT_BYTES = 1 << 20;

/** A canonical decimal count: no sign, no leading zero, at most 15 digits. */
const COUNT = /^(?:0|[1-9][0-9]{0,14})$/;

/** Parses a canonical decimal count; throws a `malformed` DemandError naming `what`. */
export function parseCount(text: string | undefined, what: string, report: string): number {
  if (text === undefined || !COUNT.test(text))
    throw new DemandError(
      'malformed',
      `malformed ${report} report: ${what} is not a canonical number`,
    );
  return Number(text);
}

/**
 * Opens a signed report (attacker-controlled) against the trusted reporter keys and parses its
 * text with `parse` (strict, throwing DemandError): `too-large` over {@link MAX_REPORT_BYTES},
 * `untrusted` unless exactly one signature by a key of `reporters` verifies and that key's name
 * is the parsed report's reporter, `malformed` otherwise.
 */
export function openSignedReport<R extends { readonly reporter: string }>(
  msg: string | Uint8Array,
  reporters: readonly NoteVerifier[],
  what: string,
  parse: (text: string) => R,
): { readonly report: R; readonly verifier: NoteVerifier } {
  const size = typeof msg === 'string' ? Buffer.byteLength(msg) : msg.length;
  if (size > MAX_REPORT_BYTES)
    throw new DemandError(
      'too-large',
      `${what} report of ${size} bytes exceeds ${MAX_REPORT_BYTES}`,
    );
  let opened;
  try {
    opened = openNote(msg, reporters, { maxSize: MAX_REPORT_BYTES, maxSignatures: 1 });
  } catch (cause) {
    if (!(cause instanceof TlogError)) throw cause;
    const code =
      cause.code === 'untrusted' || cause.code === 'signature' ? 'untrusted' : 'malformed';
    throw new DemandError(code, `${what} report: ${cause.message}`, { cause });
  }
  const report = parse(opened.text);
  const [signed] = opened.verified;
  if (signed === undefined || signed.verifier.name !== report.reporter)
    throw new DemandError(
      'untrusted',
      `${what} report of ${report.reporter} is not signed by its key`,
    );
  return { report, verifier: signed.verifier };
}
