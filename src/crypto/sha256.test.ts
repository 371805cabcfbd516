import { createHash } from 'node:crypto';
import { MessageChannel } from 'node:worker_threads';
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { requireAvailable, shouldRun } from '../../test/support/requirements.js';
import { HAVE_NATIVE_SHA256, sha256Spans, sha256SpansNodeCrypto } from './sha256.js';

/** SHA-256 of each prefix ‖ span, one by one, as the reference. */
function reference(prefix: Uint8Array, data: Uint8Array, spans: Uint32Array): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < spans.length; i += 2)
    out.push(
      createHash('sha256')
        .update(prefix)
        .update(data.subarray(spans[i], spans[i + 1]))
        .digest(),
    );
  return Buffer.concat(out);
}

const cases = fc
  .record({
    prefix: fc.uint8Array({ maxLength: 40 }),
    data: fc.uint8Array({ maxLength: 600 }),
    cuts: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 20 }),
  })
  .map(({ prefix, data, cuts }) => {
    const spans = new Uint32Array(
      cuts.flatMap(([a, b]) => {
        const x = a % (data.length + 1);
        const y = b % (data.length + 1);
        return [Math.min(x, y), Math.max(x, y)];
      }),
    );
    return { prefix, data, spans };
  });

describe.each([
  ['sha256Spans', sha256Spans],
  ['sha256SpansNodeCrypto', sha256SpansNodeCrypto],
] as const)('%s()', (_, hashSpans) => {
  test('gives SHA-256(prefix ‖ span) for each span, overlapping, empty or none', () => {
    fc.assert(
      fc.property(cases, ({ prefix, data, spans }) => {
        expect(hashSpans(prefix, data, spans).equals(reference(prefix, data, spans))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('hashes the RFC 6962 leaf of the empty entry', () => {
    const leaf = hashSpans(new Uint8Array([0]), new Uint8Array(0), new Uint32Array([0, 0]));
    expect(leaf.toString('hex')).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    );
  });

  test('rejects a span past the data, a reversed span and an odd number of bounds', () => {
    const data = new Uint8Array(10);
    const none = new Uint8Array(0);
    expect(() => hashSpans(none, data, new Uint32Array([0, 11]))).toThrow(RangeError);
    expect(() => hashSpans(none, data, new Uint32Array([5, 4]))).toThrow(RangeError);
    expect(() => hashSpans(none, data, new Uint32Array([0]))).toThrow(RangeError);
  });

  test('returns memory of its own, which can be moved to another thread', () => {
    const out = hashSpans(new Uint8Array(0), new Uint8Array(8), new Uint32Array([0, 8]));
    const { port1, port2 } = new MessageChannel();
    try {
      port1.postMessage(out, [out.buffer as ArrayBuffer]);
      expect(out.buffer.byteLength).toBe(0); // moved, not copied
    } finally {
      port1.close();
      port2.close();
    }
  });
});

describe.runIf(shouldRun(HAVE_NATIVE_SHA256))('the native batched SHA-256', () => {
  beforeAll(() => {
    requireAvailable(HAVE_NATIVE_SHA256, 'native/sha256-spans (npm run build, with cc)');
  });

  test('hashes views into a larger buffer at their own offsets', () => {
    const whole = Buffer.from('0123456789abcdefghij');
    const view = whole.subarray(5, 15);
    const spans = new Uint32Array([0, 10, 2, 3]);
    expect(sha256Spans(new Uint8Array([7]), view, spans)).toEqual(
      reference(new Uint8Array([7]), view, spans),
    );
  });
});
