/**
 * Accord's trust policy: the builder logs, k-of-n trust groups over them (nested to any depth,
 * SPKI-style threshold subjects), the group that decides, and — in C2SP tlog-policy syntax —
 * the witnesses and the witness quorum every log checkpoint needs (docs/policy.md).
 */
import {
  type NoteVerifier,
  type QuorumRule,
  type TlogPolicy,
  TlogError,
  parseTlogPolicy,
} from '../tlog/index.js';
import { PolicyError } from './errors.js';

/** A builder log the policy trusts to state claims. */
export interface BuilderLog {
  /** The log's origin, which is its key name and its name in trust groups. */
  readonly origin: string;
  readonly verifier: NoteVerifier;
  /** Where to query it (`/lookup`, tiles). */
  readonly url: string;
}

/** A trust rule: one log, or a group needing `threshold` of its members. */
export type TrustRule =
  | { readonly kind: 'log'; readonly origin: string }
  | {
      readonly kind: 'group';
      readonly name: string;
      readonly threshold: number;
      readonly members: readonly TrustRule[];
    };

/** A parsed policy. */
export interface Policy {
  readonly logs: readonly BuilderLog[];
  /** The rule a path's claims must satisfy to be trusted. */
  readonly decide: TrustRule;
  /** Witnesses and quorum (tlog-policy), for checking every log checkpoint. */
  readonly witnessPolicy: TlogPolicy;
  /** True when the quorum needs at least one cosignature. */
  readonly needsWitnesses: boolean;
}

/** Limits above tlog-policy's recommended minimum of 32. */
const MAX_GROUPS = 256;

/**
 * Parses a policy file: tlog-policy's `log <vkey> <url>` (the URL is required here),
 * `witness`, `group` and `quorum` lines, plus
 * `trust <name> all|any|<k> <member>…` (members: log origins or earlier trust groups, each a
 * member at most once) and exactly one `decide <name>`.
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
        if (keyword !== 'trust' && keyword !== 'decide') return false;
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
  // Trust lines may only use names defined before them, as in tlog-policy; logs come first.
  for (const { keyword, args, line } of pending) {
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
    decide: decide as TrustRule,
    witnessPolicy,
    needsWitnesses: needsCosignature(witnessPolicy.quorum),
  };
}

function needsCosignature(rule: QuorumRule): boolean {
  return rule.kind !== 'none';
}

/** True when the logs in `supporters` satisfy `rule`. */
export function trustSatisfied(rule: TrustRule, supporters: ReadonlySet<string>): boolean {
  if (rule.kind === 'log') return supporters.has(rule.origin);
  return rule.members.filter((m) => trustSatisfied(m, supporters)).length >= rule.threshold;
}

/** Renders a rule as text, for explanations: `2-of(b1, b2, any-of(b3, b4))`. */
export function describeRule(rule: TrustRule): string {
  if (rule.kind === 'log') return rule.origin;
  const k =
    rule.threshold === rule.members.length && rule.members.length > 1
      ? 'all'
      : rule.threshold === 1 && rule.members.length > 1
        ? 'any'
        : String(rule.threshold);
  return `${rule.name}=${k}-of(${rule.members.map(describeRule).join(', ')})`;
}
