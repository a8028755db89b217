"use strict";
// Every ```js block of README.md runs as written, against DynamoDB Local, as
// bindings-python/tests/test_readme.py runs the Python ones. The examples name no endpoint, as a
// user's code would not; the standard AWS_ENDPOINT_URL_DYNAMODB points them at the test's
// DynamoDB Local. Each block runs in a child `node` process, inside an async function (so it
// may use top-level await), with `require("dynalease")` resolving to this package; it must exit
// by itself, so a block that leaves a lock held fails. A block may also require this package's
// optional peer dependencies and devDependencies (@opentelemetry/sdk-metrics for the OpenTelemetry
// example), which are linked into the folder as if installed beside it. DYNALEASE_README names
// another Markdown file to run instead (for drafts of README sections).

const { test } = require("node:test");
const { execFile } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { promisify } = require("node:util");

const { assert, endpoint, region } = require("./helpers.js");

const ROOT = path.resolve(__dirname, "..", "..");
const PACKAGE = require(path.join(ROOT, "package.json"));
const INSTALLABLE = new Set([...Object.keys(PACKAGE.peerDependencies || {}), ...Object.keys(PACKAGE.devDependencies || {})]);

/** The packages `block` requires that a user installs beside dynalease (`@scope/name` or `name`). */
function companions(block) {
  const names = [...block.matchAll(/require\("([^".][^"]*)"\)/g)].map(([, request]) => {
    const parts = request.split("/");
    return request.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  });
  return [...new Set(names)].filter((name) => INSTALLABLE.has(name));
}

const README = path.resolve(ROOT, process.env.DYNALEASE_README || "README.md");
const BLOCKS = [...fs.readFileSync(README, "utf8").matchAll(/```js\n([\s\S]*?)```/g)].map((match) => match[1]);

test(`${path.basename(README)} has js examples`, () => {
  assert.ok(BLOCKS.length >= 1);
});

BLOCKS.forEach((block, index) => {
  test(`${path.basename(README)} js block ${index} runs`, { timeout: 120000 }, async () => {
    // A folder of its own whose node_modules/dynalease is this package, as after `npm install`.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dynalease-readme-"));
    try {
      fs.mkdirSync(path.join(dir, "node_modules"));
      fs.symlinkSync(ROOT, path.join(dir, "node_modules", "dynalease"), "dir");
      for (const name of companions(block)) {
        fs.mkdirSync(path.dirname(path.join(dir, "node_modules", name)), { recursive: true });
        fs.symlinkSync(path.join(ROOT, "node_modules", name), path.join(dir, "node_modules", name), "dir");
      }
      const file = path.join(dir, "example.js");
      fs.writeFileSync(file, `(async () => {\n${block}\n})().catch((error) => { console.error(error); process.exit(1); });\n`);
      const env = { ...process.env, AWS_ENDPOINT_URL_DYNAMODB: endpoint, AWS_REGION: region };
      await promisify(execFile)(process.execPath, [file], { cwd: dir, env, timeout: 90000 }).catch((error) => {
        assert.fail(`block ${index} ${error.killed ? "did not exit by itself" : "failed"}:\n${block}\n${error.stderr}`);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
