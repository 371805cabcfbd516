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

// Small tokens are gathered into one buffer so that a tree of small files is not a stream of
// tiny chunks.
const STAGE_SIZE = 64 * 1024;

class Stage {
  private buffer = Buffer.allocUnsafe(STAGE_SIZE);
  private used = 0;

  /** Appends bytes; returns a full chunk to emit, if the stage filled up. */
  add(bytes: Uint8Array): Uint8Array | undefined {
    if (this.used + bytes.length > STAGE_SIZE) {
      const out = this.take();
      if (bytes.length > STAGE_SIZE) return Buffer.concat([out ?? Buffer.alloc(0), bytes]);
      this.buffer.set(bytes, 0);
      this.used = bytes.length;
      return out;
    }
    this.buffer.set(bytes, this.used);
    this.used += bytes.length;
    return undefined;
  }

  /** Takes what is staged (a fresh buffer the caller may keep). */
  take(): Uint8Array | undefined {
    if (this.used === 0) return undefined;
    const out = this.buffer.subarray(0, this.used);
    this.buffer = Buffer.allocUnsafe(STAGE_SIZE);
    this.used = 0;
    return out;
  }
}

const TOKENS = new Map(
  [
    '(',
    ')',
    'type',
    'regular',
    'executable',
    '',
    'contents',
    'symlink',
    'target',
    'directory',
    'entry',
    'name',
    'node',
    NAR_MAGIC,
  ].map((t) => [t, narString(t)]),
);

function token(t: string): Uint8Array {
  const bytes = TOKENS.get(t);
  if (bytes === undefined) throw new Error(`bug: unknown NAR token ${t}`);
  return bytes;
}

/**
 * Serialises `root` as a NAR, yielding chunks the caller may keep. Throws `NixError` when a
 * name is invalid or repeated, or a file's contents do not match its size (it changed while
 * being read).
 */
export function* writeNar(root: NarSource): Generator<Uint8Array, void, undefined> {
  const stage = new Stage();
  function* put(bytes: Uint8Array): Generator<Uint8Array, void, undefined> {
    const full = stage.add(bytes);
    if (full !== undefined) yield full;
  }
  function* node(source: NarSource): Generator<Uint8Array, void, undefined> {
    yield* put(token('('));
    yield* put(token('type'));
    switch (source.type) {
      case 'regular': {
        yield* put(token('regular'));
        if (source.executable) {
          yield* put(token('executable'));
          yield* put(token(''));
        }
        yield* put(token('contents'));
        const length = Buffer.alloc(8);
        length.writeBigUInt64LE(BigInt(source.size));
        yield* put(length);
        let seen = 0;
        for (const chunk of source.contents()) {
          seen += chunk.length;
          if (seen > source.size) break;
          if (chunk.length >= 4096) {
            const staged = stage.take();
            if (staged !== undefined) yield staged;
            yield chunk;
          } else yield* put(chunk);
        }
        if (seen !== source.size) {
          throw new NixError(
            'mismatch',
            `file has ${seen} bytes, expected ${source.size}: it changed`,
          );
        }
        yield* put(new Uint8Array(padding(source.size)));
        break;
      }
      case 'symlink':
        yield* put(token('symlink'));
        yield* put(token('target'));
        yield* put(narString(source.target));
        break;
      case 'directory': {
        yield* put(token('directory'));
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
          yield* put(token('entry'));
          yield* put(token('('));
          yield* put(token('name'));
          yield* put(narString(name));
          yield* put(token('node'));
          yield* node(child());
          yield* put(token(')'));
        }
        break;
      }
    }
    yield* put(token(')'));
  }
  yield* put(token(NAR_MAGIC));
  yield* node(root);
  const rest = stage.take();
  if (rest !== undefined) yield rest;
}
