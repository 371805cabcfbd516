import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { SIG_TYPE_ED25519, newSigner, newVerifier, signNote } from '../tlog/index.js';
import { DemandError } from './errors.js';
import {
  MAX_REASON_BYTES,
  MAX_REBUILD_FAILURES,
  type RebuildFailure,
  type RebuildReport,
  formatRebuildReport,
  openRebuildReport,
  parseRebuildReport,
  shortReason,
  signRebuildReport,
} from './rebuild-report.js';
import { MAX_REPORT_BYTES } from './signed.js';
import { errorCode } from '../../test/support/errors.js';
import { sortedHashPart as H } from '../../test/support/claims.js';

const seed = new Uint8Array(32).fill(7);
const origin = 'rebuilder.example/log';
const signer = newSigner(origin, SIG_TYPE_ED25519, seed);
const verifier = newVerifier(origin, SIG_TYPE_ED25519, signer.publicKey);
const AT = 1_764_720_000_123;
const failure = (i: number, extra: Partial<RebuildFailure> = {}): RebuildFailure => ({
  hashPart: H(i),
  name: `pkg-${i}`,
  attempt: AT - 1000,
  reason: 'error: builder for /nix/store/x.drv failed with exit code 1',
  ...extra,
});
const report = (failures: RebuildFailure[], extra: Partial<RebuildReport> = {}): RebuildReport => ({
  reporter: origin,
  at: AT,
  failures,
  ...extra,
});
const code = (fn: () => unknown) => errorCode(DemandError, fn);

const reason = fc
  .string({ unit: fc.constantFrom(...' !az~'.split('')), minLength: 1, maxLength: 40 })
  .map((s) => s.trim())
  .filter((s) => s !== '');
const reports = fc
  .uniqueArray(fc.record({ i: fc.nat(5000), attempt: fc.integer({ min: 0, max: AT }), reason }), {
    selector: (f) => `${f.i} ${f.attempt}`,
    maxLength: 20,
  })
  .map((fs) =>
    report(
      fs
        .map((f) => failure(f.i, { attempt: f.attempt, reason: f.reason }))
        .sort((a, b) =>
          a.hashPart === b.hashPart ? a.attempt - b.attempt : a.hashPart < b.hashPart ? -1 : 1,
        ),
    ),
  );

describe('formatRebuildReport() and parseRebuildReport()', () => {
  test('format a report as documented', () => {
    expect(formatRebuildReport(report([failure(1, { reason: 'exit 1' })]))).toBe(
      `accord/rebuild/v1\nreporter ${origin}\nat ${AT}\n${H(1)} ${AT - 1000} failed pkg-1 exit 1\n`,
    );
  });

  test('round-trip every report, and the text is canonical', () => {
    fc.assert(
      fc.property(reports, (r) => {
        const text = formatRebuildReport(r);
        expect(parseRebuildReport(text)).toEqual(r);
      }),
    );
  });

  test('parseRebuildReport() never crashes on random or mutated input: a DemandError or a canonical report', () => {
    const good = formatRebuildReport(report([failure(1), failure(2)]));
    const mutated = fc
      .tuple(fc.nat(good.length), fc.nat(good.length), fc.string({ maxLength: 5 }))
      .map(([a, b, s]) => good.slice(0, Math.min(a, b)) + s + good.slice(Math.max(a, b)));
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated), (input) => {
        try {
          expect(formatRebuildReport(parseRebuildReport(input))).toBe(input);
        } catch (e) {
          expect(e).toBeInstanceOf(DemandError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  const head = `accord/rebuild/v1\nreporter ${origin}\nat ${AT}\n`;
  test.each([
    ['a leading zero in the attempt', `${H(1)} 0${AT - 1} failed a r`],
    ['an attempt later than the report', `${H(1)} ${AT + 1} failed a r`],
    ['another status', `${H(1)} ${AT} built a r`],
    ['no reason', `${H(1)} ${AT} failed a`],
    ['a reason with a leading space', `${H(1)} ${AT} failed a  r`],
    ['a reason with a tab', `${H(1)} ${AT} failed a r\tx`],
    ['a reason too long', `${H(1)} ${AT} failed a ${'r'.repeat(MAX_REASON_BYTES + 1)}`],
    ['a bad hash part', `${H(1).replace(/.$/, 'e')} ${AT} failed a r`],
    ['a bad name', `${H(1)} ${AT} failed bad!name r`],
  ])('parseRebuildReport() rejects a failure line with %s', (_, line) => {
    expect(code(() => parseRebuildReport(`${head}${line}\n`))).toBe('malformed');
  });

  test('parseRebuildReport() takes a reason of exactly MAX_REASON_BYTES', () => {
    const line = `${H(1)} ${AT} failed a ${'r'.repeat(MAX_REASON_BYTES)}`;
    expect(code(() => parseRebuildReport(`${head}${line}\n`))).toBe('ok');
  });

  test('parseRebuildReport() rejects failures out of order or repeated, takes one path tried twice', () => {
    const line = (i: number, attempt: number) => `${H(i)} ${attempt} failed a r\n`;
    expect(code(() => parseRebuildReport(`${head}${line(2, 5)}${line(1, 5)}`))).toBe('malformed');
    expect(code(() => parseRebuildReport(`${head}${line(1, 5)}${line(1, 5)}`))).toBe('malformed');
    expect(code(() => parseRebuildReport(`${head}${line(1, 6)}${line(1, 5)}`))).toBe('malformed');
    expect(code(() => parseRebuildReport(`${head}${line(1, 5)}${line(1, 6)}`))).toBe('ok');
  });

  test('parseRebuildReport() takes exactly MAX_REBUILD_FAILURES failures, not one more', () => {
    const fs = Array.from({ length: MAX_REBUILD_FAILURES + 1 }, (_, i) => failure(i));
    const max = formatRebuildReport(report(fs.slice(0, -1)));
    expect(parseRebuildReport(max).failures).toHaveLength(MAX_REBUILD_FAILURES);
    expect(code(() => parseRebuildReport(`${max}${H(MAX_REBUILD_FAILURES)} 1 failed a r\n`))).toBe(
      'too-large',
    );
    expect(code(() => formatRebuildReport(report(fs)))).toBe('too-large');
  });
});

describe('shortReason()', () => {
  test('keeps one printable line, the end of a long log', () => {
    expect(shortReason('building\n\n  this fails\u00e9\nerror: builder failed\n')).toBe(
      'building | this fails? | error: builder failed',
    );
    const long = shortReason(`${'x'.repeat(1000)}\nerror: the end`);
    expect(long).toHaveLength(MAX_REASON_BYTES);
    expect(long.endsWith('error: the end')).toBe(true);
    expect(shortReason('\n \n')).toBe('failed');
  });

  test('always gives a reason a report takes', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), (text) => {
        const line = `${H(1)} ${AT} failed a ${shortReason(text)}`;
        expect(
          parseRebuildReport(`accord/rebuild/v1\nreporter r\nat ${AT}\n${line}\n`).failures,
        ).toHaveLength(1);
      }),
    );
  });
});

describe('openRebuildReport()', () => {
  const signed = signRebuildReport(report([failure(1)]), signer);

  test("opens a report signed by a followed log's key", () => {
    const { report: r, verifier: v } = openRebuildReport(signed, [verifier]);
    expect(r.failures).toEqual([failure(1)]);
    expect(v).toBe(verifier);
  });

  test('refuses a report signed by an unknown key, even one of the same name, or changed after signing', () => {
    const other = newSigner(origin, SIG_TYPE_ED25519, new Uint8Array(32).fill(8));
    const otherVerifier = newVerifier(origin, SIG_TYPE_ED25519, other.publicKey);
    expect(code(() => openRebuildReport(signed, [otherVerifier]))).toBe('untrusted');
    expect(code(() => openRebuildReport(signed, []))).toBe('untrusted');
    expect(code(() => openRebuildReport(signed.replace('pkg-1', 'pkg-2'), [verifier]))).toBe(
      'untrusted',
    );
  });

  test("refuses a report naming another reporter than its signer's key", () => {
    const other = newSigner('other.example/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(9));
    const v = newVerifier(other.name, SIG_TYPE_ED25519, other.publicKey);
    const note = signNote(formatRebuildReport(report([])), [other]);
    expect(code(() => openRebuildReport(note, [v, verifier]))).toBe('untrusted');
  });

  test('refuses a note with a second signature, even by a stranger', () => {
    const stranger = newSigner('stranger', SIG_TYPE_ED25519, new Uint8Array(32).fill(3));
    const twice = signNote(formatRebuildReport(report([failure(1)])), [signer, stranger]);
    expect(code(() => openRebuildReport(twice, [verifier]))).toBe('malformed');
  });

  test('refuses more than MAX_REPORT_BYTES before parsing, and a checkpoint signed by the same key', () => {
    const over = `${signed}${' '.repeat(MAX_REPORT_BYTES)}`;
    expect(code(() => openRebuildReport(over, [verifier]))).toBe('too-large');
    const checkpoint = signNote(`${origin}\n5\n${Buffer.alloc(32).toString('base64')}\n`, [signer]);
    expect(code(() => openRebuildReport(checkpoint, [verifier]))).toBe('malformed');
  });
});
