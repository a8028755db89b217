"use strict";
// Beyond one mutex, on the Promise API: hand-off (detach / resume / renew / handle), elections
// (campaign / leader / watch), counting semaphores and Lambda-bounded locks, each on DynamoDB
// Local and on a "memory://" table. What crosses processes (a handle resumed in a child, a
// child's exit while a watch or a Lambda lock's deadline is pending) runs in child `node`
// processes. Waits poll for the condition they need; nothing asserts how long anything took.

const { before, describe, test } = require("node:test");
const { execFile } = require("node:child_process");
const path = require("node:path");
const { promisify } = require("node:util");

const { assert, dynalease, endpoint, region, newTable, rejectsWithCode, sleep, uniqueName } = require("./helpers.js");

const { KVStore, LockClient, LeaseLock, codes, createTable } = dynalease;

const INDEX = path.resolve(__dirname, "../index.js");
// Generous: a loaded 2-core machine can be slow, and none of these waits bounds a correct answer.
const TEST = { timeout: 120000 };

/** Polls `condition` (sync or async) until it is truthy; fails after `timeoutMs`. */
async function waitFor(what, condition, { timeoutMs = 60000, intervalMs = 20 } = {}) {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > giveUpAt) assert.fail(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Runs `body` (JS with `dynalease`, `options` and `args` in scope, top-level await allowed) in
 * a child `node` process; resolves to its stdout. The child must exit by itself: a timeout
 * (something kept it alive) fails the test.
 */
async function runChild(body, { options, args = {}, timeoutMs = 60000 } = {}) {
  const script = `
    const dynalease = require(${JSON.stringify(INDEX)});
    const options = ${JSON.stringify(options)};
    const args = ${JSON.stringify(args)};
    (async () => { ${body} })().catch((error) => { console.error(error); process.exit(1); });`;
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ["-e", script], { timeout: timeoutMs, env: process.env });
    return stdout;
  } catch (error) {
    assert.fail(`child ${error.killed ? "did not exit by itself" : `failed (${error.code})`}:\n${error.stderr}`);
  }
}

const BACKENDS = [
  {
    name: "DynamoDB Local",
    crossProcess: true,
    async setup() {
      const kvTable = uniqueName("kv");
      await createTable(kvTable, { partitionKey: "pk", sortKey: "sk", endpoint, region });
      return { table: await newTable(), sortedTable: await newTable({ sortKey: "sk" }), kvTable, connection: { endpoint, region } };
    },
  },
  {
    name: "memory://",
    crossProcess: false,
    async setup() {
      const memory = `memory://${uniqueName("coordination")}`;
      await createTable("locks", { endpoint: memory });
      await createTable("sorted-locks", { sortKey: "sk", endpoint: memory });
      await createTable("kv-store", { partitionKey: "pk", sortKey: "sk", endpoint: memory });
      return { table: "locks", sortedTable: "sorted-locks", kvTable: "kv-store", connection: { endpoint: memory } };
    },
  },
];

for (const backend of BACKENDS) {
  describe(`coordination on ${backend.name}`, () => {
    let table, sortedTable, kvTable, connection;
    const clients = (options = {}) => new LockClient({ table, ...connection, ...options });
    const kvStore = () => new KVStore({ table: kvTable, partition: uniqueName("p"), ...connection });
    before(async () => {
      ({ table, sortedTable, kvTable, connection } = await backend.setup());
    });

    test("with a sort key, elections, semaphores and handles take [partition, sort] ids", TEST, async () => {
      const locks = new LockClient({ table: sortedTable, sortKey: "sk", ...connection });
      const tenant = uniqueName("tenant");
      const term = await locks.election([tenant, "leader"]).campaign();
      assert.deepEqual(term.id, [tenant, "leader"]);
      assert.equal((await locks.election([tenant, "leader"]).leader()).term, term.fencingToken);
      const resumed = await locks.resume(await term.detach());
      assert.deepEqual(resumed.id, [tenant, "leader"]);
      await resumed.release();
      const sem = locks.semaphore([tenant, "exports"], { permits: 2 });
      assert.deepEqual(sem.name, [tenant, "exports"]);
      const permit = await sem.acquire();
      assert.equal(permit.id[0], tenant);
      assert.match(permit.id[1], /^exports#[01]$/);
      assert.equal((await sem.holders()).length, 1);
      await permit.release();
      assert.throws(() => locks.semaphore(["tenant", 7], { permits: 2 }), { code: codes.CONFIG, message: /must be a string/ });
      assert.throws(() => locks.election("no-sort-part"), { code: codes.CONFIG, message: /no sort key part/ });
    });

    describe("hand-off", () => {
      test("detach, then resume in another client: the lock stays held and works there", TEST, async () => {
        const id = uniqueName("handoff");
        const a = clients({ leaseDurationMs: 5000 });
        const b = clients({ leaseDurationMs: 5000 });
        const lock = await a.acquire(id);
        await lock.updateData({ step: 1 });
        const handle = await lock.detach();
        assert.equal(typeof handle, "string");
        assert.match(handle, /^[A-Za-z0-9_-]+$/);
        assert.equal(lock.status, "detached");
        assert.equal(lock.handle, handle);
        assert.equal(await b.tryAcquire(id), null, "a detached lock is still held");

        const resumed = await b.resume(handle);
        assert.ok(resumed instanceof LeaseLock);
        assert.equal(resumed.status, "held");
        assert.deepEqual(resumed.id, id);
        assert.equal(resumed.fencingToken, lock.fencingToken);
        assert.deepEqual(resumed.data, { step: 1 });
        assert.equal(resumed.signal.aborted, false);
        // Lock data and fenced writes, as on any lock.
        await resumed.updateData({ step: 2 });
        const kv = kvStore();
        await kv.put("fenced", 1, { lock: resumed });
        await kv.atomicPut("fenced-cas", 1, { lock: resumed });
        await resumed.release();
        assert.equal(resumed.status, "released");
        const next = await a.tryAcquire(id);
        assert.equal(next.fencingToken, lock.fencingToken + 1);
        assert.deepEqual(next.data, { step: 2 });
        await next.release();
      });

      test("a detached lock refuses to act; its signal stays quiet", TEST, async () => {
        const id = uniqueName("detached");
        const locks = clients();
        const lock = await locks.acquire(id);
        const handle = await lock.detach();
        await rejectsWithCode(lock.release(), codes.LOCK_LOST);
        await assert.rejects(lock.release(), /detached/);
        await rejectsWithCode(lock.updateData("x"), codes.LOCK_LOST);
        await rejectsWithCode(lock.renew(), codes.LOCK_LOST);
        await rejectsWithCode(lock.detach(), codes.LOCK_LOST);
        await rejectsWithCode(kvStore().put("k", 1, { lock }), codes.LOCK_LOST);
        assert.equal(lock.status, "detached");
        assert.equal(lock.signal.aborted, false);
        assert.equal(await locks.tryAcquire(id), null, "the refusals released nothing");
        await (await locks.resume(handle)).release();
      });

      test("renew changes the handle; the old one no longer resumes", TEST, async () => {
        const id = uniqueName("renew");
        const locks = clients({ heartbeatPeriodMs: 0 });
        const lock = await locks.acquire(id);
        const first = lock.handle;
        await lock.renew();
        const second = lock.handle;
        assert.notEqual(second, first);
        await rejectsWithCode(locks.resume(first), codes.LOCK_LOST);
        assert.equal(lock.status, "held", "a failed resume takes nothing");
        assert.equal(await lock.detach(), second);
        const resumed = await locks.resume(second);
        await resumed.renew();
        assert.notEqual(resumed.handle, second);
        await resumed.release();
      });

      test("resuming a released or taken-over lock rejects with ERR_DYNALEASE_LOCK_LOST", TEST, async () => {
        const released = uniqueName("released");
        const locks = clients();
        const lock = await locks.acquire(released);
        const handle = await lock.detach();
        await (await locks.resume(handle)).release();
        await rejectsWithCode(locks.resume(handle), codes.LOCK_LOST);

        // Detached without heartbeats and never resumed: its lease runs out and another
        // client takes it over.
        const taken = uniqueName("taken");
        const quiet = clients({ leaseDurationMs: 500, heartbeatPeriodMs: 0 });
        const stale = await quiet.acquire(taken);
        const staleHandle = await stale.detach();
        const other = await clients().acquire(taken, { timeoutMs: 30000 });
        assert.equal(other.fencingToken, stale.fencingToken + 1);
        await rejectsWithCode(locks.resume(staleHandle), codes.LOCK_LOST);
        assert.equal(other.status, "held");
        await other.release();
      });

      test("a resumed lock's signal aborts when its lease is lost", TEST, async () => {
        const id = uniqueName("resumed-lost");
        const lock = await clients({ leaseDurationMs: 1000 }).acquire(id);
        const handle = await lock.detach();
        const resumed = await clients({ leaseDurationMs: 400, heartbeatPeriodMs: 0 }).resume(handle);
        // Resumed by a client without heartbeats: the lease runs out.
        const reason = await new Promise((resolve) => resumed.signal.addEventListener("abort", () => resolve(resumed.signal.reason)));
        assert.equal(reason.code, codes.LOCK_LOST);
        assert.equal(resumed.status, "lost");
        await resumed.release().catch((error) => assert.equal(error.code, codes.LOCK_LOST));
      });

      test("fail-closed locks hand off too; they have no lease to renew", TEST, async () => {
        const id = uniqueName("fail-closed");
        const a = clients({ failClosed: true });
        const b = clients({ failClosed: true });
        const lock = await a.acquire(id);
        await rejectsWithCode(lock.renew(), codes.CONFIG);
        const handle = await lock.detach();
        assert.equal(lock.status, "detached");
        await rejectsWithCode(clients().resume(handle), codes.CONFIG);
        const resumed = await b.resume(handle);
        assert.equal(resumed.fencingToken, null);
        assert.equal(await a.tryAcquire(id), null);
        await resumed.release();
        await rejectsWithCode(b.resume(handle), codes.LOCK_LOST);
        const again = await a.tryAcquire(id);
        assert.ok(again);
        await again.release();
      });

      test("text that is no handle is refused before any request", TEST, async () => {
        const locks = clients();
        await assert.rejects(locks.resume("not a handle!"), { code: codes.CONFIG, message: /not a lock handle/ });
        await assert.rejects(locks.resume(42), { code: codes.CONFIG, message: /resume: handle must be a string/ });
        const lock = await locks.acquire(uniqueName("other-table"));
        const handle = await lock.detach();
        await assert.rejects(new LockClient({ table: "another-table", ...connection }).resume(handle), { code: codes.CONFIG, message: /table/ });
        await (await locks.resume(handle)).release();
      });

      // memory:// tables are per process: a child would see an empty one.
      if (backend.crossProcess) test("detach in one process, resume in another, release in a third", TEST, async () => {
        const id = uniqueName("cross-process");
        const options = { table, ...connection, leaseDurationMs: 10000 };
        // A detached lock keeps nothing alive: the child exits with the lock held.
        const detached = await runChild(
          `const lock = await new dynalease.LockClient(options).acquire(args.id);
           console.log(JSON.stringify({ handle: await lock.detach(), token: lock.fencingToken }));`,
          { options, args: { id } },
        );
        const { handle, token } = JSON.parse(detached);
        const locks = clients();
        assert.equal(await locks.tryAcquire(id), null, "held after its process exited");
        const here = await locks.resume(handle);
        assert.equal(here.fencingToken, token);
        const again = await here.detach();
        const released = await runChild(
          `const lock = await new dynalease.LockClient(options).resume(args.handle);
           await lock.release();
           console.log(JSON.stringify({ status: lock.status, token: lock.fencingToken }));`,
          { options, args: { handle: again } },
        );
        assert.deepEqual(JSON.parse(released), { status: "released", token });
        const next = await locks.tryAcquire(id);
        assert.equal(next.fencingToken, token + 1);
        await next.release();
      });
    });

    describe("elections", () => {
      test("campaign, leader, resign: terms are fencing tokens", TEST, async () => {
        const name = uniqueName("election");
        const a = clients({ owner: "candidate-a" });
        const b = clients({ owner: "candidate-b" });
        const election = a.election(name);
        assert.deepEqual(election.name, name);
        assert.equal(await election.leader(), null);

        const term = await election.campaign({ data: { addr: "10.0.0.7" } });
        assert.ok(term instanceof LeaseLock);
        assert.deepEqual(await b.election(name).leader(), { owner: "candidate-a", term: term.fencingToken, data: { addr: "10.0.0.7" } });
        await rejectsWithCode(b.election(name).campaign({ timeoutMs: 100 }), codes.LOCK_NOT_ACQUIRED);

        // A waiting candidate leads once the leader resigns.
        const waiting = b.election(name).campaign({ timeoutMs: 60000 });
        await term.release();
        const next = await waiting;
        assert.equal(next.fencingToken, term.fencingToken + 1);
        const leader = await election.leader();
        assert.equal(leader.owner, "candidate-b");
        assert.equal(leader.term, next.fencingToken);
        assert.equal(leader.data, undefined, "a term without data shows none");
        await next.release();
        assert.equal(await election.leader(), null);
      });

      test("the watcher sees the leader, each term in order, and null after each resignation", TEST, async () => {
        const name = uniqueName("watched");
        const locks = clients({ owner: "leader" });
        const election = locks.election(name);
        const controller = new AbortController();
        const seen = [];
        const watching = (async () => {
          for await (const leader of election.watch({ signal: controller.signal, intervalMs: 20 })) seen.push(leader);
        })();
        await waitFor("the first reading", () => seen.length === 1);
        const terms = [];
        for (const data of ["first", "second", "third"]) {
          const term = await election.campaign({ data });
          terms.push(term.fencingToken);
          // Each term lasts until the watcher has seen it, and so does each vacancy.
          await waitFor(`term ${term.fencingToken}`, () => seen.at(-1)?.term === term.fencingToken);
          await term.release();
          await waitFor("the resignation", () => seen.at(-1) === null && seen.length > 1);
        }
        controller.abort();
        await watching;
        assert.deepEqual(seen, [
          null,
          { owner: "leader", term: terms[0], data: "first" }, null,
          { owner: "leader", term: terms[1], data: "second" }, null,
          { owner: "leader", term: terms[2], data: "third" }, null,
        ]);
        assert.deepEqual(terms, [terms[0], terms[0] + 1, terms[0] + 2]);
      });

      test("abort and break end a watch; an already aborted signal yields nothing", TEST, async () => {
        const election = clients().election(uniqueName("ended"));
        // Abort while a read is pending (nothing changes, so the second next() waits).
        const controller = new AbortController();
        const watch = election.watch({ signal: controller.signal, intervalMs: 20 });
        assert.deepEqual(await watch.next(), { done: false, value: null });
        const pending = watch.next();
        controller.abort();
        assert.deepEqual(await pending, { done: true, value: undefined });
        assert.deepEqual(await watch.next(), { done: true, value: undefined });

        let readings = 0;
        for await (const leader of election.watch({ intervalMs: 20 })) {
          assert.equal(leader, null);
          readings++;
          break;
        }
        assert.equal(readings, 1);

        // return() while next() is pending settles it.
        const returned = election.watch({ intervalMs: 20 });
        await returned.next();
        const waiting = returned.next();
        assert.deepEqual(await returned.return(), { done: true, value: undefined });
        assert.deepEqual(await waiting, { done: true, value: undefined });

        for await (const leader of election.watch({ signal: AbortSignal.abort() })) assert.fail(`yielded ${leader}`);
      });

      test("a watch that ended leaves nothing pending: the process exits", TEST, async () => {
        const options = { table, ...connection };
        const out = await runChild(
          `if (options.endpoint.startsWith("memory://")) await dynalease.createTable(options.table, { endpoint: options.endpoint });
           const election = new dynalease.LockClient(options).election(args.name);
           for await (const leader of election.watch({ intervalMs: 20 })) { console.log("first", leader); break; }
           const controller = new AbortController();
           const watch = election.watch({ signal: controller.signal, intervalMs: 20 });
           await watch.next();
           const pending = watch.next();
           setTimeout(() => controller.abort(), 100);
           console.log("aborted", (await pending).done);
           const returned = election.watch({ intervalMs: 20 });
           await returned.next();
           const waiting = returned.next();
           await returned.return();
           console.log("returned", (await waiting).done);`,
          { options, args: { name: uniqueName("child-watch") } },
        );
        assert.match(out, /first null/);
        assert.match(out, /aborted true/);
        assert.match(out, /returned true/);
      });

      test("campaign waits can be aborted", TEST, async () => {
        const name = uniqueName("abort-campaign");
        const term = await clients().election(name).campaign();
        const controller = new AbortController();
        const waiting = clients().election(name).campaign({ signal: controller.signal });
        await sleep(50);
        controller.abort(new Error("stop campaigning"));
        await assert.rejects(waiting, { message: "stop campaigning" });
        await assert.rejects(clients().election(name).campaign({ signal: AbortSignal.abort() }), { name: "AbortError" });
        assert.equal((await clients().election(name).leader()).term, term.fencingToken);
        await term.release();
      });

      test("bad election input is refused with ERR_DYNALEASE_CONFIG", TEST, async () => {
        assert.throws(() => clients({ failClosed: true }).election("e"), { code: codes.CONFIG, message: /elections need fail-open locks.*failClosed/ });
        assert.throws(() => clients().election(""), { code: codes.CONFIG, message: /empty/ });
        assert.throws(() => clients().election({ name: "e" }), { code: codes.CONFIG, message: /lock id must be/ });
        const election = clients().election(uniqueName("bad"));
        await assert.rejects(election.campaign({ timeout: 5 }), { code: codes.CONFIG, message: /campaign: unknown option "timeout"/ });
        await assert.rejects(election.campaign({ timeoutMs: -1 }), { code: codes.CONFIG, message: /timeoutMs must be a finite number of milliseconds >= 0/ });
        await assert.rejects(election.campaign({ signal: {} }), { code: codes.CONFIG, message: /signal must be an AbortSignal/ });
        await assert.rejects(election.campaign({ data: new Date() }), { code: codes.CONFIG, message: /a Date cannot be stored/ });
        await assert.rejects(election.campaign(null), { code: codes.CONFIG, message: /campaign needs an options object/ });
        assert.throws(() => election.watch({ intervalMs: -5 }), { code: codes.CONFIG, message: /intervalMs must be a finite number/ });
        assert.throws(() => election.watch({ intervalMs: "5" }), { code: codes.CONFIG, message: /watch: intervalMs must be a number/ });
        assert.throws(() => election.watch({ interval: 5 }), { code: codes.CONFIG, message: /watch: unknown option "interval"/ });
        assert.equal(await election.leader(), null, "nothing was written");
      });
    });

    describe("semaphores", () => {
      test("never more than N holders among many concurrent acquirers", TEST, async () => {
        const name = uniqueName("sem");
        const permits = 3;
        const semaphores = [clients(), clients(), clients()].map((locks) => locks.semaphore(name, { permits }));
        let holding = 0;
        let most = 0;
        const tokens = new Set();
        const worker = async (i) => {
          for (let round = 0; round < 2; round++) {
            const permit = await semaphores[i % semaphores.length].acquire({ timeoutMs: 60000 });
            holding++;
            most = Math.max(most, holding);
            assert.ok(holding <= permits, `${holding} holders of ${permits} permits`);
            tokens.add(`${JSON.stringify(permit.id)}:${permit.fencingToken}`);
            await sleep(20);
            holding--;
            await permit.release();
          }
        };
        await Promise.all(Array.from({ length: 10 }, (_, i) => worker(i)));
        assert.ok(most >= 1 && most <= permits, `at most ${permits} at once, saw ${most}`);
        assert.equal(tokens.size, 20, "every acquisition got its own permit term");
        assert.deepEqual(await semaphores[0].holders(), []);
      });

      test("tryAcquire is null when all permits are held; holders() lists them", TEST, async () => {
        const name = uniqueName("full");
        const sem = clients({ owner: "sem-owner" }).semaphore(name, { permits: 2 });
        assert.deepEqual(sem.name, name);
        assert.equal(sem.permits, 2);
        const first = await sem.tryAcquire();
        const second = await sem.acquire({ timeoutMs: 1000 });
        assert.ok(first instanceof LeaseLock && second instanceof LeaseLock);
        assert.notDeepEqual(first.id, second.id);
        await second.updateData({ job: 7 });
        assert.equal(await sem.tryAcquire(), null);
        await rejectsWithCode(sem.acquire({ timeoutMs: 100 }), codes.LOCK_NOT_ACQUIRED);

        const holders = await clients().semaphore(name, { permits: 2 }).holders();
        const byId = (lock) => holders.find((holder) => `${name}#${holder.permit}` === lock.id);
        assert.equal(holders.length, 2);
        assert.deepEqual(byId(first), { permit: byId(first).permit, owner: "sem-owner", fencingToken: first.fencingToken, data: undefined });
        assert.deepEqual(byId(second), { permit: byId(second).permit, owner: "sem-owner", fencingToken: second.fencingToken, data: { job: 7 } });
        assert.deepEqual(holders.map((holder) => holder.permit).sort(), [0, 1]);

        await first.release();
        const third = await sem.tryAcquire();
        assert.equal(third.id, first.id);
        assert.equal(third.fencingToken, first.fencingToken + 1);
        await third.release();
        await second.release();
        assert.deepEqual(await sem.holders(), []);
      });

      test("a permit whose holder went away is taken after its lease", TEST, async () => {
        const name = uniqueName("gone");
        const gone = await clients({ leaseDurationMs: 500, heartbeatPeriodMs: 0 }).semaphore(name, { permits: 1 }).acquire();
        const sem = clients().semaphore(name, { permits: 1 });
        assert.equal(await sem.tryAcquire(), null);
        const permit = await sem.acquire({ timeoutMs: 60000 });
        assert.equal(permit.id, gone.id);
        assert.equal(permit.fencingToken, gone.fencingToken + 1);
        assert.equal(gone.status, "lost");
        await rejectsWithCode(gone.release(), codes.LOCK_LOST);
        await permit.release();
      });

      test("a waiting acquire can be aborted", TEST, async () => {
        const sem = clients().semaphore(uniqueName("abort-sem"), { permits: 1 });
        const held = await sem.acquire();
        const controller = new AbortController();
        const waiting = sem.acquire({ signal: controller.signal });
        await sleep(50);
        controller.abort(new Error("stop waiting"));
        await assert.rejects(waiting, { message: "stop waiting" });
        assert.equal((await sem.holders()).length, 1);
        await held.release();
      });

      test("another number of permits for the same name is refused", TEST, async () => {
        const name = uniqueName("permits");
        const permit = await clients().semaphore(name, { permits: 2 }).tryAcquire();
        const other = clients().semaphore(name, { permits: 3 });
        await assert.rejects(other.tryAcquire(), { code: codes.CONFIG, message: /permits is 3, but semaphore .* has 2 permits in the table: every client must pass the same number/ });
        await assert.rejects(other.acquire({ timeoutMs: 1000 }), { code: codes.CONFIG, message: /has 2 permits/ });
        await permit.release();
      });

      test("bad semaphore input is refused with ERR_DYNALEASE_CONFIG", TEST, async () => {
        const locks = clients();
        const refused = (fn, message) => assert.throws(fn, { code: codes.CONFIG, message });
        refused(() => locks.semaphore("s"), /semaphore: permits is required/);
        refused(() => locks.semaphore("s", {}), /semaphore: permits is required/);
        refused(() => locks.semaphore("s", { permits: 0 }), /permits must be 1 to 100, not 0/);
        refused(() => locks.semaphore("s", { permits: 101 }), /permits must be 1 to 100, not 101/);
        refused(() => locks.semaphore("s", { permits: 2.5 }), /permits must be a whole number from 1 to 100 \(got 2.5\)/);
        refused(() => locks.semaphore("s", { permits: -1 }), /permits must be a whole number from 1 to 100 \(got -1\)/);
        refused(() => locks.semaphore("s", { permits: NaN }), /permits must be a whole number/);
        refused(() => locks.semaphore("s", { permits: "3" }), /semaphore: permits must be a number \(got string\)/);
        refused(() => locks.semaphore("s", { permit: 3 }), /semaphore: unknown option "permit"/);
        refused(() => locks.semaphore(7, { permits: 3 }), /a semaphore's name must be a string/);
        refused(() => locks.semaphore("", { permits: 3 }), /empty/);
        refused(() => clients({ failClosed: true }).semaphore("s", { permits: 3 }), /semaphores need fail-open locks.*failClosed/);
        const sem = locks.semaphore(uniqueName("bad-sem"), { permits: 1 });
        await assert.rejects(sem.acquire({ timeout: 5 }), { code: codes.CONFIG, message: /acquire: unknown option "timeout"/ });
        await assert.rejects(sem.acquire({ timeoutMs: -1 }), { code: codes.CONFIG, message: /timeoutMs must be a finite number/ });
        await assert.rejects(sem.acquire({ signal: "abort" }), { code: codes.CONFIG, message: /signal must be an AbortSignal/ });
        assert.deepEqual(await sem.holders(), []);
      });
    });

    describe("lambdaLock", () => {
      const context = (remainingMs) => ({ getRemainingTimeInMillis: () => remainingMs });

      test("runs fn under the lock, resolves to its result and releases", TEST, async () => {
        const id = uniqueName("lambda");
        const locks = clients();
        let calls = 0;
        const result = await locks.lambdaLock(id, context(60000), async (lock) => {
          calls++;
          assert.equal(lock.status, "held");
          assert.equal(await clients().tryAcquire(id), null);
          return { token: lock.fencingToken };
        });
        assert.equal(calls, 1);
        const next = await locks.tryAcquire(id);
        assert.deepEqual(result, { token: next.fencingToken - 1 });
        await next.release();
        assert.equal(await locks.lambdaLock(id, context(60000), () => "sync fn"), "sync fn");
      });

      test("marginMs before the invocation ends, the lock is lost and released", TEST, async () => {
        const id = uniqueName("deadline");
        const kv = kvStore();
        const other = clients();
        let taken;
        // 6 s left, 1 s margin: the lock ends 5 s from now, long before its 30 s lease.
        const outcome = clients({ leaseDurationMs: 30000 }).lambdaLock(id, context(6000), async (lock) => {
          await kv.put("during", 1, { lock });
          const reason = await new Promise((resolve) => lock.signal.addEventListener("abort", () => resolve(lock.signal.reason)));
          assert.equal(reason.code, codes.LOCK_LOST);
          assert.equal(lock.status, "lost");
          await rejectsWithCode(kv.put("after", 1, { lock }), codes.LOCK_LOST);
          // Released in the background at the deadline: another client takes it without
          // waiting out the lease.
          taken = await waitFor("the lock to be free", () => other.tryAcquire(id));
          assert.equal(taken.fencingToken, lock.fencingToken + 1);
          return "overran";
        });
        await rejectsWithCode(outcome, codes.LOCK_LOST);
        assert.equal(await kv.get("after"), null);
        assert.equal(taken.status, "held", "lambdaLock's own release did not touch the next holder");
        await taken.release();
      });

      test("a busy lock rejects with ERR_DYNALEASE_LOCK_NOT_ACQUIRED and fn never runs", TEST, async () => {
        const id = uniqueName("busy");
        const held = await clients().acquire(id);
        const locks = clients();
        const fn = () => assert.fail("fn ran without the lock");
        await rejectsWithCode(locks.lambdaLock(id, context(60000), fn), codes.LOCK_NOT_ACQUIRED);
        await rejectsWithCode(locks.lambdaLock(id, context(60000), fn, { timeoutMs: 200 }), codes.LOCK_NOT_ACQUIRED);
        // Less time left than the margin: not even tried.
        await held.release();
        await assert.rejects(locks.lambdaLock(id, context(500), fn), { code: codes.LOCK_NOT_ACQUIRED, message: /margin/ });
        await assert.rejects(locks.lambdaLock(id, context(3000), fn, { marginMs: 5000 }), { code: codes.LOCK_NOT_ACQUIRED });
        // An invocation past its deadline reports a negative time left: none left, as in Python.
        await assert.rejects(locks.lambdaLock(id, context(-5), fn), { code: codes.LOCK_NOT_ACQUIRED, message: /margin/ });
        // A wait for a lock released meanwhile succeeds.
        const again = await clients().acquire(id);
        const running = locks.lambdaLock(id, context(60000), (lock) => lock.fencingToken, { timeoutMs: 60000 });
        await sleep(50);
        await again.release();
        assert.equal(await running, again.fencingToken + 1);
      });

      test("what fn throws is rethrown, after the release", TEST, async () => {
        const id = uniqueName("throws");
        const locks = clients();
        let held;
        await assert.rejects(locks.lambdaLock(id, context(60000), async (lock) => {
          held = lock;
          throw new Error("handler failed");
        }), { message: "handler failed" });
        assert.equal(held.status, "released");
        const next = await locks.tryAcquire(id);
        assert.ok(next);
        await next.release();
      });

      test("a lock fn detached is left held for whoever resumes it", TEST, async () => {
        const id = uniqueName("lambda-detach");
        const locks = clients();
        const handle = await locks.lambdaLock(id, context(60000), (lock) => lock.detach());
        assert.equal(await locks.tryAcquire(id), null);
        await (await locks.resume(handle)).release();
      });

      test("bad context, fn or options are refused with ERR_DYNALEASE_CONFIG", TEST, async () => {
        const locks = clients();
        const fn = () => assert.fail("fn ran");
        const refused = (promise, message) => assert.rejects(promise, { code: codes.CONFIG, message });
        await refused(locks.lambdaLock("job", null, fn), /lambdaLock: context must be the Lambda context/);
        await refused(locks.lambdaLock("job", {}, fn), /getRemainingTimeInMillis/);
        await refused(locks.lambdaLock("job", { getRemainingTimeInMillis: () => "30000" }, fn), /must return a number \(got string\)/);
        await refused(locks.lambdaLock("job", context(NaN), fn), /getRemainingTimeInMillis\(\) must be a finite number/);
        await refused(locks.lambdaLock("job", context(60000), "fn"), /lambdaLock: fn must be a function \(got string\)/);
        await refused(locks.lambdaLock("job", context(60000), fn, { margin: 5 }), /lambdaLock: unknown option "margin"/);
        await refused(locks.lambdaLock("job", context(60000), fn, { marginMs: -1 }), /marginMs must be a finite number of milliseconds >= 0/);
        await refused(locks.lambdaLock("job", context(60000), fn, { timeoutMs: "0" }), /lambdaLock: timeoutMs must be a number/);
        await refused(locks.lambdaLock("", context(60000), fn), /lock id is an empty string/);
        const free = await locks.tryAcquire("job");
        assert.ok(free, "nothing was taken");
        await free.release();
      });

      test("nothing keeps the process alive after fn settles, though the deadline is far", TEST, async () => {
        const options = { table, ...connection };
        const out = await runChild(
          `if (options.endpoint.startsWith("memory://")) await dynalease.createTable(options.table, { endpoint: options.endpoint });
           const locks = new dynalease.LockClient(options);
           // Ten minutes left: the lock's deadline (and its lease's heartbeats) are far away.
           const context = { getRemainingTimeInMillis: () => 600000 };
           console.log("result", await locks.lambdaLock(args.id, context, async (lock) => lock.fencingToken));
           await locks.lambdaLock(args.id, context, async () => { throw new Error("boom"); }).catch((error) => console.log("threw", error.message));`,
          { options, args: { id: uniqueName("child-lambda") } },
        );
        assert.match(out, /result \d+/);
        assert.match(out, /threw boom/);
      });
    });
  });
}
