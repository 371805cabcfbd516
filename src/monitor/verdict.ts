/** Who claims what about one store path: its answers, the logs behind each, and the majority. */
import { claimToJson, parseEntry } from '../claim/index.js';

/** One answer about a path (NAR hash, size and references) and the logs that claim it. */
export interface AnswerGroup {
  /** The answer digest ({@link answerDigest} in hex). */
  readonly answer: string;
  readonly narHash: string;
  readonly narSize: number;
  readonly references: readonly string[];
  /** Origins, sorted. */
  readonly logs: readonly string[];
}

export interface Verdict {
  /** Most logs first (then by answer digest). */
  readonly groups: readonly AnswerGroup[];
  /** The answer claimed by more logs than any other; undefined on a tie. */
  readonly majority?: AnswerGroup;
  /**
   * The logs claiming an answer other than the majority's, sorted; a log claiming both (it
   * equivocates) is in the majority and here. Empty when there is no majority.
   */
  readonly minority: readonly string[];
}

/**
 * Groups verified claims about one path by answer. Each log counts once for each answer it
 * claims, however many times it claims it. The entries are verified, so they parse.
 */
export function verdict(
  claims: readonly { readonly origin: string; readonly answer: string; readonly entry: string }[],
  storeDir: string,
): Verdict {
  const byAnswer = new Map<string, { entry: string; logs: Set<string> }>();
  for (const c of claims) {
    const group = byAnswer.get(c.answer) ?? { entry: c.entry, logs: new Set<string>() };
    group.logs.add(c.origin);
    byAnswer.set(c.answer, group);
  }
  const groups = [...byAnswer]
    .map(([answer, { entry, logs }]) => {
      const { narHash, narSize, references } = claimToJson(parseEntry(entry, storeDir));
      return { answer, narHash, narSize, references, logs: [...logs].sort() };
    })
    .sort((a, b) => b.logs.length - a.logs.length || (a.answer < b.answer ? -1 : 1));
  const [first, second] = groups;
  const majority =
    first !== undefined && (second === undefined || first.logs.length > second.logs.length)
      ? first
      : undefined;
  const minority =
    majority === undefined ? [] : [...new Set(groups.slice(1).flatMap((g) => g.logs))].sort();
  return majority === undefined ? { groups, minority } : { groups, majority, minority };
}
