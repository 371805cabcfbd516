import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { NixError } from './errors.js';
import { formatHash } from './hash.js';
import { NAR_MAGIC, narString } from './nar-format.js';
import { NarHasher, hashNarSource, hashNarStream } from './nar-hash.js';
import { NarParser } from './nar-parse.js';
import { type NarSource, writeNar } from './nar-write.js';

/**
 * A tree described as plain data: a string is a file, and wrappers mark executables, symlinks
 * and directories (so entry names can never be mistaken for markers).
 */
type Tree = string | { exe: string } | { link: string } | { dir: Record<string, Tree> };

function source(tree: Tree): NarSource {
  if (typeof tree === 'string' || 'exe' in tree) {
    const data = Buffer.from(typeof tree === 'string' ? tree : tree.exe);
    return {
      type: 'regular',
      executable: typeof tree !== 'string',
      size: data.length,
      contents: () => [data],
    };
  }
  if ('link' in tree) return { type: 'symlink', target: Buffer.from(tree.link) };
  const entries = Object.entries(tree.dir);
  return {
    type: 'directory',
    entries: () => entries.map(([n, t]) => [Buffer.from(n), () => source(t)] as const),
  };
}

function nar(tree: Tree): Buffer {
  return Buffer.concat([...writeNar(source(tree))]);
}

/** Parses a NAR back into the events it reports, to compare with the tree written. */
function events(bytes: Uint8Array, chunk = bytes.length): string[] {
  const out: string[] = [];
  let data: Buffer[] = [];
  // A file's contents arrive in pieces; they are reported as one event when the next starts.
  const flush = () => {
    if (data.length > 0) out.push(`data ${Buffer.concat(data).toString()}`);
    data = [];
  };
  const event = (text: string) => {
    flush();
    out.push(text);
  };
  const parser = new NarParser({
    directory: (p) => event(`dir ${p}`),
    file: (p, x, n) => event(`file ${p} ${x ? 'x' : '-'} ${n}`),
    contents: (c) => data.push(Buffer.from(c)),
    symlink: (p, t) => event(`link ${p} ${Buffer.from(t).toString()}`),
  });
  for (let i = 0; i < bytes.length; i += chunk) {
    parser.push(bytes.subarray(i, i + chunk));
  }
  parser.end();
  flush();
  return out;
}

const dir = (entries: Record<string, Tree>): Tree => ({ dir: entries });

const TREE: Tree = dir({
  bin: dir({ hello: { exe: '#!/bin/sh\necho hi\n' } }),
  'empty-dir': dir({}),
  'lib.so': 'binary\0data',
  link: { link: 'bin/hello' },
  'z-last': '',
  nested: dir({ a: dir({ b: dir({ c: 'deep' }) }) }),
});

/** The events a correct parser reports for a tree: entries in byte order, as the writer puts them. */
function expectedEvents(tree: Tree, path = ''): string[] {
  if (typeof tree === 'string' || 'exe' in tree) {
    const data = typeof tree === 'string' ? tree : tree.exe;
    const file = `file ${path} ${typeof tree === 'string' ? '-' : 'x'} ${Buffer.byteLength(data)}`;
    return data === '' ? [file] : [file, `data ${data}`];
  }
  if ('link' in tree) return [`link ${path} ${tree.link}`];
  const names = Object.keys(tree.dir).sort((a, b) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b)),
  );
  return [
    `dir ${path}`,
    ...names.flatMap((n) => expectedEvents(tree.dir[n] as Tree, path === '' ? n : `${path}/${n}`)),
  ];
}

describe('writeNar()', () => {
  test('writes the NAR of a single file exactly as nix-store --dump frames it', () => {
    const bytes = nar('hello');
    const expected = Buffer.concat(
      ['nix-archive-1', '(', 'type', 'regular', 'contents', 'hello', ')'].map((s) => narString(s)),
    );
    expect(bytes).toEqual(expected);
    expect(nar({ exe: 'a' })).toEqual(
      Buffer.concat(
        ['nix-archive-1', '(', 'type', 'regular', 'executable', '', 'contents', 'a', ')'].map((s) =>
          narString(s),
        ),
      ),
    );
  });

  test('sorts directory entries by bytes and refuses invalid or duplicate names', () => {
    const parsed = events(nar(dir({ b: '1', a: '2', B: '3' })));
    expect(parsed.filter((e) => e.startsWith('file'))).toEqual([
      'file B - 1',
      'file a - 1',
      'file b - 1',
    ]);
    for (const name of ['', '.', '..', 'a/b', 'a\0b']) {
      expect(() => nar(dir({ [name]: 'x' }))).toThrow(NixError);
    }
    const dup: NarSource = {
      type: 'directory',
      entries: () => [
        [Buffer.from('a'), () => source('1')],
        [Buffer.from('a'), () => source('2')],
      ],
    };
    expect(() => [...writeNar(dup)]).toThrow(/duplicate/);
  });

  test('refuses a file whose contents do not match its size', () => {
    const lying: NarSource = {
      type: 'regular',
      executable: false,
      size: 3,
      contents: () => [Buffer.from('ab')],
    };
    expect(() => [...writeNar(lying)]).toThrow(/changed/);
  });

  test('frames a size past 2³² as a full 64-bit little-endian length', () => {
    const size = 2 ** 32 + 5;
    const huge: NarSource = {
      type: 'regular',
      executable: false,
      size,
      contents: () => [Buffer.alloc(8192)],
    };
    // The first chunk carries the header up to the contents' length; the rest is not needed.
    const first = writeNar(huge).next().value;
    const header = Buffer.concat(
      [NAR_MAGIC, '(', 'type', 'regular', 'contents'].map((t) => narString(t)),
    );
    expect(
      Buffer.from(first ?? [])
        .subarray(0, header.length)
        .equals(header),
    ).toBe(true);
    expect(Buffer.from(first ?? []).readBigUInt64LE(header.length)).toBe(BigInt(size));
  });
});

describe('NarParser', () => {
  test('reads back what writeNar wrote, whatever the chunk size', () => {
    const bytes = nar(TREE);
    const whole = events(bytes);
    expect(whole).toEqual(expectedEvents(TREE));
    expect(whole).toContain('file bin/hello x 18');
    expect(whole).toContain('link link bin/hello');
    expect(whole).toContain('dir empty-dir');
    expect(whole).toContain('file nested/a/b/c - 4');
    for (const chunk of [1, 3, 7, 8, 64]) expect(events(bytes, chunk)).toEqual(whole);
  });

  // Each class of malformed archive, built by editing a valid one.
  const valid = nar(dir({ a: 'x', b: dir({ c: 'y' }) }));
  const replace = (from: Tree | string, to: Uint8Array) => {
    const needle = typeof from === 'string' ? narString(from) : nar(from);
    const at = valid.indexOf(needle);
    if (at < 0) throw new Error('needle not found');
    return Buffer.concat([valid.subarray(0, at), to, valid.subarray(at + needle.length)]);
  };
  test.each([
    ['wrong magic', () => Buffer.concat([narString('nix-archive-2'), valid.subarray(24)])],
    ['an unknown token', () => replace('regular', narString('regulr'))],
    ['an unknown file type', () => replace('regular', narString('fifo'))],
    [
      'non-zero padding',
      () => {
        const b = Buffer.from(valid);
        b[8 + 13] = 1;
        return b;
      },
    ],
    ['trailing bytes', () => Buffer.concat([valid, Buffer.alloc(8)])],
    ['a truncated archive', () => valid.subarray(0, valid.length - 8)],
    [
      'an over-long token',
      () => Buffer.concat([narString('nix-archive-1'), narString('x'.repeat(100))]),
    ],
    ['an over-long name', () => replace('a', narString('a'.repeat(5000)))],
    [
      'a huge length',
      () => Buffer.concat([Buffer.from('ffffffffffffffff', 'hex'), valid.subarray(8)]),
    ],
    ['a name with a slash', () => replace('a', narString('a/'))],
    ['the name ..', () => replace('a', narString('..'))],
    ['an empty name', () => replace('a', narString(''))],
    ['unsorted names', () => replace('a', narString('z'))],
    ['a duplicate name', () => replace('a', narString('b'))],
    ['executable with a value', () => nar({ exe: 'a' }).fill(0x31, 8 * 14, 8 * 14 + 1)],
  ])('rejects %s', (_, make) => {
    expect(() => events(make())).toThrow(NixError);
  });

  test('rejects nesting deeper than the limit', () => {
    let tree: Tree = 'leaf';
    for (let i = 0; i < 300; i++) tree = dir({ d: tree });
    const parser = new NarParser();
    expect(() => {
      parser.push(nar(tree));
    }).toThrow(/deeper/);
  });

  test('random trees: write then parse gives the same tree (property)', () => {
    const name = fc.stringMatching(/^[a-zA-Z0-9._-]{1,8}$/).filter((n) => n !== '.' && n !== '..');
    const tree: fc.Arbitrary<Tree> = fc.letrec<{ tree: Tree }>((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.string({ maxLength: 40 }),
        fc.record({ exe: fc.string({ maxLength: 10 }) }),
        fc.record({ link: fc.stringMatching(/^[a-z/]{1,10}$/) }),
        fc.record({ dir: fc.dictionary(name, tie('tree'), { maxKeys: 4 }) }),
      ),
    })).tree;
    fc.assert(
      fc.property(tree, fc.integer({ min: 1, max: 50 }), (t, chunk) => {
        const bytes = nar(t);
        expect(events(bytes, chunk)).toEqual(expectedEvents(t));
        expect(hashNarSource(source(t)).narSize).toBe(bytes.length);
      }),
    );
  });

  test('arbitrary and mutated bytes give a NixError, never another exception (property)', () => {
    const base = nar(TREE);
    const mutated = fc
      .tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 }))
      .map(([at, v]) => {
        const b = Buffer.from(base);
        b[at] = v;
        return b;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated), (bytes) => {
        try {
          events(bytes, 13);
        } catch (e) {
          expect(e).toBeInstanceOf(NixError);
        }
      }),
      { numRuns: 5000 },
    );
  });
});

describe('NAR hashing', () => {
  test('hashNarSource() and NarHasher agree and give SHA-256 of the bytes', async () => {
    const bytes = nar(TREE);
    const direct = hashNarSource(source(TREE));
    const hasher = new NarHasher();
    hasher.update(bytes);
    const streamed = await hashNarStream([bytes.subarray(0, 100), bytes.subarray(100)]);
    const expected = `sha256:${Buffer.from(await crypto.subtle.digest('SHA-256', bytes)).toString('hex')}`;
    for (const s of [direct, hasher.digest(), streamed]) {
      expect(formatHash(s.narHash, 'base16')).toBe(expected);
      expect(s.narSize).toBe(bytes.length);
    }
  });
});
