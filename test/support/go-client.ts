/** Test support: Go's reference tlog client (test/interop/go-tlog-client), when Go is here. */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const GOPATH = '/usr/share/gocode';
const PROGRAM = new URL('../interop/go-tlog-client/main.go', import.meta.url).pathname;

/** True when the go command and Debian's golang.org/x/mod sources are installed. */
export const HAVE_GO =
  spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0 &&
  existsSync(`${GOPATH}/src/golang.org/x/mod/sumdb/tlog/tlog.go`);

/** Runs the Go client against a log; resolves with its output ("ok <size>") or rejects. */
export async function verifyWithGo(base: string, vkey: string): Promise<string> {
  const { stdout } = await promisify(execFile)('go', ['run', PROGRAM, base, vkey], {
    env: {
      ...process.env,
      GO111MODULE: 'off',
      GOPATH,
      GOCACHE: '/tmp/accord-gocache',
      GOFLAGS: '',
    },
  });
  return stdout.trim();
}
