/** `accord policy from-guix-acl`: a policy from a Guix ACL, k-of-n entries included. */
import { writeFileSync } from 'node:fs';
import { type GuixPublicKey, parseGuixAcl, parseGuixPublicKey } from '../guix/index.js';
import { type GuixCacheOfKey, parseCacheKey, policyFromGuixAcl } from '../policy/index.js';
import { type Command, EXIT, UsageError, defineCommand, readOptionFile } from './command.js';

/** `URL=KEY`: KEY is `guix:<hex of q>` or a Guix public key file. */
function cacheOption(text: string): { url: string; key: GuixPublicKey } {
  const at = text.indexOf('=');
  const url = text.slice(0, at);
  const keyText = text.slice(at + 1);
  if (at <= 0 || !/^(?:https?|file):\/\/\S+$/.test(url) || keyText === '')
    throw new UsageError(`--cache ${JSON.stringify(text)}: want URL=guix:<hex> or URL=KEY-FILE`);
  if (keyText.startsWith('guix:')) {
    try {
      const key = parseCacheKey(keyText);
      if ('guix' in key) return { url: url.replace(/\/+$/, ''), key: key.guix };
    } catch (cause) {
      throw new UsageError(`--cache ${url}: ${(cause as Error).message}`);
    }
  }
  const key = readOptionFile(`--cache ${url}=`, keyText, (t) => parseGuixPublicKey(t));
  return { url: url.replace(/\/+$/, ''), key };
}

/** A cache's policy name: its URL's host (with a number when two share one). */
function names(caches: readonly { url: string; key: GuixPublicKey }[]): GuixCacheOfKey[] {
  const taken = new Map<string, number>();
  return caches.map((c) => {
    const host = new URL(c.url).hostname.replace(/[^A-Za-z0-9._-]/g, '') || 'cache';
    const n = (taken.get(host) ?? 0) + 1;
    taken.set(host, n);
    return { ...c, name: n === 1 ? host.slice(0, 60) : `${host.slice(0, 56)}-${n}` };
  });
}

const fromGuixAcl = defineCommand({
  name: 'policy from-guix-acl',
  summary: 'write an Accord policy from a Guix ACL, (k-of-n …) entries included',
  help: `Usage: accord policy from-guix-acl [--acl FILE] --cache URL=KEY... [--out FILE]

Reads a Guix ACL (/etc/guix/acl by default), including the proposed
(entry (k-of-n K N (public-key …) …) (tag (guix import))) entries with K and N written bare,
quoted ("2") or in hex (#02#), and prints an Accord policy that trusts a narinfo when an entry
authorises it: a plain key alone, a k-of-n entry when K of its caches signed the same store
path, NAR hash, NAR size and references. The ACL names keys, not where they sign: give each
key's substitute server with --cache. Put the policy in the config of a proxy with a Guix
signing key (docs/guix.md), and authorise only the proxy's key in Guix.

Options:
  --acl FILE         the ACL (default /etc/guix/acl)
  --cache URL=KEY    a substitute server and its key: guix:<the 64 hex digits of q> or the
                     server's public key file (signing-key.pub); once per key of the ACL
  --out FILE         write the policy to FILE instead of standard output

Exit codes: 0 written; 1 the ACL cannot be made a policy (a key without --cache, a key in two
entries, a --cache key not in the ACL); 2 bad usage or an unreadable or malformed file.`,
  options: {
    acl: { type: 'string' },
    cache: { type: 'string', multiple: true },
    out: { type: 'string' },
  },
  run(values) {
    const acl = readOptionFile('--acl', values.acl ?? '/etc/guix/acl', (t) => parseGuixAcl(t));
    const caches = names((values.cache ?? []).map(cacheOption));
    let text: string;
    try {
      text = policyFromGuixAcl(acl, caches);
    } catch (cause) {
      process.stderr.write(`accord policy from-guix-acl: ${(cause as Error).message}\n`);
      return Promise.resolve(EXIT.failure);
    }
    if (values.out === undefined) process.stdout.write(text);
    else writeFileSync(values.out, text);
    return Promise.resolve(EXIT.ok);
  },
});

/** `accord policy <from-guix-acl>`. */
export const policyCommand: Command = {
  summary: 'policy tools: from-guix-acl (a policy from a Guix ACL)',
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'from-guix-acl') return fromGuixAcl.run(rest);
    const help = `Usage: accord policy from-guix-acl [--acl FILE] --cache URL=KEY... [--out FILE]
Run 'accord policy from-guix-acl --help' for options.
`;
    if (sub === '--help' || sub === '-h') {
      process.stdout.write(help);
      return EXIT.ok;
    }
    process.stderr.write(`accord policy: unknown subcommand ${JSON.stringify(sub ?? '')}\n${help}`);
    return EXIT.usage;
  },
};
