#!/usr/bin/env node
"use strict";
// `npx dynalease ...`: the dynalease command line (table, locks, gc, kv, iam-policy, template),
// the same code as the Rust binary and the Python console script, run by the native addon.
// It loads the addon alone (not the drop-in, not the Promise API), and the command runs on this
// thread, blocking it until the command ends: the process is nothing but the command.

let native;
try {
  native = require("../native.js");
} catch (error) {
  // The loader's error says which platform lacks a binary and what to install or build.
  const message = error && error.code === "ERR_DYNALEASE_NO_BINARY" ? error.message : `dynalease: cannot load the native addon: ${error && error.message}`;
  process.stderr.write(`${message}\n`);
  // Nothing was done; 1 rather than a usage (2) or service (4) code, which would mislead.
  process.exit(1);
}

process.exit(native.cliMain(["dynalease", ...process.argv.slice(2)]));
