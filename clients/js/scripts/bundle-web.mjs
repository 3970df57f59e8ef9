// Builds mqimd's web page script from the SDK: web/src/app.ts with
// @mqim/sdk (dist/, the tsc output), MQTT.js and @msgpack/msgpack, bundled
// by esbuild into web/static/app.js, and the licenses of what went into it
// into web/static/THIRD_PARTY_LICENSES.txt. Both are committed, so building
// mqimd needs no npm. Run after `tsc -p tsconfig.json` (npm run build:web
// does both); with --check it writes nothing and fails when the committed
// files differ from a fresh build (scripts/test runs that).
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const js = resolve(dirname(fileURLToPath(import.meta.url)), ".."); // clients/js
const repo = resolve(js, "../..");
const out = join(repo, "web/static");
const check = process.argv.includes("--check");

const res = await build({
  absWorkingDir: repo,
  entryPoints: ["web/src/app.ts"],
  bundle: true,
  format: "iife",
  platform: "browser",
  target: ["es2022"],
  minify: true,
  legalComments: "none", // gathered into THIRD_PARTY_LICENSES.txt instead
  charset: "utf8",
  alias: { "@mqim/sdk": join(js, "dist/index.js") },
  nodePaths: [join(js, "node_modules")],
  metafile: true,
  write: false,
  logLevel: "warning",
});

// The packages whose code is in the bundle, with their licenses.
const pkgs = new Map();
for (const input of Object.keys(res.metafile.inputs)) {
  const parts = input.split(/[\\/]/);
  const i = parts.lastIndexOf("node_modules");
  if (i < 0) continue;
  const n = parts[i + 1].startsWith("@") ? 2 : 1;
  const dir = resolve(repo, ...parts.slice(0, i + 1 + n));
  const pj = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  pkgs.set(pj.name, { version: pj.version, license: pj.license, dir });
}
let notices =
  "Third-party software in app.js (built from clients/js by clients/js/scripts/bundle-web.mjs).\n" +
  "mqim's own code is not listed here.\n";
for (const name of [...pkgs.keys()].sort()) {
  const p = pkgs.get(name);
  const file = readdirSync(p.dir).filter((f) => /^(licen[cs]e|copying)/i.test(f)).sort()[0];
  if (!file) throw new Error(`${name}: no license file in ${relative(repo, p.dir)}`);
  notices += `\n${"=".repeat(72)}\n${name}@${p.version} (${p.license})\n${"=".repeat(72)}\n\n`;
  notices += readFileSync(join(p.dir, file), "utf8").trim() + "\n";
}

const files = new Map([
  ["app.js", res.outputFiles[0].text],
  ["THIRD_PARTY_LICENSES.txt", notices],
]);
let stale = [];
for (const [name, text] of files) {
  const path = join(out, name);
  if (check) {
    let have = "";
    try {
      have = readFileSync(path, "utf8");
    } catch {
      // missing: stale
    }
    if (have !== text) stale.push(relative(repo, path).split(sep).join("/"));
  } else {
    writeFileSync(path, text);
    console.log(`${relative(repo, path)}: ${Buffer.byteLength(text)} bytes`);
  }
}
if (stale.length) {
  console.error(`stale: ${stale.join(", ")} differ from a fresh build of web/src and clients/js; run: cd clients/js && npm run build:web, and commit`);
  process.exit(1);
}
