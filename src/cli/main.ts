/** `accord <command>`: dispatches to a command; exit codes are listed in `accord --help`. */
import { auditCommand } from './audit.js';
import { type Command, EXIT, nearest } from './command.js';
import { demoCommand } from './demo.js';
import { verifyEvidenceCommand } from './evidence.js';
import { identityCommand } from './identity.js';
import { keygenCommand } from './keygen.js';
import { logCommand } from './log.js';
import { monitorCommand } from './monitor.js';
import { narCommand } from './nar.js';
import { policyCommand } from './policy.js';
import { explainCommand, proxyCommand } from './proxy.js';
import { rebuildCommand } from './rebuild.js';
import { submitCommand } from './submit.js';
import { verifyCommand } from './verify.js';
import { witnessCommand } from './witness.js';
import { packageVersion } from './version.js';

const commands = new Map<string, Command>([
  ['audit', auditCommand],
  ['demo', demoCommand],
  ['explain', explainCommand],
  ['identity', identityCommand],
  ['keygen', keygenCommand],
  ['log', logCommand],
  ['monitor', monitorCommand],
  ['nar', narCommand],
  ['policy', policyCommand],
  ['proxy', proxyCommand],
  ['rebuild', rebuildCommand],
  ['submit', submitCommand],
  ['verify', verifyCommand],
  ['verify-evidence', verifyEvidenceCommand],
  ['witness', witnessCommand],
]);

function help(): string {
  const width = Math.max(0, ...[...commands.keys()].map((k) => k.length));
  const list =
    commands.size === 0
      ? '  (none yet)'
      : [...commands].map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`).join('\n');
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
    process.stdout.write(help());
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write(`accord ${packageVersion()}\n`);
    return EXIT.ok;
  }
  const command = commands.get(first);
  if (command === undefined) {
    const near = nearest(first, [...commands.keys()]);
    process.stderr.write(
      `accord: unknown command ${JSON.stringify(first)}${near === undefined ? '' : ` (did you mean '${near}'?)`}; see 'accord --help'\n`,
    );
    return EXIT.usage;
  }
  return command.run(rest);
}
