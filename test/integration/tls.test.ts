/**
 * TLS on the servers: `accord log serve --tls-cert --tls-key` serves HTTPS and takes a renewed
 * certificate without a restart; a half or mismatched pair is refused before anything is made;
 * the proxy's config takes tls-cert and tls-key likewise.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import https from 'node:https';
import { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { formatNixSecretKey, generateNixSecretKey } from '../../src/nix/index.js';
import { parseProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import { SIG_TYPE_ED25519, generateKey } from '../../src/tlog/index.js';
import { runAccord } from '../support/cli.js';
import { type LogProcess, startLogProcess } from '../support/log-process.js';

/** A self-signed certificate for 127.0.0.1 and its key, as PEM files in `dir`. */
function selfSigned(dir: string, name: string): { cert: string; key: string; fingerprint: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { cert, key, fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}

/** GETs `url` trusting only `ca`; resolves with the status and the certificate served. */
function get(url: string, ca: Buffer[]): Promise<{ status: number; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false }, (res) => {
      const socket = res.socket;
      const fingerprint =
        socket instanceof TLSSocket ? (socket.getPeerX509Certificate()?.fingerprint256 ?? '') : '';
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint }));
    });
    req.on('error', reject);
  });
}

describe('TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-tls-'));
  const first = selfSigned(dir, 'first');
  const second = selfSigned(dir, 'second');
  const cas = [readFileSync(first.cert), readFileSync(second.cert)];
  let log: LogProcess | undefined;
  afterAll(async () => {
    await log?.kill();
  });

  test('log serve over HTTPS takes a renewed certificate without a restart', async () => {
    const cert = join(dir, 'live.crt');
    const key = join(dir, 'live.key');
    writeFileSync(cert, readFileSync(first.cert));
    writeFileSync(key, readFileSync(first.key));
    log = await startLogProcess([
      '--origin',
      'tls.example/log',
      '--data-dir',
      join(dir, 'log'),
      '--tls-cert',
      cert,
      '--tls-key',
      key,
    ]);
    expect(log.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await get(`${log.url}/checkpoint`, cas)).toEqual({
      status: 200,
      fingerprint: first.fingerprint,
    });
    // Renewed as a certificate manager does: the new files moved into place.
    writeFileSync(`${key}.new`, readFileSync(second.key));
    writeFileSync(`${cert}.new`, readFileSync(second.cert));
    renameSync(`${key}.new`, key);
    renameSync(`${cert}.new`, cert);
    let served = '';
    for (let i = 0; i < 100 && served !== second.fingerprint; i++) {
      await new Promise((r) => setTimeout(r, 100));
      served = (await get(`${log.url}/checkpoint`, cas)).fingerprint;
    }
    expect(served).toBe(second.fingerprint);
  });

  test.each([
    [
      'a certificate without its key',
      (c: typeof first) => ['--tls-cert', c.cert],
      /--tls-cert and --tls-key go together/,
    ],
    [
      'a key of another certificate',
      (c: typeof first) => ['--tls-cert', c.cert, '--tls-key', second.key],
      /TLS certificate .* and key .*:/,
    ],
    [
      'a certificate file that is missing',
      () => ['--tls-cert', join(dir, 'none.crt'), '--tls-key', first.key],
      /TLS certificate .*none\.crt: ENOENT/,
    ],
  ])('log serve refuses %s before it makes anything', async (_, args, message) => {
    const data = join(mkdtempSync(join(dir, 'fresh-')), 'data');
    const run = await runAccord([
      'log',
      'serve',
      '--origin',
      'tls.example/x',
      '--data-dir',
      data,
      ...args(first),
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(existsSync(data) ? readdirSync(data) : []).toEqual([]);
  });

  test('the proxy serves HTTPS with tls-cert and tls-key from its config, and names a half pair', async () => {
    const proxyDir = mkdtempSync(join(dir, 'proxy-'));
    writeFileSync(
      join(proxyDir, 'proxy.sk'),
      formatNixSecretKey(generateNixSecretKey('tls-proxy-1')),
    );
    writeFileSync(
      join(proxyDir, 'policy'),
      `log ${generateKey('a.test/log', SIG_TYPE_ED25519).verifierKey} http://127.0.0.1:9\ntrust t any a.test/log\ndecide t\nquorum none\n`,
    );
    const text = (extra: string) =>
      `signing-key = "proxy.sk"\npolicy = "policy"\nlisten = "127.0.0.1:0"\n${extra}[[upstream]]\nurl = "http://127.0.0.1:9"\n`;
    expect(() => parseProxyConfig(text(`tls-cert = "${first.cert}"\n`), proxyDir)).toThrow(
      /tls-key is required/,
    );
    expect(() =>
      parseProxyConfig(text(`tls-cert = "${first.cert}"\ntls-key = "${second.key}"\n`), proxyDir),
    ).toThrow(/TLS certificate .* and key/);
    const config = parseProxyConfig(
      text(`tls-cert = "${first.cert}"\ntls-key = "${first.key}"\n`),
      proxyDir,
    );
    const proxy = await startProxy(config, silentLogger);
    try {
      expect(proxy.url).toMatch(/^https:/);
      expect(await get(`${proxy.url}/nix-cache-info`, cas)).toEqual({
        status: 200,
        fingerprint: first.fingerprint,
      });
    } finally {
      await proxy.close();
    }
  });
});
