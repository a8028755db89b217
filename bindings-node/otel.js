"use strict";
// `require("dynalease/otel")`: OpenTelemetry metrics of dynalease clients. `instrument` registers
// one observable counter per count of `stats()` on an OpenTelemetry meter; each collection reads
// every client's stats() once. Only this file touches @opentelemetry/api (an optional peer
// dependency), and `require("dynalease")` never loads it.
//
// Instruments (with the default prefix "dynalease."): one per core counter, by the core's
// snake_case name (dynalease.acquisitions, dynalease.lost_lease_expired, ...);
// dynalease.read_units and dynalease.write_units (capacity units); dynalease.acquire_wait.sum
// (ms) and dynalease.acquire_wait.bucket, the waits of at most `le` ms (cumulative, as
// Prometheus buckets are; le="+Inf" counts every acquisition). Attributes: dynalease.table, and
// dynalease.partition for a KVStore, and dynalease.client for clients passed by name. Clients
// with the same attributes are added together.

const { KVStore, LockClient } = require("./lib/client.js");
const { codes, DynaleaseError } = require("./lib/errors.js");
const { checkOptions, describe } = require("./lib/options.js");
const { countersOf } = require("./lib/stats.js");

const INSTRUMENT_OPTIONS = { meter: "object", prefix: "string" };
// OpenTelemetry's instrument-name grammar, which a prefix must keep (an empty prefix is allowed).
const INSTRUMENT_NAME = /^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$/;

/** @opentelemetry/api, or null when it is not installed. */
function openTelemetryApi() {
  try {
    return require("@opentelemetry/api");
  } catch (error) {
    if (error && error.code === "MODULE_NOT_FOUND" && String(error.message).includes("@opentelemetry/api")) return null;
    throw error;
  }
}

/** `[{ client, attributes }]` from a client, an array of clients, or an object of them by name. */
function sourcesOf(clients) {
  const isClient = (c) => c instanceof LockClient || c instanceof KVStore;
  let named;
  if (isClient(clients)) named = [[null, clients]];
  else if (Array.isArray(clients)) named = clients.map((client) => [null, client]);
  else if (clients !== null && typeof clients === "object") named = Object.entries(clients);
  else named = [];
  if (named.length === 0 || !named.every(([, client]) => isClient(client))) {
    throw new DynaleaseError(
      codes.CONFIG,
      `instrument: clients must be a LockClient or KVStore, an array of them, or an object of them by name (got ${describe(clients)})`,
    );
  }
  return named.map(([name, client]) => {
    const attributes = { "dynalease.table": client.table };
    if (client instanceof KVStore) attributes["dynalease.partition"] = client.partition;
    if (name !== null) attributes["dynalease.client"] = name;
    return { client, attributes };
  });
}

/** The sources grouped by their attributes: OpenTelemetry takes one value per attribute set. */
function groupsOf(sources) {
  const groups = new Map();
  for (const { client, attributes } of sources) {
    const key = JSON.stringify(Object.entries(attributes).sort());
    if (!groups.has(key)) groups.set(key, { attributes, clients: [] });
    groups.get(key).clients.push(client);
  }
  return [...groups.values()];
}

/**
 * Registers observable counters of `clients`' stats on `meter` (default: the global meter
 * provider's meter "dynalease"). Returns `{ stop() }`, which unregisters them.
 */
function instrument(clients, options = {}) {
  const { meter: given, prefix = "dynalease." } = checkOptions("instrument", options, INSTRUMENT_OPTIONS);
  const groups = groupsOf(sourcesOf(clients));
  const api = openTelemetryApi();
  let meter = given;
  if (meter === undefined) {
    if (api === null) {
      throw new DynaleaseError(codes.CONFIG, "instrument: @opentelemetry/api is not installed: npm install @opentelemetry/api, or pass { meter }");
    }
    meter = api.metrics.getMeter("dynalease", require("../package.json").version);
  }
  if (typeof meter.createObservableCounter !== "function" || typeof meter.addBatchObservableCallback !== "function") {
    throw new DynaleaseError(codes.CONFIG, "instrument: meter must be an OpenTelemetry Meter (metrics.getMeter(name), from @opentelemetry/api 1.3 or later)");
  }
  const nameOf = (name) => {
    const full = `${prefix}${name}`;
    if (!INSTRUMENT_NAME.test(full)) {
      throw new DynaleaseError(codes.CONFIG, `instrument: prefix ${JSON.stringify(prefix)} makes ${JSON.stringify(full)}, which is not an OpenTelemetry instrument name (a letter, then letters, digits, '_', '.', '-' or '/')`);
    }
    return full;
  };
  // ValueType is a plain enum of the API; without the API (a meter from elsewhere) it is left out.
  const int = api ? { valueType: api.ValueType.INT } : {};
  const double = api ? { valueType: api.ValueType.DOUBLE } : {};

  // The counters' names come from the core, through a client's stats (zero before its first call).
  const counters = countersOf(groups[0].clients[0].stats()).map(({ name }) => [name, meter.createObservableCounter(nameOf(name), int)]);
  const readUnits = meter.createObservableCounter(nameOf("read_units"), { unit: "{capacity_unit}", ...double });
  const writeUnits = meter.createObservableCounter(nameOf("write_units"), { unit: "{capacity_unit}", ...double });
  const waitSum = meter.createObservableCounter(nameOf("acquire_wait.sum"), { unit: "ms", ...double });
  const waitBuckets = meter.createObservableCounter(nameOf("acquire_wait.bucket"), { unit: "{acquisition}", ...int });
  const observables = [...counters.map(([, counter]) => counter), readUnits, writeUnits, waitSum, waitBuckets];

  const callback = (result) => {
    for (const { attributes, clients: members } of groups) {
      const all = members.map((client) => client.stats());
      const total = (pick) => all.reduce((sum, stats) => sum + pick(stats), 0);
      const raw = all.map(countersOf);
      counters.forEach(([, counter], i) => result.observe(counter, raw.reduce((sum, values) => sum + values[i].value, 0), attributes));
      result.observe(readUnits, total((s) => s.readUnits), attributes);
      result.observe(writeUnits, total((s) => s.writeUnits), attributes);
      result.observe(waitSum, total((s) => s.acquireWait.sumMs), attributes);
      const { boundsMs } = all[0].acquireWait;
      let cumulative = 0;
      for (let i = 0; i <= boundsMs.length; i += 1) {
        cumulative += total((s) => s.acquireWait.counts[i]);
        result.observe(waitBuckets, cumulative, { ...attributes, le: i < boundsMs.length ? String(boundsMs[i]) : "+Inf" });
      }
    }
  };
  meter.addBatchObservableCallback(callback, observables);
  let stopped = false;
  return {
    /** Unregisters the callback: the clients are no longer read. */
    stop() {
      if (stopped) return;
      stopped = true;
      meter.removeBatchObservableCallback(callback, observables);
    },
  };
}

module.exports = { instrument };
