/**
 * A Guix ACL (`/etc/guix/acl`) as an Accord policy: each authorised key becomes a `cache`
 * member (the ACL names keys, not where they sign, so each key is given its cache's URL), each
 * `(k-of-n K N …)` entry a `trust` group, and the entries together an `any` group — Guix
 * authorises a narinfo when one entry does.
 */
import {
  type GuixAcl,
  type GuixAclSubject,
  type GuixPublicKey,
  guixPublicKeyHex,
} from '../guix/index.js';
import { PolicyError } from './errors.js';
import { parsePolicy } from './policy.js';

/** Where a key of the ACL signs: the cache's name in the policy and its URL. */
export interface GuixCacheOfKey {
  readonly key: GuixPublicKey;
  readonly name: string;
  readonly url: string;
}

/**
 * The policy text for `acl`, with `caches` saying which cache each key is. Refuses an ACL with
 * no entry, a key with no cache given, a key in two entries (Accord counts a key once, for one
 * member), and a cache given for a key the ACL does not hold. The text is parsed before it is
 * returned.
 */
export function policyFromGuixAcl(acl: GuixAcl, caches: readonly GuixCacheOfKey[]): string {
  if (acl.entries.length === 0) throw new PolicyError('the ACL authorises no key');
  const byKey = new Map(caches.map((c) => [guixPublicKeyHex(c.key), c]));
  if (byKey.size !== caches.length) throw new PolicyError('a key is given two caches');
  const used = new Set<string>();
  const cacheLines: string[] = [];
  const trustLines: string[] = [];
  let groups = 0;
  const member = (subject: GuixAclSubject): string => {
    if (subject.kind === 'key') {
      const hex = guixPublicKeyHex(subject.key);
      const cache = byKey.get(hex);
      if (cache === undefined)
        throw new PolicyError(
          `the ACL's key guix:${hex} has no cache: give its URL with --cache URL=guix:${hex}`,
        );
      if (used.has(hex))
        throw new PolicyError(
          `the key guix:${hex} is in two ACL entries; a policy counts a key once, for one member: keep one entry`,
        );
      used.add(hex);
      cacheLines.push(`cache ${cache.name} ${cache.url} guix:${hex}`);
      return cache.name;
    }
    const members = subject.subjects.map(member);
    const name = `acl-${++groups}`;
    trustLines.push(`trust ${name} ${subject.k} ${members.join(' ')}`);
    return name;
  };
  const top = acl.entries.map(member);
  const unused = caches.filter((c) => !used.has(guixPublicKeyHex(c.key)));
  if (unused.length > 0)
    throw new PolicyError(
      `--cache ${unused.map((c) => c.url).join(', ')}: its key is not in the ACL`,
    );
  let decide = top[0] ?? '';
  if (top.length > 1) {
    decide = 'acl';
    trustLines.push(`trust acl any ${top.join(' ')}`);
  }
  const text = [
    '# From a Guix ACL: a narinfo is trusted when an entry authorises it (a k-of-n entry',
    '# when K of its caches signed the same narinfo fields).',
    ...cacheLines,
    ...trustLines,
    `decide ${decide}`,
    'quorum none',
    '',
  ].join('\n');
  parsePolicy(text);
  return text;
}
