/**
 * Alert hooks for new findings: run a command (the finding as JSON on standard input, its kind,
 * id and summary in the environment) and/or POST the finding as JSON to a webhook. Alerts run
 * one at a time in the order of the findings; a failing hook is logged and does not stop
 * monitoring.
 */
import { spawn } from 'node:child_process';
import { type Logger, postBytes } from '../server/index.js';
import type { Finding } from './store.js';

export interface AlertOptions {
  /** A shell command to run per finding. */
  readonly command?: string;
  /** A URL to POST each finding to. */
  readonly webhook?: string;
  /** Only findings of these kinds raise alerts (all when undefined). */
  readonly kinds?: ReadonlySet<Finding['kind']>;
  readonly timeoutMs: number;
  readonly logger: Logger;
}

function runCommand(command: string, finding: Finding, body: string, timeoutMs: number) {
  return new Promise<void>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: ['pipe', 'ignore', 'inherit'],
      timeout: timeoutMs,
      env: {
        ...process.env,
        ACCORD_FINDING_ID: String(finding.id),
        ACCORD_FINDING_KIND: finding.kind,
        ACCORD_FINDING_SUMMARY: finding.summary,
      },
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`alert command exited with ${signal ?? String(code)}`));
    });
    child.stdin.on('error', () => undefined); // a command that ignores its input
    child.stdin.end(body);
  });
}

/** An alerter: `raise` queues a finding's alerts; `drain` waits for the queue to empty. */
export function createAlerter(options: AlertOptions) {
  let queue: Promise<void> = Promise.resolve();
  const { command, webhook, kinds, timeoutMs, logger } = options;
  const attempt = async (what: string, work: () => Promise<void>, finding: Finding) => {
    try {
      await work();
      logger.info('alert sent', { via: what, finding: finding.id });
    } catch (error) {
      logger.error('alert failed', {
        via: what,
        finding: finding.id,
        reason: (error as Error).message,
      });
    }
  };
  return {
    raise(finding: Finding): void {
      if (kinds !== undefined && !kinds.has(finding.kind)) return;
      const body = `${JSON.stringify(finding)}\n`;
      queue = queue.then(async () => {
        if (command !== undefined)
          await attempt('command', () => runCommand(command, finding, body, timeoutMs), finding);
        if (webhook !== undefined)
          await attempt(
            'webhook',
            () =>
              postBytes(webhook, body, 'application/json', timeoutMs, 64 * 1024).then(
                () => undefined,
              ),
            finding,
          );
      });
    },
    drain(): Promise<void> {
      return queue;
    },
  };
}
