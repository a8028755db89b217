//! An in-process table store with DynamoDB's semantics.
//!
//! [`MemoryTransport`] is the embedded backend for users' unit tests and for deterministic tests
//! of the engines. It evaluates the expression trees of [`crate::expr`] directly and reproduces
//! what DynamoDB does with them: key schema validation, comparisons where a missing attribute or
//! a type mismatch is false (and `<>` therefore true), exact decimal numbers, the 400 KB item
//! limit, Query's `Limit` counted before the filter, and all-or-nothing transactions.
//!
//! Deliberate differences from the service: tables are `ACTIVE` as soon as they are created,
//! every read is strongly consistent, and numbers are returned as they were written (DynamoDB
//! normalises `1.50` to `1.5`; comparisons here are numeric either way).
//!
//! This module holds the store itself (the registry of named stores and the dispatch of each
//! request under one lock); each kind of request is served by a submodule.

mod conditions;
mod query;
mod tables;
#[cfg(test)]
mod test_support;
mod transactions;
mod updates;
mod validation;
mod writes;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use async_trait::async_trait;

use crate::clock::{self, SharedClock};
use crate::error::{Error, Result};
use crate::request::{BatchGet, BatchGetPage, GetItem, Request, Response, MAX_BATCH_GET_KEYS};
use crate::transport::Transport;
use crate::value::Item;

use tables::Table;
use transactions::CompletedTransaction;

/// An in-process DynamoDB: tables, items and expressions with the service's semantics.
///
/// Clones share the same tables. [`MemoryTransport::named`] returns one store per name for the
/// whole process, so several clients configured with `memory://name` see the same data.
#[derive(Clone, Debug)]
pub struct MemoryTransport {
    shared: Arc<Shared>,
}

struct Shared {
    clock: SharedClock,
    state: Mutex<State>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `try_lock`: formatting must never wait for (or deadlock on) a request in progress.
        let tables = self.state.try_lock().map(|state| state.tables.keys().cloned().collect::<BTreeSet<_>>());
        let mut out = f.debug_struct("Shared");
        out.field("clock", &self.clock);
        match &tables {
            Ok(names) => out.field("tables", names),
            Err(_) => out.field("tables", &"<in use>"),
        };
        out.finish()
    }
}

impl MemoryTransport {
    /// An empty store on the system clock.
    pub fn new() -> MemoryTransport {
        MemoryTransport::with_clock(clock::system())
    }

    /// An empty store on `clock` (which times ClientRequestToken expiry).
    pub fn with_clock(clock: SharedClock) -> MemoryTransport {
        MemoryTransport { shared: Arc::new(Shared { clock, state: Mutex::new(State::default()) }) }
    }

    /// The process-wide store called `name`, created empty on first use.
    pub fn named(name: &str) -> MemoryTransport {
        static REGISTRY: OnceLock<Mutex<HashMap<String, MemoryTransport>>> = OnceLock::new();
        let mut registry = REGISTRY.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
        registry.entry(name.to_owned()).or_default().clone()
    }

    /// The clock the store times ClientRequestToken expiry by (share it with clients to
    /// move both in tests).
    pub fn clock(&self) -> SharedClock {
        self.shared.clock.clone()
    }

    /// Every request runs under this lock, which makes each one atomic like on DynamoDB.
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic cannot leave a half-applied write behind (writes are computed, then committed),
        // so the data of a poisoned lock is still consistent.
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryTransport {
    fn default() -> Self {
        MemoryTransport::new()
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    async fn execute(&self, request: Request) -> Result<Response> {
        let now_unix_ms = self.shared.clock.now_unix_ms();
        self.state().execute(request, now_unix_ms)
    }
}

#[derive(Default)]
struct State {
    tables: HashMap<String, Table>,
    /// Successful transactions by ClientRequestToken, for DynamoDB's idempotent retries.
    transactions: HashMap<String, CompletedTransaction>,
}

impl State {
    fn execute(&mut self, request: Request, now_unix_ms: u64) -> Result<Response> {
        match request {
            Request::GetItem(get) => self.get_item(&get).map(Response::GetItem),
            Request::BatchGet(batch) => self.batch_get(&batch).map(Response::BatchGet),
            Request::PutItem(put) => self.put_item(&put).map(Response::Written),
            Request::UpdateItem(update) => self.update_item(&update).map(Response::Written),
            Request::DeleteItem(delete) => self.delete_item(&delete).map(Response::Written),
            Request::Query(query) => self.query(&query).map(Response::Query),
            Request::Scan(scan) => self.scan(&scan).map(Response::Query),
            Request::TransactWrite(transaction) => {
                self.transact_write(transaction, now_unix_ms).map(|()| Response::TransactWrite)
            }
            Request::CreateTable(create) => self.create_table(create).map(Response::Table),
            Request::DescribeTable { table } => Ok(Response::Table(self.table(&table)?.describe(&table))),
            Request::DeleteTable { table } => self.delete_table(&table).map(|()| Response::TableDeleted),
            Request::UpdateTimeToLive { table, attribute, enabled } => {
                self.update_time_to_live(&table, attribute, enabled).map(Response::TimeToLive)
            }
            Request::DescribeTimeToLive { table } => Ok(Response::TimeToLive(self.table(&table)?.time_to_live.clone())),
        }
    }

    fn table(&self, name: &str) -> Result<&Table> {
        self.tables.get(name).ok_or_else(|| Error::TableNotFound { table: name.to_owned() })
    }

    fn table_mut(&mut self, name: &str) -> Result<&mut Table> {
        self.tables.get_mut(name).ok_or_else(|| Error::TableNotFound { table: name.to_owned() })
    }

    fn get_item(&self, request: &GetItem) -> Result<Option<Item>> {
        let table = self.table(&request.table)?;
        let key = table.request_key("GetItem", &request.key)?;
        Ok(table.get(&key).cloned())
    }

    fn batch_get(&self, request: &BatchGet) -> Result<BatchGetPage> {
        if request.keys.is_empty() || request.keys.len() > MAX_BATCH_GET_KEYS {
            return Err(Error::Validation {
                operation: "BatchGetItem",
                message: format!("a batch must name 1 to {MAX_BATCH_GET_KEYS} keys, not {}", request.keys.len()),
            });
        }
        let table = self.table(&request.table)?;
        let mut items = Vec::new();
        let mut seen = BTreeSet::new();
        for key in &request.keys {
            let key = table.request_key("BatchGetItem", key)?;
            if !seen.insert(key.clone()) {
                return Err(Error::Validation { operation: "BatchGetItem", message: "Provided list of item keys contains duplicates".into() });
            }
            items.extend(table.get(&key).cloned());
        }
        Ok(BatchGetPage { items, unprocessed: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory::test_support::*;

    #[tokio::test]
    async fn requests_on_a_missing_table_fail_with_table_not_found() {
        let store = MemoryTransport::new();
        let missing =
            |result: Result<Response>| assert!(matches!(result, Err(Error::TableNotFound { table }) if table == TABLE));
        missing(
            store
                .execute(Request::GetItem(GetItem {
                    table: TABLE.into(),
                    key: item(&[("pk", s("a"))]),
                    consistent_read: true,
                }))
                .await,
        );
        missing(store.execute(Request::PutItem(put(item(&[("pk", s("a"))])))).await);
        missing(store.execute(Request::UpdateItem(update(item(&[("pk", s("a"))]), Update::default()))).await);
        missing(store.execute(Request::DeleteItem(delete(item(&[("pk", s("a"))])))).await);
        missing(store.execute(Request::Query(query("a"))).await);
        missing(store.execute(Request::DescribeTable { table: TABLE.into() }).await);
        missing(store.execute(Request::DeleteTable { table: TABLE.into() }).await);
        missing(store.execute(Request::DescribeTimeToLive { table: TABLE.into() }).await);
        let transaction =
            TransactWrite { items: vec![TransactItem::Put(put(item(&[("pk", s("a"))])))], client_request_token: None };
        missing(store.execute(Request::TransactWrite(transaction)).await);
    }

    #[tokio::test]
    async fn named_stores_are_shared_per_name() {
        let first = MemoryTransport::named("memory-tests-shared");
        let create = CreateTable {
            table: TABLE.into(),
            partition_key: KeyAttribute { name: "pk".into(), key_type: KeyType::S },
            sort_key: None,
        };
        first.execute(Request::CreateTable(create.clone())).await.unwrap();
        first.put_item(put(item(&[("pk", s("a"))]))).await.unwrap();

        let second = MemoryTransport::named("memory-tests-shared");
        assert!(get(&second, item(&[("pk", s("a"))])).await.is_some());
        let other = MemoryTransport::named("memory-tests-other");
        assert!(matches!(other.put_item(put(item(&[("pk", s("a"))]))).await, Err(Error::TableNotFound { .. })));

        let clone = MemoryTransport::new();
        clone.execute(Request::CreateTable(create)).await.unwrap();
        let cloned = clone.clone();
        cloned.put_item(put(item(&[("pk", s("c"))]))).await.unwrap();
        assert!(get(&clone, item(&[("pk", s("c"))])).await.is_some());
        assert!(format!("{clone:?}").contains(TABLE));
    }
}
