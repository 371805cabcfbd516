/**
 * Serving a NAR: download it from the upstream, decompress, validate and hash while streaming,
 * and hold back the last piece until the hash and size are checked — on a mismatch the
 * response is cut, so the client never receives a complete wrong NAR. A small NAR is fetched
 * whole and checked before a byte of it is sent.
 */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { NarHasher, decompress, formatHash } from '../nix/index.js';
import type { ServedNar } from './state.js';
import type { Upstream } from './upstream.js';

/** How a NAR response ended. */
export type NarOutcome =
  /** `nar`: the verified bytes, when asked to keep them. */
  | { readonly kind: 'ok'; readonly bytes: number; readonly nar?: Buffer }
  | { readonly kind: 'mismatch'; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: string; readonly started: boolean };

/** NARs up to this size are fetched whole and checked before a byte is sent, not streamed. */
export const WHOLE_NAR_BYTES = 64 << 10;

/** How fetching a whole NAR ended: the checked bytes, or why there are none. */
export type WholeNarOutcome =
  | { readonly kind: 'ok'; readonly nar: Buffer }
  | { readonly kind: 'mismatch'; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: string };

/**
 * Fetches the NAR of `served` whole, decompresses it and checks its hash, size and archive
 * format. Nothing is sent, so on a mismatch the caller can still try another upstream. For
 * small NARs this costs about half of what streaming does.
 */
export async function fetchWholeNar(
  served: ServedNar,
  upstream: Upstream,
): Promise<WholeNarOutcome> {
  let body: Uint8Array[];
  try {
    // Compressed data can be a little larger than what it holds, never this much.
    body = await upstream.fetchWhole(served.narUrl, 2 * served.narSize + 65_536);
  } catch (error) {
    return { kind: 'failed', reason: (error as Error).message };
  }
  try {
    // The NAR gets its own exact-size memory: views into decoder or pool buffers would keep
    // those alive in the cache, which counts only the NAR's length.
    const nar = Buffer.allocUnsafeSlow(served.narSize);
    const hasher = new NarHasher();
    let at = 0;
    for await (const chunk of decompress(served.compression, body, {
      maxOutput: served.narSize,
    })) {
      hasher.update(chunk);
      if (at + chunk.length <= nar.length) nar.set(chunk, at);
      at += chunk.length;
    }
    const { narHash, narSize } = hasher.digest();
    if (formatHash(narHash) !== served.narHash || narSize !== served.narSize) {
      return {
        kind: 'mismatch',
        reason: `NAR has ${formatHash(narHash)} (${narSize} bytes), expected ${served.narHash} (${served.narSize})`,
      };
    }
    return { kind: 'ok', nar };
  } catch (error) {
    // Not valid compressed data, too large, or not a NAR: the upstream's fault.
    const reason = error instanceof Error ? error.message : String(error);
    return error instanceof Error && error.name === 'NixError'
      ? { kind: 'mismatch', reason }
      : { kind: 'failed', reason };
  }
}

/**
 * Streams the NAR of `served` to `res`. Before the first byte arrives nothing is written (the
 * caller can still answer 404); after it, a failure or mismatch destroys the response. With
 * `keep`, a complete verified NAR is also returned, for a cache.
 */
export async function streamNar(
  res: ServerResponse,
  served: ServedNar,
  upstream: Upstream,
  signal: AbortSignal,
  options: { readonly head?: boolean; readonly keep?: boolean } = {},
): Promise<NarOutcome> {
  const { head = false, keep = false } = options;
  const chunks = decompress(served.compression, upstream.download(served.narUrl, signal), {
    maxOutput: served.narSize,
  })[Symbol.asyncIterator]();
  const hasher = new NarHasher();
  // Verified pieces wait here and go out together (one writev per ~1 MiB rather than one
  // write per socket read); the newest piece always stays until the end is checked.
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  let started = false;
  const kept: Uint8Array[] = [];
  const flush = async (keepLast: boolean) => {
    const out = keepLast ? held.slice(0, -1) : held;
    held = keepLast ? held.slice(-1) : [];
    heldBytes = held.reduce((n, c) => n + c.length, 0);
    if (out.length === 0) return;
    res.cork();
    let ok = true;
    for (const chunk of out) ok = res.write(chunk);
    res.uncork();
    if (!ok) await once(res, 'drain');
  };
  try {
    for (;;) {
      const step = await chunks.next();
      if (step.done === true) break;
      hasher.update(step.value);
      if (!started) {
        started = true;
        res.writeHead(200, {
          'Content-Type': 'application/x-nix-nar',
          'Content-Length': String(served.narSize),
          'Cache-Control': 'public, max-age=31536000, immutable',
        });
        if (head) {
          res.end();
          await chunks.return(undefined);
          return { kind: 'ok', bytes: 0 };
        }
      }
      held.push(step.value);
      heldBytes += step.value.length;
      if (keep) kept.push(step.value);
      if (heldBytes >= 1 << 20) await flush(true);
    }
    const { narHash, narSize } = hasher.digest();
    if (formatHash(narHash) !== served.narHash || narSize !== served.narSize) {
      res.destroy();
      return {
        kind: 'mismatch',
        reason: `NAR has ${formatHash(narHash)} (${narSize} bytes), expected ${served.narHash} (${served.narSize})`,
      };
    }
    if (!started) return { kind: 'failed', reason: 'empty NAR', started };
    await flush(false);
    res.end();
    return keep
      ? { kind: 'ok', bytes: narSize, nar: Buffer.concat(kept, narSize) }
      : { kind: 'ok', bytes: narSize };
  } catch (error) {
    await chunks.return(undefined).catch(() => undefined);
    if (started) res.destroy();
    const reason = error instanceof Error ? error.message : String(error);
    // A NAR that is malformed or too large is the upstream's fault, like a hash mismatch.
    const bad = error instanceof Error && error.name === 'NixError';
    return bad ? { kind: 'mismatch', reason } : { kind: 'failed', reason, started };
  }
}
