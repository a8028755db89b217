"use strict";
// A fleet worker in Node: competes for lease locks and increments a counter under each.
//
// It speaks the worker protocol of docs/fleet.md (the same flags and log lines as the Python
// workers, tests/fleet/worker.py, and the Rust worker, core/examples/fleet_worker.rs), with three
// client kinds:
//
//   node-new     dynalease's Promise API: LockClient + KVStore, increment fenced with { lock }
//   node-dropin  require("dynalease").FailOpen over an SDK v3 DynamoDBDocument, heartbeats on
//   node-dlc     the original dynamodb-lock-client FailOpen over an SDK v2 DocumentClient
//
// The two dlc-style kinds increment with KVStore.atomicPut(key, value, { previous }): a
// compare-and-swap, but not fenced (a dlc Lock has no handle our KV API can check), so their
// hold lines carry "fenced": false.
//
//   node tests/fleet/worker.js --client node-new --endpoint http://127.0.0.1:PORT \
//       --lock-table T --kv-table K --kv-partition P --locks a,b,c,d --duration 10 --log w1.jsonl
//
// Times are CLOCK_MONOTONIC nanoseconds (process.hrtime.bigint() on Linux), written as JSON
// integers, so the checker compares them with the other languages' holds.
//
// node-new also takes --semaphore NAME:N, --election NAME and --handoff-share F: permits of a
// shared semaphore, a candidate and an observer of a shared election, and hand-offs through a KV
// mailbox to and from the other processes (docs/fleet.md, "Semaphore, election, hand-offs").

const fs = require("fs");
const path = require("path");
const util = require("util");

const { SHARED_OPTIONS, sharedArgs, text } = require("./flags.js");

process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = "1"; // aws-sdk v2's notice

const dynalease = require(path.join(__dirname, "..", ".."));

const CLIENT_KINDS = ["node-new", "node-dropin", "node-dlc"];
const USAGE =
  "usage: worker.js --client node-new|node-dropin|node-dlc --endpoint URL --lock-table T --kv-table K " +
  "--kv-partition P --locks a,b --log PATH [--duration S | --deadline-ns NS] [--lease S] [--heartbeat S] " +
  "[--hold-ms MS] [--tasks N] [--announce] [--seed N] [--semaphore NAME:N] [--semaphore-share F] [--election NAME] " +
  "[--term-ms MIN:MAX] [--observe-ms MS] [--observe-tail-ms MS] [--handoff-share F] (the last seven: node-new only)";

const now = () => process.hrtime.bigint();

function usage(message) {
  process.stderr.write(`worker.js: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const seconds = (value, name) => {
    const s = Number(value);
    if (!Number.isFinite(s) || s <= 0) usage(`${name}: not a positive number of seconds: ${value}`);
    return s;
  };
  let values;
  try {
    ({ values } = util.parseArgs({
      args: argv,
      options: {
        ...SHARED_OPTIONS, locks: text, log: text, duration: text, "deadline-ns": text, lease: text, heartbeat: text, "hold-ms": text, tasks: text, seed: text,
        announce: { type: "boolean", default: false },
        semaphore: text, "semaphore-share": text, election: text, "term-ms": text, "observe-ms": text, "observe-tail-ms": text, "handoff-share": text,
      },
    }));
  } catch (error) {
    usage(error.message);
  }
  const args = {
    ...sharedArgs(values),
    lockIds: values.locks === undefined ? undefined : values.locks.split(",").filter((id) => id),
    log: values.log,
    duration: values.duration === undefined ? 10 : seconds(values.duration, "--duration"),
    lease: values.lease === undefined ? 3 : seconds(values.lease, "--lease"),
    heartbeat: values.heartbeat === undefined ? null : seconds(values.heartbeat, "--heartbeat"),
    holdMs: values["hold-ms"] === undefined ? 20 : Number(values["hold-ms"]),
    tasks: values.tasks === undefined ? 1 : Number(values.tasks),
    announce: values.announce,
    seed: null,
    deadlineNs: null,
  };
  if (!Number.isFinite(args.holdMs) || args.holdMs < 0) usage("--hold-ms: not a number >= 0");
  if (!Number.isInteger(args.tasks) || args.tasks < 1) usage("--tasks: not a number >= 1");
  if (values.seed !== undefined) {
    if (!/^\d+$/.test(values.seed)) usage(`--seed: not an integer: ${values.seed}`);
    args.seed = Number(values.seed);
  }
  if (values["deadline-ns"] !== undefined) {
    if (!/^-?\d+$/.test(values["deadline-ns"])) usage(`--deadline-ns: not an integer: ${values["deadline-ns"]}`);
    args.deadlineNs = BigInt(values["deadline-ns"]);
  }
  const share = (value, flag, otherwise) => {
    if (value === undefined) return otherwise;
    const f = Number(value);
    if (!Number.isFinite(f) || f < 0 || f > 1) usage(`${flag}: not a share in [0, 1]: ${value}`);
    return f;
  };
  args.semaphore = null;
  if (values.semaphore !== undefined) {
    const match = /^(.+):(\d+)$/.exec(values.semaphore);
    if (!match || Number(match[2]) < 1) usage(`--semaphore: NAME:N with N >= 1, not ${values.semaphore}`);
    args.semaphore = { name: match[1], permits: Number(match[2]) };
  }
  args.semaphoreShare = share(values["semaphore-share"], "--semaphore-share", 0.25);
  args.election = values.election === undefined || values.election === "" ? null : values.election;
  const termMs = (values["term-ms"] === undefined ? "300:2000" : values["term-ms"]).split(":").map(Number);
  if (termMs.length === 1) termMs.push(termMs[0]);
  if (termMs.length !== 2 || !termMs.every((ms) => Number.isFinite(ms) && ms >= 0) || termMs[1] < termMs[0]) usage("--term-ms: MIN:MAX");
  args.termMs = termMs;
  args.observeMs = values["observe-ms"] === undefined ? 50 : Number(values["observe-ms"]);
  if (!Number.isFinite(args.observeMs) || args.observeMs < 1) usage("--observe-ms: not a number >= 1");
  args.observeTailMs = values["observe-tail-ms"] === undefined ? 1500 : Number(values["observe-tail-ms"]);
  if (!Number.isFinite(args.observeTailMs) || args.observeTailMs < 0) usage("--observe-tail-ms: not a number >= 0");
  args.handoffShare = share(values["handoff-share"], "--handoff-share", 0);
  if (!CLIENT_KINDS.includes(args.client)) usage(`--client must be one of ${CLIENT_KINDS.join(", ")}`);
  const coordinates = args.semaphore !== null || args.election !== null || args.handoffShare > 0;
  if (coordinates && args.client !== "node-new") usage(`${args.client} only takes plain locks: no --semaphore, --election or --handoff-share`);
  for (const [key, flag] of [["endpoint", "--endpoint"], ["lockTable", "--lock-table"], ["kvTable", "--kv-table"], ["kvPartition", "--kv-partition"], ["log", "--log"]]) {
    if (!args[key]) usage(`${flag} is required`);
  }
  if (!args.lockIds) usage("--locks is required");
  if (args.lockIds.length === 0) usage("--locks names no lock id");
  // The dlc-style kinds track each held lock's lease by lock id (LeaseWatch): one loop only.
  if (args.client !== "node-new" && args.tasks !== 1) usage(`--tasks: ${args.client} runs one holder loop`);
  if (args.deadlineNs === null) args.deadlineNs = now() + BigInt(Math.round(args.duration * 1e9));
  args.leaseMs = Math.round(args.lease * 1000);
  args.heartbeatMs = Math.round((args.heartbeat === null ? args.lease / 3 : args.heartbeat) * 1000);
  return args;
}

// mulberry32: a small seeded PRNG (Math.random cannot be seeded).
function rng(seed) {
  let a = (seed === null ? Math.floor(Math.random() * 2 ** 32) : seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// JSON with bigints written as integers (exact; JSON.stringify refuses bigints).
function stringify(record) {
  return JSON.stringify(record, (_, v) => (typeof v === "bigint" ? `@@bigint:${v}@@` : v)).replace(/"@@bigint:(-?\d+)@@"/g, "$1");
}

/** Appends JSON lines, each with one synchronous write: the runner tails the files, and a worker
 * killed with SIGKILL loses at most the line it was writing. */
class Log {
  constructor(file, client) {
    this.fd = fs.openSync(file, "a");
    this.client = client;
    this.pid = process.pid;
  }

  write(record) {
    fs.writeSync(this.fd, stringify({ client: this.client, pid: this.pid, ...record }) + "\n");
  }

  event(event, fields = {}) {
    this.write({ event, at: now(), ...fields });
  }

  error(op, lock, error) {
    const name = (error && (error.code || error.name)) || "Error";
    const message = String((error && error.message) || error).slice(0, 300);
    this.event("error", { op, lock, error: name, message });
  }
}

const counterKey = (lockId) => `counter/${lockId}`;
const nextValue = (pair) => (pair === null ? 1 : Number(pair.value) + 1);

// Refused for certain: not applied.
const REFUSED = new Set([
  dynalease.codes.LOCK_LOST,
  dynalease.codes.KEY_MODIFIED,
  dynalease.codes.KEY_EXISTS,
  dynalease.codes.KEY_NOT_FOUND,
]);
// A write the client could not tell landed or not. Before the package had this code every
// failure but a refusal counted as possibly landed; with it, other failures say the write did not
// land, and the checker holds them to it.
const OUTCOME_UNKNOWN = (dynalease.codes && dynalease.codes.OUTCOME_UNKNOWN) || null;

/** false: certainly not applied; null: unknown. */
function incrementOutcome(error) {
  const code = error && error.code;
  if (REFUSED.has(code)) return false;
  if (OUTCOME_UNKNOWN === null) return null;
  return code === OUTCOME_UNKNOWN || code === "ERR_DYNALEASE_OUTCOME_UNKNOWN" ? null : false;
}

async function increment(kv, lockId, lock, log) {
  try {
    const previous = await kv.get(counterKey(lockId));
    await kv.atomicPut(counterKey(lockId), nextValue(previous), lock ? { previous, lock } : { previous });
    return true;
  } catch (error) {
    log.error("increment", lockId, error);
    return incrementOutcome(error);
  }
}

function holdRecord(lockId, token, acquired, released, lost, applied, fenced) {
  const record = {
    lock: lockId,
    token,
    acquired,
    released,
    // Held for the whole logged interval as far as this worker can know.
    ok: !lost,
    // true: applied; false: certainly not applied; null: outcome unknown.
    increment: applied,
  };
  if (!fenced) record.fenced = false;
  return record;
}

// ---------------------------------------------------------------------------------------------
// node-new: the Promise API.

const isCode = (error, code) => Boolean(error) && error.code === code;

async function runNew(args, log, random) {
  const locks = new dynalease.LockClient({
    table: args.lockTable,
    leaseDurationMs: args.leaseMs,
    heartbeatPeriodMs: args.heartbeatMs,
    endpoint: args.endpoint,
  });
  const kv = new dynalease.KVStore({ table: args.kvTable, partition: args.kvPartition, endpoint: args.endpoint });
  const semaphore = args.semaphore === null ? null : locks.semaphore(args.semaphore.name, { permits: args.semaphore.permits });
  const leaseNs = BigInt(args.leaseMs) * 1000000n;
  let handoffs = 0;
  let handedOff = false;

  async function release(lock, lockId) {
    try {
      await lock.release();
    } catch (error) {
      log.error("release", lockId, error);
    }
  }

  async function holder() {
    for (;;) {
      const remaining = args.deadlineNs - now();
      if (remaining <= 0n) return;
      // No draw without a semaphore: without the flags the picks are what they always were.
      const permit = semaphore !== null && random() < args.semaphoreShare;
      let lockId = permit ? args.semaphore.name : args.lockIds[Math.floor(random() * args.lockIds.length)];
      let lock;
      try {
        const timeoutMs = Math.max(1, Math.ceil(Math.min(Number(remaining) / 1e6, args.leaseMs * 3)));
        lock = permit ? await semaphore.acquire({ timeoutMs }) : await locks.acquire(lockId, { timeoutMs });
      } catch (error) {
        if (isCode(error, dynalease.codes.LOCK_NOT_ACQUIRED)) continue;
        log.error(permit ? "semaphore" : "acquire", lockId, error);
        await sleep(50);
        continue;
      }
      const acquired = now();
      lockId = String(lock.id); // a permit's: NAME#k
      if (args.announce) log.event("acquired", { lock: lockId, token: lock.fencingToken, acquired });
      const applied = await increment(kv, lockId, lock, log);
      await sleep(random() * args.holdMs);
      // The process's first hold that can, then a share of the others; never with less than a
      // lease left before the deadline.
      let handOff = false;
      if (!permit && args.handoffShare > 0) {
        const chosen = random() < args.handoffShare;
        if (args.deadlineNs - now() > leaseNs) {
          handOff = chosen || !handedOff;
          handedOff = true;
        }
      }
      const released = now();
      const lost = lock.status !== "held"; // read after `released`: held now means held then
      const record = holdRecord(lockId, lock.fencingToken, acquired, released, lost, applied, true);
      if (permit) Object.assign(record, { semaphore: args.semaphore.name, permits: args.semaphore.permits });
      if (handOff && !lost) {
        let handle = null;
        try {
          handle = await lock.detach();
        } catch (error) {
          log.error("detach", lockId, error);
        }
        if (handle !== null) {
          const key = `handoff/${process.pid}-${++handoffs}`;
          log.write({ ...record, detached: true, handoff: key });
          const entry = { handle, lock: lockId, token: lock.fencingToken, client: args.client, pid: process.pid, at: Number(now()) };
          try {
            await kv.put(key, entry);
          } catch (error) {
            log.error("handoff", lockId, error);
          }
          continue;
        }
      }
      log.write(record);
      await release(lock, lockId);
    }
  }

  // Campaigns until the deadline, keeps each term for --term-ms, resigns, and pauses so that the
  // term passes to another process.
  async function candidate(election, random) {
    const name = args.election;
    for (;;) {
      const remaining = args.deadlineNs - now();
      if (remaining <= 0n) return;
      let lock;
      try {
        const timeoutMs = Math.max(1, Math.ceil(Math.min(Number(remaining) / 1e6, args.leaseMs * 3)));
        lock = await election.campaign({ data: { client: args.client, pid: process.pid }, timeoutMs });
      } catch (error) {
        if (isCode(error, dynalease.codes.LOCK_NOT_ACQUIRED)) continue;
        log.error("campaign", name, error);
        await sleep(50);
        continue;
      }
      const acquired = now();
      if (args.announce) log.event("acquired", { lock: name, token: lock.fencingToken, acquired });
      const applied = await increment(kv, name, lock, log);
      await sleep(args.termMs[0] + random() * (args.termMs[1] - args.termMs[0]));
      const released = now();
      const lost = lock.status !== "held";
      log.write({ ...holdRecord(name, lock.fencingToken, acquired, released, lost, applied, true), election: name });
      await release(lock, name);
      await sleep(200 + random() * 200);
    }
  }

  // Logs a `leader` line whenever the term differs from the last one logged, until aborted.
  async function observer(election, signal) {
    const name = args.election;
    let last; // undefined: nothing logged yet; null: nobody leads
    while (!signal.aborted) {
      try {
        for await (const leader of election.watch({ signal, intervalMs: args.observeMs })) {
          const at = now();
          const term = leader === null ? null : leader.term;
          if (term !== last) {
            last = term;
            log.write({ event: "leader", election: name, term, at });
          }
        }
      } catch (error) {
        if (signal.aborted) break;
        log.error("observe", name, error);
        await sleep(50);
      }
    }
  }

  // Takes up other processes' hand-offs until the deadline.
  async function mailbox(random) {
    while (now() < args.deadlineNs) {
      let others = [];
      try {
        others = (await kv.list("handoff/")).filter((pair) => pair.value && typeof pair.value === "object" && pair.value.pid !== process.pid);
      } catch (error) {
        log.error("claim", "handoff/", error);
      }
      if (others.length === 0) {
        await sleep(100 + random() * 50);
        continue;
      }
      const pair = others[Math.floor(random() * others.length)];
      const lockId = String(pair.value.lock);
      try {
        await kv.atomicDelete(pair.key, pair);
      } catch (error) {
        // Another process claimed it first; any other failure may have been our claim, and
        // resuming a handle someone else resumed too would make two holders.
        if (!isCode(error, dynalease.codes.KEY_MODIFIED) && !isCode(error, dynalease.codes.KEY_NOT_FOUND)) log.error("claim", lockId, error);
        continue;
      }
      let lock;
      try {
        lock = await locks.resume(pair.value.handle);
      } catch (error) {
        log.error("resume", lockId, error);
        continue;
      }
      const acquired = now();
      const applied = await increment(kv, lockId, lock, log);
      await sleep(random() * args.holdMs);
      const released = now();
      const lost = lock.status !== "held";
      log.write({ ...holdRecord(lockId, lock.fencingToken, acquired, released, lost, applied, true), resumed: true, handoff: pair.key });
      await release(lock, lockId);
    }
  }

  // Every loop but the holders draws from a generator of its own, so that the holders' picks are
  // the same as without the flags.
  const loops = Array.from({ length: args.tasks }, () => holder());
  const stop = new AbortController();
  let observing = null;
  if (args.election !== null) {
    const election = locks.election(args.election);
    log.event("observer-start", { election: args.election, interval_ms: args.observeMs });
    observing = observer(election, stop.signal);
    loops.push(candidate(election, rng(Math.floor(random() * 2 ** 32))));
  }
  if (args.handoffShare > 0) loops.push(mailbox(rng(Math.floor(random() * 2 ** 32))));
  await Promise.all(loops);
  if (observing !== null) {
    await sleep(Math.max(0, Number(args.deadlineNs - now()) / 1e6 + args.observeTailMs));
    stop.abort();
    await observing;
    log.event("observer-stop", { election: args.election });
  }
}

// ---------------------------------------------------------------------------------------------
// node-dropin and node-dlc: dlc's FailOpen API.

/**
 * dlc's Lock has no "lost" state: it only emits 'error' when a heartbeat fails. So the worker
 * watches the lock's writes itself, by passing FailOpen a thin wrapper of the DocumentClient
 * that notes, per lock id, when the request behind the item's current guid was sent. A
 * contender can only have read that guid after it landed, and then waits a whole lease before
 * it may take the lock over: so until that send time plus the lease, and while no heartbeat
 * has failed, the lock is ours. This is the same conservative bound the core keeps.
 */
class LeaseWatch {
  constructor(dynamodb, partitionKey, leaseMs) {
    this.partitionKey = partitionKey;
    this.leaseNs = BigInt(leaseMs) * 1000000n;
    this.sent = new Map(); // lock id -> send time (ns) of the last successful put
    const watch = this;
    this.client = {
      get: (params, callback) => dynamodb.get(params, callback),
      delete: (params, callback) => dynamodb.delete(params, callback),
      put(params, callback) {
        const id = params && params.Item ? String(params.Item[watch.partitionKey]) : undefined;
        const sentAt = now();
        return dynamodb.put(params, (error, data) => {
          // A failed condition counts too: the SDK may have resent a put that had landed, and
          // the drop-in then reads its own guid back and holds the lock from that put. Where the
          // condition really failed, the lock is not held from this put: a later put records
          // its own time, or the heartbeat failure marks the hold lost.
          const landed = !error || error.name === "ConditionalCheckFailedException" || error.code === "ConditionalCheckFailedException";
          if (landed && id !== undefined) watch.sent.set(id, sentAt);
          callback(error, data);
        });
      },
    };
  }

  forget(lockId) {
    this.sent.delete(lockId);
  }

  /** Held at `at`: a guid we wrote less than a lease before. */
  heldAt(lockId, at) {
    const sentAt = this.sent.get(lockId);
    return sentAt !== undefined && at < sentAt + this.leaseNs;
  }
}

function documentClientV3(endpoint) {
  const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
  const { DynamoDBDocument } = require("@aws-sdk/lib-dynamodb");
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "fleet", secretAccessKey: "fleet" },
  });
  return DynamoDBDocument.from(client);
}

function documentClientV2(endpoint) {
  const AWS = require("aws-sdk");
  return new AWS.DynamoDB.DocumentClient({
    endpoint,
    region: "us-east-1",
    credentials: new AWS.Credentials({ accessKeyId: "fleet", secretAccessKey: "fleet" }),
  });
}

function acquireLock(failOpen, lockId) {
  return new Promise((resolve, reject) => failOpen.acquireLock(lockId, (error, lock) => (error ? reject(error) : resolve(lock))));
}

function releaseLock(lock) {
  return new Promise((resolve, reject) => lock.release((error) => (error ? reject(error) : resolve())));
}

async function runDlc(args, log, random) {
  const dropin = args.client === "node-dropin";
  const FailOpen = dropin ? dynalease.FailOpen : require("dynamodb-lock-client").FailOpen;
  const dynamodb = dropin ? documentClientV3(args.endpoint) : documentClientV2(args.endpoint);
  const watch = new LeaseWatch(dynamodb, "id", args.leaseMs);
  const failOpen = new FailOpen({
    dynamodb: watch.client,
    lockTable: args.lockTable,
    partitionKey: "id",
    leaseDurationMs: args.leaseMs,
    heartbeatPeriodMs: args.heartbeatMs,
  });
  const kv = new dynalease.KVStore({ table: args.kvTable, partition: args.kvPartition, endpoint: args.endpoint });

  for (;;) {
    if (args.deadlineNs - now() <= 0n) return;
    const lockId = args.lockIds[Math.floor(random() * args.lockIds.length)];
    // dlc's acquireLock takes no timeout: it reads the item, waits the lease it names, and
    // tries (retryCount 1: twice), so it returns within about two leases.
    watch.forget(lockId);
    let lock;
    try {
      lock = await acquireLock(failOpen, lockId);
    } catch (error) {
      if (error && error.code === "FailedToAcquireLock") continue;
      log.error("acquire", lockId, error);
      await sleep(50);
      continue;
    }
    const acquired = now();
    let heartbeatFailed = false;
    // dlc emits 'error' on a failed heartbeat (unhandled, it would crash the process).
    lock.on("error", (error) => {
      heartbeatFailed = true;
      log.error("heartbeat", lockId, error);
    });
    if (args.announce) log.event("acquired", { lock: lockId, token: lock.fencingToken, acquired });
    const applied = await increment(kv, lockId, null, log);
    await sleep(random() * args.holdMs);
    const released = now();
    const lost = heartbeatFailed || !watch.heldAt(lockId, released);
    log.write(holdRecord(lockId, lock.fencingToken, acquired, released, lost, applied, false));
    try {
      await releaseLock(lock);
    } catch (error) {
      log.error("release", lockId, error);
    }
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const log = new Log(args.log, args.client);
  const random = rng(args.seed);
  log.event("start", { locks: args.lockIds });
  if (args.client === "node-new") await runNew(args, log, random);
  else await runDlc(args, log, random);
  log.event("stop");
  // Every lock is released; don't wait for idle keep-alive sockets or SDK timers.
  process.exit(0);
}

main().catch((error) => {
  process.stderr.write(`worker.js: ${(error && error.stack) || error}\n`);
  process.exit(1);
});
