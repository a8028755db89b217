"use strict";
// The drop-in (FailOpen, FailClosed, Lock) when requests land but their answers are lost or
// come back as errors, on DynamoDB Local through a document client that injects such faults:
// a release asked for while a heartbeat is being verified is reported for what it did, an
// acquire whose put landed behind an error leaves the lock either held by us (and released by
// our release) or undone, and a fail-closed release or undo whose outcome stays unknown is
// taken back in the background: never held by nobody.

const { describe, test, before } = require("node:test");
const { assert, dynalease, newTable, sdkV3, sleep } = require("./helpers.js");

// A timeout as a user's SDK reports it: not a condition failure, so the write may have landed.
function timeout() {
  return Object.assign(new Error("socket timed out (injected)"), { name: "TimeoutError", code: "TimeoutError" });
}

// A Promise-style document client over a real one. `inject(match, fault)` arms a fault for the
// next request that `match(op, params)` accepts; `fault(call, params)` answers in its place,
// with `call()` performing the real request.
function faulty(client) {
  const rules = [];
  const calls = [];
  const wrapper = {
    calls,
    inject(match, fault) {
      rules.push({ match, fault });
    },
  };
  for (const op of ["get", "put", "delete"]) {
    wrapper[op] = (params) => {
      calls.push({ op, params });
      const call = () => client[op](params);
      const i = rules.findIndex((rule) => rule.match(op, params));
      if (i < 0) return call();
      const [rule] = rules.splice(i, 1);
      return rule.fault(call, params);
    };
  }
  return wrapper;
}

// The faults: the write lands and then the answer is an error; the write lands, its answer is
// lost and the SDK's resend is what answers (a condition failure, since the item now carries
// the new guid); the request fails at once without landing.
const landsThenFails = (error) => async (call) => {
  await call();
  throw error;
};
const landsThenResendFails = () => async (call) => {
  await call();
  return call();
};
const failsAtOnce = (error) => () => Promise.reject(error);

const isPut = (op) => op === "put";
const isGet = (op) => op === "get";
const isHeartbeat = (op, params) => op === "put" && /guid = :guid/.test(params.ConditionExpression || "") && params.Item.leaseDurationMs !== 1;
const isRelease = (op, params) => op === "put" && params.Item.leaseDurationMs === 1;

// The item as stored, its guid as a Buffer (SDK v3 reads binary as a Uint8Array).
async function item(table, id) {
  const found = (await sdkV3().get({ TableName: table, Key: { id }, ConsistentRead: true })).Item;
  if (found && found.guid) found.guid = Buffer.from(found.guid);
  return found;
}

describe("drop-in under lost answers and late writes", () => {
  let table;
  before(async () => {
    table = await newTable();
  });

  // Holds the heartbeat's verifying read for a while and lets the test release meanwhile.
  async function releaseDuringVerification(dynamodb, lock) {
    const verifying = new Promise((resolve) => {
      dynamodb.inject(isGet, async (call) => {
        resolve();
        await sleep(200);
        return call();
      });
    });
    // Were the release sent at once (dlc's defect), its answer would come after the read's.
    dynamodb.inject(isRelease, async (call) => {
      await sleep(400);
      return call();
    });
    await verifying;
    return lock.release();
  }

  test("a release while a heartbeat of a lost lock is verified reports FailedToReleaseLock", async () => {
    const dynamodb = faulty(sdkV3());
    const locks = new dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 5000, heartbeatPeriodMs: 50, owner: "a" });
    const lock = await locks.acquireLock("verify-lost");
    const errors = [];
    lock.on("error", (error) => errors.push(error));
    // Another client took the lock (as after a long pause of ours): our next heartbeat's
    // condition fails, and its read shows the new holder.
    const theirs = { id: "verify-lost", fencingToken: 2, leaseDurationMs: 5000, owner: "b", guid: Buffer.alloc(64, 7) };
    await sdkV3().put({ TableName: table, Item: theirs });
    await assert.rejects(releaseDuringVerification(dynamodb, lock), (err) => err.code === "FailedToReleaseLock");
    assert.deepEqual(errors, []);
    assert.deepEqual(await item(table, "verify-lost"), theirs, "the new holder's item is untouched");
    assert.ok(!dynamodb.calls.some(({ op, params }) => isRelease(op, params)), "no release of a lock we lost");
  });

  test("a release while a heartbeat that landed unseen is verified releases on the heartbeat's guid", async () => {
    const dynamodb = faulty(sdkV3());
    const locks = new dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 5000, heartbeatPeriodMs: 50, owner: "a" });
    dynamodb.inject(isHeartbeat, landsThenResendFails());
    const lock = await locks.acquireLock("verify-landed");
    lock.on("error", (error) => assert.fail(`heartbeat error ${error}`));
    await releaseDuringVerification(dynamodb, lock);
    const after = await item(table, "verify-landed");
    assert.equal(after.leaseDurationMs, 1, "released");
    assert.equal(after.fencingToken, 1);
    assert.ok(after.guid.equals(lock._guid), "with the guid the heartbeat wrote");
  });

  test("a release queued behind a heartbeat that timed out but landed releases on its guid", async () => {
    const dynamodb = faulty(sdkV3());
    const locks = new dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 5000, heartbeatPeriodMs: 50, owner: "a" });
    const lock = await locks.acquireLock("hb-timeout");
    const heartbeat = new Promise((resolve) => {
      dynamodb.inject(isHeartbeat, async (call) => {
        resolve();
        await sleep(100);
        await call();
        throw timeout();
      });
    });
    lock.on("error", (error) => assert.fail(`heartbeat error ${error}`));
    await heartbeat;
    await lock.release();
    const after = await item(table, "hb-timeout");
    assert.equal(after.leaseDurationMs, 1, "released, not left with a live lease");
  });

  for (const [name, readFault] of [
    ["landed, then a timeout", null],
    ["landed, then a timeout, and the read back fails too", () => failsAtOnce(timeout())],
  ]) {
    test(`FailClosed: a put that ${name} ends held by us or undone`, async () => {
      const dynamodb = faulty(sdkV3());
      const id = `fc-${name.replace(/\W+/g, "-")}`;
      const locks = new dynalease.FailClosed({ dynamodb, lockTable: table, partitionKey: "id", acquirePeriodMs: 10, retryCount: 0, owner: "a" });
      locks._undoDelayMs = 100;
      dynamodb.inject(isPut, landsThenFails(timeout()));
      if (readFault) dynamodb.inject(isGet, readFault());
      let lock;
      try {
        lock = await locks.acquireLock(id);
      } catch (err) {
        assert.equal(err.name, "TimeoutError");
      }
      if (lock) {
        assert.ok(!readFault, "acquired without a read that shows it");
        assert.ok((await item(table, id)).guid.equals(lock._guid), "the item is ours");
        await lock.release();
      }
      assert.equal(await item(table, id), undefined, "never left held by nobody");
      // And the lock can be taken again.
      await (await locks.acquireLock(id)).release();
    });
  }

  test("FailClosed: a put that failed at once but lands late is undone by the second undo", async () => {
    const dynamodb = faulty(sdkV3());
    const locks = new dynalease.FailClosed({ dynamodb, lockTable: table, partitionKey: "id", acquirePeriodMs: 10, retryCount: 0, owner: "a" });
    locks._undoDelayMs = 300;
    const error = timeout();
    // The put errs at once but is still on the wire; it lands just after the first undo (which
    // found nothing to delete), when the read back has already shown the item absent.
    let landPut;
    dynamodb.inject(isPut, (call) => {
      landPut = call;
      return Promise.reject(error);
    });
    let landed = false;
    dynamodb.inject(
      (op) => op === "delete",
      async (call) => {
        try {
          return await call();
        } finally {
          await landPut();
          landed = true;
        }
      },
    );
    const started = Date.now();
    await assert.rejects(locks.acquireLock("fc-late"), (err) => err === error);
    assert.ok(landed, "the put landed late");
    assert.ok(Date.now() - started >= 300, "the error waits for the second undo");
    assert.equal(await item(table, "fc-late"), undefined, "the late put was undone");
    const deletes = dynamodb.calls.filter(({ op }) => op === "delete");
    assert.equal(deletes.length, 2);
    for (const { params } of deletes) {
      assert.equal(params.ConditionExpression, "attribute_exists(#partitionKey) and guid = :guid");
      assert.ok(Buffer.isBuffer(params.ExpressionAttributeValues[":guid"]));
    }
  });

  test("FailClosed: the undo never touches another holder's lock", async () => {
    const dynamodb = faulty(sdkV3());
    const locks = new dynalease.FailClosed({ dynamodb, lockTable: table, partitionKey: "id", acquirePeriodMs: 10, retryCount: 0, owner: "a" });
    locks._undoDelayMs = 50;
    const theirs = { id: "fc-theirs", owner: "b", guid: Buffer.alloc(64, 5) };
    await sdkV3().put({ TableName: table, Item: theirs });
    dynamodb.inject(isPut, failsAtOnce(timeout()));
    await assert.rejects(locks.acquireLock("fc-theirs"), (err) => err.name === "TimeoutError");
    assert.deepEqual(await item(table, "fc-theirs"), theirs);
  });

  const isDelete = (op) => op === "delete";

  // Waits until `check()` holds, for up to `ms`.
  async function eventually(check, ms) {
    const until = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > until) return false;
      await sleep(20);
    }
    return true;
  }

  test("FailClosed: a release whose delete timed out is read back: resent while ours, done once gone", async () => {
    const dynamodb = faulty(sdkV3());
    const locks = new dynalease.FailClosed({ dynamodb, lockTable: table, partitionKey: "id", acquirePeriodMs: 10, retryCount: 0, owner: "a" });
    // Did not land: the read shows our item, and the resent delete releases it.
    const lock = await locks.acquireLock("fc-release-lost");
    dynamodb.inject(isDelete, failsAtOnce(timeout()));
    await lock.release();
    assert.equal(await item(table, "fc-release-lost"), undefined);
    const deletes = dynamodb.calls.filter(({ op }) => isDelete(op));
    assert.equal(deletes.length, 2);
    assert.deepEqual(deletes[1].params, deletes[0].params, "the resend is dlc's own delete");
    // Landed behind the timeout: the read shows it gone, and that is the release's success.
    const landed = await locks.acquireLock("fc-release-landed");
    dynamodb.inject(isDelete, landsThenFails(timeout()));
    await landed.release();
    assert.equal(await item(table, "fc-release-landed"), undefined);
  });

  test("FailClosed: a release that stays unknown reports its first error and is taken back in the background", async () => {
    const dynamodb = faulty(sdkV3());
    const locks = new dynalease.FailClosed({ dynamodb, lockTable: table, partitionKey: "id", acquirePeriodMs: 10, retryCount: 0, owner: "a" });
    const lock = await locks.acquireLock("fc-release-unknown");
    // The delete and its three resends time out without landing; the reads between them show
    // our item still there.
    const errors = [timeout(), timeout(), timeout(), timeout()];
    for (const error of errors) dynamodb.inject(isDelete, failsAtOnce(error));
    await assert.rejects(lock.release(), (err) => err === errors[0]);
    assert.equal(dynamodb.calls.filter(({ op }) => isDelete(op)).length, 4);
    // Not left held by nobody: the take-back deletes it on our guid once the network answers.
    assert.ok(await eventually(async () => (await item(table, "fc-release-unknown")) === undefined, 2000), "taken back");
    await (await locks.acquireLock("fc-release-unknown")).release();
  });

  test("FailClosed: an acquire whose undos all time out is taken back in the background", async () => {
    const dynamodb = faulty(sdkV3());
    const locks = new dynalease.FailClosed({ dynamodb, lockTable: table, partitionKey: "id", acquirePeriodMs: 10, retryCount: 0, owner: "a" });
    locks._undoDelayMs = 50;
    const error = timeout();
    // The put lands but answers with a timeout, the read back fails, and both undos time out.
    dynamodb.inject(isPut, landsThenFails(error));
    dynamodb.inject(isGet, failsAtOnce(timeout()));
    dynamodb.inject(isDelete, failsAtOnce(timeout()));
    dynamodb.inject(isDelete, failsAtOnce(timeout()));
    await assert.rejects(locks.acquireLock("fc-undo-unknown"), (err) => err === error);
    assert.ok(await eventually(async () => (await item(table, "fc-undo-unknown")) === undefined, 2000), "taken back");
    const deletes = dynamodb.calls.filter(({ op }) => isDelete(op));
    assert.ok(deletes.length >= 3, "two undos and the take-back");
    assert.deepEqual(deletes[2].params, deletes[0].params, "the take-back is the undo's delete, on our guid");
  });

  test("FailOpen: a put that landed behind a timeout is read back and held", async () => {
    const dynamodb = faulty(sdkV3());
    const locks = new dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 5000, owner: "a" });
    dynamodb.inject(isPut, landsThenFails(timeout()));
    const lock = await locks.acquireLock("fo-landed");
    assert.equal(lock.fencingToken, 1);
    await lock.release();
    assert.equal((await item(table, "fo-landed")).leaseDurationMs, 1);
  });

  test("FailOpen: a put of unknown outcome is undone with a release before the error", async () => {
    const dynamodb = faulty(sdkV3());
    const locks = new dynalease.FailOpen({ dynamodb, lockTable: table, partitionKey: "id", leaseDurationMs: 5000, owner: "a" });
    const error = timeout();
    dynamodb.inject(isPut, landsThenFails(error));
    dynamodb.inject((op, params) => isGet(op) && dynamodb.calls.some((c) => isPut(c.op)), failsAtOnce(timeout()));
    await assert.rejects(locks.acquireLock("fo-unknown"), (err) => err === error);
    const after = await item(table, "fo-unknown");
    assert.equal(after.leaseDurationMs, 1, "our landed put was released, not left leased for 5 s");
    // The next acquire takes it at once, with the next token.
    const started = Date.now();
    const lock = await locks.acquireLock("fo-unknown");
    assert.ok(Date.now() - started < 1000);
    assert.equal(lock.fencingToken, 2);
    await lock.release();
  });
});
