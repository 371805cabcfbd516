/**
 * Serving a NAR: download it from the upstream, decompress, validate and hash while streaming,
 * and hold back the last piece until the hash and size are checked — on a mismatch the
 * response is cut, so the client never receives a complete wrong NAR. A small NAR is fetched
 * whole and checked before a byte of it is sent.
 */
import { NarHasher, type NarSummary, decompress, formatHash } from '../nix/index.js';
import { type NarBody, writeAll } from './nar-body.js';
import type { ServedNar } from './state.js';
import type { Upstream } from './upstream.js';

/** How a NAR response ended. */
export type NarOutcome =
  /** `nar`: the verified bytes, when asked to keep them. */
  | { readonly kind: 'ok'; readonly bytes: number; readonly nar?: Buffer }
  | { readonly kind: 'mismatch'; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: string; readonly started: boolean };

/** Why a NAR's hash and size are not the agreed ones, or undefined when they are. */
function mismatch(summary: NarSummary, served: ServedNar): string | undefined {
  const got = formatHash(summary.narHash);
  if (got === served.narHash && summary.narSize === served.narSize) return undefined;
  return `NAR has ${got} (${summary.narSize} bytes), expected ${served.narHash} (${served.narSize})`;
}

/**
 * A failure while decompressing and checking: malformed or oversized data is the upstream's
 * fault, like a hash mismatch; anything else (the download) a failure.
 */
function classify(error: unknown): { kind: 'mismatch' | 'failed'; reason: string } {
  const reason = error instanceof Error ? error.message : String(error);
  return {
    kind: error instanceof Error && error.name === 'NixError' ? 'mismatch' : 'failed',
    reason,
  };
}

/**
 * Decompresses `body`, hands each piece of the NAR to `each` as it is hashed and parsed, and
 * says why it is not the agreed NAR (undefined when it is). Throws on malformed data.
 */
async function decodeChecked(
  served: ServedNar,
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  each: (chunk: Uint8Array) => Promise<void> | void,
): Promise<string | undefined> {
  const hasher = new NarHasher();
  for await (const chunk of decompress(served.compression, body, { maxOutput: served.narSize })) {
    hasher.update(chunk);
    await each(chunk);
  }
  return mismatch(hasher.digest(), served);
}

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
    body = await upstream.fetchWhole(served.narUrl, served.narSize);
  } catch (error) {
    return { kind: 'failed', reason: (error as Error).message };
  }
  try {
    // The NAR gets its own exact-size memory: views into decoder or pool buffers would keep
    // those alive in the cache, which counts only the NAR's length.
    const nar = Buffer.allocUnsafeSlow(served.narSize);
    let at = 0;
    const wrong = await decodeChecked(served, body, (chunk) => {
      if (at + chunk.length <= nar.length) nar.set(chunk, at);
      at += chunk.length;
    });
    return wrong === undefined ? { kind: 'ok', nar } : { kind: 'mismatch', reason: wrong };
  } catch (error) {
    return classify(error);
  }
}

/** How downloading a NAR to disk ended. */
export type DownloadOutcome =
  | { readonly kind: 'ok'; readonly bytes: number }
  | { readonly kind: 'mismatch'; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: string };

/**
 * Downloads the NAR of `served`, decompresses it and checks its hash, size and archive format
 * as it goes, handing every piece to `write` (a spool file): nothing reaches a client until the
 * whole NAR is shown to be the agreed one, so a wrong NAR never fails a Nix build when another
 * cache has the right one.
 */
export async function downloadNar(
  served: ServedNar,
  upstream: Upstream,
  write: (chunk: Uint8Array) => Promise<void>,
): Promise<DownloadOutcome> {
  // It must come at 64 KiB/s of the NAR's size at least, after the cache's timeout: a slow link
  // still gets it, a trickle does not hold the download for ever.
  const allowedMs = upstream.config.timeoutMs + Math.ceil((served.narSize / 65_536) * 1000);
  const stop = new AbortController();
  const timer = setTimeout(() => {
    stop.abort();
  }, allowedMs);
  try {
    const wrong = await decodeChecked(served, upstream.download(served.narUrl, stop.signal), write);
    return wrong === undefined
      ? { kind: 'ok', bytes: served.narSize }
      : { kind: 'mismatch', reason: wrong };
  } catch (error) {
    if (stop.signal.aborted)
      return { kind: 'failed', reason: `not received within ${allowedMs} ms` };
    return classify(error);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Streams the NAR of `served` into `body`. Until its first bytes are written (up to about
 * 1 MiB is held back first) nothing is sent, and the caller can still answer 404; after that,
 * a failure or mismatch cuts the response. With `keep`, a complete verified NAR is also
 * returned, for a cache.
 */
export async function streamNar(
  body: NarBody,
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
  // write per socket read); the newest piece always stays until the end is checked. The
  // response begins with the first bytes written: a failure before then is still a 404.
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  const kept: Uint8Array[] = [];
  const flush = async (keepLast: boolean) => {
    const out = keepLast ? held.slice(0, -1) : held;
    held = keepLast ? held.slice(-1) : [];
    heldBytes = held.reduce((n, c) => n + c.length, 0);
    if (out.length === 0) return;
    body.begin();
    await writeAll(body.sink, out);
  };
  try {
    for (;;) {
      const step = await chunks.next();
      if (step.done === true) break;
      hasher.update(step.value);
      if (head) {
        // The upstream has it and it begins as a NAR: that is all a HEAD asks.
        body.head();
        await chunks.return(undefined);
        return { kind: 'ok', bytes: 0 };
      }
      held.push(step.value);
      heldBytes += step.value.length;
      if (keep) kept.push(step.value);
      if (heldBytes >= 1 << 20) await flush(true);
    }
    const summary = hasher.digest();
    const wrong = mismatch(summary, served);
    if (wrong !== undefined) {
      // Before the first byte, nothing was sent: the caller still answers 404.
      body.cut();
      return { kind: 'mismatch', reason: wrong };
    }
    const { narSize } = summary;
    await flush(false);
    body.begin();
    body.sink.end();
    return keep
      ? { kind: 'ok', bytes: narSize, nar: Buffer.concat(kept, narSize) }
      : { kind: 'ok', bytes: narSize };
  } catch (error) {
    await chunks.return(undefined).catch(() => undefined);
    const started = body.started;
    body.cut();
    const { kind, reason } = classify(error);
    return kind === 'mismatch' ? { kind, reason } : { kind, reason, started };
  }
}
