//! A key/value store with compare-and-swap, in one partition of a table.
//!
//! A store is one partition key value (its namespace); keys are sort key values. Items:
//! `{<partition_key>: namespace, <sort_key>: key, value, version, expires?}`. `value` holds a
//! native DynamoDB value; `version` is a random number that changes on every write, so a
//! compare-and-swap can never be fooled by a value that changed and changed back.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dynalease::Result<()> {
//! use std::sync::Arc;
//! use dynalease::kv::{KvConfig, KvStore, WriteOptions};
//! use dynalease::table::{create_table, KeyAttribute, TableSpec};
//! use dynalease::transport::memory::MemoryTransport;
//! use dynalease::{Error, KeyType, Value};
//!
//! let transport = Arc::new(MemoryTransport::new());
//! let spec = TableSpec { sort_key: Some(KeyAttribute::new("sk", KeyType::S)), ..TableSpec::new("kv-store", "pk") };
//! create_table(transport.as_ref(), &spec).await?;
//! let kv = KvStore::new(KvConfig::new("kv-store", "agents"), transport)?;
//! let none = WriteOptions::default();
//!
//! let created = kv.atomic_put("agents/1", &Value::from("idle"), None, &none).await?;
//! let updated = kv.atomic_put("agents/1", &Value::from("busy"), Some(&created), &none).await?;
//! // A writer still holding the old pair loses the race.
//! let stale = kv.atomic_put("agents/1", &Value::from("idle"), Some(&created), &none).await;
//! assert!(matches!(stale, Err(Error::KeyModified { .. })));
//! assert_eq!(kv.list("agents/").await?, vec![updated]);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::clock::{self, SharedClock};
use crate::error::{Error, Result};
use crate::expr::{val, CompareOp, Condition, Name, Placeholder};
use crate::lock::fence::{lock_check_failed, FenceCheck, FencedOutcome};
use crate::lock::Lock;
use crate::resend::Sends;
use crate::request::{DeleteItem, GetItem, PutItem, Query, ReturnValues, TransactItem, TransactWrite};
use crate::table::TTL_ATTRIBUTE;
use crate::stats::{KvOp, Stats, StatsSnapshot};
use crate::transport::{Counted, Transport, TransportExt};
use crate::value::{item_size, AttributeValue, Item, Value, MAX_ITEM_SIZE, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};

const VALUE: &str = "value";
const VERSION: &str = "version";

/// Attribute names a KV table's keys may not use.
pub const RESERVED_KV_ATTRIBUTES: [&str; 3] = [VALUE, VERSION, TTL_ATTRIBUTE];

/// Configuration of a [`KvStore`]: plain data, checked by [`validate`](KvConfig::validate)
/// (which `KvStore::new` calls).
#[derive(Clone, Debug, PartialEq)]
pub struct KvConfig {
    /// The name of the table the store lives in; several stores can share one table.
    pub table: String,
    /// The partition key value all keys of this store live under.
    pub partition: String,
    /// The table's partition key attribute (default `pk`).
    pub partition_key: String,
    /// The table's sort key attribute, which holds the keys (default `sk`).
    pub sort_key: String,
}

impl KvConfig {
    /// A store in `table` under `partition`, with key attributes `pk` and `sk`.
    pub fn new(table: impl Into<String>, partition: impl Into<String>) -> KvConfig {
        KvConfig { table: table.into(), partition: partition.into(), partition_key: "pk".into(), sort_key: "sk".into() }
    }

    /// Checks what DynamoDB would refuse, or the store could not work with: an empty or invalid
    /// table name, an empty or oversized partition, key attributes that are empty, equal, or named
    /// like the store's own attributes ([`RESERVED_KV_ATTRIBUTES`]).
    pub fn validate(&self) -> Result<()> {
        if self.table.is_empty() {
            return Err(Error::config("table name is empty; pass the name of the KV table"));
        }
        crate::table::check_table_name(&self.table)?;
        if self.partition.is_empty() {
            return Err(Error::config("partition is empty; pass the namespace this store's keys live under"));
        }
        if self.partition.len() > MAX_PARTITION_KEY_BYTES {
            return Err(Error::config(format!(
                "partition is {} bytes; DynamoDB partition key values are limited to {MAX_PARTITION_KEY_BYTES} bytes",
                self.partition.len()
            )));
        }
        for (option, name) in [("partition_key", &self.partition_key), ("sort_key", &self.sort_key)] {
            if name.is_empty() {
                return Err(Error::option(option, "is empty; pass the table's key attribute name"));
            }
            if RESERVED_KV_ATTRIBUTES.contains(&name.as_str()) {
                return Err(Error::option(
                    option,
                    format!("{name:?} is reserved for KV attributes; reserved names are {}", RESERVED_KV_ATTRIBUTES.join(", ")),
                ));
            }
        }
        if self.partition_key == self.sort_key {
            return Err(Error::option("partition_key", "and {sort_key} must name different attributes"));
        }
        Ok(())
    }
}

/// A stored key, its value and the version a compare-and-swap checks.
#[derive(Clone, Debug, PartialEq)]
pub struct KvPair {
    /// The key, as the caller named it (the item's sort key value).
    pub key: String,
    /// The value stored under it.
    pub value: Value,
    /// A random number a write draws anew; [`KvStore::atomic_put`] and
    /// [`KvStore::atomic_delete`] succeed only while the stored item still has it.
    pub version: i64,
    /// When DynamoDB TTL may delete it (epoch seconds); reads hide it from then on.
    pub expires: Option<i64>,
}

/// Options of a write.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Expire the key after this long (DynamoDB TTL on `expires`); `None`: never.
    pub ttl: Option<Duration>,
    /// Apply the write only while this lock is held (checked in the same transaction).
    pub fence: Option<Lock>,
}

impl WriteOptions {
    /// Makes the key expire `ttl` after the write: reads hide it from then on, and DynamoDB's
    /// TTL deletes it later.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Applies the write only while `lock` is held, checked by DynamoDB in the same
    /// transaction; otherwise it fails with [`Error::LockLost`] and writes nothing.
    pub fn fence(mut self, lock: &Lock) -> Self {
        self.fence = Some(lock.clone());
        self
    }
}

/// The KV store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct KvStore {
    config: Arc<KvConfig>,
    /// The shared transport, seen through this store's counters.
    transport: Arc<dyn Transport>,
    clock: SharedClock,
    stats: Arc<Stats>,
}

/// What a write expects of the key, which says what its condition's failure means.
enum Expectation<'a> {
    /// No condition (`put`).
    Anything,
    /// Absent or expired (`atomic_put` without `previous`): else `KeyExists`.
    Absent,
    /// Present and live (`delete`): else it did not exist.
    Live,
    /// At this pair's version: else `KeyModified`, or `KeyNotFound` if gone.
    Version(&'a KvPair),
}

impl KvStore {
    /// A store with this configuration, sending through `transport`. Fails with
    /// [`Error::Config`] if the configuration is invalid; the table is not checked until used.
    pub fn new(config: KvConfig, transport: Arc<dyn Transport>) -> Result<KvStore> {
        config.validate()?;
        let stats = Stats::new();
        let transport = Arc::new(Counted::new(transport, stats.clone()));
        Ok(KvStore { config: Arc::new(config), transport, clock: clock::system(), stats })
    }

    /// Uses `clock` to stamp and check expiry times.
    pub fn with_clock(mut self, clock: SharedClock) -> KvStore {
        self.clock = clock;
        self
    }

    /// The configuration the store was created with.
    pub fn config(&self) -> &KvConfig {
        &self.config
    }

    /// What this store did so far: its reads, writes, deletes, lists and compare-and-swap
    /// conflicts, and the requests and capacity they took (see [`crate::stats`]).
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Writes `value` at `key` unconditionally.
    pub async fn put(&self, key: &str, value: &Value, options: &WriteOptions) -> Result<KvPair> {
        let (item, pair) = self.new_item(key, value, options)?;
        let put = PutItem { table: self.config.table.clone(), item, condition: None, return_values: ReturnValues::None, return_old_on_condition_failure: false };
        self.write(key, TransactItem::Put(put), Expectation::Anything, options).await?;
        Ok(pair)
    }

    /// Creates `key` if it does not exist (`previous: None`, else [`Error::KeyExists`]), or
    /// replaces it if it is still at `previous`'s version (else [`Error::KeyModified`], or
    /// [`Error::KeyNotFound`] if it is gone).
    pub async fn atomic_put(&self, key: &str, value: &Value, previous: Option<&KvPair>, options: &WriteOptions) -> Result<KvPair> {
        let (item, pair) = self.new_item(key, value, options)?;
        let expectation = match previous {
            Some(previous) => Expectation::Version(self.same_key(key, previous)?),
            None => Expectation::Absent,
        };
        let put = PutItem {
            table: self.config.table.clone(),
            item,
            condition: Some(self.condition(&expectation)),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: true,
        };
        self.write(key, TransactItem::Put(put), expectation, options).await?;
        Ok(pair)
    }

    /// Deletes `key`; returns whether it existed (and had not expired).
    pub async fn delete(&self, key: &str, options: &WriteOptions) -> Result<bool> {
        self.check_key(key)?;
        let delete = DeleteItem {
            table: self.config.table.clone(),
            key: self.key(key),
            // Guards: the key is live, so the answer says whether this call deleted something
            // (a transaction returns no old item). An expired leftover stays for TTL to remove.
            condition: Some(Condition::Exists(self.partition_name()).and(self.live_condition())),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: false,
        };
        match self.write(key, TransactItem::Delete(delete), Expectation::Live, options).await {
            Ok(()) => Ok(true),
            Err(Error::KeyNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes `key` if it is still at `previous`'s version.
    pub async fn atomic_delete(&self, key: &str, previous: &KvPair, options: &WriteOptions) -> Result<()> {
        self.check_key(key)?;
        let expectation = Expectation::Version(self.same_key(key, previous)?);
        let delete = DeleteItem {
            table: self.config.table.clone(),
            key: self.key(key),
            condition: Some(self.condition(&expectation)),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: false,
        };
        self.write(key, TransactItem::Delete(delete), expectation, options).await
    }

    /// Reads `key` with a strongly consistent read.
    pub async fn get(&self, key: &str) -> Result<Option<KvPair>> {
        self.get_with(key, true).await
    }

    /// Reads `key`; `consistent: false` reads eventually consistent (half the cost).
    pub async fn get_with(&self, key: &str, consistent: bool) -> Result<Option<KvPair>> {
        self.check_key(key)?;
        self.stats.kv(KvOp::Read);
        let request = GetItem { table: self.config.table.clone(), key: self.key(key), consistent_read: consistent };
        let item = self.transport.get_item(request).await.map_err(|e| self.explain(e))?;
        Ok(item.and_then(|item| self.live_pair(&item)))
    }

    /// Whether `key` holds a live (not expired) value, by a strongly consistent read.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.get(key).await?.is_some())
    }

    /// Every live key that starts with `prefix`, in key order (a Query, never a Scan).
    pub async fn list(&self, prefix: &str) -> Result<Vec<KvPair>> {
        self.list_with(prefix, true).await
    }

    /// Like [`list`](KvStore::list); `consistent: false` reads eventually consistent (half the
    /// cost).
    pub async fn list_with(&self, prefix: &str, consistent: bool) -> Result<Vec<KvPair>> {
        self.stats.kv(KvOp::List);
        let mut pairs = Vec::new();
        let mut start = None;
        loop {
            let query = Query {
                table: self.config.table.clone(),
                partition: (self.partition_name(), val(":partition", AttributeValue::S(self.config.partition.clone()))),
                // begins_with on "" is rejected by DynamoDB; no prefix means the whole partition.
                sort_key_prefix: (!prefix.is_empty()).then(|| (self.sort_name(), val(":prefix", AttributeValue::S(prefix.to_owned())))),
                filter: Some(self.live_condition()),
                consistent_read: consistent,
                limit: None,
                exclusive_start_key: start.take(),
            };
            let page = self.transport.query(query).await.map_err(|e| self.explain(e))?;
            pairs.extend(page.items.iter().filter_map(|item| self.live_pair(item)));
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(pairs),
            }
        }
    }

    /// Sends one write as a TransactWriteItems with a ClientRequestToken, alone or (fenced) with
    /// a check on the lock item.
    ///
    /// The token is what makes resending safe: DynamoDB applies a transaction at most once per
    /// token (for ten minutes) and answers a repeat of one it applied with success. A plain
    /// PutItem resent after a lost answer could overwrite another client's later write, and a
    /// conditional one would fail against its own landing and report `KeyModified` for a write
    /// that happened. The price is the transaction's: twice the write units of a plain write.
    async fn write(&self, key: &str, action: TransactItem, expectation: Expectation<'_>, options: &WriteOptions) -> Result<()> {
        self.stats.kv(if matches!(action, TransactItem::Delete(_)) { KvOp::Delete } else { KvOp::Write });
        let result = self.write_once(key, action, expectation, options).await;
        self.stats.outcome(&result);
        result
    }

    async fn write_once(&self, key: &str, action: TransactItem, expectation: Expectation<'_>, options: &WriteOptions) -> Result<()> {
        match &options.fence {
            None => match self.transact(key, vec![action], &expectation, false).await? {
                FencedOutcome::Done(()) => Ok(()),
                FencedOutcome::LockCheckFailed => unreachable!("an unfenced write has no lock check"),
            },
            // A fresh token per call of the closure, i.e. per guid: after a heartbeat moved the
            // guid the transaction differs, and reusing its token would be refused as a mismatch.
            Some(lock) => {
                lock.fenced(|check: FenceCheck| {
                    let items = check.transaction(action.clone());
                    let expectation = &expectation;
                    async move { self.transact(key, items, expectation, true).await }
                })
                .await
            }
        }
    }

    /// Sends `items` under one fresh token until DynamoDB answers, resending while the outcome
    /// is unknown. The KV action is the last item; a fenced transaction's first is the lock check.
    async fn transact(&self, key: &str, items: Vec<TransactItem>, expectation: &Expectation<'_>, fenced: bool) -> Result<FencedOutcome<()>> {
        // At most 36 characters.
        let token = format!("{:032x}", crate::random::random::<u128>());
        let transaction = TransactWrite { items, client_request_token: Some(token) };
        let mut sends = Sends::new("TransactWriteItems");
        loop {
            match self.transport.transact_write(transaction.clone()).await.map_err(|e| self.explain(e)) {
                Ok(()) => return Ok(FencedOutcome::Done(())),
                Err(Error::TransactionCanceled { reasons }) => {
                    if fenced && lock_check_failed(&reasons) {
                        return Ok(FencedOutcome::LockCheckFailed);
                    }
                    if reasons.last().is_some_and(|reason| reason == "ConditionalCheckFailed") {
                        // A send still on its way fails this same condition, unless it can come
                        // true again: a deleted key can be created, a created one deleted.
                        // Versions are random and never come back.
                        if sends.uncertain() && !matches!(expectation, Expectation::Version(_)) {
                            return Err(sends.unknown("may still land: the condition it failed can come true again"));
                        }
                        return Err(self.refused(key, expectation).await);
                    }
                    return Err(sends.failed(Error::TransactionCanceled { reasons }).unwrap_err());
                }
                Err(e) => sends.failed(e)?,
            }
        }
    }

    /// The error for a write whose own condition failed. Had an earlier send of it been applied,
    /// the token would have made this one succeed, so it was not; the current item says which
    /// expectation failed.
    async fn refused(&self, key: &str, expectation: &Expectation<'_>) -> Error {
        let key = key.to_owned();
        match expectation {
            Expectation::Anything => Error::Service {
                operation: "TransactWriteItems",
                code: "ConditionalCheckFailed".into(),
                message: "an unconditional write failed a condition".into(),
            },
            Expectation::Absent => Error::KeyExists { key },
            Expectation::Live => Error::KeyNotFound { key },
            Expectation::Version(_) => match self.get(&key).await {
                Ok(Some(_)) => Error::KeyModified { key },
                Ok(None) => Error::KeyNotFound { key },
                Err(e) => e,
            },
        }
    }

    fn condition(&self, expectation: &Expectation<'_>) -> Condition {
        match expectation {
            Expectation::Anything | Expectation::Live => unreachable!("put has no condition and delete builds its own"),
            // Absent, or present only as an expired leftover that TTL has not deleted yet.
            Expectation::Absent => Condition::NotExists(self.partition_name()).or(Condition::Compare(
                self.expires_name(),
                CompareOp::Le,
                self.now_seconds(),
            )),
            Expectation::Version(previous) => {
                Condition::eq(Name::aliased("#version", VERSION), val(":previousVersion", AttributeValue::int(previous.version))).and(self.live_condition())
            }
        }
    }

    /// Not expired: no expiry time, or one still in the future.
    fn live_condition(&self) -> Condition {
        Condition::NotExists(self.expires_name()).or(Condition::Compare(self.expires_name(), CompareOp::Gt, self.now_seconds()))
    }

    fn now_seconds(&self) -> Placeholder {
        val(":now", AttributeValue::int((self.clock.now_unix_ms() / 1000) as i64))
    }

    fn new_item(&self, key: &str, value: &Value, options: &WriteOptions) -> Result<(Item, KvPair)> {
        self.check_key(key)?;
        value.validate()?;
        // Versions stay below 2^53 so JavaScript numbers hold them exactly.
        let version = crate::random::with_rng(|rng| rng.random_range(1..(1i64 << 53)));
        let expires = match options.ttl {
            Some(ttl) if ttl.is_zero() => return Err(Error::option("ttl", "must be greater than zero, or {None} for no expiry")),
            Some(ttl) => Some(((self.clock.now_unix_ms() + ttl.as_millis() as u64).div_ceil(1000)) as i64),
            None => None,
        };
        let mut item = self.key(key);
        item.insert(VALUE.into(), value.to_attribute());
        item.insert(VERSION.into(), AttributeValue::int(version));
        if let Some(expires) = expires {
            item.insert(TTL_ATTRIBUTE.into(), AttributeValue::int(expires));
        }
        let size = item_size(&item);
        if size > MAX_ITEM_SIZE {
            return Err(Error::invalid_value(format!(
                "the value for key {key:?} is too large: the item would be {size} bytes, over DynamoDB's 400 KB item limit; store large values elsewhere (S3) and keep a reference here"
            )));
        }
        Ok((item, KvPair { key: key.to_owned(), value: value.clone(), version, expires }))
    }

    /// Turns an item into a pair, unless it has expired (DynamoDB TTL deletes lazily).
    fn live_pair(&self, item: &Item) -> Option<KvPair> {
        let expires = item.get(TTL_ATTRIBUTE).and_then(AttributeValue::as_i64);
        if expires.is_some_and(|at| at <= (self.clock.now_unix_ms() / 1000) as i64) {
            return None;
        }
        Some(KvPair {
            key: item.get(&self.config.sort_key).and_then(AttributeValue::as_s)?.to_owned(),
            value: item.get(VALUE).map(Value::from_attribute).unwrap_or(Value::Null),
            version: item.get(VERSION).and_then(AttributeValue::as_i64).unwrap_or(0),
            expires,
        })
    }

    fn check_key(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::config("key is empty; DynamoDB sort key values must not be empty"));
        }
        if key.len() > MAX_SORT_KEY_BYTES {
            return Err(Error::config(format!("key is {} bytes; DynamoDB sort key values are limited to {MAX_SORT_KEY_BYTES} bytes", key.len())));
        }
        Ok(())
    }

    fn same_key<'p>(&self, key: &str, previous: &'p KvPair) -> Result<&'p KvPair> {
        if previous.key != key {
            return Err(Error::config(format!("previous is the pair of key {:?}, not of {key:?}", previous.key)));
        }
        Ok(previous)
    }

    fn key(&self, key: &str) -> Item {
        let mut item = Item::new();
        item.insert(self.config.partition_key.clone(), AttributeValue::S(self.config.partition.clone()));
        item.insert(self.config.sort_key.clone(), AttributeValue::S(key.to_owned()));
        item
    }

    /// Turns DynamoDB's key-schema complaints into [`Error::TableSchema`].
    fn explain(&self, error: Error) -> Error {
        error.explain_key_schema(&self.config.table, || {
            format!("{{partition_key}} {:?} and {{sort_key}} {:?}, both strings", self.config.partition_key, self.config.sort_key)
        })
    }

    fn partition_name(&self) -> Name {
        Name::aliased("#partitionKey", self.config.partition_key.clone())
    }

    fn sort_name(&self) -> Name {
        Name::aliased("#sortKey", self.config.sort_key.clone())
    }

    fn expires_name(&self) -> Name {
        Name::aliased("#expires", TTL_ATTRIBUTE)
    }
}
