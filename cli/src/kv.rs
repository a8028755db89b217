//! `kv get|put|list|delete`: a KV store's pairs from the command line, values as JSON.

use std::sync::Arc;

use dynalease::kv::{KvConfig, KvPair, KvStore, WriteOptions};
use dynalease::transport::Transport;
use dynalease::Value;
use serde_json::json;

use crate::args::{KvKeyArgs, KvListArgs, KvPutArgs, KvTarget};
use crate::render::{columns, Report};
use crate::{CommandResult, Exit, Failure};

fn store(transport: Arc<dyn Transport>, target: &KvTarget) -> Result<KvStore, Failure> {
    let config = KvConfig {
        partition_key: target.partition_key.clone(),
        sort_key: target.sort_key.clone(),
        ..KvConfig::new(&target.table, &target.partition)
    };
    Ok(KvStore::new(config, transport)?)
}

fn pair_json(pair: &KvPair) -> Result<serde_json::Value, Failure> {
    Ok(json!({"key": pair.key, "value": pair.value.to_json()?, "version": pair.version}))
}

pub async fn get(transport: Arc<dyn Transport>, args: &KvKeyArgs) -> CommandResult {
    let store = store(transport, &args.target)?;
    let pair = store.get(&args.key).await?.ok_or_else(|| {
        Failure::new(Exit::NotFound, format!("key {:?} is not in partition {:?} of table {}", args.key, args.target.partition, args.target.table))
    })?;
    let json = pair_json(&pair)?;
    Ok(Report::new(serde_json::to_string_pretty(&json["value"]).unwrap_or_default(), json).note(format!("version {}", pair.version)))
}

pub async fn put(transport: Arc<dyn Transport>, args: &KvPutArgs) -> CommandResult {
    let store = store(transport, &args.target)?;
    // JSON when it parses; a bare word otherwise, so `kv put T P k idle` stores "idle".
    let parsed = serde_json::from_str(&args.value).unwrap_or_else(|_| serde_json::Value::String(args.value.clone()));
    let value = Value::try_from(parsed)?;
    let options = match args.ttl {
        Some(ttl) => WriteOptions::default().ttl(ttl),
        None => WriteOptions::default(),
    };
    let pair = store.put(&args.key, &value, &options).await?;
    Ok(Report::new(format!("put {:?} (version {})", pair.key, pair.version), pair_json(&pair)?))
}

pub async fn list(transport: Arc<dyn Transport>, args: &KvListArgs) -> CommandResult {
    let store = store(transport, &args.target)?;
    let pairs = store.list(&args.prefix).await?;
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for pair in &pairs {
        let json = pair_json(pair)?;
        rows.push(vec![pair.key.clone(), pair.version.to_string(), json["value"].to_string()]);
        items.push(json);
    }
    let text = if rows.is_empty() { "no keys match".to_owned() } else { columns(&["KEY", "VERSION", "VALUE"], &rows) };
    Ok(Report::new(text, json!({"pairs": items})))
}

pub async fn delete(transport: Arc<dyn Transport>, args: &KvKeyArgs) -> CommandResult {
    let store = store(transport, &args.target)?;
    if store.delete(&args.key, &WriteOptions::default()).await? {
        Ok(Report::new(format!("deleted {:?}", args.key), json!({"deleted": true})))
    } else {
        Err(Failure::new(Exit::NotFound, format!("key {:?} is not in partition {:?}; nothing deleted", args.key, args.target.partition)))
    }
}
