/** Types for the part of lzma-native used here (the package ships none). */
declare module 'lzma-native' {
  import type { Transform } from 'node:stream';

  const lzma: {
    /**
     * A streaming .xz decoder (liblzma's auto decoder; concatenated streams supported);
     * `memlimit` caps liblzma's memory in bytes (past it, decoding fails).
     */
    createDecompressor(options?: { synchronous?: boolean; memlimit?: number }): Transform;
  };
  export default lzma;
}
