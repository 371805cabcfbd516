/**
 * Nix derivations (`.drv` files) in the ATerm form Nix writes them:
 * `Derive([outputs],[input derivations],[input sources],"system","builder",[args],[env])`.
 * Parsing is strict — the grammar Nix writes and nothing else: strings with only the escapes
 * Nix makes (`\"`, `\\`, `\n`, `\r`, `\t`), store paths checked, lists sorted and without
 * repeats as Nix sorts them — and capped in size, so a rebuilder can read a derivation's
 * outputs and inputs from the file instead of asking Nix.
 *
 * @example
 * ```ts
 * const drv = parseDerivation(readFileSync(path, 'latin1'));
 * drv.outputs.get('out')?.path; // '/nix/store/…-hello-2.12'
 * ```
 */
import { NixError } from './errors.js';
import { NIX_STORE_DIR, parseStorePath } from './store-path.js';

/** Largest derivation text parsed (Nixpkgs' largest are a few MB). */
export const MAX_DERIVATION_BYTES = 16 << 20;

/** One output: its path, and for a fixed-output derivation the hash promised (else empty). */
export interface DerivationOutput {
  readonly path: string;
  readonly hashAlgo: string;
  readonly hash: string;
}

export interface Derivation {
  /** Output name → output, by name. */
  readonly outputs: ReadonlyMap<string, DerivationOutput>;
  /** Input derivation path → the outputs of it used, by path. */
  readonly inputDrvs: ReadonlyMap<string, readonly string[]>;
  readonly inputSrcs: readonly string[];
  readonly system: string;
  readonly builder: string;
  readonly args: readonly string[];
  readonly env: ReadonlyMap<string, string>;
}

const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  n: '\n',
  r: '\r',
  t: '\t',
};

class Reader {
  at = 0;
  constructor(readonly text: string) {}

  fail(why: string): never {
    throw new NixError('malformed', `derivation at byte ${this.at}: ${why}`);
  }

  expect(literal: string): void {
    if (!this.text.startsWith(literal, this.at)) this.fail(`expected ${JSON.stringify(literal)}`);
    this.at += literal.length;
  }

  /** Consumes `literal` when it comes next. */
  accept(literal: string): boolean {
    if (!this.text.startsWith(literal, this.at)) return false;
    this.at += literal.length;
    return true;
  }

  string(): string {
    this.expect('"');
    let out = '';
    for (let start = this.at; ;) {
      const i = this.text.indexOf('"', start);
      const j = this.text.indexOf('\\', start);
      if (i < 0) this.fail('unterminated string');
      if (j < 0 || i < j) {
        out += this.text.slice(this.at, i);
        this.at = i + 1;
        return out;
      }
      const escaped = ESCAPES[this.text[j + 1] ?? ''];
      if (escaped === undefined) {
        this.at = j;
        this.fail('an escape Nix does not write');
      }
      out += this.text.slice(this.at, j) + escaped;
      this.at = start = j + 2;
    }
  }

  /** `[item,item,…]`, each item read by `item`. */
  list<T>(item: () => T): T[] {
    this.expect('[');
    const items: T[] = [];
    if (this.accept(']')) return items;
    do items.push(item());
    while (this.accept(','));
    this.expect(']');
    return items;
  }
}

function sortedUnique(keys: readonly string[], what: string): void {
  for (let i = 1; i < keys.length; i++)
    if ((keys[i - 1] as string) >= (keys[i] as string))
      throw new NixError('malformed', `derivation: ${what} out of order or repeated`);
}

/**
 * Parses a derivation's text (read as latin1, so that every byte is one character). Throws
 * NixError `limit` over {@link MAX_DERIVATION_BYTES}, `unsupported` for an output without a
 * path (a floating content-addressed derivation), `malformed` otherwise.
 */
export function parseDerivation(text: string, storeDir = NIX_STORE_DIR): Derivation {
  if (text.length > MAX_DERIVATION_BYTES)
    throw new NixError('limit', `derivation larger than ${MAX_DERIVATION_BYTES} bytes`);
  const r = new Reader(text);
  const storePath = (what: string) => {
    const at = r.at;
    const path = r.string();
    try {
      parseStorePath(path, storeDir);
    } catch (cause) {
      throw new NixError('malformed', `derivation at byte ${at}: ${what} is not a store path`, {
        cause,
      });
    }
    return path;
  };
  r.expect('Derive(');
  const outputs = r.list(() => {
    r.expect('(');
    const name = r.string();
    r.expect(',');
    const at = r.at;
    const path = r.string();
    if (path === '')
      throw new NixError(
        'unsupported',
        `derivation output ${name} has no path (content-addressed)`,
      );
    r.at = at;
    storePath(`output ${name}`);
    r.expect(',');
    const hashAlgo = r.string();
    r.expect(',');
    const hash = r.string();
    r.expect(')');
    return [name, { path, hashAlgo, hash }] as const;
  });
  if (outputs.length === 0) r.fail('no outputs');
  r.expect(',');
  const inputDrvs = r.list(() => {
    r.expect('(');
    const path = storePath('an input derivation');
    r.expect(',');
    const names = r.list(() => r.string());
    sortedUnique(names, `the outputs of ${path}`);
    r.expect(')');
    return [path, names] as const;
  });
  r.expect(',');
  const inputSrcs = r.list(() => storePath('an input source'));
  r.expect(',');
  const system = r.string();
  r.expect(',');
  const builder = r.string();
  r.expect(',');
  const args = r.list(() => r.string());
  r.expect(',');
  const env = r.list(() => {
    r.expect('(');
    const name = r.string();
    r.expect(',');
    const value = r.string();
    r.expect(')');
    return [name, value] as const;
  });
  r.expect(')');
  if (r.at !== text.length) r.fail('text after the derivation');
  sortedUnique(
    outputs.map(([n]) => n),
    'outputs',
  );
  sortedUnique(
    inputDrvs.map(([p]) => p),
    'input derivations',
  );
  sortedUnique(inputSrcs, 'input sources');
  sortedUnique(
    env.map(([n]) => n),
    'environment variables',
  );
  return {
    outputs: new Map(outputs),
    inputDrvs: new Map(inputDrvs),
    inputSrcs,
    system,
    builder,
    args,
    env: new Map(env),
  };
}

function quote(text: string): string {
  return `"${text.replace(/[\\"\n\r\t]/g, (c) => `\\${c === '\n' ? 'n' : c === '\r' ? 'r' : c === '\t' ? 't' : c}`)}"`;
}

/** A derivation's text as Nix writes it; {@link parseDerivation} of it gives it back. */
export function formatDerivation(d: Derivation): string {
  const list = (items: string[]) => `[${items.join(',')}]`;
  const sorted = <T>(entries: Iterable<[string, T]>) =>
    [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `Derive(${list(sorted(d.outputs.entries()).map(([n, o]) => `(${quote(n)},${quote(o.path)},${quote(o.hashAlgo)},${quote(o.hash)})`))},${list(
    sorted(d.inputDrvs.entries()).map(
      ([p, names]) => `(${quote(p)},${list([...names].sort().map(quote))})`,
    ),
  )},${list([...d.inputSrcs].sort().map(quote))},${quote(d.system)},${quote(d.builder)},${list(
    d.args.map(quote),
  )},${list(sorted(d.env.entries()).map(([n, v]) => `(${quote(n)},${quote(v)})`))})`;
}
