"use strict";
// The public API of the `dynalease` npm package.
//
// - FailOpen, FailClosed, Lock: a drop-in replacement for dynamodb-lock-client 0.7.3, running
//   through the caller's own DynamoDB client (lib/dlc.js).
// - LockClient, KVStore, createTable: the Promise API on the native transport (lib/client.js),
//   and toEmf, the CloudWatch embedded metric format of their stats() (lib/stats.js).
//
// The OpenTelemetry bridge is `require("dynalease/otel")` (otel.js), so that this file never
// loads @opentelemetry/api.
//
// The Promise API is loaded when first used, so a program that swapped dynamodb-lock-client
// for the drop-in pays at `require` only for what the drop-in needs.

const dlc = require("./lib/dlc.js");
const { codes, DynaleaseError } = require("./lib/errors.js");

let client;
const promiseApi = () => (client ??= require("./lib/client.js"));

module.exports = {
  FailOpen: dlc.FailOpen,
  FailClosed: dlc.FailClosed,
  Lock: dlc.Lock,
  get LockClient() {
    return promiseApi().LockClient;
  },
  get KVStore() {
    return promiseApi().KVStore;
  },
  get createTable() {
    return promiseApi().createTable;
  },
  get toEmf() {
    return require("./lib/stats.js").toEmf;
  },
  DynaleaseError,
  codes,
  // The Promise API's lock class, for instanceof checks (`Lock` is dlc's).
  get LeaseLock() {
    return promiseApi().Lock;
  },
};
