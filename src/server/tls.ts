/**
 * Servers over HTTP or, given a certificate and key, HTTPS — whose certificate and key are
 * re-read when either file changes, so a renewed certificate is served without a restart.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { createSecureContext } from 'node:tls';
import type { Logger } from './logger.js';
import { watchFiles } from './watch.js';

/** PEM files of a server's certificate (chain) and private key. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

/** Reads a certificate and key and checks they make a usable pair; errors name the files. */
export function readTls(files: TlsFiles): { cert: Buffer; key: Buffer } {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (cause) {
      throw new Error(
        `TLS ${what} ${path}: ${(cause as NodeJS.ErrnoException).code ?? 'unreadable'}`,
        { cause },
      );
    }
  };
  const pair = { cert: read(files.cert, 'certificate'), key: read(files.key, 'key') };
  try {
    createSecureContext(pair);
  } catch (cause) {
    throw new Error(
      `TLS certificate ${files.cert} and key ${files.key}: ${(cause as Error).message}`,
      { cause },
    );
  }
  return pair;
}

export type WebServer = http.Server | https.Server;

/**
 * An HTTP server, or an HTTPS one when `tls` is given (whose files are checked every second
 * and re-read when they change; a pair that does not load is logged and the one in use kept).
 * `unwatch` stops the checks.
 */
export function createWebServer(
  options: http.ServerOptions,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  tls: TlsFiles | undefined,
  logger: Logger,
): { server: WebServer; unwatch: () => void } {
  if (tls === undefined)
    return { server: http.createServer(options, handler), unwatch: () => undefined };
  const server = https.createServer({ ...options, ...readTls(tls) }, handler);
  const unwatch = watchFiles({
    files: [tls.cert, tls.key],
    intervalMs: 1000,
    what: 'TLS certificate',
    logger,
    reload: () => {
      server.setSecureContext(readTls(tls));
      return { cert: tls.cert };
    },
  });
  return { server, unwatch };
}
