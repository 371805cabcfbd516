/**
 * The data each dashboard page shows: plain values (hashes and store paths as strings, times
 * in ms since the epoch), made by the monitor from its verified state. Each page's JSON is this
 * model, so what a script reads is exactly what a person sees.
 */
import type { ClaimJson } from '../claim/index.js';

/** One builder log on the overview. */
export interface LogSummary {
  readonly origin: string;
  readonly url: string;
  /** The size of the tree the monitor verified (0 before a first checkpoint). */
  readonly treeSize: number;
  /** When the monitor verified its latest checkpoint, if it has. */
  readonly verifiedAt: number | null;
  /** The names of the policy's witnesses whose cosignature the checkpoint carries, and whether they make the quorum. */
  readonly cosigners: readonly string[];
  readonly witnessed: boolean;
  /** The newest cosignature's time, if any. */
  readonly cosignedAt: number | null;
  /** Store paths the log claims (verified), paths another log claims too, and of those the ones where it agrees with every other log. */
  readonly claims: number;
  readonly shared: number;
  readonly agreeing: number;
  /** The last poll's error, if it failed. */
  readonly error: string | null;
}

/** Of the paths two or more builders claimed, how many they all agree on, at a time. */
export interface ReproPoint {
  readonly at: number;
  readonly shared: number;
  readonly agreeing: number;
}

export interface OverviewModel {
  readonly generatedAt: number;
  readonly storeDir: string;
  readonly logs: readonly LogSummary[];
  /** Distinct store paths claimed, and the paths two or more logs claim. */
  readonly paths: number;
  readonly reproducibility: ReproPoint;
  readonly history: readonly ReproPoint[];
  readonly findings: Readonly<Record<string, number>>;
}

/** One log's claim about a path, as the path page lists it. */
export interface PathClaim extends ClaimJson {
  readonly log: string;
  readonly index: number;
  /** The verified tree the claim is in: the entry is a leaf of it (the monitor hashed it). */
  readonly treeSize: number;
  /** The answer digest; equal digests are equal answers (NAR hash, size and references). */
  readonly answer: string;
  readonly inMajority: boolean;
}

/** A file-level comparison of two builders' NARs for one path. */
export interface NarDiff {
  /** The two answers compared, with a log claiming each and the cache the NAR came from. */
  readonly sides: readonly [NarSide, NarSide];
  /** Entries that differ (path below the store path, '' for the root), at most a bounded number. */
  readonly entries: readonly NarEntryDiff[];
  /** More differing entries than listed. */
  readonly truncated: boolean;
}

export interface NarSide {
  readonly log: string;
  readonly narHash: string;
  readonly cache: string;
}

/** What an archive entry is: its type, and for a file its size, digest and executable bit. */
export interface NarEntry {
  readonly type: 'regular' | 'directory' | 'symlink';
  readonly size?: number;
  readonly sha256?: string;
  readonly executable?: boolean;
  readonly target?: string;
}

export interface NarEntryDiff {
  readonly path: string;
  /** Absent on the side that lacks it. */
  readonly a?: NarEntry;
  readonly b?: NarEntry;
  /** A line diff for small text files (lines prefixed with ' ', '-', '+'). */
  readonly textDiff?: readonly string[];
}

/** Why a file-level comparison is not shown. */
export interface NarDiffUnavailable {
  readonly status: 'pending' | 'failed' | 'no-cache';
  readonly reason: string;
}

export interface PathModel {
  readonly hashPart: string;
  /** True when every claim has the same answer. */
  readonly agree: boolean;
  readonly storePath: string | null;
  readonly claims: readonly PathClaim[];
  /** Each answer with its logs, most logs first. */
  readonly answers: readonly {
    readonly answer: string;
    readonly narHash: string;
    readonly narSize: number;
    readonly references: readonly string[];
    readonly logs: readonly string[];
  }[];
  readonly majority: string | null;
  readonly minority: readonly string[];
  /** The monitor's policy applied to the verified claims: the decision `accord explain` makes. */
  readonly decision: { readonly verdict: string; readonly reason: string; readonly rule: string };
  readonly demand: {
    readonly requests: number;
    readonly refused: number;
    readonly reporters: number;
  } | null;
  /** The failed rebuilds rebuilders reported (null: none): a failure is not a claim. */
  readonly failures: {
    /** Failed attempts, and the rebuilders they came from. */
    readonly attempts: number;
    readonly builders: number;
    /** The newest attempts: the rebuilder (its log's origin), when (ms) and why. */
    readonly recent: readonly {
      readonly builder: string;
      readonly at: number;
      readonly reason: string;
    }[];
  } | null;
  readonly diff: NarDiff | NarDiffUnavailable | null;
  readonly findings: readonly {
    readonly id: number;
    readonly kind: string;
    readonly summary: string;
  }[];
}

export type ClosureStatus = 'agreed' | 'disputed' | 'too-few' | 'unclaimed';

export interface ClosurePath {
  readonly hashPart: string;
  readonly storePath: string;
  readonly status: ClosureStatus;
  /** Logs behind the majority answer (or every claiming log when there is none). */
  readonly logs: readonly string[];
  readonly answers: number;
  /** The derivation a claim names for it (full path), when one does: what a rebuilder builds. */
  readonly deriver: string | null;
}

export interface ClosureModel {
  readonly root: string;
  readonly k: number;
  /** The closure as the majority answers' references give it, root first. */
  readonly paths: readonly ClosurePath[];
  readonly counts: Readonly<Record<ClosureStatus, number>>;
  /** The walk stopped at this many paths. */
  readonly truncated: boolean;
}

export interface FindingRow {
  readonly id: number;
  readonly kind: string;
  readonly summary: string;
  readonly at: number;
  readonly updated: number;
  /** The store path's hash part, for findings about a path. */
  readonly hashPart: string | null;
}

export interface FindingsModel {
  readonly findings: readonly FindingRow[];
  readonly counts: Readonly<Record<string, number>>;
}

/** A store path's demand summed across reporters. */
export interface DemandRow {
  readonly hashPart: string;
  /** The full store path, when a reporter named it; else null. */
  readonly storePath: string | null;
  readonly requests: number;
  readonly refused: number;
  /** How many reporters asked for it. */
  readonly reporters: number;
  /** Start of the latest period it was reported in (POSIX seconds, as demand reports say). */
  readonly lastPeriod: number;
}

/** The demand as a whole, and its most requested paths. */
export interface DemandModel {
  /** Reporters whose reports were accepted. */
  readonly reporters: number;
  /** Distinct periods reported. */
  readonly periods: number;
  readonly paths: readonly DemandRow[];
}

/** A path in the wanted list. */
export interface WantedRow extends DemandRow {
  /** The derivers the logs' claims name (full paths, sorted), when any. */
  readonly derivers: readonly string[];
  /** How many logs agree on the majority answer (0: no claim, or no majority). */
  readonly claims: number;
  /** Failed attempts to rebuild it that rebuilders reported. */
  readonly failures: number;
}

export interface WantedModel {
  readonly k: number;
  readonly paths: readonly WantedRow[];
}
