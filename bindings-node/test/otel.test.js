"use strict";
// The OpenTelemetry bridge (`require("dynalease/otel")`): observable counters read from stats()
// at each collection, checked with @opentelemetry/sdk-metrics' in-memory exporter; and the
// optional peer dependency: `require("dynalease")` never loads @opentelemetry/api, and without
// it the bridge says what to install (or works with a meter from elsewhere).

const { describe, test, before } = require("node:test");
const { execFile } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { promisify } = require("node:util");
const api = require("@opentelemetry/api");
const { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } = require("@opentelemetry/sdk-metrics");
const { assert, dynalease, uniqueName } = require("./helpers.js");
const { instrument } = require("../otel.js");

const { LockClient, KVStore, createTable, codes } = dynalease;
const ROOT = path.resolve(__dirname, "..", "..");

/** A meter provider whose metrics are exported, cumulatively, only when `collect()` asks. */
function metricsPipeline() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // An interval nobody waits for: forceFlush() collects and exports.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 24 * 3600 * 1000 });
  const provider = new MeterProvider({ readers: [reader] });
  return {
    provider,
    meter: provider.getMeter("test"),
    /** Collects now: Map of instrument name → its data points ({ attributes, value }). */
    async collect() {
      exporter.reset();
      await reader.forceFlush();
      const metrics = exporter.getMetrics().flatMap((resource) => resource.scopeMetrics).flatMap((scope) => scope.metrics);
      return new Map(metrics.map((metric) => [metric.descriptor.name, metric.dataPoints.map(({ attributes, value }) => ({ attributes, value }))]));
    },
  };
}

/** The core's snake_case name of a stats() key. */
const snake = (key) => key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

/** The one data point of `name` whose attributes include `attributes`. */
function point(collected, name, attributes) {
  const points = (collected.get(name) || []).filter((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));
  assert.equal(points.length, 1, `${name} ${JSON.stringify(attributes)}: ${JSON.stringify(collected.get(name))}`);
  return points[0];
}

/** Every instrument of `stats` (one client, or several added together) equals the stats. */
function assertMatches(collected, prefix, attributes, stats) {
  const sum = (pick) => stats.reduce((total, s) => total + pick(s), 0);
  for (const key of Object.keys(stats[0])) {
    if (key === "acquireWait") continue;
    assert.equal(point(collected, `${prefix}${snake(key)}`, attributes).value, sum((s) => s[key]), key);
  }
  assert.equal(point(collected, `${prefix}acquire_wait.sum`, attributes).value, sum((s) => s.acquireWait.sumMs));
  const bounds = stats[0].acquireWait.boundsMs;
  let cumulative = 0;
  bounds.forEach((bound, i) => {
    cumulative += sum((s) => s.acquireWait.counts[i]);
    assert.equal(point(collected, `${prefix}acquire_wait.bucket`, { ...attributes, le: String(bound) }).value, cumulative, `le ${bound}`);
  });
  assert.equal(point(collected, `${prefix}acquire_wait.bucket`, { ...attributes, le: "+Inf" }).value, sum((s) => s.acquisitions));
}

describe("instrument", () => {
  let memory;
  before(async () => {
    memory = `memory://${uniqueName("otel")}`;
    await createTable("locks", { endpoint: memory });
    await createTable("kv-store", { partitionKey: "pk", sortKey: "sk", endpoint: memory });
  });

  test("observable counters of every count, read at each collection, with each client's attributes", async () => {
    const pipeline = metricsPipeline();
    try {
      const locks = new LockClient({ table: "locks", endpoint: memory });
      const kv = new KVStore({ table: "kv-store", partition: "agents", endpoint: memory });
      instrument({ orders: locks, cache: kv }, { meter: pipeline.meter });
      const lockAttributes = { "dynalease.table": "locks", "dynalease.client": "orders" };
      const kvAttributes = { "dynalease.table": "kv-store", "dynalease.partition": "agents", "dynalease.client": "cache" };

      // Before any request: all zero, yet every instrument is there.
      let collected = await pipeline.collect();
      assertMatches(collected, "dynalease.", lockAttributes, [locks.stats()]);
      assert.equal(point(collected, "dynalease.acquisitions", lockAttributes).value, 0);

      await (await locks.acquire("job")).release();
      await (await locks.acquire("job")).release();
      await kv.put("agent/1", { state: "idle" });
      await kv.get("agent/1");
      collected = await pipeline.collect();
      assertMatches(collected, "dynalease.", lockAttributes, [locks.stats()]);
      assertMatches(collected, "dynalease.", kvAttributes, [kv.stats()]);
      assert.equal(point(collected, "dynalease.acquisitions", lockAttributes).value, 2);
      assert.equal(point(collected, "dynalease.kv_writes", kvAttributes).value, 1);
      assert.equal(point(collected, "dynalease.kv_reads", kvAttributes).value, 1);

      // Read again at the next collection.
      await (await locks.acquire("job")).release();
      collected = await pipeline.collect();
      assert.equal(point(collected, "dynalease.acquisitions", lockAttributes).value, 3);
      assert.equal(point(collected, "dynalease.releases", lockAttributes).value, 3);
    } finally {
      await pipeline.provider.shutdown();
    }
  });

  test("clients with the same attributes are added together; the prefix names the instruments", async () => {
    const pipeline = metricsPipeline();
    try {
      const one = new LockClient({ table: "locks", endpoint: memory });
      const two = new LockClient({ table: "locks", endpoint: memory, failClosed: true });
      instrument([one, two], { meter: pipeline.meter, prefix: "app.locks." });
      await (await one.acquire("a")).release();
      await (await two.acquire("b")).release();
      await (await two.acquire("c")).release();
      const collected = await pipeline.collect();
      assert.ok([...collected.keys()].every((name) => name.startsWith("app.locks.")), [...collected.keys()].join(", "));
      assertMatches(collected, "app.locks.", { "dynalease.table": "locks" }, [one.stats(), two.stats()]);
      assert.equal(point(collected, "app.locks.acquisitions", { "dynalease.table": "locks" }).value, 3);
      // One client alone, and no prefix at all.
      const bare = metricsPipeline();
      try {
        instrument(one, { meter: bare.meter, prefix: "" });
        assert.equal(point(await bare.collect(), "acquisitions", { "dynalease.table": "locks" }).value, 1);
      } finally {
        await bare.provider.shutdown();
      }
    } finally {
      await pipeline.provider.shutdown();
    }
  });

  test("stop() unregisters: the clients are no longer read", async () => {
    const pipeline = metricsPipeline();
    try {
      const locks = new LockClient({ table: "locks", endpoint: memory });
      let reads = 0;
      const counted = new Proxy(locks, {
        get(target, property) {
          if (property === "stats") return () => { reads += 1; return target.stats(); };
          const value = Reflect.get(target, property, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
        getPrototypeOf: () => LockClient.prototype,
      });
      const registered = instrument(counted, { meter: pipeline.meter });
      await pipeline.collect();
      const afterOne = reads;
      assert.ok(afterOne >= 2, "read at registration and at the collection");
      registered.stop();
      registered.stop();
      await pipeline.collect();
      assert.equal(reads, afterOne, "no read after stop()");
    } finally {
      await pipeline.provider.shutdown();
    }
  });

  test("without a meter, the global meter provider's meter \"dynalease\"", async () => {
    const pipeline = metricsPipeline();
    api.metrics.setGlobalMeterProvider(pipeline.provider);
    try {
      const locks = new LockClient({ table: "locks", endpoint: memory });
      const registered = instrument(locks);
      await (await locks.acquire("global")).release();
      const exported = await pipeline.collect();
      assert.equal(point(exported, "dynalease.acquisitions", { "dynalease.table": "locks" }).value, 1);
      registered.stop();
    } finally {
      api.metrics.disable();
      await pipeline.provider.shutdown();
    }
  });

  test("bad input is refused before anything is registered", () => {
    const locks = new LockClient({ table: "locks", endpoint: memory });
    const pipeline = metricsPipeline();
    const clients = "instrument: clients must be a LockClient or KVStore, an array of them, or an object of them by name";
    const cases = [
      [() => instrument(null), `${clients} (got null)`],
      [() => instrument([]), `${clients} (got an array)`],
      [() => instrument({}), `${clients} (got object)`],
      [() => instrument([locks, {}]), `${clients} (got an array)`],
      [() => instrument({ orders: "locks" }), `${clients} (got object)`],
      [() => instrument("locks"), `${clients} (got string)`],
      [() => instrument(locks, null), "instrument needs an options object"],
      [() => instrument(locks, { meter: pipeline.meter, attributes: {} }), 'instrument: unknown option "attributes"; the options are meter, prefix'],
      [() => instrument(locks, { meter: "meter" }), "instrument: meter must be an object (got string)"],
      [() => instrument(locks, { meter: {} }), "instrument: meter must be an OpenTelemetry Meter"],
      [() => instrument(locks, { meter: pipeline.meter, prefix: 7 }), "instrument: prefix must be a string (got number)"],
      [() => instrument(locks, { meter: pipeline.meter, prefix: "9lives." }), 'instrument: prefix "9lives." makes "9lives.acquisitions", which is not an OpenTelemetry instrument name'],
      [() => instrument(locks, { meter: pipeline.meter, prefix: "my app." }), 'instrument: prefix "my app." makes "my app.acquisitions"'],
    ];
    for (const [call, message] of cases) {
      assert.throws(call, (error) => {
        assert.equal(error.code, codes.CONFIG, error.stack);
        assert.ok(error.message.startsWith(message), `${error.message}\n  expected: ${message}`);
        return true;
      });
    }
    return pipeline.provider.shutdown();
  });
});

describe("@opentelemetry/api is an optional peer dependency", () => {
  /** Runs `script` in a child node, in a project where `dynalease` is installed. */
  async function inProject(script, preload) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dynalease-otel-"));
    try {
      fs.mkdirSync(path.join(dir, "node_modules"));
      fs.symlinkSync(ROOT, path.join(dir, "node_modules", "dynalease"), "dir");
      fs.writeFileSync(path.join(dir, "main.js"), script);
      const args = [];
      if (preload) {
        fs.writeFileSync(path.join(dir, "preload.js"), preload);
        args.push("--require", path.join(dir, "preload.js"));
      }
      const { stdout } = await promisify(execFile)(process.execPath, [...args, path.join(dir, "main.js")], { cwd: dir, timeout: 90000 });
      return JSON.parse(stdout);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  test('require("dynalease") and its whole Promise API never load it; the bridge loads it when used', async () => {
    const seen = await inProject(`
      const loaded = () => Object.keys(require.cache).some((file) => file.includes("@opentelemetry"));
      const seen = {};
      (async () => {
        const { LockClient, KVStore, createTable, toEmf } = require("dynalease");
        await createTable("locks", { endpoint: "memory://t" });
        const locks = new LockClient({ table: "locks", endpoint: "memory://t" });
        await (await locks.acquire("a")).release();
        toEmf(locks.stats(), { namespace: "N" });
        new KVStore({ table: "locks", partition: "p", endpoint: "memory://t" }).stats();
        seen.promiseApi = loaded();
        const { instrument } = require("dynalease/otel");
        seen.bridgeRequired = loaded();
        instrument(locks).stop();
        seen.bridgeUsed = loaded();
        console.log(JSON.stringify(seen));
      })().catch((error) => { console.error(error); process.exit(1); });
    `);
    assert.deepEqual(seen, { promiseApi: false, bridgeRequired: false, bridgeUsed: true });
  });

  test("without it, instrument says what to install, and still works with a meter from elsewhere", async () => {
    // As if @opentelemetry/api were not installed.
    const missing = `
      const Module = require("module");
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        if (request === "@opentelemetry/api") {
          const error = new Error("Cannot find module '@opentelemetry/api'");
          error.code = "MODULE_NOT_FOUND";
          throw error;
        }
        return resolve.call(this, request, ...rest);
      };
    `;
    const seen = await inProject(`
      const { LockClient } = require("dynalease");
      const { instrument } = require("dynalease/otel");
      const locks = new LockClient({ table: "locks", endpoint: "memory://t" });
      const seen = {};
      try { instrument(locks); } catch (error) { seen.error = [error.code, error.message]; }
      // A meter of another telemetry library: just the two calls the bridge makes.
      const names = [];
      let callback;
      const meter = {
        createObservableCounter: (name, options) => { names.push([name, options]); return { name }; },
        addBatchObservableCallback: (cb) => { callback = cb; },
        removeBatchObservableCallback: () => {},
      };
      instrument(locks, { meter });
      const observed = {};
      callback({ observe: (counter, value, attributes) => { if (!attributes.le) observed[counter.name] = value; } });
      seen.names = names.length;
      seen.options = names.find(([name]) => name === "dynalease.acquire_wait.sum")[1];
      seen.acquisitions = observed["dynalease.acquisitions"];
      console.log(JSON.stringify(seen));
    `, missing);
    assert.deepEqual(seen.error, [codes.CONFIG, "instrument: @opentelemetry/api is not installed: npm install @opentelemetry/api, or pass { meter }"]);
    assert.equal(seen.names, Object.keys(new LockClient({ table: "locks", endpoint: "memory://t" }).stats()).length - 1 + 2);
    assert.deepEqual(seen.options, { unit: "ms" }, "no valueType without the API");
    assert.equal(seen.acquisitions, 0);
  });
});
