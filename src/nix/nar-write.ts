/**
 * NAR serialisation from any tree source, as a stream of byte chunks (`nix-store --dump`):
 * entries sorted by name bytes, only the executable bit kept, file contents streamed.
 */
import { NixError } from './errors.js';
import { NAR_MAGIC, narString, padding, validEntryName } from './nar-format.js';

/** A file system object to archive. Sources are synchronous; contents come in chunks. */
export type NarSource =
  | {
      readonly type: 'regular';
      readonly executable: boolean;
      readonly size: number;
      /**
       * The file's bytes in order; their total must equal `size`. Chunks are handed on as they
       * are, so a source must not reuse a chunk's memory.
       */
      contents(): Iterable<Uint8Array>;
    }
  | { readonly type: 'symlink'; readonly target: Uint8Array }
  | {
      readonly type: 'directory';
      /** The entries, in any order: the writer sorts them by name bytes. */
      entries(): Iterable<readonly [name: Uint8Array, node: () => NarSource]>;
    };

// Small pieces are gathered into one buffer, so that a tree of small files is not a stream of
// tiny chunks; full buffers wait in `ready` until the writer hands them on.
const STAGE_SIZE = 64 * 1024;
/** Content chunks at least this long are handed on as they are instead of being copied. */
const DIRECT_CHUNK = 4096;

class Stage {
  private buffer = Buffer.allocUnsafe(STAGE_SIZE);
  private used = 0;
  readonly ready: Uint8Array[] = [];

  bytes(bytes: Uint8Array): void {
    if (this.used + bytes.length > STAGE_SIZE) {
      this.flush();
      if (bytes.length > STAGE_SIZE) {
        this.ready.push(bytes);
        return;
      }
    }
    this.buffer.set(bytes, this.used);
    this.used += bytes.length;
  }

  /** A u64 little-endian (exact up to 2⁵³). */
  u64(n: number): void {
    if (this.used + 8 > STAGE_SIZE) this.flush();
    this.buffer.writeUInt32LE(n % 0x1_0000_0000, this.used);
    this.buffer.writeUInt32LE(Math.floor(n / 0x1_0000_0000), this.used + 4);
    this.used += 8;
  }

  zeros(n: number): void {
    if (n === 0) return;
    if (this.used + n > STAGE_SIZE) this.flush();
    this.buffer.fill(0, this.used, this.used + n);
    this.used += n;
  }

  /** A NAR string: length, bytes, padding. */
  string(bytes: Uint8Array): void {
    this.u64(bytes.length);
    this.bytes(bytes);
    this.zeros(padding(bytes.length));
  }

  /** Moves what is staged to `ready` (a fresh buffer the caller may keep). */
  flush(): void {
    if (this.used === 0) return;
    this.ready.push(this.buffer.subarray(0, this.used));
    this.buffer = Buffer.allocUnsafe(STAGE_SIZE);
    this.used = 0;
  }

  *drain(): Generator<Uint8Array, void, undefined> {
    for (const chunk of this.ready) yield chunk;
    this.ready.length = 0;
  }
}

/** Token sequences of the grammar, framed once. */
function tokens(...words: string[]): Uint8Array {
  return Buffer.concat(words.map((w) => narString(w)));
}
const MAGIC = tokens(NAR_MAGIC);
const OPEN_REGULAR = tokens('(', 'type', 'regular');
const EXECUTABLE = tokens('executable', '');
const CONTENTS = tokens('contents');
const OPEN_SYMLINK_TARGET = tokens('(', 'type', 'symlink', 'target');
const OPEN_DIRECTORY = tokens('(', 'type', 'directory');
const ENTRY_NAME = tokens('entry', '(', 'name');
const NODE = tokens('node');
const CLOSE = tokens(')');

/**
 * Serialises `root` as a NAR, yielding chunks the caller may keep. Throws `NixError` when a
 * name is invalid or repeated, or a file's contents do not match its size (it changed while
 * being read).
 */
export function* writeNar(root: NarSource): Generator<Uint8Array, void, undefined> {
  const stage = new Stage();
  function* node(source: NarSource): Generator<Uint8Array, void, undefined> {
    switch (source.type) {
      case 'regular': {
        stage.bytes(OPEN_REGULAR);
        if (source.executable) stage.bytes(EXECUTABLE);
        stage.bytes(CONTENTS);
        stage.u64(source.size);
        let seen = 0;
        for (const chunk of source.contents()) {
          seen += chunk.length;
          if (seen > source.size) break;
          if (chunk.length >= DIRECT_CHUNK) {
            stage.flush();
            stage.ready.push(chunk);
          } else stage.bytes(chunk);
          if (stage.ready.length > 0) yield* stage.drain();
        }
        if (seen !== source.size) {
          throw new NixError(
            'mismatch',
            `file has ${seen} bytes, expected ${source.size}: it changed`,
          );
        }
        stage.zeros(padding(source.size));
        break;
      }
      case 'symlink':
        stage.bytes(OPEN_SYMLINK_TARGET);
        stage.string(source.target);
        break;
      case 'directory': {
        stage.bytes(OPEN_DIRECTORY);
        const entries = [...source.entries()].sort(([a], [b]) => Buffer.compare(a, b));
        for (const [i, [name, child]] of entries.entries()) {
          if (!validEntryName(name)) {
            throw new NixError(
              'malformed',
              `invalid file name ${JSON.stringify(Buffer.from(name).toString())}`,
            );
          }
          const previous = entries[i - 1];
          if (previous !== undefined && Buffer.compare(previous[0], name) === 0) {
            throw new NixError('malformed', `duplicate file name ${Buffer.from(name).toString()}`);
          }
          stage.bytes(ENTRY_NAME);
          stage.string(name);
          stage.bytes(NODE);
          yield* node(child());
          stage.bytes(CLOSE);
        }
        break;
      }
    }
    stage.bytes(CLOSE);
    if (stage.ready.length > 0) yield* stage.drain();
  }
  stage.bytes(MAGIC);
  yield* node(root);
  stage.flush();
  yield* stage.drain();
}
