/**
 * Files a server re-reads while it runs (a certificate, a submitters file): their metadata is
 * polled, and a change — or SIGHUP, when asked — runs the reload. A reload that fails is logged
 * and changes nothing: what is in force stays.
 */
import { type Stats, unwatchFile, watchFile } from 'node:fs';
import type { Logger } from './logger.js';

/**
 * Runs `reload` when one of `files` changes (checked every `intervalMs`) and, with `sighup`,
 * on SIGHUP. `what` names the files in the log; `reload` returns fields to log. Returns how to
 * stop watching.
 */
export function watchFiles(options: {
  readonly files: readonly string[];
  readonly intervalMs: number;
  readonly what: string;
  readonly sighup?: boolean;
  readonly logger: Logger;
  readonly reload: () => Record<string, unknown>;
}): () => void {
  const { files, what, logger } = options;
  const reload = () => {
    try {
      logger.info(`reloaded the ${what}`, options.reload());
    } catch (error) {
      logger.error(`${what} not reloaded: the one in force is kept`, {
        files,
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  };
  const changed = (now: Stats, before: Stats) => {
    if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size)
      reload();
  };
  for (const file of files)
    watchFile(file, { interval: options.intervalMs, persistent: false }, changed);
  if (options.sighup === true) process.on('SIGHUP', reload);
  return () => {
    for (const file of files) unwatchFile(file, changed);
    process.off('SIGHUP', reload);
  };
}
