// Compiled by `tsc --noEmit` in scripts/test-node: typed usage of both APIs.
import * as AWS from "aws-sdk";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocument } from "@aws-sdk/lib-dynamodb";
import type * as DlcTypes from "dynamodb-lock-client";
import * as dynalease from "dynalease";
import { FailClosed, FailOpen, KVStore, LockClient, codes, createTable, DynaleaseError } from "dynalease";

// Drop-in: what @types/dynamodb-lock-client users write compiles unchanged.
const v2 = new AWS.DynamoDB.DocumentClient();
const dlcConfig: DlcTypes.FailOpenConfig = { dynamodb: v2, lockTable: "locks", partitionKey: "id", leaseDurationMs: 10000, heartbeatPeriodMs: 3000 };
const failOpen = new FailOpen<string>(dlcConfig);
failOpen.acquireLock("job", (error, lock) => {
  if (error) return;
  const token: number = lock.fencingToken;
  lock.on("error", (e: Error) => console.error(e, token));
  lock.release((err) => err && console.error(err.message));
});
const closedConfig: DlcTypes.FailClosedConfig = { dynamodb: v2, lockTable: "locks", partitionKey: "id", acquirePeriodMs: 100 };
FailClosed(closedConfig).acquireLock("job", () => undefined);
// Beyond dlc: SDK v3 clients, sort keys on FailClosed, Promises.
const v3 = DynamoDBDocument.from(new DynamoDBClient({}));
async function dropInPromises(): Promise<number> {
  const locks = new FailClosed({ dynamodb: v3, lockTable: "locks", partitionKey: "id", sortKey: "sk", acquirePeriodMs: 10 });
  const lock = await locks.acquireLock({ id: "a", sk: "b" });
  await lock.release();
  return lock.fencingToken;
}

// Promise API.
async function promiseApi(): Promise<void> {
  await createTable("locks", { partitionKey: "id", endpoint: "memory://types" });
  const locks = new LockClient({ table: "locks", leaseDurationMs: 10000, heartbeatPeriodMs: 3000, endpoint: "memory://types" });
  const controller = new AbortController();
  const lock = await locks.acquire("job-1", { timeoutMs: 30000, signal: controller.signal });
  const token: number | null = lock.fencingToken;
  lock.signal.addEventListener("abort", () => console.log("lost", lock.lostReason, token));
  await lock.updateData({ step: 1, blob: Buffer.from("x"), big: 1n });
  const maybe: dynalease.LeaseLock | null = await locks.tryAcquire(["tenant", 7]);
  const kv = new KVStore({ table: "kv", partition: "agents", endpoint: "memory://types" });
  const pair = await kv.atomicPut("agents/1", { state: "idle" }, { previous: null, ttlMs: 1000, lock });
  await kv.atomicPut("agents/1", [1, 2], { previous: pair });
  const got: dynalease.KVPair | null = await kv.get("agents/1");
  const all: dynalease.KVPair[] = await kv.list("agents/");
  await kv.delete("agents/1", { lock });
  await lock.release({ data: "done" });
  // Per-call deadline, retries and the waiter's poll interval, on every constructor.
  await createTable("kv", { partitionKey: "pk", sortKey: "sk", callTimeoutMs: 2000, maxRetries: 3 });
  const tuned = new LockClient({ table: "locks", callTimeoutMs: 2000, pollIntervalMs: 100, maxRetries: 0 });
  const tunedKv = new KVStore({ table: "kv", partition: "p", callTimeoutMs: 2000, maxRetries: 1 });
  const settings: number = tuned.callTimeoutMs + tuned.pollIntervalMs + tuned.maxRetries + tunedKv.callTimeoutMs + tunedKv.maxRetries;
  try {
    await tunedKv.put("k", settings);
  } catch (e) {
    // May have been applied: read before retrying.
    if (e instanceof DynaleaseError && e.code === codes.OUTCOME_UNKNOWN) await tunedKv.get("k");
  }
  try {
    await maybe?.release();
  } catch (e) {
    if (e instanceof DynaleaseError && e.code === codes.LOCK_LOST) console.log(got, all.length);
  }
}

void dropInPromises;
void promiseApi;
