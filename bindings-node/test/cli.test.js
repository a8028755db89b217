"use strict";
// The npm package's `bin` (`npx dynalease`, bin/dynalease.js) end to end against DynamoDB Local:
// the same commands as cli/tests/commands.rs, run through Node, next to the Promise API's
// clients (a Node holder that an operator's forced release leaves lost, KV values written on
// one side and read on the other); the confirmation prompt and the live view on a terminal
// (util-linux `script` gives the command one); exit codes and messages; and the CDK template
// compiled against aws-cdk-lib.

const { describe, test, before } = require("node:test");
const { execFile, spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { promisify } = require("node:util");
const { assert, dynalease, endpoint, region, newTable, uniqueName } = require("./helpers.js");

const { LockClient, KVStore, codes } = dynalease;

const ROOT = path.resolve(__dirname, "..", "..");
const PACKAGE = require(path.join(ROOT, "package.json"));
const BIN = path.join(ROOT, PACKAGE.bin.dynalease);
// Children get the test's credentials (helpers.js set dummy ones) and region.
const ENV = { ...process.env, AWS_REGION: region };
// Generous: a loaded 2-core machine starts a debug addon slowly, and nothing here waits on time.
const CHILD_TIMEOUT_MS = 90000;

/** Runs `node bin/dynalease.js ...args` (against DynamoDB Local unless `local: false`). */
function run(args, { local = true, input = "" } = {}) {
  const argv = [BIN, ...args, ...(local ? ["--endpoint-url", endpoint] : [])];
  return new Promise((resolve, reject) => {
    // stdin is a pipe, not a terminal: the command never waits for an answer.
    const child = spawn(process.execPath, argv, { env: ENV, stdio: ["pipe", "pipe", "pipe"], timeout: CHILD_TIMEOUT_MS });
    const out = [];
    const err = [];
    child.stdout.on("data", (chunk) => out.push(chunk));
    child.stderr.on("data", (chunk) => err.push(chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      resolve({ code, signal, stdout, stderr, text: `${stdout}${stderr}` });
    });
    child.stdin.end(input);
  });
}

function json(result) {
  try {
    return JSON.parse(result.stdout);
  } catch (error) {
    assert.fail(`not JSON (${error.message}): ${result.text}`);
  }
}

function expectCode(result, code, what) {
  assert.equal(result.code, code, `${what}: exit ${result.code} (signal ${result.signal}), expected ${code}:\n${result.text}`);
}

/** A shell word (table names, endpoints and paths here hold no quote). */
const quoted = (word) => `'${word}'`;

/**
 * Runs the command on a terminal: util-linux `script` gives it a pseudo-terminal and forwards
 * what `answer(output, write)` writes as typed keys. Resolves when the command ends.
 */
function onTerminal(args, answer) {
  // exec: the shell script starts the command with gives way to it, so that Ctrl-C reaches the
  // command alone (a shell that stayed would take SIGINT too, and die of it).
  const command = `exec ${[process.execPath, BIN, ...args, "--endpoint-url", endpoint].map(quoted).join(" ")}`;
  return new Promise((resolve, reject) => {
    // -e: script exits with the command's code; -q: no banner; the typescript goes nowhere.
    const env = { ...ENV, SHELL: "/bin/sh" };
    const child = spawn("script", ["-qec", command, "/dev/null"], { env, stdio: ["pipe", "pipe", "pipe"], timeout: CHILD_TIMEOUT_MS });
    let output = "";
    const write = (keys) => child.stdin.write(keys);
    child.stdout.on("data", (chunk) => {
      output += chunk.toString();
      answer(output, write);
    });
    child.stderr.on("data", (chunk) => {
      output += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      child.stdin.destroy();
      resolve({ code, signal, text: output });
    });
  });
}

/** `promise`, or a failure after `ms` (instead of a test that never ends). */
function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Waits until `predicate()` holds, checking every 50 ms, for at most `ms`. */
async function eventually(predicate, ms, what) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * `locks release ... --force --yes`: the forced release is conditioned on the guid it showed, so
 * a heartbeat between its read and its write makes it refuse ("changed since it was shown"),
 * as it must; it is asked again then (the holder's heartbeats are seconds apart).
 */
async function forceRelease(table, id, token) {
  for (let attempt = 0; ; attempt += 1) {
    const result = await run(["locks", "release", table, id, "--force", "--yes", "--expect-token", String(token)]);
    if (result.code === 1 && result.text.includes("changed since it was shown") && attempt < 10) continue;
    return result;
  }
}

describe("the bin's entry point", () => {
  test("--help lists the commands, examples and exit codes; --version is the package's", async () => {
    const help = await run(["--help"], { local: false });
    expectCode(help, 0, "--help");
    for (const says of ["table", "locks", "gc", "kv", "iam-policy", "template", "Examples:", "Exit codes:", "locks release"]) {
      assert.ok(help.stdout.includes(says), `--help mentions ${says}:\n${help.stdout}`);
    }
    const version = await run(["--version"], { local: false });
    expectCode(version, 0, "--version");
    assert.equal(version.stdout.trim(), `dynalease ${PACKAGE.version}`);
  });

  test("package.json's bin is an executable node script", () => {
    assert.deepEqual(Object.keys(PACKAGE.bin), ["dynalease"]);
    const text = fs.readFileSync(BIN, "utf8");
    assert.ok(text.startsWith("#!/usr/bin/env node\n"));
    assert.ok(fs.statSync(BIN).mode & 0o111, "executable");
    assert.ok(PACKAGE.files.some((entry) => PACKAGE.bin.dynalease.startsWith(entry)), "published with the package");
  });

  test("npx dynalease runs it, as installed from npm", async () => {
    // A project with dynalease installed: npm links the package and its bin into node_modules.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dynalease-npx-"));
    try {
      fs.mkdirSync(path.join(dir, "node_modules", ".bin"), { recursive: true });
      fs.symlinkSync(ROOT, path.join(dir, "node_modules", "dynalease"), "dir");
      fs.symlinkSync(path.join("..", "dynalease", PACKAGE.bin.dynalease), path.join(dir, "node_modules", ".bin", "dynalease"));
      const npx = path.join(path.dirname(process.execPath), "npx");
      const { stdout } = await promisify(execFile)(npx, ["--no-install", "dynalease", "--version"], { cwd: dir, env: ENV, timeout: CHILD_TIMEOUT_MS });
      assert.equal(stdout.trim(), `dynalease ${PACKAGE.version}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("it loads the addon alone: neither the drop-in nor the Promise API", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dynalease-bin-"));
    try {
      // Preloaded: writes every module the process loaded when it exits.
      const spy = path.join(dir, "spy.js");
      const list = path.join(dir, "loaded.json");
      fs.writeFileSync(spy, `process.on("exit", () => require("fs").writeFileSync(${JSON.stringify(list)}, JSON.stringify(Object.keys(require.cache))));\n`);
      await promisify(execFile)(process.execPath, ["--require", spy, BIN, "template", "terraform", "locks"], { env: ENV, timeout: CHILD_TIMEOUT_MS });
      const loaded = JSON.parse(fs.readFileSync(list, "utf8")).map((file) => path.relative(ROOT, file));
      // The package's own files: the bin, the loader and the addon it loads; no dependency.
      const ours = loaded.filter((file) => !file.startsWith("..") && !file.endsWith(".node")).sort();
      assert.deepEqual(ours, ["bindings-node/bin/dynalease.js", "bindings-node/native.js"]);
      assert.ok(loaded.some((file) => file.endsWith(".node")), `the addon: ${loaded.join(", ")}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("without an addon for the platform it says which, what to do, and exits 1", async () => {
    // The bin and the loader alone, as a package whose platform binary is missing.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dynalease-nobinary-"));
    try {
      fs.mkdirSync(path.join(dir, "bin"));
      fs.copyFileSync(BIN, path.join(dir, "bin", "dynalease.js"));
      fs.copyFileSync(path.join(ROOT, "bindings-node", "native.js"), path.join(dir, "native.js"));
      const result = await new Promise((resolve) => {
        execFile(process.execPath, [path.join(dir, "bin", "dynalease.js"), "--version"], { env: ENV, timeout: CHILD_TIMEOUT_MS }, (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }));
      });
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.match(result.stderr, /^dynalease: no native addon for this platform \(/);
      assert.match(result.stderr, /@dynalease\/binding-/);
      assert.match(result.stderr, /rustup\.rs/);
      assert.ok(!result.stderr.includes("    at "), `no stack trace:\n${result.stderr}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bad flags and input exit 2 with a message, and write nothing", async () => {
    const cases = [
      [[], "Usage: dynalease"],
      [["--no-such-flag"], "unexpected argument '--no-such-flag'"],
      [["locks", "list"], "TABLE"],
      [["locks", "lsit", "locks"], "unrecognized subcommand 'lsit'"],
      [["table", "create", "x"], "3 to 255"],
      [["gc", "locks", "--released-before", "soon"], "not a duration"],
      [["template", "pulumi", "locks"], "pulumi"],
      [["kv", "put", "kv-store", "", "k", "1"], "partition is empty"],
      [["locks", "show", "locks", "a", "--output", "yaml"], "yaml"],
      [["locks", "watch", "locks", "--interval", "1y"], "unknown unit"],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args)));
    results.forEach((result, i) => {
      const [args, says] = cases[i];
      expectCode(result, 2, args.join(" "));
      assert.ok(result.text.includes(says), `${args.join(" ")} says ${says}:\n${result.text}`);
    });
  });
});

describe("table, locks and kv against DynamoDB Local", () => {
  test("table create is idempotent; check passes, says what to fix, or that the table is missing", async () => {
    const kvTable = uniqueName("node-cli-kv");
    for (let i = 0; i < 2; i += 1) expectCode(await run(["table", "create", kvTable, "--kv"]), 0, "table create --kv");
    const checked = await run(["table", "check", kvTable, "--kv", "--output", "json"]);
    expectCode(checked, 0, "table check --kv");
    assert.equal(json(checked).billing, "PAY_PER_REQUEST");

    const lockTable = uniqueName("node-cli-locks");
    expectCode(await run(["table", "create", lockTable]), 0, "table create");
    const wrong = await run(["table", "check", lockTable, "--kv"]);
    expectCode(wrong, 1, "a lock table checked as a KV table");
    assert.ok(wrong.text.includes("FIX: a KV table needs") && wrong.text.includes("FIX: turn TTL on"), wrong.text);
    expectCode(await run(["table", "check", uniqueName("node-cli-missing")]), 3, "a missing table");

    // The Promise API works on what the command line made.
    const lock = await new LockClient({ table: lockTable, endpoint, region }).acquire("made-by-cli");
    await lock.release();
    const kv = new KVStore({ table: kvTable, partition: "p", endpoint, region });
    assert.equal((await kv.put("k", 1)).value, 1);
  });

  describe("locks", () => {
    let table;
    before(async () => {
      table = await newTable();
    });

    test("list and show see a Node client's locks by state and prefix", async () => {
      const locks = new LockClient({ table, owner: "node-worker", endpoint, region });
      const held = await locks.acquire("job-held");
      await (await locks.acquire("job-released")).release();
      const closed = new LockClient({ table, owner: "cron", failClosed: true, endpoint, region });
      const closedLock = await closed.acquire("other-closed");
      try {
        const listed = await run(["locks", "list", table, "--output", "json"]);
        expectCode(listed, 0, "locks list");
        const states = json(listed).locks.map((l) => [l.id, l.state]).sort();
        assert.deepEqual(states, [["job-held", "held"], ["job-released", "released"], ["other-closed", "fail-closed"]]);
        assert.ok(listed.stderr.includes("read 3 items"), `the Scan says what it read: ${listed.stderr}`);

        const only = await run(["locks", "list", table, "--prefix", "job-", "--state", "held"]);
        expectCode(only, 0, "locks list --prefix --state");
        assert.ok(only.stdout.includes("job-held") && only.stdout.includes("node-worker"), only.text);
        assert.ok(!only.stdout.includes("job-released") && !only.stdout.includes("other-closed"), only.text);

        const shown = await run(["locks", "show", table, "job-held"]);
        expectCode(shown, 0, "locks show");
        assert.ok(shown.stdout.includes(`fencing token   ${held.fencingToken}`), shown.text);
        expectCode(await run(["locks", "show", table, "no-such-lock"]), 3, "locks show of a missing lock");
      } finally {
        await held.release();
        await closedLock.release();
      }
    });

    test("a forced release frees a Node holder's lock, which then finds it lost; what changed is refused", async () => {
      // Heartbeats a second apart: the holder learns of the release at its next one.
      const locks = new LockClient({ table, owner: "node-holder", leaseDurationMs: 10000, heartbeatPeriodMs: 1000, endpoint, region });
      const holder = await locks.acquire("job");
      const lost = new Promise((resolve) => holder.signal.addEventListener("abort", () => resolve(holder.signal.reason)));
      const token = holder.fencingToken;

      const unforced = await run(["locks", "release", table, "job", "--yes"]);
      expectCode(unforced, 2, "release without --force");
      assert.ok(unforced.text.includes("--force"), unforced.text);
      const unasked = await run(["locks", "release", table, "job", "--force"]);
      expectCode(unasked, 2, "release --force without a terminal or --yes");
      assert.ok(unasked.text.includes("pass --yes"), unasked.text);
      const wrongToken = await run(["locks", "release", table, "job", "--force", "--yes", "--expect-token", String(token + 100)]);
      expectCode(wrongToken, 1, "release --expect-token of another token");
      assert.ok(wrongToken.text.includes("changed hands; nothing was written"), wrongToken.text);
      assert.equal(holder.status, "held", "nothing was written");

      const freed = await forceRelease(table, "job", token);
      expectCode(freed, 0, "release --force --yes --expect-token");
      assert.ok(freed.stdout.includes(`released lock job (token ${token})`), freed.text);
      const reason = await within(lost, 60000, "the holder learns it lost the lock");
      assert.equal(reason.code, codes.LOCK_LOST);
      assert.equal(holder.status, "lost");
      assert.equal(locks.stats().lostTakenOver, 1);
      await assert.rejects(holder.release(), { code: codes.LOCK_LOST });

      const next = await locks.acquire("job", { timeoutMs: 10000 });
      assert.ok(next.fencingToken > token);
      const again = await run(["locks", "release", table, "job", "--force", "--yes", "--expect-token", String(token)]);
      expectCode(again, 1, "the lock changed hands");
      assert.equal(next.status, "held");
      await next.release();
      expectCode(await run(["locks", "release", table, "job", "--force", "--yes"]), 1, "a released lock has nothing to release");
    });

    test("on a terminal, release asks first: no writes nothing, yes releases", async () => {
      // No heartbeats: the item keeps the guid the command shows while it waits for the answer.
      const locks = new LockClient({ table, owner: "asked-about", leaseDurationMs: 60000, heartbeatPeriodMs: 0, endpoint, region });
      const holder = await locks.acquire("ask");
      const answering = (keys) => {
        let answered = false;
        return (output, write) => {
          if (!answered && output.includes("[y/N]")) {
            answered = true;
            write(keys);
          }
        };
      };
      const declined = await onTerminal(["locks", "release", table, "ask", "--force"], answering("n\r"));
      expectCode(declined, 1, "answered no");
      assert.ok(declined.text.includes("Release lock ask held by asked-about?") && declined.text.includes("not confirmed; nothing was written"), declined.text);
      assert.equal(holder.status, "held");

      const confirmed = await onTerminal(["locks", "release", table, "ask", "--force"], answering("y\r"));
      expectCode(confirmed, 0, "answered yes");
      assert.ok(confirmed.text.includes("released lock ask"), confirmed.text);
      await assert.rejects(holder.release(), { code: codes.LOCK_LOST });
    });

    test("locks watch reports acquisitions and hand-overs as they happen", async () => {
      const first = new LockClient({ table, owner: "first-owner", endpoint, region });
      const second = new LockClient({ table, owner: "second-owner", endpoint, region });
      const lock = await first.acquire("watched");
      const child = spawn(process.execPath, [BIN, "locks", "watch", table, "watched", "--output", "json", "--interval", "100ms", "--count", "1200", "--endpoint-url", endpoint], {
        env: ENV,
        stdio: ["ignore", "pipe", "pipe"],
        timeout: CHILD_TIMEOUT_MS * 2,
      });
      let output = "";
      child.stdout.on("data", (chunk) => {
        output += chunk.toString();
      });
      child.stderr.on("data", (chunk) => {
        output += chunk.toString();
      });
      const ended = new Promise((resolve) => child.on("close", resolve));
      let next;
      try {
        await eventually(() => output.includes("watched: acquired by first-owner"), 60000, "the watch saw the first holder");
        await lock.release();
        next = await second.acquire("watched");
        await eventually(() => output.includes(`watched: handed over to second-owner (token ${next.fencingToken})`), 60000, `the hand-over:\n${output}`);
        for (const line of output.trim().split("\n")) assert.equal(typeof JSON.parse(line).event, "string", line);
      } finally {
        child.kill();
        await ended;
        if (next) await next.release();
      }
    });

    test("on a terminal, locks watch redraws in place until Ctrl-C, which ends it with 0", async () => {
      const locks = new LockClient({ table, owner: "drawn", endpoint, region });
      const lock = await locks.acquire("drawn-lock");
      try {
        let interrupted = false;
        const result = await onTerminal(["locks", "watch", table, "--interval", "100ms"], (output, write) => {
          // Two screens drawn: then Ctrl-C.
          if (!interrupted && output.split("recent changes:").length > 2) {
            interrupted = true;
            write("\x03");
          }
        });
        expectCode(result, 0, "Ctrl-C ends the live view");
        assert.ok(result.text.includes("\x1b[H\x1b[2Jdynalease locks watch"), "each screen clears the last");
        assert.ok(result.text.includes("drawn-lock") && result.text.includes("drawn-lock: acquired by drawn"), result.text);
      } finally {
        await lock.release();
      }
    });
  });

  test("kv put, get, list and delete round-trip JSON values with the Promise API's KVStore", async () => {
    const table = uniqueName("node-cli-kvrt");
    expectCode(await run(["table", "create", table, "--kv"]), 0, "table create --kv");
    expectCode(await run(["kv", "put", table, "agents", "agent/1", '{"state": "idle", "load": 0.5, "tags": ["a", "b"]}']), 0, "kv put JSON");
    expectCode(await run(["kv", "put", table, "agents", "agent/2", "busy"]), 0, "kv put a word");
    const kv = new KVStore({ table, partition: "agents", endpoint, region });
    assert.deepEqual((await kv.get("agent/1")).value, { state: "idle", load: 0.5, tags: ["a", "b"] });
    assert.equal((await kv.get("agent/2")).value, "busy");
    await kv.put("agent/3", { n: 7, ok: true, none: null });

    const got = await run(["kv", "get", table, "agents", "agent/3", "--output", "json"]);
    expectCode(got, 0, "kv get");
    assert.deepEqual(json(got).value, { n: 7, ok: true, none: null });
    const listed = await run(["kv", "list", table, "agents", "agent/", "--output", "json"]);
    expectCode(listed, 0, "kv list");
    assert.deepEqual(json(listed).pairs.map((pair) => pair.key), ["agent/1", "agent/2", "agent/3"]);
    expectCode(await run(["kv", "delete", table, "agents", "agent/2"]), 0, "kv delete");
    assert.equal(await kv.get("agent/2"), null);
    expectCode(await run(["kv", "delete", table, "agents", "agent/2"]), 3, "kv delete of a missing key");
    expectCode(await run(["kv", "get", table, "agents", "agent/2"]), 3, "kv get of a missing key");
    expectCode(await run(["kv", "get", uniqueName("node-cli-nokv"), "agents", "agent/1"]), 3, "kv get on a missing table");
  });
});

describe("iam-policy and template (no AWS needed)", () => {
  test("iam-policy prints the least privilege for the tables given", async () => {
    const full = await run(["iam-policy", "locks", "kv-store", "--output", "json"], { local: false });
    expectCode(full, 0, "iam-policy");
    const policy = json(full);
    assert.equal(policy.Version, "2012-10-17");
    const sids = policy.Statement.map((s) => s.Sid);
    assert.deepEqual(sids, ["Read", "LockAndKvWrites"]);
    for (const statement of policy.Statement) {
      assert.deepEqual(statement.Resource, ["arn:aws:dynamodb:*:*:table/locks", "arn:aws:dynamodb:*:*:table/kv-store"]);
    }
    const readOnly = json(await run(["iam-policy", "locks", "--read-only", "--cli", "--output", "json"], { local: false }));
    const actions = readOnly.Statement.flatMap((s) => s.Action);
    assert.ok(actions.includes("dynamodb:Scan") && actions.includes("dynamodb:GetItem"), actions.join(", "));
    assert.ok(!actions.some((a) => /Put|Update|Delete|Create/.test(a)), `read-only: ${actions.join(", ")}`);
  });

  test("templates: CloudFormation and Terraform", async () => {
    const cfn = await run(["template", "cloudformation", "my-kv", "--kv"], { local: false });
    expectCode(cfn, 0, "template cloudformation");
    for (const says of ["AWS::DynamoDB::Table", "AttributeName: expires", "KeyType: RANGE", "PAY_PER_REQUEST"]) assert.ok(cfn.stdout.includes(says), cfn.stdout);
    const tf = await run(["template", "terraform", "locks"], { local: false });
    expectCode(tf, 0, "template terraform");
    assert.ok(tf.stdout.includes('resource "aws_dynamodb_table" "locks"') && tf.stdout.includes('billing_mode = "PAY_PER_REQUEST"'), tf.stdout);
  });

  test("the CDK template type-checks against aws-cdk-lib (tsc --noEmit)", { timeout: 600000 }, async () => {
    // As docs/operations.md promises: `dynalease template cdk TABLE > lib/locks-stack.ts`, in a
    // project with aws-cdk-lib and constructs (this package's devDependencies), plus an app.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dynalease-cdk-"));
    try {
      fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
      fs.mkdirSync(path.join(dir, "lib"));
      const variants = [
        ["locks", [], "LocksStack"],
        ["tenant-locks", ["--sort-key", "sk"], "TenantLocksStack"],
        ["kv-store", ["--kv"], "KvStoreStack"],
      ];
      for (const [table, flags, stack] of variants) {
        const result = await run(["template", "cdk", table, ...flags], { local: false });
        expectCode(result, 0, `template cdk ${table}`);
        assert.ok(result.stdout.includes(`export class ${stack} extends Stack`), result.stdout);
        fs.writeFileSync(path.join(dir, "lib", `${table}-stack.ts`), result.stdout);
      }
      fs.writeFileSync(
        path.join(dir, "app.ts"),
        [
          'import { App } from "aws-cdk-lib";',
          ...variants.map(([table, , stack]) => `import { ${stack} } from "./lib/${table}-stack";`),
          "const app = new App();",
          ...variants.map(([, , stack]) => `new ${stack}(app, "${stack}", { env: { region: "us-east-1" } });`),
          "",
        ].join("\n"),
      );
      fs.writeFileSync(
        path.join(dir, "tsconfig.json"),
        JSON.stringify({
          // What `cdk init app --language typescript` sets, less emitting.
          compilerOptions: { target: "ES2022", module: "commonjs", lib: ["es2022"], strict: true, noEmit: true, skipLibCheck: true, types: ["node"] },
          files: ["app.ts"],
        }),
      );
      const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
      await promisify(execFile)(process.execPath, [tsc, "-p", dir], { cwd: dir, timeout: 540000 }).catch((error) => {
        assert.fail(`tsc failed:\n${error.stdout}${error.stderr}`);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
