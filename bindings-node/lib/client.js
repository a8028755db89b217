"use strict";
// The Promise API: LockClient, Lock, KVStore and createTable over the native addon (the core's
// lock engine and KV store on the AWS SDK for Rust, or an in-process table for "memory://"),
// with what a LockClient hands out beyond one lock: hand-off (detach / resume), elections,
// semaphores and Lambda-bounded locks. Only conversions live here: options, values (codec.js),
// errors (errors.js), AbortSignals, and the async iterator of an election's watch.

const native = require("../native.js");
const { fromDynamo, lockIdFromText, lockIdToText, toDynamo } = require("./codec.js");
const { callNative, codes, DynaleaseError } = require("./errors.js");
const { checkOptions, checkSignal, describe, typed } = require("./options.js");
const { statsFrom } = require("./stats.js");

// The options each constructor takes, with the type each must have.
// Where requests go and how each DynamoDB call is bounded: every constructor takes these.
const CONNECTION_OPTIONS = { endpoint: "string", region: "string", callTimeoutMs: "number", maxRetries: "number" };
const LOCK_CLIENT_OPTIONS = {
  table: "string", partitionKey: "string", sortKey: "string", leaseDurationMs: "number", heartbeatPeriodMs: "number",
  failClosed: "boolean", owner: "string", trustLocalTime: "boolean", pollIntervalMs: "number", maxPollIntervalMs: "number", ...CONNECTION_OPTIONS,
};
const KV_OPTIONS = { table: "string", partition: "string", partitionKey: "string", sortKey: "string", ...CONNECTION_OPTIONS };
const CREATE_TABLE_OPTIONS = {
  partitionKey: "string", partitionKeyType: "string", sortKey: "string", sortKeyType: "string", ...CONNECTION_OPTIONS,
};
// The options of the calls that hand out more than one lock ("any": a storable value; "signal":
// an AbortSignal).
const CAMPAIGN_OPTIONS = { data: "any", timeoutMs: "number", signal: "signal" };
const WATCH_OPTIONS = { intervalMs: "number", signal: "signal" };
const SEMAPHORE_OPTIONS = { permits: "number" };
const PERMIT_OPTIONS = { timeoutMs: "number", signal: "signal" };
const LAMBDA_LOCK_OPTIONS = { timeoutMs: "number", marginMs: "number" };

function checkKey(what, key) {
  if (typeof key !== "string") throw new DynaleaseError(codes.CONFIG, `${what}: key must be a string (got ${describe(key)})`);
  return key;
}

/** The ERR_DYNALEASE_LOCK_LOST error of lock `id` (ids may hold bigints, which JSON lacks). */
function lostError(id, reason) {
  const shown = JSON.stringify(id, (_, value) => (typeof value === "bigint" ? value.toString() : value));
  return new DynaleaseError(codes.LOCK_LOST, `lock ${shown} was lost: ${reason}`);
}

class Lock {
  #native;
  #lost = new AbortController();

  /** @internal Locks come from LockClient.acquire / tryAcquire. */
  constructor(nativeLock) {
    this.#native = nativeLock;
    // Resolves with a reason when the lease is lost, with null once released. While it is
    // pending it keeps the process alive: a held lock does, a released one does not.
    nativeLock.waitLost().then((reason) => {
      if (reason !== null) this.#lost.abort(lostError(this.id, reason));
    }, () => {});
  }

  /** The lock id: a key value, or [partition, sort]. */
  get id() {
    return lockIdFromText(this.#native.id);
  }

  /** Strictly increasing per lock id across every client of the table; null for fail-closed locks. */
  get fencingToken() {
    return this.#native.fencingToken;
  }

  /** Aborted (with an ERR_DYNALEASE_LOCK_LOST error as reason) when the lease is lost. */
  get signal() {
    return this.#lost.signal;
  }

  /** "held", "lost", "released" or "detached" (handed to another process with detach()). */
  get status() {
    return this.#native.status;
  }

  /**
   * The text another process passes to `LockClient.resume` to take this lock up. It changes
   * with every heartbeat (each writes a new guid); `detach()` fixes it. As secret as the lock:
   * whoever has it can release the lock.
   */
  get handle() {
    return this.#native.handle;
  }

  get lostReason() {
    return this.#native.lostReason;
  }

  /** The data stored with the lock (undefined when there is none). */
  get data() {
    const text = this.#native.data;
    return text === null ? undefined : fromDynamo(JSON.parse(text));
  }

  async updateData(data) {
    const text = JSON.stringify(toDynamo(data));
    return callNative(() => this.#native.updateData(text));
  }

  /** Releases the lock; `data` is left in the item for the next holder. */
  async release({ data } = {}) {
    const text = data === undefined ? null : JSON.stringify(toDynamo(data));
    return callNative(() => this.#native.release(text));
  }

  /**
   * Hands the lock to another process: stops this process's heartbeats and resolves to the
   * handle, while the lock stays held. From then on this object no longer acts for the lock
   * (status "detached"; release, updateData, renew and fenced writes reject with
   * ERR_DYNALEASE_LOCK_LOST). The process that takes it up with `LockClient.resume(handle)`
   * must do so (or renew) before the lease runs out.
   */
  async detach() {
    return callNative(() => this.#native.detach());
  }

  /**
   * One heartbeat now: a fresh lease and a new guid, so `handle` changes. Rejects with
   * ERR_DYNALEASE_LOCK_LOST if the lock is no longer held, and with ERR_DYNALEASE_CONFIG for a
   * fail-closed lock, which has no lease.
   */
  async renew() {
    return callNative(() => this.#native.renew());
  }

  /** @internal The native lock, for fenced KV writes. */
  static native(lock) {
    if (!(lock instanceof Lock)) throw new DynaleaseError(codes.CONFIG, "lock must be a Lock from LockClient.acquire");
    return lock.#native;
  }
}

class LockClient {
  #native;

  constructor(options) {
    const opts = checkOptions("LockClient", options, LOCK_CLIENT_OPTIONS, ["table"]);
    this.#native = callNative(() => new native.LockClient(opts));
  }

  get table() { return this.#native.table; }
  get partitionKey() { return this.#native.partitionKey; }
  get sortKey() { return this.#native.sortKey; }
  get leaseDurationMs() { return this.#native.leaseDurationMs; }
  get heartbeatPeriodMs() { return this.#native.heartbeatPeriodMs; }
  get failClosed() { return this.#native.failClosed; }
  get owner() { return this.#native.owner; }
  get callTimeoutMs() { return this.#native.callTimeoutMs; }
  get pollIntervalMs() { return this.#native.pollIntervalMs; }
  get maxPollIntervalMs() { return this.#native.maxPollIntervalMs; }
  get maxRetries() { return this.#native.maxRetries; }

  /**
   * What this client, and every lock, election and semaphore it handed out, did so far: a
   * frozen plain object of counts (camelCase names of the core's counters), `readUnits`,
   * `writeUnits` and `acquireWait`. Each call is a new snapshot; counts only grow.
   */
  stats() {
    return statsFrom(this.#native.stats(), this);
  }

  /**
   * Acquires the lock, waiting up to `timeoutMs` (default: as long as it takes). Rejects with
   * ERR_DYNALEASE_LOCK_NOT_ACQUIRED on timeout, or with the signal's reason when aborted.
   */
  async acquire(id, { timeoutMs, signal } = {}) {
    checkSignal(signal);
    return acquireWith(signal, () => this.#native.acquisition(lockIdToText(id), typed("acquire", "timeoutMs", timeoutMs, "number")));
  }

  /** Takes the lock if it is free, with one request; null if it is held. */
  async tryAcquire(id) {
    const lock = await callNative(() => this.#native.tryAcquire(lockIdToText(id)));
    return lock ? new Lock(lock) : null;
  }

  /**
   * Takes up a lock that `lock.detach()` handed off (here or in another process), with one
   * read. Rejects with ERR_DYNALEASE_LOCK_LOST if the lock is no longer held under that handle
   * (released, taken over, renewed under a newer handle), and with ERR_DYNALEASE_CONFIG for
   * text that is no handle or a handle of another table or lock mode. The lock heartbeats
   * from here if this client has a heartbeat period.
   */
  async resume(handle) {
    if (typeof handle !== "string") throw new DynaleaseError(codes.CONFIG, `resume: handle must be a string from lock.detach() (got ${describe(handle)})`);
    return new Lock(await callNative(() => this.#native.resume(handle)));
  }

  /**
   * The election `name` (a lock id of this table): `campaign()` to lead, `leader()` to read
   * who does, `watch()` to follow. Fail-open clients only (a dead leader's term must end with
   * its lease).
   */
  election(name) {
    return new Election(callNative(() => this.#native.election(lockIdToText(name))));
  }

  /**
   * The counting semaphore `name` (a lock id whose last part is a string) with `permits`
   * permits (1 to 100), each an ordinary lease lock. Every client of one semaphore must pass the
   * same number: the first acquire rejects with ERR_DYNALEASE_CONFIG when the table records
   * another.
   */
  semaphore(name, options = {}) {
    const { permits } = checkOptions("semaphore", options, SEMAPHORE_OPTIONS);
    if (permits === undefined) throw new DynaleaseError(codes.CONFIG, `semaphore: permits is required ({ permits: 1 to ${native.MAX_PERMITS} })`);
    return new Semaphore(callNative(() => this.#native.semaphore(lockIdToText(name), permits)));
  }

  /**
   * Runs `fn(lock)` under a lock that ends `marginMs` (default 1000) before the Lambda
   * invocation does, and resolves to what `fn` returns.
   *
   * `context.getRemainingTimeInMillis()` is read once. The lock is taken with up to `timeoutMs`
   * of waiting (default 0: one attempt; ERR_DYNALEASE_LOCK_NOT_ACQUIRED when it is held) and
   * released when `fn` settles. If `fn` is still running at the deadline, the lock is lost
   * there (`lock.signal` aborts, fenced writes are refused) and released, so an invocation that
   * times out never leaves a held lock; `lambdaLock` then rejects with ERR_DYNALEASE_LOCK_LOST
   * once `fn` settles (an error `fn` throws takes precedence). Nothing of it keeps the process
   * alive after `fn` settles.
   */
  async lambdaLock(id, context, fn, options = {}) {
    const { timeoutMs, marginMs } = checkOptions("lambdaLock", options, LAMBDA_LOCK_OPTIONS);
    if (typeof fn !== "function") throw new DynaleaseError(codes.CONFIG, `lambdaLock: fn must be a function (got ${describe(fn)}); it runs while the lock is held`);
    const remainingMs = remainingTime(context);
    const lock = new Lock(await callNative(() => this.#native.acquireWithin(lockIdToText(id), timeoutMs ?? 0, remainingMs, marginMs ?? 1000)));
    return holding(lock, fn);
  }
}

/** What a Lambda context says is left of the invocation, in milliseconds. */
function remainingTime(context) {
  if (context === null || typeof context !== "object" || typeof context.getRemainingTimeInMillis !== "function") {
    throw new DynaleaseError(codes.CONFIG, `lambdaLock: context must be the Lambda context (an object with getRemainingTimeInMillis()), got ${describe(context)}`);
  }
  const remaining = context.getRemainingTimeInMillis();
  if (typeof remaining !== "number") {
    throw new DynaleaseError(codes.CONFIG, `lambdaLock: context.getRemainingTimeInMillis() must return a number (got ${describe(remaining)})`);
  }
  // Past its deadline an invocation reports less than nothing: no time left (Python does the
  // same), which the core refuses as LOCK_NOT_ACQUIRED, within the margin.
  return remaining < 0 ? 0 : remaining;
}

/**
 * Runs `fn(lock)` and releases the lock when it settles: what `fn` throws is rethrown (a failed
 * release after it is not reported over it); a lock lost while `fn` ran is reported as
 * ERR_DYNALEASE_LOCK_LOST, since `fn`'s work may then have run unprotected; otherwise a failed
 * release is. A lock `fn` detached is left to the process that takes it up.
 */
async function holding(lock, fn) {
  let result;
  try {
    result = await fn(lock);
  } catch (error) {
    if (lock.status !== "detached") await lock.release().catch(() => {});
    throw error;
  }
  if (lock.status === "detached") return result;
  // Read before the release, which may succeed on a lock nobody took over after it was lost.
  const lost = lock.status === "lost" ? lostError(lock.id, lock.lostReason) : null;
  try {
    await lock.release();
  } catch (error) {
    if (!lost) throw error;
  }
  if (lost) throw lost;
  return result;
}

/**
 * Runs a native wait (`prepare()` returns its Acquisition) that the caller's signal cancels:
 * resolves to a Lock, or rejects with the signal's reason when aborted.
 */
async function acquireWith(signal, prepare) {
  if (signal && signal.aborted) throw signal.reason;
  const acquisition = callNative(prepare);
  // Cancelling drops the native wait (the Rust future), so no request follows.
  const onAbort = () => acquisition.cancel();
  if (signal) signal.addEventListener("abort", onAbort, { once: true });
  try {
    return new Lock(await callNative(() => acquisition.run()));
  } catch (error) {
    if (signal && signal.aborted) throw signal.reason;
    throw error;
  } finally {
    if (signal) signal.removeEventListener("abort", onAbort);
  }
}

/** A leader as the native addon gives it: `{ owner, term, data }` with data decoded (undefined: none). */
function leaderFrom(leader) {
  if (leader === null) return null;
  return Object.freeze({ owner: leader.owner, term: leader.term, data: leader.data === null || leader.data === undefined ? undefined : fromDynamo(JSON.parse(leader.data)) });
}

class Election {
  #native;

  /** @internal Elections come from LockClient.election. */
  constructor(nativeElection) {
    this.#native = nativeElection;
  }

  /** The election's lock id. */
  get name() {
    return lockIdFromText(this.#native.name);
  }

  /**
   * Waits up to `timeoutMs` (default: as long as it takes) until this process leads, and
   * resolves to the term's lock: its `fencingToken` is the term, `release()` resigns, and its
   * `signal` aborts if the term is lost. `data` (any storable value) is what `leader()` shows
   * for the term. Rejects with ERR_DYNALEASE_LOCK_NOT_ACQUIRED on timeout, or with the
   * signal's reason when aborted.
   */
  async campaign(options = {}) {
    const { timeoutMs, signal } = checkOptions("campaign", options, CAMPAIGN_OPTIONS);
    // Read from the options themselves: null is data too (checkOptions drops null options).
    const text = options.data === undefined ? null : JSON.stringify(toDynamo(options.data));
    return acquireWith(signal, () => this.#native.campaign(text, timeoutMs));
  }

  /** Who leads (one read): null, or `{ owner, term, data }`. */
  async leader() {
    return leaderFrom(await callNative(() => this.#native.leader()));
  }

  /**
   * An async iterator of the leader: the current one first, then each change (a new term, or
   * new data), null whenever nobody leads. Reads at most once per `intervalMs` (default: the
   * client's maxPollIntervalMs), shared by every watcher of this election in the process; a
   * term that starts and ends between two reads may be missed, and none is reported out of
   * order. Aborting `signal`, or leaving the loop (`break`, `return`), ends it and stops its
   * reads; an error of a read ends it by rejecting.
   *
   *     for await (const leader of election.watch({ signal })) console.log(leader?.term);
   */
  watch(options = {}) {
    const { intervalMs, signal } = checkOptions("watch", options, WATCH_OPTIONS);
    return new LeaderWatch(callNative(() => this.#native.watch(intervalMs)), signal);
  }
}

/** `election.watch()`: an async iterator (and iterable) over the native watch. */
class LeaderWatch {
  #native;
  #signal;
  #done = false;
  #onAbort = () => this.#finish();

  constructor(nativeWatch, signal) {
    this.#native = nativeWatch;
    this.#signal = signal;
    if (signal && signal.aborted) this.#finish();
    else if (signal) signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  async next() {
    if (this.#done) return { done: true, value: undefined };
    try {
      return { done: false, value: leaderFrom(await callNative(() => this.#native.next())) };
    } catch (error) {
      // Ended (aborted, or returned) while the read was pending: the loop just ends.
      if (this.#done) return { done: true, value: undefined };
      this.#finish();
      throw error;
    }
  }

  /** Ends the watch: `break` in a for-await loop calls it; a pending next() resolves as done. */
  async return(value) {
    this.#finish();
    return { done: true, value };
  }

  #finish() {
    if (this.#done) return;
    this.#done = true;
    this.#native.cancel();
    if (this.#signal) this.#signal.removeEventListener("abort", this.#onAbort);
  }
}

class Semaphore {
  #native;

  /** @internal Semaphores come from LockClient.semaphore. */
  constructor(nativeSemaphore) {
    this.#native = nativeSemaphore;
  }

  /** The semaphore's lock id (permit k is the lock `${name}#${k}`). */
  get name() {
    return lockIdFromText(this.#native.name);
  }

  get permits() {
    return this.#native.permits;
  }

  /**
   * Takes a permit, waiting up to `timeoutMs` (default: as long as it takes): a lease lock to
   * release when done. A holder that went away frees its permit after its lease. Rejects with
   * ERR_DYNALEASE_LOCK_NOT_ACQUIRED on timeout, or with the signal's reason when aborted.
   */
  async acquire(options = {}) {
    const { timeoutMs, signal } = checkOptions("acquire", options, PERMIT_OPTIONS);
    return acquireWith(signal, () => this.#native.acquisition(timeoutMs));
  }

  /** Takes a free permit with one read and one write; null when all are held. */
  async tryAcquire() {
    const permit = await callNative(() => this.#native.tryAcquire());
    return permit ? new Lock(permit) : null;
  }

  /** Who holds permits now (one read): `[{ permit, owner, fencingToken, data }]`, by permit. */
  async holders() {
    const holders = await callNative(() => this.#native.holders());
    return holders.map(({ permit, owner, fencingToken, data }) =>
      Object.freeze({ permit, owner, fencingToken: fencingToken ?? null, data: data === null || data === undefined ? undefined : fromDynamo(JSON.parse(data)) }));
  }
}

function pairFromText(text) {
  const { key, value, version, expires } = JSON.parse(text);
  return Object.freeze({ key, value: fromDynamo(value), version, expires: expires ?? null });
}

function previousText(previous) {
  if (previous === undefined || previous === null) return null;
  if (typeof previous !== "object" || typeof previous.key !== "string" || !Number.isInteger(previous.version)) {
    throw new DynaleaseError(codes.CONFIG, "previous must be a pair returned by get, put or atomicPut");
  }
  return JSON.stringify({ key: previous.key, version: previous.version, expires: previous.expires ?? null });
}

function fence(lock) {
  return lock === undefined || lock === null ? null : Lock.native(lock);
}

class KVStore {
  #native;

  constructor(options) {
    const opts = checkOptions("KVStore", options, KV_OPTIONS, ["table", "partition"]);
    this.#native = callNative(() => new native.KVStore(opts));
  }

  get table() { return this.#native.table; }
  get partition() { return this.#native.partition; }
  get callTimeoutMs() { return this.#native.callTimeoutMs; }
  get maxRetries() { return this.#native.maxRetries; }

  /**
   * What this store did so far: reads, writes, deletes, lists, compare-and-swap conflicts, the
   * requests they took and the capacity consumed (the same shape as `LockClient.stats()`).
   */
  stats() {
    return statsFrom(this.#native.stats(), this);
  }

  /** Writes unconditionally. Options: ttlMs (expire after), lock (only while it is held). */
  async put(key, value, { ttlMs, lock } = {}) {
    checkKey("put", key);
    const text = JSON.stringify(toDynamo(value));
    return pairFromText(await callNative(() => this.#native.put(key, text, typed("put", "ttlMs", ttlMs, "number"), fence(lock))));
  }

  /** The pair at `key`, or null. */
  async get(key) {
    const text = await callNative(() => this.#native.get(checkKey("get", key)));
    return text === null ? null : pairFromText(text);
  }

  async exists(key) {
    return callNative(() => this.#native.exists(checkKey("exists", key)));
  }

  /** Every pair whose key starts with `prefix`, by key. */
  async list(prefix = "") {
    if (typeof prefix !== "string") throw new DynaleaseError(codes.CONFIG, `list: prefix must be a string (got ${describe(prefix)})`);
    return JSON.parse(await callNative(() => this.#native.list(prefix))).map((pair) => pairFromText(JSON.stringify(pair)));
  }

  /** Deletes `key`; true if it existed. */
  async delete(key, { lock } = {}) {
    return callNative(() => this.#native.delete(checkKey("delete", key), fence(lock)));
  }

  /**
   * Creates `key` (no `previous`: ERR_DYNALEASE_KEY_EXISTS if present) or replaces it if it is
   * still at `previous`'s version (ERR_DYNALEASE_KEY_MODIFIED / ERR_DYNALEASE_KEY_NOT_FOUND).
   */
  async atomicPut(key, value, { previous, ttlMs, lock } = {}) {
    checkKey("atomicPut", key);
    const text = JSON.stringify(toDynamo(value));
    const ttl = typed("atomicPut", "ttlMs", ttlMs, "number");
    return pairFromText(await callNative(() => this.#native.atomicPut(key, text, previousText(previous), ttl, fence(lock))));
  }

  /** Deletes `key` if it is still at `previous`'s version. */
  async atomicDelete(key, previous, { lock } = {}) {
    checkKey("atomicDelete", key);
    const text = previousText(previous);
    if (text === null) throw new DynaleaseError(codes.CONFIG, "atomicDelete needs the pair it expects (previous)");
    return callNative(() => this.#native.atomicDelete(key, text, fence(lock)));
  }
}

/** Creates a lock or KV table if it is missing and waits until it is ACTIVE. */
async function createTable(table, options = {}) {
  if (typeof table !== "string") throw new DynaleaseError(codes.CONFIG, `createTable: table must be a string (got ${describe(table)})`);
  const opts = checkOptions("createTable", options, CREATE_TABLE_OPTIONS);
  return callNative(() => native.createTable(table, opts));
}

module.exports = { LockClient, Lock, KVStore, createTable };
