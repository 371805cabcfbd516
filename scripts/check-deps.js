#!/usr/bin/env node
// Enforces the dependency direction of docs/architecture.md: which module may import which,
// that modules reach each other only through their index.ts, and that pure modules do no I/O.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, dirname, normalize } from 'node:path';

const SRC = new URL('../src/', import.meta.url).pathname;

// module → modules it may import. A module missing here may not be imported by anyone but cli.
const ALLOWED = {
  crypto: [],
  tlog: ['crypto'],
  nix: ['crypto'],
  identity: ['crypto', 'tlog', 'nix', 'guix'],
  policy: ['crypto', 'tlog', 'nix', 'guix', 'claim', 'identity'],
  guix: ['crypto', 'nix'],
  web: ['nix', 'claim', 'policy'],
  host: ['crypto', 'nix', 'claim'],
  claim: ['nix'],
  demand: ['tlog', 'nix'],
  db: [],
  server: [],
  log: ['crypto', 'tlog', 'nix', 'claim', 'identity', 'db', 'server'],
  submit: ['tlog', 'nix', 'guix', 'claim', 'db', 'server'],
  proxy: ['crypto', 'tlog', 'nix', 'guix', 'claim', 'identity', 'policy', 'demand', 'db', 'server'],
  monitor: [
    'crypto',
    'tlog',
    'nix',
    'claim',
    'identity',
    'policy',
    'demand',
    'db',
    'server',
    'web',
  ],
  witness: ['crypto', 'tlog', 'db', 'server'],
  rebuild: ['tlog', 'nix', 'claim', 'demand', 'host', 'submit', 'db', 'server'],
  audit: ['nix', 'claim', 'policy', 'proxy', 'server'],
  demo: [
    'crypto',
    'tlog',
    'nix',
    'claim',
    'identity',
    'policy',
    'demand',
    'db',
    'server',
    'host',
    'log',
    'submit',
    'proxy',
    'monitor',
    'witness',
  ],
  cli: ['*'],
};

// Pure modules: the only Node built-ins and packages they may use (no fs, net, http, db);
// a package allows its subpaths too (`@noble/curves/ed25519.js`).
const PURE = {
  // sodium-native is libsodium (computation); node:module loads it, falling back without it.
  crypto: ['node:crypto', 'node:module', 'sodium-native'],
  tlog: ['node:crypto'],
  // Decoders are computation, not I/O: node:zlib, node:stream and the decompression libraries
  // (liblzma's binding loaded through node:module when an xz stream first comes).
  nix: ['node:crypto', 'node:zlib', 'node:stream', 'node:module', 'fzstd', 'lzma-native'],
  identity: ['node:crypto'],
  policy: [],
  claim: [],
  demand: [],
  // Guix's ECDSA over the Ed25519 curve: the curve arithmetic from @noble/curves.
  guix: ['node:crypto', '@noble/curves'],
  web: [],
};

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (/(?<!\.test|\.d)\.ts$/.test(entry.name)) yield path;
  }
}

const IMPORT =
  /(?:^|\s)(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm;
const problems = [];

for (const file of sourceFiles(SRC)) {
  const rel = relative(SRC, file);
  const module = rel.split('/')[0];
  const text = readFileSync(file, 'utf8');
  for (const match of text.matchAll(IMPORT)) {
    const spec = match[1] ?? match[2] ?? match[3];
    if (spec.startsWith('.')) {
      const target = relative(SRC, normalize(join(dirname(file), spec)));
      const targetModule = target.split('/')[0];
      if (target.startsWith('..')) problems.push(`${rel}: imports ${spec} from outside src/`);
      else if (targetModule !== module) {
        const allowed = ALLOWED[module] ?? [];
        if (!allowed.includes('*') && !allowed.includes(targetModule)) {
          problems.push(`${rel}: module ${module} may not import module ${targetModule}`);
        }
        if (target !== `${targetModule}/index.js`) {
          problems.push(
            `${rel}: imports ${spec}; use ${targetModule}/index.js, its public surface`,
          );
        }
      }
    } else if (
      module in PURE &&
      !PURE[module].some((p) => spec === p || spec.startsWith(`${p}/`))
    ) {
      problems.push(`${rel}: pure module ${module} may not import ${spec}`);
    }
  }
}

if (problems.length > 0) {
  console.error(`dependency check failed:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('dependency check: ok');
