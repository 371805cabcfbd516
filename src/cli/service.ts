/** Plumbing for the commands that run a server until they are stopped. */
import {
  type LogLevel,
  type Logger,
  type TlsFiles,
  createLogger,
  readTls,
} from '../server/index.js';
import { EXIT, UsageError } from './command.js';

/** A positive integer option, or `fallback` when not given. */
export function positiveInteger(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^[1-9][0-9]{0,9}$/.test(text)) throw new UsageError(`${flag} wants a positive integer`);
  return Number(text);
}

/** `--tls-cert` and `--tls-key`, both or neither, checked to load now. */
export function tlsOptions(values: {
  'tls-cert'?: string;
  'tls-key'?: string;
}): TlsFiles | undefined {
  const cert = values['tls-cert'];
  const key = values['tls-key'];
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined)
    throw new UsageError('--tls-cert and --tls-key go together: give both or neither');
  try {
    readTls({ cert, key });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return { cert, key };
}

const LEVELS: readonly string[] = ['debug', 'info', 'warn', 'error'];

/** The JSON-lines logger of a service, at the `--log-level` given (default info). */
export function serviceLogger(level: string | undefined, service: string): Logger {
  if (level !== undefined && !LEVELS.includes(level))
    throw new UsageError(`bad --log-level ${JSON.stringify(level)}: want ${LEVELS.join(', ')}`);
  return createLogger({ level: (level ?? 'info') as LogLevel, fields: { service } });
}

/** Waits for SIGINT or SIGTERM, then closes the service gracefully. */
export async function runUntilSignal(
  service: { close(): Promise<void> },
  logger: Logger,
): Promise<number> {
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info('shutting down', { signal });
      service.close().then(resolve, (error: unknown) => {
        logger.error('shutdown failed', { reason: (error as Error).message });
        resolve();
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return EXIT.ok;
}
