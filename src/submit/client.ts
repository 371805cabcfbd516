/** Talking to a log's POST /submit, with a deadline on every request. */
import type { ClaimJson } from '../claim/index.js';

/**
 * Why a submission failed, which says what to do with its claims:
 * - `transient`: the log is down, slow or overloaded (no answer, 408, 429, 5xx): keep and retry;
 * - `refused`: the log refused these claims for good (400, 413, 422): retrying cannot help, so a
 *   claim it refuses alone is set aside, never left to block the ones after it;
 * - `setup`: the request cannot succeed until someone fixes the set-up (401 or 403: the token;
 *   404, 405, 415: the URL is not a log's): keep and retry once fixed.
 */
export type SubmitErrorKind = 'transient' | 'refused' | 'setup';

/** The kind of failure an HTTP status from POST /submit means. */
export function statusKind(status: number): SubmitErrorKind {
  if (status === 400 || status === 413 || status === 422) return 'refused';
  if (status === 401 || status === 403 || status === 404 || status === 405 || status === 415)
    return 'setup';
  return 'transient';
}

const SETUP_HINTS: Record<number, string> = {
  401: "check --token-file against the log's submitters file",
  403: "this builder's token is revoked in the log's submitters file",
  404: 'check --log: it names no Accord log',
  405: 'check --log: it names no Accord log',
  415: 'check --log: it names no Accord log',
};

/** A failed submission; `status` is the HTTP status when the log answered. */
export class SubmitError extends Error {
  override readonly name = 'SubmitError';
  readonly kind: SubmitErrorKind;
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.kind = status === undefined ? 'transient' : statusKind(status);
  }
}

/** Where and how to submit. */
export interface LogEndpoint {
  /** The log's base URL (its /submit is used). */
  readonly url: string;
  readonly token: string;
  /** Deadline for one request, in milliseconds (default 5000). */
  readonly timeoutMs?: number;
}

/** Submits claims in one request and returns their indexes; throws {@link SubmitError}. */
export async function submitClaims(
  endpoint: LogEndpoint,
  claims: readonly ClaimJson[],
): Promise<number[]> {
  const url = `${endpoint.url.replace(/\/+$/, '')}/submit`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { Authorization: `Bearer ${endpoint.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ claims }),
      signal: AbortSignal.timeout(endpoint.timeoutMs ?? 5000),
    });
  } catch (cause) {
    const why =
      cause instanceof Error && cause.name === 'TimeoutError' ? 'timed out' : 'unreachable';
    throw new SubmitError(`log ${endpoint.url} ${why}`, undefined, { cause });
  }
  const text = await res.text();
  if (!res.ok) {
    const hint = SETUP_HINTS[res.status];
    const reason = text.trim().slice(0, 500);
    throw new SubmitError(
      `log refused the claims: HTTP ${res.status}: ${reason}${hint === undefined ? '' : ` (${hint})`}`,
      res.status,
    );
  }
  let indexes: unknown;
  try {
    indexes = (JSON.parse(text) as { indexes?: unknown }).indexes;
  } catch {
    indexes = undefined;
  }
  if (
    !Array.isArray(indexes) ||
    indexes.length !== claims.length ||
    !indexes.every(Number.isSafeInteger)
  ) {
    throw new SubmitError('log answered without an index for every claim');
  }
  return indexes as number[];
}
