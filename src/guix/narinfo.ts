/**
 * Guix narinfos as `guix publish` writes them and `guix substitute` reads them: `Key: value`
 * lines, one or more `URL`/`Compression`/`FileSize` blocks, and `Signature: 1;<host>;<base64
 * of a signature s-expression>` over every byte before that line (guix/narinfo.scm).
 */
import {
  GUIX_STORE_DIR,
  NixError,
  type NixHash,
  type StorePath,
  formatHash,
  formatStorePath,
  parseHash,
  parseStorePath,
  parseStorePathBaseName,
} from '../nix/index.js';
import { GuixError } from './errors.js';
import { type GuixPublicKey, type GuixSecretKey } from './keys.js';
import {
  type GuixSignature,
  MAX_SIGNATURE_SIZE,
  formatGuixSignature,
  parseGuixSignature,
  signGuix,
  verifyGuixSignature,
} from './signature.js';
import { decodeGuixText, sexpToGuixText } from './sexp.js';

/** One way to download the NAR: a URL, its compression and, if known, the file's size. */
export interface GuixNarUrl {
  readonly url: string;
  readonly compression: string;
  readonly fileSize?: number;
}

/** The `Signature:` field: version 1, the signing host's name, the signature. */
export interface GuixNarInfoSignature {
  readonly host: string;
  readonly signature: GuixSignature;
}

/** What a narinfo says about a store path (what {@link signGuixNarInfo} writes). */
export interface GuixNarInfoFields {
  readonly storePath: StorePath;
  readonly narHash: NixHash;
  readonly narSize: number;
  /** Base names (`<hash>-<name>`), in the order the narinfo lists them. */
  readonly references: readonly string[];
  /** Base name of the deriver, if the narinfo names one. */
  readonly deriver?: string;
  readonly system?: string;
  /** At least one. */
  readonly urls: readonly GuixNarUrl[];
}

/** A parsed narinfo: its fields, its signature if any, and the exact text that was signed. */
export interface GuixNarInfo extends GuixNarInfoFields {
  readonly signature?: GuixNarInfoSignature;
  /** Every byte before the `Signature:` line (the whole text when unsigned). */
  readonly signedText: Uint8Array;
  readonly text: string;
}

/** Largest narinfo accepted. */
export const MAX_GUIX_NARINFO_SIZE = 1 << 20;
/** Most URL blocks accepted in one narinfo. */
export const MAX_URL_BLOCKS = 16;
/** The compressions `guix substitute` knows (guix/narinfo.scm `%compression-methods`). */
export const GUIX_COMPRESSIONS = ['gzip', 'lzip', 'zstd', 'xz', 'bzip2', 'none'] as const;

const SINGLE = ['StorePath', 'NarHash', 'NarSize', 'References', 'Deriver', 'System'];
const BLOCK = ['URL', 'Compression', 'FileSize', 'FileHash'];
const DECIMAL = /^(?:0|[1-9][0-9]{0,15})$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HOST = /^[A-Za-z0-9._-]{1,253}$/;
const COMPRESSION = /^[a-z0-9]{1,16}$/;
const SIGNATURE = 'Signature:';

function corrupt(why: string): GuixError {
  return new GuixError('malformed', `Guix narinfo is corrupt: ${why}`);
}

function parseSize(value: string, field: string): number {
  const n = DECIMAL.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw corrupt(`${field} ${JSON.stringify(value)} is not a size`);
  return n;
}

function parseSignatureField(value: string): GuixNarInfoSignature {
  const parts = value.split(';');
  const [version, host, base64] = parts;
  if (parts.length !== 3 || version === undefined || host === undefined || base64 === undefined) {
    throw corrupt('Signature is not 1;<host>;<base64>');
  }
  if (version !== '1') throw corrupt(`unsupported Signature version ${JSON.stringify(version)}`);
  if (!HOST.test(host)) throw corrupt(`Signature host ${JSON.stringify(host)} is not a host name`);
  if (base64.length > (MAX_SIGNATURE_SIZE * 4) / 3 + 4 || !BASE64.test(base64)) {
    throw corrupt('Signature is not canonical base64 of a small s-expression');
  }
  try {
    // Guix decodes the payload as UTF-8 and hands its characters to libgcrypt as ISO-8859-1.
    const sexp = decodeGuixText(new Uint8Array(Buffer.from(base64, 'base64')));
    return { host, signature: parseGuixSignature(sexp) };
  } catch (cause) {
    if (!(cause instanceof GuixError)) throw cause;
    throw new GuixError(cause.code, `Guix narinfo Signature: ${cause.message}`, { cause });
  }
}

/**
 * Parses a narinfo (attacker-controlled): UTF-8, `Key: value` lines each ending in a newline,
 * no empty lines; `StorePath` (in `storeDir`), `NarHash` (`sha256:<nix32>`), `NarSize` (> 0)
 * and `References` required; every field but the URL block fields at most once; as many
 * `Compression` lines as `URL` lines (at least one), `FileSize` lines none or as many, paired
 * by position as Guix pairs them. At most one `Signature`; every field before it is signed,
 * so only URL block fields may follow it, and the text `Signature:` may not appear earlier
 * (Guix signs the bytes before its first occurrence). Unknown fields are ignored, as in Guix.
 */
export function parseGuixNarInfo(
  input: string | Uint8Array,
  storeDir: string = GUIX_STORE_DIR,
): GuixNarInfo {
  try {
    return parseFields(input, storeDir);
  } catch (cause) {
    // Store paths and hashes are read by the nix module: its errors are this module's too.
    if (!(cause instanceof NixError)) throw cause;
    throw new GuixError('malformed', `Guix narinfo is corrupt: ${cause.message}`, { cause });
  }
}

function parseFields(input: string | Uint8Array, storeDir: string): GuixNarInfo {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > MAX_GUIX_NARINFO_SIZE) {
    throw new GuixError('limit', `Guix narinfo larger than ${MAX_GUIX_NARINFO_SIZE} bytes`);
  }
  let text: string;
  try {
    text =
      typeof input === 'string'
        ? input
        : new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
  } catch (cause) {
    throw new GuixError('malformed', 'Guix narinfo is not UTF-8', { cause });
  }
  if (typeof input === 'string' && Buffer.from(text).toString() !== text) {
    throw corrupt('is not well-formed Unicode');
  }
  if (!text.endsWith('\n')) throw corrupt('does not end in a newline');
  const single = new Map<string, string>();
  const block = new Map<string, string[]>(BLOCK.map((k) => [k, []]));
  let signature: GuixNarInfoSignature | undefined;
  let signedLength = Buffer.byteLength(text);
  let offset = 0;
  for (const line of text.slice(0, -1).split('\n')) {
    const colon = line.indexOf(': ');
    if (colon <= 0 || !/^[A-Za-z]+$/.test(line.slice(0, colon))) {
      throw corrupt(`line ${JSON.stringify(line.slice(0, 80))} is not "Key: value"`);
    }
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (/[\0-\x1f\x7f]/.test(line)) throw corrupt(`${key} has a control character`);
    if (key === 'Signature') {
      if (signature !== undefined) throw corrupt('more than one Signature');
      signature = parseSignatureField(value);
      signedLength = Buffer.byteLength(text.slice(0, offset));
    } else if (line.includes(SIGNATURE) && signature === undefined) {
      throw corrupt(`"${SIGNATURE}" inside ${key} (Guix would sign only the bytes before it)`);
    } else if (SINGLE.includes(key)) {
      if (signature !== undefined) throw corrupt(`${key} after Signature is not signed`);
      if (single.has(key)) throw corrupt(`duplicate ${key}`);
      single.set(key, value);
    } else {
      const values = block.get(key);
      if (values !== undefined) {
        if (values.length >= MAX_URL_BLOCKS) throw new GuixError('limit', `too many ${key} lines`);
        values.push(value);
      }
    }
    offset += line.length + 1;
  }
  const required = (key: string): string => {
    const value = single.get(key);
    if (value === undefined || (value === '' && key !== 'References')) {
      throw corrupt(`missing ${key}`);
    }
    return value;
  };
  const storePath = parseStorePath(required('StorePath'), storeDir);
  const narHashText = required('NarHash');
  let narHash: NixHash;
  try {
    narHash = parseHash(narHashText);
  } catch (cause) {
    throw new GuixError('malformed', 'Guix narinfo is corrupt: bad NarHash', { cause });
  }
  if (narHash.algorithm !== 'sha256' || formatHash(narHash) !== narHashText) {
    throw corrupt('NarHash is not sha256:<nix32>');
  }
  const narSize = parseSize(required('NarSize'), 'NarSize');
  if (narSize === 0) throw corrupt('NarSize is 0');
  const refs = required('References');
  const references = refs === '' ? [] : refs.split(' ');
  for (const r of references) parseStorePathBaseName(r, storeDir);
  if (new Set(references).size !== references.length) throw corrupt('a reference appears twice');
  const urls = block.get('URL') ?? [];
  const compressions = block.get('Compression') ?? [];
  const fileSizes = block.get('FileSize') ?? [];
  if (urls.length === 0) throw corrupt('missing URL');
  if (compressions.length !== urls.length) throw corrupt('want one Compression per URL');
  if (fileSizes.length !== 0 && fileSizes.length !== urls.length) {
    throw corrupt('want one FileSize per URL, or none');
  }
  const info: { -readonly [K in keyof GuixNarInfo]: GuixNarInfo[K] } = {
    storePath,
    narHash,
    narSize,
    references,
    urls: urls.map((url, i) => {
      const compression = compressions[i] as string;
      if (url === '') throw corrupt('empty URL');
      if (!COMPRESSION.test(compression))
        throw corrupt(`bad Compression ${JSON.stringify(compression)}`);
      const fileSize = fileSizes[i];
      return fileSize === undefined
        ? { url, compression }
        : { url, compression, fileSize: parseSize(fileSize, 'FileSize') };
    }),
    signedText: new Uint8Array(Buffer.from(text).subarray(0, signedLength)),
    text,
  };
  const deriver = single.get('Deriver');
  if (deriver !== undefined && deriver !== '') {
    info.deriver = parseStorePathBaseName(deriver, storeDir).baseName;
  }
  const system = single.get('System');
  if (system !== undefined && system !== '') info.system = system;
  if (signature !== undefined) info.signature = signature;
  return info;
}

function checkFields(info: GuixNarInfoFields): void {
  if (info.urls.length === 0) throw new GuixError('malformed', 'a Guix narinfo needs a URL');
  const lines = [info.deriver, info.system, ...info.urls.flatMap((u) => [u.url, u.compression])];
  if (lines.some((v) => v !== undefined && (v === '' || /[\0-\x1f\x7f]/.test(v)))) {
    throw new GuixError('malformed', 'a Guix narinfo field is empty or has a control character');
  }
}

/**
 * The signed part of a narinfo in `guix publish`'s field order: `StorePath`, `NarHash`,
 * `NarSize`, `References` (space-joined; `References: ` when there are none), `System` and
 * `Deriver` when known.
 */
export function formatGuixNarInfoBody(info: GuixNarInfoFields): string {
  checkFields(info);
  const lines = [
    `StorePath: ${formatStorePath(info.storePath)}`,
    `NarHash: ${formatHash(info.narHash)}`,
    `NarSize: ${info.narSize}`,
    `References: ${info.references.join(' ')}`,
  ];
  if (info.system !== undefined) lines.push(`System: ${info.system}`);
  if (info.deriver !== undefined) lines.push(`Deriver: ${info.deriver}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The URL blocks: `URL`, `Compression` and `FileSize` per way to download. Guix pairs these
 * fields by position, so `FileSize` lines are written only when every block has a size.
 */
export function formatGuixUrlBlocks(urls: readonly GuixNarUrl[]): string {
  const sizes = urls.every((u) => u.fileSize !== undefined);
  return urls
    .map(
      (u) =>
        `URL: ${u.url}\nCompression: ${u.compression}\n` +
        (sizes ? `FileSize: ${u.fileSize}\n` : ''),
    )
    .join('');
}

/**
 * The `Signature:` payload over `signed` (every byte before the field), as `guix publish`
 * encodes it: the signature's advanced form as text (one character per byte), UTF-8, base64.
 */
export function guixSignaturePayload(signed: string, key: GuixSecretKey): string {
  const signature = formatGuixSignature(signGuix(Buffer.from(signed), key));
  return Buffer.from(sexpToGuixText(signature), 'utf8').toString('base64');
}

/**
 * A signed narinfo: the body ({@link formatGuixNarInfoBody}), `Signature: 1;<host>;<base64 of
 * the advanced-form signature>` over it, then the URL blocks (unsigned, so a proxy may point
 * them elsewhere; Guix checks the NAR against `NarHash`).
 */
export function signGuixNarInfo(info: GuixNarInfoFields, key: GuixSecretKey, host: string): string {
  if (!HOST.test(host))
    throw new GuixError('malformed', `${JSON.stringify(host)} is not a host name`);
  const body = formatGuixNarInfoBody(info);
  const field = `Signature: 1;${host};${guixSignaturePayload(body, key)}\n`;
  return `${body}${field}${formatGuixUrlBlocks(info.urls)}`;
}

/**
 * Verifies a narinfo's signature and returns the narinfo: it must be signed (`signature`),
 * by one of `trusted` (`untrusted`), over exactly the bytes before `Signature:`.
 */
export function verifyGuixNarInfo(
  input: GuixNarInfo | string | Uint8Array,
  trusted: readonly GuixPublicKey[],
  storeDir: string = GUIX_STORE_DIR,
): GuixNarInfo {
  const info =
    typeof input === 'string' || input instanceof Uint8Array
      ? parseGuixNarInfo(input, storeDir)
      : input;
  if (info.signature === undefined) throw new GuixError('signature', 'Guix narinfo is not signed');
  verifyGuixSignature(info.signature.signature, info.signedText, trusted);
  return info;
}
