"use strict";
// A Node lock client driven line by line from stdin, so that the Python fault tests can run
// their scenarios with a Node client behind the fault proxy. One command per line, one JSON
// answer per line on stdout ({"ok": true, ...} or {"ok": false, "code": ..., "message": ...}):
//
//     acquire ID [TIMEOUT_MS]  -> {"ok": true, "token": N}      take the lock (one held at a time)
//     status                   -> {"ok": true, "status": "held" | "lost" | "released", "reason": ...}
//     release                  -> {"ok": true}
//     cas KEY JSON             -> {"ok": true, "version": N}    get KEY, then atomicPut(KEY, JSON,
//                                                               { previous, lock }) (node-new only)
//     quit
//
//     node tests/fleet/lockdriver.js --client node-new|node-dropin --endpoint URL --lock-table T
//         [--kv-table K --kv-partition P] [--lease-ms MS] [--heartbeat-ms MS] [--max-attempts N]
//
// node-new is dynalease's Promise API (LockClient, KVStore). node-dropin is
// require("dynalease").FailOpen over an AWS SDK v3 DynamoDBDocument configured as its users
// configure it: the SDK's standard retry strategy with --max-attempts (the SDK's default is 3).
// The drop-in's Lock has no lost state; "lost" here means it emitted 'error' (a heartbeat failed).

const path = require("path");
const readline = require("readline");
const util = require("util");

const { SHARED_OPTIONS, sharedArgs } = require("./flags.js");

const dynalease = require(path.join(__dirname, "..", ".."));

function parseArgs(argv) {
  const { values } = util.parseArgs({
    args: argv,
    options: {
      ...SHARED_OPTIONS,
      "lease-ms": { type: "string", default: "3000" },
      "heartbeat-ms": { type: "string" },
      "max-attempts": { type: "string", default: "3" },
    },
  });
  const args = {
    ...sharedArgs(values),
    leaseMs: Number(values["lease-ms"]),
    maxAttempts: Number(values["max-attempts"]),
  };
  if (!["node-new", "node-dropin"].includes(args.client)) throw new Error("--client must be node-new or node-dropin");
  if (!args.endpoint || !args.lockTable) throw new Error("--endpoint and --lock-table are required");
  args.heartbeatMs = values["heartbeat-ms"] === undefined ? Math.round(args.leaseMs / 3) : Number(values["heartbeat-ms"]);
  return args;
}

/** The Promise API. */
function newClient(args) {
  const locks = new dynalease.LockClient({
    table: args.lockTable,
    leaseDurationMs: args.leaseMs,
    heartbeatPeriodMs: args.heartbeatMs,
    endpoint: args.endpoint,
  });
  const kv = args.kvTable ? new dynalease.KVStore({ table: args.kvTable, partition: args.kvPartition, endpoint: args.endpoint }) : null;
  let lock = null;
  return {
    async acquire(id, timeoutMs) {
      lock = await locks.acquire(id, { timeoutMs });
      return { token: lock.fencingToken };
    },
    status: () => ({ status: lock.status, reason: lock.lostReason }),
    async release() {
      await lock.release();
      return {};
    },
    async cas(key, value) {
      if (!kv) throw new Error("cas needs --kv-table and --kv-partition");
      const previous = await kv.get(key);
      const pair = await kv.atomicPut(key, value, { previous, lock });
      return { version: pair.version };
    },
  };
}

/** The dlc drop-in over the SDK v3 document client, as a user switching from dlc runs it. */
function dropinClient(args) {
  const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
  const { DynamoDBDocument } = require("@aws-sdk/lib-dynamodb");
  const client = new DynamoDBClient({
    endpoint: args.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "fleet", secretAccessKey: "fleet" },
    maxAttempts: args.maxAttempts,
  });
  const failOpen = new dynalease.FailOpen({
    dynamodb: DynamoDBDocument.from(client),
    lockTable: args.lockTable,
    partitionKey: "id",
    leaseDurationMs: args.leaseMs,
    heartbeatPeriodMs: args.heartbeatMs,
  });
  let lock = null;
  let heartbeatError = null;
  let released = false;
  return {
    async acquire(id) {
      // dlc's acquireLock has no timeout: it reads, waits out a holder's lease, and puts.
      lock = await failOpen.acquireLock(id);
      heartbeatError = null;
      released = false;
      lock.on("error", (error) => {
        heartbeatError = error;
      });
      return { token: lock.fencingToken };
    },
    status: () => ({
      status: heartbeatError ? "lost" : released ? "released" : "held",
      reason: heartbeatError ? `heartbeat failed: ${heartbeatError.name}: ${heartbeatError.message}` : null,
    }),
    async release() {
      await lock.release();
      released = true;
      return {};
    },
    async cas() {
      throw new Error("cas: the drop-in's locks cannot fence KV writes");
    },
  };
}

function describe(error) {
  return {
    ok: false,
    code: String((error && (error.code || error.name)) || "Error"),
    message: String((error && error.message) || error).slice(0, 500),
    // The drop-in passes the SDK's own error; dlc-style errors wrap it as originalError.
    original: error && error.originalError ? String(error.originalError.name || error.originalError.code) : undefined,
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const client = args.client === "node-new" ? newClient(args) : dropinClient(args);
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [command, ...rest] = line.trim().split(" ");
    let answer;
    try {
      switch (command) {
        case "acquire": answer = await client.acquire(rest[0], rest[1] === undefined ? undefined : Number(rest[1])); break;
        case "status": answer = client.status(); break;
        case "release": answer = await client.release(); break;
        case "cas": answer = await client.cas(rest[0], JSON.parse(rest.slice(1).join(" "))); break;
        case "quit": process.exit(0); break; // eslint-disable-line no-fallthrough
        default: throw new Error(`unknown command ${JSON.stringify(command)}`);
      }
      answer = { ok: true, ...answer };
    } catch (error) {
      answer = describe(error);
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  }
  process.exit(0);
}

main().catch((error) => {
  process.stderr.write(`lockdriver.js: ${(error && error.stack) || error}\n`);
  process.exit(1);
});
