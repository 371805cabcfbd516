/** The error type of the policy module. */

/** Thrown for an invalid policy file; `message` names the line and the problem. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  readonly code = 'malformed' as const;
}
