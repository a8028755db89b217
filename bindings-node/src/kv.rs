//! `KVStore`: the core KV store with compare-and-swap, as a napi class. Values and pairs cross
//! as DynamoDB JSON (codec.rs); the JS layer (lib/client.js, lib/codec.js) makes them plain JS values.

use std::sync::Arc;

use dynalease::kv::{KvConfig, KvPair, KvStore as CoreKvStore, WriteOptions};
use dynalease::stats::Stats;
use dynalease::Error;
use napi::bindgen_prelude::PromiseRaw;
use napi::{Env, Result};
use napi_derive::napi;
use serde_json::json;
use tokio::sync::OnceCell;

use crate::codec::{attribute_to_json, parse, value_from_text};
use crate::connection::{connection_of, Connection};
use crate::errors::CoreResultExt;
use crate::locks::{millis, Lock};
use crate::stats::StatsSnapshot;

#[napi(object)]
pub struct KvStoreOptions {
    pub table: String,
    /// The partition this store's keys live in (one table can hold many stores).
    pub partition: String,
    /// Default `"pk"`.
    pub partition_key: Option<String>,
    /// Default `"sk"`.
    pub sort_key: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// How long one DynamoDB call may take before it is abandoned (default 5000).
    pub call_timeout_ms: Option<f64>,
    /// Repeats of a failed call when that is safe (default 7; 0 sends each request once).
    pub max_retries: Option<f64>,
}

fn pair_to_text(pair: &KvPair) -> String {
    json!({"key": pair.key, "value": attribute_to_json(&pair.value.to_attribute()), "version": pair.version, "expires": pair.expires})
        .to_string()
}

/// A `previous` pair from the JS layer: only its key and version matter to a CAS.
fn pair_from_text(text: &str) -> dynalease::Result<KvPair> {
    let json = parse(text)?;
    let key = json.get("key").and_then(|k| k.as_str()).ok_or_else(|| Error::config("previous.key must be a string"))?;
    let version = json.get("version").and_then(|v| v.as_i64()).ok_or_else(|| Error::config("previous.version must be an integer"))?;
    Ok(KvPair { key: key.to_owned(), value: dynalease::Value::Null, version, expires: json.get("expires").and_then(|e| e.as_i64()) })
}

#[napi(js_name = "KVStore")]
pub struct KvStore {
    config: KvConfig,
    connection: Arc<Connection>,
    /// The core store, made on first use and kept, so that `stats()` counts every call.
    core: Arc<OnceCell<CoreKvStore>>,
}

fn write_options(ttl_ms: Option<f64>, lock: Option<&Lock>) -> Result<WriteOptions> {
    let mut options = WriteOptions::default();
    if let Some(ttl) = ttl_ms {
        options = options.ttl(millis("ttlMs", ttl)?);
    }
    if let Some(lock) = lock {
        options = options.fence(&lock.inner);
    }
    Ok(options)
}

impl KvStore {
    /// The core store (cheap to clone); a failure to build the transport is retried next time.
    fn store(&self) -> impl std::future::Future<Output = Result<CoreKvStore>> + Send + 'static {
        let (config, connection, core) = (self.config.clone(), self.connection.clone(), self.core.clone());
        async move {
            let made = core.get_or_try_init(|| async {
                let transport = connection.transport().await.js()?;
                CoreKvStore::new(config, transport).js()
            });
            Ok(made.await?.clone())
        }
    }
}

#[napi]
impl KvStore {
    #[napi(constructor)]
    pub fn new(options: KvStoreOptions) -> Result<KvStore> {
        let defaults = KvConfig::new(options.table, options.partition);
        let config = KvConfig {
            partition_key: options.partition_key.unwrap_or(defaults.partition_key),
            sort_key: options.sort_key.unwrap_or(defaults.sort_key),
            ..defaults
        };
        config.validate().js()?;
        let connection = connection_of!(options)?;
        Ok(KvStore { config, connection, core: Arc::new(OnceCell::new()) })
    }

    /// What this store did so far (a snapshot of the core's counters; all zero before its
    /// first request).
    #[napi]
    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::from(self.core.get().map_or_else(|| Stats::default().snapshot(), CoreKvStore::stats))
    }

    #[napi(getter)]
    pub fn table(&self) -> String {
        self.config.table.clone()
    }

    #[napi(getter)]
    pub fn partition(&self) -> String {
        self.config.partition.clone()
    }

    #[napi(getter)]
    pub fn call_timeout_ms(&self) -> f64 {
        self.connection.call_timeout_ms()
    }

    #[napi(getter)]
    pub fn max_retries(&self) -> u32 {
        self.connection.max_retries()
    }

    /// Writes unconditionally; resolves to the new pair (JSON).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn put<'env>(&self, env: &'env Env, key: String, value: String, ttl_ms: Option<f64>, lock: Option<&Lock>) -> Result<PromiseRaw<'env, String>> {
        let (value, options, store) = (value_from_text(&value).js()?, write_options(ttl_ms, lock)?, self.store());
        env.spawn_future(async move { Ok(pair_to_text(&store.await?.put(&key, &value, &options).await.js()?)) })
    }

    /// Creates (`previous` null) or compare-and-swaps; resolves to the new pair (JSON).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn atomic_put<'env>(
        &self,
        env: &'env Env,
        key: String,
        value: String,
        previous: Option<String>,
        ttl_ms: Option<f64>,
        lock: Option<&Lock>,
    ) -> Result<PromiseRaw<'env, String>> {
        let value = value_from_text(&value).js()?;
        let previous = previous.map(|p| pair_from_text(&p)).transpose().js()?;
        let (options, store) = (write_options(ttl_ms, lock)?, self.store());
        env.spawn_future(async move {
            Ok(pair_to_text(&store.await?.atomic_put(&key, &value, previous.as_ref(), &options).await.js()?))
        })
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn get<'env>(&self, env: &'env Env, key: String) -> Result<PromiseRaw<'env, Option<String>>> {
        let store = self.store();
        env.spawn_future(async move { Ok(store.await?.get(&key).await.js()?.as_ref().map(pair_to_text)) })
    }

    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn exists<'env>(&self, env: &'env Env, key: String) -> Result<PromiseRaw<'env, bool>> {
        let store = self.store();
        env.spawn_future(async move { store.await?.exists(&key).await.js() })
    }

    /// Resolves to a JSON array of pairs whose keys start with `prefix`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn list<'env>(&self, env: &'env Env, prefix: String) -> Result<PromiseRaw<'env, String>> {
        let store = self.store();
        env.spawn_future(async move {
            let pairs = store.await?.list(&prefix).await.js()?;
            Ok(format!("[{}]", pairs.iter().map(pair_to_text).collect::<Vec<_>>().join(",")))
        })
    }

    /// Deletes; resolves to whether the key existed.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn delete<'env>(&self, env: &'env Env, key: String, lock: Option<&Lock>) -> Result<PromiseRaw<'env, bool>> {
        let (options, store) = (write_options(None, lock)?, self.store());
        env.spawn_future(async move { store.await?.delete(&key, &options).await.js() })
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn atomic_delete<'env>(&self, env: &'env Env, key: String, previous: String, lock: Option<&Lock>) -> Result<PromiseRaw<'env, ()>> {
        let previous = pair_from_text(&previous).js()?;
        let (options, store) = (write_options(None, lock)?, self.store());
        env.spawn_future(async move { store.await?.atomic_delete(&key, &previous, &options).await.js() })
    }
}
