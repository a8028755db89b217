"use strict";
// The addon loader (native.js): a platform without a binary fails saying which platform it is,
// what to install and how to build from source.

const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { test } = require("node:test");

test("the loader finds the binary a source build left beside it", () => {
  const native = require("../native.js");
  assert.equal(typeof native.LockClient, "function");
  assert.equal(native.errorCodes().LOCK_LOST, "ERR_DYNALEASE_LOCK_LOST");
});

test("without a binary, require says which platform, what is supported and how to build", () => {
  // The loader alone in a folder of its own: no binary beside it, no platform package to find.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dynalease-loader-"));
  try {
    fs.copyFileSync(path.join(__dirname, "..", "native.js"), path.join(dir, "native.js"));
    assert.throws(
      () => require(path.join(dir, "native.js")),
      (error) => {
        assert.equal(error.code, "ERR_DYNALEASE_NO_BINARY");
        assert.match(error.message, new RegExp(`\\(${process.platform}-${process.arch}`));
        assert.match(error.message, /@dynalease\/binding-/);
        assert.match(error.message, /rustup\.rs/);
        return true;
      },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
