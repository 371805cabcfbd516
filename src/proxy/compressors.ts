/**
 * zstd compressors for NARs sent to other machines: at most `zstd-processes` at once, each
 * one zstd process that a helper process starts on a connection of its own (zstd-helper.ts),
 * so the proxy never forks and its event loop never waits for a compressor. A compressor ends
 * with its connection: when the NAR was sent whole, or the client went away.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { Logger } from '../server/index.js';
import { ConfigError, type ZstdConfig } from './config.js';

const HELPER = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/src/proxy/zstd-helper.js', import.meta.url)
  : new URL('./zstd-helper.js', import.meta.url);

/** How long the helper may take to start. */
const START_MS = 10_000;

/**
 * Checks that the configured zstd runs (once, at start, before the proxy serves): a missing or
 * broken zstd is a config error naming the key, not a failure on the first NAR.
 */
function checkCommand(config: ZstdConfig): void {
  const r = spawnSync(config.command, ['-V'], { stdio: 'ignore', timeout: START_MS });
  if (r.error === undefined && r.status === 0) return;
  const why = r.error === undefined ? `exit status ${r.status}` : r.error.message;
  throw new ConfigError(
    `config: serve-zstd needs zstd, but zstd-command ${JSON.stringify(config.command)} does not run (${why}); install zstd (Debian: apt install zstd), set zstd-command, or set serve-zstd = false`,
  );
}

export class Compressors {
  private running = 0;
  private gone = false;

  private constructor(
    private readonly socketPath: string,
    private readonly helper: ChildProcess,
    /** The helper's process id (its children are the compressors). */
    readonly helperPid: number,
    readonly most: number,
    private readonly logger: Logger,
  ) {
    helper.on('exit', (code, signal) => {
      if (this.gone) return;
      this.gone = true;
      // Harmless for the clients (they get raw frames), but compression is off from now on.
      logger.error('zstd helper exited: NARs are sent in raw zstd frames', { code, signal });
    });
  }

  /** Starts the helper, after checking that the configured zstd runs. */
  static async start(config: ZstdConfig, logger: Logger): Promise<Compressors> {
    checkCommand(config);
    const dir = mkdtempSync(join(tmpdir(), 'accord-zstd-')); // mode 0700: only this user connects
    const socketPath = join(dir, 'socket');
    // Twice the proxy's own limit: a compressor still exiting is not counted against a new one.
    const args = [String(2 * config.processes), config.command, `-${config.level}`, '-q', '-c'];
    const helper = spawn(process.execPath, [fileURLToPath(HELPER), socketPath, ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    helper.on('error', () => undefined);
    helper.stdin.on('error', () => undefined);
    const pid = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the zstd helper did not start within ${START_MS} ms`));
      }, START_MS);
      const lines = createInterface({ input: helper.stdout });
      lines.once('line', (line) => {
        clearTimeout(timer);
        const m = /^ready (\d+)$/.exec(line);
        if (m === null) reject(new Error(`the zstd helper said ${JSON.stringify(line)}`));
        else resolve(Number(m[1]));
      });
      helper.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the zstd helper exited (${code})`));
      });
    }).catch((error: unknown) => {
      helper.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw error;
    });
    return new Compressors(socketPath, helper, pid, config.processes, logger);
  }

  /** Compressors running now. */
  get active(): number {
    return this.running;
  }

  /**
   * A connection to a new compressor: write the NAR into it and end it, read the frame back.
   * Undefined when `zstd-processes` are running already or the helper is gone.
   */
  async open(): Promise<Socket | undefined> {
    if (this.gone || this.running >= this.most) return undefined;
    this.running++;
    const socket = connect(this.socketPath);
    socket.once('close', () => {
      this.running--;
    });
    socket.on('error', () => undefined);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      return socket;
    } catch (error) {
      this.logger.warn('cannot reach a zstd compressor', { error });
      socket.destroy();
      return undefined;
    }
  }

  /** Stops the helper, which kills its compressors, and waits for it to exit. */
  async close(): Promise<void> {
    const exited = this.helper.exitCode !== null || this.helper.signalCode !== null;
    this.gone = true;
    if (!exited) {
      const done = once(this.helper, 'exit');
      this.helper.stdin?.end();
      const timer = setTimeout(() => this.helper.kill('SIGKILL'), START_MS);
      await done;
      clearTimeout(timer);
    }
    rmSync(dirname(this.socketPath), { recursive: true, force: true });
  }
}
