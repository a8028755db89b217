"use strict";
// callTimeoutMs, maxRetries and pollIntervalMs take effect, and writes whose outcome is unknown
// reject with ERR_DYNALEASE_OUTCOME_UNKNOWN (and only those). The endpoints are local sockets
// with known behaviour: one that never answers, a port that refuses connections, and a proxy to
// DynamoDB Local that counts requests. Assertions are on error codes and request counts, never
// on how long something took.

const { after, before, describe, test } = require("node:test");
const net = require("node:net");

const { assert, dynalease, endpoint, newTable, rejectsWithCode, uniqueName } = require("./helpers.js");

const { KVStore, LockClient, codes, createTable } = dynalease;

/** Requests (one per DynamoDB call) in the bytes a client sent, of one operation if given. */
function countRequests(chunks, operation) {
  const wanted = `x-amz-target: dynamodb_20120810.${operation ? operation.toLowerCase() : ""}`;
  let count = 0;
  for (const chunk of chunks) {
    const text = Buffer.concat(chunk).toString("latin1").toLowerCase();
    for (let at = text.indexOf(wanted); at !== -1; at = text.indexOf(wanted, at + 1)) count++;
  }
  return count;
}

/** A loopback server that accepts and reads but never answers (`proxyTo`: forwards instead). */
async function startServer({ proxyTo } = {}) {
  const received = [];
  const sockets = new Set();
  const server = net.createServer((socket) => {
    const chunks = [];
    received.push(chunks);
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.on("data", (data) => chunks.push(data));
    if (proxyTo) {
      const upstream = net.connect(proxyTo.port, proxyTo.hostname);
      sockets.add(upstream);
      upstream.on("error", () => socket.destroy());
      upstream.on("close", () => { sockets.delete(upstream); socket.destroy(); });
      socket.on("close", () => upstream.destroy());
      socket.pipe(upstream);
      upstream.pipe(socket);
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${server.address().port}`,
    requests: (operation) => countRequests(received, operation),
    // A client reports its error as soon as it gives up, possibly before our 'data' ran.
    async settledRequests(operation, expected) {
      for (let i = 0; i < 250 && countRequests(received, operation) < expected; i++) await new Promise((r) => setTimeout(r, 20));
      return countRequests(received, operation);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A loopback port nothing listens on (a closed server's): connecting is refused. */
async function refusingEndpoint() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

const WRITES = {
  put: (kv) => kv.put("k", 1),
  "atomicPut create": (kv) => kv.atomicPut("k", 1),
  "atomicPut swap": (kv) => kv.atomicPut("k", 2, { previous: { key: "k", version: 7 } }),
  delete: (kv) => kv.delete("k"),
  atomicDelete: (kv) => kv.atomicDelete("k", { key: "k", version: 7 }),
};

test("codes.OUTCOME_UNKNOWN is ERR_DYNALEASE_OUTCOME_UNKNOWN", () => {
  assert.equal(codes.OUTCOME_UNKNOWN, "ERR_DYNALEASE_OUTCOME_UNKNOWN");
  assert.ok(Object.isFrozen(codes));
  const error = new dynalease.DynaleaseError(codes.OUTCOME_UNKNOWN, "m");
  assert.ok(error instanceof Error);
  assert.equal(error.code, "ERR_DYNALEASE_OUTCOME_UNKNOWN");
});

describe("an endpoint that never answers", () => {
  let silent;
  before(async () => { silent = await startServer(); });
  after(async () => { await silent.close(); });

  for (const [name, write] of Object.entries(WRITES)) {
    test(`${name}: a write without an answer has an unknown outcome`, async () => {
      const kv = new KVStore({ table: "kv-store", partition: "p", endpoint: silent.endpoint, callTimeoutMs: 200, maxRetries: 0 });
      const before = silent.requests();
      await assert.rejects(write(kv), (error) => {
        assert.equal(error.code, codes.OUTCOME_UNKNOWN, error.stack);
        assert.match(error.message, /may have been applied/);
        return true;
      });
      // The server did receive the write: it may have applied it.
      assert.ok((await silent.settledRequests(undefined, before + 1)) > before);
    });
  }

  test("a read without an answer is a transport error, not an unknown outcome", async () => {
    const kv = new KVStore({ table: "kv-store", partition: "p", endpoint: silent.endpoint, callTimeoutMs: 200, maxRetries: 0 });
    await rejectsWithCode(kv.get("k"), codes.TRANSPORT);
  });

  for (const maxRetries of [0, 2]) {
    test(`each attempt ends at callTimeoutMs; a read is repeated maxRetries (${maxRetries}) times`, async () => {
      const kv = new KVStore({ table: "kv-store", partition: "p", endpoint: silent.endpoint, callTimeoutMs: 200, maxRetries });
      const before = silent.requests("GetItem");
      await assert.rejects(kv.get("k"), (error) => {
        assert.equal(error.code, codes.TRANSPORT, error.stack);
        // Our deadline (the default is 5 s), as the message says.
        assert.match(error.message, /no response within 200ms/);
        return true;
      });
      assert.equal(await silent.settledRequests("GetItem", before + maxRetries + 1), before + maxRetries + 1);
    });
  }

  test("createTable takes callTimeoutMs and maxRetries", async () => {
    const [creates, describes] = [silent.requests("CreateTable"), silent.requests("DescribeTable")];
    await assert.rejects(createTable(uniqueName("t"), { endpoint: silent.endpoint, callTimeoutMs: 200, maxRetries: 1 }), (error) => {
      assert.ok([codes.TRANSPORT, codes.OUTCOME_UNKNOWN].includes(error.code), error.stack);
      assert.match(error.message, /200ms/);
      return true;
    });
    // CreateTable is sent once; the describe that then looks for the table is a read, repeated.
    assert.equal(await silent.settledRequests("DescribeTable", describes + 2), describes + 2);
    assert.equal(silent.requests("CreateTable"), creates + 1);
  });

  test("a lock client uses its callTimeoutMs", async () => {
    const locks = new LockClient({ table: "locks", endpoint: silent.endpoint, callTimeoutMs: 200, maxRetries: 0 });
    await assert.rejects(locks.tryAcquire("job"), (error) => {
      assert.ok([codes.TRANSPORT, codes.OUTCOME_UNKNOWN].includes(error.code), error.stack);
      assert.match(error.message, /200ms/);
      return true;
    });
  });
});

test("a refused connection is a transport error, never an unknown outcome", async () => {
  // Nothing was sent, so the write certainly did not happen.
  const kv = new KVStore({ table: "kv-store", partition: "p", endpoint: await refusingEndpoint(), callTimeoutMs: 1000, maxRetries: 1 });
  for (const write of Object.values(WRITES)) {
    await assert.rejects(write(kv), (error) => {
      assert.equal(error.code, codes.TRANSPORT, error.stack);
      assert.match(error.message, /refused/i);
      return true;
    });
  }
});

test("settings read back, with their defaults", () => {
  const lockDefaults = new LockClient({ table: "locks", endpoint: "memory://settings" });
  assert.deepEqual([lockDefaults.callTimeoutMs, lockDefaults.pollIntervalMs, lockDefaults.maxPollIntervalMs, lockDefaults.maxRetries], [5000, 50, 1500, 7]);
  const locks = new LockClient({
    table: "locks", endpoint: "memory://settings", callTimeoutMs: 750, pollIntervalMs: 250, maxPollIntervalMs: 3000, maxRetries: 0,
  });
  assert.deepEqual([locks.callTimeoutMs, locks.pollIntervalMs, locks.maxPollIntervalMs, locks.maxRetries], [750, 250, 3000, 0]);
  const kvDefaults = new KVStore({ table: "kv-store", partition: "p", endpoint: "memory://settings" });
  assert.deepEqual([kvDefaults.callTimeoutMs, kvDefaults.maxRetries], [5000, 7]);
  const kv = new KVStore({ table: "kv-store", partition: "p", endpoint: "memory://settings", callTimeoutMs: 2000, maxRetries: 100 });
  assert.deepEqual([kv.callTimeoutMs, kv.maxRetries], [2000, 100]);
});

test("bad settings fail in every constructor", async () => {
  const cases = [
    [{ callTimeoutMs: 0 }, /callTimeoutMs must be longer than zero/],
    [{ callTimeoutMs: -1 }, /callTimeoutMs must be a finite number of milliseconds >= 0/],
    [{ callTimeoutMs: NaN }, /callTimeoutMs must be a finite number/],
    [{ callTimeoutMs: "1000" }, /callTimeoutMs must be a number \(got string\)/],
    [{ maxRetries: -1 }, /maxRetries must be a whole number >= 0/],
    [{ maxRetries: 1.5 }, /maxRetries must be a whole number >= 0/],
    [{ maxRetries: Infinity }, /maxRetries must be a whole number >= 0/],
    [{ maxRetries: 101 }, /maxRetries is 101; at most 100 is allowed/],
    [{ maxRetries: 2 ** 40 }, /at most 100 is allowed/],
    [{ maxRetries: true }, /maxRetries must be a number \(got boolean\)/],
  ];
  for (const [options, message] of cases) {
    const check = (error) => {
      assert.equal(error.code, codes.CONFIG, `${JSON.stringify(options)}: ${error.stack}`);
      assert.match(error.message, message);
      return true;
    };
    assert.throws(() => new LockClient({ table: "locks", endpoint: "memory://settings", ...options }), check);
    assert.throws(() => new KVStore({ table: "kv-store", partition: "p", endpoint: "memory://settings", ...options }), check);
    await assert.rejects(createTable("locks", { endpoint: "memory://settings", ...options }), check);
  }
  for (const [options, message] of [
    [{ pollIntervalMs: 0 }, /pollIntervalMs must be greater than zero/],
    [{ pollIntervalMs: -5 }, /pollIntervalMs must be a finite number of milliseconds >= 0/],
    [{ pollIntervalMs: "50" }, /pollIntervalMs must be a number/],
    [{ maxPollIntervalMs: 0 }, /maxPollIntervalMs must be greater than zero/],
    [{ maxPollIntervalMs: -1 }, /maxPollIntervalMs must be a finite number of milliseconds >= 0/],
    [{ maxPollIntervalMs: "1500" }, /maxPollIntervalMs must be a number/],
  ]) {
    assert.throws(() => new LockClient({ table: "locks", ...options }), (error) => error.code === codes.CONFIG && message.test(error.message));
  }
  // Lock clients only.
  assert.throws(() => new KVStore({ table: "kv-store", partition: "p", pollIntervalMs: 50 }), /unknown option "pollIntervalMs"/);
});

test("pollIntervalMs bounds how often a waiter reads", async () => {
  const table = await newTable();
  // The holder never renews, so the waiter watches one unchanged lease the whole time.
  const holder = new LockClient({ table, endpoint, leaseDurationMs: 60000, heartbeatPeriodMs: 0 });
  const held = await holder.acquire("polled");
  const proxy = await startServer({ proxyTo: new URL(endpoint) });
  const [pollMs, waitMs] = [1000, 2000];
  let reads;
  try {
    const waiter = new LockClient({ table, endpoint: proxy.endpoint, pollIntervalMs: pollMs });
    await rejectsWithCode(waiter.acquire("polled", { timeoutMs: waitMs }), codes.LOCK_NOT_ACQUIRED);
    reads = proxy.requests("GetItem");
  } finally {
    await proxy.close();
    await held.release();
  }
  // For its first 2 s a waiter reads every poll interval, never faster: at 1 s and 2 s, and once
  // more at the deadline at most (its first look is a write). At the default (50 ms) the same wait
  // takes 40 reads. Only an upper bound is asserted: a slow machine reads less, never more.
  assert.ok(reads <= Math.floor(waitMs / pollMs) + 1, `${reads} reads`);
});

test("a long wait backs off toward maxPollIntervalMs", async () => {
  const table = await newTable();
  const holder = new LockClient({ table, endpoint, leaseDurationMs: 60000, heartbeatPeriodMs: 0 });
  const held = await holder.acquire("backing-off");
  const proxy = await startServer({ proxyTo: new URL(endpoint) });
  let reads;
  try {
    const waiter = new LockClient({ table, endpoint: proxy.endpoint });
    await rejectsWithCode(waiter.acquire("backing-off", { timeoutMs: 6000 }), codes.LOCK_NOT_ACQUIRED);
    reads = proxy.requests("GetItem");
  } finally {
    await proxy.close();
    await held.release();
  }
  // 40 reads in the first 2 s (every 50 ms), then pauses that grow with the wait (half the time
  // waited past 2 s) up to maxPollIntervalMs: about a dozen more by 6 s. Polling at 50 ms
  // throughout would take 120.
  assert.ok(reads <= 60, `${reads} reads`);
});

for (const failClosed of [false, true]) {
  test(`an acquire aborted while its write is in flight leaves the lock free, not held by nobody (${failClosed ? "fail-closed" : "lease"})`, async () => {
    const table = await newTable();
    // A lease far longer than the test waits (fail-closed: none at all), so the lock only frees
    // in time if the aborted acquisition's write is taken back.
    const options = { table, endpoint, callTimeoutMs: 1000, ...(failClosed ? { failClosed } : { leaseDurationMs: 60000 }) };
    const [locks, other] = [new LockClient(options), new LockClient(options)];
    for (let i = 0; i < 5; i++) {
      const controller = new AbortController();
      const acquiring = locks.acquire("aborted", { signal: controller.signal });
      // Aborted at once: the request is on its way to DynamoDB Local, or about to be.
      controller.abort();
      const outcome = await acquiring.then((lock) => lock, (error) => error);
      if (outcome instanceof dynalease.LeaseLock) {
        // Won before the abort was seen: ours to release, like any lock.
        await outcome.release();
        continue;
      }
      assert.equal(outcome.name, "AbortError", outcome.stack);
      let lock = null;
      for (let tries = 0; lock === null && tries < 200; tries++) {
        lock = await other.tryAcquire("aborted");
        if (lock === null) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(lock, `attempt ${i}: the aborted acquisition still holds the lock`);
      await lock.release();
    }
  });
}
