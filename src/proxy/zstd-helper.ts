/**
 * The zstd spawner, run as a process of its own by the proxy (compressors.ts): for each
 * connection to its Unix socket it starts one zstd with that connection as its stdin and
 * stdout, and lets go of the connection. Forking from this small process rather than from the
 * proxy keeps the proxy's event loop free: a fork copies the page tables of the process that
 * forks, milliseconds for a proxy holding hundreds of MiB of NARs.
 *
 * Arguments: the socket path, the most compressors running at once, the zstd command and its
 * arguments. It prints `ready` once listening and exits, killing its compressors, when its
 * stdin closes (the proxy is gone, even by kill -9).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

const [socketPath = '', most = '', command = '', ...args] = process.argv.slice(2);
const limit = Number(most);
const running = new Set<ChildProcess>();

const server = createServer({ pauseOnConnect: true }, (socket) => {
  socket.on('error', () => undefined);
  if (running.size >= limit) {
    socket.destroy();
    return;
  }
  // zstd gets its own copies of the connection (stdin and stdout); this process closes its
  // own at once, so the connection ends when zstd exits or the proxy closes it.
  const child = spawn(command, args, { stdio: [socket, socket, 'ignore'] });
  socket.destroy();
  child.on('error', () => undefined);
  if (child.pid === undefined) return;
  running.add(child);
  child.on('exit', () => {
    running.delete(child);
  });
});
server.on('error', (error) => {
  process.stderr.write(`zstd helper: ${error.message}\n`);
  process.exit(1);
});
server.listen(socketPath, () => {
  process.stdout.write(`ready ${process.pid}\n`);
});
process.stdin.on('data', () => undefined);
process.stdin.on('close', () => {
  for (const child of running) child.kill('SIGKILL');
  process.exit(0);
});
