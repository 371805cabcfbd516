/**
 * libgcrypt s-expressions (Rivest's SPKI s-expressions as libgcrypt reads and writes them):
 * strict parsing of the canonical form (`(4:data...)`) and of the advanced form libgcrypt
 * writes key files and signatures in, and formatting of both, byte-identical to
 * `gcry_sexp_sprint` for what Guix writes.
 */
import { GuixError } from './errors.js';

/** An atom: an octet string (a token, a quoted string, hex or base64 are all bytes). */
export type SexpAtom = Uint8Array;
/** A list of atoms and lists. */
export type SexpList = readonly Sexp[];
/** An s-expression: an atom or a list. */
export type Sexp = SexpAtom | SexpList;

/** Caps on what {@link parseSexp} reads (attacker-controlled input). */
export interface SexpLimits {
  /** Largest input in bytes (default 1 MiB). */
  readonly maxBytes?: number;
  /** Deepest nesting of lists, the top-level list being 1 (default 32). */
  readonly maxDepth?: number;
  /**
   * Read a run of digits not followed by `:` as an atom of those digits (as the K-of-N ACL
   * proposal writes `(k-of-n 2 3 …)`), where libgcrypt fails with "Invalid length specifier".
   */
  readonly bareNumbers?: boolean;
}

/** Default {@link SexpLimits.maxBytes}. */
export const MAX_SEXP_BYTES = 1 << 20;
/** Default {@link SexpLimits.maxDepth}. */
export const MAX_SEXP_DEPTH = 32;

/** The bytes the reader and writer look for. */
const C = {
  Tab: 0x09,
  Newline: 0x0a,
  VTab: 0x0b,
  FormFeed: 0x0c,
  Return: 0x0d,
  Space: 0x20,
  Quote: 0x22,
  Hash: 0x23,
  Open: 0x28,
  Close: 0x29,
  Colon: 0x3a,
  Bracket: 0x5b,
  Backslash: 0x5c,
  Brace: 0x7b,
  Bar: 0x7c,
} as const;

function isWhitespace(b: number): boolean {
  return b === C.Space || (b >= C.Tab && b <= C.Return);
}
function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}
function isAlpha(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}
/** The punctuation libgcrypt allows in tokens (and Rivest's draft, section 4.3). */
function isTokenSpecial(b: number): boolean {
  return '-./_:*+='.includes(String.fromCharCode(b));
}
function isTokenByte(b: number): boolean {
  return isAlpha(b) || isDigit(b) || isTokenSpecial(b);
}
function hexValue(b: number): number {
  if (isDigit(b)) return b - 0x30;
  const lower = b | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

const ESCAPES = new Map<number, number>([
  [0x62, 0x08], // \b
  [0x74, 0x09], // \t
  [0x76, 0x0b], // \v
  [0x6e, 0x0a], // \n
  [0x66, 0x0c], // \f
  [0x72, 0x0d], // \r
  [C.Quote, C.Quote],
  [0x27, 0x27], // \'
  [C.Backslash, C.Backslash],
]);

function malformed(why: string, at: number): GuixError {
  return new GuixError('malformed', `invalid s-expression at byte ${at}: ${why}`);
}

/** Reads one s-expression from bytes; `canonical` allows only `(`, `)` and `N:bytes`. */
class Reader {
  private pos = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly canonical: boolean,
    private readonly maxDepth: number,
    private readonly bareNumbers = false,
  ) {}

  read(): SexpList {
    if (!this.canonical) this.skipWhitespace();
    if (this.bytes[this.pos] !== C.Open) throw malformed('want "(" to start', this.pos);
    const top = this.list();
    if (!this.canonical) this.skipWhitespace();
    if (this.pos !== this.bytes.length) throw malformed('data after the expression', this.pos);
    return top;
  }

  private skipWhitespace(): void {
    while (this.pos < this.bytes.length && isWhitespace(this.bytes[this.pos] as number)) {
      this.pos++;
    }
  }

  /** Reads the list opening at `pos`, iteratively (no recursion on hostile depth). */
  private list(): SexpList {
    const stack: Sexp[][] = [];
    for (;;) {
      if (!this.canonical) this.skipWhitespace();
      const at = this.pos;
      const b = this.bytes[at];
      if (b === undefined) throw malformed('unbalanced parentheses: missing ")"', at);
      if (b === C.Open) {
        if (stack.length >= this.maxDepth) {
          throw new GuixError('limit', `s-expression nested deeper than ${this.maxDepth} lists`);
        }
        this.pos++;
        stack.push([]);
        continue;
      }
      const current = stack[stack.length - 1];
      if (current === undefined) throw new Error('bug: reading outside a list');
      if (b === C.Close) {
        this.pos++;
        stack.pop();
        const parent = stack[stack.length - 1];
        if (parent === undefined) return current;
        parent.push(current);
        continue;
      }
      current.push(this.atom());
    }
  }

  private atom(): Uint8Array {
    const at = this.pos;
    const b = this.bytes[at] as number;
    if (isDigit(b)) return this.verbatim();
    if (this.canonical) throw malformed('canonical form allows only "(", ")" and N:bytes', at);
    if (isAlpha(b) || isTokenSpecial(b)) return this.token();
    if (b === C.Quote) return this.quoted();
    if (b === C.Hash) return this.hex();
    if (b === C.Bar) return this.base64();
    if (b === C.Bracket) {
      throw new GuixError('unsupported', `s-expression display hints ("[") are not supported`);
    }
    if (b === C.Brace) {
      throw new GuixError('unsupported', 's-expression transport form ("{") is not supported');
    }
    throw malformed(`unexpected byte 0x${b.toString(16).padStart(2, '0')}`, at);
  }

  /** `N:bytes`. A length of 0 is read (libgcrypt writes `0:`); `01:` is not. */
  private verbatim(): Uint8Array {
    const at = this.pos;
    while (isDigit(this.bytes[this.pos] ?? -1)) this.pos++;
    const digits = latin1(this.bytes.subarray(at, this.pos));
    if (this.bytes[this.pos] !== C.Colon) {
      if (this.bareNumbers && !isTokenByte(this.bytes[this.pos] ?? C.Space)) {
        if (digits.length > 1 && digits.startsWith('0')) {
          throw malformed(`number ${digits} has a leading zero`, at);
        }
        return this.bytes.slice(at, this.pos);
      }
      throw malformed(`length ${digits} must be followed by ":" (bare numbers are not atoms)`, at);
    }
    if (digits.length > 1 && digits.startsWith('0')) {
      throw malformed(`length ${digits} has a leading zero`, at);
    }
    const length = digits.length > 9 ? Infinity : Number(digits);
    this.pos++;
    if (length > this.bytes.length - this.pos) {
      throw malformed(`length ${digits} runs past the end of the input`, at);
    }
    const value = this.bytes.slice(this.pos, this.pos + length);
    this.pos += length;
    return value;
  }

  private token(): Uint8Array {
    const at = this.pos;
    while (isTokenByte(this.bytes[this.pos] ?? -1)) this.pos++;
    return this.bytes.slice(at, this.pos);
  }

  private quoted(): Uint8Array {
    const at = this.pos++;
    const out: number[] = [];
    for (;;) {
      const b = this.bytes[this.pos++];
      if (b === undefined) throw malformed('unterminated quoted string', at);
      if (b === 0) throw malformed('NUL byte in a quoted string', this.pos - 1);
      if (b === C.Quote) return Uint8Array.from(out);
      if (b !== C.Backslash) {
        out.push(b);
        continue;
      }
      const e = this.bytes[this.pos++];
      if (e === undefined) throw malformed('unterminated quoted string', at);
      const simple = ESCAPES.get(e);
      if (simple !== undefined) out.push(simple);
      else if (e >= 0x30 && e <= 0x37) out.push(this.octalEscape());
      else if (e === 0x78) out.push(this.hexEscape());
      else if (e === C.Newline || e === C.Return) {
        // A backslash before a line break (\n, \r, \r\n or \n\r) continues the line.
        const next = this.bytes[this.pos];
        if ((next === C.Newline || next === C.Return) && next !== e) this.pos++;
      } else throw malformed(`unknown escape \\${String.fromCharCode(e)}`, this.pos - 2);
    }
  }

  private octalEscape(): number {
    const at = this.pos - 2;
    const digits = this.bytes.subarray(this.pos - 1, this.pos + 2);
    if (digits.length !== 3 || !digits.every((d) => d >= 0x30 && d <= 0x37)) {
      throw malformed('octal escape needs three digits', at);
    }
    const value = ((digits[0] as number) - 0x30) * 64 + ((digits[1] as number) - 0x30) * 8;
    const byte = value + (digits[2] as number) - 0x30;
    if (byte > 0xff) throw malformed('octal escape above \\377', at);
    this.pos += 2;
    return byte;
  }

  private hexEscape(): number {
    const hi = hexValue(this.bytes[this.pos] ?? -1);
    const lo = hexValue(this.bytes[this.pos + 1] ?? -1);
    if (hi < 0 || lo < 0) throw malformed('\\x escape needs two hex digits', this.pos - 2);
    this.pos += 2;
    return hi * 16 + lo;
  }

  /** `#hex#`; whitespace between the digits is allowed, as in libgcrypt. */
  private hex(): Uint8Array {
    const at = this.pos++;
    const nibbles: number[] = [];
    for (;;) {
      const b = this.bytes[this.pos++];
      if (b === undefined) throw malformed('unterminated hex string', at);
      if (b === C.Hash) break;
      if (isWhitespace(b)) continue;
      const v = hexValue(b);
      if (v < 0) throw malformed(`bad hex digit in hex string`, this.pos - 1);
      nibbles.push(v);
    }
    if (nibbles.length % 2 !== 0) throw malformed('odd number of hex digits', at);
    const out = new Uint8Array(nibbles.length / 2);
    for (let i = 0; i < out.length; i++) {
      out[i] = (nibbles[2 * i] as number) * 16 + (nibbles[2 * i + 1] as number);
    }
    return out;
  }

  /** `|base64|`, canonical (padded, no stray bits), not empty: stricter than libgcrypt. */
  private base64(): Uint8Array {
    const at = this.pos++;
    const end = this.bytes.indexOf(C.Bar, this.pos);
    if (end < 0) throw malformed('unterminated base64 string', at);
    const text = latin1(this.bytes.subarray(this.pos, end));
    const value = Buffer.from(text, 'base64');
    if (text === '' || value.toString('base64') !== text) {
      throw malformed('base64 string is empty or not canonical base64', at);
    }
    this.pos = end + 1;
    return new Uint8Array(value);
  }
}

/** Bytes as Latin-1 text: one character per byte. */
function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * The s-expression bytes of Guix text: Guix hands libgcrypt a string as ISO-8859-1
 * (`string->canonical-sexp`), one byte per character, so a character above U+00FF is refused.
 */
export function guixTextToSexp(text: string): Uint8Array {
  if (/[^\0-\xff]/.test(text)) {
    throw new GuixError('malformed', 's-expression text has a character above U+00FF');
  }
  return new Uint8Array(Buffer.from(text, 'latin1'));
}

/**
 * The s-expression bytes of a Guix file or `Signature:` payload: Guix decodes the bytes as
 * UTF-8 (its port encoding; `utf8->string` for signatures), then hands the characters to
 * libgcrypt as ISO-8859-1. So an atom written as a quoted string with bytes 0xa1–0xff travels
 * as their UTF-8 encoding. Invalid UTF-8 is refused.
 */
export function decodeGuixText(bytes: Uint8Array): Uint8Array {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (cause) {
    throw new GuixError('malformed', 's-expression text is not UTF-8', { cause });
  }
  return guixTextToSexp(text);
}

/** The text of s-expression bytes as Guix has it (one character per byte); write it as UTF-8. */
export function sexpToGuixText(bytes: Uint8Array): string {
  return latin1(bytes);
}

/**
 * The s-expression bytes of a Guix file's contents (bytes: UTF-8, {@link decodeGuixText}) or
 * text (a string, {@link guixTextToSexp}), refusing input over `maxBytes` before decoding it.
 */
export function readGuixText(input: Uint8Array | string, maxBytes: number): Uint8Array {
  if (input.length > maxBytes) {
    throw new GuixError('limit', `s-expression text larger than ${maxBytes} bytes`);
  }
  return typeof input === 'string' ? guixTextToSexp(input) : decodeGuixText(input);
}

function toBytes(input: Uint8Array | string): Uint8Array {
  return typeof input === 'string' ? guixTextToSexp(input) : input;
}

function checkSize(bytes: Uint8Array, limits: SexpLimits): void {
  const maxBytes = limits.maxBytes ?? MAX_SEXP_BYTES;
  if (bytes.length > maxBytes) {
    throw new GuixError('limit', `s-expression larger than ${maxBytes} bytes`);
  }
}

/**
 * Parses one s-expression (attacker-controlled) as libgcrypt's reader does, more strictly:
 * exactly one list, optionally surrounded by whitespace; inside it tokens, `N:bytes`, quoted
 * strings with libgcrypt's escapes, `#hex#` and `|base64|`. So it reads both the canonical
 * and the advanced form. Refused, unlike libgcrypt: anything after the list, a NUL outside a
 * verbatim string, display hints `[…]`, a length before a quoted, hex or base64 string, octal
 * escapes above `\377`, non-canonical base64. Bytes are libgcrypt's bytes; a string is Guix
 * text, one byte per character ({@link guixTextToSexp}).
 */
export function parseSexp(input: Uint8Array | string, limits: SexpLimits = {}): SexpList {
  const bytes = toBytes(input);
  checkSize(bytes, limits);
  const depth = limits.maxDepth ?? MAX_SEXP_DEPTH;
  return new Reader(bytes, false, depth, limits.bareNumbers === true).read();
}

/** Parses the canonical form only: `(`, `)` and `N:bytes`, no whitespace, nothing after. */
export function parseCanonicalSexp(input: Uint8Array, limits: SexpLimits = {}): SexpList {
  checkSize(input, limits);
  return new Reader(input, true, limits.maxDepth ?? MAX_SEXP_DEPTH).read();
}

/** The canonical form: `(`, `)` and `N:bytes`, nothing else (`GCRYSEXP_FMT_CANON`). */
export function formatCanonicalSexp(sexp: SexpList): Uint8Array {
  const parts: Uint8Array[] = [];
  const write = (s: Sexp): void => {
    if (s instanceof Uint8Array) {
      parts.push(Buffer.from(`${s.length}:`), s);
      return;
    }
    parts.push(Buffer.from('('));
    for (const item of s) write(item);
    parts.push(Buffer.from(')'));
  };
  write(sexp);
  return new Uint8Array(Buffer.concat(parts));
}

/** How libgcrypt's advanced writer spells an atom: as a token, a quoted string or hex. */
function encodeAtom(a: Uint8Array): string {
  if (a.length === 0) return '""';
  const first = a[0] as number;
  // A leading NUL or high bit means binary (a negative number, to libgcrypt) and so does a
  // control byte without an escape or a byte in 0x7f..0xa0. libgcrypt writes a NUL that is
  // not first as a raw byte its own reader cannot read back; Accord writes hex instead.
  const binary =
    first === 0 ||
    first >= 0x80 ||
    a.some((b) => (b < 0x20 && !(b >= 0x08 && b <= 0x0d)) || (b >= 0x7f && b <= 0xa0));
  if (binary) return `#${Buffer.from(a).toString('hex').toUpperCase()}#`;
  if (!isDigit(first) && a.every(isTokenByte)) return latin1(a);
  let out = '"';
  for (const b of a) {
    const escape = [...ESCAPES].find(([, value]) => value === b)?.[0];
    out += escape === undefined ? String.fromCharCode(b) : `\\${String.fromCharCode(escape)}`;
  }
  return `${out}"`;
}

/**
 * The advanced form exactly as `gcry_sexp_sprint(GCRYSEXP_FMT_ADVANCED)` writes it (and so as
 * Guix writes key files and signatures): a list that is not first in its parent starts on a
 * new line indented one space per level; an atom is followed by a space unless a `)` follows;
 * a `)` is followed by a newline and its own list's indentation unless a `(` follows.
 * The result ends in a newline. Bytes 0xa1–0xff in quoted strings are written raw (Latin-1).
 */
export function formatSexp(sexp: SexpList): Uint8Array {
  let out = '';
  const write = (s: SexpList, depth: number, next: 'open' | 'other'): void => {
    if (depth > 0) out += `\n${' '.repeat(depth)}`;
    out += '(';
    s.forEach((item, i) => {
      const following = s[i + 1];
      const after =
        following === undefined ? 'close' : following instanceof Uint8Array ? 'other' : 'open';
      if (item instanceof Uint8Array) {
        out += encodeAtom(item);
        if (after !== 'close') out += ' ';
      } else write(item, depth + 1, after === 'open' ? 'open' : 'other');
    });
    out += ')';
    if (next !== 'open') out += `\n${' '.repeat(depth)}`;
  };
  write(sexp, 0, 'other');
  return new Uint8Array(Buffer.from(out, 'latin1'));
}

/** An atom of the ASCII (Latin-1) bytes of `text`. */
export function sexpAtom(text: string): SexpAtom {
  return new Uint8Array(Buffer.from(text, 'latin1'));
}

/** Whether an s-expression is an atom. */
export function isSexpAtom(s: Sexp | undefined): s is SexpAtom {
  return s instanceof Uint8Array;
}

/** The atom's bytes as Latin-1 text (tokens are ASCII). */
export function sexpAtomText(atom: SexpAtom): string {
  return Buffer.from(atom).toString('latin1');
}

/** Whether two s-expressions are the same (as Guix compares keys: whole expressions). */
export function sexpEqual(a: Sexp, b: Sexp): boolean {
  if (isSexpAtom(a) || isSexpAtom(b)) {
    return isSexpAtom(a) && isSexpAtom(b) && Buffer.from(a).equals(b);
  }
  return a.length === b.length && a.every((item, i) => sexpEqual(item, b[i] as Sexp));
}

/** A short description of an s-expression for error messages: its head token or "an atom". */
export function describeSexp(s: Sexp | undefined): string {
  if (s === undefined) return 'nothing';
  if (isSexpAtom(s)) return `atom ${JSON.stringify(sexpAtomText(s).slice(0, 40))}`;
  const head = s[0];
  return isSexpAtom(head) ? `(${sexpAtomText(head).slice(0, 40)} …)` : 'a list';
}
