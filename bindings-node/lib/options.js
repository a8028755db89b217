"use strict";
// Checks of the options objects and arguments the Promise API, its stats and the OpenTelemetry
// bridge take: the type of each, before anything reaches the native addon (which checks the
// values). Each failure is an ERR_DYNALEASE_CONFIG error naming the call and the option.

const { codes, DynaleaseError } = require("./errors.js");

function describe(value) {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

/** `value` if it is of `type` (or absent: then null); a CONFIG error naming the option if not. */
function typed(what, name, value, type) {
  if (value === undefined || value === null) return null;
  if (typeof value !== type) {
    const article = /^[aeiou]/.test(type) ? "an" : "a";
    throw new DynaleaseError(codes.CONFIG, `${what}: ${name} must be ${article} ${type} (got ${describe(value)})`);
  }
  return value;
}

function checkSignal(signal) {
  if (signal !== undefined && signal !== null && !(typeof signal.aborted === "boolean" && typeof signal.addEventListener === "function")) {
    throw new DynaleaseError(codes.CONFIG, "signal must be an AbortSignal");
  }
}

// Unknown options are mistakes (a typo silently ignored would change lock behaviour), and so are
// options of the wrong type. Types: a typeof name, "any" (a storable value), "signal" (an
// AbortSignal).
function checkOptions(what, options, allowed, required = []) {
  if (options === null || typeof options !== "object") {
    throw new DynaleaseError(codes.CONFIG, `${what} needs an options object`);
  }
  for (const [key, value] of Object.entries(options)) {
    if (!Object.hasOwn(allowed, key)) {
      throw new DynaleaseError(codes.CONFIG, `${what}: unknown option ${JSON.stringify(key)}; the options are ${Object.keys(allowed).join(", ")}`);
    }
    if (allowed[key] === "signal") checkSignal(value);
    else if (allowed[key] !== "any") typed(what, key, value, allowed[key]);
  }
  for (const key of required) {
    if (typeof options[key] !== "string") throw new DynaleaseError(codes.CONFIG, `${what}: ${key} is required (a string)`);
  }
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined && v !== null));
}

module.exports = { checkOptions, checkSignal, describe, typed };
