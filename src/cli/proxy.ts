/** `accord proxy` and `accord explain`. */
import { formatHash } from '../nix/index.js';
import { describeRule } from '../policy/index.js';
import {
  type Resolution,
  explainJson,
  headline,
  loadProxyConfig,
  openResolver,
  startProxy,
} from '../proxy/index.js';
import { lockStore } from '../db/index.js';
import { parseListen, silentLogger } from '../server/index.js';
import { hashPartOf } from '../submit/index.js';
import { EXIT, UsageError, defineCommand } from './command.js';
import { runUntilSignal, serviceLogger } from './service.js';

export const proxyCommand = defineCommand({
  name: 'proxy',
  summary: 'serve Nix (or Guix) the paths k of n builders or caches agree on',
  help: `Usage: accord proxy --config FILE [--listen HOST:PORT] [--log-level LEVEL]

A local Nix binary cache (substituter). For each narinfo Nix asks for, it looks the path up in
every builder log of the policy and reads every cache's signed narinfo (in parallel, with
deadlines), verifies each answer's proof, checkpoint or signature, decides by the policy's
k-of-n rule, finds an upstream cache holding the agreed NAR, and answers a narinfo signed with
the proxy's own key, carrying its evidence; NARs are streamed with their hash verified.
Anything not trusted is a 404, never a 5xx. See docs/proxy.md for the config file. With a Guix
signing key it serves Guix clients instead (docs/guix.md).

Point Nix at it and trust only its key:
  substituters = http://127.0.0.1:8081
  trusted-public-keys = <the proxy key's public half>

Options:
  --config FILE       the proxy's TOML config (required)
  --listen HOST:PORT  override the config's listen address
  --log-level LEVEL   debug, info, warn or error (default info)`,
  options: {
    config: { type: 'string' },
    listen: { type: 'string' },
    'log-level': { type: 'string' },
  },
  async run(values) {
    if (values.config === undefined) throw new UsageError('--config FILE is required');
    const logger = serviceLogger(values['log-level'], 'accord-proxy');
    const config = loadProxyConfig(values.config);
    if (values.listen !== undefined) parseListen(values.listen);
    lockStore({ kind: 'sqlite', path: config.statePath });
    const service = await startProxy(config, logger, values.listen);
    process.stdout.write(`${service.url}\n`);
    return runUntilSignal(service, logger);
  },
});

function describe(path: string, r: Resolution, policyRule: string): string {
  const d = r.decision;
  const lines = [
    `${path}: ${d.verdict.toUpperCase()} — ${headline(r)}`,
    `policy: ${policyRule}`,
    'answers:',
  ];
  if (d.answers.length === 0) lines.push('  (none)');
  for (const a of d.answers) {
    const refs = a.answer.references.length;
    lines.push(
      `  ${a.answer.narHash} ${a.answer.narSize} bytes, ${refs} reference${refs === 1 ? '' : 's'}: ` +
        a.supporters.map((m) => (a.bySignature.includes(m) ? `${m} (signature)` : m)).join(', ') +
        (a.satisfied ? ' (satisfies the policy)' : ''),
    );
  }
  if (d.caches.length > 0) {
    lines.push(
      'caches (a signature is weaker evidence than a log claim: a cache can sign different things for different people, unseen):',
    );
    for (const cache of d.caches) {
      if (cache.status === 'missing') {
        lines.push(`  ${cache.cache}: missing — ${cache.reason}`);
        continue;
      }
      const votes = cache.votes.map((v) => `${formatHash(v.claim.narHash)} signed by ${v.key}`);
      const how =
        cache.stored === true ? 'verified earlier (cache unreachable now)' : 'verified now';
      lines.push(
        `  ${cache.cache}: ${votes.length === 0 ? 'no signature' : votes.join('; ')} — ${how}`,
      );
    }
  }
  if (d.logs.length > 0) lines.push('logs:');
  for (const log of d.logs) {
    if (log.status === 'missing') {
      lines.push(`  ${log.origin}: missing — ${log.reason}`);
      continue;
    }
    const claims = log.claims.map(
      (c) => `${formatHash(c.claim.narHash)} at index ${c.index} (checkpoint size ${c.treeSize})`,
    );
    const how = log.stored === true ? 'verified earlier (log unreachable now)' : 'verified now';
    lines.push(`  ${log.origin}: ${claims.length === 0 ? 'no claim' : claims.join('; ')} — ${how}`);
    for (const e of log.excluded ?? [])
      lines.push(`    not counted: the claim at index ${e.index}: ${e.reason}`);
  }
  if (r.upstreams !== undefined && r.upstreams.length > 0) {
    lines.push('upstream caches:');
    for (const u of r.upstreams)
      lines.push(`  ${u.upstream}: ${u.outcome}${u.detail === undefined ? '' : ` (${u.detail})`}`);
  }
  return `${lines.join('\n')}\n`;
}

export const explainCommand = defineCommand({
  name: 'explain',
  summary: 'show why the proxy would serve or refuse a store path',
  help: `Usage: accord explain --config FILE [--json] STORE-PATH

Runs the proxy's decision for STORE-PATH (a store path, base name or hash part) with the
proxy's config and state — asking the logs now, and using the claims verified earlier for logs
that do not answer — and prints the verdict with all its evidence: which logs claimed what, at
which checkpoint, which caches' signatures were verified (a weaker vote than a log claim), which
were missing and why.

Options:
  --config FILE   the proxy's TOML config (required)
  --json          print the decision as JSON

Exit codes: 0 the path would be served; 1 it would be refused; 2 bad usage.`,
  options: { config: { type: 'string' }, json: { type: 'boolean' } },
  positionals: { min: 1, max: 1 },
  async run(values, [path]) {
    if (values.config === undefined) throw new UsageError('--config FILE is required');
    const hashPart = hashPartOf(path ?? '');
    if (hashPart === undefined) throw new UsageError(`${JSON.stringify(path)} names no store path`);
    const config = loadProxyConfig(values.config);
    const { state, resolver } = openResolver(config, silentLogger);
    try {
      const r = await resolver.resolve(hashPart);
      if (values.json === true) {
        process.stdout.write(`${JSON.stringify(explainJson(r), null, 2)}\n`);
      } else {
        process.stdout.write(describe(path ?? hashPart, r, describeRule(config.policy.decide)));
      }
      return r.narinfo === undefined ? EXIT.failure : EXIT.ok;
    } finally {
      state.close();
    }
  },
});
