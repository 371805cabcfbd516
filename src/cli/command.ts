/** Shared plumbing for subcommands: option parsing, uniform --help, errors to exit codes. */
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** Exit codes every command uses. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Thrown for a usage error: printed with a hint and exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
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
        return usage(spec.name, (e as Error).message);
      }
      if ((parsed.values as { help?: boolean }).help === true) {
        process.stdout.write(`accord ${spec.name} — ${spec.summary}\n\n${spec.help.trim()}\n`);
        return EXIT.ok;
      }
      const { min, max } = spec.positionals ?? { min: 0, max: 0 };
      if (parsed.positionals.length < min || parsed.positionals.length > max) {
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

function usage(name: string, message: string): number {
  process.stderr.write(`accord ${name}: ${message}\nRun 'accord ${name} --help' for usage.\n`);
  return EXIT.usage;
}
