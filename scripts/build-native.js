#!/usr/bin/env node
// Builds each native/NAME.c into dist/native/NAME.node: the NAR serialiser `accord nar hash`
// uses, and the batched SHA-256 the tree and the monitor use. Without a C compiler or Node's
// headers, Accord does the same in JavaScript (same results, slower): this says so and
// succeeds, except under CI=true, where the tests need the native code.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const NAMES = ['nar-serialise', 'sha256-spans'];

let failed = false;
function skip(why, what = 'the native code') {
  console.warn(`build-native: ${why}; Accord uses JavaScript in place of ${what}`);
  failed = true;
}

const targets = NAMES.map((name) => join(root, 'dist', 'native', `${name}.node`));
for (const target of targets) rmSync(target, { force: true });
const nodedir = process.env.npm_config_nodedir;
const headers = [
  nodedir && join(nodedir, 'include', 'node'),
  join(dirname(process.execPath), '..', 'include', 'node'),
].find((dir) => dir && existsSync(join(dir, 'node_api.h')));
const cc = process.env.CC || 'cc';
// -z now: a symbol Node does not export makes loading fail (and JavaScript take over), rather
// than the first call kill the process.
const args = ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-shared', '-fPIC', '-Wl,-z,now'];
if (headers === undefined) skip("Node's headers (node_api.h) were not found");
else {
  for (const [i, name] of NAMES.entries()) {
    const source = join(root, 'native', `${name}.c`);
    const target = targets[i];
    mkdirSync(dirname(target), { recursive: true });
    const built = spawnSync(cc, [...args, '-I', headers, '-o', target, source], {
      stdio: 'inherit',
    });
    if (built.error !== undefined) skip(`${cc} could not run (${built.error.message})`, name);
    else if (built.status !== 0) skip(`${cc} failed on ${source}`, name);
  }
}
if (failed && process.env.CI === 'true') {
  console.error('build-native: under CI=true this is an error, as the tests need the native code');
  process.exit(1);
}
