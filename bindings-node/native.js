"use strict";
// Loads the native addon: the file a source build (`napi build`) leaves next to this one, or the
// platform package npm installed with this one (@dynalease/binding-<platform>, an optional
// dependency). Written by hand rather than generated, so that `require("dynalease")` reads one
// short file and a platform without a binary fails with a message that says what to do.

const path = require("path");

// package.json's napi.targets, by the names napi gives their binaries and packages.
const SUPPORTED = [
  "linux-x64-gnu",
  "linux-arm64-gnu",
  "linux-x64-musl",
  "linux-arm64-musl",
  "darwin-x64",
  "darwin-arm64",
  "win32-x64-msvc",
  "win32-arm64-msvc",
];

function isMusl() {
  // Node's own dynamic loader names its libc (/lib64/ld-linux-x86-64.so.2, /lib/ld-musl-x86_64.so.1)
  // in the first page of its executable: reading it takes far less than a diagnostic report
  // (process.report.getReport(), milliseconds at every require), which remains the answer
  // for a statically linked node.
  let head = "";
  try {
    const fs = require("fs");
    const fd = fs.openSync(process.execPath, "r");
    try {
      const page = Buffer.alloc(4096);
      head = page.toString("latin1", 0, fs.readSync(fd, page, 0, page.length, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch (_) {
    // Unreadable: ask the report.
  }
  if (head.includes("/ld-musl-")) return true;
  if (head.includes("/ld-linux")) return false;
  // Node on glibc reports the glibc it runs on; musl builds report none.
  const header = process.report && typeof process.report.getReport === "function" ? process.report.getReport().header : null;
  return !(header && header.glibcVersionRuntime);
}

function platformName() {
  const { platform, arch } = process;
  if (platform === "linux") return `linux-${arch}-${isMusl() ? "musl" : "gnu"}`;
  if (platform === "win32") return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function load() {
  const name = platformName();
  const candidates = [path.join(__dirname, `dynalease.${name}.node`), `@dynalease/binding-${name}`];
  const failures = [];
  for (const candidate of candidates) {
    try {
      return require(candidate);
    } catch (error) {
      // A binary that exists but does not load (wrong libc, a damaged file) is the error to show.
      if (error.code !== "MODULE_NOT_FOUND" || !String(error.message).includes(candidate)) throw error;
      failures.push(candidate);
    }
  }
  const support = SUPPORTED.includes(name)
    ? `the package @dynalease/binding-${name} is missing: reinstall dynalease without --no-optional / --omit=optional`
    : `dynalease has no prebuilt binary for it (supported: ${SUPPORTED.join(", ")})`;
  const error = new Error(
    `dynalease: no native addon for this platform (${name}): ${support}. ` +
      "To build it from source, install Rust (https://rustup.rs) and run `npm run build` in the dynalease package. " +
      `Looked for: ${failures.join(", ")}`,
  );
  error.code = "ERR_DYNALEASE_NO_BINARY";
  throw error;
}

module.exports = load();
