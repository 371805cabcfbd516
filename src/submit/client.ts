/** Talking to a log's POST /submit, with a deadline on every request. */
import type { ClaimJson } from '../claim/index.js';

/** A failed submission; `status` is the HTTP status when the log answered. */
export class SubmitError extends Error {
  override readonly name = 'SubmitError';
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
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
  if (!res.ok)
    throw new SubmitError(`log refused the claims: HTTP ${res.status}: ${text.trim()}`, res.status);
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
