/**
 * Which clients are on the proxy's own machine: they get NARs uncompressed (compressing for a
 * loopback copy only costs CPU), the others may get them zstd-compressed.
 */
import { isIPv4 } from 'node:net';

/**
 * Whether `address` (a socket's `remoteAddress`) is a loopback address: 127.0.0.0/8, `::1`, or
 * 127.0.0.0/8 mapped into IPv6 (`::ffff:127.x.y.z`, as a dual-stack socket reports it). An
 * unknown address (a socket already closed) counts as loopback: the plain NAR is the default.
 */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return true;
  const a = address.toLowerCase();
  const v4 = a.startsWith('::ffff:') ? a.slice('::ffff:'.length) : a;
  if (isIPv4(v4)) return v4.startsWith('127.');
  return a === '::1' || a === '0:0:0:0:0:0:0:1';
}
