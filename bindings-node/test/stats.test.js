"use strict";
// stats() of the Promise API's LockClient and KVStore after real operations, on "memory://" and
// on DynamoDB Local (which reports the capacity consumed), and toEmf: a CloudWatch
// embedded-metric-format document that is valid for what it declares.

const { describe, test, before } = require("node:test");
const fs = require("node:fs");
const path = require("node:path");
const { assert, dynalease, endpoint, region, newTable, rejectsWithCode, uniqueName } = require("./helpers.js");

const { LockClient, KVStore, createTable, toEmf, codes } = dynalease;

/** The keys `interface Stats` declares in index.d.ts, in order. */
function declaredKeys() {
  const types = fs.readFileSync(path.join(__dirname, "..", "index.d.ts"), "utf8");
  const body = /export interface Stats \{([\s\S]*?)\n\}/.exec(types)[1];
  return [...body.matchAll(/^\s+readonly (\w+):/gm)].map((match) => match[1]);
}

/** Waits until `predicate()` holds, checking every 20 ms, for at most `ms`. */
async function eventually(predicate, ms, what) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function memoryTables() {
  const memory = `memory://${uniqueName("stats")}`;
  await createTable("locks", { endpoint: memory });
  await createTable("kv-store", { partitionKey: "pk", sortKey: "sk", endpoint: memory });
  return memory;
}

describe("stats() on memory://", () => {
  let memory;
  before(async () => {
    memory = await memoryTables();
  });

  test("before any request every count is zero, under the names index.d.ts declares", () => {
    for (const client of [new LockClient({ table: "locks", endpoint: memory }), new KVStore({ table: "kv-store", partition: "p", endpoint: memory })]) {
      const stats = client.stats();
      assert.deepEqual(Object.keys(stats), declaredKeys());
      for (const [name, value] of Object.entries(stats)) {
        if (name !== "acquireWait") assert.equal(value, 0, name);
      }
      assert.equal(stats.acquireWait.boundsMs.length + 1, stats.acquireWait.counts.length);
      assert.ok(stats.acquireWait.boundsMs.every((bound, i, all) => i === 0 || bound > all[i - 1]), "bounds rise");
      assert.ok(stats.acquireWait.counts.every((count) => count === 0));
      assert.equal(stats.acquireWait.sumMs, 0);
      assert.ok(Object.isFrozen(stats) && Object.isFrozen(stats.acquireWait) && Object.isFrozen(stats.acquireWait.counts));
      assert.notEqual(client.stats(), stats, "each call is a new snapshot");
    }
  });

  test("a lock client counts acquisitions and their waits, contention, timeouts, releases and requests; each client its own", async () => {
    const holder = new LockClient({ table: "locks", endpoint: memory });
    const waiter = new LockClient({ table: "locks", endpoint: memory });
    const lock = await holder.acquire("busy");
    assert.equal(await waiter.tryAcquire("busy"), null);
    assert.equal(waiter.stats().contendedAttempts, 1, "the refused write of tryAcquire");
    await rejectsWithCode(waiter.acquire("busy", { timeoutMs: 100 }), codes.LOCK_NOT_ACQUIRED);
    await lock.release();
    await (await waiter.acquire("busy", { timeoutMs: 5000 })).release();

    const held = holder.stats();
    assert.equal(held.acquisitions, 1);
    assert.equal(held.releases, 1);
    assert.equal(held.acquireTimeouts, 0);
    assert.equal(held.contendedAttempts, 0);
    assert.equal(held.requests, 2, "one write to acquire, one to release");
    assert.equal(held.acquireWait.counts.reduce((a, b) => a + b, 0), 1);
    const waited = waiter.stats();
    assert.equal(waited.acquireTimeouts, 1);
    assert.ok(waited.contendedAttempts >= 2, `${waited.contendedAttempts}`);
    assert.equal(waited.acquisitions, 1);
    assert.equal(waited.releases, 1);
    assert.ok(waited.requests >= 4);
    // No capacity on memory://.
    assert.equal(held.readUnits + held.writeUnits + waited.readUnits + waited.writeUnits, 0);
  });

  test("elections, semaphores and lambdaLock count into the client that handed them out", async () => {
    const locks = new LockClient({ table: "locks", endpoint: memory });
    const term = await locks.election("leader").campaign({ data: "me" });
    await term.release();
    const semaphore = locks.semaphore("pool", { permits: 2 });
    const permit = await semaphore.acquire();
    const other = await semaphore.tryAcquire();
    await permit.release();
    await other.release();
    let stats = locks.stats();
    assert.equal(stats.acquisitions, 3, "a term and two permits");
    assert.equal(stats.releases, 3);

    // A Lambda invocation with 2 s left and a 1 s margin: the lock ends 1 s from now.
    const context = { getRemainingTimeInMillis: () => 2000 };
    await rejectsWithCode(
      locks.lambdaLock("order/1", context, (lock) => lock.signal.aborted || new Promise((resolve) => lock.signal.addEventListener("abort", resolve))),
      codes.LOCK_LOST,
    );
    stats = locks.stats();
    assert.equal(stats.lostDeadline, 1);
    assert.equal(stats.acquisitions, 4);
  });

  test("heartbeats, and a lease that runs out without them", async () => {
    const beating = new LockClient({ table: "locks", leaseDurationMs: 3000, heartbeatPeriodMs: 50, endpoint: memory });
    const lock = await beating.acquire("beating");
    await eventually(() => beating.stats().heartbeats >= 2, 30000, "two heartbeats");
    await lock.release();
    assert.equal(beating.stats().heartbeatFailures, 0);

    const silent = new LockClient({ table: "locks", leaseDurationMs: 200, heartbeatPeriodMs: 0, endpoint: memory });
    const expiring = await silent.acquire("expiring");
    if (!expiring.signal.aborted) await new Promise((resolve) => expiring.signal.addEventListener("abort", resolve));
    assert.equal(silent.stats().lostLeaseExpired, 1);
    assert.equal(silent.stats().lostTakenOver, 0);
    await expiring.release().catch((error) => assert.equal(error.code, codes.LOCK_LOST));
  });

  test("a KV store counts reads, writes, deletes, lists and compare-and-swap conflicts", async () => {
    const kv = new KVStore({ table: "kv-store", partition: uniqueName("p"), endpoint: memory });
    const first = await kv.put("a", 1);
    await kv.atomicPut("a", 2, { previous: first });
    await rejectsWithCode(kv.atomicPut("a", 3, { previous: first }), codes.KEY_MODIFIED);
    await rejectsWithCode(kv.atomicPut("a", 3), codes.KEY_EXISTS);
    await kv.get("a");
    await kv.exists("b");
    await kv.list("");
    await kv.delete("a");
    const stats = kv.stats();
    assert.equal(stats.kvWrites, 4, "put and three atomicPuts");
    assert.equal(stats.casConflicts, 2);
    // get, exists, and the read the refused compare-and-swap made to tell KEY_MODIFIED from
    // KEY_NOT_FOUND (the core counts it as a KV read).
    assert.equal(stats.kvReads, 3, "get, exists and the CAS's look");
    assert.equal(stats.kvLists, 1);
    assert.equal(stats.kvDeletes, 1);
    assert.equal(stats.acquisitions, 0);
    assert.ok(stats.requests >= 7, `${stats.requests}`);
  });
});

describe("stats() on DynamoDB Local", () => {
  let table;
  let kvTable;
  before(async () => {
    table = await newTable();
    kvTable = uniqueName("node-kv");
    await createTable(kvTable, { partitionKey: "pk", sortKey: "sk", endpoint, region });
  });

  test("capacity units as DynamoDB reports them, and one per failed conditional write", async () => {
    const locks = new LockClient({ table, endpoint, region });
    const other = new LockClient({ table, endpoint, region });
    const lock = await locks.acquire("units");
    assert.equal(await other.tryAcquire("units"), null);
    await lock.release();
    const stats = locks.stats();
    assert.equal(stats.acquisitions, 1);
    assert.equal(stats.requests, 2);
    assert.ok(stats.writeUnits >= 2, `an acquire and a release write at least a unit each: ${stats.writeUnits}`);
    assert.ok(other.stats().writeUnits >= 1, `the refused write is charged: ${other.stats().writeUnits}`);

    const kv = new KVStore({ table: kvTable, partition: "agents", endpoint, region });
    await kv.put("agent/1", { state: "idle" });
    await kv.get("agent/1");
    await kv.list("agent/");
    const kvStats = kv.stats();
    assert.ok(kvStats.writeUnits >= 2, `a transactional write costs two units: ${kvStats.writeUnits}`);
    assert.ok(kvStats.readUnits >= 1, `consistent reads: ${kvStats.readUnits}`);
    assert.deepEqual([kvStats.kvWrites, kvStats.kvReads, kvStats.kvLists], [1, 1, 1]);
  });
});

// CloudWatch's units (PutMetricData's StandardUnit).
const UNITS = new Set([
  "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits",
  "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
  "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
  "Terabits/Second", "Count/Second", "None",
]);

/**
 * Checks `line` against the embedded metric format specification and returns the document: one
 * JSON object on one line; `_aws` with a millisecond Timestamp and MetricDirectives (Namespace,
 * DimensionSets of at most 30 keys naming string members of 1 to 1024 characters, at most 100
 * MetricDefinitions of known units naming numeric members, none of them a dimension).
 */
function checkEmf(line) {
  assert.equal(typeof line, "string");
  assert.ok(!line.includes("\n"), "one line");
  assert.ok(Buffer.byteLength(line) <= 256 * 1024, "within a log event");
  const document = JSON.parse(line);
  assert.equal(Object.getPrototypeOf(document), Object.prototype);
  const aws = document._aws;
  assert.deepEqual(Object.keys(aws).sort(), ["CloudWatchMetrics", "Timestamp"]);
  assert.ok(Number.isInteger(aws.Timestamp) && aws.Timestamp > 0, "Timestamp: epoch milliseconds");
  assert.ok(Array.isArray(aws.CloudWatchMetrics) && aws.CloudWatchMetrics.length >= 1);
  for (const directive of aws.CloudWatchMetrics) {
    assert.deepEqual(Object.keys(directive).sort(), ["Dimensions", "Metrics", "Namespace"]);
    assert.ok(typeof directive.Namespace === "string" && directive.Namespace.length >= 1 && directive.Namespace.length <= 255);
    const dimensionNames = new Set();
    for (const set of directive.Dimensions) {
      assert.ok(Array.isArray(set) && set.length <= 30, "a DimensionSet: at most 30 keys");
      for (const name of set) {
        assert.equal(typeof document[name], "string", `dimension ${name} is a string member`);
        assert.ok(document[name].length >= 1 && document[name].length <= 1024);
        dimensionNames.add(name);
      }
    }
    assert.ok(directive.Metrics.length >= 1 && directive.Metrics.length <= 100);
    const names = new Set();
    for (const metric of directive.Metrics) {
      assert.ok(typeof metric.Name === "string" && metric.Name.length >= 1 && metric.Name.length <= 1024);
      assert.ok(!names.has(metric.Name), `${metric.Name} is declared once`);
      names.add(metric.Name);
      assert.ok(metric.Unit === undefined || UNITS.has(metric.Unit), `unit ${metric.Unit}`);
      assert.ok(!dimensionNames.has(metric.Name), `${metric.Name} is not also a dimension`);
      const value = document[metric.Name];
      assert.ok(typeof value === "number" && Number.isFinite(value), `${metric.Name} is a number (${value})`);
    }
  }
  return document;
}

describe("toEmf", () => {
  let memory;
  before(async () => {
    memory = await memoryTables();
  });

  test("a valid embedded-metric-format document of every count, with the dimensions given", async () => {
    const locks = new LockClient({ table: "locks", endpoint: memory });
    await (await locks.acquire("emf")).release();
    const stats = locks.stats();
    const before = Date.now();
    const line = toEmf(stats, { namespace: "Dynalease/Test", dimensions: { Service: "orders", Stage: "prod" } });
    const document = checkEmf(line);
    assert.ok(document._aws.Timestamp >= before && document._aws.Timestamp <= Date.now());
    const directive = document._aws.CloudWatchMetrics[0];
    assert.equal(directive.Namespace, "Dynalease/Test");
    assert.deepEqual(directive.Dimensions, [["Service", "Stage"]]);
    assert.deepEqual([document.Service, document.Stage], ["orders", "prod"]);
    // Every count of stats(), by the core's snake_case name (its camelCase key here).
    for (const [key, value] of Object.entries(stats)) {
      if (key === "acquireWait") continue;
      const name = key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
      assert.equal(document[name], value, name);
      assert.ok(directive.Metrics.some((metric) => metric.Name === name && metric.Unit === "Count"), `${name} is declared`);
    }
    assert.ok(directive.Metrics.some((metric) => metric.Name === "acquire_wait_mean_ms" && metric.Unit === "Milliseconds"));
    assert.equal(document.acquire_wait_mean_ms, stats.acquireWait.sumMs / stats.acquisitions);
  });

  test("without dimensions, and with a client standing for its stats now", async () => {
    const kv = new KVStore({ table: "kv-store", partition: "p", endpoint: memory });
    await kv.put("k", "v");
    const document = checkEmf(toEmf(kv, { namespace: "Dynalease/Test" }));
    assert.deepEqual(document._aws.CloudWatchMetrics[0].Dimensions, [[]]);
    assert.equal(document.kv_writes, 1);
    assert.equal(document.acquire_wait_mean_ms, undefined, "no mean of no waits");
  });

  test("since: what happened between two stats() of one client (a Lambda invocation)", async () => {
    const locks = new LockClient({ table: "locks", endpoint: memory });
    await (await locks.acquire("before")).release();
    const start = locks.stats();
    await (await locks.acquire("during-1")).release();
    await (await locks.acquire("during-2")).release();
    const end = locks.stats();
    const document = checkEmf(toEmf(end, { namespace: "Dynalease/Test", since: start }));
    assert.equal(document.acquisitions, 2);
    assert.equal(document.releases, 2);
    assert.equal(document.requests, end.requests - start.requests);
    assert.equal(checkEmf(toEmf(end, { namespace: "N", since: end })).acquisitions, 0);
    assert.equal(end.acquisitions, 3, "the snapshots themselves are unchanged");
  });

  test("bad input is refused before anything is printed", async () => {
    const locks = new LockClient({ table: "locks", endpoint: memory });
    const other = new LockClient({ table: "locks", endpoint: memory });
    const stats = locks.stats();
    const cases = [
      [() => toEmf(stats), "toEmf needs an options object"],
      [() => toEmf(stats, {}), "toEmf: namespace is required (a string)"],
      [() => toEmf(stats, { namespace: 7 }), "toEmf: namespace must be a string (got number)"],
      [() => toEmf(stats, { namespace: "N", unit: "Count" }), 'toEmf: unknown option "unit"; the options are namespace, dimensions, since'],
      [() => toEmf(stats, { namespace: "N", dimensions: [["Service", "x"]] }), "toEmf: dimensions must be an object of names to values"],
      [() => toEmf(stats, { namespace: "N", dimensions: "Service" }), "toEmf: dimensions must be an object (got string)"],
      [() => toEmf(stats, { namespace: "N", dimensions: { Service: 7 } }), "toEmf: dimensions.Service must be a string (got number)"],
      [() => toEmf(stats, { namespace: "N", since: { ...stats } }), "toEmf: since must be what stats() returned earlier"],
      [() => toEmf(stats, { namespace: "N", since: other.stats() }), "toEmf: since must be an earlier stats() of the same client"],
      [() => toEmf({ ...stats }, { namespace: "N" }), "toEmf takes what stats() returned, or the LockClient or KVStore itself (got object)"],
      [() => toEmf(null, { namespace: "N" }), "toEmf takes what stats() returned, or the LockClient or KVStore itself (got null)"],
      [() => toEmf({ stats: () => ({}) }, { namespace: "N" }), "toEmf takes what stats() returned"],
      // The core refuses what CloudWatch would reject or misread.
      [() => toEmf(stats, { namespace: "N", dimensions: { acquisitions: "x" } }), 'EMF dimension "acquisitions" is also a metric\'s name'],
      [() => toEmf(stats, { namespace: " " }), "the EMF namespace is empty"],
    ];
    for (const [call, message] of cases) {
      assert.throws(call, (error) => {
        assert.equal(error.code, codes.CONFIG, error.stack);
        assert.ok(error.message.startsWith(message), `${error.message}\n  expected: ${message}`);
        return true;
      });
    }
  });
});
