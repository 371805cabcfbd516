/** Shared plumbing for subcommands: option parsing, uniform --help, errors to exit codes. */
import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type TlogPolicy, parseTlogPolicy } from '../tlog/index.js';

/** Exit codes every command uses. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Thrown for a usage error: printed with a hint and exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Reads the file an option names and parses it (`parse` gets its text); a file that cannot be
 * read or parsed is a usage error naming the option, the file and what was wrong.
 */
export function readOptionFile<T = string>(
  flag: string,
  path: string,
  parse: (text: string) => T = (text) => text as T,
): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
    throw new UsageError(`${flag} ${path}: ${why ?? 'cannot be read'}`);
  }
  try {
    return parse(text);
  } catch (cause) {
    throw new UsageError(`${flag} ${path}: ${(cause as Error).message}`);
  }
}

/**
 * Reads a file of C2SP tlog-policy lines (`log`, `witness`, `group`) that option `flag` names;
 * without a `quorum` line it is `quorum none`.
 */
export function readTlogPolicyFile(flag: string, path: string): TlogPolicy {
  return readOptionFile(flag, path, (text) =>
    parseTlogPolicy(/^\s*quorum\s/m.test(text) ? text : `${text}\nquorum none\n`),
  );
}

/** A subcommand: its one-line summary and its entry point. */
export interface Command {
  readonly summary: string;
  run(argv: readonly string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Defines a command from its help text, options and body. */
export function defineCommand<O extends Options>(spec: {
  readonly name: string;
  readonly summary: string;
  /** Help text after the summary: usage line, arguments, options. */
  readonly help: string;
  readonly options: O;
  readonly positionals?: { min: number; max: number };
  run(
    values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true }>>['values'],
    positionals: string[],
  ): Promise<number>;
}): Command {
  return {
    summary: spec.summary,
    async run(argv) {
      let parsed;
      try {
        parsed = parseArgs({
          args: [...argv],
          options: { ...spec.options, help: { type: 'boolean', short: 'h' } },
          allowPositionals: true,
          strict: true,
        });
      } catch (e) {
        return usage(spec.name, parseErrorMessage(e, Object.keys(spec.options)));
      }
      const { min, max } = spec.positionals ?? { min: 0, max: 0 };
      // Too many arguments is a mistake even with --help (`accord proxy serve` for `accord proxy`).
      if (parsed.positionals.length > max) {
        const what = max === 0 ? 'takes no arguments' : `takes at most ${max} argument(s)`;
        return usage(spec.name, `${what}: ${JSON.stringify(parsed.positionals[max])} is not one`);
      }
      if ((parsed.values as { help?: boolean }).help === true) {
        process.stdout.write(`accord ${spec.name} — ${spec.summary}\n\n${spec.help.trim()}\n`);
        return EXIT.ok;
      }
      if (parsed.positionals.length < min) {
        return usage(spec.name, `expected ${min === max ? min : `${min} to ${max}`} argument(s)`);
      }
      try {
        return await spec.run(parsed.values, parsed.positionals);
      } catch (e) {
        if (e instanceof UsageError) return usage(spec.name, e.message);
        process.stderr.write(
          `accord ${spec.name}: ${e instanceof Error ? e.message : String(e)}\n`,
        );
        return EXIT.failure;
      }
    },
  };
}

/** The edit distance between two short strings (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + cost);
    }
    row = next;
  }
  return row[b.length] ?? 0;
}

/** The known word nearest to `word`, if one is near enough to be what was meant. */
export function nearest(word: string, known: readonly string[]): string | undefined {
  let best: { word: string; d: number } | undefined;
  for (const k of known) {
    const d = k.startsWith(word) && word.length >= 3 ? 1 : distance(word, k);
    if (d <= Math.max(1, Math.floor(k.length / 3)) && (best === undefined || d < best.d))
      best = { word: k, d };
  }
  return best?.word;
}

/** A parse error in one line: an unknown option names the nearest known one. */
function parseErrorMessage(error: unknown, options: readonly string[]): string {
  const e = error as Error & { code?: string };
  const unknown = /^Unknown option '(-{1,2})([^']*)'/.exec(e.message);
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown !== null) {
    const name = unknown[2] ?? '';
    const near = nearest(name, [...options, 'help']);
    return `unknown option ${unknown[1] ?? ''}${name}${near === undefined ? '' : ` (did you mean --${near}?)`}`;
  }
  return e.message;
}

function usage(name: string, message: string): number {
  process.stderr.write(`accord ${name}: ${message}\nRun 'accord ${name} --help' for usage.\n`);
  return EXIT.usage;
}
