// Compiled by `tsc --noEmit` in scripts/test-node: typed usage of both APIs.
import * as AWS from "aws-sdk";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocument } from "@aws-sdk/lib-dynamodb";
import type * as DlcTypes from "dynamodb-lock-client";
import * as dynalease from "dynalease";
import { FailClosed, FailOpen, KVStore, LockClient, codes, createTable, DynaleaseError, toEmf } from "dynalease";
import { instrument } from "dynalease/otel";
import { metrics } from "@opentelemetry/api";

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

// Beyond one mutex: hand-off, elections, semaphores, Lambda-bounded locks.
async function coordination(): Promise<string> {
  const locks = new LockClient({ table: "locks", endpoint: "memory://types" });
  const lock: dynalease.LeaseLock = await locks.acquire("job-2");
  const before: string = lock.handle;
  await lock.renew();
  const handle: string = await lock.detach();
  const detached: "held" | "lost" | "released" | "detached" = lock.status;
  const resumed = await locks.resume(handle);
  await resumed.release();

  const election: dynalease.Election = locks.election("scheduler");
  const controller = new AbortController();
  const term = await election.campaign({ data: { addr: "10.0.0.7" }, timeoutMs: 5000, signal: controller.signal });
  const leader: dynalease.Leader | null = await election.leader();
  const termNumber: number | undefined = leader?.term;
  for await (const current of election.watch({ signal: controller.signal, intervalMs: 500 })) {
    const owner: string | undefined = current?.owner;
    const data: dynalease.Value | undefined = current?.data;
    if (owner !== undefined || data !== undefined) break;
  }
  await term.release();

  const sem: dynalease.Semaphore = locks.semaphore("exports", { permits: 3 });
  const permit: dynalease.LeaseLock = await sem.acquire({ timeoutMs: 1000, signal: controller.signal });
  const maybePermit: dynalease.LeaseLock | null = await sem.tryAcquire();
  const holders: dynalease.PermitHolder[] = await sem.holders();
  const first: number | null | undefined = holders[0]?.fencingToken;
  const count: number = sem.permits + holders.length + (holders[0]?.permit ?? 0);
  const name: dynalease.LockId = sem.name;
  await permit.release();
  await maybePermit?.release();

  const context = { getRemainingTimeInMillis: () => 30000, functionName: "handler" };
  const result: number = await locks.lambdaLock("order/7", context, async (held) => held.fencingToken ?? 0, { timeoutMs: 0, marginMs: 1000 });
  const sync: string = await locks.lambdaLock(["tenant", 7], context, () => "done");
  return `${before}${detached}${termNumber}${first}${count}${String(name)}${result}${sync}${election.name}`;
}

// Operating it: stats, the OpenTelemetry bridge, CloudWatch's embedded metric format.
async function operating(): Promise<string> {
  const locks = new LockClient({ table: "locks", endpoint: "memory://types" });
  const kv = new KVStore({ table: "kv", partition: "p", endpoint: "memory://types" });
  const before: dynalease.Stats = locks.stats();
  await (await locks.acquire("job-3")).release();
  const after = locks.stats();
  const counts: number = after.acquisitions + after.lostLeaseExpired + after.lostTakenOver + after.casConflicts + kv.stats().kvWrites;
  const units: number = after.readUnits + after.writeUnits;
  const wait: dynalease.WaitHistogram = after.acquireWait;
  const slow: number = wait.counts[wait.counts.length - 1] + wait.boundsMs.length + wait.sumMs;
  const line: string = toEmf(after, { namespace: "Locks", dimensions: { Service: "orders" }, since: before });
  const now: string = toEmf(kv, { namespace: "Locks" });
  const bridge = instrument({ orders: locks, cache: kv }, { meter: metrics.getMeter("app"), prefix: "app.locks." });
  instrument([locks, kv]).stop();
  instrument(locks, {});
  bridge.stop();
  return `${counts}${units}${slow}${line}${now}`;
}

void operating;
void dropInPromises;
void promiseApi;
void coordination;
