/** Types for unbzip2-stream, which ships none: a factory returning a `through` stream. */
declare module 'unbzip2-stream' {
  import type { EventEmitter } from 'node:events';

  interface ThroughStream extends EventEmitter {
    write(chunk: Uint8Array): boolean;
    end(): void;
  }
  export default function unbzip2(): ThroughStream;
}
