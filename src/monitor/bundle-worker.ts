/**
 * The monitor's bundle worker: fetches and reads one job's entry bundles (see bundles.ts) and
 * posts them in order, never more than its credit (in bytes) ahead of the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FetchError } from '../server/index.js';
import { type BundleJob, type WorkerMessage, fetchBundles } from './bundles.js';

const port = parentPort;
if (port === null) throw new Error('bug: bundle-worker.js runs as a worker thread');
const { job, credit } = workerData as { job: BundleJob; credit: number };

let room = credit;
let wake: (() => void) | undefined;
port.on('message', (more: number) => {
  room += more;
  wake?.();
  wake = undefined;
});

const send = (message: WorkerMessage, transfer: ArrayBuffer[] = []) => {
  port.postMessage(message, transfer);
};

try {
  for await (const bundle of fetchBundles(job)) {
    while (room <= 0) await new Promise<void>((resolve) => (wake = resolve));
    room -= bundle.data.length;
    // Arrays this worker made are moved, not copied.
    const { leaves, positions, answers } = bundle;
    send({ bundle }, [leaves.buffer, positions.buffer, answers.buffer] as ArrayBuffer[]);
  }
} catch (error) {
  const e = error as Error;
  send({
    error: {
      message: e.message,
      fetch: e instanceof FetchError,
      ...(e instanceof FetchError && e.status !== undefined ? { status: e.status } : {}),
    },
  });
}
// Everything is sent: the worker may now end on its own (the main thread also stops it).
port.unref();
