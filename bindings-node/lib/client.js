"use strict";
// The Promise API: LockClient, Lock, KVStore and createTable over the native addon (the core's
// lock engine and KV store on the AWS SDK for Rust, or an in-process table for "memory://").
// Only conversions live here: options, values (codec.js), errors (errors.js), AbortSignals.

const native = require("../native.js");
const { fromDynamo, lockIdFromText, lockIdToText, toDynamo } = require("./codec.js");
const { callNative, codes, DynaleaseError } = require("./errors.js");

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

function describe(value) {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

/** `value` if it is of `type` (or absent: then null); a CONFIG error naming the option if not. */
function typed(what, name, value, type) {
  if (value === undefined || value === null) return null;
  if (typeof value !== type) throw new DynaleaseError(codes.CONFIG, `${what}: ${name} must be a ${type} (got ${describe(value)})`);
  return value;
}

// Unknown options are mistakes (a typo silently ignored would change lock behaviour), and so are
// options of the wrong type.
function checkOptions(what, options, allowed, required = []) {
  if (options === null || typeof options !== "object") {
    throw new DynaleaseError(codes.CONFIG, `${what} needs an options object`);
  }
  for (const [key, value] of Object.entries(options)) {
    if (!Object.hasOwn(allowed, key)) {
      throw new DynaleaseError(codes.CONFIG, `${what}: unknown option ${JSON.stringify(key)}; the options are ${Object.keys(allowed).join(", ")}`);
    }
    typed(what, key, value, allowed[key]);
  }
  for (const key of required) {
    if (typeof options[key] !== "string") throw new DynaleaseError(codes.CONFIG, `${what}: ${key} is required (a string)`);
  }
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined && v !== null));
}

function checkKey(what, key) {
  if (typeof key !== "string") throw new DynaleaseError(codes.CONFIG, `${what}: key must be a string (got ${describe(key)})`);
  return key;
}

function checkSignal(signal) {
  if (signal !== undefined && signal !== null && !(typeof signal.aborted === "boolean" && typeof signal.addEventListener === "function")) {
    throw new DynaleaseError(codes.CONFIG, "signal must be an AbortSignal");
  }
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
      if (reason !== null) {
        this.#lost.abort(new DynaleaseError(codes.LOCK_LOST, `lock ${JSON.stringify(this.id)} was lost: ${reason}`));
      }
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

  /** "held", "lost" or "released". */
  get status() {
    return this.#native.status;
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
   * Acquires the lock, waiting up to `timeoutMs` (default: as long as it takes). Rejects with
   * ERR_DYNALEASE_LOCK_NOT_ACQUIRED on timeout, or with the signal's reason when aborted.
   */
  async acquire(id, { timeoutMs, signal } = {}) {
    checkSignal(signal);
    if (signal && signal.aborted) throw signal.reason;
    const acquisition = callNative(() => this.#native.acquisition(lockIdToText(id), typed("acquire", "timeoutMs", timeoutMs, "number")));
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

  /** Takes the lock if it is free, with one request; null if it is held. */
  async tryAcquire(id) {
    const lock = await callNative(() => this.#native.tryAcquire(lockIdToText(id)));
    return lock ? new Lock(lock) : null;
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
