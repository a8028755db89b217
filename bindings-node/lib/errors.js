"use strict";
// Errors of the Promise API: `Error`s with a stable `code` (the core's ErrorKind::code()). The
// native addon sends the code as a "[CODE] " prefix of the message (src/errors.rs); this is the
// one place that turns it into `err.code`.

// By name, from the core (CONFIG, LOCK_LOST, ...). OUTCOME_UNKNOWN is a write that got no
// answer and could not be resolved: it may have been applied; it is never used for a write
// that certainly did not happen.
const codes = Object.freeze(require("../native.js").errorCodes());

class DynaleaseError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = "DynaleaseError";
    this.code = code;
  }
}

const TAGGED = /^\[([A-Z_]+)\] ([\s\S]*)$/;

/** A native rejection to a DynaleaseError (anything else passes through unchanged). */
function fromNative(error) {
  const match = error && typeof error.message === "string" ? TAGGED.exec(error.message) : null;
  if (!match) return error;
  if (match[1] === "ABORT_ERR") return error;
  const mapped = new DynaleaseError(match[1], match[2]);
  // Keep the stack of the JS call that failed rather than the native frame.
  Error.captureStackTrace(mapped, fromNative);
  return mapped;
}

/** Runs a native call, converting synchronous throws and rejections. */
function callNative(fn) {
  let result;
  try {
    result = fn();
  } catch (error) {
    throw fromNative(error);
  }
  if (result && typeof result.then === "function") {
    return result.then(undefined, (error) => { throw fromNative(error); });
  }
  return result;
}

module.exports = { codes, DynaleaseError, fromNative, callNative };
