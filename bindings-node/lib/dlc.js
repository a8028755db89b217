"use strict";
// The drop-in classes of dynamodb-lock-client 0.7.3: FailOpen, FailClosed and Lock, with dlc's
// constructor, options, validation, callbacks, events, error codes and DynamoDB requests.
//
// The protocol is not here: it is the core's sans-IO machine (core/src/lock/dlc.rs), exposed as
// native.DlcLock. This file only runs it: each request goes through the caller's own `dynamodb`
// object (SDK v2 DocumentClient, SDK v3 DynamoDBDocument, DAX, mocks), each outcome is fed back,
// and errors reach the caller as the very objects the client gave.

const events = require("events");
const util = require("util");

const native = require("../native.js");
const { isBytes, itemToDynamo, toDynamo } = require("./codec.js");
const schemas = require("./schemas.js");

// Carries an acquisition's machine from acquireLock to its Lock, which goes on running it (with
// the first action of the held lock): the held lock is built from the acquire's own state
// (table, id, options, and its lease start, which tells a release that landed unseen from a
// takeover), not from the config again.
const HELD = Symbol("held");

// Once per process: os.userInfo() reads the passwd database on every call, which cost more
// than the rest of an acquire.
let defaultOwnerValue;
function defaultOwner() {
  if (defaultOwnerValue === undefined) {
    const os = require("os");
    const pkg = require("../../package.json");
    let user = "unknown";
    try {
      user = os.userInfo().username;
    } catch (_) {
      // No passwd entry (some containers): keep "unknown".
    }
    defaultOwnerValue = `${pkg.name}@${pkg.version}_${user}@${os.hostname()}`;
  }
  return defaultOwnerValue;
}

// SDK v2 errors carry `code`, SDK v3 errors `name`: recognise both (dlc missed v3 contention).
function isConditionFailed(error) {
  return !!error && (error.code === "ConditionalCheckFailedException" || error.name === "ConditionalCheckFailedException");
}

// Calls `dynamodb[op](params, callback)`, which every client shape supports: SDK v2 calls the
// callback, SDK v3's aggregated client too; a client that only returns a Promise is awaited.
// Whichever answers first wins. A throw from our own callback (the user's code) is not an
// error of the call and propagates.
function send(dynamodb, op, params, done) {
  let answered = false;
  const once = (error, data) => {
    if (answered) return;
    answered = true;
    done(error, data);
  };
  let returned;
  try {
    returned = dynamodb[op](params, once);
  } catch (error) {
    if (answered) throw error;
    return once(error);
  }
  if (returned && typeof returned.then === "function") {
    returned.then((data) => once(undefined, data), (error) => once(error || new Error(`${op} failed`)));
  }
}

// Runs a machine until it returns something other than send/undo/sleep; `finish(action,
// error, firstOtherError, firstWriteError)` gets that action, the error of the last request
// that was not an undo, the first error of the run that was not a condition failure, and the
// first such error of a write (not a read, not an undo).
function run(dynamodb, next, action, finish, onTimer) {
  let lastError, firstOtherError, firstWriteError;
  const step = (kind, item) => handle(next(kind, item === undefined ? null : item, Date.now(), performance.now()));
  const handle = (act) => {
    switch (act.type) {
      case "send":
      case "undo":
        return send(dynamodb, act.op, act.params, (error, data) => {
          if (error) {
            // An undo follows a write whose outcome is unknown; the error to report is the one
            // that made it unknown, not the undo's (whose condition fails when nothing landed).
            if (act.type === "send") lastError = error;
            const conditionFailed = isConditionFailed(error);
            if (!conditionFailed && firstOtherError === undefined) firstOtherError = error;
            if (!conditionFailed && act.type === "send" && act.op !== "get" && firstWriteError === undefined) firstWriteError = error;
            return step(conditionFailed ? "conditionFailed" : "otherError");
          }
          if (act.op === "get") {
            const item = data && data.Item ? JSON.stringify(itemToDynamo(data.Item)) : null;
            return step("item", item);
          }
          return step("written");
        });
      case "sleep": {
        const timer = setTimeout(() => step("timer"), act.ms);
        if (onTimer) onTimer(timer);
        return undefined;
      }
      default:
        return finish(act, lastError, firstOtherError, firstWriteError);
    }
  };
  return handle(action);
}

// Runs a take-back the machine handed over with its report (`takeBack`) in the background: a
// fail-closed item of ours may still be there after every send of a release (or of an
// acquire's undo) failed without a definite answer, and nothing else would ever free it. It
// deletes on our own guid through failures for up to a minute; the caller was told the error
// already and is not told how this ends.
function takeBack(dynamodb, machine) {
  const next = (kind, item, now, mono) => machine.next(kind, item, now, mono);
  run(dynamodb, next, machine.start(Date.now(), performance.now()), () => undefined);
}

// dlc's callback style, plus a Promise when the callback is omitted.
function withCallback(callback, start) {
  if (typeof callback === "function") {
    start(callback);
    return undefined;
  }
  return new Promise((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value))));
}

function codedError(message, code, originalError) {
  const err = new Error(message);
  err.code = code;
  err.originalError = originalError;
  return err;
}

function lockKey(partitionID, sortID) {
  return JSON.stringify({ partition: toDynamo(partitionID), sort: sortID === undefined ? null : toDynamo(sortID) });
}

function acquireLock(self, type, id, callback) {
  const config = self._config;
  let partitionID, sortID;
  // A Buffer is a lock id, not an object of key values (dlc mistook it for one).
  if (typeof id === "object" && id !== null && !isBytes(id)) {
    partitionID = id[config.partitionKey];
    sortID = id[config.sortKey];
  } else {
    partitionID = id;
  }
  if (config.sortKey && sortID === undefined) {
    return callback(new Error("Lock ID is missing required sortKey value"));
  }
  if (!config.sortKey) sortID = undefined;
  const failClosed = type === FailClosed;
  const owner = config.owner || defaultOwner();
  let machine;
  try {
    machine = new native.DlcLock(
      {
        failClosed,
        lockTable: config.lockTable,
        partitionKey: config.partitionKey,
        sortKey: config.sortKey,
        owner,
        leaseDurationMs: config.leaseDurationMs,
        heartbeatPeriodMs: config.heartbeatPeriodMs,
        trustLocalTime: config.trustLocalTime,
        retryCount: self._retryCount,
        acquirePeriodMs: config.acquirePeriodMs,
        undoDelayMs: self._undoDelayMs,
      },
      lockKey(partitionID, sortID),
    );
  } catch (error) {
    return callback(error);
  }
  const next = (kind, item, now, mono) => machine.next(kind, item, now, mono);
  const start = next("start", null, Date.now(), performance.now());
  return run(config.dynamodb, next, start, (action, error, firstOtherError) => {
    switch (action.type) {
      case "acquired": {
        const guid = action.guid;
        const lockConfig = failClosed
          ? { dynamodb: config.dynamodb, guid, lockTable: config.lockTable, partitionID, partitionKey: config.partitionKey, sortID, sortKey: config.sortKey, type: FailClosed }
          : {
              dynamodb: config.dynamodb,
              fencingToken: action.fencingToken,
              guid,
              heartbeatPeriodMs: config.heartbeatPeriodMs,
              leaseDurationMs: config.leaseDurationMs,
              lockTable: config.lockTable,
              owner,
              partitionID,
              partitionKey: config.partitionKey,
              sortID,
              sortKey: config.sortKey,
              trustLocalTime: config.trustLocalTime,
              type: FailOpen,
            };
        // Not a dlc config field: kept out of sight, as the config is the caller's to see.
        Object.defineProperty(lockConfig, HELD, { value: { machine, start: action.start } });
        return callback(undefined, new Lock(lockConfig));
      }
      case "failedToAcquire":
        return callback(codedError("Failed to acquire lock.", "FailedToAcquireLock", error));
      default:
        if (action.takeBack) takeBack(config.dynamodb, action.takeBack);
        // An acquire stops at its first error that is not a condition failure (after a read
        // back and an undo, when its put may have landed): that error is the one to report,
        // as dlc reports it, not the read back's.
        return callback(firstOtherError || error);
    }
  });
}

function FailClosed(config) {
  if (!(this instanceof FailClosed)) return new FailClosed(config);
  this._config = config;
  schemas.validate("failClosed", config);
  this._retryCount = config.retryCount === undefined ? 1 : config.retryCount;
  // After a put that failed with an error other than a condition failure (a timeout, a network
  // error) and that a read could not show ours, the lock may still be taken by that put
  // landing late, and a fail-closed lock never frees itself: the acquire deletes it on our
  // guid at once and again this long after, then reports the error. Not a dlc option (dlc's
  // schema refuses unknown ones), so it is set on the instance (non-enumerable, so the
  // instance looks like dlc's); undefined means 5 s.
  Object.defineProperty(this, "_undoDelayMs", { value: undefined, writable: true });
}
FailClosed.schema = schemas.exposed("failClosed");
FailClosed.prototype.acquireLock = function (id, callback) {
  return withCallback(callback, (cb) => acquireLock(this, FailClosed, id, cb));
};

function FailOpen(config) {
  if (!(this instanceof FailOpen)) return new FailOpen(config);
  this._config = config;
  schemas.validate("failOpen", config);
  this._retryCount = config.retryCount === undefined ? 1 : config.retryCount;
}
FailOpen.schema = schemas.exposed("failOpen");
FailOpen.prototype.acquireLock = function (id, callback) {
  return withCallback(callback, (cb) => acquireLock(this, FailOpen, id, cb));
};

// A held lock. Its fields are dlc's (`_config`, `_guid`, `_released`, `fencingToken`,
// `heartbeatTimeout`); the machine is kept non-enumerable so the object looks like dlc's.
function Lock(config) {
  if (!(this instanceof Lock)) return new Lock(config);
  events.EventEmitter.call(this);
  this._config = config;
  this._guid = config.guid;
  this._released = false;
  this.fencingToken = config.fencingToken;
  const held = config[HELD] || handBuilt(config);
  Object.defineProperty(this, "_machine", { value: held.machine });
  Object.defineProperty(this, "_releaseCallbacks", { value: [], writable: true });
  this._drive(held.start);
}
util.inherits(Lock, events.EventEmitter);

// dlc's Lock is public, so a program may build one from a config of its own: the machine then
// starts from that config, read as leniently as dlc reads it.
function handBuilt(config) {
  const number = (value) => (typeof value === "number" ? value : undefined);
  const machine = native.DlcLock.heldByHand(
    {
      failClosed: config.type !== FailOpen,
      lockTable: config.lockTable,
      partitionKey: config.partitionKey,
      sortKey: config.sortKey,
      fencingToken: number(config.fencingToken),
      leaseDurationMs: number(config.leaseDurationMs),
      owner: typeof config.owner === "string" ? config.owner : undefined,
      heartbeatPeriodMs: number(config.heartbeatPeriodMs),
      trustLocalTime: config.trustLocalTime === true,
    },
    lockKey(config.partitionID, config.sortKey ? config.sortID : undefined),
    Buffer.from(config.guid),
  );
  return { machine, start: machine.start() };
}

// Runs the lock's machine from `action`: heartbeats and the release queued behind one.
Lock.prototype._drive = function (action) {
  const machine = this._machine;
  // An action carries `guid` when the item now carries a new one (a heartbeat landed): mirror
  // it, as dlc does.
  const mirror = (act) => {
    if (act.guid !== undefined) this._guid = act.guid;
    return act;
  };
  run(
    this._config.dynamodb,
    (kind, item, now, mono) => mirror(machine.next(kind, item, now, mono)),
    mirror(action),
    (act, error, firstOtherError, firstWriteError) => {
      switch (act.type) {
        case "heartbeatFailed":
          // dlc's behaviour: an 'error' event (which crashes the process without a listener).
          return this.emit("error", error);
        case "released":
          return this._settleRelease(undefined);
        case "failedToRelease":
          return this._settleRelease(codedError("Failed to release lock.", "FailedToReleaseLock", error));
        case "passError":
          if (act.takeBack) {
            // A fail-closed release that stayed unknown through its resends (and the reads
            // between them): report the error of its first send, the one dlc would report,
            // and take the lock back in the background.
            takeBack(this._config.dynamodb, act.takeBack);
            return this._settleRelease(firstWriteError || error);
          }
          return this._settleRelease(error);
        default:
          return undefined; // idle
      }
    },
    (timer) => {
      // A heartbeat timer, unless released meanwhile.
      if (this._released) clearTimeout(timer);
      else this.heartbeatTimeout = timer;
    },
  );
};

Lock.prototype._settleRelease = function (error) {
  const callbacks = this._releaseCallbacks;
  this._releaseCallbacks = [];
  for (const callback of callbacks) callback(error);
};

Lock.prototype.release = function (callback) {
  return withCallback(callback, (cb) => {
    this._released = true;
    if (this.heartbeatTimeout) {
      clearTimeout(this.heartbeatTimeout);
      this.heartbeatTimeout = undefined;
    }
    this._releaseCallbacks.push(cb);
    // One release on the wire at a time; later callers share its outcome.
    if (this._releaseCallbacks.length > 1) return;
    this._drive(this._machine.release(Date.now(), performance.now()));
  });
};

module.exports = { FailClosed, FailOpen, Lock };
