/** A running log server: storage, sequencer and HTTP server wired together. */
import { readFileSync } from 'node:fs';
import { type StoreUrl, describeStoreUrl } from '../db/index.js';
import {
  type Logger,
  Registry,
  type TlsFiles,
  close,
  createWebServer,
  listen,
  watchFiles,
} from '../server/index.js';
import type { NoteSigner } from '../tlog/index.js';
import { type Submitters, parseSubmitters } from './auth.js';
import { openPostgresLogStorage } from './postgres-storage.js';
import { Sequencer, type SequencerOptions } from './sequencer.js';
import { createLogHandler } from './server.js';
import type { StatementChain } from './statements.js';
import { openSqliteLogStorage } from './sqlite-storage.js';
import type { LogStorage } from './storage.js';
import { WitnessClient, type WitnessEndpoint } from './witnesses.js';

export interface LogServiceConfig {
  readonly origin: string;
  readonly signer: NoteSigner;
  /** More keys of the origin that sign every checkpoint too (a key rotation's overlap). */
  readonly extraSigners?: readonly NoteSigner[];
  readonly store: StoreUrl;
  /** PostgreSQL schema for the log's tables (default: the connection's search path). */
  readonly schema?: string;
  readonly host: string;
  readonly port: number;
  readonly submitters: Submitters;
  /**
   * The file `submitters` was read from: re-read when it changes (checked every 250 ms) and on
   * SIGHUP, so tokens added and revoked take effect without a restart.
   */
  readonly submittersFile?: string;
  readonly storeDir: string;
  readonly intervalMs: number;
  readonly maxBodyBytes: number;
  /** Longest time a submission body may take to arrive (default 10 s). */
  readonly bodyTimeoutMs?: number;
  /** Most claims in one submission (default 10,000). */
  readonly maxClaims?: number;
  /** The identity whose key statements the log takes (none by default). */
  readonly identity?: StatementChain;
  /** Witnesses asked to cosign every checkpoint (none by default). */
  readonly witnesses?: readonly WitnessEndpoint[];
  /** Serve HTTPS with this certificate and key (re-read when they change). */
  readonly tls?: TlsFiles;
  readonly logger: Logger;
}

export interface LogService {
  readonly url: string;
  readonly storage: LogStorage;
  readonly sequencer: Sequencer;
  close(): Promise<void>;
}

/** Opens the storage a store URL names. */
export async function openLogStorage(store: StoreUrl, schema?: string): Promise<LogStorage> {
  return store.kind === 'sqlite'
    ? openSqliteLogStorage(store.path)
    : openPostgresLogStorage(store.url, schema === undefined ? {} : { schema });
}

/** A sequencer for `storage`; the storage is closed when the options are refused. */
function newSequencer(storage: LogStorage, options: Omit<SequencerOptions, 'storage'>): Sequencer {
  try {
    return new Sequencer({ storage, ...options });
  } catch (error) {
    storage.close().catch(() => undefined);
    throw error;
  }
}

/** Starts a log server; resolves once it listens and has published a first checkpoint. */
export async function startLogService(config: LogServiceConfig): Promise<LogService> {
  const { logger } = config;
  const storage = await openLogStorage(config.store, config.schema);
  const metrics = new Registry();
  const sequencer = newSequencer(storage, {
    origin: config.origin,
    signer: config.signer,
    ...(config.extraSigners === undefined ? {} : { extraSigners: config.extraSigners }),
    intervalMs: config.intervalMs,
    logger,
    metrics,
    witnesses: new WitnessClient(config.witnesses ?? [], logger),
  });
  metrics.gauge(
    'accord_log_tree_size',
    'Size of the latest checkpoint this process read',
    () => size,
  );
  let size = 0;
  await sequencer.round();
  size = (await storage.state()).treeSize;
  const handler = createLogHandler({
    storage,
    submitters: config.submitters,
    logger,
    metrics,
    storeDir: config.storeDir,
    body: { maxBytes: config.maxBodyBytes, timeoutMs: config.bodyTimeoutMs ?? 10_000 },
    ...(config.maxClaims === undefined ? {} : { maxClaims: config.maxClaims }),
    ...(config.identity === undefined ? {} : { identity: config.identity }),
  });
  const { server, unwatch } = createWebServer(
    { requestTimeout: 30_000, headersTimeout: 10_000 },
    handler,
    config.tls,
    logger,
  );
  const url = await listen(server, config.host, config.port);
  sequencer.start();
  // Tokens added and revoked take effect without a restart.
  const file = config.submittersFile;
  const stopWatching =
    file === undefined
      ? () => undefined
      : watchFiles({
          files: [file],
          intervalMs: 250,
          what: 'submitters file',
          sighup: true,
          logger,
          reload: () => {
            config.submitters.replace(parseSubmitters(readFileSync(file, 'utf8')));
            return { file, submitters: config.submitters.size };
          },
        });
  const poll = setInterval(() => {
    storage.state().then(
      (s) => (size = s.treeSize),
      () => undefined,
    );
  }, 1000);
  logger.info('log server listening', {
    url,
    origin: config.origin,
    store: describeStoreUrl(config.store),
    treeSize: size,
    submitters: config.submitters.size,
  });
  return {
    url,
    storage,
    sequencer,
    async close() {
      clearInterval(poll);
      stopWatching();
      unwatch();
      await close(server);
      await sequencer.stop();
      await storage.close();
    },
  };
}
