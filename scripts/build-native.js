#!/usr/bin/env node
// Builds native/nar-serialise.c into dist/native/nar-serialise.node, the NAR serialiser that
// `accord nar hash` uses when it exists. Without a C compiler or Node's headers, Accord uses its
// JavaScript serialiser (same bytes, slower on trees of many small files): this says so and
// succeeds, except under CI=true, where the tests need the native one.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const source = join(root, 'native', 'nar-serialise.c');
const target = join(root, 'dist', 'native', 'nar-serialise.node');

function skip(why) {
  const message = `build-native: ${why}; accord nar hash uses the JavaScript serialiser`;
  if (process.env.CI === 'true') {
    console.error(`${message} — not in CI, where the native one is tested`);
    process.exit(1);
  }
  console.warn(message);
  process.exit(0);
}

rmSync(target, { force: true });
const nodedir = process.env.npm_config_nodedir;
const headers = [
  nodedir && join(nodedir, 'include', 'node'),
  join(dirname(process.execPath), '..', 'include', 'node'),
].find((dir) => dir && existsSync(join(dir, 'node_api.h')));
if (headers === undefined) skip("Node's headers (node_api.h) were not found");

mkdirSync(dirname(target), { recursive: true });
const cc = process.env.CC || 'cc';
const args = ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-shared', '-fPIC'];
const built = spawnSync(cc, [...args, '-I', headers, '-o', target, source], { stdio: 'inherit' });
if (built.error !== undefined) skip(`${cc} could not run (${built.error.message})`);
if (built.status !== 0) skip(`${cc} failed on ${source}`);
