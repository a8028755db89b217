"use strict";
// The Node twin of holder.py, for the SIGKILL and SIGSTOP tests: acquires one lock with the
// Promise API, makes one fenced increment, then holds until the lock is lost (or it is killed),
// and reports on stdout, one event per line:
//
//     acquired <token> <monotonic ns>
//     write ok
//     lost <monotonic ns> <reason>
//     fenced write rejected <err.code>      (or: fenced write ACCEPTED)
//
//     node tests/fleet/holder.js ENDPOINT LOCK_TABLE KV_TABLE PARTITION LOCK_ID LEASE HEARTBEAT
//
// LEASE and HEARTBEAT are in seconds, as for holder.py. Times are CLOCK_MONOTONIC nanoseconds
// (process.hrtime.bigint() on Linux), comparable with the test's time.monotonic_ns().

const path = require("path");

const dynalease = require(path.join(__dirname, "..", ".."));

function say(line) {
  process.stdout.write(`${line}\n`);
}

async function main() {
  const [endpoint, lockTable, kvTable, partition, lockId, lease, heartbeat] = process.argv.slice(2);
  if (heartbeat === undefined) throw new Error("usage: holder.js ENDPOINT LOCK_TABLE KV_TABLE PARTITION LOCK_ID LEASE HEARTBEAT");
  const locks = new dynalease.LockClient({
    table: lockTable,
    leaseDurationMs: Math.round(Number(lease) * 1000),
    heartbeatPeriodMs: Math.round(Number(heartbeat) * 1000),
    endpoint,
  });
  const kv = new dynalease.KVStore({ table: kvTable, partition, endpoint });
  const key = `counter/${lockId}`;

  const lock = await locks.acquire(lockId, { timeoutMs: 60000 });
  // Listen at once: the abort event must not be missed however soon the lease is lost.
  const lost = new Promise((resolve) => {
    if (lock.signal.aborted) resolve(process.hrtime.bigint());
    else lock.signal.addEventListener("abort", () => resolve(process.hrtime.bigint()), { once: true });
  });
  say(`acquired ${lock.fencingToken} ${process.hrtime.bigint()}`);
  let previous = await kv.get(key);
  await kv.atomicPut(key, previous === null ? 1 : Number(previous.value) + 1, { previous, lock });
  say("write ok");

  // The native lock reports the loss (a failed heartbeat, or its lease timer, which runs on
  // CLOCK_MONOTONIC and so keeps running while the process is stopped); lock.signal aborts.
  const lostAt = await lost;
  say(`lost ${lostAt} ${lock.lostReason}`);

  previous = await kv.get(key);
  try {
    await kv.atomicPut(key, 1000, { previous, lock });
    say("fenced write ACCEPTED");
  } catch (error) {
    say(`fenced write rejected ${error && error.code}`);
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`holder.js: ${(error && error.stack) || error}\n`);
    process.exit(1);
  },
);
