//! Takes a lease lock, keeps it through a few heartbeats, updates a counter under it with a
//! fenced compare-and-swap, and releases it.
//!
//! ```sh
//! scripts/dynamodb-local start            # prints the endpoint
//! cargo run -p dynalease --example lock_and_kv -- http://127.0.0.1:PORT
//! ```
//! Without an argument it uses AWS as configured in the environment.

use std::sync::Arc;
use std::time::Duration;

use dynalease::kv::{KvConfig, KvStore, WriteOptions};
use dynalease::lock::{LockClient, LockConfig};
use dynalease::table::{create_table, KeyAttribute, TableSpec};
use dynalease::transport::native::{NativeConfig, NativeTransport};
use dynalease::{KeyType, Value};

#[tokio::main]
async fn main() -> dynalease::Result<()> {
    let transport = Arc::new(NativeTransport::new(NativeConfig { endpoint_url: std::env::args().nth(1), ..Default::default() }).await?);

    create_table(transport.as_ref(), &TableSpec::new("example-locks", "id")).await?;
    create_table(transport.as_ref(), &TableSpec { sort_key: Some(KeyAttribute::new("sk", KeyType::S)), ..TableSpec::new("example-kv", "pk") }).await?;

    let locks = LockClient::new(
        LockConfig { lease_duration: Duration::from_millis(1500), heartbeat_period: Some(Duration::from_millis(500)), ..LockConfig::new("example-locks") },
        transport.clone(),
    )?;
    let kv = KvStore::new(KvConfig::new("example-kv", "example"), transport)?;

    let lock = locks.acquire("nightly-report", Some(Duration::from_secs(30))).await?;
    println!("acquired nightly-report, fencing token {:?}", lock.fencing_token());

    // Work for three leases: the heartbeats keep the lock.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(!lock.is_lost(), "heartbeats keep the lease");
    println!("still held after 4.5 s of 1.5 s leases");

    // Increment a counter, only while the lock is held.
    let fenced = WriteOptions::default().fence(&lock);
    let previous = kv.get("runs").await?;
    let runs = match &previous {
        Some(pair) => pair.value.to_json()?.as_i64().unwrap_or(0) + 1,
        None => 1,
    };
    let pair = kv.atomic_put("runs", &Value::from(runs), previous.as_ref(), &fenced).await?;
    println!("runs = {runs} (version {})", pair.version);

    lock.release().await?;
    println!("released");
    Ok(())
}
