/**
 * What one `nix-store --realise --log-format internal-json` call said, told apart per
 * derivation: which derivations Nix started building, each build's last log lines, the error
 * messages naming each one, and the count of builds ended. Nix writes one event a line on
 * standard error, `@nix {json}`; a build's log lines carry the id of its build activity, so
 * builds running side by side are told apart, and error messages are attributed by the
 * derivation they name. Nix 2.8 ends build activities only when the whole call ends, so the
 * count of builds ended comes from its progress results instead.
 *
 * The text is Nix's, but it is still read as untrusted: lines, messages and tails are capped,
 * and a line that is not an event is kept only as the last lines of "other" output.
 */

/** Activity and result types of Nix's internal-json log format (`libutil/logging.hh`). */
const ACT_BUILDS = 104;
const ACT_BUILD = 105;
const RES_BUILD_LOG_LINE = 101;
const RES_PROGRESS = 105;
const LVL_ERROR = 0;

/** The longest line of Nix's output read: longer ones are cut. */
export const MAX_EVENT_LINE = 8000;
/** The longest line kept, the log lines kept per build, the messages kept per derivation. */
export const MAX_BUILD_LOG_LINE = 1000;
const LOG_TAIL = 12;
const MAX_MESSAGES = 8;
const MAX_MESSAGE = 4000;
const OTHER_TAIL = 12;

/** What Nix said of one derivation in the call. */
export interface DerivationLog {
  /** Nix started building (or checking) it. */
  readonly started: boolean;
  /** Error messages naming it and no other derivation of the call. */
  readonly errors: readonly string[];
  /** The last lines its build wrote. */
  readonly log: readonly string[];
}

/** Builds ended so far, as Nix counts them (`failed` of them failed). */
export interface BuildProgress {
  readonly ended: number;
  readonly failed: number;
  readonly expected: number;
}

/** Drops terminal colour codes. */
function plain(text: string): string {
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
}

function cap(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/** Keeps the last `n` of a list it appends to. */
function pushTail(list: string[], text: string, n: number): void {
  list.push(text);
  if (list.length > n) list.shift();
}

interface Entry {
  started: boolean;
  errors: string[];
  log: string[];
}

export class BuildLog {
  private readonly derivations = new Map<string, Entry>();
  /** Build activity id → derivation (only for the derivations of the call). */
  private readonly activities = new Map<number, Entry>();
  private buildsActivity: number | undefined;
  private readonly otherLines: string[] = [];
  private readonly pattern: RegExp;
  private progress: BuildProgress = { ended: 0, failed: 0, expected: 0 };

  /** `derivations`: the `.drv` paths the call builds, under `storeDir`. */
  constructor(derivations: Iterable<string>, storeDir: string) {
    for (const drv of derivations)
      this.derivations.set(drv, { started: false, errors: [], log: [] });
    const dir = storeDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    this.pattern = new RegExp(
      `${dir}/[0-9a-z]{32}-[A-Za-z0-9+\\-._?=]*?\\.drv(?![A-Za-z0-9+\\-._?=])`,
      'g',
    );
  }

  private pending = '';
  private skipping = false;

  /**
   * Reads a piece of Nix's standard error as it comes, cut anywhere; calls `onProgress` when
   * the progress changed. A line longer than {@link MAX_EVENT_LINE} is cut, the rest skipped.
   */
  feed(chunk: string, onProgress?: (progress: BuildProgress) => void): void {
    const text = this.pending + chunk;
    const take = (line: string) => {
      const progress = this.line(line);
      if (progress !== undefined) onProgress?.(progress);
    };
    let from = 0;
    for (let newline; (newline = text.indexOf('\n', from)) >= 0; from = newline + 1) {
      if (!this.skipping) take(text.slice(from, newline));
      this.skipping = false;
    }
    this.pending = text.slice(from);
    if (this.pending.length > MAX_EVENT_LINE) {
      if (!this.skipping) take(this.pending.slice(0, MAX_EVENT_LINE));
      this.skipping = true;
      this.pending = '';
    }
  }

  /** Reads what {@link feed} kept of a last line without a newline. */
  end(): void {
    if (!this.skipping && this.pending !== '') this.line(this.pending);
    this.pending = '';
  }

  /** Reads one line of Nix's standard error; returns the progress when it changed. */
  line(raw: string): BuildProgress | undefined {
    const text = raw.length > MAX_EVENT_LINE ? raw.slice(0, MAX_EVENT_LINE) : raw;
    if (!text.startsWith('@nix ')) {
      if (text.trim() !== '')
        pushTail(this.otherLines, cap(plain(text), MAX_BUILD_LOG_LINE), OTHER_TAIL);
      return undefined;
    }
    let event: unknown;
    try {
      event = JSON.parse(text.slice(5));
    } catch {
      pushTail(this.otherLines, cap(plain(text), MAX_BUILD_LOG_LINE), OTHER_TAIL);
      return undefined;
    }
    if (typeof event !== 'object' || event === null) return undefined;
    const e = event as {
      action?: unknown;
      id?: unknown;
      type?: unknown;
      fields?: unknown;
      level?: unknown;
      msg?: unknown;
    };
    const fields = Array.isArray(e.fields) ? (e.fields as unknown[]) : [];
    if (e.action === 'start' && typeof e.id === 'number') {
      if (e.type === ACT_BUILDS) this.buildsActivity = e.id;
      if (e.type === ACT_BUILD && typeof fields[0] === 'string') {
        const entry = this.derivations.get(fields[0]);
        if (entry !== undefined) {
          entry.started = true;
          this.activities.set(e.id, entry);
        }
      }
      return undefined;
    }
    if (e.action === 'result' && typeof e.id === 'number') {
      if (e.type === RES_BUILD_LOG_LINE && typeof fields[0] === 'string') {
        const entry = this.activities.get(e.id);
        if (entry !== undefined)
          pushTail(entry.log, cap(plain(fields[0]), MAX_BUILD_LOG_LINE), LOG_TAIL);
      }
      if (
        e.type === RES_PROGRESS &&
        e.id === this.buildsActivity &&
        fields.every(Number.isSafeInteger)
      ) {
        const [done = 0, expected = 0, , failed = 0] = fields as number[];
        const next = { ended: done + failed, failed, expected };
        if (next.ended === this.progress.ended && next.expected === this.progress.expected)
          return undefined;
        this.progress = next;
        return next;
      }
      return undefined;
    }
    if (e.action === 'msg' && e.level === LVL_ERROR && typeof e.msg === 'string') {
      const message = cap(plain(e.msg).replace(/^error: /, ''), MAX_MESSAGE);
      // Pinned on a derivation of the call only when it names no other derivation at all.
      const named = new Set(message.match(this.pattern) ?? []);
      const [only] = named;
      const entry = named.size === 1 && only !== undefined ? this.derivations.get(only) : undefined;
      if (entry !== undefined && entry.errors.length < MAX_MESSAGES) entry.errors.push(message);
      else if (entry === undefined) pushTail(this.otherLines, message, OTHER_TAIL);
    }
    return undefined;
  }

  /** What Nix said of `drv` (a derivation of the call). */
  of(drv: string): DerivationLog {
    return this.derivations.get(drv) ?? { started: false, errors: [], log: [] };
  }

  /**
   * Why the build of `drv` failed, for a person: the errors naming it, else the call's other
   * output, then the last lines its build wrote.
   */
  failure(drv: string): string {
    const { errors, log } = this.of(drv);
    const said = errors.length > 0 ? errors : this.otherLines.slice(-4);
    const lines = said.length > 0 ? [...said] : [`Nix did not build ${drv}`];
    if (log.length > 0) lines.push('last log lines:', ...log.map((l) => `> ${l}`));
    return lines.join('\n');
  }

  /** The last lines that were no event, and error messages naming no single derivation. */
  other(): readonly string[] {
    return this.otherLines;
  }
}
