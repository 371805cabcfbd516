/**
 * Accord's trust policy: the builder logs, k-of-n trust groups over them (nested to any depth,
 * SPKI-style threshold subjects), the group that decides, and — in C2SP tlog-policy syntax —
 * the witnesses and the witness quorum every log checkpoint needs (docs/policy.md).
 */
import {
  type NoteVerifier,
  type QuorumRule,
  SIG_TYPE_ED25519,
  type TlogPolicy,
  TlogError,
  isValidKeyName,
  parseTlogPolicy,
  parseVerifierKey,
} from '../tlog/index.js';
import { type GuixPublicKey, guixPublicKeyFromHex, guixPublicKeyHex } from '../guix/index.js';
import { type NixPublicKey, formatNixPublicKey, parseNixPublicKey } from '../nix/index.js';
import { PolicyError } from './errors.js';

/** A builder log the policy trusts to state claims. */
export interface BuilderLog {
  /** The log's origin, which is its key name and its name in trust groups. */
  readonly origin: string;
  readonly verifier: NoteVerifier;
  /** Where to query it (`/lookup`, tiles). */
  readonly url: string;
}

/**
 * A builder log whose keys come from a builder identity's key statements (docs/identity.md):
 * its checkpoints must be signed by a log key the statements make valid, so the log's key
 * rotates (same origin) with no change to the policy, and a revoked key stops counting.
 */
export interface IdentityLog {
  /** The log's origin, which stays the same across key rotations; its name in trust groups. */
  readonly origin: string;
  /** The identity's root key (its name is the identity's name), which signs the statements. */
  readonly root: NoteVerifier;
  readonly url: string;
}

/**
 * A binary cache whose signatures are votes: a narinfo for the path signed by one of its keys
 * (a Nix key, or a Guix key) is its vote for what that narinfo states. Weaker than a log
 * claim: nobody else sees what a cache signed for one user.
 */
export interface CacheMember {
  /** Its name in trust groups. */
  readonly name: string;
  /** Where to fetch its narinfos (and NARs). */
  readonly url: string;
  readonly nixKeys: readonly NixPublicKey[];
  readonly guixKeys: readonly GuixPublicKey[];
}

/** A trust rule: one log, one cache, or a group needing `threshold` of its members. */
export type TrustRule =
  | { readonly kind: 'log'; readonly origin: string }
  | { readonly kind: 'cache'; readonly name: string }
  | {
      readonly kind: 'group';
      readonly name: string;
      readonly threshold: number;
      readonly members: readonly TrustRule[];
    };

/** A parsed policy. */
export interface Policy {
  readonly logs: readonly BuilderLog[];
  /** Logs whose keys an identity's statements name (`identity` lines), in the file's order. */
  readonly identities: readonly IdentityLog[];
  /** Caches whose signatures are votes (`cache` lines), in the file's order. */
  readonly caches: readonly CacheMember[];
  /** The rule a path's claims must satisfy to be trusted. */
  readonly decide: TrustRule;
  /** Witnesses and quorum (tlog-policy), for checking every log checkpoint. */
  readonly witnessPolicy: TlogPolicy;
  /** True when the quorum needs at least one cosignature. */
  readonly needsWitnesses: boolean;
}

/** Limits above tlog-policy's recommended minimum of 32. */
const MAX_GROUPS = 256;
const MAX_CACHES = 256;
const MAX_CACHE_KEYS = 16;
const CACHE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * A cache key as a policy writes it: a Nix public key `name:base64`, or a Guix key
 * `guix:<64 hex digits of q>` (the point in its key file's `(q #…#)`).
 */
export function parseCacheKey(text: string): { nix: NixPublicKey } | { guix: GuixPublicKey } {
  if (text.startsWith('guix:')) return { guix: guixPublicKeyFromHex(text.slice('guix:'.length)) };
  return { nix: parseNixPublicKey(text) };
}

/** The text of a cache key, as {@link parseCacheKey} reads it. */
export function formatCacheKey(key: { nix: NixPublicKey } | { guix: GuixPublicKey }): string {
  return 'nix' in key ? formatNixPublicKey(key.nix) : `guix:${guixPublicKeyHex(key.guix)}`;
}

/**
 * Parses a policy file: tlog-policy's `log <vkey> <url>` (the URL is required here),
 * `witness`, `group` and `quorum` lines, plus
 * `cache <name> <url> <key>…` (a cache whose signatures are votes; each key belongs to one
 * cache, and Nix key names are unique, as Nix picks a key by its name),
 * `trust <name> all|any|<k> <member>…` (members: log origins, caches or earlier trust groups,
 * each a member at most once) and exactly one `decide <name>`.
 */
export function parsePolicy(text: string): Policy {
  const rules = new Map<string, TrustRule>();
  const used = new Set<string>();
  let decideName: { name: string; line: number } | undefined;
  let groups = 0;
  const fail = (line: number, why: string): never => {
    throw new PolicyError(`policy line ${line}: ${why}`);
  };
  const pending: { keyword: string; args: readonly string[]; line: number }[] = [];
  let witnessPolicy: TlogPolicy;
  try {
    // Trust lines are collected here and resolved after the logs are known.
    witnessPolicy = parseTlogPolicy(text, {
      line(keyword, args, line) {
        if (!['trust', 'decide', 'cache', 'identity'].includes(keyword)) return false;
        pending.push({ keyword, args, line });
        return true;
      },
    });
  } catch (cause) {
    if (cause instanceof TlogError) throw new PolicyError(cause.message, { cause });
    throw cause;
  }
  const logs = witnessPolicy.logs.map((log): BuilderLog => {
    const origin = log.verifier.name;
    if (log.url === undefined || !/^https?:\/\/\S+$/.test(log.url)) {
      throw new PolicyError(`log ${origin}: needs an http(s) URL`);
    }
    if (rules.has(origin)) throw new PolicyError(`log ${origin} is listed twice`);
    rules.set(origin, { kind: 'log', origin });
    return { origin, verifier: log.verifier, url: log.url.replace(/\/+$/, '') };
  });
  const caches: CacheMember[] = [];
  const nixKeyNames = new Set<string>();
  const guixKeys = new Set<string>();
  // Trust lines may only use names defined before them, as in tlog-policy; logs come first.
  const identities: IdentityLog[] = [];
  for (const { keyword, args, line } of pending) {
    if (keyword === 'identity') {
      identities.push(identityLine(args, line, rules, fail));
      continue;
    }
    if (keyword === 'cache') {
      caches.push(cacheLine(args, line, rules, nixKeyNames, guixKeys, fail));
      if (caches.length > MAX_CACHES) fail(line, `more than ${MAX_CACHES} caches`);
      continue;
    }
    if (keyword === 'decide') {
      if (args.length !== 1) fail(line, 'want decide <name>');
      if (decideName !== undefined) fail(line, 'second decide line');
      decideName = { name: args[0] ?? '', line };
      continue;
    }
    const [name, k, ...memberNames] = args;
    if (name === undefined || k === undefined || memberNames.length === 0) {
      fail(line, 'want trust <name> all|any|<k> <member>...');
    }
    const groupName = name ?? '';
    if (rules.has(groupName)) fail(line, `name ${groupName} is already defined`);
    const members = memberNames.map((m) => {
      const rule = rules.get(m);
      if (rule === undefined) fail(line, `unknown member ${m}`);
      if (used.has(m)) fail(line, `${m} is already a member of a trust group`);
      used.add(m);
      return rule as TrustRule;
    });
    const threshold =
      k === 'all'
        ? members.length
        : k === 'any'
          ? 1
          : /^[1-9][0-9]{0,3}$/.test(k ?? '')
            ? Number(k)
            : NaN;
    if (!(threshold >= 1 && threshold <= members.length)) {
      fail(line, `threshold ${k ?? ''} is not between 1 and ${members.length}`);
    }
    rules.set(groupName, { kind: 'group', name: groupName, threshold, members });
    if (++groups > MAX_GROUPS) fail(line, `more than ${MAX_GROUPS} trust groups`);
  }
  if (decideName === undefined) throw new PolicyError('policy has no decide line');
  const decide = rules.get(decideName.name);
  if (decide === undefined) fail(decideName.line, `unknown name ${decideName.name}`);
  return {
    logs,
    identities,
    caches,
    decide: decide as TrustRule,
    witnessPolicy,
    needsWitnesses: needsCosignature(witnessPolicy.quorum),
  };
}

/** Reads `identity <root vkey> <log origin> <log URL>`, registering the origin. */
function identityLine(
  args: readonly string[],
  line: number,
  rules: Map<string, TrustRule>,
  fail: (line: number, why: string) => never,
): IdentityLog {
  const [rootText, origin, url] = args;
  if (rootText === undefined || origin === undefined || url === undefined || args.length !== 3)
    fail(line, 'want identity <root verifier key> <log origin> <log URL>');
  let root: NoteVerifier;
  try {
    root = parseVerifierKey(rootText);
  } catch (cause) {
    fail(line, `identity root key: ${(cause as Error).message}`);
  }
  if (root.type !== SIG_TYPE_ED25519) fail(line, 'identity root key: want an Ed25519 note key');
  if (!isValidKeyName(origin) || origin === root.name)
    fail(
      line,
      `identity ${root.name}: ${origin} is not a log origin (nor may it be the identity's name)`,
    );
  if (rules.has(origin)) fail(line, `name ${origin} is already defined`);
  if (!/^https?:\/\/\S+$/.test(url))
    fail(line, `identity ${root.name}: the log needs an http(s) URL`);
  rules.set(origin, { kind: 'log', origin });
  return { origin, root, url: url.replace(/\/+$/, '') };
}

/** Every log of the policy, by origin: its static logs and its identities' logs. */
export function logOrigins(policy: Pick<Policy, 'logs' | 'identities'>): string[] {
  return [...policy.logs, ...policy.identities].map((l) => l.origin);
}

/** Reads `cache <name> <url> <key>…`, registering its name and keys. */
function cacheLine(
  args: readonly string[],
  line: number,
  rules: Map<string, TrustRule>,
  nixKeyNames: Set<string>,
  guixKeys: Set<string>,
  fail: (line: number, why: string) => never,
): CacheMember {
  const [name, url, ...keyTexts] = args;
  if (name === undefined || url === undefined || keyTexts.length === 0)
    fail(line, 'want cache <name> <url> <key>...');
  const cacheName = name;
  if (!CACHE_NAME.test(cacheName)) fail(line, `cache name ${cacheName} is not [A-Za-z0-9._-]`);
  if (rules.has(cacheName)) fail(line, `name ${cacheName} is already defined`);
  if (!/^(?:https?|file):\/\/\S+$/.test(url))
    fail(line, `cache ${cacheName}: want an http(s):// or file:// URL`);
  if (keyTexts.length > MAX_CACHE_KEYS) fail(line, `more than ${MAX_CACHE_KEYS} keys`);
  const nixKeys: NixPublicKey[] = [];
  const guix: GuixPublicKey[] = [];
  for (const text of keyTexts) {
    let key: ReturnType<typeof parseCacheKey>;
    try {
      key = parseCacheKey(text);
    } catch (cause) {
      fail(line, `cache ${cacheName}: ${(cause as Error).message}`);
    }
    const seen = 'nix' in key ? nixKeyNames : guixKeys;
    const id = 'nix' in key ? key.nix.name : formatCacheKey(key);
    // A key counts once, for the one cache that owns it.
    if (seen.has(id)) fail(line, `key ${id} belongs to another cache already`);
    seen.add(id);
    if ('nix' in key) nixKeys.push(key.nix);
    else guix.push(key.guix);
  }
  rules.set(cacheName, { kind: 'cache', name: cacheName });
  return { name: cacheName, url: url.replace(/\/+$/, ''), nixKeys, guixKeys: guix };
}

function needsCosignature(rule: QuorumRule): boolean {
  return rule.kind !== 'none';
}

/** The name a member has in trust groups and among supporters: a log's origin, a cache's name. */
function memberName(rule: Exclude<TrustRule, { kind: 'group' }>): string {
  return rule.kind === 'log' ? rule.origin : rule.name;
}

/** True when the members (log origins, cache names) in `supporters` satisfy `rule`. */
export function trustSatisfied(rule: TrustRule, supporters: ReadonlySet<string>): boolean {
  if (rule.kind !== 'group') return supporters.has(memberName(rule));
  return rule.members.filter((m) => trustSatisfied(m, supporters)).length >= rule.threshold;
}

/** Renders a rule as text, for explanations: `2-of(b1, b2, any-of(b3, b4))`. */
export function describeRule(rule: TrustRule): string {
  if (rule.kind !== 'group') return memberName(rule);
  const k =
    rule.threshold === rule.members.length && rule.members.length > 1
      ? 'all'
      : rule.threshold === 1 && rule.members.length > 1
        ? 'any'
        : String(rule.threshold);
  return `${rule.name}=${k}-of(${rule.members.map(describeRule).join(', ')})`;
}
