"use strict";
// Every row of docs/bad-input.md, run as written: the documented error code (or name) and
// message, and nothing written. The page's ```js setup block runs once; its code names no
// endpoint, as a user's would not, so AWS_ENDPOINT_URL_DYNAMODB points it at DynamoDB Local.

const { after, before, describe, test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const { endpoint, region } = require("./helpers.js");

process.env.AWS_ENDPOINT_URL_DYNAMODB = endpoint;
process.env.AWS_REGION = region;

const page = fs.readFileSync(path.join(__dirname, "..", "..", "docs", "bad-input.md"), "utf8");
const setup = /```js\n([\s\S]*?)```/.exec(page);
const AsyncFunction = (async () => {}).constructor;

/** The rows whose Node column is not `—`: { id, code, error, fragment }. */
function rows() {
  const found = [];
  for (const line of page.split("\n")) {
    const cells = line.trim().replace(/^\||\|$/g, "").split("|").map((cell) => cell.trim());
    if (cells.length !== 6 || !/^[A-Z]\d+$/.test(cells[0]) || cells[4] === "—") continue;
    const code = /^`([^`]+)`$/.exec(cells[4]);
    const expected = /^`([A-Za-z_]+)`(?::\s*(.+))?$/.exec(cells[5]);
    assert.ok(code && expected, `${cells[0]}: cannot read ${cells[4]} / ${cells[5]}`);
    found.push({ id: cells[0], code: code[1], error: expected[1], fragment: expected[2] });
  }
  return found;
}

/** Runs the setup block; returns the names it declares, for the rows to use. */
async function runSetup() {
  const body = setup[1];
  const names = [];
  for (const [, destructured, single] of body.matchAll(/(?:const|let)\s+(?:\{([^}]*)\}|(\w+))\s*=/g)) {
    names.push(...(destructured ? destructured.split(",").map((n) => n.trim()).filter(Boolean) : [single]));
  }
  const load = (name) => require(name === "dynalease" ? path.join(__dirname, "..", "index.js") : name);
  const scope = await new AsyncFunction("require", `${body}\nreturn { ${names.join(", ")} };`)(load);
  return scope;
}

const ROWS = rows();

test("the page has a Node row for every kind of bad input", () => {
  assert.ok(setup, "docs/bad-input.md lost its js setup block");
  assert.ok(ROWS.length >= 60, `${ROWS.length} rows`);
  for (const section of "CIDKVTOM") assert.ok(ROWS.some((row) => row.id.startsWith(section)), `no Node rows in section ${section}`);
});

describe("docs/bad-input.md", () => {
  let scope;
  let other;
  before(async () => {
    scope = await runSetup();
    other = new scope.LockClient({ table: "locks" });
  });
  after(async () => {
    await scope.lock.release();
  });

  const snapshot = async () => {
    const pairs = (await scope.kv.list()).map((pair) => [pair.key, pair.version]);
    return { pairs, status: scope.lock.status, data: scope.lock.data };
  };

  for (const row of ROWS) {
    test(row.id, async () => {
      const beforeRow = await snapshot();
      const run = new AsyncFunction(...Object.keys(scope), row.code);
      await assert.rejects(run(...Object.values(scope)), (error) => {
        const got = row.error.startsWith("ERR_") ? error.code : error.name;
        assert.equal(got, row.error, `${row.id}: ${error.stack}`);
        if (row.fragment) assert.ok(error.message.includes(row.fragment), `${row.id}: ${JSON.stringify(error.message)} does not say ${JSON.stringify(row.fragment)}`);
        return true;
      });
      assert.deepEqual(await snapshot(), beforeRow, `${row.id} changed the store or the held lock`);
      assert.equal(await other.tryAcquire("bad-input-held"), null, `${row.id}: the held lock was freed`);
    });
  }
});
