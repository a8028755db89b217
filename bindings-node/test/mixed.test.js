"use strict";
// The real dynamodb-lock-client 0.7.3 (on aws-sdk v2) and dynalease (drop-in through SDK v2/v3,
// and the native Promise API) contend for the same keys of one table: never two holders,
// fencing tokens keep rising across clients, each side waits out the other's heartbeated lock.

const { describe, test, before } = require("node:test");
const dlc = require("dynamodb-lock-client");
const { assert, dynalease, endpoint, region, newTable, sdkV2, sdkV3, sleep } = require("./helpers.js");

const LEASE_MS = 400;
const HEARTBEAT_MS = 100;

function contenders(table, sortKey) {
  const base = { lockTable: table, partitionKey: "id", sortKey, leaseDurationMs: LEASE_MS, heartbeatPeriodMs: HEARTBEAT_MS, retryCount: 0 };
  const native = new dynalease.LockClient({ table, partitionKey: "id", sortKey, leaseDurationMs: LEASE_MS, heartbeatPeriodMs: HEARTBEAT_MS, endpoint, region });
  const promisify = (client) => (id) => new Promise((resolve, reject) => client.acquireLock(id, (err, lock) => (err ? reject(err) : resolve(lock))));
  const release = (lock) => new Promise((resolve, reject) => lock.release((err) => (err ? reject(err) : resolve())));
  return [
    { name: "dlc", acquire: promisify(new dlc.FailOpen({ ...base, dynamodb: sdkV2(), owner: "dlc" })), release, busy: (e) => e.code === "FailedToAcquireLock" },
    { name: "drop-in v2", acquire: promisify(new dynalease.FailOpen({ ...base, dynamodb: sdkV2(), owner: "v2" })), release, busy: (e) => e.code === "FailedToAcquireLock" },
    { name: "drop-in v3", acquire: promisify(new dynalease.FailOpen({ ...base, dynamodb: sdkV3(), owner: "v3" })), release, busy: (e) => e.code === "FailedToAcquireLock" },
    {
      name: "LockClient",
      acquire: async (id) => {
        const lock = await native.acquire(sortKey ? [id.id, id.sk] : id, { timeoutMs: LEASE_MS * 2 });
        return lock;
      },
      release: (lock) => lock.release(),
      busy: (e) => e.code === "ERR_DYNALEASE_LOCK_NOT_ACQUIRED",
    },
  ];
}

for (const sortKey of [undefined, "sk"]) {
  describe(`mixed fleet, FailOpen, ${sortKey ? "with" : "without"} a sort key`, () => {
    let table;
    before(async () => {
      table = await newTable({ sortKey });
    });

    test("never two holders; fencing tokens keep rising across clients", async () => {
      const clients = contenders(table, sortKey);
      const id = sortKey ? { id: "shared", sk: "x" } : "shared";
      let holders = 0;
      let maxHolders = 0;
      let lastToken = 0;
      const acquisitions = [];
      // Every client tries repeatedly at once until each has held the lock (or time is up);
      // each hold spans several heartbeats, longer than a lease.
      const deadline = Date.now() + 30000;
      const done = () => clients.every((c) => acquisitions.includes(c.name)) || Date.now() > deadline;
      await Promise.all(clients.map(async (client) => {
        while (!done()) {
          let lock;
          try {
            lock = await client.acquire(id);
          } catch (err) {
            if (!client.busy(err)) throw err;
            continue;
          }
          holders++;
          maxHolders = Math.max(maxHolders, holders);
          assert.ok(lock.fencingToken > lastToken, `${client.name}: token ${lock.fencingToken} after ${lastToken}`);
          lastToken = lock.fencingToken;
          acquisitions.push(client.name);
          await sleep(LEASE_MS + HEARTBEAT_MS * 2);
          holders--;
          await client.release(lock);
          // Give the others a turn once this client has had one.
          while (!done()) await sleep(20);
        }
      }));
      assert.equal(maxHolders, 1);
      assert.deepEqual(new Set(acquisitions), new Set(clients.map((c) => c.name)), `acquisitions: ${acquisitions}`);
    });

    test("each side waits out the other's heartbeated lock", async () => {
      const [real, , v3, native] = contenders(table, sortKey);
      for (const [holder, waiter] of [[real, v3], [v3, real], [native, real], [real, native]]) {
        const id = sortKey ? { id: `${holder.name}-${waiter.name}`, sk: "1" } : `${holder.name}-${waiter.name}`;
        const lock = await holder.acquire(id);
        await assert.rejects(waiter.acquire(id), (err) => waiter.busy(err), `${waiter.name} must not take ${holder.name}'s live lock`);
        await holder.release(lock);
        const next = await waiter.acquire(id);
        assert.equal(next.fencingToken, lock.fencingToken + 1);
        await waiter.release(next);
      }
    });
  });

  describe(`mixed fleet, FailClosed, ${sortKey ? "with" : "without"} a sort key`, () => {
    test("dlc and dynalease exclude each other", async () => {
      const table = await newTable({ sortKey });
      const base = { lockTable: table, partitionKey: "id", acquirePeriodMs: 20, retryCount: 3 };
      // dlc's FailClosed rejects `sortKey` in its schema; without a sort key both sides can run.
      const real = sortKey ? null : new dlc.FailClosed({ ...base, dynamodb: sdkV2(), owner: "dlc" });
      const ours = new dynalease.FailClosed({ ...base, sortKey, dynamodb: sdkV3(), owner: "ours" });
      const native = new dynalease.LockClient({ table, partitionKey: "id", sortKey, failClosed: true, endpoint, region });
      const id = sortKey ? { id: "fc", sk: "1" } : "fc";
      const nativeId = sortKey ? ["fc", "1"] : "fc";
      const mine = await ours.acquireLock(id);
      if (real) await assert.rejects(new Promise((res, rej) => real.acquireLock(id, (e, l) => (e ? rej(e) : res(l)))), (e) => e.code === "FailedToAcquireLock");
      assert.equal(await native.tryAcquire(nativeId), null);
      await mine.release();
      const nativeLock = await native.acquire(nativeId, { timeoutMs: 2000 });
      await assert.rejects(ours.acquireLock(id), (e) => e.code === "FailedToAcquireLock");
      await nativeLock.release();
      if (real) {
        const theirs = await new Promise((res, rej) => real.acquireLock(id, (e, l) => (e ? rej(e) : res(l))));
        await assert.rejects(ours.acquireLock(id), (e) => e.code === "FailedToAcquireLock");
        await new Promise((res) => theirs.release(res));
      }
      await (await ours.acquireLock(id)).release();
    });
  });
}
