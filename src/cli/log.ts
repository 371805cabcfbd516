/** `accord log serve` and `accord log token`. */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lockStore, parseStoreUrl } from '../db/index.js';
import {
  type WitnessEndpoint,
  newToken,
  parseSubmitters,
  startLogService,
  submitterLine,
} from '../log/index.js';
import { NIX_STORE_DIR, checkStoreDir } from '../nix/index.js';
import { parseListen } from '../server/index.js';
import { SIG_TYPE_ED25519, equalBytes, formatVerifierKey, generateKey } from '../tlog/index.js';
import {
  type Command,
  EXIT,
  UsageError,
  defineCommand,
  readOptionFile,
  readTlogPolicyFile,
} from './command.js';
import { positiveInteger, runUntilSignal, serviceLogger, tlsOptions } from './service.js';
import { readRootKey, readSignerKey, writeSecretFile } from './keyfile.js';

/** Reads witness lines (with URLs) from a tlog-policy file; a missing quorum line is fine. */
function readWitnesses(path: string): WitnessEndpoint[] {
  const policy = readTlogPolicyFile('--witnesses', path);
  return policy.witnesses.map((w) => {
    if (w.url === undefined) throw new UsageError(`--witnesses: witness ${w.name} has no URL`);
    return { url: w.url, verifier: w.verifier };
  });
}

const serve = defineCommand({
  name: 'log serve',
  summary: "serve a builder's transparency log",
  help: `Usage: accord log serve [options]

Serves one builder's append-only log: the C2SP tlog-tiles read path (/checkpoint,
/tile/<L>/<N>[.p/<W>], /tile/entries/<N>[.p/<W>]), POST /submit for authenticated builders,
/lookup/<hash part> with tlog-proofs, /metrics and /health. On first run with the defaults it creates
a data directory holding the SQLite database, a log key and a submit token.

Options:
  --origin ORIGIN     the log's origin; required when the key file does not exist yet
                      (the key is then generated), else it must match the key's name
  --key FILE          the log's private key (default DATA/log.key; see 'accord keygen');
                      repeat it to rotate the key with an overlap: every checkpoint is
                      signed by each key given (all named as the origin), so clients and
                      witnesses that know the old or the new key verify it; the first is
                      generated when missing
  --store URL         sqlite:PATH (default sqlite:DATA/log.db) or postgres://user:pass@host/db
  --schema NAME       PostgreSQL schema for the log's tables (default: the search path)
  --listen HOST:PORT  address to listen on (default 127.0.0.1:8080)
  --data-dir DIR      where defaults live (default ./accord-data)
  --submitters FILE   builders allowed to submit: lines "<name> <sha256 hex of token>", a
                      leading "!" revokes (default DATA/submitters; created with one token,
                      written to DATA/submit-token, when missing); add more with
                      'accord log token'. Re-read when it changes and on SIGHUP: tokens
                      added or revoked take effect without a restart
  --store-dir DIR     the store claims are about (default /nix/store; /gnu/store for Guix)
  --interval MS       publish a checkpoint this often when entries wait (default 500)
  --max-body BYTES    largest submission body (default 4194304)
  --max-claims N      most claims in one submission (default 10000)
  --identity FILE     the root verifier key of the builder's identity (one line, as
                      'accord identity init' prints it): POST /statements then takes its
                      key statements, each only when the root signed it and it follows the
                      last one (see docs/identity.md); they are looked up at
                      /lookup/accord-keys
  --witnesses FILE    witnesses to ask for cosignatures, in C2SP tlog-policy syntax: lines
                      "witness <name> <vkey> <url>" (other policy lines are ignored); each
                      checkpoint is published with the cosignatures that verify
  --tls-cert FILE     serve HTTPS with this PEM certificate (chain), with --tls-key FILE
                      its PEM key; both are re-read when they change (no restart needed)
  --log-level LEVEL   debug, info, warn or error (default info)

Logs are JSON lines on standard error. Stop with SIGINT or SIGTERM.`,
  options: {
    origin: { type: 'string' },
    key: { type: 'string', multiple: true },
    store: { type: 'string' },
    schema: { type: 'string' },
    listen: { type: 'string' },
    'data-dir': { type: 'string' },
    submitters: { type: 'string' },
    'store-dir': { type: 'string' },
    interval: { type: 'string' },
    'max-body': { type: 'string' },
    'max-claims': { type: 'string' },
    witnesses: { type: 'string' },
    identity: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'log-level': { type: 'string' },
  },
  async run(values) {
    // Every option is checked, and the state locked, before any key or token is made.
    const logger = serviceLogger(values['log-level'], 'accord-log');
    const data = values['data-dir'] ?? 'accord-data';
    const [keyPath = join(data, 'log.key'), ...morePaths] = values.key ?? [];
    const submittersPath = values.submitters ?? join(data, 'submitters');
    if (values.submitters !== undefined && !existsSync(submittersPath))
      throw new UsageError(`--submitters ${submittersPath} does not exist`);
    const storeDir = values['store-dir'] ?? NIX_STORE_DIR;
    checkStoreDir(storeDir);
    const { host, port } = parseListen(values.listen ?? '127.0.0.1:8080');
    const store = parseStoreUrl(values.store ?? `sqlite:${join(data, 'log.db')}`);
    const limits = {
      intervalMs: positiveInteger(values.interval, '--interval', 500),
      maxBodyBytes: positiveInteger(values['max-body'], '--max-body', 4 << 20),
      maxClaims: positiveInteger(values['max-claims'], '--max-claims', 10_000),
    };
    const witnesses = values.witnesses === undefined ? [] : readWitnesses(values.witnesses);
    const tls = tlsOptions(values);
    if (!existsSync(keyPath) && values.origin === undefined)
      throw new UsageError(`${keyPath} does not exist: give --origin to create it`);
    const submitters = existsSync(submittersPath)
      ? readOptionFile('--submitters', submittersPath, parseSubmitters)
      : undefined;
    const signer = existsSync(keyPath) ? readSignerKey(keyPath) : undefined;
    if (signer !== undefined && signer.type !== SIG_TYPE_ED25519)
      throw new UsageError(
        `--key ${keyPath} is not a log (Ed25519) key: make one with 'accord keygen'`,
      );
    const origin = values.origin ?? signer?.name ?? '';
    if (signer !== undefined && origin !== signer.name) {
      throw new UsageError(`--origin ${origin} does not match the key's name ${signer.name}`);
    }
    const extraSigners = morePaths.map((path) => {
      const more = readSignerKey(path);
      if (more.type !== SIG_TYPE_ED25519)
        throw new UsageError(`--key ${path} is not a log (Ed25519) key`);
      if (more.name !== origin)
        throw new UsageError(`--key ${path} is named ${more.name}, not the origin ${origin}`);
      return more;
    });
    const ids = [signer?.keyId, ...extraSigners.map((k) => k.keyId)].filter((k) => k !== undefined);
    if (new Set(ids).size !== ids.length)
      throw new UsageError('--key: the same key is given twice');
    const identity =
      values.identity === undefined ? undefined : readRootKey('--identity', values.identity);
    if (
      identity !== undefined &&
      (identity.name === origin ||
        [signer, ...extraSigners].some(
          (k) => k !== undefined && equalBytes(identity.publicKey, k.publicKey),
        ))
    )
      throw new UsageError(
        `--identity ${values.identity ?? ''}: the root key must not be the log's key (nor share its name ${origin})`,
      );
    lockStore(store);

    let key = signer;
    if (key === undefined) {
      const { signerKey, verifierKey } = generateKey(origin, SIG_TYPE_ED25519);
      writeSecretFile(keyPath, `${signerKey}\n`);
      logger.info('generated log key', { key: keyPath, verifierKey });
      key = readSignerKey(keyPath);
    }
    let allowed = submitters;
    if (allowed === undefined) {
      const token = newToken();
      writeSecretFile(join(data, 'submit-token'), `${token}\n`);
      writeSecretFile(submittersPath, submitterLine('default', token));
      logger.info('created a submit token', {
        submitters: submittersPath,
        token: join(data, 'submit-token'),
      });
      allowed = parseSubmitters(readFileSync(submittersPath, 'utf8'));
    }
    const service = await startLogService({
      origin,
      signer: key,
      ...(extraSigners.length === 0 ? {} : { extraSigners }),
      store,
      ...(values.schema === undefined ? {} : { schema: values.schema }),
      host,
      port,
      submitters: allowed,
      submittersFile: submittersPath,
      storeDir,
      ...limits,
      witnesses,
      ...(identity === undefined ? {} : { identity: { root: identity } }),
      ...(tls === undefined ? {} : { tls }),
      logger,
    });
    const vkeys = [key, ...extraSigners].map((k) => `${formatVerifierKey(k)}\n`).join('');
    process.stdout.write(`${vkeys}${service.url}\n`);
    return runUntilSignal(service, logger);
  },
});

const token = defineCommand({
  name: 'log token',
  summary: 'add a builder allowed to submit, printing its new token',
  help: `Usage: accord log token NAME [--submitters FILE]

Generates a random token for builder NAME, appends "<NAME> <sha256 of token>" to the
submitters file (default accord-data/submitters), and prints the token on standard output:
give it to the builder ('accord submit --token-file'). Revoke a builder by putting "!" before
its line.`,
  options: { submitters: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  run(values, [name]) {
    if (name === undefined || !/^[A-Za-z0-9._@-]{1,128}$/.test(name)) {
      throw new UsageError('NAME: letters, digits, . _ @ - only');
    }
    const path = values.submitters ?? join('accord-data', 'submitters');
    const value = newToken();
    if (existsSync(path)) parseSubmitters(readFileSync(path, 'utf8'));
    appendFileSync(path, submitterLine(name, value), { mode: 0o600 });
    process.stdout.write(`${value}\n`);
    return Promise.resolve(EXIT.ok);
  },
});

/** `accord log <serve|token>`. */
export const logCommand: Command = {
  summary: 'run a builder log: serve, token',
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'serve') return serve.run(rest);
    if (sub === 'token') return token.run(rest);
    const help = `Usage: accord log serve [options] | accord log token NAME\nRun 'accord log serve --help' for the server's options.\n`;
    if (sub === '--help' || sub === '-h') {
      process.stdout.write(help);
      return EXIT.ok;
    }
    process.stderr.write(`accord log: unknown subcommand ${JSON.stringify(sub ?? '')}\n${help}`);
    return EXIT.usage;
  },
};
