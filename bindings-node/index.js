"use strict";
// The public API of the `dynalease` npm package.
//
// - FailOpen, FailClosed, Lock: a drop-in replacement for dynamodb-lock-client 0.7.3, running
//   through the caller's own DynamoDB client (lib/dlc.js).
// - LockClient, KVStore, createTable: the Promise API on the native transport (lib/client.js).

const dlc = require("./lib/dlc.js");
const client = require("./lib/client.js");
const { codes, DynaleaseError } = require("./lib/errors.js");

module.exports = {
  FailOpen: dlc.FailOpen,
  FailClosed: dlc.FailClosed,
  Lock: dlc.Lock,
  LockClient: client.LockClient,
  KVStore: client.KVStore,
  createTable: client.createTable,
  DynaleaseError,
  codes,
};
// The Promise API's lock class, for instanceof checks (`Lock` is dlc's).
module.exports.LeaseLock = client.Lock;
