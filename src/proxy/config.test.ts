import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { formatNixSecretKey, generateNixSecretKey } from '../nix/index.js';
import { SIG_TYPE_ED25519, generateKey } from '../tlog/index.js';
import { ConfigError, parseProxyConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'accord-config-'));
writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(generateNixSecretKey('p-1')));
writeFileSync(
  join(dir, 'policy'),
  `log ${generateKey('a.test/log', SIG_TYPE_ED25519).verifierKey} http://a.test\ntrust t any a.test/log\ndecide t\nquorum none\n`,
);
const base = 'signing-key = "proxy.sk"\npolicy = "policy"\n';
const upstream = '[[upstream]]\nurl = "https://cache.example/"\n';
const parse = (text: string) => parseProxyConfig(text, dir);

describe('proxy config', () => {
  test('defaults, relative paths and upstream order', () => {
    const c = parse(`${base}${upstream}[[upstream]]\nurl = "file:///srv/c"\npriority = 10\n`);
    expect(c.listen).toBe('127.0.0.1:8081');
    expect(c.statePath).toBe(join(dir, 'accord-proxy.db'));
    expect(c.upstreams.map((u) => u.url)).toEqual(['file:///srv/c', 'https://cache.example']);
    expect(c.monitors).toEqual([]);
    expect(c.narCacheBytes).toBe(256 * 2 ** 20);
    expect(parse(`${base}nar-cache-mib = 0\n${upstream}`).narCacheBytes).toBe(0);
    expect(() => parse(`${base}nar-cache-mib = -1\n${upstream}`)).toThrow(/nar-cache-mib/);
    expect(c.policy.logs.map((l) => l.origin)).toEqual(['a.test/log']);
    expect([c.prefetchReferences, c.prefetchNars]).toEqual([true, true]);
    const off = parse(`${base}prefetch-references = false\nprefetch-nars = false\n${upstream}`);
    expect([off.prefetchReferences, off.prefetchNars]).toEqual([false, false]);
  });

  test('monitors are http(s) URLs, trailing slashes dropped', () => {
    const c = parse(
      `${base}monitors = ["http://127.0.0.1:8083/", "https://m.example"]\n${upstream}`,
    );
    expect(c.monitors).toEqual(['http://127.0.0.1:8083', 'https://m.example']);
    for (const bad of ['"http://m"', '["ftp://m"]', '[3]', '[""]']) {
      expect(() => parse(`${base}monitors = ${bad}\n${upstream}`)).toThrow(
        /monitors must be a list of http\(s\):\/\/ URLs/,
      );
    }
  });

  test('[demand]: defaults, and each key checked', () => {
    expect(parse(`${base}${upstream}`).demand).toBeUndefined();
    const d = parse(`${base}${upstream}[demand]\nmonitor = "https://m.example/"\n`).demand;
    expect(d).toEqual({
      monitor: 'https://m.example',
      periodSeconds: 3600,
      minRequests: 3,
      maxPaths: 1000,
    });
    const set = parse(
      `${base}${upstream}[demand]\nmonitor = "http://127.0.0.1:1"\nperiod-seconds = 60\nmin-requests = 1\nmax-paths = 10000\n`,
    ).demand;
    expect([set?.periodSeconds, set?.minRequests, set?.maxPaths]).toEqual([60, 1, 10000]);
    const cases: [string, RegExp][] = [
      ['', /monitor must be an http/],
      ['monitor = "ftp://m"\n', /monitor must be an http/],
      ['monitor = "http://m"\nperiod-seconds = 59\n', /period-seconds must be from 60/],
      ['monitor = "http://m"\nperiod-seconds = 604801\n', /period-seconds must be/],
      ['monitor = "http://m"\nmin-requests = 0\n', /min-requests and max-paths/],
      ['monitor = "http://m"\nmax-paths = 10001\n', /max-paths must be an integer/],
      ['monitor = "http://m"\nmin-count = 2\n', /demand: unknown key "min-count"/],
    ];
    for (const [table, message] of cases)
      expect(() => parse(`${base}${upstream}[demand]\n${table}`)).toThrow(message);
    expect(() => parse(`${base}demand = 3\n${upstream}`)).toThrow(/\[demand\] table/);
    writeFileSync(join(dir, 'plus.sk'), formatNixSecretKey(generateNixSecretKey('p+1')));
    expect(() =>
      parse(
        `signing-key = "plus.sk"\npolicy = "policy"\n${upstream}[demand]\nmonitor = "http://m"\n`,
      ),
    ).toThrow(/cannot name a note key/);
  });

  test('mistakes are named', () => {
    const cases: [string, RegExp][] = [
      [base, /at least one \[\[upstream\]\]/],
      [`${base}lissten = "x"\n${upstream}`, /unknown key "lissten"/],
      [`policy = "policy"\n${upstream}`, /signing-key is required/],
      [`${base}priority = -1\n${upstream}`, /priority must be an integer/],
      [`${base}[[upstream]]\nurl = "gopher://x"\n`, /url must be an http/],
      [`${base}${upstream}intermittent = "yes"\n`, /intermittent must be true or false/],
      [`${base}prefetch-nars = 1\n${upstream}`, /prefetch-nars must be true or false/],
      [`${base}= 1`, /not valid TOML/],
      [`signing-key = "missing.sk"\npolicy = "policy"\n${upstream}`, /cannot read signing-key/],
    ];
    for (const [text, message] of cases) {
      expect(() => parse(text)).toThrow(ConfigError);
      expect(() => parse(text)).toThrow(message);
    }
  });

  test('serve-zstd: off by default; on, its level, processes and command, each checked', () => {
    expect(parse(`${base}${upstream}`).zstd).toBeUndefined();
    expect(parse(`${base}serve-zstd = false\n${upstream}`).zstd).toBeUndefined();
    expect(parse(`${base}serve-zstd = true\n${upstream}`).zstd).toEqual({
      command: 'zstd',
      level: 3,
      processes: 4,
    });
    const set = parse(
      `${base}serve-zstd = true\nzstd-level = 19\nzstd-processes = 1\nzstd-command = "bin/zstd"\n${upstream}`,
    );
    expect(set.zstd).toEqual({ command: join(dir, 'bin/zstd'), level: 19, processes: 1 });
    const cases: [string, RegExp][] = [
      ['serve-zstd = "yes"', /serve-zstd must be true or false/],
      ['serve-zstd = true\nzstd-level = 0', /zstd-level must be an integer from 1 to 19/],
      ['serve-zstd = true\nzstd-level = 20', /zstd-level must be an integer from 1 to 19/],
      ['serve-zstd = true\nzstd-processes = 0', /zstd-processes must be an integer from 1/],
      ['serve-zstd = true\nzstd-processes = 65', /zstd-processes must be an integer from 1 to 64/],
      ['serve-zstd = true\nzstd-command = ""', /zstd-command must be a non-empty string/],
      ['zstd-level = 3', /zstd-level is set but serve-zstd is not true/],
      ['serve-zstd = false\nzstd-command = "zstd"', /zstd-command is set but serve-zstd/],
      ['serve-zstd = true\nzstd-levle = 3', /unknown key "zstd-levle"/],
    ];
    for (const [lines, message] of cases) {
      expect(() => parse(`${base}${lines}\n${upstream}`)).toThrow(ConfigError);
      expect(() => parse(`${base}${lines}\n${upstream}`)).toThrow(message);
    }
  });
});
