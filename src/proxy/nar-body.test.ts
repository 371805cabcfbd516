import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { writeAll } from './nar-body.js';

/** A sink whose writes wait until `release()`, then go through. */
function slowSink(highWaterMark: number) {
  let open = false;
  const pending: (() => void)[] = [];
  const sink = new Writable({
    highWaterMark,
    write(_chunk, _encoding, callback) {
      if (open) setImmediate(callback);
      else pending.push(callback);
    },
  });
  sink.on('error', () => undefined);
  const release = () => {
    open = true;
    for (const f of pending.splice(0)) setImmediate(f);
  };
  return { sink, release };
}

describe('writeAll()', () => {
  test('resolves at once while the sink takes more, else once it drained', async () => {
    const { sink, release } = slowSink(1 << 20);
    await writeAll(sink, [Buffer.alloc(10), Buffer.alloc(10)]);
    let done = false;
    const full = writeAll(sink, [Buffer.alloc(2 << 20)]).then(() => {
      done = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    release();
    await full;
    expect(done).toBe(true);
  });

  test('rejects, instead of waiting for ever, when the sink goes while it waits', async () => {
    const { sink } = slowSink(16);
    const waiting = writeAll(sink, [Buffer.alloc(64)]);
    sink.destroy();
    await expect(waiting).rejects.toThrow(/the NAR response is gone/);
  });

  test('rejects at once on a sink already gone or ended', async () => {
    const gone = slowSink(16).sink;
    gone.destroy();
    await expect(writeAll(gone, [Buffer.alloc(1)])).rejects.toThrow(/gone/);
    const ended = new Writable({ write: (_c, _e, cb) => cb() });
    ended.end();
    await expect(writeAll(ended, [Buffer.alloc(1)])).rejects.toThrow(/gone/);
  });
});
