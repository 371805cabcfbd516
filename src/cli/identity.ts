/** `accord identity`: a builder identity's root key and its key statements (docs/identity.md). */
import { readFileSync, writeFileSync } from 'node:fs';
import {
  type FoldResult,
  IdentityError,
  type KeyKind,
  type KeyStatement,
  type Revocation,
  type StatementKey,
  checkFollows,
  foldStatements,
  isIdentityName,
  keyStatus,
  normalizeKeyText,
  signStatement,
  verifyStatement,
} from '../identity/index.js';
import {
  SIG_TYPE_ED25519,
  formatVerifierKey,
  generateKey,
  newVerifier,
  parseVerifierKey,
} from '../tlog/index.js';
import { type Command, EXIT, UsageError, defineCommand, readOptionFile } from './command.js';
import { readSignerKey, writeSecretFile } from './keyfile.js';
import { logUrl, readToken } from './submit.js';

/** Exit code of `show` when the chain is refused or holds notes the root did not sign. */
const EXIT_REFUSED = 3;

const init = defineCommand({
  name: 'identity init',
  summary: "make an identity's root key",
  help: `Usage: accord identity init --name NAME --out FILE [--vkey-out FILE]

Writes a new root key for identity NAME (a C2SP signed-note Ed25519 private key named NAME) to
FILE with mode 0600, and prints its verifier key on standard output: policies name the identity
by it, and logs take its statements with 'accord log serve --identity'. Keep the root key
offline: it signs key statements only, never checkpoints.

Options:
  --name NAME       the identity's name: 1 to 255 printable ASCII characters, no space, no '+'
                    (for example builder1.example.org)
  --out FILE        where to write the root key (must not exist)
  --vkey-out FILE   also write the verifier key to FILE`,
  options: { name: { type: 'string' }, out: { type: 'string' }, 'vkey-out': { type: 'string' } },
  run(values) {
    const { name, out } = values;
    if (name === undefined) throw new UsageError('--name is required');
    if (out === undefined) throw new UsageError('--out is required');
    if (!isIdentityName(name))
      throw new UsageError(
        `--name ${JSON.stringify(name)}: 1 to 255 printable ASCII characters, no space, no '+'`,
      );
    const { signerKey, verifierKey } = generateKey(name, SIG_TYPE_ED25519);
    writeSecretFile(out, `${signerKey}\n`);
    if (values['vkey-out'] !== undefined) writeFileSync(values['vkey-out'], `${verifierKey}\n`);
    process.stdout.write(`${verifierKey}\n`);
    return Promise.resolve(EXIT.ok);
  },
});

/** A time option: POSIX seconds, `now`, or an ISO 8601 UTC time (`2026-12-04T00:00:00Z`). */
function parseTime(text: string, flag: string, now: number): number {
  if (text === 'now') return now;
  if (/^(?:0|[1-9][0-9]{0,11})$/.test(text)) return Number(text);
  if (/^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?Z)?$/.test(text)) {
    const ms = Date.parse(text);
    if (Number.isFinite(ms)) return Math.floor(ms / 1000);
  }
  throw new UsageError(
    `${flag}: ${JSON.stringify(text)} is not a time (POSIX seconds, now, or ISO 8601 UTC)`,
  );
}

const RANGE = /^([^@.]*)(?:\.\.([^@.]*))?$/;

/**
 * `KEY[@FROM][..UNTIL]` → the key and the times given. The suffix after the last `@` is taken as
 * times only when it reads as times.
 */
function splitKeyTimes(
  text: string,
  flag: string,
  now: number,
): { key: string; from?: number; until?: number } {
  const at = text.lastIndexOf('@');
  const suffix = at < 0 ? undefined : RANGE.exec(text.slice(at + 1));
  if (at < 0 || suffix === null || suffix === undefined) return { key: text };
  const [, from = '', until] = suffix;
  return {
    key: text.slice(0, at),
    ...(from === '' ? {} : { from: parseTime(from, flag, now) }),
    ...(until === undefined || until === '' ? {} : { until: parseTime(until, flag, now) }),
  };
}

/** A key option's key in statement form; a Guix key may be given as its key file. */
function keyText(kind: KeyKind, text: string, flag: string): string {
  let given = text;
  if (kind === 'guix' && !/^[A-Za-z0-9+/]+=*$/.test(text))
    given = readOptionFile(flag, text, (t) => t);
  try {
    return normalizeKeyText(kind, given);
  } catch (e) {
    throw new UsageError(`${flag} ${text}: ${(e as Error).message}`);
  }
}

const statement = defineCommand({
  name: 'identity statement',
  summary: 'write the next key statement, signed by the root key',
  help: `Usage: accord identity statement --root FILE [--previous FILE] [key options] [--out FILE]

Writes a key statement (accord/keys/v1, docs/identity.md) signed by the root key: the complete
set of keys that speak for the identity, with when, and the keys it revoked. With --previous it
is the next statement after that one (sequence + 1, chained to it): keys given again keep their
times unless new ones are given, and every revocation is carried over. The statement is
checked against the previous one (no retroactive trust, revocations kept) before it is signed.

Options:
  --root FILE        the identity's root key ('accord identity init')
  --previous FILE    the identity's last statement (none: this is statement 0)
  --log VKEY[@FROM][..UNTIL]
                     a log key (its verifier key, as 'accord keygen' prints it), valid from
                     FROM until before UNTIL; repeat for each key
  --nix KEY[@FROM][..UNTIL]
                     a Nix cache public key (name:base64)
  --guix KEY[@FROM][..UNTIL]
                     a Guix public key: its key file, or its statement form (base64)
  --revoke KIND:KEY@SINCE
                     KIND is log, nix or guix: nothing under the key counts from SINCE on
  --issued TIME      when the statement is made (default now)
  --out FILE         write the signed statement there (must not exist; default: standard
                     output)

Times are POSIX seconds, 'now', or ISO 8601 in UTC (2026-12-04T00:00:00Z). A new key's FROM
defaults to --issued; a statement after the first may not trust a key for a time before it
is issued that the previous one did not.`,
  options: {
    root: { type: 'string' },
    previous: { type: 'string' },
    log: { type: 'string', multiple: true },
    nix: { type: 'string', multiple: true },
    guix: { type: 'string', multiple: true },
    revoke: { type: 'string', multiple: true },
    issued: { type: 'string' },
    out: { type: 'string' },
  },
  run(values) {
    if (values.root === undefined) throw new UsageError('--root FILE is required');
    const root = readSignerKey(values.root, '--root');
    if (root.type !== SIG_TYPE_ED25519) throw new UsageError('--root: not an Ed25519 note key');
    const rootKey = newVerifier(root.name, root.type, root.publicKey);
    const now = Math.floor(Date.now() / 1000);
    const issued = values.issued === undefined ? now : parseTime(values.issued, '--issued', now);
    const previous =
      values.previous === undefined
        ? undefined
        : readOptionFile('--previous', values.previous, (text) => verifyStatement(text, rootKey));
    const before = new Map(
      (previous?.statement.keys ?? []).map((k) => [`${k.kind} ${k.key}`, k] as const),
    );
    const keys: StatementKey[] = [];
    for (const kind of ['log', 'nix', 'guix'] as const) {
      for (const text of values[kind] ?? []) {
        const flag = `--${kind}`;
        const parsed = splitKeyTimes(text, flag, now);
        const key = keyText(kind, parsed.key, flag);
        const old = before.get(`${kind} ${key}`);
        const from = parsed.from ?? old?.from ?? issued;
        const until = parsed.until ?? (parsed.from === undefined ? old?.until : undefined);
        keys.push({ kind, key, from, ...(until === undefined ? {} : { until }) });
      }
    }
    const revocations = new Map<string, Revocation>(
      (previous?.statement.revocations ?? []).map((r) => [`${r.kind} ${r.key}`, r] as const),
    );
    for (const text of values.revoke ?? []) {
      const colon = text.indexOf(':');
      const kind = text.slice(0, colon) as KeyKind;
      if (colon < 0 || !['log', 'nix', 'guix'].includes(kind))
        throw new UsageError(`--revoke ${text}: want KIND:KEY@SINCE, KIND log, nix or guix`);
      const parsed = splitKeyTimes(text.slice(colon + 1), '--revoke', now);
      if (parsed.from === undefined || parsed.until !== undefined)
        throw new UsageError(`--revoke ${text}: want KIND:KEY@SINCE`);
      const key = keyText(kind, parsed.key, '--revoke');
      const old = revocations.get(`${kind} ${key}`);
      revocations.set(`${kind} ${key}`, {
        kind,
        key,
        since: Math.min(parsed.from, old?.since ?? parsed.from),
      });
    }
    const next: KeyStatement = {
      identity: root.name,
      sequence: previous === undefined ? 0 : previous.statement.sequence + 1,
      ...(previous === undefined ? {} : { previous: previous.hash }),
      issued,
      keys,
      revocations: [...revocations.values()],
    };
    let note: string;
    try {
      note = signStatement(next, root);
    } catch (e) {
      if (e instanceof IdentityError) throw new UsageError(e.message);
      throw e;
    }
    if (previous !== undefined) {
      const refusal = checkFollows(previous, verifyStatement(note, rootKey), rootKey);
      if (refusal !== undefined)
        throw new UsageError(`${refusal.message} (${refusal.code}); nothing written`);
    }
    if (values.out === undefined) process.stdout.write(note);
    else writeFileSync(values.out, note, { flag: 'wx' });
    return Promise.resolve(EXIT.ok);
  },
});

const publish = defineCommand({
  name: 'identity publish',
  summary: "publish a key statement in the identity's log",
  help: `Usage: accord identity publish --log URL --token-file FILE [--json] STATEMENT

Sends the statement note in file STATEMENT to the log at URL (POST /statements; the log runs
with 'accord log serve --identity'). The log takes it only when the identity's root key signed
it and it follows the last statement the log holds. Prints the entry's index (with --json:
{"index": N}); exits 1 with the log's reason when it is refused.

Options:
  --log URL          the log (or ACCORD_LOG_URL)
  --token-file FILE  a submit token of the log ('accord log token'; or ACCORD_TOKEN)
  --timeout MS       how long to wait for the log (default 30000)
  --json             print {"index": N}`,
  options: {
    log: { type: 'string' },
    'token-file': { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: { min: 1, max: 1 },
  async run(values, [file]) {
    const url = logUrl(values);
    const token = readToken(values);
    const timeout = values.timeout === undefined ? 30_000 : Number(values.timeout);
    if (!Number.isSafeInteger(timeout) || timeout <= 0)
      throw new UsageError(`--timeout ${values.timeout ?? ''}: want milliseconds`);
    const note = readOptionFile('STATEMENT', file ?? '', (text) => text);
    const res = await fetch(`${url.replace(/\/+$/, '')}/statements`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'text/plain; charset=utf-8' },
      body: note,
      signal: AbortSignal.timeout(timeout),
    });
    const body = await res.text();
    if (!res.ok) throw new Error(`${url} refused the statement: ${res.status} ${body.trim()}`);
    const { index } = JSON.parse(body) as { index: number };
    process.stdout.write(values.json === true ? `${JSON.stringify({ index })}\n` : `${index}\n`);
    return EXIT.ok;
  },
});

function describeFold(result: FoldResult, at: number) {
  const state = result.state;
  return {
    status: result.kind,
    ...(result.kind === 'refused'
      ? { refusal: { code: result.refusal.code, message: result.refusal.message } }
      : {}),
    ignored: result.ignored.map((r) => ({ code: r.code, message: r.message })),
    ...(state === undefined
      ? {}
      : {
          identity: state.name,
          root: state.root,
          sequence: state.sequence,
          issued: state.issued,
          head: state.head,
          at,
          keys: state.statement.keys.map((k) => ({
            ...k,
            status: keyStatus(state, k.kind, k.key, at),
          })),
          revocations: state.statement.revocations,
        }),
  };
}

const show = defineCommand({
  name: 'identity show',
  summary: "verify an identity's statements and show its keys",
  help: `Usage: accord identity show --root VKEY|FILE [--at TIME] [--json] STATEMENT...

Verifies the statement notes in the files given (in any order) as one chain under the root
key, and prints the identity's keys as of the last statement, each with where it stands at
TIME (default now): valid, revoked, not-yet-valid or expired.

Exit codes: 0 the chain holds; 3 a statement is refused (the reason is printed) or a file
holds a note not signed by the root; 1 a file cannot be read; 2 bad usage.

Options:
  --root VKEY|FILE  the identity's root verifier key, or a file holding it
  --at TIME         when to evaluate keys (POSIX seconds, now, ISO 8601 UTC; default now)
  --json            print the state as JSON`,
  options: { root: { type: 'string' }, at: { type: 'string' }, json: { type: 'boolean' } },
  positionals: { min: 1, max: 10_000 },
  run(values, files) {
    if (values.root === undefined) throw new UsageError('--root is required');
    const rootText = values.root.includes('+')
      ? values.root
      : readOptionFile('--root', values.root, (t) => t.trim());
    let root;
    try {
      root = parseVerifierKey(rootText);
    } catch (e) {
      throw new UsageError(`--root: ${(e as Error).message}`);
    }
    if (root.type !== SIG_TYPE_ED25519) throw new UsageError('--root: not an Ed25519 note key');
    const now = Math.floor(Date.now() / 1000);
    const at = values.at === undefined ? now : parseTime(values.at, '--at', now);
    const notes = files.map((f) => {
      try {
        return readFileSync(f);
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        throw new Error(`${f}: ${code ?? 'cannot be read'}`, { cause });
      }
    });
    const result = foldStatements(root, notes);
    const shown = describeFold(result, at);
    if (values.json === true) process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
    else {
      const lines: string[] = [];
      if (result.state !== undefined) {
        const s = result.state;
        lines.push(`identity ${s.name} (root ${formatVerifierKey(root)})`);
        lines.push(`statement ${s.sequence}, issued ${s.issued}, hash ${s.head}`);
        for (const k of shown.keys ?? [])
          lines.push(
            `  ${k.kind} ${k.key} from ${k.from}${k.until === undefined ? '' : ` until ${k.until}`}: ${k.status}`,
          );
        for (const r of s.statement.revocations)
          lines.push(`  revoked ${r.kind} ${r.key} since ${r.since}`);
      }
      for (const r of result.ignored) lines.push(`not the root's: ${r.message}`);
      if (result.kind === 'refused')
        lines.push(`refused (${result.refusal.code}): ${result.refusal.message}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    const bad = result.kind === 'refused' || result.ignored.length > 0;
    return Promise.resolve(bad ? EXIT_REFUSED : EXIT.ok);
  },
});

/** `accord identity <init|statement|publish|show>`. */
export const identityCommand: Command = {
  summary: "a builder identity's root key and key statements: init, statement, publish, show",
  async run(argv) {
    const [sub, ...rest] = argv;
    const subcommands: Record<string, Command> = { init, statement, publish, show };
    const command = sub === undefined ? undefined : subcommands[sub];
    if (command !== undefined) return command.run(rest);
    const help = `Usage: accord identity init | statement | publish | show [options]
  init       make an identity's root key
  statement  write the next key statement, signed by the root key
  publish    publish a key statement in the identity's log
  show       verify an identity's statements and show its keys
Run 'accord identity <subcommand> --help' for its options.
`;
    if (sub === '--help' || sub === '-h') {
      process.stdout.write(help);
      return EXIT.ok;
    }
    process.stderr.write(
      `accord identity: unknown subcommand ${JSON.stringify(sub ?? '')}\n${help}`,
    );
    return EXIT.usage;
  },
};
