/** `accord nar dump|hash PATH`: NAR serialisation and hashing, to check Accord against Nix. */
import { once } from 'node:events';
import { hashNarPath, narSourceFromPath } from '../host/index.js';
import { formatHash, writeNar } from '../nix/index.js';
import { type Command, EXIT, defineCommand } from './command.js';

const dump = defineCommand({
  name: 'nar dump',
  summary: 'write the NAR serialisation of PATH to standard output',
  help: `Usage: accord nar dump PATH

Writes PATH (a file, symlink or directory, not followed if a symlink) as a Nix archive,
byte-identical to 'nix-store --dump PATH'.`,
  options: {},
  positionals: { min: 1, max: 1 },
  async run(_, [path]) {
    const out = process.stdout;
    for (const chunk of writeNar(narSourceFromPath(path ?? ''))) {
      if (!out.write(chunk)) await once(out, 'drain');
    }
    return EXIT.ok;
  },
});

const hash = defineCommand({
  name: 'nar hash',
  summary: 'print the NAR hash and size of PATH',
  help: `Usage: accord nar hash [--json] PATH

Prints 'sha256:<nix32> <NAR size>', the hash 'nix hash path PATH' prints and the size of
'nix-store --dump PATH'.

Options:
  --json    print {"narHash": "sha256:…", "narSize": N}`,
  options: { json: { type: 'boolean' } },
  positionals: { min: 1, max: 1 },
  run(values, [path]) {
    const { narHash, narSize } = hashNarPath(path ?? '');
    const text = formatHash(narHash);
    process.stdout.write(
      values.json === true
        ? `${JSON.stringify({ narHash: text, narSize })}\n`
        : `${text} ${narSize}\n`,
    );
    return Promise.resolve(EXIT.ok);
  },
});

/** `accord nar <dump|hash>`. */
export const narCommand: Command = {
  summary: 'NAR tools: dump PATH, hash PATH',
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'dump') return dump.run(rest);
    if (sub === 'hash') return hash.run(rest);
    const help = `Usage: accord nar dump PATH | accord nar hash [--json] PATH\n`;
    if (sub === '--help' || sub === '-h') {
      process.stdout.write(help);
      return EXIT.ok;
    }
    process.stderr.write(`accord nar: unknown subcommand ${JSON.stringify(sub ?? '')}\n${help}`);
    return EXIT.usage;
  },
};
