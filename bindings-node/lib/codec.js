"use strict";
// JS values <-> DynamoDB JSON ({S}, {N}, {B: base64}, {BOOL}, {NULL}, {L}, {M}, sets), the form in
// which values cross to the native addon (see src/codec.rs): exact for numbers and bytes.

const { DynaleaseError } = require("./errors.js");

const isBytes = (v) => Buffer.isBuffer(v) || v instanceof Uint8Array;

function configError(message) {
  return new DynaleaseError("ERR_DYNALEASE_CONFIG", message);
}

// Stops cycles: the core checks DynamoDB's exact nesting limit, and nothing deeper than it can
// be stored.
const MAX_NESTING = require("../native.js").MAX_NESTING_DEPTH;

function toDynamo(value, depth = 0) {
  if (depth > MAX_NESTING) {
    throw configError(`the value is nested more than ${MAX_NESTING} levels deep (or contains itself); DynamoDB stores at most ${MAX_NESTING}`);
  }
  if (value === null || value === undefined) return { NULL: true };
  switch (typeof value) {
    case "string": return { S: value };
    case "boolean": return { BOOL: value };
    case "bigint": return { N: value.toString() };
    case "number":
      if (!Number.isFinite(value)) throw configError(`${value} cannot be stored: DynamoDB numbers are finite`);
      return { N: String(value) };
    default: break;
  }
  if (isBytes(value)) return { B: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  if (Array.isArray(value)) return { L: value.map((v) => toDynamo(v, depth + 1)) };
  // AWS SDK v2 DocumentClient sets (createSet) and SDK v3 Sets.
  if (value && value.wrapperName === "Set" && Array.isArray(value.values)) return setToDynamo(value.values, value.type);
  if (value instanceof Set) return setToDynamo([...value]);
  // SDK v3 NumberValue (wrapNumbers): an exact decimal string.
  if (value && value.constructor && value.constructor.name === "NumberValue" && typeof value.value === "string") return { N: value.value };
  // Only plain objects are maps: a Date, Map or class instance would otherwise be stored as its
  // own enumerable properties, usually {}, and silently lose what it held.
  if (typeof value === "object" && isPlainObject(value)) {
    const M = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) M[k] = toDynamo(v, depth + 1);
    }
    return { M };
  }
  const kind = typeof value === "object" ? `a ${value.constructor && value.constructor.name ? value.constructor.name : "non-plain object"}` : `a ${typeof value}`;
  const hint = value instanceof Date ? " (store date.toISOString() or date.getTime())" : value instanceof Map ? " (store Object.fromEntries(map))" : "";
  throw configError(`${kind} cannot be stored; use plain objects, arrays, strings, numbers, bigints, booleans, null, Buffers or Sets${hint}`);
}

function isPlainObject(value) {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function setToDynamo(values, type) {
  // DynamoDB sets are non-empty and of one type: numbers, strings or bytes.
  if (values.length === 0) throw configError("an empty Set cannot be stored: DynamoDB sets have at least one element; store an array instead");
  const kind = type === "Number" || typeof values[0] === "number" || typeof values[0] === "bigint" ? "number"
    : type === "Binary" || isBytes(values[0]) ? "bytes" : "string";
  const ofKind = { number: (v) => typeof v === "number" || typeof v === "bigint", bytes: isBytes, string: (v) => typeof v === "string" }[kind];
  if (!values.every(ofKind)) throw configError(`a Set mixing ${kind}s with other types cannot be stored: DynamoDB sets hold one type (numbers, strings or bytes); store an array instead`);
  if (kind === "number") {
    for (const v of values) if (typeof v === "number" && !Number.isFinite(v)) throw configError(`${v} cannot be stored: DynamoDB numbers are finite`);
    return { NS: values.map(String) };
  }
  if (kind === "bytes") return { BS: values.map((b) => Buffer.from(b).toString("base64")) };
  return { SS: values };
}

// Numbers for the Promise API: exact. Integers beyond 2^53 become BigInts, others numbers.
function exactNumber(text) {
  if (/^-?\d+$/.test(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : BigInt(text);
  }
  return Number(text);
}

function fromDynamo(value) {
  const [tag, inner] = Object.entries(value)[0];
  switch (tag) {
    case "S": return inner;
    case "N": return exactNumber(inner);
    case "B": return Buffer.from(inner, "base64");
    case "BOOL": return inner;
    case "NULL": return null;
    case "L": return inner.map(fromDynamo);
    case "M": return itemFromDynamo(inner);
    case "SS": return new Set(inner);
    case "NS": return new Set(inner.map(exactNumber));
    case "BS": return new Set(inner.map((b) => Buffer.from(b, "base64")));
    default: throw new Error(`unknown DynamoDB type ${tag}`);
  }
}

function itemFromDynamo(item) {
  const out = {};
  for (const [k, v] of Object.entries(item)) out[k] = fromDynamo(v);
  return out;
}

function itemToDynamo(item) {
  const out = {};
  for (const [k, v] of Object.entries(item)) {
    if (v !== undefined) out[k] = toDynamo(v);
  }
  return out;
}

// A lock id of the Promise API: a key value, or [partition, sort] for a table with a sort key.
function keyToDynamo(value, what) {
  if (typeof value === "string" || typeof value === "bigint" || (typeof value === "number" && Number.isFinite(value)) || isBytes(value)) {
    return toDynamo(value);
  }
  throw configError(`${what} must be a string, a number, a bigint or a Buffer`);
}

function lockIdToText(id) {
  if (Array.isArray(id)) {
    if (id.length !== 2) throw configError(`a lock id array must be [partition, sort], got ${id.length} items`);
    return JSON.stringify({ partition: keyToDynamo(id[0], "the lock id's partition part"), sort: keyToDynamo(id[1], "the lock id's sort part") });
  }
  return JSON.stringify({ partition: keyToDynamo(id, "lock id"), sort: null });
}

function lockIdFromText(text) {
  const { partition, sort } = JSON.parse(text);
  return sort ? [fromDynamo(partition), fromDynamo(sort)] : fromDynamo(partition);
}

module.exports = { isBytes, toDynamo, fromDynamo, itemToDynamo, itemFromDynamo, lockIdToText, lockIdFromText };
