"use strict";
// What a Promise API client did: `stats()` as a frozen plain object, and `toEmf`, the CloudWatch
// embedded metric format of it (or of what happened since an earlier one) for AWS Lambda. The
// core names and counts everything (`dynalease::stats`); here its snake_case counter names
// become camelCase keys, mechanically, so no counter is named twice.

const { callNative, codes, DynaleaseError } = require("./errors.js");
const { checkOptions, describe } = require("./options.js");

// The native snapshot behind each object stats() returned, and the client it came from (for
// `since`, which only means something between two snapshots of one client).
const origins = new WeakMap();

/** `lost_lease_expired` → `lostLeaseExpired`. */
function camelCase(name) {
  return name.replace(/_([a-z0-9])/g, (_, next) => next.toUpperCase());
}

/** The object `client.stats()` returns, from the native snapshot. */
function statsFrom(snapshot, client) {
  const stats = {};
  for (const { name, value } of snapshot.counters) stats[camelCase(name)] = value;
  stats.readUnits = snapshot.readUnits;
  stats.writeUnits = snapshot.writeUnits;
  const { boundsMs, counts, sumMs } = snapshot.acquireWait;
  stats.acquireWait = Object.freeze({ boundsMs: Object.freeze(boundsMs), counts: Object.freeze(counts), sumMs });
  origins.set(Object.freeze(stats), { snapshot, client });
  return stats;
}

/** The native snapshot and client of a stats() object, or of a client (its stats now). */
function originOf(what, source) {
  const known = source !== null && typeof source === "object" ? origins.get(source) : undefined;
  if (known) return known;
  if (source !== null && typeof source === "object" && typeof source.stats === "function") {
    const fresh = origins.get(source.stats());
    if (fresh) return fresh;
  }
  throw new DynaleaseError(codes.CONFIG, `${what} takes what stats() returned, or the LockClient or KVStore itself (got ${describe(source)})`);
}

/** @internal The core's counters of a stats() object, by their snake_case names (for bridges). */
function countersOf(stats) {
  return originOf("countersOf", stats).snapshot.counters;
}

const EMF_OPTIONS = { namespace: "string", dimensions: "object", since: "object" };

/**
 * One CloudWatch embedded-metric-format document (a JSON line to print to a Lambda function's
 * log) of `source`: what `stats()` returned, or a client (its counts now). With `since` (an
 * earlier `stats()` of the same client), the counts are what happened in between.
 */
function toEmf(source, options) {
  const { snapshot, client } = originOf("toEmf", source);
  const { namespace, dimensions = {}, since } = checkOptions("toEmf", options, EMF_OPTIONS, ["namespace"]);
  if (Array.isArray(dimensions)) throw new DynaleaseError(codes.CONFIG, "toEmf: dimensions must be an object of names to values ({ Service: \"orders\" })");
  const named = Object.entries(dimensions).map(([name, value]) => {
    if (typeof value !== "string") throw new DynaleaseError(codes.CONFIG, `toEmf: dimensions.${name} must be a string (got ${describe(value)})`);
    return { name, value };
  });
  let counts = snapshot;
  if (since !== undefined) {
    const earlier = origins.get(since);
    if (!earlier) throw new DynaleaseError(codes.CONFIG, "toEmf: since must be what stats() returned earlier");
    if (earlier.client !== client) throw new DynaleaseError(codes.CONFIG, "toEmf: since must be an earlier stats() of the same client");
    counts = snapshot.since(earlier.snapshot);
  }
  return callNative(() => counts.toEmf(namespace, named, Date.now()));
}

module.exports = { camelCase, countersOf, statsFrom, toEmf };
