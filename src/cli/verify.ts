/** `accord verify`: re-check narinfos a proxy served, offline, from the evidence they carry. */
import { readFileSync } from 'node:fs';
import { MAX_NARINFO_SIZE, type NixPublicKey, parseNixPublicKey } from '../nix/index.js';
import { verifyStatement } from '../identity/index.js';
import { type Policy, parsePolicy, recheckNarInfo } from '../policy/index.js';
import { fetchBytes } from '../server/index.js';
import { EXIT, UsageError, defineCommand, readOptionFile } from './command.js';

/** A narinfo's text: a file, `-` (standard input), or an http(s) URL (bounded like the proxy's). */
async function readNarInfo(source: string): Promise<string> {
  if (/^https?:\/\//.test(source))
    return (await fetchBytes(source, 10_000, MAX_NARINFO_SIZE)).toString('utf8');
  const bytes = source === '-' ? readFileSync(0) : readFileSync(source);
  if (bytes.length > MAX_NARINFO_SIZE) throw new Error(`larger than ${MAX_NARINFO_SIZE} bytes`);
  return bytes.toString('utf8');
}

export const verifyCommand = defineCommand({
  name: 'verify',
  summary: 're-check narinfos a proxy served against a policy, offline, from their evidence',
  help: `Usage: accord verify --policy FILE [--proxy-key KEY]... [--statements FILE]... [--store-dir DIR]
                     [--json] NARINFO...

Re-checks each narinfo an Accord proxy served (a file, - for standard input, or an http(s) URL
of the proxy) from the evidence it carries: an Accord-Proof per supporting log (a C2SP
tlog-proof of the claim: the checkpoint with its cosignatures and the inclusion proof) and an
Accord-Signature per supporting cache. Every proof must verify under the policy's log keys and
witness quorum, every signature under the cache's keys, and the policy's decision over that
evidence must trust exactly the NAR hash, size and references the narinfo states. Needs no
network (but to fetch a URL given as NARINFO): anyone can audit a proxy from its answers.

A proof from an identity's log (an 'identity' line of the policy) verifies under the log keys
the identity's key statements name, valid when the witness quorum had cosigned the checkpoint.
The narinfo carries the statements the proxy held (Accord-Statement), but a dishonest proxy
may leave out later ones: give the identity's latest statements with --statements (a
revocation published since then counts too); the OK line names the statement each identity
was checked up to. After a log key of the identity was revoked since T, only claims in
checkpoints the quorum cosigned before T can be re-checked offline.

Options:
  --policy FILE      the trust policy to check against (docs/policy.md; required)
  --proxy-key KEY    also require a Sig by this Nix public key (name:base64); repeatable
  --statements FILE  a key statement note of an identity of the policy (as 'accord identity
                     statement' writes it, or an entry of GET <log>/lookup/accord-keys);
                     repeatable
  --store-dir DIR    the store of the narinfos (default /nix/store)
  --json             print one result per narinfo as JSON

Exit codes: 0 every narinfo verifies; 1 some narinfo is refused (the reason is printed);
2 bad usage, or a narinfo that cannot be read.`,
  options: {
    policy: { type: 'string' },
    'proxy-key': { type: 'string', multiple: true },
    statements: { type: 'string', multiple: true },
    'store-dir': { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: { min: 1, max: 10_000 },
  async run(values, sources) {
    if (values.policy === undefined) throw new UsageError('--policy FILE is required');
    const policy: Policy = readOptionFile('--policy', values.policy, parsePolicy);
    const proxyKeys: NixPublicKey[] = (values['proxy-key'] ?? []).map((k) => {
      try {
        return parseNixPublicKey(k);
      } catch (cause) {
        throw new UsageError(`--proxy-key ${JSON.stringify(k)}: ${(cause as Error).message}`);
      }
    });
    // A statement file that is no statement of the policy's identities would be set aside
    // silently by the re-check (as any note a proxy adds is): say so now.
    const statements = (values.statements ?? []).map((f) => {
      const note = `${readOptionFile('--statements', f).trimEnd()}\n`;
      const errors = policy.identities.flatMap((i) => {
        try {
          verifyStatement(note, i.root);
          return [];
        } catch (error) {
          return [`${i.root.name}: ${(error as Error).message}`];
        }
      });
      if (errors.length === policy.identities.length)
        throw new UsageError(
          `--statements ${f}: not a key statement of an identity of the policy${errors.length === 0 ? ' (it names none)' : ` (${errors.join('; ')})`}`,
        );
      return note;
    });
    const storeDir = values['store-dir'];
    const results = [];
    for (const source of sources) {
      let text: string;
      try {
        text = await readNarInfo(source);
      } catch (cause) {
        throw new UsageError(`${source}: cannot be read: ${(cause as Error).message}`);
      }
      const r = recheckNarInfo(policy, text, {
        proxyKeys,
        statements,
        ...(storeDir === undefined ? {} : { storeDir }),
      });
      results.push({ narinfo: source, ok: r.ok, reason: r.reason });
      if (values.json !== true)
        process.stdout.write(`${source}: ${r.ok ? 'OK' : 'REFUSED'} — ${r.reason}\n`);
    }
    if (values.json === true) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return results.every((r) => r.ok) ? EXIT.ok : EXIT.failure;
  },
});
