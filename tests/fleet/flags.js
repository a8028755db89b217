"use strict";
// The flags the Node fleet programs (worker.js, lockdriver.js) share: the client kind and where
// its tables are. Each program adds its own and parses them with util.parseArgs.

const text = { type: "string" };

const SHARED_OPTIONS = { client: text, endpoint: text, "lock-table": text, "kv-table": text, "kv-partition": text };

/** The shared flags' values, named as the programs use them. */
function sharedArgs(values) {
  return {
    client: values.client,
    endpoint: values.endpoint,
    lockTable: values["lock-table"],
    kvTable: values["kv-table"],
    kvPartition: values["kv-partition"],
  };
}

module.exports = { SHARED_OPTIONS, sharedArgs, text };
