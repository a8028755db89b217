//! Operating a lock table from outside the lock protocol: what each item is, listing them,
//! freeing a lock whose holder is gone, and deleting released items nobody uses.
//!
//! Every write here is conditioned on what the operator was shown (the holder's guid and
//! token), so it never frees a lock that changed hands in between: the `dynalease` command line
//! uses these, and any tool that wants the same guarantees should too.

use crate::error::{Error, Result};
use crate::expr::{val, Condition, Name, Update};
use crate::lock::item::{new_guid, LockId, LockTable, Observed, GUID, LEASE_DURATION_MS, LOCK_DATA, RELEASED_LEASE_MS, SEMAPHORE_PERMITS};
use crate::request::{DeleteItem, QueryPage, Request, ReturnValues, Scan, UpdateItem};
use crate::transport::{Transport, TransportExt};
use crate::value::{item_size, AttributeValue, Item, KeyValue};

/// What kind of lock-table item this is, and where it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// A fail-open lock with a lease. Whether the lease has run out cannot be told from one read
    /// without trusting the holder's clock; see [`LockRecord::lease_ends_unix_ms`].
    Held,
    /// A fail-open lock released (`leaseDurationMs` 1): free to anyone.
    Released,
    /// A fail-closed lock: held until released or deleted.
    FailClosed,
    /// A semaphore's own item (its permits are lock items of their own).
    Semaphore,
    /// Not an item any lock client writes.
    Other,
}

impl LockState {
    /// The state as the command line prints it: `held`, `released`, `fail-closed`, `semaphore`
    /// or `other`.
    pub fn name(self) -> &'static str {
        match self {
            LockState::Held => "held",
            LockState::Released => "released",
            LockState::FailClosed => "fail-closed",
            LockState::Semaphore => "semaphore",
            LockState::Other => "other",
        }
    }
}

/// One item of a lock table, as an operator sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct LockRecord {
    /// The lock's id, read from the item's key attributes.
    pub id: LockId,
    /// What kind of item it is, and where it stands.
    pub state: LockState,
    /// The `owner` attribute: the holder as it named itself.
    pub owner: Option<String>,
    /// `fencingToken`; `None` for fail-closed locks, which have none.
    pub fencing_token: Option<i64>,
    /// `leaseDurationMs`: the holder's lease, 1 once released; `None` for fail-closed locks.
    pub lease_duration_ms: Option<i64>,
    /// `lockAcquiredTimeUnixMs`: when the holder last wrote, by the holder's own clock.
    pub written_unix_ms: Option<i64>,
    /// Size of `lockData` in bytes, as DynamoDB counts it.
    pub data_bytes: Option<usize>,
    /// A semaphore's permits.
    pub permits: Option<i64>,
    /// What a conditional write on this item must find to act on what was shown.
    pub seen: Observed,
}

impl LockRecord {
    /// Reads one item of `table`. An item no lock client wrote comes out as
    /// [`LockState::Other`], never as an error.
    pub fn from_item(table: &LockTable, item: &Item) -> LockRecord {
        let seen = Observed::from_item(item);
        let key = |name: &str| item.get(name).and_then(KeyValue::from_attribute);
        let id = LockId {
            partition: key(&table.partition_key).unwrap_or_else(|| KeyValue::S(String::new())),
            sort: table.sort_key.as_deref().and_then(key),
        };
        let permits = item.get(SEMAPHORE_PERMITS).and_then(AttributeValue::as_i64);
        let state = match (&seen.guid, seen.lease_duration_ms, permits) {
            (_, _, Some(_)) => LockState::Semaphore,
            (Some(_), Some(RELEASED_LEASE_MS), _) => LockState::Released,
            (Some(_), Some(_), _) => LockState::Held,
            (Some(_), None, _) => LockState::FailClosed,
            (None, _, _) => LockState::Other,
        };
        let data_bytes = item.get(LOCK_DATA).map(|data| item_size(&Item::from([(LOCK_DATA.to_owned(), data.clone())])));
        LockRecord {
            id,
            state,
            owner: seen.owner.clone(),
            fencing_token: seen.fencing_token,
            lease_duration_ms: seen.lease_duration_ms,
            written_unix_ms: seen.acquired_unix_ms,
            data_bytes,
            permits,
            seen,
        }
    }

    /// When the lease ends unless renewed, by the holder's clock (`None` when the item does not
    /// say when it was written, or has no lease). Compare it with another host's clock only as
    /// an estimate.
    pub fn lease_ends_unix_ms(&self) -> Option<i64> {
        match self.state {
            LockState::Held => Some(self.written_unix_ms? + self.lease_duration_ms?),
            _ => None,
        }
    }
}

/// Which items [`list`] returns.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Only ids whose partition key (a string) starts with this.
    pub prefix: Option<String>,
    /// Only items in this state.
    pub state: Option<LockState>,
}

/// One page of a lock table's items, and where the next one starts.
#[derive(Clone, Debug)]
pub struct ListPage {
    /// The items of the page that passed the filter.
    pub records: Vec<LockRecord>,
    /// Items read for this page: a Scan reads (and bills) every item, filter or not.
    pub scanned: usize,
    /// Where the next page starts (the Scan's `LastEvaluatedKey`); `None` after the last page.
    pub next: Option<Item>,
}

/// One page (up to `limit` items read) of a Scan of the lock table. A lock table has no index
/// by state or prefix, so listing reads the whole table, page by page: callers should say so.
pub async fn list(transport: &dyn Transport, table: &LockTable, filter: &ListFilter, limit: u32, start: Option<Item>) -> Result<ListPage> {
    let prefix = filter.prefix.as_ref().map(|prefix| {
        Condition::BeginsWith(Name::aliased("#partitionKey", table.partition_key.clone()), val(":prefix", AttributeValue::S(prefix.clone())))
    });
    let scan = Scan { table: table.table.clone(), filter: prefix, consistent_read: true, limit: Some(limit), exclusive_start_key: start };
    let QueryPage { items, last_evaluated_key } = transport.scan(scan).await?;
    let scanned = items.len();
    let records = items
        .iter()
        .map(|item| LockRecord::from_item(table, item))
        .filter(|record| filter.state.is_none_or(|state| record.state == state))
        .collect();
    Ok(ListPage { records, scanned, next: last_evaluated_key })
}

/// The lock `id` as the table holds it now (one consistent read).
pub async fn show(transport: &dyn Transport, table: &LockTable, id: &LockId) -> Result<Option<LockRecord>> {
    Ok(transport.get_item(table.read(id)).await?.map(|item| LockRecord::from_item(table, &item)))
}

/// What a forced release did.
#[derive(Clone, Debug, PartialEq)]
pub enum ForceOutcome {
    /// Freed: the holder shown still held it.
    Released,
    /// Not freed: the item no longer shows the holder the operator saw (released, renewed or
    /// taken since); nothing was written.
    Changed(Option<Box<LockRecord>>),
}

/// Frees `shown`, a held or fail-closed lock, if and only if the item still carries the guid and
/// fencing token it was shown with. A fail-open lock keeps its item (lease 1 ms, a new guid, the
/// token untouched, so the next holder's token is higher); a fail-closed lock's item is
/// deleted. The holder, if alive, finds its next write refused and reports the lock lost.
pub async fn force_release(transport: &dyn Transport, table: &LockTable, shown: &LockRecord) -> Result<ForceOutcome> {
    let request = match shown.state {
        LockState::Held => Request::UpdateItem(UpdateItem {
            table: table.table.clone(),
            key: table.key(&shown.id),
            update: Update::default()
                .set(Name::raw(GUID), val(":newGuid", AttributeValue::B(new_guid())))
                .set(Name::raw(LEASE_DURATION_MS), val(":released", AttributeValue::int(RELEASED_LEASE_MS))),
            condition: Some(table.same_lease_condition(&shown.seen)),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: true,
        }),
        LockState::FailClosed => Request::DeleteItem(DeleteItem {
            table: table.table.clone(),
            key: table.key(&shown.id),
            condition: Some(table.same_lease_condition(&shown.seen)),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: true,
        }),
        other => return Err(Error::invalid_value(format!("lock {} is {}: only a held or fail-closed lock can be released", shown.id, other.name()))),
    };
    match transport.execute(request).await {
        Ok(_) => Ok(ForceOutcome::Released),
        Err(Error::ConditionalCheckFailed { item }) => {
            Ok(ForceOutcome::Changed(item.map(|item| Box::new(LockRecord::from_item(table, &item)))))
        }
        Err(e) => Err(e),
    }
}

/// Deletes a released lock item if it is still released under the guid it was shown with (not
/// acquired since). Its fencing tokens start again from 1: collect only ids whose tokens no
/// resource still compares against. Returns false when the item changed (nothing deleted).
pub async fn collect_released(transport: &dyn Transport, table: &LockTable, shown: &LockRecord) -> Result<bool> {
    if shown.state != LockState::Released {
        return Err(Error::invalid_value(format!("lock {} is {}, not released", shown.id, shown.state.name())));
    }
    let released = Condition::eq(Name::raw(LEASE_DURATION_MS), val(":released", AttributeValue::int(RELEASED_LEASE_MS)));
    let delete = DeleteItem {
        table: table.table.clone(),
        key: table.key(&shown.id),
        condition: Some(released.and(table.same_lease_condition(&shown.seen))),
        return_values: ReturnValues::None,
        return_old_on_condition_failure: false,
    };
    match transport.delete_item(delete).await {
        Ok(_) => Ok(true),
        Err(Error::ConditionalCheckFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
