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

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use async_trait::async_trait;

use crate::clock::{self, SharedClock};
use crate::error::{Error, Result};
use crate::expr::{CompareOp, Condition, Name, Placeholder, SetValue, Update, UpdateAction};
use crate::request::{
    CreateTable, DeleteItem, GetItem, KeyAttribute, PutItem, Query, QueryPage, Request, Response, ReturnValues,
    TableDescription, TableStatus, TimeToLive, TransactItem, TransactWrite, UpdateItem,
};
use crate::transport::Transport;
use crate::value::{item_size, AttributeValue, Item, KeyType, Number, MAX_ITEM_SIZE};

/// DynamoDB's limit on the actions of one TransactWriteItems.
const MAX_TRANSACTION_ACTIONS: usize = 100;

/// DynamoDB stops a Query page once it has read 1 MB.
const QUERY_PAGE_BYTES: usize = 1024 * 1024;

/// How long DynamoDB remembers a transaction's ClientRequestToken.
const IDEMPOTENCY_WINDOW_MS: u64 = 10 * 60 * 1000;

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

struct CompletedTransaction {
    items: Vec<TransactItem>,
    at_unix_ms: u64,
}

impl State {
    fn execute(&mut self, request: Request, now_unix_ms: u64) -> Result<Response> {
        match request {
            Request::GetItem(get) => self.get_item(&get).map(Response::GetItem),
            Request::PutItem(put) => self.put_item(&put).map(Response::Written),
            Request::UpdateItem(update) => self.update_item(&update).map(Response::Written),
            Request::DeleteItem(delete) => self.delete_item(&delete).map(Response::Written),
            Request::Query(query) => self.query(&query).map(Response::Query),
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

    // ----- tables -----

    fn create_table(&mut self, request: CreateTable) -> Result<TableDescription> {
        const OPERATION: &str = "CreateTable";
        check_table_name(OPERATION, &request.table)?;
        let key_attributes = std::iter::once(&request.partition_key).chain(request.sort_key.as_ref());
        if key_attributes.clone().any(|key| key.name.is_empty()) {
            return Err(validation(OPERATION, "Key attribute names must not be empty"));
        }
        if request.sort_key.as_ref().is_some_and(|sort| sort.name == request.partition_key.name) {
            return Err(validation(
                OPERATION,
                "Both the Hash Key and the Range Key element in the KeySchema have the same name",
            ));
        }
        if self.tables.contains_key(&request.table) {
            return Err(Error::Service {
                operation: OPERATION,
                code: "ResourceInUseException".into(),
                message: format!("Table already exists: {}", request.table),
            });
        }
        let table = Table::new(request.partition_key, request.sort_key);
        let description = table.describe(&request.table);
        self.tables.insert(request.table, table);
        Ok(description)
    }

    fn delete_table(&mut self, name: &str) -> Result<()> {
        self.tables.remove(name).map(drop).ok_or_else(|| Error::TableNotFound { table: name.to_owned() })
    }

    fn update_time_to_live(&mut self, name: &str, attribute: String, enabled: bool) -> Result<TimeToLive> {
        const OPERATION: &str = "UpdateTimeToLive";
        let table = self.table_mut(name)?;
        if attribute.is_empty() {
            return Err(validation(OPERATION, "TimeToLiveSpecification.AttributeName must not be empty"));
        }
        // DynamoDB refuses a specification that changes nothing rather than ignoring it.
        let next = match (&table.time_to_live, enabled) {
            (TimeToLive::Enabled { .. } | TimeToLive::Enabling { .. }, true) => {
                return Err(validation(OPERATION, "TimeToLive is already enabled"));
            }
            (TimeToLive::Disabled | TimeToLive::Disabling, false) => {
                return Err(validation(OPERATION, "TimeToLive is already disabled"));
            }
            (TimeToLive::Enabled { attribute: current } | TimeToLive::Enabling { attribute: current }, false)
                if *current != attribute =>
            {
                return Err(validation(
                    OPERATION,
                    format!("TimeToLive is active on a different AttributeName: current AttributeName is {current}"),
                ));
            }
            (_, true) => TimeToLive::Enabled { attribute },
            (_, false) => TimeToLive::Disabled,
        };
        table.time_to_live = next.clone();
        Ok(next)
    }

    // ----- single-item operations -----

    fn get_item(&self, request: &GetItem) -> Result<Option<Item>> {
        let table = self.table(&request.table)?;
        let key = table.request_key("GetItem", &request.key)?;
        Ok(table.get(&key).cloned())
    }

    fn put_item(&mut self, request: &PutItem) -> Result<Option<Item>> {
        const OPERATION: &str = "PutItem";
        check_return_values_old_only(OPERATION, request.return_values)?;
        let prepared = self.prepare_put(OPERATION, request)?;
        self.write(OPERATION, prepared, request.return_values)
    }

    fn update_item(&mut self, request: &UpdateItem) -> Result<Option<Item>> {
        const OPERATION: &str = "UpdateItem";
        let prepared = self.prepare_update(OPERATION, request)?;
        self.write(OPERATION, prepared, request.return_values)
    }

    fn delete_item(&mut self, request: &DeleteItem) -> Result<Option<Item>> {
        const OPERATION: &str = "DeleteItem";
        check_return_values_old_only(OPERATION, request.return_values)?;
        let prepared = self.prepare_delete(OPERATION, request)?;
        self.write(OPERATION, prepared, request.return_values)
    }

    /// Evaluates one prepared write against the current item and applies it.
    fn write(
        &mut self,
        operation: &'static str,
        prepared: Prepared<'_>,
        return_values: ReturnValues,
    ) -> Result<Option<Item>> {
        let table = self.table_mut(prepared.table)?;
        let current = table.get(&prepared.key);
        let outcome = match prepared.evaluate(operation, current) {
            Ok(outcome) => outcome,
            Err(Rejection::ConditionFailed) => {
                let item = current.filter(|_| prepared.return_old_on_condition_failure).cloned().map(Box::new);
                return Err(Error::ConditionalCheckFailed { item });
            }
            Err(Rejection::Invalid(error)) => return Err(error),
        };
        let new_item = match (&outcome, return_values) {
            (Outcome::Store(item), ReturnValues::AllNew) => Some(item.clone()),
            _ => None,
        };
        let old_item = table.commit(prepared.key, outcome);
        Ok(match return_values {
            ReturnValues::None => None,
            ReturnValues::AllOld => old_item,
            ReturnValues::AllNew => new_item,
        })
    }

    // ----- preparing writes: everything DynamoDB rejects before looking at the item -----

    fn prepare_put<'r>(&self, operation: &'static str, request: &'r PutItem) -> Result<Prepared<'r>> {
        let table = self.table(&request.table)?;
        let key = table.item_key(operation, &request.item)?;
        check_attributes(operation, &request.item)?;
        check_item_size(operation, &request.item, "Item size has exceeded the maximum allowed size")?;
        check_optional_condition(operation, request.condition.as_ref())?;
        Ok(Prepared {
            table: &request.table,
            key,
            condition: request.condition.as_ref(),
            change: Change::Put(&request.item),
            return_old_on_condition_failure: request.return_old_on_condition_failure,
        })
    }

    fn prepare_update<'r>(&self, operation: &'static str, request: &'r UpdateItem) -> Result<Prepared<'r>> {
        let table = self.table(&request.table)?;
        let key = table.request_key(operation, &request.key)?;
        table.check_update(operation, &request.update)?;
        check_optional_condition(operation, request.condition.as_ref())?;
        Ok(Prepared {
            table: &request.table,
            key,
            condition: request.condition.as_ref(),
            change: Change::Update { key: &request.key, update: &request.update },
            return_old_on_condition_failure: request.return_old_on_condition_failure,
        })
    }

    fn prepare_delete<'r>(&self, operation: &'static str, request: &'r DeleteItem) -> Result<Prepared<'r>> {
        let table = self.table(&request.table)?;
        let key = table.request_key(operation, &request.key)?;
        check_optional_condition(operation, request.condition.as_ref())?;
        Ok(Prepared {
            table: &request.table,
            key,
            condition: request.condition.as_ref(),
            change: Change::Delete,
            return_old_on_condition_failure: request.return_old_on_condition_failure,
        })
    }

    fn prepare_check<'r>(
        &self,
        operation: &'static str,
        table_name: &'r str,
        key: &'r Item,
        condition: &'r Condition,
    ) -> Result<Prepared<'r>> {
        let table = self.table(table_name)?;
        let key = table.request_key(operation, key)?;
        check_condition(operation, "ConditionExpression", condition)?;
        Ok(Prepared {
            table: table_name,
            key,
            condition: Some(condition),
            change: Change::Check,
            return_old_on_condition_failure: false,
        })
    }

    /// Transaction actions carry no ReturnValues in DynamoDB's API, so theirs are ignored.
    fn prepare_action<'r>(&self, operation: &'static str, action: &'r TransactItem) -> Result<Prepared<'r>> {
        match action {
            TransactItem::ConditionCheck { table, key, condition } => {
                self.prepare_check(operation, table, key, condition)
            }
            TransactItem::Put(put) => self.prepare_put(operation, put),
            TransactItem::Update(update) => self.prepare_update(operation, update),
            TransactItem::Delete(delete) => self.prepare_delete(operation, delete),
        }
    }

    // ----- transactions -----

    fn transact_write(&mut self, request: TransactWrite, now_unix_ms: u64) -> Result<()> {
        const OPERATION: &str = "TransactWriteItems";
        let count = request.items.len();
        if count == 0 || count > MAX_TRANSACTION_ACTIONS {
            return Err(validation(
                OPERATION,
                format!(
                    "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: \
                     Member must have length between 1 and {MAX_TRANSACTION_ACTIONS} (it has {count})"
                ),
            ));
        }
        if let Some(token) = &request.client_request_token {
            if self.replayed_transaction(OPERATION, token, &request.items, now_unix_ms)? {
                return Ok(());
            }
        }

        let prepared =
            request.items.iter().map(|action| self.prepare_action(OPERATION, action)).collect::<Result<Vec<_>>>()?;
        let mut targets = BTreeSet::new();
        if prepared.iter().any(|action| !targets.insert((action.table, &action.key))) {
            return Err(validation(OPERATION, "Transaction request cannot include multiple operations on one item"));
        }

        // Every action is checked against the state before the transaction, and every reason is
        // reported, as DynamoDB's CancellationReasons are.
        let mut outcomes = Vec::with_capacity(count);
        let mut reasons = Vec::with_capacity(count);
        for action in &prepared {
            let current = self.table(action.table)?.get(&action.key);
            match action.evaluate(OPERATION, current) {
                Ok(outcome) => {
                    outcomes.push(outcome);
                    reasons.push("None");
                }
                Err(Rejection::ConditionFailed) => reasons.push("ConditionalCheckFailed"),
                Err(Rejection::Invalid(_)) => reasons.push("ValidationError"),
            }
        }
        if outcomes.len() < count {
            return Err(Error::TransactionCanceled { reasons: reasons.into_iter().map(String::from).collect() });
        }
        for (action, outcome) in prepared.into_iter().zip(outcomes) {
            self.table_mut(action.table)?.commit(action.key, outcome);
        }

        if let Some(token) = request.client_request_token {
            self.transactions.insert(token, CompletedTransaction { items: request.items, at_unix_ms: now_unix_ms });
        }
        Ok(())
    }

    /// True when `token` already completed this very transaction within DynamoDB's ten-minute
    /// window: the retry succeeds without applying anything again.
    fn replayed_transaction(
        &mut self,
        operation: &'static str,
        token: &str,
        items: &[TransactItem],
        now_unix_ms: u64,
    ) -> Result<bool> {
        self.transactions.retain(|_, done| now_unix_ms.saturating_sub(done.at_unix_ms) < IDEMPOTENCY_WINDOW_MS);
        match self.transactions.get(token) {
            None => Ok(false),
            Some(done) if done.items == items => Ok(true),
            Some(_) => Err(Error::Service {
                operation,
                code: "IdempotentParameterMismatchException".into(),
                message: "The request uses the same client token as a previous, but non-identical request.".into(),
            }),
        }
    }

    // ----- query -----

    fn query(&self, request: &Query) -> Result<QueryPage> {
        const OPERATION: &str = "Query";
        let table = self.table(&request.table)?;
        let (partition, prefix) = table.key_condition(OPERATION, request)?;
        if let Some(filter) = &request.filter {
            check_condition(OPERATION, "FilterExpression", filter)?;
            table.check_filter(OPERATION, filter)?;
        }
        let limit = match request.limit {
            Some(0) => return Err(validation(OPERATION, "Limit must be greater than or equal to 1")),
            Some(limit) => usize::try_from(limit).unwrap_or(usize::MAX),
            None => usize::MAX,
        };
        let start = match &request.exclusive_start_key {
            Some(key) => Bound::Excluded(table.start_key(OPERATION, key, &partition, prefix.as_ref())?),
            None => Bound::Unbounded,
        };

        let mut page = QueryPage { items: Vec::new(), last_evaluated_key: None };
        let Some(items) = table.partitions.get(&partition) else {
            return Ok(page);
        };
        let in_range = items.range((start, Bound::Unbounded)).filter(|(sort, _)| {
            prefix.as_ref().is_none_or(|prefix| sort.as_ref().is_some_and(|s| s.starts_with(prefix)))
        });
        let (mut evaluated, mut bytes) = (0, 0);
        for (_, item) in in_range {
            // Limit and the 1 MB page count items read, before the filter drops any.
            evaluated += 1;
            bytes += item_size(item);
            if request.filter.as_ref().is_none_or(|filter| holds(filter, Some(item))) {
                page.items.push(item.clone());
            }
            // DynamoDB does not look ahead: a page that stops at the limit always carries a
            // LastEvaluatedKey, even when no item follows.
            if evaluated >= limit || bytes >= QUERY_PAGE_BYTES {
                page.last_evaluated_key = Some(table.key_attributes_of(item));
                break;
            }
        }
        Ok(page)
    }
}

// ----- writes in two steps: evaluate against the current item, then commit -----

/// A write that passed validation and has not been evaluated against its item yet.
struct Prepared<'r> {
    table: &'r str,
    key: PrimaryKey,
    condition: Option<&'r Condition>,
    change: Change<'r>,
    return_old_on_condition_failure: bool,
}

enum Change<'r> {
    /// A transaction's ConditionCheck: nothing is written.
    Check,
    Put(&'r Item),
    /// `key` becomes the new item's key attributes when the item does not exist yet.
    Update {
        key: &'r Item,
        update: &'r Update,
    },
    Delete,
}

/// What a write does to its item.
enum Outcome {
    Unchanged,
    Store(Item),
    Remove,
}

/// Why a write was refused after looking at the item.
enum Rejection {
    ConditionFailed,
    /// The item makes the write invalid (adding to a string, growing past 400 KB).
    Invalid(Error),
}

impl Prepared<'_> {
    fn evaluate(&self, operation: &'static str, current: Option<&Item>) -> Result<Outcome, Rejection> {
        if self.condition.is_some_and(|condition| !holds(condition, current)) {
            return Err(Rejection::ConditionFailed);
        }
        match self.change {
            Change::Check => Ok(Outcome::Unchanged),
            Change::Put(item) => Ok(Outcome::Store(item.clone())),
            Change::Update { key, update } => {
                apply_update(operation, current, key, update).map(Outcome::Store).map_err(Rejection::Invalid)
            }
            Change::Delete => Ok(Outcome::Remove),
        }
    }
}

// ----- tables and keys -----

struct Table {
    partition_key: KeyAttribute,
    sort_key: Option<KeyAttribute>,
    time_to_live: TimeToLive,
    /// Items by partition, then by sort key (`None` in tables without one), in DynamoDB's order.
    partitions: BTreeMap<KeyPart, BTreeMap<Option<KeyPart>, Item>>,
}

/// A key attribute's value, ordered as DynamoDB orders sort keys: strings and binaries by
/// bytes, numbers numerically (so `1` and `1.0` are the same key, as in DynamoDB).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum KeyPart {
    S(String),
    N(Decimal),
    B(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PrimaryKey {
    partition: KeyPart,
    sort: Option<KeyPart>,
}

impl KeyPart {
    /// The key value of `value` for `attribute`, `None` if its type is not the schema's.
    fn new(operation: &'static str, attribute: &KeyAttribute, value: &AttributeValue) -> Result<Option<KeyPart>> {
        let empty = |kind: &str| {
            validation(
                operation,
                format!(
                    "One or more parameter values are not valid. The AttributeValue for a key attribute \
                     cannot contain an empty {kind} value. Key: {}",
                    attribute.name
                ),
            )
        };
        Ok(Some(match (attribute.key_type, value) {
            (KeyType::S, AttributeValue::S(s)) if s.is_empty() => return Err(empty("string")),
            (KeyType::B, AttributeValue::B(b)) if b.is_empty() => return Err(empty("binary")),
            (KeyType::S, AttributeValue::S(s)) => KeyPart::S(s.clone()),
            (KeyType::B, AttributeValue::B(b)) => KeyPart::B(b.clone()),
            (KeyType::N, AttributeValue::N(n)) => KeyPart::N(parse_number(operation, n)?),
            _ => return Ok(None),
        }))
    }

    fn starts_with(&self, prefix: &KeyPart) -> bool {
        match (self, prefix) {
            (KeyPart::S(s), KeyPart::S(p)) => s.starts_with(p.as_str()),
            (KeyPart::B(b), KeyPart::B(p)) => b.starts_with(p),
            _ => false,
        }
    }
}

fn key_type_descriptor(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::S => "S",
        KeyType::N => "N",
        KeyType::B => "B",
    }
}

impl Table {
    fn new(partition_key: KeyAttribute, sort_key: Option<KeyAttribute>) -> Table {
        Table { partition_key, sort_key, time_to_live: TimeToLive::Disabled, partitions: BTreeMap::new() }
    }

    fn describe(&self, name: &str) -> TableDescription {
        TableDescription {
            table: name.to_owned(),
            status: TableStatus::Active,
            partition_key: self.partition_key.clone(),
            sort_key: self.sort_key.clone(),
        }
    }

    fn key_schema(&self) -> impl Iterator<Item = &KeyAttribute> + Clone {
        std::iter::once(&self.partition_key).chain(self.sort_key.as_ref())
    }

    fn is_key_attribute(&self, name: &str) -> bool {
        self.key_schema().any(|key| key.name == name)
    }

    /// The key a Get/Update/Delete names: exactly the schema's attributes with its types.
    fn request_key(&self, operation: &'static str, key: &Item) -> Result<PrimaryKey> {
        let mismatch = || validation(operation, "The provided key element does not match the schema");
        if key.len() != self.key_schema().count() {
            return Err(mismatch());
        }
        let part = |attribute: &KeyAttribute| -> Result<KeyPart> {
            let value = key.get(&attribute.name).ok_or_else(mismatch)?;
            KeyPart::new(operation, attribute, value)?.ok_or_else(mismatch)
        };
        Ok(PrimaryKey { partition: part(&self.partition_key)?, sort: self.sort_key.as_ref().map(part).transpose()? })
    }

    /// The key of an item to put: its key attributes must be present with the schema's types.
    fn item_key(&self, operation: &'static str, item: &Item) -> Result<PrimaryKey> {
        let part = |attribute: &KeyAttribute| -> Result<KeyPart> {
            let value = item.get(&attribute.name).ok_or_else(|| {
                validation(
                    operation,
                    format!(
                        "One or more parameter values were invalid: Missing the key {} in the item",
                        attribute.name
                    ),
                )
            })?;
            KeyPart::new(operation, attribute, value)?.ok_or_else(|| {
                validation(
                    operation,
                    format!(
                        "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                        attribute.name,
                        key_type_descriptor(attribute.key_type),
                        value.type_name()
                    ),
                )
            })
        };
        Ok(PrimaryKey { partition: part(&self.partition_key)?, sort: self.sort_key.as_ref().map(part).transpose()? })
    }

    fn key_attributes_of(&self, item: &Item) -> Item {
        self.key_schema()
            .filter_map(|key| item.get_key_value(&key.name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    fn get(&self, key: &PrimaryKey) -> Option<&Item> {
        self.partitions.get(&key.partition)?.get(&key.sort)
    }

    /// Applies an outcome; returns the item it replaced or removed.
    fn commit(&mut self, key: PrimaryKey, outcome: Outcome) -> Option<Item> {
        match outcome {
            Outcome::Unchanged => None,
            Outcome::Store(item) => self.partitions.entry(key.partition).or_default().insert(key.sort, item),
            Outcome::Remove => {
                let partition = self.partitions.get_mut(&key.partition)?;
                let old = partition.remove(&key.sort);
                if partition.is_empty() {
                    self.partitions.remove(&key.partition);
                }
                old
            }
        }
    }

    /// DynamoDB refuses updates that touch the key or name one attribute twice.
    fn check_update(&self, operation: &'static str, update: &Update) -> Result<()> {
        let mut targets = BTreeSet::new();
        for action in &update.actions {
            let (UpdateAction::Set(name, _) | UpdateAction::Remove(name)) = action;
            if self.is_key_attribute(&name.attribute) {
                return Err(validation(
                    operation,
                    format!(
                        "One or more parameter values were invalid: Cannot update attribute {}. \
                         This attribute is part of the key",
                        name.attribute
                    ),
                ));
            }
            if !targets.insert(name.attribute.as_str()) {
                return Err(validation(
                    operation,
                    format!(
                        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or \
                         rewrite one of these paths; path one: [{0}], path two: [{0}]",
                        name.attribute
                    ),
                ));
            }
            match action {
                UpdateAction::Set(_, SetValue::Value(value)) => check_attribute(operation, &value.value)?,
                UpdateAction::Set(_, SetValue::IncrementFrom { start, increment }) => {
                    check_attribute(operation, &start.value)?;
                    check_attribute(operation, &increment.value)?;
                    // The literal operand of `+` is typed when the expression is parsed; the
                    // `if_not_exists` operand only when it is evaluated.
                    if !matches!(increment.value, AttributeValue::N(_)) {
                        return Err(incorrect_operand(operation, "UpdateExpression", "+", &increment.value));
                    }
                }
                UpdateAction::Remove(_) => {}
            }
        }
        Ok(())
    }

    /// The partition and optional sort key prefix of a Query, checked against the schema.
    fn key_condition(&self, operation: &'static str, query: &Query) -> Result<(KeyPart, Option<KeyPart>)> {
        let (name, value) = &query.partition;
        if name.attribute != self.partition_key.name {
            return Err(validation(
                operation,
                format!("Query condition missed key schema element: {}", self.partition_key.name),
            ));
        }
        let type_mismatch = || {
            validation(
                operation,
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            )
        };
        let partition = KeyPart::new(operation, &self.partition_key, &value.value)?.ok_or_else(type_mismatch)?;
        let Some((name, value)) = &query.sort_key_prefix else {
            return Ok((partition, None));
        };
        let sort_key = self
            .sort_key
            .as_ref()
            .filter(|sort| sort.name == name.attribute)
            .ok_or_else(|| validation(operation, "Query key condition not supported"))?;
        if sort_key.key_type == KeyType::N {
            return Err(incorrect_operand(operation, "KeyConditionExpression", "begins_with", &value.value));
        }
        let prefix = KeyPart::new(operation, sort_key, &value.value)?.ok_or_else(type_mismatch)?;
        Ok((partition, Some(prefix)))
    }

    /// The sort key a Query resumes after; the start key must lie inside the query's range.
    fn start_key(
        &self,
        operation: &'static str,
        key: &Item,
        partition: &KeyPart,
        prefix: Option<&KeyPart>,
    ) -> Result<Option<KeyPart>> {
        let start = self.request_key(operation, key).map_err(|_| {
            validation(
                operation,
                "The provided starting key is invalid: The provided key element does not match the schema",
            )
        })?;
        if start.partition != *partition {
            return Err(validation(
                operation,
                "The provided starting key is outside query boundaries based on provided conditions",
            ));
        }
        if let (Some(prefix), Some(sort)) = (prefix, &start.sort) {
            if !sort.starts_with(prefix) {
                return Err(validation(operation, "The provided starting key does not match the range key predicate"));
            }
        }
        Ok(start.sort)
    }

    /// A Query's filter may only name non-key attributes.
    fn check_filter(&self, operation: &'static str, filter: &Condition) -> Result<()> {
        match condition_names(filter).into_iter().find(|name| self.is_key_attribute(&name.attribute)) {
            Some(name) => Err(validation(
                operation,
                format!(
                    "Filter Expression can only contain non-primary key attributes: Primary key attribute: {}",
                    name.attribute
                ),
            )),
            None => Ok(()),
        }
    }
}

// ----- validation shared by every request -----

fn validation(operation: &'static str, message: impl Into<String>) -> Error {
    Error::Validation { operation, message: message.into() }
}

fn check_table_name(operation: &'static str, name: &str) -> Result<()> {
    let valid_characters = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if (3..=255).contains(&name.len()) && valid_characters {
        Ok(())
    } else {
        Err(validation(
            operation,
            format!("TableName {name:?} must be 3 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.'"),
        ))
    }
}

fn check_return_values_old_only(operation: &'static str, return_values: ReturnValues) -> Result<()> {
    match return_values {
        ReturnValues::AllNew => Err(validation(operation, "Return values set to invalid value")),
        ReturnValues::None | ReturnValues::AllOld => Ok(()),
    }
}

fn check_item_size(operation: &'static str, item: &Item, message: &str) -> Result<()> {
    if item_size(item) > MAX_ITEM_SIZE {
        Err(validation(operation, message))
    } else {
        Ok(())
    }
}

fn check_attributes(operation: &'static str, item: &Item) -> Result<()> {
    item.values().try_for_each(|value| check_attribute(operation, value))
}

/// What DynamoDB rejects in any value it receives: malformed numbers, empty or duplicated sets.
fn check_attribute(operation: &'static str, value: &AttributeValue) -> Result<()> {
    let set_error = |kind: &str, problem: &str| {
        validation(operation, format!("One or more parameter values were invalid: An {kind} set {problem}"))
    };
    match value {
        AttributeValue::N(n) => parse_number(operation, n).map(drop),
        AttributeValue::Ns(numbers) => {
            if numbers.is_empty() {
                return Err(set_error("number", "may not be empty"));
            }
            let mut seen = BTreeSet::new();
            for n in numbers {
                if !seen.insert(parse_number(operation, n)?) {
                    return Err(set_error("number", "may not contain duplicates"));
                }
            }
            Ok(())
        }
        AttributeValue::Ss(strings) => check_set(
            strings,
            || set_error("string", "may not be empty"),
            || set_error("string", "may not contain duplicates"),
        ),
        AttributeValue::Bs(binaries) => check_set(
            binaries,
            || set_error("binary", "may not be empty"),
            || set_error("binary", "may not contain duplicates"),
        ),
        AttributeValue::L(values) => values.iter().try_for_each(|v| check_attribute(operation, v)),
        AttributeValue::M(map) => check_attributes(operation, map),
        AttributeValue::S(_) | AttributeValue::B(_) | AttributeValue::Bool(_) | AttributeValue::Null => Ok(()),
    }
}

fn check_set<T: Ord>(members: &[T], empty: impl FnOnce() -> Error, duplicate: impl FnOnce() -> Error) -> Result<()> {
    if members.is_empty() {
        return Err(empty());
    }
    if members.iter().collect::<BTreeSet<_>>().len() != members.len() {
        return Err(duplicate());
    }
    Ok(())
}

fn parse_number(operation: &'static str, text: &str) -> Result<Decimal> {
    let invalid = |reason: String| {
        validation(operation, format!("The parameter cannot be converted to a numeric value: {reason}"))
    };
    Number::parse(text).map_err(invalid)?;
    Decimal::parse(text).ok_or_else(|| invalid(format!("{text:?} is not a number")))
}

fn check_optional_condition(operation: &'static str, condition: Option<&Condition>) -> Result<()> {
    condition.map_or(Ok(()), |condition| check_condition(operation, "ConditionExpression", condition))
}

/// What DynamoDB rejects when it parses an expression: empty groups, malformed values, and
/// operand types the operator cannot take (`<` on a boolean, `begins_with` on a number).
fn check_condition(operation: &'static str, expression: &str, condition: &Condition) -> Result<()> {
    match condition {
        Condition::Exists(_) | Condition::NotExists(_) => Ok(()),
        Condition::Compare(_, op, value) => {
            check_attribute(operation, &value.value)?;
            let ordering = !matches!(op, CompareOp::Eq | CompareOp::Ne);
            if ordering && !is_scalar(&value.value) {
                return Err(incorrect_operand(operation, expression, op.symbol(), &value.value));
            }
            Ok(())
        }
        Condition::BeginsWith(_, value) => {
            check_attribute(operation, &value.value)?;
            if !matches!(value.value, AttributeValue::S(_) | AttributeValue::B(_)) {
                return Err(incorrect_operand(operation, expression, "begins_with", &value.value));
            }
            Ok(())
        }
        Condition::And(parts) | Condition::Or(parts) => {
            if parts.is_empty() {
                return Err(validation(operation, format!("Invalid {expression}: The expression can not be empty")));
            }
            parts.iter().try_for_each(|part| check_condition(operation, expression, part))
        }
        Condition::Not(inner) => check_condition(operation, expression, inner),
    }
}

fn incorrect_operand(operation: &'static str, expression: &str, operator: &str, value: &AttributeValue) -> Error {
    validation(
        operation,
        format!(
            "Invalid {expression}: Incorrect operand type for operator or function; operator or function: {operator}, \
             operand type: {}",
            value.type_name()
        ),
    )
}

fn is_scalar(value: &AttributeValue) -> bool {
    matches!(value, AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_))
}

fn condition_names(condition: &Condition) -> Vec<&Name> {
    match condition {
        Condition::Exists(name)
        | Condition::NotExists(name)
        | Condition::Compare(name, _, _)
        | Condition::BeginsWith(name, _) => vec![name],
        Condition::And(parts) | Condition::Or(parts) => parts.iter().flat_map(condition_names).collect(),
        Condition::Not(inner) => condition_names(inner),
    }
}

// ----- condition evaluation -----

/// Evaluates a condition against an item (`None` when there is none) as DynamoDB does.
fn holds(condition: &Condition, item: Option<&Item>) -> bool {
    let attribute = |name: &Name| item.and_then(|item| item.get(&name.attribute));
    match condition {
        Condition::Exists(name) => attribute(name).is_some(),
        Condition::NotExists(name) => attribute(name).is_none(),
        Condition::Compare(name, op, value) => compare(attribute(name), *op, value),
        Condition::BeginsWith(name, prefix) => attribute(name).is_some_and(|value| begins_with(value, &prefix.value)),
        Condition::And(parts) => parts.iter().all(|part| holds(part, item)),
        Condition::Or(parts) => parts.iter().any(|part| holds(part, item)),
        Condition::Not(inner) => !holds(inner, item),
    }
}

fn compare(actual: Option<&AttributeValue>, op: CompareOp, expected: &Placeholder) -> bool {
    // A missing attribute is equal to nothing and ordered against nothing, so `<>` is the one
    // comparison it satisfies. The same goes for values of different types.
    let Some(actual) = actual else {
        return op == CompareOp::Ne;
    };
    let expected = &expected.value;
    match op {
        CompareOp::Eq => values_equal(actual, expected),
        CompareOp::Ne => !values_equal(actual, expected),
        CompareOp::Lt => order(actual, expected).is_some_and(Ordering::is_lt),
        CompareOp::Le => order(actual, expected).is_some_and(Ordering::is_le),
        CompareOp::Gt => order(actual, expected).is_some_and(Ordering::is_gt),
        CompareOp::Ge => order(actual, expected).is_some_and(Ordering::is_ge),
    }
}

/// DynamoDB's ordering: numbers numerically, strings by UTF-8 bytes, binaries by bytes; no
/// other pair of values is ordered.
fn order(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::N(a), AttributeValue::N(b)) => Some(Decimal::parse(a)?.cmp(&Decimal::parse(b)?)),
        (AttributeValue::S(a), AttributeValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (AttributeValue::B(a), AttributeValue::B(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// Deep equality with numbers compared by value and sets compared without order.
fn values_equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (a, b) {
        (V::N(a), V::N(b)) => match (Decimal::parse(a), Decimal::parse(b)) {
            (Some(a), Some(b)) => a == b,
            _ => a == b,
        },
        (V::Ns(a), V::Ns(b)) => {
            let numbers = |set: &[String]| set.iter().map(|n| Decimal::parse(n)).collect::<Option<BTreeSet<_>>>();
            numbers(a).is_some_and(|a| numbers(b).is_some_and(|b| a == b))
        }
        (V::Ss(a), V::Ss(b)) => a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>(),
        (V::Bs(a), V::Bs(b)) => a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>(),
        (V::L(a), V::L(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| values_equal(a, b)),
        (V::M(a), V::M(b)) => {
            a.len() == b.len() && a.iter().all(|(name, a)| b.get(name).is_some_and(|b| values_equal(a, b)))
        }
        _ => a == b,
    }
}

fn begins_with(value: &AttributeValue, prefix: &AttributeValue) -> bool {
    match (value, prefix) {
        (AttributeValue::S(s), AttributeValue::S(p)) => s.starts_with(p.as_str()),
        (AttributeValue::B(b), AttributeValue::B(p)) => b.starts_with(p),
        _ => false,
    }
}

// ----- updates -----

/// The item after an update. Every operand reads the item as it was before the update, as in
/// DynamoDB; an absent item starts from its key attributes.
fn apply_update(operation: &'static str, current: Option<&Item>, key: &Item, update: &Update) -> Result<Item> {
    let mut next = current.cloned().unwrap_or_else(|| key.clone());
    for action in &update.actions {
        match action {
            UpdateAction::Set(name, SetValue::Value(value)) => {
                next.insert(name.attribute.clone(), value.value.clone());
            }
            UpdateAction::Set(name, SetValue::IncrementFrom { start, increment }) => {
                let base = current.and_then(|item| item.get(&name.attribute)).unwrap_or(&start.value);
                next.insert(name.attribute.clone(), add_numbers(operation, base, &increment.value)?);
            }
            UpdateAction::Remove(name) => {
                next.remove(&name.attribute);
            }
        }
    }
    check_item_size(operation, &next, "Item size to update has exceeded the maximum allowed size")?;
    Ok(next)
}

/// `a + b` with DynamoDB's exact decimal arithmetic and its 38-digit, 1E-130..9.99E+125 range.
fn add_numbers(operation: &'static str, a: &AttributeValue, b: &AttributeValue) -> Result<AttributeValue> {
    let (AttributeValue::N(a), AttributeValue::N(b)) = (a, b) else {
        return Err(validation(operation, "An operand in the update expression has an incorrect data type"));
    };
    let sum = parse_number(operation, a)?.add(&parse_number(operation, b)?).to_string();
    Number::parse(&sum).map_err(|reason| validation(operation, format!("Number overflow: {reason}")))?;
    Ok(AttributeValue::N(sum))
}

// ----- exact decimals -----

/// An exact decimal `±digits × 10^exponent`, normalised (no leading or trailing zero digits,
/// zero is positive with no digits) so that equal numbers have equal representations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Decimal {
    negative: bool,
    /// Base-10 digits, most significant first.
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    const ZERO: Decimal = Decimal { negative: false, digits: Vec::new(), exponent: 0 };

    /// Parses DynamoDB's number syntax: `-12`, `3.25`, `.5`, `1e10`, `1E-3`.
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(i) => (&unsigned[..i], unsigned[i + 1..].parse::<i64>().ok()?),
            None => (unsigned, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let digits = whole
            .bytes()
            .chain(fraction.bytes())
            .map(|b| b.is_ascii_digit().then(|| b - b'0'))
            .collect::<Option<Vec<u8>>>()?;
        let exponent = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
        Some(Decimal::normalized(negative, digits, exponent))
    }

    fn normalized(negative: bool, mut digits: Vec<u8>, mut exponent: i64) -> Decimal {
        let leading_zeros = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading_zeros);
        while digits.last() == Some(&0) {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            return Decimal::ZERO;
        }
        Decimal { negative, digits, exponent }
    }

    fn signum(&self) -> i8 {
        match (self.digits.is_empty(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }

    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        // The position of the leading digit decides; then the digits, which carry no trailing
        // zeros, compare lexicographically.
        let magnitude = |d: &Decimal| d.digits.len() as i64 + d.exponent;
        magnitude(self).cmp(&magnitude(other)).then_with(|| self.digits.cmp(&other.digits))
    }

    /// The digits of `|self|` scaled to a smaller or equal exponent.
    fn digits_at(&self, exponent: i64) -> Vec<u8> {
        let zeros = usize::try_from(self.exponent - exponent).unwrap_or(0);
        let mut digits = self.digits.clone();
        digits.resize(digits.len() + zeros, 0);
        digits
    }

    fn add(&self, other: &Decimal) -> Decimal {
        if self.signum() == 0 {
            return other.clone();
        }
        if other.signum() == 0 {
            return self.clone();
        }
        let exponent = self.exponent.min(other.exponent);
        let (a, b) = (self.digits_at(exponent), other.digits_at(exponent));
        if self.negative == other.negative {
            return Decimal::normalized(self.negative, add_digits(&a, &b), exponent);
        }
        match self.cmp_magnitude(other) {
            Ordering::Equal => Decimal::ZERO,
            Ordering::Greater => Decimal::normalized(self.negative, subtract_digits(&a, &b), exponent),
            Ordering::Less => Decimal::normalized(other.negative, subtract_digits(&b, &a), exponent),
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        self.signum().cmp(&other.signum()).then_with(|| {
            let magnitude = self.cmp_magnitude(other);
            if self.negative {
                magnitude.reverse()
            } else {
                magnitude
            }
        })
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Plain notation without an exponent (`1500`, `0.025`), which DynamoDB reads exactly.
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.digits.is_empty() {
            return f.write_str("0");
        }
        let sign = if self.negative { "-" } else { "" };
        let digits: String = self.digits.iter().map(|&d| char::from(b'0' + d)).collect();
        let whole_digits = self.digits.len() as i64 + self.exponent;
        if self.exponent >= 0 {
            let zeros = "0".repeat(usize::try_from(self.exponent).unwrap_or(0));
            write!(f, "{sign}{digits}{zeros}")
        } else if whole_digits > 0 {
            let (whole, fraction) = digits.split_at(usize::try_from(whole_digits).unwrap_or(0));
            write!(f, "{sign}{whole}.{fraction}")
        } else {
            let zeros = "0".repeat(usize::try_from(-whole_digits).unwrap_or(0));
            write!(f, "{sign}0.{zeros}{digits}")
        }
    }
}

/// The sum of two non-negative digit strings (most significant first).
fn add_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut sum = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut a, mut b) = (a.iter().rev(), b.iter().rev());
    let mut carry = 0;
    loop {
        let (x, y) = (a.next(), b.next());
        if x.is_none() && y.is_none() {
            break;
        }
        let total = x.copied().unwrap_or(0) + y.copied().unwrap_or(0) + carry;
        sum.push(total % 10);
        carry = total / 10;
    }
    if carry > 0 {
        sum.push(carry);
    }
    sum.reverse();
    sum
}

/// `larger - smaller` for digit strings with `larger >= smaller`.
fn subtract_digits(larger: &[u8], smaller: &[u8]) -> Vec<u8> {
    let mut difference = Vec::with_capacity(larger.len());
    let mut smaller = smaller.iter().rev();
    let mut borrow = 0;
    for &x in larger.iter().rev() {
        let y = smaller.next().copied().unwrap_or(0) + borrow;
        if x >= y {
            difference.push(x - y);
            borrow = 0;
        } else {
            difference.push(x + 10 - y);
            borrow = 1;
        }
    }
    difference.reverse();
    difference
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::val;
    use crate::transport::TransportExt;

    const TABLE: &str = "locks";

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(text.to_owned())
    }

    fn item(attributes: &[(&str, AttributeValue)]) -> Item {
        attributes.iter().map(|(name, value)| (name.to_string(), value.clone())).collect()
    }

    fn pk() -> Name {
        Name::aliased("#pk", "pk")
    }

    fn attr(name: &str) -> Name {
        Name { placeholder: format!("#{name}").into(), attribute: name.to_owned() }
    }

    fn value(value: AttributeValue) -> Placeholder {
        val(":v", value)
    }

    async fn store_with(sort_key: Option<KeyType>) -> MemoryTransport {
        let store = MemoryTransport::new();
        store
            .execute(Request::CreateTable(CreateTable {
                table: TABLE.into(),
                partition_key: KeyAttribute { name: "pk".into(), key_type: KeyType::S },
                sort_key: sort_key.map(|key_type| KeyAttribute { name: "sk".into(), key_type }),
            }))
            .await
            .unwrap();
        store
    }

    async fn store() -> MemoryTransport {
        store_with(None).await
    }

    fn put(item: Item) -> PutItem {
        PutItem {
            table: TABLE.into(),
            item,
            condition: None,
            return_values: ReturnValues::None,
            return_old_on_condition_failure: false,
        }
    }

    fn update(key: Item, update: Update) -> UpdateItem {
        UpdateItem {
            table: TABLE.into(),
            key,
            update,
            condition: None,
            return_values: ReturnValues::AllNew,
            return_old_on_condition_failure: false,
        }
    }

    fn delete(key: Item) -> DeleteItem {
        DeleteItem {
            table: TABLE.into(),
            key,
            condition: None,
            return_values: ReturnValues::None,
            return_old_on_condition_failure: false,
        }
    }

    async fn get(store: &MemoryTransport, key: Item) -> Option<Item> {
        store.get_item(GetItem { table: TABLE.into(), key, consistent_read: true }).await.unwrap()
    }

    /// Puts `{pk: "a", field: stored}` and reports whether `condition` allowed a second put.
    async fn condition_holds(stored: Option<AttributeValue>, condition: Condition) -> bool {
        let store = store().await;
        let mut first = item(&[("pk", s("a"))]);
        if let Some(stored) = stored {
            first.insert("field".into(), stored);
        }
        store.put_item(put(first)).await.unwrap();
        let second = PutItem { condition: Some(condition), ..put(item(&[("pk", s("a"))])) };
        match store.put_item(second).await {
            Ok(_) => true,
            Err(Error::ConditionalCheckFailed { .. }) => false,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    fn field(op: CompareOp, v: AttributeValue) -> Condition {
        Condition::Compare(attr("field"), op, value(v))
    }

    fn assert_validation<T: fmt::Debug>(result: Result<T>, expected: &str) {
        match result {
            Err(Error::Validation { message, .. }) => {
                assert!(message.contains(expected), "{message:?} lacks {expected:?}")
            }
            other => panic!("expected a validation error containing {expected:?}, got {other:?}"),
        }
    }

    // ----- conditional writes -----

    #[tokio::test]
    async fn conditional_put_succeeds_only_while_the_item_is_absent() {
        let store = store().await;
        let create = |owner: &str| PutItem {
            condition: Some(Condition::NotExists(pk())),
            ..put(item(&[("pk", s("a")), ("owner", s(owner))]))
        };
        assert_eq!(store.put_item(create("first")).await.unwrap(), None);
        let err = store.put_item(create("second")).await.unwrap_err();
        assert!(matches!(err, Error::ConditionalCheckFailed { item: None }), "{err:?}");
        assert_eq!(get(&store, item(&[("pk", s("a"))])).await.unwrap()["owner"], s("first"));
    }

    #[tokio::test]
    async fn failed_condition_returns_the_current_item_when_asked() {
        let store = store().await;
        let current = item(&[("pk", s("a")), ("owner", s("first"))]);
        store.put_item(put(current.clone())).await.unwrap();
        let request = PutItem {
            condition: Some(Condition::NotExists(pk())),
            return_old_on_condition_failure: true,
            ..put(item(&[("pk", s("a"))]))
        };
        match store.put_item(request).await {
            Err(Error::ConditionalCheckFailed { item: Some(old) }) => assert_eq!(*old, current),
            other => panic!("{other:?}"),
        }

        // Nothing to return when the condition failed on an absent item.
        let request = DeleteItem {
            condition: Some(Condition::Exists(pk())),
            return_old_on_condition_failure: true,
            ..delete(item(&[("pk", s("missing"))]))
        };
        assert!(matches!(store.delete_item(request).await, Err(Error::ConditionalCheckFailed { item: None })));
    }

    #[tokio::test]
    async fn put_and_delete_return_the_old_item_when_asked() {
        let store = store().await;
        let all_old = |item: Item| PutItem { return_values: ReturnValues::AllOld, ..put(item) };
        let first = item(&[("pk", s("a")), ("v", n("1"))]);
        assert_eq!(store.put_item(all_old(first.clone())).await.unwrap(), None);
        assert_eq!(store.put_item(all_old(item(&[("pk", s("a")), ("v", n("2"))]))).await.unwrap(), Some(first));
        assert_eq!(store.put_item(put(item(&[("pk", s("a"))]))).await.unwrap(), None, "ReturnValues NONE");

        let request = DeleteItem { return_values: ReturnValues::AllOld, ..delete(item(&[("pk", s("a"))])) };
        assert_eq!(store.delete_item(request.clone()).await.unwrap(), Some(item(&[("pk", s("a"))])));
        assert_eq!(store.delete_item(request).await.unwrap(), None);
        assert_eq!(get(&store, item(&[("pk", s("a"))])).await, None);

        let all_new = PutItem { return_values: ReturnValues::AllNew, ..put(item(&[("pk", s("a"))])) };
        assert_validation(store.put_item(all_new).await, "Return values");
    }

    #[tokio::test]
    async fn conditional_delete_checks_the_current_item() {
        let store = store().await;
        store.put_item(put(item(&[("pk", s("a")), ("guid", s("g1"))]))).await.unwrap();
        let guarded = |guid: &str| DeleteItem {
            condition: Some(Condition::eq(Name::raw("guid"), val(":guid", s(guid)))),
            ..delete(item(&[("pk", s("a"))]))
        };
        assert!(matches!(store.delete_item(guarded("other")).await, Err(Error::ConditionalCheckFailed { .. })));
        assert!(get(&store, item(&[("pk", s("a"))])).await.is_some());
        store.delete_item(guarded("g1")).await.unwrap();
        assert_eq!(get(&store, item(&[("pk", s("a"))])).await, None);
    }

    // ----- condition semantics -----

    #[tokio::test]
    async fn missing_attributes_satisfy_only_not_equal() {
        assert!(condition_holds(None, field(CompareOp::Ne, s("x"))).await);
        for op in [CompareOp::Eq, CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge] {
            assert!(!condition_holds(None, field(op, s("x"))).await, "{op:?}");
        }
        assert!(condition_holds(None, Condition::NotExists(attr("field"))).await);
        assert!(!condition_holds(None, Condition::Exists(attr("field"))).await);
        assert!(!condition_holds(None, Condition::BeginsWith(attr("field"), value(s("")))).await);
    }

    #[tokio::test]
    async fn values_of_another_type_are_unequal_and_unordered() {
        assert!(!condition_holds(Some(s("6")), field(CompareOp::Eq, n("6"))).await);
        assert!(condition_holds(Some(s("6")), field(CompareOp::Ne, n("6"))).await);
        for op in [CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge] {
            assert!(!condition_holds(Some(s("6")), field(op, n("6"))).await, "{op:?}");
        }
    }

    #[tokio::test]
    async fn numbers_compare_numerically_and_exactly() {
        assert!(condition_holds(Some(n("10")), field(CompareOp::Gt, n("9"))).await);
        assert!(!condition_holds(Some(n("10")), field(CompareOp::Lt, n("9"))).await);
        assert!(condition_holds(Some(n("-10")), field(CompareOp::Lt, n("-9"))).await);
        assert!(condition_holds(Some(n("1.50")), field(CompareOp::Eq, n("1.5"))).await);
        assert!(condition_holds(Some(n("1e3")), field(CompareOp::Eq, n("1000"))).await);
        assert!(condition_holds(Some(n("0.1")), field(CompareOp::Ge, n("1E-1"))).await);
        // Beyond f64's 53-bit mantissa: these differ only in the last digit.
        assert!(condition_holds(Some(n("9007199254740993")), field(CompareOp::Gt, n("9007199254740992"))).await);
        let big = "12345678901234567890123456789012345678";
        let bigger = "12345678901234567890123456789012345679";
        assert!(condition_holds(Some(n(big)), field(CompareOp::Lt, n(bigger))).await);
        assert!(condition_holds(Some(n(big)), field(CompareOp::Ne, n(bigger))).await);
    }

    #[tokio::test]
    async fn strings_and_binaries_compare_by_bytes() {
        assert!(condition_holds(Some(s("Z")), field(CompareOp::Lt, s("a"))).await);
        assert!(condition_holds(Some(s("é")), field(CompareOp::Gt, s("z"))).await);
        assert!(condition_holds(Some(s("ab")), field(CompareOp::Gt, s("a"))).await);
        let b = |bytes: &[u8]| AttributeValue::B(bytes.to_vec());
        assert!(condition_holds(Some(b(&[0x80])), field(CompareOp::Gt, b(&[0x7f, 0xff]))).await);
        assert!(condition_holds(Some(b(&[1, 2])), field(CompareOp::Eq, b(&[1, 2]))).await);
    }

    #[tokio::test]
    async fn begins_with_matches_strings_and_binaries_of_the_same_type() {
        let begins = |prefix: AttributeValue| Condition::BeginsWith(attr("field"), value(prefix));
        assert!(condition_holds(Some(s("lock#1")), begins(s("lock#"))).await);
        assert!(!condition_holds(Some(s("lock#1")), begins(s("lock#2"))).await);
        assert!(condition_holds(Some(AttributeValue::B(vec![1, 2, 3])), begins(AttributeValue::B(vec![1, 2]))).await);
        assert!(!condition_holds(Some(s("12")), begins(AttributeValue::B(b"1".to_vec()))).await);

        let store = store().await;
        let request = PutItem { condition: Some(begins(n("1"))), ..put(item(&[("pk", s("a"))])) };
        assert_validation(store.put_item(request).await, "begins_with");
    }

    #[tokio::test]
    async fn composite_conditions_combine_like_dynamodb() {
        let lost = Condition::NotExists(attr("field"));
        let owned = field(CompareOp::Eq, s("me"));
        assert!(condition_holds(Some(s("me")), lost.clone().or(owned.clone())).await);
        assert!(!condition_holds(Some(s("you")), lost.clone().or(owned.clone())).await);
        assert!(
            !condition_holds(
                Some(s("me")),
                Condition::Exists(attr("field")).and(Condition::Not(Box::new(owned.clone())))
            )
            .await
        );
        // NOT of a comparison on a missing attribute is true.
        assert!(condition_holds(None, Condition::Not(Box::new(owned))).await);
        assert!(condition_holds(Some(s("x")), Condition::Exists(pk()).and(Condition::Exists(attr("field")))).await);
    }

    #[tokio::test]
    async fn deep_values_compare_numbers_by_value_and_sets_without_order() {
        let stored =
            AttributeValue::M(item(&[("n", n("1.0")), ("tags", AttributeValue::Ss(vec!["a".into(), "b".into()]))]));
        let same =
            AttributeValue::M(item(&[("n", n("1")), ("tags", AttributeValue::Ss(vec!["b".into(), "a".into()]))]));
        let other =
            AttributeValue::M(item(&[("n", n("2")), ("tags", AttributeValue::Ss(vec!["a".into(), "b".into()]))]));
        assert!(condition_holds(Some(stored.clone()), field(CompareOp::Eq, same)).await);
        assert!(condition_holds(Some(stored), field(CompareOp::Ne, other)).await);
    }

    #[tokio::test]
    async fn ordering_a_non_scalar_operand_is_refused() {
        let store = store().await;
        let request = PutItem {
            condition: Some(field(CompareOp::Lt, AttributeValue::Bool(true))),
            ..put(item(&[("pk", s("a"))]))
        };
        assert_validation(store.put_item(request).await, "operator or function: <, operand type: BOOL");
    }

    // ----- updates -----

    #[tokio::test]
    async fn update_creates_the_item_from_its_key() {
        let store = store().await;
        let key = item(&[("pk", s("a"))]);
        let set = Update::default().set(attr("owner"), val(":owner", s("me")));
        let request = UpdateItem { return_values: ReturnValues::AllOld, ..update(key.clone(), set.clone()) };
        assert_eq!(store.update_item(request).await.unwrap(), None, "no old item");
        assert_eq!(get(&store, key.clone()).await, Some(item(&[("pk", s("a")), ("owner", s("me"))])));

        let new = store.update_item(update(key.clone(), Update::default().remove(attr("owner")))).await.unwrap();
        assert_eq!(new, Some(key.clone()));

        // A condition that fails on the absent item creates nothing.
        let other = item(&[("pk", s("b"))]);
        let request = UpdateItem { condition: Some(Condition::Exists(pk())), ..update(other.clone(), set) };
        assert!(matches!(store.update_item(request).await, Err(Error::ConditionalCheckFailed { item: None })));
        assert_eq!(get(&store, other).await, None);
    }

    #[tokio::test]
    async fn update_returns_old_or_new_attributes() {
        let store = store().await;
        let key = item(&[("pk", s("a"))]);
        store.put_item(put(item(&[("pk", s("a")), ("v", n("1")), ("gone", s("x"))]))).await.unwrap();
        let change = Update::default().set(attr("v"), value(n("2"))).remove(attr("gone"));
        let request = UpdateItem { return_values: ReturnValues::AllOld, ..update(key.clone(), change.clone()) };
        assert_eq!(
            store.update_item(request).await.unwrap(),
            Some(item(&[("pk", s("a")), ("v", n("1")), ("gone", s("x"))]))
        );
        assert_eq!(
            store.update_item(update(key.clone(), change.clone())).await.unwrap(),
            Some(item(&[("pk", s("a")), ("v", n("2"))]))
        );
        let request = UpdateItem { return_values: ReturnValues::None, ..update(key, change) };
        assert_eq!(store.update_item(request).await.unwrap(), None);
    }

    #[tokio::test]
    async fn increment_starts_from_a_missing_attribute_and_stays_exact() {
        let store = store().await;
        let key = item(&[("pk", s("a"))]);
        let increment =
            |by: &str| Update::default().increment(Name::raw("fencingToken"), val(":zero", n("0")), val(":by", n(by)));
        let token = |item: Option<Item>| item.unwrap()["fencingToken"].clone();
        assert_eq!(token(store.update_item(update(key.clone(), increment("1"))).await.unwrap()), n("1"));
        assert_eq!(token(store.update_item(update(key.clone(), increment("1"))).await.unwrap()), n("2"));
        assert_eq!(token(store.update_item(update(key.clone(), increment("-5"))).await.unwrap()), n("-3"));

        let big = "99999999999999999999999999999999999999";
        store
            .put_item(put(item(&[("pk", s("a")), ("fencingToken", n("99999999999999999999999999999999999998"))])))
            .await
            .unwrap();
        assert_eq!(token(store.update_item(update(key.clone(), increment("1"))).await.unwrap()), n(big));
        let carried = format!("1{}", "0".repeat(38));
        assert_eq!(token(store.update_item(update(key.clone(), increment("1"))).await.unwrap()), n(&carried));
        // 39 significant digits, or a magnitude past 9.99E+125, do not fit DynamoDB's numbers.
        assert_validation(store.update_item(update(key.clone(), increment("1"))).await, "Number overflow");
        store.put_item(put(item(&[("pk", s("a")), ("fencingToken", n("9.99E+125"))]))).await.unwrap();
        assert_validation(store.update_item(update(key.clone(), increment("9.99E+125"))).await, "Number overflow");

        store.put_item(put(item(&[("pk", s("a")), ("fencingToken", n("0.1"))]))).await.unwrap();
        assert_eq!(token(store.update_item(update(key, increment("0.2"))).await.unwrap()), n("0.3"));
    }

    #[tokio::test]
    async fn increment_of_a_non_number_is_refused() {
        let store = store().await;
        let key = item(&[("pk", s("a"))]);
        store.put_item(put(item(&[("pk", s("a")), ("count", s("seven"))]))).await.unwrap();
        let increment = Update::default().increment(attr("count"), val(":zero", n("0")), val(":one", n("1")));
        assert_validation(store.update_item(update(key.clone(), increment)).await, "incorrect data type");
        assert_eq!(get(&store, key.clone()).await.unwrap()["count"], s("seven"), "unchanged");

        let by_string = Update::default().increment(attr("other"), val(":zero", n("0")), val(":one", s("1")));
        assert_validation(store.update_item(update(key, by_string)).await, "operator or function: +");
    }

    #[tokio::test]
    async fn updates_may_not_touch_the_key_or_one_attribute_twice() {
        let store = store_with(Some(KeyType::S)).await;
        let key = item(&[("pk", s("a")), ("sk", s("1"))]);
        let set_sort = Update::default().set(attr("sk"), value(s("2")));
        assert_validation(store.update_item(update(key.clone(), set_sort)).await, "Cannot update attribute sk");
        assert_validation(
            store.update_item(update(key.clone(), Update::default().remove(pk()))).await,
            "part of the key",
        );
        let twice = Update::default().set(attr("x"), value(s("1"))).remove(attr("x"));
        assert_validation(store.update_item(update(key.clone(), twice)).await, "overlap");
        assert_eq!(get(&store, key).await, None);
    }

    // ----- keys, values and sizes -----

    #[tokio::test]
    async fn keys_must_match_the_schema() {
        let store = store_with(Some(KeyType::N)).await;
        let schema = "The provided key element does not match the schema";
        let get = |key: Item| store.get_item(GetItem { table: TABLE.into(), key, consistent_read: false });
        assert_validation(get(item(&[("pk", s("a"))])).await, schema);
        assert_validation(get(item(&[("pk", s("a")), ("sk", s("1"))])).await, schema);
        assert_validation(get(item(&[("pk", s("a")), ("sk", n("1")), ("extra", s("x"))])).await, schema);
        assert_validation(get(item(&[("id", s("a")), ("sk", n("1"))])).await, schema);
        assert_validation(get(item(&[("pk", s("")), ("sk", n("1"))])).await, "empty string");
        assert_validation(get(item(&[("pk", s("a")), ("sk", n("one"))])).await, "numeric");
        assert_eq!(get(item(&[("pk", s("a")), ("sk", n("1"))])).await.unwrap(), None);

        assert_validation(store.put_item(put(item(&[("pk", s("a"))]))).await, "Missing the key sk");
        assert_validation(
            store.put_item(put(item(&[("pk", s("a")), ("sk", s("1"))]))).await,
            "Type mismatch for key sk",
        );
        assert_validation(store.delete_item(delete(item(&[("sk", n("1"))]))).await, schema);
    }

    #[tokio::test]
    async fn numeric_keys_are_equal_by_value() {
        let store = store_with(Some(KeyType::N)).await;
        store.put_item(put(item(&[("pk", s("a")), ("sk", n("1.0")), ("v", s("x"))]))).await.unwrap();
        let found = get(&store, item(&[("pk", s("a")), ("sk", n("1"))])).await.unwrap();
        assert_eq!(found["v"], s("x"));
    }

    #[tokio::test]
    async fn invalid_values_are_refused() {
        let store = store().await;
        let with = |v: AttributeValue| put(item(&[("pk", s("a")), ("v", v)]));
        assert_validation(store.put_item(with(n("12abc"))).await, "numeric");
        assert_validation(store.put_item(with(n("1e200"))).await, "numeric");
        assert_validation(store.put_item(with(AttributeValue::Ss(vec![]))).await, "may not be empty");
        assert_validation(store.put_item(with(AttributeValue::Ns(vec!["1".into(), "1.0".into()]))).await, "duplicates");
        assert_validation(store.put_item(with(AttributeValue::L(vec![n("x")]))).await, "numeric");
        // Empty strings are fine outside keys.
        store.put_item(with(s(""))).await.unwrap();
    }

    #[tokio::test]
    async fn items_over_400_kb_are_refused() {
        let store = store().await;
        let key = item(&[("pk", s("a"))]);
        // Name and value count: "pk" + "a" + "blob" + 400 KB - 7 bytes is exactly the limit.
        let fits = MAX_ITEM_SIZE - "pk".len() - "a".len() - "blob".len();
        store.put_item(put(item(&[("pk", s("a")), ("blob", AttributeValue::B(vec![0; fits]))]))).await.unwrap();
        let too_big = put(item(&[("pk", s("a")), ("blob", AttributeValue::B(vec![0; fits + 1]))]));
        assert_validation(store.put_item(too_big).await, "Item size has exceeded the maximum allowed size");

        let grow = Update::default().set(attr("x"), value(s("y")));
        assert_validation(store.update_item(update(key.clone(), grow)).await, "Item size to update has exceeded");
        assert!(!get(&store, key).await.unwrap().contains_key("x"));
    }

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

    // ----- tables and time to live -----

    #[tokio::test]
    async fn tables_are_created_once_described_and_deleted() {
        let store = store_with(Some(KeyType::B)).await;
        match store.execute(Request::DescribeTable { table: TABLE.into() }).await.unwrap() {
            Response::Table(description) => {
                assert_eq!(description.status, TableStatus::Active);
                assert_eq!(description.partition_key, KeyAttribute { name: "pk".into(), key_type: KeyType::S });
                assert_eq!(description.sort_key, Some(KeyAttribute { name: "sk".into(), key_type: KeyType::B }));
            }
            other => panic!("{other:?}"),
        }
        let again = CreateTable {
            table: TABLE.into(),
            partition_key: KeyAttribute { name: "pk".into(), key_type: KeyType::S },
            sort_key: None,
        };
        match store.execute(Request::CreateTable(again)).await {
            Err(Error::Service { operation: "CreateTable", code, .. }) => assert_eq!(code, "ResourceInUseException"),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.execute(Request::DeleteTable { table: TABLE.into() }).await.unwrap(), Response::TableDeleted);
        assert!(matches!(
            store
                .get_item(GetItem {
                    table: TABLE.into(),
                    key: item(&[("pk", s("a")), ("sk", AttributeValue::B(vec![1]))]),
                    consistent_read: true
                })
                .await,
            Err(Error::TableNotFound { .. })
        ));

        let bad_name = CreateTable {
            table: "x".into(),
            partition_key: KeyAttribute { name: "pk".into(), key_type: KeyType::S },
            sort_key: None,
        };
        assert_validation(store.execute(Request::CreateTable(bad_name)).await, "TableName");
    }

    #[tokio::test]
    async fn time_to_live_is_enabled_once_and_hides_nothing() {
        let store = store().await;
        let ttl =
            |enabled: bool| Request::UpdateTimeToLive { table: TABLE.into(), attribute: "expires".into(), enabled };
        let describe = || Request::DescribeTimeToLive { table: TABLE.into() };
        assert_eq!(store.execute(describe()).await.unwrap(), Response::TimeToLive(TimeToLive::Disabled));
        let enabled = Response::TimeToLive(TimeToLive::Enabled { attribute: "expires".into() });
        assert_eq!(store.execute(ttl(true)).await.unwrap(), enabled);
        assert_eq!(store.execute(describe()).await.unwrap(), enabled);
        assert_validation(store.execute(ttl(true)).await, "TimeToLive is already enabled");

        // Expired items stay readable: DynamoDB deletes them lazily, up to days later.
        let expired = item(&[("pk", s("a")), ("expires", n("1"))]);
        store.put_item(put(expired.clone())).await.unwrap();
        assert_eq!(get(&store, item(&[("pk", s("a"))])).await, Some(expired));

        assert_eq!(store.execute(ttl(false)).await.unwrap(), Response::TimeToLive(TimeToLive::Disabled));
        assert_validation(store.execute(ttl(false)).await, "already disabled");
    }

    // ----- query -----

    fn query(partition: &str) -> Query {
        Query {
            table: TABLE.into(),
            partition: (pk(), val(":pk", s(partition))),
            sort_key_prefix: None,
            filter: None,
            consistent_read: true,
            limit: None,
            exclusive_start_key: None,
        }
    }

    fn sort_keys(page: &QueryPage) -> Vec<AttributeValue> {
        page.items.iter().map(|item| item["sk"].clone()).collect()
    }

    async fn store_of(sort_type: KeyType, sorts: &[AttributeValue]) -> MemoryTransport {
        let store = store_with(Some(sort_type)).await;
        for (i, sort) in sorts.iter().enumerate() {
            let index = AttributeValue::int(i as i64);
            store.put_item(put(item(&[("pk", s("p")), ("sk", sort.clone()), ("i", index)]))).await.unwrap();
            store.put_item(put(item(&[("pk", s("other")), ("sk", sort.clone())]))).await.unwrap();
        }
        store
    }

    #[tokio::test]
    async fn query_orders_numbers_numerically_and_strings_by_bytes() {
        let store = store_of(KeyType::N, &[n("10"), n("9"), n("-1"), n("2.5")]).await;
        let page = store.query(query("p")).await.unwrap();
        assert_eq!(sort_keys(&page), vec![n("-1"), n("2.5"), n("9"), n("10")]);
        assert_eq!(page.last_evaluated_key, None);

        let store = store_of(KeyType::S, &[s("b"), s("a"), s("B"), s("é"), s("ab")]).await;
        let page = store.query(query("p")).await.unwrap();
        assert_eq!(sort_keys(&page), vec![s("B"), s("a"), s("ab"), s("b"), s("é")]);
        assert_eq!(store.query(query("nobody")).await.unwrap(), QueryPage { items: vec![], last_evaluated_key: None });
    }

    #[tokio::test]
    async fn query_narrows_to_a_sort_key_prefix() {
        let store = store_of(KeyType::S, &[s("lock#2"), s("data"), s("lock#1"), s("lock"), s("lockz")]).await;
        let request = Query { sort_key_prefix: Some((attr("sk"), val(":prefix", s("lock#")))), ..query("p") };
        assert_eq!(sort_keys(&store.query(request).await.unwrap()), vec![s("lock#1"), s("lock#2")]);

        let store = store_of(
            KeyType::B,
            &[AttributeValue::B(vec![1, 2]), AttributeValue::B(vec![2]), AttributeValue::B(vec![1])],
        )
        .await;
        let request =
            Query { sort_key_prefix: Some((attr("sk"), val(":prefix", AttributeValue::B(vec![1])))), ..query("p") };
        assert_eq!(
            sort_keys(&store.query(request).await.unwrap()),
            vec![AttributeValue::B(vec![1]), AttributeValue::B(vec![1, 2])]
        );
    }

    #[tokio::test]
    async fn query_pages_resume_after_the_last_evaluated_key() {
        let store = store_of(KeyType::N, &[n("1"), n("2"), n("3"), n("4"), n("5")]).await;
        let mut seen = Vec::new();
        let mut start = None;
        let mut pages = 0;
        loop {
            let request = Query { limit: Some(2), exclusive_start_key: start.take(), ..query("p") };
            let page = store.query(request).await.unwrap();
            pages += 1;
            seen.extend(sort_keys(&page));
            match page.last_evaluated_key {
                Some(key) => {
                    assert_eq!(
                        key,
                        item(&[("pk", s("p")), ("sk", page.items.last().unwrap()["sk"].clone())]),
                        "key attributes only"
                    );
                    start = Some(key);
                }
                None => break,
            }
        }
        assert_eq!(seen, vec![n("1"), n("2"), n("3"), n("4"), n("5")]);
        assert_eq!(pages, 3);

        // A page that ends exactly at the limit still carries a key, and the next one is empty.
        let request = Query { limit: Some(5), ..query("p") };
        let last = store.query(request).await.unwrap().last_evaluated_key;
        assert_eq!(last, Some(item(&[("pk", s("p")), ("sk", n("5"))])));
        let after = store.query(Query { exclusive_start_key: last, ..query("p") }).await.unwrap();
        assert_eq!(after, QueryPage { items: vec![], last_evaluated_key: None });

        // The start key need not exist.
        let request = Query { exclusive_start_key: Some(item(&[("pk", s("p")), ("sk", n("2.5"))])), ..query("p") };
        assert_eq!(sort_keys(&store.query(request).await.unwrap()), vec![n("3"), n("4"), n("5")]);
    }

    #[tokio::test]
    async fn query_limit_counts_items_before_the_filter() {
        let store = store_of(KeyType::N, &[n("1"), n("2"), n("3"), n("4")]).await;
        // Keep items with an odd index: sort keys 2 and 4.
        let odd = Condition::Compare(attr("i"), CompareOp::Eq, value(n("1"))).or(Condition::Compare(
            attr("i"),
            CompareOp::Eq,
            value(n("3")),
        ));
        let request = Query { limit: Some(1), filter: Some(odd.clone()), ..query("p") };
        let page = store.query(request).await.unwrap();
        assert!(page.items.is_empty(), "the one evaluated item was filtered out");
        assert_eq!(page.last_evaluated_key, Some(item(&[("pk", s("p")), ("sk", n("1"))])));

        let request = Query { limit: Some(3), filter: Some(odd.clone()), ..query("p") };
        assert_eq!(sort_keys(&store.query(request).await.unwrap()), vec![n("2")]);
        let request = Query { filter: Some(odd), ..query("p") };
        assert_eq!(sort_keys(&store.query(request).await.unwrap()), vec![n("2"), n("4")]);
    }

    #[tokio::test]
    async fn query_pages_stop_at_one_megabyte() {
        let store = store_with(Some(KeyType::N)).await;
        for i in 0..4 {
            let blob = AttributeValue::B(vec![0; 350 * 1024]);
            store.put_item(put(item(&[("pk", s("p")), ("sk", AttributeValue::int(i)), ("blob", blob)]))).await.unwrap();
        }
        let page = store.query(query("p")).await.unwrap();
        assert_eq!(page.items.len(), 3);
        assert_eq!(page.last_evaluated_key, Some(item(&[("pk", s("p")), ("sk", n("2"))])));
    }

    #[tokio::test]
    async fn query_without_sort_key_returns_the_partition_item() {
        let store = store().await;
        store.put_item(put(item(&[("pk", s("a")), ("v", n("1"))]))).await.unwrap();
        store.put_item(put(item(&[("pk", s("b"))]))).await.unwrap();
        let page = store.query(query("a")).await.unwrap();
        assert_eq!(page.items, vec![item(&[("pk", s("a")), ("v", n("1"))])]);
        assert_eq!(page.last_evaluated_key, None);
        let request = Query { sort_key_prefix: Some((attr("sk"), val(":prefix", s("x")))), ..query("a") };
        assert_validation(store.query(request).await, "Query key condition not supported");
    }

    #[tokio::test]
    async fn query_rejects_what_dynamodb_rejects() {
        let store = store_of(KeyType::S, &[s("a1"), s("b1")]).await;
        let wrong_partition = Query { partition: (attr("id"), val(":pk", s("p"))), ..query("p") };
        assert_validation(store.query(wrong_partition).await, "missed key schema element: pk");
        let wrong_type = Query { partition: (pk(), val(":pk", n("1"))), ..query("p") };
        assert_validation(store.query(wrong_type).await, "does not match schema type");
        let key_filter = Query { filter: Some(Condition::Exists(attr("sk"))), ..query("p") };
        assert_validation(store.query(key_filter).await, "Primary key attribute: sk");
        assert_validation(store.query(Query { limit: Some(0), ..query("p") }).await, "Limit");
        let outside = Query { exclusive_start_key: Some(item(&[("pk", s("other")), ("sk", s("a1"))])), ..query("p") };
        assert_validation(store.query(outside).await, "outside query boundaries");
        let outside_prefix = Query {
            sort_key_prefix: Some((attr("sk"), val(":prefix", s("b")))),
            exclusive_start_key: Some(item(&[("pk", s("p")), ("sk", s("a1"))])),
            ..query("p")
        };
        assert_validation(store.query(outside_prefix).await, "range key predicate");
        let partial = Query { exclusive_start_key: Some(item(&[("pk", s("p"))])), ..query("p") };
        assert_validation(store.query(partial).await, "starting key is invalid");

        let numeric = store_of(KeyType::N, &[n("1")]).await;
        let request = Query { sort_key_prefix: Some((attr("sk"), val(":prefix", s("1")))), ..query("p") };
        assert_validation(numeric.query(request).await, "begins_with");
    }

    // ----- transactions -----

    fn transaction(items: Vec<TransactItem>) -> TransactWrite {
        TransactWrite { items, client_request_token: None }
    }

    #[tokio::test]
    async fn transaction_applies_every_action_or_none() {
        let store = store().await;
        store.put_item(put(item(&[("pk", s("guard")), ("v", n("1"))]))).await.unwrap();
        store.put_item(put(item(&[("pk", s("doomed"))]))).await.unwrap();
        let actions = |guard_value: &str| {
            vec![
                TransactItem::Put(put(item(&[("pk", s("new"))]))),
                TransactItem::ConditionCheck {
                    table: TABLE.into(),
                    key: item(&[("pk", s("guard"))]),
                    condition: Condition::Compare(attr("v"), CompareOp::Eq, value(n(guard_value))),
                },
                TransactItem::Update(update(
                    item(&[("pk", s("counter"))]),
                    Update::default().set(attr("v"), value(n("7"))),
                )),
                TransactItem::Delete(DeleteItem {
                    condition: Some(Condition::Exists(pk())),
                    ..delete(item(&[("pk", s("doomed"))]))
                }),
            ]
        };

        match store.transact_write(transaction(actions("2"))).await {
            Err(Error::TransactionCanceled { reasons }) => {
                assert_eq!(reasons, vec!["None", "ConditionalCheckFailed", "None", "None"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(get(&store, item(&[("pk", s("new"))])).await, None);
        assert_eq!(get(&store, item(&[("pk", s("counter"))])).await, None);
        assert!(get(&store, item(&[("pk", s("doomed"))])).await.is_some());

        store.transact_write(transaction(actions("1"))).await.unwrap();
        assert!(get(&store, item(&[("pk", s("new"))])).await.is_some());
        assert_eq!(get(&store, item(&[("pk", s("counter"))])).await.unwrap()["v"], n("7"));
        assert_eq!(get(&store, item(&[("pk", s("doomed"))])).await, None);
    }

    #[tokio::test]
    async fn transaction_reports_every_failed_action() {
        let store = store().await;
        store.put_item(put(item(&[("pk", s("a")), ("count", s("text"))]))).await.unwrap();
        let actions = vec![
            TransactItem::Put(PutItem { condition: Some(Condition::NotExists(pk())), ..put(item(&[("pk", s("a"))])) }),
            TransactItem::Put(PutItem { condition: Some(Condition::Exists(pk())), ..put(item(&[("pk", s("b"))])) }),
            TransactItem::Update(update(item(&[("pk", s("c"))]), Update::default().set(attr("x"), value(s("y"))))),
        ];
        match store.transact_write(transaction(actions)).await {
            Err(Error::TransactionCanceled { reasons }) => {
                assert_eq!(reasons, vec!["ConditionalCheckFailed", "ConditionalCheckFailed", "None"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(get(&store, item(&[("pk", s("c"))])).await, None);

        // An update the item makes invalid cancels the transaction with ValidationError.
        let bad_increment = Update::default().increment(attr("count"), val(":zero", n("0")), val(":one", n("1")));
        let actions = vec![
            TransactItem::Update(update(item(&[("pk", s("a"))]), bad_increment)),
            TransactItem::Put(put(item(&[("pk", s("b"))]))),
        ];
        match store.transact_write(transaction(actions)).await {
            Err(Error::TransactionCanceled { reasons }) => assert_eq!(reasons, vec!["ValidationError", "None"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(get(&store, item(&[("pk", s("b"))])).await, None);
    }

    #[tokio::test]
    async fn transaction_validation() {
        let store = store().await;
        let twice = vec![
            TransactItem::Put(put(item(&[("pk", s("a"))]))),
            TransactItem::Delete(delete(item(&[("pk", s("a"))]))),
        ];
        assert_validation(store.transact_write(transaction(twice)).await, "multiple operations on one item");

        let too_many =
            (0..=MAX_TRANSACTION_ACTIONS).map(|i| TransactItem::Put(put(item(&[("pk", s(&i.to_string()))])))).collect();
        assert_validation(store.transact_write(transaction(too_many)).await, "transactItems");
        assert_validation(store.transact_write(transaction(vec![])).await, "transactItems");

        let hundred =
            (0..MAX_TRANSACTION_ACTIONS).map(|i| TransactItem::Put(put(item(&[("pk", s(&i.to_string()))])))).collect();
        store.transact_write(transaction(hundred)).await.unwrap();
        assert!(get(&store, item(&[("pk", s("99"))])).await.is_some());

        let bad_key = vec![TransactItem::Delete(delete(item(&[("pk", n("1"))])))];
        assert_validation(store.transact_write(transaction(bad_key)).await, "does not match the schema");
    }

    #[tokio::test(start_paused = true)]
    async fn transaction_tokens_make_retries_idempotent_for_ten_minutes() {
        let store = MemoryTransport::with_clock(Arc::new(clock::TokioClock::starting_at(1_000_000)));
        store
            .execute(Request::CreateTable(CreateTable {
                table: TABLE.into(),
                partition_key: KeyAttribute { name: "pk".into(), key_type: KeyType::S },
                sort_key: None,
            }))
            .await
            .unwrap();
        let create = || TransactWrite {
            items: vec![TransactItem::Put(PutItem {
                condition: Some(Condition::NotExists(pk())),
                ..put(item(&[("pk", s("a"))]))
            })],
            client_request_token: Some("token-1".into()),
        };
        store.transact_write(create()).await.unwrap();
        store.transact_write(create()).await.unwrap();

        let different = TransactWrite { items: vec![TransactItem::Put(put(item(&[("pk", s("b"))])))], ..create() };
        assert!(matches!(
            store.transact_write(different).await,
            Err(Error::Service { code, .. }) if code == "IdempotentParameterMismatchException"
        ));

        tokio::time::advance(std::time::Duration::from_millis(IDEMPOTENCY_WINDOW_MS)).await;
        assert!(matches!(store.transact_write(create()).await, Err(Error::TransactionCanceled { .. })));
    }

    // ----- sharing -----

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

    // ----- decimals -----

    fn decimal(text: &str) -> Decimal {
        Decimal::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn decimals_parse_and_normalise() {
        assert_eq!(decimal("1.50"), decimal("1.5"));
        assert_eq!(decimal("0.000"), Decimal::ZERO);
        assert_eq!(decimal("-0"), Decimal::ZERO);
        assert_eq!(decimal("1e3"), decimal("1000"));
        assert_eq!(decimal(".5"), decimal("5E-1"));
        for bad in ["", "-", ".", "1e", "abc", "1.2.3", "+-1", "1e1.5"] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn decimals_order_numerically() {
        let ordered = ["-100", "-9.5", "-9", "-0.001", "0", "0.001", "0.01", "1", "1.05", "1.5", "9", "10", "1e2"];
        for pair in ordered.windows(2) {
            assert!(decimal(pair[0]) < decimal(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn decimals_add_exactly() {
        let sum = |a: &str, b: &str| decimal(a).add(&decimal(b)).to_string();
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("9", "1"), "10");
        assert_eq!(sum("1", "-1"), "0");
        assert_eq!(sum("-5", "3"), "-2");
        assert_eq!(sum("3", "-5"), "-2");
        assert_eq!(sum("1e3", "0.25"), "1000.25");
        assert_eq!(sum("-0.001", "0"), "-0.001");
        assert_eq!(sum("170141183460469231731687303715884105727", "1"), "170141183460469231731687303715884105728");
        assert_eq!(sum("1E-130", "1E-130"), "0.".to_owned() + &"0".repeat(129) + "2");
    }
}
