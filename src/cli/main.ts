/** `accord <command>`: dispatches to a command; exit codes are listed in `accord --help`. */
import { type Command, EXIT, nearest } from './command.js';
import { packageVersion } from './version.js';

/**
 * The commands, each loaded when it runs: a command pays for its own modules only (what
 * `accord submit` from a post-build hook pays a build, measured in docs/benchmarks.md).
 */
const commands = new Map<string, () => Promise<Command>>([
  ['audit', async () => (await import('./audit.js')).auditCommand],
  ['demo', async () => (await import('./demo.js')).demoCommand],
  ['explain', async () => (await import('./proxy.js')).explainCommand],
  ['identity', async () => (await import('./identity.js')).identityCommand],
  ['keygen', async () => (await import('./keygen.js')).keygenCommand],
  ['log', async () => (await import('./log.js')).logCommand],
  ['monitor', async () => (await import('./monitor.js')).monitorCommand],
  ['nar', async () => (await import('./nar.js')).narCommand],
  ['policy', async () => (await import('./policy.js')).policyCommand],
  ['proxy', async () => (await import('./proxy.js')).proxyCommand],
  ['rebuild', async () => (await import('./rebuild.js')).rebuildCommand],
  ['submit', async () => (await import('./submit.js')).submitCommand],
  ['verify', async () => (await import('./verify.js')).verifyCommand],
  ['verify-evidence', async () => (await import('./evidence.js')).verifyEvidenceCommand],
  ['witness', async () => (await import('./witness.js')).witnessCommand],
]);

async function help(): Promise<string> {
  const width = Math.max(0, ...[...commands.keys()].map((k) => k.length));
  const list = (
    await Promise.all(
      [...commands].map(
        async ([name, load]) => `  ${name.padEnd(width)}  ${(await load()).summary}`,
      ),
    )
  ).join('\n');
  return `accord — k-of-n trust for Nix and Guix binary caches, on C2SP transparency logs

Usage: accord <command> [options]
       accord --help | --version

Commands:
${list}

Run 'accord <command> --help' for a command's options.

Exit codes: 0 success, 1 the command failed, 2 bad usage, 3 the monitor has findings
(accord monitor report, serve --once, path), items failed to rebuild (accord rebuild) or an
identity's statements are refused (accord identity show).
accord audit: 1 some path's trust no longer holds, 3 the store could not be read.
`;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(await help());
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write(`accord ${packageVersion()}\n`);
    return EXIT.ok;
  }
  const load = commands.get(first);
  if (load === undefined) {
    const near = nearest(first, [...commands.keys()]);
    process.stderr.write(
      `accord: unknown command ${JSON.stringify(first)}${near === undefined ? '' : ` (did you mean '${near}'?)`}; see 'accord --help'\n`,
    );
    return EXIT.usage;
  }
  return (await load()).run(rest);
}
