/**
 * The replay rule of every signed report a monitor takes (demand reports from proxies,
 * rebuild reports from rebuilders), in one place: a report covers an interval of time, which
 * must have ended by the monitor's clock (give or take the skew) and must overlap no interval
 * of a report the same reporter had accepted before. A report captured and posted again is
 * therefore refused, and a reporter cannot report a time twice.
 */
import { MonitorError } from './errors.js';

/** A report's interval may end at most this far after the monitor's clock (clock skew). */
export const REPORT_CLOCK_SKEW_MS = 300_000;

/**
 * Throws MonitorError `replay` unless the interval [`startMs`, `endMs`) has ended by `now`
 * (plus {@link REPORT_CLOCK_SKEW_MS}) and `overlaps` — asked of the report's own table, inside
 * the transaction that stores the report — finds no earlier report of the reporter in it.
 */
export function checkReplay(
  what: string,
  interval: { readonly startMs: number; readonly endMs: number },
  now: number,
  overlaps: () => boolean,
): void {
  if (interval.endMs > now + REPORT_CLOCK_SKEW_MS)
    throw new MonitorError('replay', `${what}: its time has not come (${interval.endMs} ms)`);
  if (overlaps()) throw new MonitorError('replay', `${what}: that time was already reported`);
}
