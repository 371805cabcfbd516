/** A running witness: storage, keys and HTTP server. */
import type { StoreUrl } from '../db/index.js';
import {
  type Logger,
  Registry,
  type TlsFiles,
  close,
  createWebServer,
  listen,
} from '../server/index.js';
import type { NoteSigner, NoteVerifier } from '../tlog/index.js';
import { openPostgresWitnessStorage } from './postgres-storage.js';
import { createWitnessHandler } from './server.js';
import { openSqliteWitnessStorage } from './sqlite-storage.js';
import type { WitnessStorage } from './storage.js';

export interface WitnessService {
  readonly url: string;
  readonly storage: WitnessStorage;
  close(): Promise<void>;
}

export async function openWitnessStorage(
  store: StoreUrl,
  schema?: string,
): Promise<WitnessStorage> {
  return store.kind === 'sqlite'
    ? openSqliteWitnessStorage(store.path)
    : openPostgresWitnessStorage(store.url, schema === undefined ? {} : { schema });
}

/**
 * Fault injection for crash tests: with ACCORD_WITNESS_CRASH_AFTER_PERSIST=1 in its
 * environment, the witness kills itself (SIGKILL) right after it has persisted a checkpoint and
 * before it answers — the moment a crash is most dangerous.
 */
function crashAfterPersist(storage: WitnessStorage): WitnessStorage {
  if (process.env.ACCORD_WITNESS_CRASH_AFTER_PERSIST !== '1') return storage;
  return {
    ...storage,
    async advance(origin, oldSize, next) {
      const result = await storage.advance(origin, oldSize, next);
      if (result.ok) process.kill(process.pid, 'SIGKILL');
      return result;
    },
  };
}

/** Starts a witness for `logs` (each log's verifier keys, grouped by origin). */
export async function startWitness(config: {
  readonly signer: NoteSigner;
  readonly logs: readonly NoteVerifier[];
  readonly store: StoreUrl;
  readonly schema?: string;
  readonly host: string;
  readonly port: number;
  /** Serve HTTPS with this certificate and key (re-read when they change). */
  readonly tls?: TlsFiles;
  readonly logger: Logger;
}): Promise<WitnessService> {
  const storage = crashAfterPersist(await openWitnessStorage(config.store, config.schema));
  const logs = new Map<string, NoteVerifier[]>();
  for (const v of config.logs) logs.set(v.name, [...(logs.get(v.name) ?? []), v]);
  const metrics = new Registry();
  const handler = createWitnessHandler({
    witness: { signer: config.signer, logs, storage },
    logger: config.logger,
    metrics,
  });
  const { server, unwatch } = createWebServer(
    { requestTimeout: 30_000, headersTimeout: 10_000 },
    handler,
    config.tls,
    config.logger,
  );
  const url = await listen(server, config.host, config.port);
  config.logger.info('witness listening', {
    url,
    name: config.signer.name,
    logs: [...logs.keys()],
  });
  return {
    url,
    storage,
    async close() {
      unwatch();
      await close(server);
      await storage.close();
    },
  };
}
