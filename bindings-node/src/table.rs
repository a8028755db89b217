//! `createTable`: a table for locks or the KV store, with TTL on `expires`.

use dynalease::lock::DEFAULT_PARTITION_KEY;
use dynalease::table::{KeyAttribute, TableSpec};
use dynalease::{Error, KeyType};
use napi::bindgen_prelude::PromiseRaw;
use napi::{Env, Result};
use napi_derive::napi;

use crate::connection::connection_of;
use crate::errors::CoreResultExt;

#[napi(object)]
#[derive(Default)]
pub struct CreateTableOptions {
    /// The partition key attribute (default `"id"`).
    pub partition_key: Option<String>,
    /// `"S"` (default), `"N"` or `"B"`.
    pub partition_key_type: Option<String>,
    pub sort_key: Option<String>,
    pub sort_key_type: Option<String>,
    /// DynamoDB endpoint, or `"memory://NAME"` for an in-process table.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// How long one DynamoDB call may take before it is abandoned (default 5000).
    pub call_timeout_ms: Option<f64>,
    /// Repeats of a failed call when that is safe (default 7; 0 sends each request once).
    pub max_retries: Option<f64>,
}

fn key_type(option: &str, name: Option<&str>) -> dynalease::Result<KeyType> {
    match name.unwrap_or("S") {
        "S" => Ok(KeyType::S),
        "N" => Ok(KeyType::N),
        "B" => Ok(KeyType::B),
        other => Err(Error::config(format!("{option} must be \"S\", \"N\" or \"B\" (got {other:?})"))),
    }
}

/// Creates the table if it does not exist and waits until it is ACTIVE; checks the key schema
/// of an existing one.
#[napi(ts_return_type = "Promise<void>")]
pub fn create_table<'env>(env: &'env Env, table: String, options: Option<CreateTableOptions>) -> Result<PromiseRaw<'env, ()>> {
    let options = options.unwrap_or_default();
    let sort_key_type = key_type("sortKeyType", options.sort_key_type.as_deref()).js()?;
    let spec = TableSpec {
        partition_key: KeyAttribute::new(options.partition_key.unwrap_or_else(|| DEFAULT_PARTITION_KEY.into()), key_type("partitionKeyType", options.partition_key_type.as_deref()).js()?),
        sort_key: options.sort_key.map(|name| KeyAttribute::new(name, sort_key_type)),
        ..TableSpec::new(table, DEFAULT_PARTITION_KEY)
    };
    let connection = connection_of!(options)?;
    env.spawn_future(async move {
        let transport = connection.transport().await.js()?;
        dynalease::table::create_table(transport.as_ref(), &spec).await.js().map(drop)
    })
}
