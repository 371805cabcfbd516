import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { BuildLog, MAX_BUILD_LOG_LINE } from './build-log.js';

const A = '/nix/store/dg5xhcybza79knlkxrlq33dyd9d57q92-exp-a.drv';
const B = '/nix/store/m6sf6lkh8ah0v5f2kqbnc75gsisrzmf2-exp-b.drv';
const D = '/nix/store/nzbzgp1l8dw8r4s5s1910qhkvkc73d45-exp-d.drv';
const esc = (s: string) => JSON.stringify(s).slice(1, -1);
const red = (s: string) => `\u001b[35;1m${s}\u001b[0m`;
const error = (text: string) =>
  `@nix {"action":"msg","column":null,"file":null,"level":0,"line":null,"msg":"${esc(`\u001b[31;1merror:\u001b[0m ${text}`)}"}`;

/** What Nix 2.8 wrote for `nix-store --realise --keep-going --option timeout 2` of A, B and D
 * (B depends on A; A fails, D runs past its deadline), two builds' lines interleaved. */
const RUN = [
  '@nix {"action":"msg","level":3,"msg":"these 3 derivations will be built:"}',
  '@nix {"action":"start","id":5,"level":0,"text":"","type":102}',
  '@nix {"action":"start","id":6,"level":0,"text":"","type":104}',
  '@nix {"action":"result","fields":[0,3,0,0],"id":6,"type":105}',
  `@nix {"action":"start","fields":["${A}","",1,1],"id":9,"level":3,"text":"building '${A}'","type":105}`,
  `@nix {"action":"start","fields":["${D}","",1,1],"id":10,"level":3,"text":"building '${D}'","type":105}`,
  '@nix {"action":"result","fields":["failing a"],"id":9,"type":101}',
  '@nix {"action":"result","fields":["slow"],"id":10,"type":101}',
  '@nix {"action":"result","fields":["\\u001b[1mbold\\u001b[0m a"],"id":9,"type":101}',
  '@nix {"action":"result","fields":[0,3,1,1],"id":6,"type":105}',
  error(`builder for '${red(A)}' failed with exit code 2`),
  error(`${red(`building of '${D}!*' from .drv file`)} timed out after ${red('2')} seconds`),
  error(`${red('1')} dependencies of derivation '${red(B)}' failed to build`),
  '@nix {"action":"result","fields":[0,3,0,3],"id":6,"type":105}',
  '@nix {"action":"stop","id":9}',
  error(`build of ${red(`'${A}', '${B}', '${D}'`)} failed`),
  "warning: you did not specify '--add-root'; the result might be removed by the garbage collector",
];

describe('BuildLog', () => {
  test('tells builds apart by activity and errors by the one derivation they name', () => {
    const log = new BuildLog([A, B, D], '/nix/store');
    const progress = RUN.map((l) => log.line(l)).filter((p) => p !== undefined);
    expect(progress).toEqual([
      { ended: 0, failed: 0, expected: 3 },
      { ended: 1, failed: 1, expected: 3 },
      { ended: 3, failed: 3, expected: 3 },
    ]);
    expect(log.of(A)).toEqual({
      started: true,
      errors: [`builder for '${A}' failed with exit code 2`],
      log: ['failing a', 'bold a'],
    });
    expect(log.of(D).errors).toEqual([
      `building of '${D}!*' from .drv file timed out after 2 seconds`,
    ]);
    expect(log.of(D).log).toEqual(['slow']);
    expect(log.of(B)).toEqual({
      started: false,
      errors: [`1 dependencies of derivation '${B}' failed to build`],
      log: [],
    });
    // The summary names three: it is nobody's, as is a line that is no event.
    expect(log.other()).toEqual([
      `build of '${A}', '${B}', '${D}' failed`,
      "warning: you did not specify '--add-root'; the result might be removed by the garbage collector",
    ]);
    expect(log.failure(A)).toBe(
      `builder for '${A}' failed with exit code 2\nlast log lines:\n> failing a\n> bold a`,
    );
  });

  test('a derivation not of the call is not tracked; its log lines and errors are not pinned on another', () => {
    const log = new BuildLog([B], '/nix/store');
    for (const l of RUN) log.line(l);
    expect(log.of(B).log).toEqual([]);
    expect(log.of(B).errors).toEqual([`1 dependencies of derivation '${B}' failed to build`]);
    expect(log.of(A)).toEqual({ started: false, errors: [], log: [] });
    expect(log.other()).toContain(`builder for '${A}' failed with exit code 2`);
  });

  test('a failure with nothing said of the derivation gives the call’s last other lines, or says so', () => {
    const quiet = new BuildLog([A], '/nix/store');
    expect(quiet.failure(A)).toBe(`Nix did not build ${A}`);
    quiet.line('error: getting status of /nix/var/nix/db: Permission denied');
    expect(quiet.failure(A)).toBe('error: getting status of /nix/var/nix/db: Permission denied');
  });

  test('a name that only begins like a target is not the target', () => {
    const log = new BuildLog([A], '/nix/store');
    log.line(error(`builder for '${A.slice(0, -4)}-2.drv' failed`));
    expect(log.of(A).errors).toEqual([]);
  });

  test('feed() reads the same events however the output is cut; an endless line is cut and skipped', () => {
    const whole = new BuildLog([A, B, D], '/nix/store');
    for (const l of RUN) whole.line(l);
    const text = `${RUN.join('\n')}\n`;
    for (let cut = 0; cut <= text.length; cut += 7) {
      const log = new BuildLog([A, B, D], '/nix/store');
      const seen: number[] = [];
      log.feed(text.slice(0, cut), (p) => seen.push(p.ended));
      log.feed(text.slice(cut), (p) => seen.push(p.ended));
      log.end();
      expect(seen).toEqual([0, 1, 3]);
      for (const d of [A, B, D]) expect(log.of(d)).toEqual(whole.of(d));
      expect(log.other()).toEqual(whole.other());
    }
    const log = new BuildLog([A], '/nix/store');
    log.feed(RUN[4] ?? '');
    log.feed('\n@nix {"action":"result","fields":["');
    for (let i = 0; i < 100; i++) log.feed('x'.repeat(1000));
    log.feed(
      '"],"id":9,"type":101}\n@nix {"action":"result","fields":["after"],"id":9,"type":101}',
    );
    log.end();
    expect(log.of(A).log).toEqual(['after']);
    expect(log.other().length).toBe(1);
    expect(log.other()[0]?.length).toBeLessThanOrEqual(MAX_BUILD_LOG_LINE);
  });

  test('tails and messages are capped', () => {
    const log = new BuildLog([A], '/nix/store');
    log.line(RUN[4] ?? '');
    for (let i = 0; i < 100; i++)
      log.line(
        `@nix {"action":"result","fields":["line ${i} ${'x'.repeat(5000)}"],"id":9,"type":101}`,
      );
    for (let i = 0; i < 100; i++) log.line(error(`builder for '${A}' failed ${i}`));
    const { log: lines, errors } = log.of(A);
    expect(lines.length).toBe(12);
    expect(lines[11]?.startsWith('line 99 ')).toBe(true);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(MAX_BUILD_LOG_LINE);
    expect(errors.length).toBe(8);
  });

  test('random bytes and mutated events never throw', () => {
    for (let i = 0; i < 3000; i++) {
      const log = new BuildLog([A, B], '/nix/store');
      const base = RUN[i % RUN.length] ?? '';
      const bytes = Buffer.from(base);
      for (let k = 0; k < 1 + (i % 4); k++)
        bytes[Math.floor(Math.random() * bytes.length)] = Math.floor(Math.random() * 256);
      log.line(bytes.toString('latin1'));
      log.line(`@nix ${randomBytes(i % 64).toString('latin1')}`);
      log.line('@nix {"action":"result","fields":[1e400,"x",null],"id":6,"type":105}');
      log.line('@nix {"action":"start","fields":[{}],"id":"9","type":105}');
      expect(typeof log.failure(A)).toBe('string');
    }
  });
});
