"use strict";
// The dynamodb-lock-client drop-in (FailOpen, FailClosed, Lock) on DynamoDB Local, through SDK v2
// and v3 document clients, with callbacks and Promises, including dlc's fixed defects.

const { describe, test, before } = require("node:test");
const dlc = require("dynamodb-lock-client");
const { assert, dynalease, newTable, sdkV2, sdkV3, promiseOnly, sleep } = require("./helpers.js");

const clients = { "SDK v2 DocumentClient": sdkV2, "SDK v3 DynamoDBDocument": sdkV3, "Promise-only client": () => promiseOnly(sdkV3()) };

for (const [name, makeClient] of Object.entries(clients)) {
  describe(`drop-in over ${name}`, () => {
    let table, sortedTable, dynamodb;
    before(async () => {
      table = await newTable();
      sortedTable = await newTable({ sortKey: "sk" });
      dynamodb = makeClient();
    });

    test("FailOpen: acquire, contend, release, re-acquire with a rising fencing token", async () => {
      const locks = new dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 500, heartbeatPeriodMs: 100, owner: "a", retryCount: 0 });
      const lock = await locks.acquireLock("job");
      assert.equal(lock.fencingToken, 1);
      assert.ok(lock instanceof dynalease.Lock);
      // A contender waits the lease; heartbeats renew it, so its takeover fails.
      const other = dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 500, owner: "b", retryCount: 0 });
      await assert.rejects(other.acquireLock("job"), (err) => err.code === "FailedToAcquireLock" && err.message === "Failed to acquire lock." && !!err.originalError);
      await lock.release();
      const again = await other.acquireLock("job");
      assert.equal(again.fencingToken, 2);
      await new Promise((resolve, reject) => again.release((err) => (err ? reject(err) : resolve())));
    });

    test("FailOpen with a sort key, callback style", async () => {
      const locks = new dynalease.FailOpen({ dynamodb, lockTable: sortedTable, partitionKey: "id", sortKey: "sk", leaseDurationMs: 300, owner: "a" });
      const lock = await new Promise((resolve, reject) => locks.acquireLock({ id: "p", sk: "s" }, (err, l) => (err ? reject(err) : resolve(l))));
      assert.equal(lock.fencingToken, 1);
      const item = (await sdkV3().get({ TableName: sortedTable, Key: { id: "p", sk: "s" }, ConsistentRead: true })).Item;
      assert.equal(item.owner, "a");
      assert.equal(item.leaseDurationMs, 300);
      assert.equal(item.lockAcquiredTimeUnixMs, undefined, "dlc's wire format: no timestamp without trustLocalTime");
      await lock.release();
      const released = (await sdkV3().get({ TableName: sortedTable, Key: { id: "p", sk: "s" }, ConsistentRead: true })).Item;
      assert.equal(released.leaseDurationMs, 1);
      assert.equal(released.fencingToken, 1);
      const missing = await new Promise((resolve) => locks.acquireLock({ id: "p" }, (err) => resolve(err)));
      assert.equal(missing.message, "Lock ID is missing required sortKey value");
    });

    test("FailClosed: exclusive until released; accepts sortKey; release deletes", async () => {
      const locks = new dynalease.FailClosed({ dynamodb, lockTable: sortedTable, partitionKey: "id", sortKey: "sk", acquirePeriodMs: 20, retryCount: 2, owner: "a" });
      const lock = await locks.acquireLock({ id: "fc", sk: "1" });
      assert.equal(lock.fencingToken, undefined);
      await assert.rejects(locks.acquireLock({ id: "fc", sk: "1" }), (err) => err.code === "FailedToAcquireLock");
      await lock.release();
      const item = (await sdkV3().get({ TableName: sortedTable, Key: { id: "fc", sk: "1" }, ConsistentRead: true })).Item;
      assert.equal(item, undefined);
      await (await locks.acquireLock({ id: "fc", sk: "1" })).release();
    });

    test("releasing a lock that was taken over reports FailedToReleaseLock", async () => {
      const a = new dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 50, owner: "a" });
      const b = new dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 5000, owner: "b" });
      const first = await a.acquireLock("taken");
      const second = await b.acquireLock("taken"); // waits out the 50 ms lease (no heartbeats)
      assert.equal(second.fencingToken, first.fencingToken + 1);
      await assert.rejects(first.release(), (err) => err.code === "FailedToReleaseLock");
      await second.release();
    });

    test("a FailOpen contender on a FailClosed-held key fails cleanly (token counts from 0)", async () => {
      const closed = new dynalease.FailClosed({ dynamodb, lockTable: table, partitionKey: "id", acquirePeriodMs: 10, owner: "c" });
      const open = new dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 50, retryCount: 0 });
      const held = await closed.acquireLock("mixed-modes");
      await assert.rejects(open.acquireLock("mixed-modes"), (err) => err.code === "FailedToAcquireLock");
      await held.release();
      const lock = await open.acquireLock("mixed-modes");
      assert.equal(lock.fencingToken, 1);
      await lock.release();
    });

    test("trustLocalTime writes lockAcquiredTimeUnixMs and waits only what is left", async () => {
      const locks = new dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 400, trustLocalTime: true, owner: "t" });
      const lock = await locks.acquireLock("trusted");
      const item = (await sdkV3().get({ TableName: table, Key: { id: "trusted" }, ConsistentRead: true })).Item;
      assert.ok(Math.abs(item.lockAcquiredTimeUnixMs - Date.now()) < 5000);
      await sleep(300);
      const started = Date.now();
      const next = await locks.acquireLock("trusted");
      assert.ok(Date.now() - started < 350, `waited ${Date.now() - started} ms`);
      assert.equal(next.fencingToken, 2);
      await next.release();
      lock.removeAllListeners();
    });

    test("heartbeat failure emits 'error' and stops heartbeating", async () => {
      const locks = new dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 1000, heartbeatPeriodMs: 30, owner: "hb" });
      const lock = await locks.acquireLock("hb");
      // Someone deletes the item: the next heartbeat's condition fails.
      await sdkV3().delete({ TableName: table, Key: { id: "hb" } });
      const error = await new Promise((resolve) => lock.once("error", resolve));
      assert.ok(error.code === "ConditionalCheckFailedException" || error.name === "ConditionalCheckFailedException");
      await assert.rejects(lock.release(), (err) => err.code === "FailedToReleaseLock");
    });
  });
}

describe("drop-in requests", () => {
  // A callback-style client over SDK v3 that records each request's params as JSON, keys in
  // the order the caller built them (the order the SDKs serialize them in), with what differs
  // between runs made comparable: guids by order of appearance, clock readings, the table.
  function recording() {
    const real = sdkV3();
    const guids = new Map();
    const requests = [];
    let answered = 0;
    const client = {};
    for (const op of ["get", "put", "delete"]) {
      client[op] = (params, callback) => {
        const text = JSON.stringify(params, function (key, value) {
          const raw = this[key];
          // Bytes as either library holds them (a Buffer, or the Uint8Array SDK v3 read back):
          // the SDK sends both alike.
          if (raw instanceof Uint8Array) {
            const hex = Buffer.from(raw).toString("hex");
            if (!guids.has(hex)) guids.set(hex, guids.size);
            return `<bytes ${guids.get(hex)} of ${raw.length}>`;
          }
          if (key === "lockAcquiredTimeUnixMs") return "<now>";
          if (key === "TableName") return "<table>";
          return value;
        });
        requests.push(`${op} ${text}`);
        real[op](params).then(
          (data) => (answered++, callback(null, data)),
          (error) => (answered++, callback(error)),
        );
      };
    }
    return { client, requests, answered: () => answered };
  }

  async function scenario(lib, table, options) {
    const { client, requests, answered } = recording();
    const id = options.sortKey ? { id: "k", sk: "s" } : "k";
    const locks = new lib.FailOpen({ dynamodb: client, lockTable: table, partitionKey: "id", leaseDurationMs: 1000, heartbeatPeriodMs: 50, owner: "o", ...options });
    const lock = await new Promise((resolve, reject) => locks.acquireLock(id, (err, l) => (err ? reject(err) : resolve(l))));
    lock.on("error", () => {});
    // One heartbeat, answered (dlc would release on the guid it replaced), then the release.
    while (answered() < 3) await sleep(5);
    await new Promise((resolve) => lock.release(resolve));
    // A second acquire finds the released item: it waits out its 1 ms lease and takes over.
    const again = await new Promise((resolve, reject) => locks.acquireLock(id, (err, l) => (err ? reject(err) : resolve(l))));
    await new Promise((resolve) => again.release(resolve));
    const closed = new lib.FailClosed({ dynamodb: client, lockTable: table, partitionKey: "id", acquirePeriodMs: 10, owner: "o" });
    if (!options.sortKey) {
      const held = await new Promise((resolve, reject) => closed.acquireLock("c", (err, l) => (err ? reject(err) : resolve(l))));
      await new Promise((resolve) => held.release(resolve));
    }
    return requests;
  }

  for (const options of [{}, { trustLocalTime: true }, { sortKey: "sk" }]) {
    test(`the same requests as dlc, byte for byte: ${JSON.stringify(options)}`, async () => {
      const [ours, theirs] = [await newTable(options), await newTable(options)];
      const expected = await scenario(dlc, theirs, options);
      assert.deepEqual(await scenario(dynalease, ours, options), expected);
    });
  }
});

describe("drop-in validation", () => {
  const dynamodb = { get() {}, put() {}, delete() {} };
  const cases = {
    FailOpen: [undefined, {}, { dynamodb, lockTable: "t", partitionKey: "guid", leaseDurationMs: 1 }, { dynamodb, lockTable: "t", partitionKey: "id", leaseDurationMs: "10" },
      { dynamodb, lockTable: "t", partitionKey: "id", leaseDurationMs: 1.5, heartbeatPeriodMs: -1 }, { dynamodb: {}, lockTable: 3, partitionKey: "id", leaseDurationMs: 1, extra: true },
      { dynamodb, lockTable: "t", partitionKey: "id", leaseDurationMs: 10, trustLocalTime: "yes", retryCount: -1 }],
    FailClosed: [undefined, {}, { dynamodb, lockTable: "t", partitionKey: "owner", acquirePeriodMs: 1 }, { dynamodb, lockTable: "t", partitionKey: "id" },
      { dynamodb, lockTable: "t", partitionKey: "id", acquirePeriodMs: -5, retryCount: 0.5 }],
  };
  for (const [kind, configs] of Object.entries(cases)) {
    configs.forEach((config, i) => {
      test(`${kind} #${i} throws dlc's ValidationError`, () => {
        let expected;
        assert.throws(() => new dlc[kind](config), (err) => (expected = err, true));
        assert.throws(() => new dynalease[kind](config), (err) => {
          assert.equal(err.name, "ValidationError");
          assert.equal(err.message, expected.message);
          assert.deepEqual(err.details.map((d) => [d.message, d.path, d.type]), expected.details.map((d) => [d.message, d.path, d.type]));
          return true;
        });
        // Without `new` too.
        assert.throws(() => dynalease[kind](config), { message: expected.message });
      });
    });
  }
  test("the check that spares loading joi passes only configs dlc's schema passes", () => {
    const { plainlyValid, schemas } = require("../lib/schemas.js");
    class DocumentClient {
      get() {}
      put() {}
      delete() {}
    }
    const values = [
      undefined, null, "", "x", "id", "guid", "owner", "fencingToken", "leaseDurationMs", 0, -0, 1, -1, 1.5, 2 ** 53 - 1, 2 ** 53, NaN, Infinity,
      "5", new Number(5), true, false, {}, [], () => {}, dynamodb, new DocumentClient(), { get() {}, put() {} }, Object.create(null), new Date(0),
    ];
    const base = {
      failOpen: { dynamodb, lockTable: "t", partitionKey: "id", sortKey: "sk", leaseDurationMs: 10, heartbeatPeriodMs: 3, trustLocalTime: true, retryCount: 2, owner: "o" },
      failClosed: { dynamodb, lockTable: "t", partitionKey: "id", sortKey: "sk", acquirePeriodMs: 5, retryCount: 0, owner: "o" },
    };
    let passed = 0;
    for (const [kind, valid] of Object.entries(base)) {
      const configs = [valid, Object.assign(Object.create(null), valid), ...values];
      for (const key of [...Object.keys(base.failOpen), ...Object.keys(base.failClosed), "extra"]) {
        for (const value of values) configs.push({ ...valid, [key]: value });
        const { [key]: _, ...without } = valid;
        configs.push(without);
      }
      for (const config of configs) {
        if (!plainlyValid(kind, config)) continue;
        passed++;
        const { error } = schemas()[kind].validate(config, { abortEarly: false, convert: false });
        assert.equal(error, undefined, `${kind} ${require("node:util").inspect(config)}`);
      }
    }
    // The documented shapes do take the short way (otherwise this test would prove nothing).
    assert.ok(plainlyValid("failOpen", base.failOpen) && plainlyValid("failClosed", base.failClosed) && passed > 50, `${passed}`);
  });

  test("FailOpen.schema.config is dlc's joi schema, loaded when read", () => {
    const { error } = dynalease.FailOpen.schema.config.validate({}, { abortEarly: false, convert: false });
    assert.equal(error.name, "ValidationError");
    assert.equal(typeof dynalease.FailClosed.schema.config.validate, "function");
  });

  test("FailClosed accepts sortKey (dlc's README documents it)", () => {
    assert.doesNotThrow(() => new dynalease.FailClosed({ dynamodb, lockTable: "t", partitionKey: "id", sortKey: "sk", acquirePeriodMs: 1 }));
  });
});
