/** Test support: an in-process log server on a temporary SQLite file and a free port. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClaimJson } from '../../src/claim/index.js';
import {
  type LogService,
  type StatementChain,
  type WitnessEndpoint,
  newToken,
  parseSubmitters,
  startLogService,
  submitterLine,
} from '../../src/log/index.js';
import { silentLogger } from '../../src/server/index.js';
import { SIG_TYPE_ED25519, formatVerifierKey, newSigner } from '../../src/tlog/index.js';
import { randomBytes } from 'node:crypto';
import type { StoreUrl } from '../../src/db/index.js';

export interface TestLog {
  readonly service: LogService;
  readonly url: string;
  readonly vkey: string;
  readonly token: string;
  readonly origin: string;
  submit(claims: readonly ClaimJson[], token?: string): Promise<Response>;
  /** POSTs a key statement note to /statements. */
  submitStatement(note: string, token?: string): Promise<Response>;
  /** Waits until the published tree has at least `size` entries. */
  waitForSize(size: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTestLog(
  options: {
    store?: StoreUrl;
    schema?: string;
    origin?: string;
    revoked?: string;
    /** The key's seed, to run two logs with one key (a fork). */
    seed?: Uint8Array | undefined;
    /** Witnesses to ask for cosignatures. */
    witnesses?: readonly WitnessEndpoint[];
    /** The port to listen on (default: any free one). */
    port?: number;
    /** The store its claims are about (default /nix/store). */
    storeDir?: string;
    /** The identity whose key statements the log takes. */
    identity?: StatementChain;
  } = {},
): Promise<TestLog> {
  const dir = mkdtempSync(join(tmpdir(), 'accord-log-'));
  const origin = options.origin ?? `test.example/log-${randomBytes(4).toString('hex')}`;
  const signer = newSigner(origin, SIG_TYPE_ED25519, options.seed ?? randomBytes(32));
  const token = newToken();
  let lines = submitterLine('builder', token);
  if (options.revoked !== undefined) lines += `!${submitterLine('gone', options.revoked)}`;
  const service = await startLogService({
    origin,
    signer,
    store: options.store ?? { kind: 'sqlite', path: join(dir, 'log.db') },
    ...(options.schema === undefined ? {} : { schema: options.schema }),
    host: '127.0.0.1',
    port: options.port ?? 0,
    submitters: parseSubmitters(lines),
    storeDir: options.storeDir ?? '/nix/store',
    intervalMs: 50,
    maxBodyBytes: 1 << 20,
    bodyTimeoutMs: 2000,
    maxClaims: 1000,
    ...(options.witnesses === undefined ? {} : { witnesses: options.witnesses }),
    ...(options.identity === undefined ? {} : { identity: options.identity }),
    logger: silentLogger,
  });
  const url = service.url;
  return {
    service,
    url,
    vkey: formatVerifierKey(signer),
    token,
    origin,
    submit: (claims, t = token) =>
      fetch(`${url}/submit`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ claims }),
      }),
    submitStatement: (note, t = token) =>
      fetch(`${url}/statements`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'text/plain; charset=utf-8' },
        body: note,
      }),
    async waitForSize(size) {
      for (let i = 0; i < 400; i++) {
        if ((await service.storage.state()).treeSize >= size) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`log did not reach size ${size}`);
    },
    close: () => service.close(),
  };
}
