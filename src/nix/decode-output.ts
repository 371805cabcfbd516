/**
 * The contract every decoder in `decompress` meets, and the one place that enforces the output
 * cap: decoders put each piece of output into a `DecodeOutput`, which throws once the total
 * passes the cap, so a decoder stops at the first piece beyond it.
 */
import { NixError } from './errors.js';

/** Output of one decode, capped at `max` bytes in total. */
export class DecodeOutput {
  /** Bytes produced so far (counting the piece that went past the cap, if any). */
  total = 0;
  private pieces: Uint8Array[] = [];

  constructor(readonly max: number) {}

  /** Adds a piece of output; throws `NixError('limit')` once the total exceeds `max`. */
  push(piece: Uint8Array): void {
    this.total += piece.length;
    if (this.total > this.max) throw this.overLimit();
    if (piece.length > 0) this.pieces.push(piece);
  }

  /** The pieces added since the last call. */
  take(): Uint8Array[] {
    return this.pieces.splice(0);
  }

  /** The error for output beyond the cap. */
  overLimit(): NixError {
    return new NixError('limit', `decompressed data exceeds ${this.max} bytes`);
  }
}

/**
 * A decoder driven in bounded steps. Each call does a bounded amount of work and puts its
 * output into the `DecodeOutput` it was made with; between calls the caller checks the output
 * and lets the event loop run.
 */
export interface StepDecoder {
  /** The most input to hand `write` at once. */
  readonly slice: number;
  /**
   * Decodes a prefix of `input` (at most `slice` bytes) and returns how many bytes it took; 0
   * means it only drained earlier output and wants to be called again with the same input.
   */
  write(input: Uint8Array): number | Promise<number>;
  /** After the last input: one bounded step of what remains; true when the data is complete. */
  end(): boolean | Promise<boolean>;
  /** Frees the decoder's resources (also after an error or when abandoned). */
  close(): void;
}
