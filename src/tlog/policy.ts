/**
 * C2SP tlog-policy: the logs a client accepts, the witnesses it knows, and the quorum of
 * witness cosignatures a checkpoint needs, as nested k-of-n groups.
 */
import { TlogError } from './errors.js';
import { equalBytes, parseDecimal } from './encoding.js';
import {
  type NoteVerifier,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  formatVerifierKey,
  parseVerifierKey,
} from './keys.js';

/** A log the policy accepts checkpoints from. */
export interface PolicyLog {
  readonly verifier: NoteVerifier;
  readonly url?: string;
}

/** A witness named in the policy. */
export interface PolicyWitness {
  readonly name: string;
  readonly verifier: NoteVerifier;
  readonly url?: string;
}

/** A quorum rule: nothing, one witness, or a group needing `threshold` of its members. */
export type QuorumRule =
  | { readonly kind: 'none' }
  | { readonly kind: 'witness'; readonly name: string }
  | {
      readonly kind: 'group';
      readonly name: string;
      readonly threshold: number;
      readonly members: readonly QuorumRule[];
    };

/** A parsed policy. */
export interface TlogPolicy {
  readonly logs: readonly PolicyLog[];
  readonly witnesses: readonly PolicyWitness[];
  readonly quorum: QuorumRule;
}

/** Limits well above the spec's recommended minimum of 32 logs, witnesses and groups. */
const MAX_ITEMS = 256;
const MAX_POLICY_SIZE = 1 << 20;
// Allowed octets: tab, newline, 0x20–0x7E, and anything with the high bit set.
const FORBIDDEN = /[\0-\x08\x0b-\x1f\x7f]/;

function policyError(line: number, why: string): TlogError {
  return new TlogError('malformed', `policy line ${line}: ${why}`);
}

function parseKey(vkey: string, type: number, line: number): NoteVerifier {
  let verifier: NoteVerifier;
  try {
    verifier = parseVerifierKey(vkey);
  } catch (cause) {
    throw new TlogError('malformed', `policy line ${line}: bad verifier key`, { cause });
  }
  if (verifier.type !== type) {
    throw policyError(
      line,
      `key ${verifier.name} has signature type ${verifier.type}, want ${type}`,
    );
  }
  return verifier;
}

/**
 * Lets an application extend the policy file with keywords of its own: `line` is called for
 * each line whose keyword tlog-policy does not define and returns whether it accepted it
 * (unaccepted lines are errors).
 */
export interface TlogPolicyExtension {
  line(keyword: string, args: readonly string[], lineNumber: number): boolean;
}

/**
 * Parses a policy file (tlog-policy §Policy file syntax): `log <vkey> [<url>]`,
 * `witness <name> <vkey> [<url>]`, `group <name> all|any|<k> <member>…` and exactly one
 * `quorum <name>|none`; `#` comments and blank lines ignored; names defined before use; no
 * duplicate keys or names; each name a group member at most once. Log keys must be Ed25519
 * note keys (type 0x01), witness keys v1 cosignature keys (type 0x04).
 */
export function parseTlogPolicy(text: string, extension?: TlogPolicyExtension): TlogPolicy {
  if (Buffer.byteLength(text) > MAX_POLICY_SIZE) throw new TlogError('limit', 'policy too large');
  if (FORBIDDEN.test(text)) throw new TlogError('malformed', 'policy has a control character');
  const logs: PolicyLog[] = [];
  const witnesses: PolicyWitness[] = [];
  const names = new Map<string, QuorumRule>([['none', { kind: 'none' }]]);
  const used = new Set<string>();
  let groups = 0;
  let quorum: QuorumRule | undefined;
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const n = i + 1;
    const words = raw.split(/[ \t]+/).filter((w) => w.length > 0);
    const [keyword, ...args] = words;
    if (keyword === undefined || keyword.startsWith('#')) continue;
    const define = (name: string, rule: QuorumRule) => {
      if (names.has(name)) throw policyError(n, `name ${name} is already defined`);
      names.set(name, rule);
    };
    switch (keyword) {
      case 'log': {
        const [vkey, url, extra] = args;
        if (vkey === undefined || extra !== undefined)
          throw policyError(n, 'want log <vkey> [<url>]');
        const verifier = parseKey(vkey, SIG_TYPE_ED25519, n);
        if (logs.some((l) => equalBytes(l.verifier.publicKey, verifier.publicKey))) {
          throw policyError(n, 'duplicate log key');
        }
        logs.push(url === undefined ? { verifier } : { verifier, url });
        break;
      }
      case 'witness': {
        const [name, vkey, url, extra] = args;
        if (name === undefined || vkey === undefined || extra !== undefined) {
          throw policyError(n, 'want witness <name> <vkey> [<url>]');
        }
        const verifier = parseKey(vkey, SIG_TYPE_COSIGNATURE_V1, n);
        if (witnesses.some((w) => equalBytes(w.verifier.publicKey, verifier.publicKey))) {
          throw policyError(n, 'duplicate witness key');
        }
        define(name, { kind: 'witness', name });
        witnesses.push(url === undefined ? { name, verifier } : { name, verifier, url });
        break;
      }
      case 'group': {
        const [name, k, ...memberNames] = args;
        if (name === undefined || k === undefined || memberNames.length === 0) {
          throw policyError(n, 'want group <name> all|any|<k> <member>...');
        }
        const members = memberNames.map((m) => {
          const rule = names.get(m);
          if (rule === undefined || m === 'none') throw policyError(n, `unknown member ${m}`);
          if (used.has(m)) throw policyError(n, `${m} is already a group member`);
          used.add(m);
          return rule;
        });
        const threshold =
          k === 'all' ? members.length : k === 'any' ? 1 : parseDecimal(k, `policy line ${n}: k`);
        if (threshold < 1 || threshold > members.length) {
          throw policyError(n, `threshold ${k} is not between 1 and ${members.length}`);
        }
        define(name, { kind: 'group', name, threshold, members });
        groups++;
        break;
      }
      case 'quorum': {
        const [name, extra] = args;
        if (name === undefined || extra !== undefined) throw policyError(n, 'want quorum <name>');
        if (quorum !== undefined) throw policyError(n, 'second quorum line');
        quorum = names.get(name);
        if (quorum === undefined) throw policyError(n, `unknown quorum ${name}`);
        break;
      }
      default:
        if (extension?.line(keyword, args, n) !== true) {
          throw policyError(n, `unknown keyword ${keyword}`);
        }
    }
    if (logs.length > MAX_ITEMS || witnesses.length > MAX_ITEMS || groups > MAX_ITEMS) {
      throw new TlogError('limit', `policy line ${n}: more than ${MAX_ITEMS} of one kind`);
    }
  }
  if (quorum === undefined) throw new TlogError('malformed', 'policy has no quorum line');
  return { logs, witnesses, quorum };
}

/** Formats a policy (without comments); parsing the result gives back an equal policy. */
export function formatTlogPolicy(policy: TlogPolicy): string {
  const lines: string[] = [];
  const withUrl = (words: string[], url: string | undefined) =>
    (url === undefined ? words : [...words, url]).join(' ');
  for (const log of policy.logs)
    lines.push(withUrl(['log', formatVerifierKey(log.verifier)], log.url));
  for (const w of policy.witnesses) {
    lines.push(withUrl(['witness', w.name, formatVerifierKey(w.verifier)], w.url));
  }
  const emitGroups = (rule: QuorumRule): void => {
    if (rule.kind !== 'group') return;
    rule.members.forEach(emitGroups);
    const names = rule.members.map((m) => (m.kind === 'none' ? 'none' : m.name));
    lines.push(['group', rule.name, String(rule.threshold), ...names].join(' '));
  };
  emitGroups(policy.quorum);
  lines.push(`quorum ${policy.quorum.kind === 'none' ? 'none' : policy.quorum.name}`);
  return `${lines.join('\n')}\n`;
}

/** True when the witnesses named in `cosigned` satisfy `rule` (tlog-policy §Defining a group). */
export function quorumSatisfied(rule: QuorumRule, cosigned: ReadonlySet<string>): boolean {
  switch (rule.kind) {
    case 'none':
      return true;
    case 'witness':
      return cosigned.has(rule.name);
    case 'group':
      return rule.members.filter((m) => quorumSatisfied(m, cosigned)).length >= rule.threshold;
  }
}

/**
 * When the quorum had cosigned: the earliest cosignature timestamp by which the witnesses that
 * cosigned up to it satisfy `rule` — the time a checkpoint is shown to have existed by, which no
 * witness outside the quorum, and no single one of a larger quorum, can move earlier. Undefined
 * when the rule needs no cosignature (`none`) or the cosigners never satisfy it.
 */
export function quorumTime(
  rule: QuorumRule,
  cosigners: readonly { readonly name: string; readonly timestamp: number }[],
): number | undefined {
  if (quorumSatisfied(rule, new Set())) return undefined;
  const names = new Set<string>();
  for (const c of [...cosigners].sort((a, b) => a.timestamp - b.timestamp)) {
    names.add(c.name);
    if (quorumSatisfied(rule, names)) return c.timestamp;
  }
  return undefined;
}
