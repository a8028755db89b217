"use strict";
// Node figures: dynalease (the drop-in FailOpen over the caller's SDK client, and the Promise
// API on the native transport) against dynamodb-lock-client 0.7.3 with AWS SDK v2
// (DocumentClient) and SDK v3 (DynamoDBDocument), on one DynamoDB Local, in one run. Prints one
// JSON document of results on stdout, like python_bench.py.
//
// Run by bench/run (make bench), which installs every package into a private environment
// (.cache/bench-node) first: the pinned peers, and dynalease from the tarballs users would get
// (the main package and the linux-x64-gnu platform package with the addon built in the dist
// profile, as shipped).
//
//   node bench/node_bench.js --env .cache/bench-node --endpoint http://127.0.0.1:PORT \
//       [--ops 200] [--handover-rounds 200] [--peer-handover-rounds 3] [--many 1000] \
//       [--hold-seconds 60] [--many-runs 3] [--cycle-runs 3] [--cold-runs 5] [--wait-seconds 60] [--short-wait-rounds N] \
//       [--long-wait-rounds N] [--cost-ops 10] [--python python3] [--tarballs a.tgz,b.tgz]
//
// (--short-wait-rounds defaults to a tenth of --handover-rounds, at least 5; --long-wait-rounds
// to --peer-handover-rounds, at most 3.)
//
// The same file is the child processes (handover waiters, cold starts, the many-locks holder):
// `--role waiter|cold|many`. Only Node's own modules are loaded before the client under test.

const childProcess = require("child_process");
const fs = require("fs");
const path = require("path");
const readline = require("readline");
const { createRequire } = require("module");

// The SDKs' notices (v2: maintenance mode; v3: future Node versions), not benchmark output.
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = "1";
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const LEASE_MS = 10000; // every client
const HEARTBEAT_MS = 3333; // lease / 3, as the Python clients
const REGION = "us-east-1";
const TABLE = "bench-locks"; // one table: dlc and dynalease share the item format
const CREDENTIALS = { accessKeyId: "bench", secretAccessKey: "bench" };
const HANDOVER_SETTLE_MS = 200; // lets the waiter find the lock held before the release
// Handovers release up to one poll interval later than asked, at random (python_bench.py says why).
const RELEASE_SPREAD_MS = 50;

// Each client under test: which lock library, over which DynamoDB client.
const CLIENTS = {
  "dynamodb-lock-client (SDK v2)": { lib: "dlc", sdk: "v2" },
  "dynamodb-lock-client (SDK v3)": { lib: "dlc", sdk: "v3" },
  "dynalease drop-in (SDK v2)": { lib: "dropin", sdk: "v2" },
  "dynalease drop-in (SDK v3)": { lib: "dropin", sdk: "v3" },
  "dynalease Promise API": { lib: "native", sdk: null },
};

function parseArgs(argv) {
  const args = {
    role: "main", env: null, endpoint: null, client: null, ops: 200, handoverRounds: 200, peerHandoverRounds: 3,
    many: 1000, holdSeconds: 60, manyRuns: 3, cycleRuns: 3, coldRuns: 5, python: "python3", tarballs: "",
    waitSeconds: 60, shortWaitRounds: null, longWaitRounds: null, costOps: 10, waitTimeoutMs: 60000, readStats: "no",
  };
  const numbers = new Set(["ops", "handoverRounds", "peerHandoverRounds", "many", "holdSeconds", "manyRuns", "cycleRuns", "coldRuns",
    "waitSeconds", "shortWaitRounds", "longWaitRounds", "costOps", "waitTimeoutMs"]);
  // `--name value` and `--name=value`, as argparse takes them (bench/run passes its options to both).
  argv = argv.flatMap((arg) => (/^--[^=]+=/.test(arg) ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg]));
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in args) || i + 1 >= argv.length) {
      throw new Error(`node_bench.js: unknown option or missing value: ${argv[i]}`);
    }
    args[key] = numbers.has(key) ? Number(argv[i + 1]) : argv[i + 1];
    if (numbers.has(key) && !(args[key] > 0)) throw new Error(`node_bench.js: ${argv[i]} needs a positive number`);
  }
  if (!args.env || !args.endpoint) throw new Error("node_bench.js: --env and --endpoint are required");
  // Derived from the options make bench-quick already shortens (see bench/run).
  args.shortWaitRounds ??= Math.max(5, Math.floor(args.handoverRounds / 10));
  args.longWaitRounds ??= Math.min(3, args.peerHandoverRounds);
  if (args.role !== "main" && !(args.client in CLIENTS)) throw new Error(`node_bench.js: --client must be one of ${Object.keys(CLIENTS).join(", ")}`);
  return args;
}

const args = parseArgs(process.argv.slice(2));
// Everything under test resolves from the private environment only (the repository's own
// node_modules, a parent directory of this file, holds other versions).
const envRequire = createRequire(path.join(path.resolve(args.env), "package.json"));

const monotonicNs = () => process.hrtime.bigint(); // CLOCK_MONOTONIC, as Python's time.monotonic_ns
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e3;
};
const rssMb = () => process.memoryUsage().rss / (1024 * 1024);

function percentile(samples, p) {
  const ordered = [...samples].sort((a, b) => a - b);
  return ordered[Math.min(ordered.length - 1, Math.round((p / 100) * (ordered.length - 1)))];
}

function median(samples) {
  const ordered = [...samples].sort((a, b) => a - b);
  const mid = ordered.length >> 1;
  return ordered.length % 2 ? ordered[mid] : (ordered[mid - 1] + ordered[mid]) / 2;
}

function summaryMs(samplesMs) {
  return { n: samplesMs.length, median_ms: median(samplesMs), p99_ms: percentile(samplesMs, 99) };
}

let idCounter = 0;
function ids(prefix, n) {
  const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  return Array.from({ length: n }, (_, i) => `${prefix}-${run}-${idCounter++}-${i}`);
}

// ---------------------------------------------------------------------------------------------
// Clients. Loading is separate from construction so cold starts can time both.

function load(name) {
  const { lib, sdk } = CLIENTS[name];
  const modules = {};
  if (lib === "native") {
    modules.dynalease = envRequire("dynalease");
    return modules;
  }
  modules.locks = lib === "dlc" ? envRequire("dynamodb-lock-client") : envRequire("dynalease");
  if (sdk === "v2") {
    modules.AWS = envRequire("aws-sdk");
    modules.http = require("http");
  } else {
    modules.DynamoDBClient = envRequire("@aws-sdk/client-dynamodb").DynamoDBClient;
    modules.DynamoDBDocument = envRequire("@aws-sdk/lib-dynamodb").DynamoDBDocument;
  }
  return modules;
}

/** A client with `acquire(id) -> lock`, `release(lock)`, `lost(lock)` and the modules it used. */
function construct(name, modules, endpoint, { retryCount = 1, leaseDurationMs = LEASE_MS, heartbeatPeriodMs = HEARTBEAT_MS } = {}) {
  const { lib, sdk } = CLIENTS[name];
  if (lib === "native") {
    const locks = new modules.dynalease.LockClient({ table: TABLE, leaseDurationMs, heartbeatPeriodMs, endpoint, region: REGION });
    return {
      acquire: (id, timeoutMs) => locks.acquire(id, timeoutMs ? { timeoutMs } : {}),
      release: (lock) => lock.release(),
      lost: (lock) => lock.status === "lost",
      native: locks,
    };
  }
  let dynamodb;
  if (sdk === "v2") {
    // Kept-alive connections, as SDK v3 does by default (v2 opens a connection per request
    // unless told otherwise): the peer at its best.
    const agent = new modules.http.Agent({ keepAlive: true, maxSockets: 64 });
    dynamodb = new modules.AWS.DynamoDB.DocumentClient({
      endpoint, region: REGION, credentials: new modules.AWS.Credentials(CREDENTIALS), httpOptions: { agent },
    });
  } else {
    dynamodb = modules.DynamoDBDocument.from(new modules.DynamoDBClient({ endpoint, region: REGION, credentials: CREDENTIALS }));
  }
  const client = new modules.locks.FailOpen({
    dynamodb, lockTable: TABLE, partitionKey: "id", leaseDurationMs, heartbeatPeriodMs, retryCount,
  });
  const failures = new WeakSet();
  return {
    // dlc's callback API (the drop-in also returns Promises, dlc does not).
    acquire: (id) => new Promise((resolve, reject) => client.acquireLock(id, (error, lock) => {
      if (error) return reject(error);
      lock.on("error", () => failures.add(lock)); // a failed heartbeat (unhandled, it would crash)
      return resolve(lock);
    })),
    release: (lock) => new Promise((resolve, reject) => lock.release((error) => (error ? reject(error) : resolve()))),
    lost: (lock) => failures.has(lock),
  };
}

function client(name, endpoint, options) {
  return construct(name, load(name), endpoint, options);
}

async function cycle(c, id) {
  await c.release(await c.acquire(id));
}

// ---------------------------------------------------------------------------------------------
// Figure 1: requests per cycle, through bench/counting_proxy.py (the Python benchmark's proxy).

function lineReader(stream) {
  const lines = [];
  const waiting = [];
  readline.createInterface({ input: stream }).on("line", (line) => {
    if (waiting.length) waiting.shift()(line);
    else lines.push(line);
  });
  return () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((resolve) => waiting.push(resolve)));
}

/** bench/counting_proxy.py in a child process: `open()` starts a proxy and gives its endpoint
 * and port; `ask(command, port)` sends one of its stdin commands and resolves with the answer. */
function startProxies() {
  const port = new URL(args.endpoint).port;
  const child = childProcess.spawn(args.python, [path.join(__dirname, "counting_proxy.py"), port], { stdio: ["pipe", "pipe", "inherit"] });
  const readLine = lineReader(child.stdout);
  const first = readLine();
  // Answers come in the order of the commands: write and queue the read in one synchronous step.
  const ask = (command, proxyPort) => {
    child.stdin.write(`${command}${proxyPort ? ` ${proxyPort}` : ""}\n`);
    return readLine();
  };
  let firstUsed = false;
  return {
    async open() {
      const opened = Number(firstUsed ? await ask("open") : await first);
      firstUsed = true;
      return { port: opened, endpoint: `http://127.0.0.1:${opened}` };
    },
    count: async (proxyPort) => Number(await ask("count", proxyPort)),
    reset: (proxyPort) => ask("reset", proxyPort),
    async events(proxyPort) {
      const answer = JSON.parse(await ask("events", proxyPort));
      for (const problem of answer.problems) process.stderr.write(`node_bench: counting proxy: ${problem}\n`);
      return answer;
    },
    close: () => child.stdin.end(),
  };
}

async function requestsPerCycle(proxies, cycles) {
  const proxy = await proxies.open();
  const out = {};
  for (const name of Object.keys(CLIENTS)) {
    const c = client(name, proxy.endpoint);
    await cycle(c, ids("req-warm", 1)[0]);
    await proxies.reset(proxy.port);
    for (const id of ids("req", cycles)) await cycle(c, id);
    out[name] = (await proxies.count(proxy.port)) / cycles;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Figure A: DynamoDB requests and capacity units per operation, each client through its own
// counting proxy. What an operation sent is read off the proxy's events (each stamped with the
// monotonic clock at sending) between the clock readings around the call.

/** Totals per operation of the events sent in [startNs, endNs), as counting_proxy.summarize. */
function summarize(events, startNs, endNs) {
  const out = { requests: 0, read_units: 0, write_units: 0, ops: {} };
  for (const [sentNs, op, reads, writes, outcome] of events) {
    if ((startNs !== undefined && sentNs < startNs) || (endNs !== undefined && sentNs >= endNs)) continue;
    const entry = (out.ops[op] ||= { requests: 0, read_units: 0, write_units: 0, condition_failed: 0, cancelled: 0, error: 0 });
    entry.requests += 1;
    entry.read_units += reads;
    entry.write_units += writes;
    if (outcome !== "ok") entry[outcome] += 1;
    out.requests += 1;
    out.read_units += reads;
    out.write_units += writes;
  }
  return out;
}

/** Averages per call over summaries of windows that held `calls` calls in all. */
function perCall(totals, calls) {
  const ops = {};
  for (const total of totals) {
    for (const [op, entry] of Object.entries(total.ops)) {
      const into = (ops[op] ||= { requests: 0, condition_failed: 0, cancelled: 0, error: 0 });
      for (const key of Object.keys(into)) into[key] += entry[key] / calls;
    }
  }
  const sum = (key) => totals.reduce((acc, t) => acc + t[key], 0) / calls;
  return { calls, requests: sum("requests"), read_units: sum("read_units"), write_units: sum("write_units"), ops };
}

class Windows {
  constructor() { this.spans = {}; }

  /** Times one call (or, with `calls`, several running side by side) under `label`. */
  async time(label, action, calls = 1) {
    const start = monotonicNs();
    try {
      return await action();
    } finally {
      (this.spans[label] ||= []).push([start, monotonicNs(), calls]);
    }
  }

  perCall(events) {
    const out = {};
    for (const [label, spans] of Object.entries(this.spans)) {
      const calls = spans.reduce((acc, [, , n]) => acc + n, 0);
      out[label] = perCall(spans.map(([start, end]) => summarize(events, start, end)), calls);
    }
    return out;
  }
}

const HEARTBEAT_EVERY_MS = 500; // for the heartbeat figure only (a shorter hold, same requests)
const LIST_PAGE = 10; // pairs per listed prefix: one Query page

/** Releases a lock of the capacity figures, whose heartbeats come every few hundred ms. dlc over
 * SDK v3 reports a release that crossed its own heartbeat as the SDK's condition failure (as in
 * figure 3); its lock then ends with its lease, on an id nothing uses again. Any other error, and
 * any error of dynalease's clients, stops the benchmark. */
function releaseBeating(name, c, lock) {
  return c.release(lock).catch((error) => {
    if (!(CLIENTS[name].lib === "dlc" && error && error.name === "ConditionalCheckFailedException")) throw error;
  });
}

/** Holds one lock for `holdMs`; each write sent in between is one heartbeat. */
async function heartbeats(proxies, proxy, name, c, holdMs) {
  const lock = await c.acquire(ids("beat", 1)[0]);
  const start = monotonicNs();
  await sleep(holdMs);
  const end = monotonicNs();
  await releaseBeating(name, c, lock);
  const total = summarize((await proxies.events(proxy.port)).events, start, end);
  const beats = ["PutItem", "UpdateItem"].reduce((acc, op) => acc + ((total.ops[op] || {}).requests || 0), 0);
  return perCall([total], Math.max(1, beats));
}

async function capacity(proxies, n) {
  const out = {};
  const holdMs = HEARTBEAT_EVERY_MS * 3 + 200;
  for (const name of Object.keys(CLIENTS)) {
    const proxy = await proxies.open();
    const modules = load(name);
    const c = construct(name, modules, proxy.endpoint);
    const w = new Windows();
    if (CLIENTS[name].lib === "native") {
      const other = construct(name, modules, args.endpoint);
      const kv = new modules.dynalease.KVStore({ table: "bench-kv", partition: ids("cost", 1)[0], endpoint: proxy.endpoint, region: REGION });
      for (const id of ids("cost", n)) {
        const lock = await w.time("acquire", () => c.acquire(id));
        await w.time("lock-data update", () => lock.updateData({ step: 1, by: "bench" }));
        await w.time("fenced KV write", () => kv.put(`fenced/${id}`, { n: 1 }, { lock }));
        await w.time("release", () => c.release(lock));
      }
      for (const id of ids("contended", n)) {
        const held = await other.acquire(id);
        if ((await w.time("contended acquire attempt", () => c.native.tryAcquire(id))) !== null) throw new Error("tryAcquire took a held lock");
        await other.release(held);
      }
      for (const key of ids("kv", n)) {
        const pair = await w.time("KV put", () => kv.put(key, { state: "idle", n: 1 }));
        await w.time("KV get", () => kv.get(key));
        await w.time("KV CAS (atomic put by version)", () => kv.atomicPut(key, { state: "busy", n: 2 }, { previous: pair }));
        await w.time("KV delete", () => kv.delete(key));
      }
      for (let page = 0; page < n; page++) {
        const prefix = `list${page}/`;
        for (let i = 0; i < LIST_PAGE; i++) await kv.put(`${prefix}${i}`, { n: i });
        if ((await w.time("KV list page", () => kv.list(prefix))).length !== LIST_PAGE) throw new Error("list: wrong page size");
      }
    } else {
      for (const id of ids("cost", n)) {
        const lock = await w.time("acquire", () => c.acquire(id));
        await w.time("release", () => c.release(lock));
      }
      // A dlc-protocol attempt reads the item, sleeps the holder's lease, then tries a put
      // conditioned on what it read; a holder with a 1 s lease and 300 ms heartbeats makes
      // that put fail after 1 s instead of 10 (same requests). Side by side, on separate ids.
      const holder = client(name, args.endpoint, { leaseDurationMs: 1000, heartbeatPeriodMs: 300 });
      const once = construct(name, modules, proxy.endpoint, { retryCount: 0 });
      const contended = ids("contended", n);
      const held = await Promise.all(contended.map((id) => holder.acquire(id)));
      await w.time("contended acquire attempt", () => Promise.all(contended.map((id) => once.acquire(id).then(
        () => { throw new Error(`${name} took a held lock`); },
        // dlc over SDK v3 passes the SDK's error on (it looks for v2's error.code to wrap it).
        (error) => { if (!error || (error.code !== "FailedToAcquireLock" && error.name !== "ConditionalCheckFailedException")) throw error; },
      ))), n);
      await Promise.all(held.map((lock) => releaseBeating(name, holder, lock)));
    }
    out[name] = w.perCall((await proxies.events(proxy.port)).events);
    const beating = construct(name, modules, proxy.endpoint, { heartbeatPeriodMs: HEARTBEAT_EVERY_MS });
    out[name].heartbeat = await heartbeats(proxies, proxy, name, beating, holdMs);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Figures 2 and 4: uncontended cycles, one async loop per lock id.

// Cycles before timing: connections, and V8's JIT, which optimises a function only after many
// calls. Each client runs in a fresh process (cyclesRole), so none inherits SDK code another
// client's cycles had already made hot.
const WARM_UP_CYCLES = 50;

async function timedCycles(c, lockIds, perId) {
  for (const id of ids("warm", WARM_UP_CYCLES)) await cycle(c, id);
  const latencies = [];
  const cpu0 = cpuMs();
  const wall0 = nowMs();
  await Promise.all(lockIds.map(async (id) => {
    for (let i = 0; i < perId; i++) {
      const start = nowMs();
      await cycle(c, id);
      latencies.push(nowMs() - start);
    }
  }));
  const wallMs = nowMs() - wall0;
  const cpu = cpuMs() - cpu0;
  return { ...summaryMs(latencies), cycles_per_s: latencies.length / (wallMs / 1e3), cpu_ms_per_cycle: cpu / latencies.length };
}

// ---------------------------------------------------------------------------------------------
// Figure 3: handover. The holder (this process) releases while a persistent waiter process,
// fed one lock id per round on stdin, waits for that id; the handover runs from just before the
// release to the waiter holding, both on the machine's monotonic clock.

async function handoverRounds(name, rounds, { waitMs = HANDOVER_SETTLE_MS, waiterEndpoint = args.endpoint, heldBeforeMs = 0 } = {}) {
  const holder = client(name, args.endpoint);
  const waiter = childProcess.spawn(process.execPath, [__filename, "--role", "waiter", "--client", name, "--env", args.env,
    "--endpoint", waiterEndpoint, "--wait-timeout-ms", String(waitMs + 60000)], { stdio: ["pipe", "pipe", "inherit"] });
  const readLine = lineReader(waiter.stdout);
  const out = [];
  try {
    const ready = await readLine();
    if (ready !== "ready") throw new Error(`handover waiter (${name}): ${ready}`);
    for (const id of ids("handover", rounds)) {
      const lock = await holder.acquire(id);
      await sleep(heldBeforeMs);
      waiter.stdin.write(`${id}\n`);
      const [word, started] = (await readLine()).split(" ");
      if (word !== "waiting") throw new Error(`handover waiter (${name}): ${word}`);
      await sleep(Math.max(0, waitMs + Math.random() * RELEASE_SPREAD_MS - Number(monotonicNs() - BigInt(started)) / 1e6));
      const releasedAt = monotonicNs();
      let releaseFailed = 0;
      await holder.release(lock).catch((error) => {
        // dlc over SDK v3 reports a release that crossed its own heartbeat (its put carries the
        // guid the heartbeat replaced; over SDK v2 dlc ignores that failure). The lock then
        // stays held until its lease runs out: counted, and reported with the figure.
        if (!(error && error.name === "ConditionalCheckFailedException")) throw error;
        releaseFailed = 1;
      });
      let answer = await readLine();
      let gaveUp = 0;
      for (; answer === "gave up"; answer = await readLine()) gaveUp += 1;
      if (!/^\d+$/.test(answer)) throw new Error(`handover waiter (${name}): ${answer}`);
      out.push({ waitingNs: BigInt(started), releasedNs: releasedAt, handoverMs: Number(BigInt(answer) - releasedAt) / 1e6, gaveUp, releaseFailed });
    }
  } finally {
    waiter.stdin.end();
  }
  return out;
}

async function handover(name, rounds, waitMs = HANDOVER_SETTLE_MS, heldBeforeMs = 0) {
  const out = await handoverRounds(name, rounds, { waitMs, heldBeforeMs });
  return {
    ...summaryMs(out.map((r) => r.handoverMs)),
    gave_up: out.reduce((acc, r) => acc + r.gaveUp, 0),
    release_failed: out.reduce((acc, r) => acc + r.releaseFailed, 0),
  };
}

// ---------------------------------------------------------------------------------------------
// Figure B: waiting. One long wait through a counting proxy (what a waiter reads and writes),
// and handovers after a 1 s and a 20 s wait; every client and case side by side, on separate ids
// and processes. Each client keeps its defaults (poll interval, back-off): what users get.

const STEADY_AFTER_S = 10; // of the long wait: what a waiter costs once any fast start is over
// The waiter arrives at a lock held for a while, so that a release 1, 20 or 60 s later does not
// coincide with one of the holder's heartbeats (every 3.333 s from its acquisition: 20 s is six).
const HELD_BEFORE_WAIT_MS = 1500;

async function longWait(proxies, name, waitS) {
  const proxy = await proxies.open();
  const [round] = await handoverRounds(name, 1, { waitMs: waitS * 1000, waiterEndpoint: proxy.endpoint, heldBeforeMs: HELD_BEFORE_WAIT_MS });
  const { events, problems } = await proxies.events(proxy.port);
  const start = round.waitingNs;
  const end = round.releasedNs;
  const steadyStart = start + BigInt(STEADY_AFTER_S * 1e9);
  // The proxy's clock readings are whole nanoseconds, well inside a double's exact range.
  const [s, e, ss] = [start, end, steadyStart].map(Number);
  return {
    seconds: (e - s) / 1e9,
    while_waiting: summarize(events, s, e),
    steady_seconds: (e - ss) / 1e9,
    steady: summarize(events, ss, e),
    handover_ms: round.handoverMs,
    gave_up: round.gaveUp,
    release_failed: round.releaseFailed,
    proxy_problems: problems,
  };
}

async function waiting(proxies) {
  const names = Object.keys(CLIENTS);
  const jobs = names.map((name) => {
    const shortRounds = CLIENTS[name].lib === "native" ? args.shortWaitRounds : args.peerHandoverRounds;
    return Promise.all([
      longWait(proxies, name, args.waitSeconds),
      handover(name, shortRounds, 1000, HELD_BEFORE_WAIT_MS),
      handover(name, args.longWaitRounds, 20000, HELD_BEFORE_WAIT_MS),
    ]);
  });
  const results = await Promise.all(jobs);
  return Object.fromEntries(names.map((name, i) => [name, {
    long_wait: results[i][0], handover_after_1s: results[i][1], handover_after_20s: results[i][2],
  }]));
}

async function waiterRole() {
  // dlc-style waiters must not give up while they sleep out the holder's lease (a try per lease).
  const c = client(args.client, args.endpoint, { retryCount: 20 });
  // Warm (connection, credentials, JIT) before the first round: a cold first request can be
  // slower than the holder's settle time, and a dlc-style waiter that reads the item only after
  // the release takes over at once.
  await cycle(c, ids("waiter-warm", 1)[0]);
  process.stdout.write("ready\n");
  const readLine = lineReader(process.stdin);
  const ended = new Promise((resolve) => process.stdin.once("end", () => resolve(null)));
  for (;;) {
    const id = await Promise.race([readLine(), ended]);
    if (id === null) break;
    process.stdout.write(`waiting ${monotonicNs()}\n`);
    const deadline = nowMs() + args.waitTimeoutMs;
    for (;;) {
      try {
        const lock = await c.acquire(id, args.waitTimeoutMs);
        process.stdout.write(`${monotonicNs()}\n`);
        await c.release(lock);
      } catch (error) {
        // dlc over SDK v3 ends its wait at the first takeover put that fails (it recognises only
        // SDK v2's error.code): a caller has to call acquireLock again, so this waiter does, and
        // says so.
        if (error && error.name === "ConditionalCheckFailedException" && nowMs() < deadline) {
          process.stdout.write("gave up\n");
          continue;
        }
        process.stdout.write(`error: ${(error && (error.code || error.name)) || ""} ${(error && error.message) || error}\n`);
      }
      break;
    }
  }
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Figure 5: cold start in a fresh process.

async function coldRole() {
  const t0 = nowMs();
  const modules = load(args.client);
  const t1 = nowMs();
  const c = construct(args.client, modules, args.endpoint);
  const t2 = nowMs();
  await cycle(c, ids("cold", 1)[0]);
  const t3 = nowMs();
  process.stdout.write(JSON.stringify({ import: t1 - t0, client: t2 - t1, first_acquire_release: t3 - t2 }) + "\n");
  process.exit(0);
}

function child(role, name, extra = []) {
  const out = childProcess.execFileSync(process.execPath, [__filename, "--role", role, "--client", name, "--env", args.env, "--endpoint", args.endpoint, ...extra], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split("\n").pop());
}

function coldStart(name, runs) {
  const phases = { import: [], client: [], first_acquire_release: [] };
  for (let i = 0; i < runs; i++) {
    const start = nowMs();
    const r = child("cold", name);
    const processMs = nowMs() - start;
    for (const key of Object.keys(phases)) phases[key].push(r[key]);
    (phases.process ||= []).push(processMs);
  }
  return Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)]));
}

async function cyclesRole() {
  const c = construct(args.client, load(args.client), args.endpoint);
  if (args.readStats === "compare") {
    // The cost of reading stats(): plain runs and runs that also read a whole snapshot after
    // every cycle (far more often than an exporter: OpenTelemetry collects every 60 s by
    // default), taking turns in this one process, so that process-to-process variance stays out.
    const plain = [];
    const reading = [];
    const readingClient = { ...c, release: async (lock) => { await c.release(lock); c.native.stats(); } };
    await timedCycles(c, ids("sw", 1), args.ops);
    for (let round = 0; round < 3; round++) {
      plain.push((await timedCycles(c, ids(`sp${round}`, 1), args.ops)).cpu_ms_per_cycle);
      reading.push((await timedCycles(readingClient, ids(`sr${round}`, 1), args.ops)).cpu_ms_per_cycle);
    }
    process.stdout.write(JSON.stringify({ plain: median(plain), reading: median(reading), runs: 3 }) + "\n");
    process.exit(0);
  }
  const perId16 = Math.max(1, Math.floor(args.ops / 16)) * 4;
  const result = { 1: await timedCycles(c, ids("c1", 1), args.ops), 16: await timedCycles(c, ids("c16", 16), perId16) };
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Figure 6: one fresh process holding `many` heartbeating locks for `holdSeconds`.

async function manyRole() {
  const modules = load(args.client);
  const rssBefore = rssMb();
  const c = construct(args.client, modules, args.endpoint);
  const held = [];
  const lockIds = ids("many", args.many);
  // 16 acquisitions in flight at a time, so 1,000 locks take seconds, not minutes.
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < lockIds.length) held.push(await c.acquire(lockIds[next++]));
  }));
  const cpu0 = cpuMs();
  const wall0 = nowMs();
  await sleep(args.holdSeconds * 1000);
  const cpu = cpuMs() - cpu0;
  const wall = nowMs() - wall0;
  const result = { rss_mb: rssMb(), rss_before_mb: rssBefore, cpu_percent: (cpu / wall) * 100, lost: held.filter((lock) => c.lost(lock)).length };
  let i = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (i < held.length) await c.release(held[i++]).catch(() => {});
  }));
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Figure 7: installed sizes (a package with the packages it depends on, as npm installed them).

function dirBytes(dir, skipNodeModules) {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (skipNodeModules && entry.name === "node_modules") continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += dirBytes(full, false);
    else if (entry.isFile()) total += fs.statSync(full).size;
  }
  return total;
}

/** Bytes of `roots` and every package they depend on (dependencies, and optional ones that npm
 * installed), each package directory counted once. */
function installedBytes(roots) {
  const envDir = path.resolve(args.env);
  const seen = new Set();
  let total = 0;
  const resolveFrom = (fromDir, name) => {
    for (let dir = fromDir; dir.startsWith(envDir); dir = path.dirname(dir)) {
      const candidate = path.join(dir, "node_modules", name);
      if (fs.existsSync(path.join(candidate, "package.json"))) return fs.realpathSync(candidate);
      if (dir === envDir) break;
    }
    return null;
  };
  const visit = (dir) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    total += dirBytes(dir, true);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
      const found = resolveFrom(dir, name);
      if (found) visit(found);
      else if (!(pkg.optionalDependencies && name in pkg.optionalDependencies)) throw new Error(`sizes: ${name} (needed by ${dir}) is not installed`);
    }
  };
  for (const root of roots) {
    const found = resolveFrom(envDir, root);
    if (!found) throw new Error(`sizes: ${root} is not installed in ${envDir}`);
    visit(found);
  }
  return total;
}

function sizes() {
  const out = {};
  const tarballs = args.tarballs ? args.tarballs.split(",") : [];
  if (tarballs.length) {
    out["dynalease npm tarballs (main package + linux-x64-gnu platform package)"] = tarballs.reduce((sum, file) => sum + fs.statSync(file).size, 0);
  }
  const binding = path.dirname(envRequire.resolve("@dynalease/binding-linux-x64-gnu/package.json"));
  out["dynalease native addon (the .node file in the platform package)"] = fs.statSync(path.join(binding, "dynalease.linux-x64-gnu.node")).size;
  out["dynalease installed (with the platform package and joi)"] = installedBytes(["dynalease", "@dynalease/binding-linux-x64-gnu"]);
  out["dynamodb-lock-client + aws-sdk v2 installed"] = installedBytes(["dynamodb-lock-client", "aws-sdk"]);
  out["dynamodb-lock-client + SDK v3 (client-dynamodb, lib-dynamodb) installed"] = installedBytes(["dynamodb-lock-client", "@aws-sdk/client-dynamodb", "@aws-sdk/lib-dynamodb"]);
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const log = (message) => process.stderr.write(`node_bench: ${message}\n`);
  const { createTable } = envRequire("dynalease");
  await createTable(TABLE, { partitionKey: "id", endpoint: args.endpoint, region: REGION });
  await createTable("bench-kv", { partitionKey: "pk", sortKey: "sk", endpoint: args.endpoint, region: REGION });
  const names = Object.keys(CLIENTS);
  const slow = names.filter((name) => CLIENTS[name].lib !== "native");
  const results = {
    node_version: process.version, peer_handover_rounds: args.peerHandoverRounds, wait_seconds: args.waitSeconds,
    long_wait_rounds: args.longWaitRounds, steady_after_seconds: STEADY_AFTER_S, heartbeat_seconds: HEARTBEAT_MS / 1000, list_page: LIST_PAGE,
  };
  const proxies = startProxies();

  log("1. requests per cycle");
  results.requests_per_cycle = await requestsPerCycle(proxies, args.ops);
  log("A. capacity units per operation");
  results.capacity = await capacity(proxies, args.costOps);

  // Each client's cycles run `cycleRuns` times, every client once per round, so that a busy
  // moment of the machine falls on one run of each rather than on all runs of one; every
  // figure is the median of its runs (a run's CPU is a fraction of a second, and noisy).
  log("2/4. uncontended cycles");
  const cycleArgs = Object.fromEntries(names.map((name) => [name, [name, []]]));
  const cycleRuns = Object.fromEntries(Object.keys(cycleArgs).map((key) => [key, []]));
  for (let run = 0; run < args.cycleRuns; run++) {
    for (const [key, [name, extra]] of Object.entries(cycleArgs)) {
      cycleRuns[key].push(child("cycles", name, ["--ops", String(args.ops), ...extra]));
    }
  }
  results.cycles = {};
  for (const [key, runs] of Object.entries(cycleRuns)) {
    results.cycles[key] = {};
    for (const ids of Object.keys(runs[0])) {
      results.cycles[key][ids] = { runs: runs.length };
      for (const field of Object.keys(runs[0][ids])) results.cycles[key][ids][field] = median(runs.map((r) => r[ids][field]));
    }
  }

  log("4. the cost of reading stats()");
  results.stats_read = { "dynalease Promise API": child("cycles", "dynalease Promise API", ["--ops", String(args.ops), "--read-stats", "compare"]) };

  log("3. handover");
  results.handover = {};
  // The dlc-protocol waiters sleep out the holder's whole lease each round: their rounds run
  // side by side (separate lock ids and processes), so they cost one lease per round in all.
  const slowRuns = await Promise.all(slow.map((name) => handover(name, args.peerHandoverRounds)));
  slow.forEach((name, i) => { results.handover[name] = slowRuns[i]; });
  results.handover["dynalease Promise API"] = await handover("dynalease Promise API", args.handoverRounds);

  log(`B. waiting: one ${args.waitSeconds} s wait, handovers after 1 s and 20 s waits, side by side`);
  results.waiting = await waiting(proxies);
  proxies.close();

  log("5. cold start");
  results.cold_start = {};
  for (const name of names) results.cold_start[name] = coldStart(name, args.coldRuns);

  // The drop-ins and dlc, whose RSS ratio is a verdict, run `manyRuns` times, interleaved so
  // that a drift in the machine's memory or load falls on both; each figure is the median.
  log(`6. ${args.many} locks for ${args.holdSeconds} s, one client at a time`);
  results.many_locks = { count: args.many, hold_seconds: args.holdSeconds };
  const manyRuns = Object.fromEntries(names.map((name) => [name, []]));
  for (let run = 0; run < args.manyRuns; run++) {
    for (const name of names.filter((n) => run === 0 || CLIENTS[n].lib !== "native")) {
      manyRuns[name].push(child("many", name, ["--many", String(args.many), "--hold-seconds", String(args.holdSeconds)]));
    }
  }
  for (const name of names) {
    const runs = manyRuns[name];
    results.many_locks[name] = {
      runs: runs.length,
      rss_mb: median(runs.map((r) => r.rss_mb)),
      rss_mb_range: [Math.min(...runs.map((r) => r.rss_mb)), Math.max(...runs.map((r) => r.rss_mb))],
      rss_before_mb: median(runs.map((r) => r.rss_before_mb)),
      cpu_percent: median(runs.map((r) => r.cpu_percent)),
      lost: Math.max(...runs.map((r) => r.lost)),
    };
  }

  results.sizes = sizes();
  process.stdout.write(JSON.stringify(results, null, 2) + "\n");
  process.exit(0);
}

const roles = { main, waiter: waiterRole, cold: coldRole, cycles: cyclesRole, many: manyRole };
roles[args.role]().catch((error) => {
  process.stderr.write(`node_bench.js (${args.role}${args.client ? `, ${args.client}` : ""}): ${(error && error.stack) || error}\n`);
  process.exit(1);
});
