/**
 * Where a verified NAR's bytes go: into the response as they are (`.nar`), or as one zstd
 * frame (`.nar.zst`) — compressed by a zstd process, or in raw blocks when every compressor is
 * busy. Callers write only verified bytes and end the sink after the last one; the response
 * ends only then (and, compressed, only once the frame is complete), and is cut, never ended,
 * when anything fails: a client never receives a complete response that is not the agreed NAR.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { ZSTD_RAW_END, ZstdFrameEnd, zstdRawBlocks, zstdRawFrameHeader } from '../nix/index.js';

/** Headers of every NAR response (its length added). */
export const NAR_HEADERS = {
  'Content-Type': 'application/x-nix-nar',
  'Cache-Control': 'public, max-age=31536000, immutable',
} as const;

/** Headers of a `.nar.zst` response: chunked, as its length is not known beforehand. */
const ZSTD_HEADERS = {
  'Content-Type': 'application/zstd',
  'Cache-Control': NAR_HEADERS['Cache-Control'],
} as const;

/** A NAR response under way. */
export interface NarBody {
  /** Whether the status and headers went out (a 404 is no longer possible). */
  readonly started: boolean;
  /** Sends the status and headers, once. */
  begin(): void;
  /** Where the NAR's verified bytes go (after `begin`); ending it ends the response. */
  readonly sink: Writable;
  /** Answers a HEAD: the headers alone. */
  head(): void;
  /**
   * Gives up: a begun response is cut (the client sees it broken), and a compressor is let go.
   * Nothing is sent when it had not begun, so the caller can still answer 404.
   */
  cut(): void;
}

/**
 * Writes `chunks` to `sink` together, and waits until it takes more. Throws when the sink is
 * gone (the client went away, the compressor failed) instead of waiting for ever.
 */
export async function writeAll(sink: Writable, chunks: readonly Uint8Array[]): Promise<void> {
  if (sink.destroyed || sink.writableEnded) throw new Error('the NAR response is gone');
  sink.cork();
  let ok = true;
  for (const chunk of chunks) ok = sink.write(chunk);
  sink.uncork();
  if (ok) return;
  await new Promise<void>((resolve, reject) => {
    if (sink.destroyed) {
      reject(new Error('the NAR response is gone'));
      return;
    }
    const done = (error?: Error) => {
      sink.off('drain', onDrain);
      sink.off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onDrain = () => {
      done();
    };
    const onClose = () => {
      done(new Error('the NAR response is gone'));
    };
    sink.on('drain', onDrain);
    sink.on('close', onClose);
  });
}

/** The NAR as it is, with its length. */
export function plainBody(res: ServerResponse, narSize: number): NarBody {
  const begin = () => {
    if (!res.headersSent) res.writeHead(200, { ...NAR_HEADERS, 'Content-Length': String(narSize) });
  };
  return {
    get started() {
      return res.headersSent;
    },
    begin,
    sink: res,
    head() {
      begin();
      res.end();
    },
    cut() {
      if (res.headersSent) res.destroy();
    },
  };
}

/**
 * The NAR as one zstd frame: through `compressor` (a connection to a zstd process), or in raw
 * blocks when there is none. The client going away lets the compressor go.
 */
export function zstdBody(
  res: ServerResponse,
  narSize: number,
  compressor: Socket | undefined,
): NarBody {
  const begin = () => {
    if (!res.headersSent) res.writeHead(200, ZSTD_HEADERS);
  };
  const sink =
    compressor === undefined ? rawFrame(res, narSize) : compressed(res, compressor, narSize);
  sink.on('error', () => undefined);
  const cut = () => {
    sink.destroy(new Error('NAR response cut'));
    if (res.headersSent) res.destroy();
  };
  res.on('close', () => {
    if (!res.writableFinished) cut();
  });
  // A client that went away while a compressor was being reached lets it go at once.
  if (res.destroyed || res.socket?.destroyed === true) cut();
  return {
    get started() {
      return res.headersSent;
    },
    begin,
    sink,
    head() {
      sink.destroy();
      begin();
      res.end();
    },
    cut,
  };
}

/**
 * The compressor's output goes to `res` as it comes, at the client's pace; the response ends
 * when the compressor closes the connection after a complete frame of the whole NAR, and is cut
 * otherwise (the compressor killed, ending early, writing something that is not one frame, or
 * a frame whose header declares another content size than the NAR's).
 */
function compressed(res: ServerResponse, compressor: Socket, narSize: number): Writable {
  const frame = new ZstdFrameEnd();
  let broken = false;
  // Before the response began the caller can still answer 404: its next write fails.
  const fail = () => {
    broken = true;
    compressor.destroy(new Error('zstd compressor failed'));
    if (res.headersSent) res.destroy();
  };
  compressor.on('data', (chunk: Buffer) => {
    try {
      frame.update(chunk);
    } catch {
      fail();
      return;
    }
    // A frame that says it holds something else than the NAR is not the NAR.
    if (frame.contentSize !== undefined && frame.contentSize !== narSize) {
      fail();
      return;
    }
    if (!res.headersSent) res.writeHead(200, ZSTD_HEADERS);
    if (!res.write(chunk)) {
      compressor.pause();
      res.once('drain', () => compressor.resume());
    }
  });
  compressor.on('end', () => {
    if (broken) return;
    // Complete only after the caller's last (verified) byte went in: a compressor that ends a
    // frame early, before the NAR was all written, never completes a response.
    if (frame.complete && compressor.writableEnded) res.end();
    else fail();
  });
  compressor.on('close', () => {
    // Closed without its end (an error, or destroyed): never a complete response.
    if (res.headersSent && !res.writableEnded) res.destroy();
  });
  return compressor;
}

/** The NAR in raw blocks of one frame, written straight to `res`: no compressor needed. */
function rawFrame(res: ServerResponse, narSize: number): Writable {
  let headerSent = false;
  const header = () => {
    if (headerSent) return;
    headerSent = true;
    res.write(zstdRawFrameHeader(narSize));
  };
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      header();
      let ok = true;
      for (const piece of zstdRawBlocks(chunk)) ok = res.write(piece);
      if (ok) callback();
      else
        res.once('drain', () => {
          callback();
        });
    },
    final(callback) {
      header();
      res.end(ZSTD_RAW_END);
      callback();
    },
  });
}
