/** `accord witness serve`. */
import { join } from 'node:path';
import { lockStore, parseStoreUrl } from '../db/index.js';
import { parseListen } from '../server/index.js';
import {
  type NoteVerifier,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  formatVerifierKey,
  parseVerifierKey,
} from '../tlog/index.js';
import { startWitness } from '../witness/index.js';
import { type Command, EXIT, UsageError, defineCommand, readTlogPolicyFile } from './command.js';
import { runUntilSignal, serviceLogger, tlsOptions } from './service.js';
import { readSignerKey } from './keyfile.js';

function logKeys(values: { log?: string[]; logs?: string }): NoteVerifier[] {
  const keys = (values.log ?? []).map((vkey) => parseVerifierKey(vkey));
  if (values.logs !== undefined) {
    const policy = readTlogPolicyFile('--logs', values.logs);
    keys.push(...policy.logs.map((l) => l.verifier));
  }
  for (const k of keys) {
    if (k.type !== SIG_TYPE_ED25519)
      throw new UsageError(`log key ${k.name} is not an Ed25519 note key`);
  }
  if (keys.length === 0)
    throw new UsageError('give the logs to witness: --log VKEY or --logs FILE');
  return keys;
}

const serve = defineCommand({
  name: 'witness serve',
  summary: 'cosign consistent checkpoints of the logs it watches (C2SP tlog-witness)',
  help: `Usage: accord witness serve --key FILE (--log VKEY… | --logs FILE) [options]

A C2SP tlog-witness: POST /add-checkpoint with the old size, a consistency proof and a
checkpoint; the witness checks the log's signature and that the checkpoint extends the last one
it cosigned for that log, stores it, and only then answers with its cosignature/v1 line.
GET /<hex SHA-256 of origin>/checkpoint serves the latest cosigned checkpoint of a log.

Options:
  --key FILE          the witness's cosignature key ('accord keygen --witness')
  --log VKEY          a log to witness (its verifier key; repeatable)
  --logs FILE         logs to witness, from the "log" lines of a tlog-policy file
  --store URL         sqlite:PATH (default sqlite:DATA/witness.db) or postgres://…
  --schema NAME       PostgreSQL schema for the witness's table
  --listen HOST:PORT  address to listen on (default 127.0.0.1:8082)
  --data-dir DIR      where the default database lives (default ./accord-witness)
  --tls-cert FILE     serve HTTPS with this PEM certificate (chain), with --tls-key FILE
                      its PEM key; both are re-read when they change (no restart needed)
  --log-level LEVEL   debug, info, warn or error (default info)`,
  options: {
    key: { type: 'string' },
    log: { type: 'string', multiple: true },
    logs: { type: 'string' },
    store: { type: 'string' },
    schema: { type: 'string' },
    listen: { type: 'string' },
    'data-dir': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'log-level': { type: 'string' },
  },
  async run(values) {
    if (values.key === undefined) throw new UsageError('--key FILE is required');
    const signer = readSignerKey(values.key);
    if (signer.type !== SIG_TYPE_COSIGNATURE_V1) {
      throw new UsageError(
        `${values.key} is not a witness (cosignature/v1) key: use 'accord keygen --witness'`,
      );
    }
    const logger = serviceLogger(values['log-level'], 'accord-witness');
    const { host, port } = parseListen(values.listen ?? '127.0.0.1:8082');
    const data = values['data-dir'] ?? 'accord-witness';
    const logs = logKeys(values);
    const tls = tlsOptions(values);
    const store = parseStoreUrl(values.store ?? `sqlite:${join(data, 'witness.db')}`);
    lockStore(store);
    const service = await startWitness({
      signer,
      logs,
      store,
      ...(values.schema === undefined ? {} : { schema: values.schema }),
      host,
      port,
      ...(tls === undefined ? {} : { tls }),
      logger,
    });
    process.stdout.write(`${formatVerifierKey(signer)}\n${service.url}\n`);
    return runUntilSignal(service, logger);
  },
});

/** `accord witness <serve>`. */
export const witnessCommand: Command = {
  summary: 'run a witness: serve',
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'serve') return serve.run(rest);
    const help = `Usage: accord witness serve --key FILE --log VKEY…\nRun 'accord witness serve --help' for options.\n`;
    if (sub === '--help' || sub === '-h') {
      process.stdout.write(help);
      return EXIT.ok;
    }
    process.stderr.write(
      `accord witness: unknown subcommand ${JSON.stringify(sub ?? '')}\n${help}`,
    );
    return EXIT.usage;
  },
};
