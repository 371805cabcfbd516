/** The proxy's error type: why a NAR request gets no NAR (to Nix, every one is a 404). */

/**
 * - `no-nar`: no trusted NAR with this hash, or no configured upstream has the agreed one;
 * - `unavailable`: the upstream that has it failed to deliver it (down, slow, cut).
 */
export type ProxyErrorCode = 'no-nar' | 'unavailable';

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  constructor(
    readonly code: ProxyErrorCode,
    message: string,
  ) {
    super(message);
  }
}
