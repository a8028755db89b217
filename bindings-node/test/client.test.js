"use strict";
// The Promise API (LockClient, Lock, KVStore, createTable) on DynamoDB Local and on "memory://".

const { describe, test, before } = require("node:test");
const { spawnSync } = require("node:child_process");
const path = require("node:path");
const { assert, dynalease, endpoint, region, newTable, sleep, rejectsWithCode, uniqueName } = require("./helpers.js");

const { LockClient, KVStore, createTable, codes } = dynalease;

describe("LockClient on DynamoDB Local", () => {
  let table;
  before(async () => {
    table = await newTable();
  });

  test("acquire, tryAcquire, release; fencing tokens rise", async () => {
    const locks = new LockClient({ table, leaseDurationMs: 2000, heartbeatPeriodMs: 500, endpoint, region });
    assert.equal(locks.partitionKey, "id");
    assert.equal(locks.leaseDurationMs, 2000);
    const lock = await locks.acquire("job-1", { timeoutMs: 1000 });
    assert.equal(lock.fencingToken, 1);
    assert.equal(lock.id, "job-1");
    assert.equal(lock.status, "held");
    assert.equal(lock.signal.aborted, false);
    assert.equal(await locks.tryAcquire("job-1"), null);
    await rejectsWithCode(locks.acquire("job-1", { timeoutMs: 100 }), codes.LOCK_NOT_ACQUIRED);
    await lock.release();
    assert.equal(lock.status, "released");
    const next = await locks.tryAcquire("job-1");
    assert.equal(next.fencingToken, 2);
    await next.release();
  });

  test("AbortSignal cancels a waiting acquire", async () => {
    const locks = new LockClient({ table, leaseDurationMs: 5000, endpoint, region });
    const held = await locks.acquire("abort-me");
    const controller = new AbortController();
    const waiting = locks.acquire("abort-me", { signal: controller.signal });
    await sleep(100);
    controller.abort(new Error("stop waiting"));
    await assert.rejects(waiting, { message: "stop waiting" });
    await assert.rejects(locks.acquire("abort-me", { signal: AbortSignal.abort() }), { name: "AbortError" });
    await held.release();
  });

  test("lock.signal aborts when the lease is lost", async () => {
    const locks = new LockClient({ table, leaseDurationMs: 300, heartbeatPeriodMs: 0, endpoint, region });
    const lock = await locks.acquire("lost");
    const reason = await new Promise((resolve) => lock.signal.addEventListener("abort", () => resolve(lock.signal.reason)));
    assert.equal(reason.code, codes.LOCK_LOST);
    assert.equal(lock.status, "lost");
    assert.ok(lock.lostReason);
    // Nobody took it over, so releasing still marks the item released (or reports the loss).
    await lock.release().catch((err) => assert.equal(err.code, codes.LOCK_LOST));
  });

  test("lock data: updateData, release({ data }) handed to the next holder", async () => {
    const locks = new LockClient({ table, endpoint, region });
    const lock = await locks.acquire("data");
    assert.equal(lock.data, undefined);
    await lock.updateData({ step: 1, big: 2n ** 70n, bytes: Buffer.from([1, 2]), list: [true, null, 1.5] });
    assert.deepEqual(lock.data, { step: 1, big: 2n ** 70n, bytes: Buffer.from([1, 2]), list: [true, null, 1.5] });
    await lock.release({ data: { step: 2 } });
    const next = await locks.acquire("data");
    assert.deepEqual(next.data, { step: 2 });
    await next.release();
  });

  test("sort keys: ids are [partition, sort]", async () => {
    const sorted = await newTable({ sortKey: "sk" });
    const locks = new LockClient({ table: sorted, sortKey: "sk", endpoint, region });
    const lock = await locks.acquire(["tenant", "job"]);
    assert.deepEqual(lock.id, ["tenant", "job"]);
    await lock.release();
    await rejectsWithCode(locks.acquire("no-sort-part"), codes.CONFIG);
  });

  test("fail-closed locks have no fencing token", async () => {
    const locks = new LockClient({ table, failClosed: true, endpoint, region });
    const lock = await locks.acquire("fc");
    assert.equal(lock.fencingToken, null);
    assert.equal(await locks.tryAcquire("fc"), null);
    await lock.release();
  });

  test("invalid options throw ERR_DYNALEASE_CONFIG", () => {
    assert.throws(() => new LockClient({ table, partitionKey: "guid" }), { code: codes.CONFIG });
    assert.throws(() => new LockClient({ table, leaseDurationMs: 100, heartbeatPeriodMs: 200 }), { code: codes.CONFIG });
    assert.throws(() => new LockClient({ table, leaseDurationMs: -1 }), { code: codes.CONFIG });
    assert.throws(() => new LockClient({ table, lease: 5 }), { code: codes.CONFIG, message: /unknown option "lease"/ });
  });

  test("a missing table is reported as ERR_DYNALEASE_TABLE", async () => {
    const locks = new LockClient({ table: "no-such-table", endpoint, region });
    await rejectsWithCode(locks.tryAcquire("x"), codes.TABLE);
  });

  test("a released lock does not keep the process alive", () => {
    const script = `
      const { LockClient } = require(${JSON.stringify(path.resolve(__dirname, "../index.js"))});
      (async () => {
        const locks = new LockClient({ table: ${JSON.stringify(table)}, leaseDurationMs: 3000, endpoint: ${JSON.stringify(endpoint)}, region: "us-east-1" });
        const lock = await locks.acquire("exit");
        await lock.release();
        console.log("released");
      })();`;
    const started = Date.now();
    const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 20000, env: process.env });
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /released/);
    assert.ok(Date.now() - started < 15000);
  });
});

describe("KVStore on DynamoDB Local", () => {
  let kv, locks;
  before(async () => {
    const table = uniqueName("kv");
    await createTable(table, { partitionKey: "pk", sortKey: "sk", endpoint, region });
    kv = new KVStore({ table, partition: "agents", endpoint, region });
    const lockTable = await newTable();
    locks = new LockClient({ table: lockTable, endpoint, region });
  });

  test("put, get, exists, list, delete", async () => {
    const pair = await kv.put("agents/1", { state: "idle", n: 3 });
    assert.equal(pair.key, "agents/1");
    assert.deepEqual((await kv.get("agents/1")).value, { state: "idle", n: 3 });
    assert.equal(await kv.exists("agents/1"), true);
    await kv.put("agents/2", "two");
    await kv.put("other/1", Buffer.from("x"));
    assert.deepEqual((await kv.list("agents/")).map((p) => p.key), ["agents/1", "agents/2"]);
    assert.equal(await kv.delete("agents/2"), true);
    assert.equal(await kv.delete("agents/2"), false);
    assert.equal(await kv.get("agents/2"), null);
  });

  test("atomicPut creates and compare-and-swaps; atomicDelete", async () => {
    const created = await kv.atomicPut("cas", 1);
    await rejectsWithCode(kv.atomicPut("cas", 2), codes.KEY_EXISTS);
    const updated = await kv.atomicPut("cas", 2, { previous: created });
    assert.notEqual(updated.version, created.version);
    await rejectsWithCode(kv.atomicPut("cas", 3, { previous: created }), codes.KEY_MODIFIED);
    await rejectsWithCode(kv.atomicDelete("cas", created), codes.KEY_MODIFIED);
    await kv.atomicDelete("cas", updated);
    await rejectsWithCode(kv.atomicPut("cas", 4, { previous: updated }), codes.KEY_NOT_FOUND);
  });

  test("ttlMs hides expired keys", async () => {
    const pair = await kv.put("ttl", "short", { ttlMs: 1000 });
    assert.ok(pair.expires > Date.now() / 1000);
    assert.equal((await kv.get("ttl")).value, "short");
    await sleep(2100);
    assert.equal(await kv.get("ttl"), null);
  });

  test("fenced writes apply only while the lock is held", async () => {
    const lock = await locks.acquire("fence");
    await kv.put("fenced", 1, { lock });
    await kv.atomicPut("fenced-cas", 1, { lock });
    assert.equal(await kv.delete("fenced", { lock }), true);
    await lock.release();
    await rejectsWithCode(kv.put("fenced", 2, { lock }), codes.LOCK_LOST);
    assert.equal(await kv.get("fenced"), null);
  });

  test("bad values are refused before sending", async () => {
    await rejectsWithCode(kv.put("nan", NaN), codes.CONFIG);
    assert.throws(() => new KVStore({ table: "t" }), { code: codes.CONFIG });
  });
});

describe("memory:// endpoint", () => {
  test("locks and KV in-process, shared per name", async () => {
    const endpoint = `memory://${uniqueName("mem")}`;
    await createTable("locks", { endpoint });
    const a = new LockClient({ table: "locks", endpoint });
    const b = new LockClient({ table: "locks", endpoint });
    const lock = await a.acquire("m");
    assert.equal(await b.tryAcquire("m"), null);
    await lock.release();
    const again = await b.tryAcquire("m");
    assert.equal(again.fencingToken, 2);
    await again.release(); // a held lock keeps the process alive (see README)
    await createTable("kv-table", { partitionKey: "pk", sortKey: "sk", endpoint });
    const kv = new KVStore({ table: "kv-table", partition: "p", endpoint });
    await kv.put("k", [1, "a"]);
    assert.deepEqual((await new KVStore({ table: "kv-table", partition: "p", endpoint }).get("k")).value, [1, "a"]);
  });
});
