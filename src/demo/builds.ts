/**
 * What the demo network's builders built: four store paths, as real Nix builds when Nix is
 * present, else generated. `app` refers to `lib`; `tampered` is the path one builder serves and
 * claims with other bytes; `single` is built by one builder only.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ClaimJson } from '../claim/index.js';
import { buildAttributes, narSourceFromPath, pathInfoClaims } from '../host/index.js';
import { NIX_STORE_DIR, type NarSource, encodeNix32, writeNar } from '../nix/index.js';

/** A path's claim (as the honest builders make it) and its NAR. */
export interface DemoPath {
  readonly claim: ClaimJson;
  readonly nar: Buffer;
}

export interface DemoBuilds {
  /** Built with the local Nix (true), or generated (false). */
  readonly withNix: boolean;
  readonly app: DemoPath;
  readonly lib: DemoPath;
  readonly tampered: DemoPath;
  readonly single: DemoPath;
  /** The other bytes the tampering builder serves and claims for `tampered`. */
  readonly tamperedNar: Buffer;
}

export const PATH_NAMES = ['app', 'lib', 'tampered', 'single'] as const;

/** The text of `tampered` as one builder serves it. */
const TAMPERED_TEXT = 'tampered: one builder serves other bytes for this path\n';

function narOf(source: NarSource): Buffer {
  return Buffer.concat([...writeNar(source)]);
}

function fileNar(text: string): Buffer {
  const data = Buffer.from(text);
  return narOf({ type: 'regular', executable: false, size: data.length, contents: () => [data] });
}

function sha256Nix32(data: Uint8Array): string {
  return `sha256:${encodeNix32(createHash('sha256').update(data).digest())}`;
}

/** The claim for `tampered` the tampering builder makes: its bytes, the rest the same. */
export function tamperedClaim(builds: DemoBuilds): ClaimJson {
  return {
    ...builds.tampered.claim,
    narHash: sha256Nix32(builds.tamperedNar),
    narSize: builds.tamperedNar.length,
  };
}

/**
 * Builds the four paths with Nix (`salt` makes them new to this store): derivations whose
 * builder is `/bin/sh` with shell built-ins only, so they build in Nix's sandbox too.
 */
export async function buildWithNix(dir: string, salt: string): Promise<DemoBuilds> {
  const file = join(dir, 'demo.nix');
  writeFileSync(
    file,
    `let
  salt = "${salt}";
  mk = name: script: derivation {
    inherit name salt;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
  };
in rec {
  lib = mk "accord-demo-lib" "echo 'a library every builder built the same' > $out";
  app = mk "accord-demo-app" "echo 'an app that uses \${lib}' > $out";
  tampered = mk "accord-demo-tampered" "echo 'the honest output of this path' > $out";
  single = mk "accord-demo-single" "echo 'built by builder A alone' > $out";
}
`,
  );
  const paths = await buildAttributes(file, PATH_NAMES);
  const claims = await pathInfoClaims(paths);
  const byName = new Map(
    PATH_NAMES.map((name, i) => {
      const path = paths[i] ?? '';
      const claim = claims.find((c) => c.storePath === path);
      if (claim === undefined) throw new Error(`nix path-info did not describe ${path}`);
      return [name, { claim, nar: narOf(narSourceFromPath(path)) }];
    }),
  );
  const get = (name: (typeof PATH_NAMES)[number]) => byName.get(name) as DemoPath;
  return {
    withNix: true,
    app: get('app'),
    lib: get('lib'),
    tampered: get('tampered'),
    single: get('single'),
    tamperedNar: fileNar(TAMPERED_TEXT),
  };
}

/** Generated paths and claims, for a machine without Nix (they cannot be realised). */
export function generatedBuilds(salt: string): DemoBuilds {
  const make = (name: string, text: string, references: string[] = []): DemoPath => {
    const hashPart = encodeNix32(createHash('sha1').update(`${salt} ${name}`).digest());
    const nar = fileNar(text);
    return {
      claim: {
        storePath: `${NIX_STORE_DIR}/${hashPart}-accord-demo-${name}`,
        narHash: sha256Nix32(nar),
        narSize: nar.length,
        references,
      },
      nar,
    };
  };
  const lib = make('lib', 'a library every builder built the same\n');
  const libName = lib.claim.storePath.slice(NIX_STORE_DIR.length + 1);
  return {
    withNix: false,
    app: make('app', `an app that uses ${lib.claim.storePath}\n`, [libName]),
    lib,
    tampered: make('tampered', 'the honest output of this path\n'),
    single: make('single', 'built by builder A alone\n'),
    tamperedNar: fileNar(TAMPERED_TEXT),
  };
}
