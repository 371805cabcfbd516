/**
 * A streaming NAR parser and validator: bytes are pushed in chunks of any size, file contents
 * pass through without being buffered, and only the canonical encoding `nix-store --dump`
 * produces is accepted.
 */
import { NixError } from './errors.js';
import { MAX_TARGET_BYTES, NAR_MAGIC, padding, validEntryName } from './nar-format.js';
import { MAX_NAME_BYTES } from './nar-format.js';

/** What the parser reports as it goes; paths are `/`-joined names below the root (`''`). */
export interface NarListener {
  directory?(path: string): void;
  file?(path: string, executable: boolean, size: number): void;
  /** A piece of the current file's contents (a view valid only during the call). */
  contents?(chunk: Uint8Array): void;
  symlink?(path: string, target: Uint8Array): void;
}

/** Caps on what an archive may contain. */
export interface NarLimits {
  /** Deepest directory nesting (default 256). */
  readonly maxDepth?: number;
}

/** A request from the grammar to the byte feeder: n bytes, or n content bytes to stream. */
type Need = number | { readonly stream: number };

function bad(why: string): NixError {
  return new NixError('malformed', `malformed NAR: ${why}`);
}

const decoder = new TextDecoder();

/** Reads a u64 little-endian length, refusing values past 2⁵³. */
function* readLength(): Generator<Need, number, Uint8Array> {
  const bytes = yield 8;
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, 8);
  const value = view.readBigUInt64LE(0);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`length ${value} is too large`);
  return Number(value);
}

/** Reads a string of at most `max` bytes and checks its padding is zero; returns a copy. */
function* readString(max: number, what: string): Generator<Need, Uint8Array, Uint8Array> {
  const length = yield* readLength();
  if (length > max) throw bad(`${what} of ${length} bytes is longer than ${max}`);
  const pad = padding(length);
  if (length + pad === 0) return new Uint8Array(0);
  const bytes = yield length + pad;
  for (let i = length; i < length + pad; i++) if (bytes[i] !== 0) throw bad('non-zero padding');
  return Uint8Array.from(bytes.subarray(0, length));
}

// Tokens are at most 13 bytes ("nix-archive-1"); reading up to 16 keeps errors precise.
function* readToken(): Generator<Need, string, Uint8Array> {
  return decoder.decode(yield* readString(16, 'token'));
}

function* expect(want: string): Generator<Need, void, Uint8Array> {
  const got = yield* readToken();
  if (got !== want) throw bad(`expected "${want}", got ${JSON.stringify(got)}`);
}

/** The grammar, written as a coroutine: it yields what it needs and is resumed with bytes. */
function* grammar(listener: NarListener, maxDepth: number): Generator<Need, void, Uint8Array> {
  yield* expect(NAR_MAGIC);
  // One frame per open directory: its path and the previous entry name (for the sort check).
  const stack: { path: string; previous: Uint8Array | undefined }[] = [];
  let path = '';
  for (;;) {
    yield* expect('(');
    yield* expect('type');
    const type = yield* readToken();
    let finished = true;
    if (type === 'regular') {
      let tag = yield* readToken();
      const executable = tag === 'executable';
      if (executable) {
        yield* expect('');
        tag = yield* readToken();
      }
      if (tag !== 'contents') throw bad(`expected "contents", got ${JSON.stringify(tag)}`);
      const size = yield* readLength();
      listener.file?.(path, executable, size);
      if (size > 0) yield { stream: size };
      const pad = padding(size);
      if (pad > 0) {
        const zeros = yield pad;
        if (zeros.some((b) => b !== 0)) throw bad('non-zero padding');
      }
      yield* expect(')');
    } else if (type === 'symlink') {
      yield* expect('target');
      const target = yield* readString(MAX_TARGET_BYTES, 'symlink target');
      if (target.length === 0 || target.includes(0)) throw bad('invalid symlink target');
      listener.symlink?.(path, target);
      yield* expect(')');
    } else if (type === 'directory') {
      if (stack.length >= maxDepth)
        throw new NixError('limit', `NAR nests deeper than ${maxDepth}`);
      listener.directory?.(path);
      stack.push({ path, previous: undefined });
      finished = false;
    } else {
      throw bad(`unknown file type ${JSON.stringify(type)}`);
    }
    // Close finished nodes and their entries; stop at the next entry to parse, or the end.
    for (;;) {
      const dir = stack[stack.length - 1];
      if (dir === undefined) return;
      if (finished) yield* expect(')'); // closes the `entry (` of the node just finished
      const tag = yield* readToken();
      if (tag === ')') {
        stack.pop();
        finished = true;
        continue;
      }
      if (tag !== 'entry') throw bad(`expected "entry" or ")", got ${JSON.stringify(tag)}`);
      yield* expect('(');
      yield* expect('name');
      const name = yield* readString(MAX_NAME_BYTES, 'file name');
      if (!validEntryName(name))
        throw bad(`invalid file name ${JSON.stringify(decoder.decode(name))}`);
      if (dir.previous !== undefined && Buffer.compare(dir.previous, name) >= 0) {
        throw bad(`directory ${JSON.stringify(dir.path)} is not sorted or has a duplicate name`);
      }
      dir.previous = name;
      yield* expect('node');
      path = dir.path === '' ? decoder.decode(name) : `${dir.path}/${decoder.decode(name)}`;
      break;
    }
  }
}

/**
 * Validates a NAR pushed in chunks: `push` every chunk, then `end`. Throws `NixError`
 * (`malformed` or `limit`) at the first byte that breaks the grammar: wrong magic, unknown
 * token, non-zero padding, unsorted or duplicate names, `.`/`..`/`/`/NUL in names, an over-long
 * string, trailing bytes, or a truncated archive.
 */
export class NarParser {
  private readonly grammar: Generator<Need, void, Uint8Array>;
  private readonly listener: NarListener;
  private need: Need = 0;
  private done = false;
  private pending: Uint8Array | undefined;
  private pendingFill = 0;

  constructor(listener: NarListener = {}, limits: NarLimits = {}) {
    this.listener = listener;
    this.grammar = grammar(listener, limits.maxDepth ?? 256);
    this.resume(new Uint8Array(0));
  }

  private resume(bytes: Uint8Array): void {
    const step = this.grammar.next(bytes);
    if (step.done === true) this.done = true;
    else this.need = step.value;
  }

  /** Feeds the next chunk of the archive. */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.done) throw bad('trailing bytes after the archive');
      const need = this.need;
      if (typeof need !== 'number') {
        const take = Math.min(need.stream, chunk.length - at);
        this.listener.contents?.(chunk.subarray(at, at + take));
        at += take;
        if (take === need.stream) this.resume(new Uint8Array(0));
        else this.need = { stream: need.stream - take };
        continue;
      }
      if (this.pending === undefined && chunk.length - at >= need) {
        this.resume(chunk.subarray(at, at + need));
        at += need;
        continue;
      }
      this.pending ??= new Uint8Array(need);
      const take = Math.min(need - this.pendingFill, chunk.length - at);
      this.pending.set(chunk.subarray(at, at + take), this.pendingFill);
      this.pendingFill += take;
      at += take;
      if (this.pendingFill === need) {
        const full = this.pending;
        this.pending = undefined;
        this.pendingFill = 0;
        this.resume(full);
      }
    }
  }

  /** Declares the end of input; throws when the archive is incomplete. */
  end(): void {
    if (!this.done) throw bad('truncated archive');
  }
}
