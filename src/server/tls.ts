/**
 * Servers over HTTP or, given a certificate and key, HTTPS — whose certificate and key are
 * re-read when either file changes, so a renewed certificate is served without a restart.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { createSecureContext } from 'node:tls';
import type { Logger } from './logger.js';

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
  const reload = () => {
    try {
      server.setSecureContext(readTls(tls));
      logger.info('reloaded the TLS certificate', { cert: tls.cert });
    } catch (error) {
      logger.error('TLS certificate not reloaded: the one in use is kept', {
        reason: (error as Error).message,
      });
    }
  };
  const changed = (now: { mtimeMs: number; ino: number; size: number }, before: typeof now) => {
    if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size)
      reload();
  };
  for (const file of [tls.cert, tls.key])
    watchFile(file, { interval: 1000, persistent: false }, changed);
  return {
    server,
    unwatch: () => {
      unwatchFile(tls.cert, changed);
      unwatchFile(tls.key, changed);
    },
  };
}
