import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { NIX32_ALPHABET, generateNixSecretKey, nixPublicKey } from '../nix/index.js';
import { signNote } from '../tlog/index.js';
import { DemandError } from './errors.js';
import { demandSigner, demandVerifier, parseReporters } from './keys.js';
import {
  type DemandPath,
  type DemandReport,
  MAX_DEMAND_BYTES,
  MAX_DEMAND_PATHS,
  formatDemandReport,
  openDemandReport,
  parseDemandReport,
  signDemandReport,
} from './report.js';
import { errorCode } from '../../test/support/errors.js';
import { sortedHashPart as H } from '../../test/support/claims.js';

const key = generateNixSecretKey('cache.example.org-1');
const signer = demandSigner(key);
const verifier = demandVerifier(nixPublicKey(key));

const report = (paths: DemandPath[], extra: Partial<DemandReport> = {}): DemandReport => ({
  reporter: key.name,
  periodStart: 1_764_720_000,
  periodSeconds: 3600,
  paths,
  ...extra,
});

const code = (fn: () => unknown) => errorCode(DemandError, fn);

const hashPart = fc
  .array(fc.constantFrom(...NIX32_ALPHABET.split('')), { minLength: 32, maxLength: 32 })
  .map((a) => a.join(''));
const name = fc.stringMatching(/^[a-z0-9][a-z0-9.+_-]{0,30}$/).filter((n) => !n.startsWith('.'));
const path = fc
  .record({ hashPart, requests: fc.integer({ min: 1, max: 1e12 }), name: fc.option(name) })
  .chain((p) =>
    fc.integer({ min: 0, max: p.requests }).map((refused) => ({
      hashPart: p.hashPart,
      requests: p.requests,
      refused,
      ...(p.name === null ? {} : { name: p.name }),
    })),
  );
const reports = fc
  .record({
    periodSeconds: fc.integer({ min: 60, max: 7 * 86_400 }),
    n: fc.integer({ min: 0, max: 1e6 }),
    paths: fc.uniqueArray(path, { selector: (p) => p.hashPart, maxLength: 20 }),
  })
  .map(({ periodSeconds, n, paths }) =>
    report(
      [...paths].sort((a, b) => (a.hashPart < b.hashPart ? -1 : 1)),
      {
        periodSeconds,
        periodStart: n * periodSeconds,
      },
    ),
  );

describe('formatDemandReport() and parseDemandReport()', () => {
  test('format a report as documented', () => {
    const text = formatDemandReport(
      report([
        { hashPart: H(1), requests: 12, refused: 3, name: 'hello-2.12' },
        { hashPart: H(2), requests: 5, refused: 0 },
      ]),
    );
    expect(text).toBe(
      `accord/demand/v1\nreporter cache.example.org-1\nperiod 1764720000 3600\n${H(1)} 12 3 hello-2.12\n${H(2)} 5 0\n`,
    );
  });

  test('round-trip every report, and the text is canonical', () => {
    fc.assert(
      fc.property(reports, (r) => {
        const text = formatDemandReport(r);
        const parsed = parseDemandReport(text);
        expect(parsed).toEqual(r);
        expect(formatDemandReport(parsed)).toBe(text);
      }),
    );
  });

  test('parseDemandReport() never crashes on random or mutated input: a DemandError or a report', () => {
    const good = formatDemandReport(
      report([{ hashPart: H(1), requests: 12, refused: 3, name: 'hello-2.12' }]),
    );
    const mutated = fc
      .tuple(fc.nat(good.length), fc.nat(good.length), fc.string({ maxLength: 5 }))
      .map(([a, b, s]) => good.slice(0, Math.min(a, b)) + s + good.slice(Math.max(a, b)));
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated), (input) => {
        try {
          const r = parseDemandReport(input);
          expect(formatDemandReport(r)).toBe(input);
        } catch (e) {
          expect(e).toBeInstanceOf(DemandError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test.each([
    ['a leading zero', `${H(1)} 012 3`],
    ['a plus sign', `${H(1)} +12 3`],
    ['zero requests', `${H(1)} 0 0`],
    ['more refused than requests', `${H(1)} 2 3`],
    ['a bad hash part', `${H(1).replace(/.$/, 'e')} 2 1`],
    ['a bad name', `${H(1)} 2 1 bad!name`],
    ['a fifth field', `${H(1)} 2 1 a b`],
    ['two spaces', `${H(1)}  2 1`],
    ['a number too large', `${H(1)} 1000000000000000 1`],
  ])('parseDemandReport() rejects a path line with %s', (_, line) => {
    const text = `accord/demand/v1\nreporter r\nperiod 3600 3600\n${line}\n`;
    expect(code(() => parseDemandReport(text))).toBe('malformed');
  });

  test('parseDemandReport() rejects paths out of order or repeated', () => {
    const head = 'accord/demand/v1\nreporter r\nperiod 3600 3600\n';
    expect(code(() => parseDemandReport(`${head}${H(2)} 1 0\n${H(1)} 1 0\n`))).toBe('malformed');
    expect(code(() => parseDemandReport(`${head}${H(1)} 1 0\n${H(1)} 1 0\n`))).toBe('malformed');
    expect(code(() => parseDemandReport(`${head}${H(1)} 1 0\n${H(2)} 1 0\n`))).toBe('ok');
  });

  test.each([
    ['unaligned', 'period 3601 3600'],
    ['too short', 'period 0 59'],
    ['too long', 'period 0 604860'],
    ['leading zero', 'period 03600 3600'],
    ['missing length', 'period 3600'],
  ])('parseDemandReport() rejects a period %s', (_, line) => {
    expect(code(() => parseDemandReport(`accord/demand/v1\nreporter r\n${line}\n`))).toBe(
      'malformed',
    );
  });

  test('parseDemandReport() takes exactly MAX_DEMAND_PATHS paths, not one more', () => {
    const paths = Array.from({ length: MAX_DEMAND_PATHS + 1 }, (_, i) => ({
      hashPart: H(i),
      requests: 1,
      refused: 0,
    }));
    const max = formatDemandReport(report(paths.slice(0, -1)));
    expect(parseDemandReport(max).paths).toHaveLength(MAX_DEMAND_PATHS);
    const over = `${max}${H(MAX_DEMAND_PATHS)} 1 0\n`;
    expect(code(() => parseDemandReport(over))).toBe('too-large');
    expect(code(() => formatDemandReport(report(paths)))).toBe('too-large');
  });
});

/** A signed report of exactly `size` bytes: lines of known length, the last padded by its name. */
function signedOfSize(size: number): string {
  const line = (i: number, nameLength: number): DemandPath => ({
    hashPart: H(i),
    requests: 1,
    refused: 0,
    name: 'n'.repeat(nameLength),
  });
  // A line is the 32-character hash part, ' 1 0 ', the name and a newline.
  const bytes = (nameLength: number) => 38 + nameLength;
  let left = size - Buffer.byteLength(signDemandReport(report([]), signer));
  const paths: DemandPath[] = [];
  while (left > bytes(211)) {
    const nameLength = Math.min(200, left - bytes(211));
    paths.push(line(paths.length, nameLength));
    left -= bytes(nameLength);
  }
  paths.push(line(paths.length, left - 38));
  const note = signDemandReport(report(paths), signer);
  expect(Buffer.byteLength(note)).toBe(size);
  return note;
}

describe('openDemandReport()', () => {
  const signed = signDemandReport(
    report([{ hashPart: H(1), requests: 4, refused: 1, name: 'hello-2.12' }]),
    signer,
  );

  test('opens a report signed by a known reporter key', () => {
    const { report: r, verifier: v } = openDemandReport(signed, [verifier]);
    expect(r.reporter).toBe('cache.example.org-1');
    expect(r.paths).toEqual([{ hashPart: H(1), requests: 4, refused: 1, name: 'hello-2.12' }]);
    expect(v).toBe(verifier);
  });

  test('refuses a report signed by an unknown key, even one of the same name', () => {
    const other = demandVerifier(nixPublicKey(generateNixSecretKey('cache.example.org-1')));
    expect(code(() => openDemandReport(signed, [other]))).toBe('untrusted');
    expect(code(() => openDemandReport(signed, []))).toBe('untrusted');
  });

  test('refuses a report whose text was changed after signing', () => {
    const forged = signed.replace(' 4 1 ', ' 9 1 ');
    expect(code(() => openDemandReport(forged, [verifier]))).toBe('untrusted');
  });

  test("refuses a report naming another reporter than its signer's key", () => {
    const other = generateNixSecretKey('other-1');
    const text = formatDemandReport(report([], { reporter: 'cache.example.org-1' }));
    const note = signNote(text, [demandSigner(other)]);
    const v = demandVerifier(nixPublicKey(other));
    expect(code(() => openDemandReport(note, [v, verifier]))).toBe('untrusted');
    expect(code(() => openDemandReport(signNote(text, [signer]), [v, verifier]))).toBe('ok');
  });

  test('takes a report of exactly MAX_DEMAND_BYTES, refuses one byte more before parsing', () => {
    const max = signedOfSize(MAX_DEMAND_BYTES);
    expect(openDemandReport(max, [verifier]).report.reporter).toBe(key.name);
    const over = signedOfSize(MAX_DEMAND_BYTES + 1);
    expect(code(() => openDemandReport(over, [verifier]))).toBe('too-large');
    expect(code(() => openDemandReport(Buffer.from(over), [verifier]))).toBe('too-large');
  });

  test('never crashes on random bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.uint8Array()), (input) => {
        expect(code(() => openDemandReport(input, [verifier]))).not.toBe('ok');
      }),
    );
  });
});

describe('parseReporters()', () => {
  test('reads Nix public keys, skipping comments and blank lines', () => {
    const text = `# the site's proxies\n\n${nixPublicKey(key).name}:${Buffer.from(key.key.publicKey).toString('base64')}\n`;
    const [v] = parseReporters(text);
    expect(v?.name).toBe(key.name);
    expect(v?.keyId).toBe(verifier.keyId);
  });

  test('refuses a bad line, a key name a note key cannot have, and two keys of one name', () => {
    const line = (k: ReturnType<typeof generateNixSecretKey>) =>
      `${k.name}:${Buffer.from(k.key.publicKey).toString('base64')}`;
    expect(code(() => parseReporters('not a key\n'))).toBe('malformed');
    expect(code(() => parseReporters(`${line(generateNixSecretKey('a+b'))}\n`))).toBe('malformed');
    const twice = `${line(generateNixSecretKey('p'))}\n${line(generateNixSecretKey('p'))}\n`;
    expect(code(() => parseReporters(twice))).toBe('malformed');
  });
});
