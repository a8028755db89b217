//! The lock item on the wire: its attributes, and every request the lock engine sends.
//!
//! The format is dynamodb-lock-client 0.7.3's (docs/table-format.md). The requests differ from
//! dlc's where dlc is slow or unsafe, but each one leaves an item that dlc reads correctly.

use rand::RngCore;

use crate::expr::{val, Condition, Name, Update};
use crate::request::{BatchGet, DeleteItem, GetItem, PutItem, Request, ReturnValues, UpdateItem};
use crate::error::Error;
use crate::value::{item_size, AttributeValue, Item, KeyValue, Value, MAX_ITEM_SIZE};

pub const OWNER: &str = "owner";
pub const GUID: &str = "guid";
pub const FENCING_TOKEN: &str = "fencingToken";
pub const LEASE_DURATION_MS: &str = "leaseDurationMs";
pub const LOCK_ACQUIRED_TIME_UNIX_MS: &str = "lockAcquiredTimeUnixMs";
/// dynalease's lock data. A dlc client's next full PutItem of the item drops it.
pub const LOCK_DATA: &str = "lockData";

/// The number of permits, on a semaphore's own item (docs/table-format.md, "Semaphores").
pub const SEMAPHORE_PERMITS: &str = "semaphorePermits";

/// Attribute names a key may not use.
pub const RESERVED_ATTRIBUTES: [&str; 7] =
    [OWNER, GUID, FENCING_TOKEN, LEASE_DURATION_MS, LOCK_ACQUIRED_TIME_UNIX_MS, LOCK_DATA, SEMAPHORE_PERMITS];

/// `leaseDurationMs` of a released fail-open lock.
pub const RELEASED_LEASE_MS: i64 = 1;

const GUID_BYTES: usize = 64;

/// A lock's identity: the partition key value, and the sort key value when the table has one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockId {
    /// The partition key's value.
    pub partition: KeyValue,
    /// The sort key's value; needed exactly when the table has a sort key.
    pub sort: Option<KeyValue>,
}

impl LockId {
    /// The id of a lock in a table without a sort key.
    pub fn new(partition: impl Into<KeyValue>) -> LockId {
        LockId { partition: partition.into(), sort: None }
    }

    /// The id of a lock in a table with a sort key.
    pub fn with_sort(partition: impl Into<KeyValue>, sort: impl Into<KeyValue>) -> LockId {
        LockId { partition: partition.into(), sort: Some(sort.into()) }
    }
}

impl std::fmt::Display for LockId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sort {
            Some(sort) => write!(f, "({}, {})", self.partition, sort),
            None => write!(f, "{}", self.partition),
        }
    }
}

impl<T: Into<KeyValue>> From<T> for LockId {
    fn from(partition: T) -> Self {
        LockId::new(partition)
    }
}

/// A fresh random `guid`: it names one acquisition, heartbeat or release, so that a failed
/// condition that shows our own guid proves an earlier attempt of the same write landed.
pub fn new_guid() -> Vec<u8> {
    let mut guid = vec![0u8; GUID_BYTES];
    crate::random::with_rng(|rng| rng.fill_bytes(&mut guid));
    guid
}

/// True when `item` carries `guid`. Every write of the lock protocol writes a guid of its own,
/// so after a failed condition this is the proof that an earlier send of that same write landed
/// (its answer was lost, or it landed late), never a write of another client.
pub fn carries_guid(item: &Item, guid: &[u8]) -> bool {
    matches!(item.get(GUID), Some(AttributeValue::B(stored)) if stored == guid)
}

/// After our release's condition failed, whether `found` shows the lock freed by that release
/// and acquired again since. The caller must know that nobody could have freed it otherwise:
/// a fail-open lease of ours still running (nobody takes a live lease over), or a fail-closed
/// lock (nobody takes those over at all).
///
/// - Fail-open (`fencing_token` is ours): the next token, under another guid. A deleted and
///   re-created item would count from 1 again, so any other token proves nothing.
/// - Fail-closed (`fencing_token` is `None`): the item gone, or held by another fail-closed
///   holder (no token). An item with a token was written by a fail-open client, on an id that
///   is used both ways; that it came after our release is likely but not proven, so it is not
///   taken as proof.
pub fn freed_by_our_release(found: Option<&Item>, guid: &[u8], fencing_token: Option<i64>) -> bool {
    match (fencing_token, found) {
        (Some(_), None) => false,
        (Some(token), Some(item)) => {
            !carries_guid(item, guid) && item.get(FENCING_TOKEN).and_then(AttributeValue::as_i64) == Some(token + 1)
        }
        (None, None) => true,
        (None, Some(item)) => !carries_guid(item, guid) && !item.contains_key(FENCING_TOKEN),
    }
}

/// The key of a lock item: the partition key's value, and the sort key's when the table has
/// one (a sort key value for a table without one is dropped, as DynamoDB would refuse it).
pub fn lock_key(partition_key: &str, partition: AttributeValue, sort_key: Option<&str>, sort: Option<AttributeValue>) -> Item {
    let mut key = Item::new();
    key.insert(partition_key.to_owned(), partition);
    if let (Some(name), Some(sort)) = (sort_key, sort) {
        key.insert(name.to_owned(), sort);
    }
    key
}

/// What a reader learns from a lock item.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub guid: Option<Vec<u8>>,
    pub fencing_token: Option<i64>,
    /// `None`: a fail-closed lock, which never expires.
    pub lease_duration_ms: Option<i64>,
    pub acquired_unix_ms: Option<i64>,
    pub owner: Option<String>,
}

impl Observed {
    pub fn from_item(item: &Item) -> Observed {
        Observed {
            guid: item.get(GUID).and_then(AttributeValue::as_b).map(<[u8]>::to_vec),
            fencing_token: item.get(FENCING_TOKEN).and_then(AttributeValue::as_i64),
            lease_duration_ms: item.get(LEASE_DURATION_MS).and_then(AttributeValue::as_i64),
            acquired_unix_ms: item.get(LOCK_ACQUIRED_TIME_UNIX_MS).and_then(AttributeValue::as_i64),
            owner: item.get(OWNER).and_then(AttributeValue::as_s).map(str::to_owned),
        }
    }

    /// The item carries `guid` (see [`carries_guid`]).
    pub fn has_guid(&self, guid: &[u8]) -> bool {
        self.guid.as_deref() == Some(guid)
    }

    pub fn is_released(&self) -> bool {
        self.lease_duration_ms == Some(RELEASED_LEASE_MS)
    }

    /// Same holder and same acquisition as `other`: the lease has not been renewed or taken.
    pub fn same_lease(&self, other: &Observed) -> bool {
        self.guid == other.guid && self.fencing_token == other.fencing_token
    }

    pub fn describe_holder(&self) -> String {
        match (&self.owner, self.lease_duration_ms) {
            (Some(owner), None) => format!("held by {owner} (fail-closed: never expires until released)"),
            (Some(owner), Some(_)) => format!("held by {owner}"),
            (None, _) => "held by another client".into(),
        }
    }
}

/// What an acquisition does with the lock data in the item: a plain acquire hands on what the
/// last holder left; an election's term replaces it with the new leader's (or none).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum NewData {
    #[default]
    Keep,
    Replace(Option<Value>),
}

/// Builds the requests for one lock table configuration.
#[derive(Clone, Debug)]
pub struct LockTable {
    /// The table's name.
    pub table: String,
    /// The partition key attribute ([`DEFAULT_PARTITION_KEY`](crate::lock::DEFAULT_PARTITION_KEY)
    /// unless configured otherwise).
    pub partition_key: String,
    /// The sort key attribute, if the table has one.
    pub sort_key: Option<String>,
}

impl LockTable {
    /// The lock requests for an existing table, keyed as DynamoDB describes it.
    pub fn of(description: &crate::request::TableDescription) -> LockTable {
        LockTable {
            table: description.table.clone(),
            partition_key: description.partition_key.name.clone(),
            sort_key: description.sort_key.as_ref().map(|key| key.name.clone()),
        }
    }

    /// The primary key of `id`'s item.
    pub fn key(&self, id: &LockId) -> Item {
        lock_key(&self.partition_key, id.partition.clone().into(), self.sort_key.as_deref(), id.sort.clone().map(Into::into))
    }

    fn partition_name(&self) -> Name {
        Name::aliased("#partitionKey", self.partition_key.clone())
    }

    /// No item for this id. With a sort key dlc tests both parts; an item always has both, so
    /// the partition key alone is equivalent.
    fn absent(&self) -> Condition {
        Condition::NotExists(self.partition_name())
    }

    fn guid_is(&self, guid: &[u8]) -> Condition {
        Condition::eq(Name::raw(GUID), val(":guid", AttributeValue::B(guid.to_vec())))
    }

    /// A strongly consistent read of `id`'s item.
    pub fn read(&self, id: &LockId) -> GetItem {
        GetItem { table: self.table.clone(), key: self.key(id), consistent_read: true }
    }

    /// Consistent reads of up to 100 lock items in one request.
    pub fn read_many(&self, ids: &[LockId]) -> BatchGet {
        BatchGet { table: self.table.clone(), keys: ids.iter().map(|id| self.key(id)).collect(), consistent_read: true }
    }

    /// Whether `item` is the item of `id`.
    pub fn is_item_of(&self, item: &Item, id: &LockId) -> bool {
        self.key(id).iter().all(|(name, value)| item.get(name) == Some(value))
    }

    /// A semaphore's own item, which fixes its number of permits for every client. Guards: no
    /// item for this id yet (the first client to use the semaphore writes it; later ones read it).
    pub fn create_semaphore(&self, id: &LockId, permits: u32) -> PutItem {
        let mut item = self.key(id);
        item.insert(SEMAPHORE_PERMITS.into(), AttributeValue::int(i64::from(permits)));
        self.put_if_absent(item)
    }

    /// Writes `item` only if its key has no item yet; a failed condition returns the one there.
    fn put_if_absent(&self, item: Item) -> PutItem {
        PutItem {
            table: self.table.clone(),
            item,
            condition: Some(self.absent()),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: true,
        }
    }

    /// Fail-open acquisition in one round trip. Guards: the lock is free (no item, or released),
    /// or, when `takeover` is given, it still carries the guid and token we watched for a whole
    /// lease (nobody heartbeated or took it meanwhile). The token rises by one on every
    /// acquisition; an item without one (written by a fail-closed client) counts from 0.
    pub fn acquire(
        &self,
        id: &LockId,
        guid: &[u8],
        owner: &str,
        lease_ms: i64,
        now_unix_ms: i64,
        takeover: Option<&Observed>,
        data: &NewData,
    ) -> UpdateItem {
        let released = Condition::eq(Name::raw(LEASE_DURATION_MS), val(":released", AttributeValue::int(RELEASED_LEASE_MS)));
        let mut condition = self.absent().or(released);
        if let Some(seen) = takeover {
            condition = condition.or(self.same_lease_condition(seen));
        }
        let mut update = Update::default()
            .set(Name::aliased("#owner", OWNER), val(":owner", AttributeValue::S(owner.to_owned())))
            .set(Name::raw(GUID), val(":newGuid", AttributeValue::B(guid.to_vec())))
            .set(Name::raw(LEASE_DURATION_MS), val(":lease", AttributeValue::int(lease_ms)))
            .set(Name::raw(LOCK_ACQUIRED_TIME_UNIX_MS), val(":now", AttributeValue::int(now_unix_ms)))
            .increment(Name::raw(FENCING_TOKEN), val(":zero", AttributeValue::int(0)), val(":one", AttributeValue::int(1)));
        match data {
            NewData::Keep => {}
            NewData::Replace(Some(data)) => update = update.set(Name::raw(LOCK_DATA), val(":data", data.to_attribute())),
            NewData::Replace(None) => update = update.remove(Name::raw(LOCK_DATA)),
        }
        UpdateItem {
            table: self.table.clone(),
            key: self.key(id),
            update,
            condition: Some(condition),
            return_values: ReturnValues::AllNew,
            return_old_on_condition_failure: true,
        }
    }

    /// The item still carries the guid and token `seen` showed (or, where it showed none, has
    /// none): nobody renewed, released or took it since.
    pub(crate) fn same_lease_condition(&self, seen: &Observed) -> Condition {
        let guid = match &seen.guid {
            Some(guid) => Condition::eq(Name::raw(GUID), val(":seenGuid", AttributeValue::B(guid.clone()))),
            None => Condition::NotExists(Name::raw(GUID)),
        };
        let token = match seen.fencing_token {
            Some(token) => Condition::eq(Name::raw(FENCING_TOKEN), val(":seenToken", AttributeValue::int(token))),
            None => Condition::NotExists(Name::raw(FENCING_TOKEN)),
        };
        Condition::And(vec![guid, token])
    }

    /// Heartbeat: a new guid and a fresh lease. Guards: we still hold it (our current guid).
    pub fn heartbeat(&self, id: &LockId, current: &[u8], next: &[u8], lease_ms: i64, now_unix_ms: i64) -> UpdateItem {
        UpdateItem {
            table: self.table.clone(),
            key: self.key(id),
            update: Update::default()
                .set(Name::raw(GUID), val(":newGuid", AttributeValue::B(next.to_vec())))
                .set(Name::raw(LEASE_DURATION_MS), val(":lease", AttributeValue::int(lease_ms)))
                .set(Name::raw(LOCK_ACQUIRED_TIME_UNIX_MS), val(":now", AttributeValue::int(now_unix_ms))),
            condition: Some(self.guid_is(current)),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: true,
        }
    }

    /// Fail-open release: lease 1 ms, item kept so the fencing token keeps rising, and a new
    /// guid so that a lost response can be resolved. Guards: we still hold it.
    pub fn release(&self, id: &LockId, current: &[u8], next: &[u8], now_unix_ms: i64, data: Option<&Value>) -> UpdateItem {
        let mut update = Update::default()
            .set(Name::raw(GUID), val(":newGuid", AttributeValue::B(next.to_vec())))
            .set(Name::raw(LEASE_DURATION_MS), val(":released", AttributeValue::int(RELEASED_LEASE_MS)))
            .set(Name::raw(LOCK_ACQUIRED_TIME_UNIX_MS), val(":now", AttributeValue::int(now_unix_ms)));
        if let Some(data) = data {
            update = update.set(Name::raw(LOCK_DATA), val(":data", data.to_attribute()));
        }
        UpdateItem {
            table: self.table.clone(),
            key: self.key(id),
            update,
            condition: Some(self.guid_is(current)),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: true,
        }
    }

    /// Refuses lock data that would take the item past DynamoDB's 400 KB limit, counting every
    /// lock attribute at its widest, so the write fails here and not halfway through a release.
    pub fn check_data_size(&self, id: &LockId, owner: &str, data: &Value) -> Result<(), Error> {
        data.validate()?;
        let widest = AttributeValue::int(i64::MAX);
        let mut item = self.key(id);
        item.insert(OWNER.into(), AttributeValue::S(owner.to_owned()));
        item.insert(GUID.into(), AttributeValue::B(vec![0; GUID_BYTES]));
        item.insert(FENCING_TOKEN.into(), widest.clone());
        item.insert(LEASE_DURATION_MS.into(), widest.clone());
        item.insert(LOCK_ACQUIRED_TIME_UNIX_MS.into(), widest);
        item.insert(LOCK_DATA.into(), data.to_attribute());
        let size = item_size(&item);
        if size > MAX_ITEM_SIZE {
            return Err(Error::invalid_value(format!(
                "lock data is too large: the lock item would be {size} bytes, over DynamoDB's 400 KB item limit; keep large data elsewhere (S3, the KV store) and put a reference in the lock"
            )));
        }
        Ok(())
    }

    /// Replaces the lock data. Guards: we still hold it.
    pub fn write_data(&self, id: &LockId, current: &[u8], data: &Value) -> UpdateItem {
        UpdateItem {
            table: self.table.clone(),
            key: self.key(id),
            update: Update::default().set(Name::raw(LOCK_DATA), val(":data", data.to_attribute())),
            condition: Some(self.guid_is(current)),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: true,
        }
    }

    /// Fail-closed acquisition (dlc's item: key, owner, guid). Guards: no item for this id.
    pub fn acquire_fail_closed(&self, id: &LockId, guid: &[u8], owner: &str, data: &NewData) -> PutItem {
        let mut item = self.key(id);
        item.insert(OWNER.into(), AttributeValue::S(owner.to_owned()));
        item.insert(GUID.into(), AttributeValue::B(guid.to_vec()));
        if let NewData::Replace(Some(data)) = data {
            item.insert(LOCK_DATA.into(), data.to_attribute());
        }
        self.put_if_absent(item)
    }

    /// Fail-closed release deletes the item. Guards: we still hold it.
    pub fn release_fail_closed(&self, id: &LockId, current: &[u8]) -> DeleteItem {
        DeleteItem {
            table: self.table.clone(),
            key: self.key(id),
            condition: Some(self.guid_is(current)),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: true,
        }
    }

    /// Takes back a write of ours that may have landed after we stopped waiting for it: frees
    /// the lock if, and only if, the item still carries `guid`. Guids are never reused, so this
    /// can never touch another holder's lock. Fail-open: the release update (the item stays, so
    /// fencing tokens keep rising); fail-closed: the delete.
    pub fn undo(&self, id: &LockId, guid: &[u8], fail_open: bool, now_unix_ms: i64) -> Request {
        if fail_open {
            Request::UpdateItem(self.release(id, guid, &new_guid(), now_unix_ms, None))
        } else {
            Request::DeleteItem(self.release_fail_closed(id, guid))
        }
    }

    /// The condition a fenced write checks on the lock item: the writer's guid is still there.
    pub fn held_by(&self, guid: &[u8]) -> Condition {
        self.guid_is(guid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::ExpressionAttributes;

    fn table() -> LockTable {
        LockTable { table: "locks".into(), partition_key: "id".into(), sort_key: None }
    }

    #[test]
    fn acquire_sets_every_lock_attribute_and_counts_the_token() {
        let request = table().acquire(&LockId::new("a"), &[7; 64], "me", 10_000, 5, None, &NewData::Keep);
        let mut attrs = ExpressionAttributes::default();
        assert_eq!(
            request.update.render(&mut attrs),
            "SET #owner = :owner, guid = :newGuid, leaseDurationMs = :lease, lockAcquiredTimeUnixMs = :now, fencingToken = if_not_exists(fencingToken, :zero) + :one"
        );
        assert_eq!(
            request.condition.unwrap().render(&mut attrs),
            "attribute_not_exists(#partitionKey) or leaseDurationMs = :released"
        );
    }

    #[test]
    fn takeover_requires_the_watched_guid_and_token() {
        let seen = Observed { guid: Some(vec![1]), fencing_token: Some(4), lease_duration_ms: Some(10), acquired_unix_ms: None, owner: None };
        let request = table().acquire(&LockId::new("a"), &[7; 64], "me", 10_000, 5, Some(&seen), &NewData::Keep);
        let mut attrs = ExpressionAttributes::default();
        assert_eq!(
            request.condition.unwrap().render(&mut attrs),
            "attribute_not_exists(#partitionKey) or leaseDurationMs = :released or (guid = :seenGuid and fencingToken = :seenToken)"
        );
        assert_eq!(attrs.values[":seenToken"], AttributeValue::int(4));
    }

    #[test]
    fn sort_key_ids_fill_both_key_attributes() {
        let t = LockTable { sort_key: Some("sk".into()), ..table() };
        let key = t.key(&LockId::with_sort("tenant", 7));
        assert_eq!(key["id"], AttributeValue::S("tenant".into()));
        assert_eq!(key["sk"], AttributeValue::N("7".into()));
    }

    #[test]
    fn guids_are_64_random_bytes() {
        let (a, b) = (new_guid(), new_guid());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
