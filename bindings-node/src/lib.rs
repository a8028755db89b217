//! The native addon of the `dynalease` npm package. It only translates — values (codec),
//! errors (errors), Promises — and every behaviour lives in the core: the lock engine, its
//! elections and semaphores, and the KV store for the Promise API (locks, election, semaphore,
//! kv, table) with their counters (stats), the sans-IO dlc machines that the JS drop-in classes
//! drive through the caller's own DynamoDB client (dlc), and the command line of the npm `bin`
//! (cli, over the `dynalease-cli` crate).

// napi registers the exported items only outside `cargo test`, where they would look unused.
#![cfg_attr(test, allow(dead_code))]

mod cli;
mod codec;
mod connection;
mod dlc;
mod election;
mod errors;
mod kv;
mod locks;
mod semaphore;
mod stats;
mod table;

/// The version of the native addon (the JS layer checks it matches the package).
#[napi_derive::napi]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
