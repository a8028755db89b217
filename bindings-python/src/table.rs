//! `create_table` / `create_table_async`: the core's table helper.

use dynalease::table::{KeyAttribute, TableSpec};
use dynalease::KeyType;
use pyo3::prelude::*;

use crate::connection::{Connection, ConnectionArgs};
use crate::errors::{config_error, CoreResultExt};

fn key_type(option: &str, name: &str) -> PyResult<KeyType> {
    match name {
        "S" => Ok(KeyType::S),
        "N" => Ok(KeyType::N),
        "B" => Ok(KeyType::B),
        other => Err(config_error(format!("{option} must be \"S\", \"N\" or \"B\" (got {other:?})"))),
    }
}

fn spec(table: String, partition_key: String, sort_key: Option<String>, partition_key_type: &str, sort_key_type: &str) -> PyResult<TableSpec> {
    let sort_key_type = key_type("sort_key_type", sort_key_type)?;
    let spec = TableSpec {
        partition_key: KeyAttribute::new(partition_key.clone(), key_type("partition_key_type", partition_key_type)?),
        sort_key: sort_key.map(|name| KeyAttribute::new(name, sort_key_type)),
        ..TableSpec::new(table, partition_key)
    };
    Ok(spec)
}

async fn create(spec: TableSpec, connection: Connection) -> PyResult<()> {
    let transport = connection.transport().await.py()?;
    dynalease::table::create_table(transport.as_ref(), &spec).await.py().map(drop)
}

blocking_and_awaitable! {
    /// Creates a table for locks or a KV store (on-demand billing, TTL on `expires`) and waits
    /// until it is ACTIVE.
    ///
    /// Idempotent: an existing table with the same key schema is accepted; one with a different
    /// schema raises TableError saying what differs. For a KV store use
    /// create_table(name, partition_key="pk", sort_key="sk"). Key types are "S" (default), "N" or
    /// "B". endpoint_url, region, call_timeout (seconds per DynamoDB call) and max_retries: as for
    /// LockClient.
    #[pyo3(signature = (table, partition_key = "id".to_owned(), sort_key = None, endpoint_url = None, region = None, partition_key_type = "S", sort_key_type = "S", call_timeout = None, max_retries = None))]
    #[pyo3(text_signature = "(table, partition_key='id', sort_key=None, endpoint_url=None, region=None, partition_key_type='S', sort_key_type='S', call_timeout=None, max_retries=None)")]
    fn create_table / create_table_async(
        table: String,
        partition_key: String,
        sort_key: Option<String>,
        endpoint_url: Option<String>,
        region: Option<String>,
        partition_key_type: &str,
        sort_key_type: &str,
        call_timeout: Option<f64>,
        max_retries: Option<&Bound<'_, PyAny>>,
    ) -> () {
        let spec = spec(table, partition_key, sort_key, partition_key_type, sort_key_type)?;
        let connection = Connection::new(ConnectionArgs { endpoint_url, region, call_timeout, max_retries })?;
        create(spec, connection)
    }
}
