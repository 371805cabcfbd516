/** `accord demo`: runs a complete local Accord network and says what to try. */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { type DemoNetwork, startDemo } from '../demo/index.js';
import { UsageError, defineCommand } from './command.js';
import { runUntilSignal, serviceLogger } from './service.js';

function haveNix(): boolean {
  return spawnSync('nix-build', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** The text printed once the network runs. */
function summary(net: DemoNetwork): string {
  const { builds, proxy, dir } = net;
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  const hash = (p: string) => base(p).slice(0, 32);
  const lines = [
    `Accord demo network — state in ${dir}; Ctrl-C stops it.`,
    '',
    `  proxy      ${proxy.url}   2 of the 3 builders must agree; narinfos signed by ${proxy.publicKey.split(':')[0] ?? ''}`,
    ...net.logs.map(
      (log) =>
        `  ${log.name.padEnd(9)}  ${log.url}   log ${log.origin}${log.name.endsWith('C') ? ' (tampers with one path)' : ''}`,
    ),
    `  witness    ${net.witness.url}   cosigns every log checkpoint`,
    `  monitor    ${net.monitor.url}   follows the logs; open it in a browser for the dashboard`,
    '',
    'To use the proxy, in nix.conf (with a nix-daemon, also add the URL to trusted-substituters):',
    `  extra-substituters = ${proxy.url}`,
    `  extra-trusted-public-keys = ${proxy.publicKey}`,
    '',
  ];
  const app = builds.app.claim.storePath;
  const tampered = builds.tampered.claim.storePath;
  const single = builds.single.claim.storePath;
  if (builds.withNix) {
    const nix = `nix-store --store ${resolve(dir, 'try')} --option substituters ${proxy.url} --option trusted-public-keys ${proxy.publicKey} -r`;
    lines.push(
      `Try it with Nix (into a store of its own under ${dir}, so /nix/store is not touched):`,
      `  ${nix} ${app}`,
      '    fetched: all three builders claim the same NAR for it and for the library it refers to',
      `  ${nix} ${tampered}`,
      "    fetched, with the honest bytes: builders A and B agree; builder C's log and cache (the",
      '    cache the proxy tries first) hold other bytes, which the proxy never passes on',
      `  ${nix} ${single}`,
      '    refused: only builder A claims it, and the policy wants 2 of 3',
    );
  } else {
    lines.push(
      'No Nix here: these paths are generated and cannot be realised; ask the proxy directly:',
      `  curl ${proxy.url}/${hash(app)}.narinfo        served: all three builders agree`,
      `  curl ${proxy.url}/${hash(tampered)}.narinfo   served with A and B's NAR hash, not C's`,
      `  curl ${proxy.url}/${hash(single)}.narinfo     404: only builder A claims it`,
    );
  }
  lines.push(
    '',
    'Why, with every piece of evidence:',
    `  curl ${proxy.url}/explain/${hash(tampered)}`,
    `  curl ${net.monitor.url}/paths/${hash(tampered)}   builder C is in the minority`,
    `  ${net.monitor.url}/paths/${hash(tampered)} in a browser: the same, with the file C changed`,
    '',
  );
  return lines.join('\n');
}

/** The network as JSON, for scripts (and the end-to-end test). */
function json(net: DemoNetwork): string {
  const path = (p: { claim: { storePath: string } }) => p.claim.storePath;
  const { builds } = net;
  return `${JSON.stringify({
    dir: net.dir,
    withNix: builds.withNix,
    proxy: net.proxy,
    logs: net.logs,
    witness: net.witness,
    monitor: net.monitor,
    paths: {
      app: path(builds.app),
      lib: path(builds.lib),
      tampered: path(builds.tampered),
      single: path(builds.single),
    },
  })}\n`;
}

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'run a complete local Accord network (3 builder logs, witness, monitor, proxy)',
  help: `Usage: accord demo [--dir DIR] [--port-base N] [--no-nix] [--json]

Runs a whole Accord network on loopback, every server on its embedded defaults (SQLite), with
all state in one directory: three builder logs cosigned by a witness, each builder's binary
cache, a monitor following the logs, and a proxy that serves a path only when 2 of the 3
builders agree. With Nix present it builds four small derivations with real Nix; builder C
tampers with one of them (its cache and its log hold other bytes) and only builder A has
another. Then it prints the nix.conf lines and the nix-store commands to try, with what each
will do and why. Without Nix it says so and runs the network on generated claims. Ctrl-C
stops every server cleanly; running it again reuses the directory (keys, logs, caches).

Options:
  --dir DIR          where state lives (default ./accord-demo)
  --port-base N      the proxy listens on N, the builder logs on N+1..N+3, the witness on
                     N+4, the monitor on N+5 (default 8780; 0: any free ports)
  --no-nix           generated claims even when Nix is present
  --json             print the network (URLs, keys, store paths) as one JSON line
  --log-level LEVEL  the servers' logs on standard error (default warn)

Exit codes: 0 stopped by a signal; 1 the network could not start; 2 bad usage.`,
  options: {
    dir: { type: 'string' },
    'port-base': { type: 'string' },
    'no-nix': { type: 'boolean' },
    json: { type: 'boolean' },
    'log-level': { type: 'string' },
  },
  async run(values) {
    const portBase = Number(values['port-base'] ?? 8780);
    if (!Number.isSafeInteger(portBase) || portBase < 0 || portBase > 65530)
      throw new UsageError('--port-base wants a port number (0 to 65530)');
    const level = values['log-level'] ?? 'warn';
    serviceLogger(level, 'accord-demo');
    const withNix = values['no-nix'] !== true && haveNix();
    const quiet = values.json === true;
    const say = (text: string) => {
      if (!quiet) process.stderr.write(`accord demo: ${text}\n`);
    };
    if (!withNix && values['no-nix'] !== true)
      say('Nix is not installed: running on generated claims');
    const net = await startDemo({
      dir: resolve(values.dir ?? 'accord-demo'),
      portBase,
      withNix,
      logger: (name) => serviceLogger(level, `accord-demo-${name}`),
      onStep: say,
    });
    process.stdout.write(quiet ? json(net) : summary(net));
    return runUntilSignal(net, serviceLogger(level, 'accord-demo'));
  },
});
