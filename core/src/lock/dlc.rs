//! dynamodb-lock-client 0.7.3's protocol as a sans-IO state machine (quinn-proto / h11 style).
//!
//! The drop-in classes of the npm package (`FailOpen`, `FailClosed`, `Lock`) must send every
//! request through the caller's own DynamoDB object and must send dlc's requests byte for byte
//! (its users' tests compare them). So the protocol lives here, as machines that never do I/O:
//! the caller feeds an [`Input`] and gets the next [`Action`] (send this request, sleep this
//! long, done). The binding runs a loop of a few lines around them.
//!
//! The requests are dlc's (docs/table-format.md); dlc's defects are fixed without changing
//! them:
//! - a contender with `trust_local_time` reading an item without `lockAcquiredTimeUnixMs` waits
//!   the whole lease (dlc waits NaN ms and takes over a live lease);
//! - an item without `fencingToken` (a fail-closed holder) counts as token 0 (dlc sends NaN);
//!   an item without `leaseDurationMs` is waited out for our own lease (dlc waits NaN ms);
//! - heartbeat and release never overlap: a release asked for while a heartbeat is in flight
//!   is sent after it, with the guid it wrote (dlc conditions on the stale guid);
//! - a release whose condition fails reports [`Action::FailedToRelease`] (dlc reports success).

use std::time::Duration;

use crate::expr::{val, Condition, Name};
use crate::lock::item::{new_guid, FENCING_TOKEN, GUID, LEASE_DURATION_MS, LOCK_ACQUIRED_TIME_UNIX_MS, OWNER, RELEASED_LEASE_MS};
use crate::request::{DeleteItem, GetItem, PutItem, Request, Response, ReturnValues};
use crate::value::{AttributeValue, Item};

/// A table as a dlc client names it.
#[derive(Clone, Debug, PartialEq)]
pub struct DlcTable {
    pub table: String,
    pub partition_key: String,
    pub sort_key: Option<String>,
}

/// A lock id as dlc takes it: any key value, and the sort key's value when the table has one.
#[derive(Clone, Debug, PartialEq)]
pub struct DlcKey {
    pub partition: AttributeValue,
    pub sort: Option<AttributeValue>,
}

/// What happened since the last [`Action`].
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Begin: the first call after `new`.
    Start,
    /// The requested [`Action::Sleep`] is over.
    Timer,
    /// The request succeeded with this response.
    Response(Response),
    /// The request's condition expression was false (`ConditionalCheckFailedException`).
    ConditionFailed,
    /// The request failed otherwise. The caller keeps the error to report it as is.
    OtherError,
}

/// The caller's two clocks when it feeds an input: the wall clock, written into items for
/// `trustLocalTime`, and a monotonic clock (any origin), which times our own lease.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    pub unix_ms: i64,
    pub mono_ms: i64,
}

/// What the caller does next.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Send(Request),
    Sleep(Duration),
    /// Nothing to do until the next input (e.g. a release queued behind a heartbeat).
    Idle,
    /// `lease_from_mono_ms`: when the put that took the lock was sent, on the caller's
    /// monotonic clock; the held lock's lease runs from there.
    Acquired { guid: Vec<u8>, fencing_token: Option<i64>, lease_from_mono_ms: i64 },
    /// Out of retries on a condition failure: dlc's `FailedToAcquireLock`.
    FailedToAcquire,
    Released,
    /// The release's condition failed: the lock was taken over or deleted (`FailedToReleaseLock`).
    FailedToRelease,
    /// A heartbeat failed (the error it got, condition or other): the lock emits `'error'` and
    /// heartbeats stop.
    HeartbeatFailed,
    /// Report the error the last request got, unchanged, to the caller of the operation.
    PassError,
}

impl DlcTable {
    fn key(&self, id: &DlcKey) -> Item {
        let mut key = Item::new();
        key.insert(self.partition_key.clone(), id.partition.clone());
        if let (Some(name), Some(sort)) = (&self.sort_key, &id.sort) {
            key.insert(name.clone(), sort.clone());
        }
        key
    }

    fn names(&self) -> (Name, Option<Name>) {
        (
            Name::aliased("#partitionKey", self.partition_key.clone()),
            self.sort_key.as_ref().map(|s| Name::aliased("#sortKey", s.clone())),
        )
    }

    /// No item for this id. With a sort key dlc writes `(a and b)` even at the top level, which
    /// a one-armed `Or` around the `And` reproduces (the renderer parenthesises nested groups).
    fn absent(&self) -> Condition {
        match self.names() {
            (pk, None) => Condition::NotExists(pk),
            (pk, Some(sk)) => Condition::Or(vec![Condition::And(vec![Condition::NotExists(pk), Condition::NotExists(sk)])]),
        }
    }

    /// We still hold it: the item exists and carries our guid (heartbeat and release).
    fn held_by(&self, guid: &[u8]) -> Condition {
        let exists = match self.names() {
            (pk, None) => Condition::Exists(pk),
            (pk, Some(sk)) => Condition::And(vec![Condition::Exists(pk), Condition::Exists(sk)]),
        };
        Condition::And(vec![exists, Condition::eq(Name::raw(GUID), val(":guid", AttributeValue::B(guid.to_vec())))])
    }

    /// A takeover: the lock is free, or still carries the guid and token we waited out (nobody
    /// heartbeated or re-acquired it during the whole wait).
    fn unchanged_since(&self, guid: &AttributeValue, token: &AttributeValue) -> Condition {
        let absent = match self.names() {
            (pk, None) => Condition::NotExists(pk),
            (pk, Some(sk)) => Condition::And(vec![Condition::NotExists(pk), Condition::NotExists(sk)]),
        };
        absent.or(Condition::And(vec![
            Condition::eq(Name::raw(GUID), val(":guid", guid.clone())),
            Condition::eq(Name::raw(FENCING_TOKEN), val(":fencingToken", token.clone())),
        ]))
    }

    fn put(&self, item: Item, condition: Condition) -> Request {
        Request::PutItem(PutItem {
            table: self.table.clone(),
            item,
            condition: Some(condition),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: false,
        })
    }

    fn get(&self, id: &DlcKey) -> Request {
        Request::GetItem(GetItem { table: self.table.clone(), key: self.key(id), consistent_read: true })
    }
}

/// The fail-open item dlc writes on acquire, heartbeat and release.
struct LeaseItem<'a> {
    fencing_token: i64,
    lease_ms: i64,
    owner: &'a str,
    guid: &'a [u8],
    /// Written only with `trustLocalTime` (dlc's suite requires its absence otherwise).
    acquired_unix_ms: Option<i64>,
}

impl DlcTable {
    fn lease_item(&self, id: &DlcKey, lease: LeaseItem<'_>) -> Item {
        let mut item = self.key(id);
        item.insert(FENCING_TOKEN.into(), AttributeValue::int(lease.fencing_token));
        item.insert(LEASE_DURATION_MS.into(), AttributeValue::int(lease.lease_ms));
        item.insert(OWNER.into(), AttributeValue::S(lease.owner.to_owned()));
        item.insert(GUID.into(), AttributeValue::B(lease.guid.to_vec()));
        if let Some(now) = lease.acquired_unix_ms {
            item.insert(LOCK_ACQUIRED_TIME_UNIX_MS.into(), AttributeValue::int(now));
        }
        item
    }
}

/// dlc's `FailOpen` options that shape its requests.
#[derive(Clone, Debug, PartialEq)]
pub struct FailOpenConfig {
    pub table: DlcTable,
    pub owner: String,
    pub lease_duration_ms: i64,
    pub trust_local_time: bool,
    /// Condition failures retried (each goes back to the read); dlc's default is 1.
    pub retry_count: u32,
}

#[derive(Clone, Debug, PartialEq)]
enum AcquireState {
    Reading,
    /// Waiting out the holder we read: its guid and token as stored.
    Waiting { seen_guid: AttributeValue, seen_token: AttributeValue },
    Writing,
    /// The put's condition failed: reading the item, which shows whether an earlier send of
    /// the same put (resent by the SDK after a lost answer) landed.
    Verifying,
    Done,
}

/// One `FailOpen.acquireLock`: read, wait out the holder's lease, conditional put.
#[derive(Clone, Debug)]
pub struct FailOpenAcquire {
    config: FailOpenConfig,
    id: DlcKey,
    /// One guid per acquireLock call, kept across retries (as dlc does).
    guid: Vec<u8>,
    retries_left: u32,
    fencing_token: i64,
    /// When the last put was sent (monotonic ms).
    put_sent_mono_ms: i64,
    state: AcquireState,
}

impl FailOpenAcquire {
    pub fn new(config: FailOpenConfig, id: DlcKey) -> FailOpenAcquire {
        let retries_left = config.retry_count;
        FailOpenAcquire { config, id, guid: new_guid(), retries_left, fencing_token: 0, put_sent_mono_ms: 0, state: AcquireState::Reading }
    }

    pub fn guid(&self) -> &[u8] {
        &self.guid
    }

    /// Advances the machine. The wall clock is used only with `trust_local_time` (written into
    /// items and compared with the holder's timestamp).
    pub fn next(&mut self, input: Input, now: Now) -> Action {
        let now_unix_ms = now.unix_ms;
        let table = self.config.table.clone();
        match (std::mem::replace(&mut self.state, AcquireState::Done), input) {
            (AcquireState::Reading, Input::Start) => {
                self.state = AcquireState::Reading;
                Action::Send(table.get(&self.id))
            }
            (AcquireState::Reading, Input::Response(Response::GetItem(None))) => {
                self.fencing_token = 1;
                self.state = AcquireState::Writing;
                self.put_sent_mono_ms = now.mono_ms;
                let item = self.item(now_unix_ms);
                Action::Send(table.put(item, table.absent()))
            }
            (AcquireState::Reading, Input::Response(Response::GetItem(Some(found)))) => {
                // A fail-closed holder's item has no token: count it as 0 (dlc sends NaN).
                let seen_token = found.get(FENCING_TOKEN).cloned().unwrap_or(AttributeValue::int(0));
                self.fencing_token = seen_token.as_i64().unwrap_or(0) + 1;
                let wait = self.wait_for(&found, now_unix_ms);
                let seen_guid = found.get(GUID).cloned().unwrap_or(AttributeValue::Null);
                self.state = AcquireState::Waiting { seen_guid, seen_token };
                Action::Sleep(wait)
            }
            (AcquireState::Waiting { seen_guid, seen_token }, Input::Timer) => {
                self.state = AcquireState::Writing;
                self.put_sent_mono_ms = now.mono_ms;
                let item = self.item(now_unix_ms);
                Action::Send(table.put(item, table.unchanged_since(&seen_guid, &seen_token)))
            }
            (AcquireState::Writing, Input::Response(_)) => {
                Action::Acquired { guid: self.guid.clone(), fencing_token: Some(self.fencing_token), lease_from_mono_ms: self.put_sent_mono_ms }
            }
            (AcquireState::Writing, Input::ConditionFailed) => {
                self.state = AcquireState::Verifying;
                Action::Send(table.get(&self.id))
            }
            (AcquireState::Verifying, Input::Response(Response::GetItem(found))) => {
                // Our guid is fresh for this call, so finding it proves our put landed.
                if let Some(item) = found.as_ref().filter(|item| carries_guid(item, &self.guid)) {
                    let fencing_token = item.get(FENCING_TOKEN).and_then(AttributeValue::as_i64).unwrap_or(self.fencing_token);
                    // The put that landed was sent (and resent by the SDK) from put_sent_mono_ms.
                    return Action::Acquired { guid: self.guid.clone(), fencing_token: Some(fencing_token), lease_from_mono_ms: self.put_sent_mono_ms };
                }
                if self.retries_left == 0 {
                    return Action::FailedToAcquire;
                }
                // Someone else got there first: go on from what we just read, as dlc's retry
                // would from its own read.
                self.retries_left -= 1;
                self.state = AcquireState::Reading;
                self.next(Input::Response(Response::GetItem(found)), now)
            }
            (_, Input::OtherError) => Action::PassError,
            (state, _) => {
                // An input the current state does not expect (a caller bug): stay put.
                self.state = state;
                Action::Idle
            }
        }
    }

    fn item(&self, now_unix_ms: i64) -> Item {
        self.config.table.lease_item(
            &self.id,
            LeaseItem {
                fencing_token: self.fencing_token,
                lease_ms: self.config.lease_duration_ms,
                owner: &self.config.owner,
                guid: &self.guid,
                acquired_unix_ms: self.config.trust_local_time.then_some(now_unix_ms),
            },
        )
    }

    /// How long to wait out the holder we read: its lease (1 ms when released); with
    /// `trust_local_time`, what its timestamp says is left. Missing attributes fall back to
    /// the whole lease, never to NaN.
    fn wait_for(&self, found: &Item, now_unix_ms: i64) -> Duration {
        let lease_ms = found
            .get(LEASE_DURATION_MS)
            .and_then(AttributeValue::as_i64)
            .unwrap_or(self.config.lease_duration_ms)
            .max(0);
        let acquired = found.get(LOCK_ACQUIRED_TIME_UNIX_MS).and_then(AttributeValue::as_i64);
        let remaining = match (self.config.trust_local_time, acquired) {
            (true, Some(acquired)) => (lease_ms - (now_unix_ms - acquired)).clamp(0, lease_ms),
            _ => lease_ms,
        };
        Duration::from_millis(remaining as u64)
    }
}

/// True when `item` carries `guid`: a write of ours with that guid landed.
fn carries_guid(item: &Item, guid: &[u8]) -> bool {
    matches!(item.get(GUID), Some(AttributeValue::B(stored)) if stored == guid)
}

/// dlc's `FailClosed` options that shape its requests.
#[derive(Clone, Debug, PartialEq)]
pub struct FailClosedConfig {
    pub table: DlcTable,
    pub owner: String,
    pub acquire_period: Duration,
    pub retry_count: u32,
}

/// One `FailClosed.acquireLock`: conditional put, retried after `acquire_period`.
#[derive(Clone, Debug)]
pub struct FailClosedAcquire {
    config: FailClosedConfig,
    id: DlcKey,
    guid: Vec<u8>,
    retries_left: u32,
}

impl FailClosedAcquire {
    pub fn new(config: FailClosedConfig, id: DlcKey) -> FailClosedAcquire {
        let retries_left = config.retry_count;
        FailClosedAcquire { config, id, guid: new_guid(), retries_left }
    }

    pub fn guid(&self) -> &[u8] {
        &self.guid
    }

    pub fn next(&mut self, input: Input) -> Action {
        match input {
            Input::Start | Input::Timer => Action::Send(self.put()),
            // The put's condition failed: read the item, since a fail-closed lock whose put
            // landed unseen (resent by the SDK after a lost answer) would stay held forever.
            Input::ConditionFailed => Action::Send(self.config.table.get(&self.id)),
            Input::Response(Response::GetItem(found)) => {
                if found.as_ref().is_some_and(|item| carries_guid(item, &self.guid)) {
                    Action::Acquired { guid: self.guid.clone(), fencing_token: None, lease_from_mono_ms: 0 }
                } else if self.retries_left > 0 {
                    self.retries_left -= 1;
                    Action::Sleep(self.config.acquire_period)
                } else {
                    Action::FailedToAcquire
                }
            }
            Input::Response(_) => Action::Acquired { guid: self.guid.clone(), fencing_token: None, lease_from_mono_ms: 0 },
            Input::OtherError => Action::PassError,
        }
    }

    fn put(&self) -> Request {
        let table = &self.config.table;
        let mut item = table.key(&self.id);
        item.insert(OWNER.into(), AttributeValue::S(self.config.owner.clone()));
        item.insert(GUID.into(), AttributeValue::B(self.guid.clone()));
        table.put(item, table.absent())
    }
}

/// How a held dlc lock behaves.
#[derive(Clone, Debug, PartialEq)]
pub enum HeldMode {
    FailOpen {
        fencing_token: i64,
        lease_duration_ms: i64,
        owner: String,
        /// `None` (or zero, as dlc treats it): no heartbeats.
        heartbeat_period: Option<Duration>,
        trust_local_time: bool,
    },
    FailClosed,
}

#[derive(Clone, Debug, PartialEq)]
enum HeldState {
    Idle,
    Heartbeating { next_guid: Vec<u8> },
    /// A heartbeat's condition failed: reading the item, which carries `next_guid` if an
    /// earlier send of the same heartbeat landed.
    VerifyingHeartbeat { next_guid: Vec<u8> },
    Releasing,
    /// The release's condition failed while our lease still ran: reading the item to see
    /// whether our release landed unseen and the next holder took the freed lock.
    VerifyingRelease,
    Stopped,
}

/// A held dlc lock (`Lock`): heartbeats and release, never both at once.
#[derive(Clone, Debug)]
pub struct HeldLock {
    table: DlcTable,
    id: DlcKey,
    mode: HeldMode,
    guid: Vec<u8>,
    state: HeldState,
    released: bool,
    release_queued: bool,
    /// A heartbeat found the item changed: whatever happens later, the lock was lost.
    lost: bool,
    /// When the write that last renewed our lease was sent (monotonic ms), and when the
    /// heartbeat in flight was.
    lease_from_mono_ms: Option<i64>,
    heartbeat_sent_mono_ms: i64,
}

impl HeldLock {
    /// `lease_from_mono_ms`: from [`Action::Acquired`]; `None` when unknown (a lock built by
    /// hand), and then a release whose condition fails is always reported as failed.
    pub fn new(table: DlcTable, id: DlcKey, mode: HeldMode, guid: Vec<u8>, lease_from_mono_ms: Option<i64>) -> HeldLock {
        HeldLock {
            table,
            id,
            mode,
            guid,
            state: HeldState::Idle,
            released: false,
            release_queued: false,
            lost: false,
            lease_from_mono_ms,
            heartbeat_sent_mono_ms: 0,
        }
    }

    /// The guid the item carries as far as we know (changes with every heartbeat).
    pub fn guid(&self) -> &[u8] {
        &self.guid
    }

    fn heartbeat_period(&self) -> Option<Duration> {
        match &self.mode {
            HeldMode::FailOpen { heartbeat_period: Some(p), .. } if !p.is_zero() => Some(*p),
            _ => None,
        }
    }

    /// After construction: when to send the first heartbeat (`Idle`: never).
    pub fn start(&self) -> Action {
        self.heartbeat_period().map(Action::Sleep).unwrap_or(Action::Idle)
    }

    /// The caller asks to release. Sent at once, or after an in-flight heartbeat (then this
    /// returns `Idle` and the heartbeat's outcome returns the release).
    pub fn release(&mut self, now: Now) -> Action {
        let now_unix_ms = now.unix_ms;
        self.released = true;
        match self.state {
            HeldState::Heartbeating { .. } => {
                self.release_queued = true;
                Action::Idle
            }
            _ => {
                self.state = HeldState::Releasing;
                Action::Send(self.release_request(now_unix_ms))
            }
        }
    }

    pub fn next(&mut self, input: Input, now: Now) -> Action {
        let now_unix_ms = now.unix_ms;
        match (std::mem::replace(&mut self.state, HeldState::Idle), input) {
            (HeldState::Idle, Input::Timer) if !self.released && self.heartbeat_period().is_some() => {
                self.heartbeat_sent_mono_ms = now.mono_ms;
                let next_guid = new_guid();
                let request = self.heartbeat_request(&next_guid, now_unix_ms);
                self.state = HeldState::Heartbeating { next_guid };
                Action::Send(request)
            }
            (HeldState::Heartbeating { next_guid }, Input::Response(_)) => {
                self.guid = next_guid;
                self.lease_from_mono_ms = Some(self.heartbeat_sent_mono_ms);
                if self.release_queued {
                    self.state = HeldState::Releasing;
                    return Action::Send(self.release_request(now_unix_ms));
                }
                match self.heartbeat_period() {
                    Some(period) if !self.released => Action::Sleep(period),
                    _ => Action::Idle,
                }
            }
            (HeldState::Heartbeating { next_guid }, Input::ConditionFailed) => {
                let request = self.table.get(&self.id);
                self.state = HeldState::VerifyingHeartbeat { next_guid };
                Action::Send(request)
            }
            (HeldState::VerifyingHeartbeat { next_guid }, Input::Response(Response::GetItem(found)))
                if found.as_ref().is_some_and(|item| carries_guid(item, &next_guid)) =>
            {
                // Our heartbeat landed; only its answer was lost.
                self.state = HeldState::Heartbeating { next_guid };
                self.next(Input::Response(Response::Written(None)), now)
            }
            (HeldState::VerifyingHeartbeat { .. }, Input::Response(_)) if self.release_queued => {
                // Taken over before we could release: the release reports it.
                self.state = HeldState::Stopped;
                self.lost = true;
                Action::FailedToRelease
            }
            (HeldState::VerifyingHeartbeat { .. }, Input::OtherError) if self.release_queued => {
                // Unknown whether we still hold it: the release reports the read's error.
                self.state = HeldState::Stopped;
                Action::PassError
            }
            (HeldState::VerifyingHeartbeat { .. }, Input::Response(_) | Input::OtherError) => {
                self.state = HeldState::Stopped;
                self.lost = true;
                Action::HeartbeatFailed
            }
            (HeldState::Heartbeating { .. }, Input::OtherError) if self.release_queued => {
                // The heartbeat may not have landed: release on the guid we know.
                self.state = HeldState::Releasing;
                Action::Send(self.release_request(now_unix_ms))
            }
            (HeldState::Heartbeating { .. }, Input::OtherError) => {
                self.state = HeldState::Stopped;
                self.lost = true;
                Action::HeartbeatFailed
            }
            (HeldState::Releasing, Input::Response(_)) => Action::Released,
            (HeldState::Releasing, Input::ConditionFailed) if self.may_have_released_unseen(now) => {
                self.state = HeldState::VerifyingRelease;
                Action::Send(self.table.get(&self.id))
            }
            (HeldState::Releasing, Input::ConditionFailed) => Action::FailedToRelease,
            (HeldState::VerifyingRelease, Input::Response(Response::GetItem(found))) if self.next_holder_after_us(found.as_ref()) => {
                Action::Released
            }
            (HeldState::VerifyingRelease, _) => Action::FailedToRelease,
            (HeldState::Releasing, Input::OtherError) => Action::PassError,
            (state, _) => {
                self.state = state;
                Action::Idle
            }
        }
    }

    /// Whether a release whose condition failed at `now` may have landed unseen: the SDK
    /// resent it after a lost answer, and someone took the freed lock in between. A contender
    /// takes a held lock over only after waiting out a whole lease from its read of our last
    /// write, so while that lease runs, a changed item can only be a new holder of the lock we
    /// released (which [`Self::next_holder_after_us`] checks). Not once a heartbeat found the
    /// item changed, nor with trustLocalTime, where a contender times our lease by our wall
    /// clock and its own, which this process cannot bound.
    fn may_have_released_unseen(&self, now: Now) -> bool {
        match &self.mode {
            HeldMode::FailOpen { lease_duration_ms, trust_local_time: false, .. } if !self.lost => {
                // A millisecond of margin for callers that round their clock down.
                self.lease_from_mono_ms.is_some_and(|from| now.mono_ms + 1 < from + lease_duration_ms)
            }
            HeldMode::FailOpen { .. } => false,
            // Fail-closed locks are never taken over: only our delete or a hand-made one frees them.
            HeldMode::FailClosed => !self.lost,
        }
    }

    /// The item after a failed release condition shows the lock freed by our release: a
    /// fail-open lock acquired once more since ours (the next fencing token; a deleted and
    /// re-created item would count from 1 again), or a fail-closed lock's item gone.
    fn next_holder_after_us(&self, found: Option<&Item>) -> bool {
        match (&self.mode, found) {
            (HeldMode::FailOpen { fencing_token, .. }, Some(item)) => {
                !carries_guid(item, &self.guid) && item.get(FENCING_TOKEN).and_then(AttributeValue::as_i64) == Some(fencing_token + 1)
            }
            (HeldMode::FailOpen { .. }, None) => false,
            (HeldMode::FailClosed, found) => found.is_none(),
        }
    }

    fn heartbeat_request(&self, next_guid: &[u8], now_unix_ms: i64) -> Request {
        let HeldMode::FailOpen { fencing_token, lease_duration_ms, owner, trust_local_time, .. } = &self.mode else {
            unreachable!("fail-closed locks have no heartbeat period")
        };
        let item = self.table.lease_item(
            &self.id,
            LeaseItem {
                fencing_token: *fencing_token,
                lease_ms: *lease_duration_ms,
                owner,
                guid: next_guid,
                acquired_unix_ms: trust_local_time.then_some(now_unix_ms),
            },
        );
        self.table.put(item, self.table.held_by(&self.guid))
    }

    fn release_request(&self, now_unix_ms: i64) -> Request {
        match &self.mode {
            // Lease 1 ms marks it released; the item stays so the fencing token keeps rising.
            HeldMode::FailOpen { fencing_token, owner, trust_local_time, .. } => {
                let item = self.table.lease_item(
                    &self.id,
                    LeaseItem {
                        fencing_token: *fencing_token,
                        lease_ms: RELEASED_LEASE_MS,
                        owner,
                        guid: &self.guid,
                        acquired_unix_ms: trust_local_time.then_some(now_unix_ms),
                    },
                );
                self.table.put(item, self.table.held_by(&self.guid))
            }
            HeldMode::FailClosed => Request::DeleteItem(DeleteItem {
                table: self.table.table.clone(),
                key: self.table.key(&self.id),
                condition: Some(self.table.held_by(&self.guid)),
                return_values: ReturnValues::None,
                return_old_on_condition_failure: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::RenderedExpressions;

    /// A moment: wall clock `unix_ms`, monotonic clock at 0.
    fn at(unix_ms: i64) -> Now {
        Now { unix_ms, mono_ms: 0 }
    }

    fn table(sort: bool) -> DlcTable {
        DlcTable { table: "locks".into(), partition_key: "pk".into(), sort_key: sort.then(|| "sk".into()) }
    }

    fn id(sort: bool) -> DlcKey {
        DlcKey { partition: AttributeValue::S("a".into()), sort: sort.then(|| AttributeValue::S("b".into())) }
    }

    fn fail_open(sort: bool, trust: bool) -> FailOpenAcquire {
        FailOpenAcquire::new(
            FailOpenConfig { table: table(sort), owner: "me".into(), lease_duration_ms: 100, trust_local_time: trust, retry_count: 1 },
            id(sort),
        )
    }

    fn put(action: Action) -> (PutItem, RenderedExpressions) {
        let Action::Send(Request::PutItem(put)) = action else { panic!("expected a put, got {action:?}") };
        let rendered = RenderedExpressions::new(put.condition.as_ref(), None, None, None);
        (put, rendered)
    }

    fn holder(token: Option<i64>, lease: Option<i64>, acquired: Option<i64>) -> Item {
        let mut item = Item::new();
        item.insert("pk".into(), AttributeValue::S("a".into()));
        item.insert(GUID.into(), AttributeValue::B(vec![9; 64]));
        item.insert(OWNER.into(), AttributeValue::S("other".into()));
        if let Some(t) = token {
            item.insert(FENCING_TOKEN.into(), AttributeValue::int(t));
        }
        if let Some(l) = lease {
            item.insert(LEASE_DURATION_MS.into(), AttributeValue::int(l));
        }
        if let Some(a) = acquired {
            item.insert(LOCK_ACQUIRED_TIME_UNIX_MS.into(), AttributeValue::int(a));
        }
        item
    }

    #[test]
    fn fail_open_new_lock_sends_dlcs_get_and_put() {
        let mut m = fail_open(false, false);
        assert_eq!(
            m.next(Input::Start, at(0)),
            Action::Send(Request::GetItem(GetItem { table: "locks".into(), key: table(false).key(&id(false)), consistent_read: true }))
        );
        let (put, rendered) = put(m.next(Input::Response(Response::GetItem(None)), at(5)));
        assert_eq!(rendered.condition.as_deref(), Some("attribute_not_exists(#partitionKey)"));
        assert!(rendered.attributes.values.is_empty());
        assert_eq!(put.item[FENCING_TOKEN], AttributeValue::int(1));
        assert_eq!(put.item[LEASE_DURATION_MS], AttributeValue::int(100));
        // Without trustLocalTime dlc writes no timestamp, and its suite checks that.
        assert!(!put.item.contains_key(LOCK_ACQUIRED_TIME_UNIX_MS));
        assert_eq!(put.item.len(), 5);
        let guid = m.guid().to_vec();
        assert_eq!(m.next(Input::Response(Response::Written(None)), at(6)), Action::Acquired { guid, fencing_token: Some(1), lease_from_mono_ms: 0 });
    }

    #[test]
    fn sort_key_conditions_are_parenthesised_like_dlc() {
        let mut m = fail_open(true, true);
        m.next(Input::Start, at(0));
        let (put, rendered) = put(m.next(Input::Response(Response::GetItem(None)), at(5)));
        assert_eq!(
            rendered.condition.as_deref(),
            Some("(attribute_not_exists(#partitionKey) and attribute_not_exists(#sortKey))")
        );
        assert_eq!(put.item["sk"], AttributeValue::S("b".into()));
        assert_eq!(put.item[LOCK_ACQUIRED_TIME_UNIX_MS], AttributeValue::int(5));
    }

    #[test]
    fn takeover_waits_the_items_lease_and_conditions_on_what_it_read() {
        let mut m = fail_open(true, false);
        m.next(Input::Start, at(0));
        let found = holder(Some(42), Some(250), None);
        assert_eq!(m.next(Input::Response(Response::GetItem(Some(found))), at(0)), Action::Sleep(Duration::from_millis(250)));
        let (put, rendered) = put(m.next(Input::Timer, at(0)));
        assert_eq!(
            rendered.condition.as_deref(),
            Some("(attribute_not_exists(#partitionKey) and attribute_not_exists(#sortKey)) or (guid = :guid and fencingToken = :fencingToken)")
        );
        assert_eq!(rendered.attributes.values[":guid"], AttributeValue::B(vec![9; 64]));
        assert_eq!(rendered.attributes.values[":fencingToken"], AttributeValue::int(42));
        assert_eq!(put.item[FENCING_TOKEN], AttributeValue::int(43));
        assert_ne!(put.item[GUID], AttributeValue::B(vec![9; 64]));
    }

    #[test]
    fn trusted_clock_without_timestamp_waits_the_whole_lease() {
        let mut m = fail_open(false, true);
        m.next(Input::Start, at(0));
        let found = holder(Some(1), Some(300), None);
        assert_eq!(m.next(Input::Response(Response::GetItem(Some(found))), at(1_000_000)), Action::Sleep(Duration::from_millis(300)));
        // With a timestamp, only what is left of the lease.
        let mut m = fail_open(false, true);
        m.next(Input::Start, at(0));
        let found = holder(Some(1), Some(300), Some(1_000));
        assert_eq!(m.next(Input::Response(Response::GetItem(Some(found))), at(1_100)), Action::Sleep(Duration::from_millis(200)));
    }

    #[test]
    fn fail_closed_holder_counts_as_token_zero_and_a_full_lease() {
        let mut m = fail_open(false, false);
        m.next(Input::Start, at(0));
        let found = holder(None, None, None);
        assert_eq!(m.next(Input::Response(Response::GetItem(Some(found))), at(0)), Action::Sleep(Duration::from_millis(100)));
        let (put, rendered) = put(m.next(Input::Timer, at(0)));
        assert_eq!(rendered.attributes.values[":fencingToken"], AttributeValue::int(0));
        assert_eq!(put.item[FENCING_TOKEN], AttributeValue::int(1));
    }

    #[test]
    fn condition_failures_retry_from_the_read_then_fail() {
        let mut m = fail_open(false, false);
        m.next(Input::Start, at(0));
        m.next(Input::Response(Response::GetItem(None)), at(0));
        assert!(matches!(m.next(Input::ConditionFailed, at(0)), Action::Send(Request::GetItem(_))));
        // The read shows someone else's lock: wait it out (the one retry), then fail.
        assert_eq!(m.next(Input::Response(Response::GetItem(Some(holder(Some(3), Some(50), None)))), at(0)), Action::Sleep(Duration::from_millis(50)));
        assert!(matches!(m.next(Input::Timer, at(0)), Action::Send(Request::PutItem(_))));
        assert!(matches!(m.next(Input::ConditionFailed, at(0)), Action::Send(Request::GetItem(_))));
        assert_eq!(m.next(Input::Response(Response::GetItem(Some(holder(Some(4), Some(50), None)))), at(0)), Action::FailedToAcquire);
        let mut m = fail_open(false, false);
        m.next(Input::Start, at(0));
        assert_eq!(m.next(Input::OtherError, at(0)), Action::PassError);
    }

    #[test]
    fn fail_closed_acquire_retries_after_the_period() {
        let config = FailClosedConfig { table: table(true), owner: "me".into(), acquire_period: Duration::from_millis(7), retry_count: 1 };
        let mut m = FailClosedAcquire::new(config, id(true));
        let (put, rendered) = put(m.next(Input::Start));
        assert_eq!(put.item.len(), 4);
        assert_eq!(
            rendered.condition.as_deref(),
            Some("(attribute_not_exists(#partitionKey) and attribute_not_exists(#sortKey))")
        );
        assert!(matches!(m.next(Input::ConditionFailed), Action::Send(Request::GetItem(_))));
        assert_eq!(m.next(Input::Response(Response::GetItem(Some(holder(None, None, None))))), Action::Sleep(Duration::from_millis(7)));
        assert!(matches!(m.next(Input::Timer), Action::Send(_)));
        assert!(matches!(m.next(Input::ConditionFailed), Action::Send(Request::GetItem(_))));
        assert_eq!(m.next(Input::Response(Response::GetItem(None))), Action::FailedToAcquire);
    }

    fn held(heartbeat: Option<u64>) -> HeldLock {
        let mode = HeldMode::FailOpen {
            fencing_token: 42,
            lease_duration_ms: 100,
            owner: "me".into(),
            heartbeat_period: heartbeat.map(Duration::from_millis),
            trust_local_time: false,
        };
        HeldLock::new(table(false), id(false), mode, vec![1; 64], Some(0))
    }

    #[test]
    fn heartbeat_writes_a_new_guid_conditioned_on_the_old_one() {
        let mut lock = held(Some(10));
        assert_eq!(lock.start(), Action::Sleep(Duration::from_millis(10)));
        let (put, rendered) = put(lock.next(Input::Timer, at(0)));
        assert_eq!(rendered.condition.as_deref(), Some("attribute_exists(#partitionKey) and guid = :guid"));
        assert_eq!(rendered.attributes.values[":guid"], AttributeValue::B(vec![1; 64]));
        let next = put.item[GUID].as_b().unwrap().to_vec();
        assert_eq!(lock.next(Input::Response(Response::Written(None)), at(0)), Action::Sleep(Duration::from_millis(10)));
        assert_eq!(lock.guid(), next.as_slice());
    }

    #[test]
    fn release_waits_for_an_in_flight_heartbeat_and_uses_its_guid() {
        let mut lock = held(Some(10));
        let (put_hb, _) = put(lock.next(Input::Timer, at(0)));
        assert_eq!(lock.release(at(0)), Action::Idle);
        let (release, rendered) = put(lock.next(Input::Response(Response::Written(None)), at(0)));
        assert_eq!(release.item[LEASE_DURATION_MS], AttributeValue::int(1));
        assert_eq!(rendered.attributes.values[":guid"], put_hb.item[GUID]);
        assert_eq!(release.item[GUID], put_hb.item[GUID]);
        assert_eq!(lock.next(Input::Response(Response::Written(None)), at(0)), Action::Released);
        // No heartbeat after release.
        assert_eq!(lock.next(Input::Timer, at(0)), Action::Idle);
    }

    #[test]
    fn release_of_a_taken_over_lock_is_reported() {
        // Taken over: the release's condition failed after our lease (100 ms from 0) ran out.
        let after_lease = Now { unix_ms: 0, mono_ms: 150 };
        let mut lock = held(None);
        assert_eq!(lock.start(), Action::Idle);
        assert!(matches!(lock.release(after_lease), Action::Send(_)));
        assert_eq!(lock.next(Input::ConditionFailed, after_lease), Action::FailedToRelease);
        let mut lock = held(Some(10));
        lock.next(Input::Timer, at(0));
        lock.release(at(0));
        assert!(matches!(lock.next(Input::ConditionFailed, at(0)), Action::Send(Request::GetItem(_))));
        assert_eq!(lock.next(Input::Response(Response::GetItem(Some(holder(Some(43), Some(100), None)))), at(0)), Action::FailedToRelease);
    }

    #[test]
    fn heartbeat_failure_stops_heartbeats() {
        let mut lock = held(Some(10));
        lock.next(Input::Timer, at(0));
        assert!(matches!(lock.next(Input::ConditionFailed, at(0)), Action::Send(Request::GetItem(_))));
        assert_eq!(lock.next(Input::Response(Response::GetItem(Some(holder(Some(43), Some(100), None)))), at(0)), Action::HeartbeatFailed);
        assert_eq!(lock.next(Input::Timer, at(0)), Action::Idle);
    }

    #[test]
    fn a_release_that_fails_its_condition_within_our_lease_had_landed() {
        // The SDK resent a release whose answer was lost; meanwhile another client took the
        // freed lock (token 43 after our 42). No contender can take over while our lease runs.
        let next_holder = || Input::Response(Response::GetItem(Some(holder(Some(43), Some(100), None))));
        let within_lease = Now { unix_ms: 0, mono_ms: 98 };
        let mut lock = held(None);
        lock.release(within_lease);
        assert!(matches!(lock.next(Input::ConditionFailed, within_lease), Action::Send(Request::GetItem(_))));
        assert_eq!(lock.next(next_holder(), within_lease), Action::Released);
        // Any other item (re-created by hand: token 1; gone) is a loss, as is a failed read.
        for found in [Input::Response(Response::GetItem(Some(holder(Some(1), Some(100), None)))), Input::Response(Response::GetItem(None)), Input::OtherError] {
            let mut lock = held(None);
            lock.release(within_lease);
            lock.next(Input::ConditionFailed, within_lease);
            assert_eq!(lock.next(found, within_lease), Action::FailedToRelease);
        }
        // The lease counts from the send of the last heartbeat that landed.
        for (failed_at, verifies) in [(178, true), (179, false)] {
            let mut lock = held(Some(10));
            lock.next(Input::Timer, Now { unix_ms: 0, mono_ms: 80 });
            lock.next(Input::Response(Response::Written(None)), Now { unix_ms: 0, mono_ms: 90 });
            lock.release(Now { unix_ms: 0, mono_ms: 170 });
            let action = lock.next(Input::ConditionFailed, Now { unix_ms: 0, mono_ms: failed_at });
            assert_eq!(matches!(action, Action::Send(Request::GetItem(_))), verifies, "{action:?}");
        }
        // A lock a heartbeat found changed stays lost.
        let mut lock = held(Some(10));
        lock.next(Input::Timer, at(0));
        lock.next(Input::ConditionFailed, at(0));
        assert_eq!(lock.next(next_holder(), at(0)), Action::HeartbeatFailed);
        lock.release(at(0));
        assert_eq!(lock.next(Input::ConditionFailed, at(0)), Action::FailedToRelease);
        // A fail-closed lock is never taken over: its item gone proves the delete landed.
        let mut lock = HeldLock::new(table(false), id(false), HeldMode::FailClosed, vec![3; 64], Some(0));
        lock.release(at(0));
        lock.next(Input::ConditionFailed, at(0));
        assert_eq!(lock.next(Input::Response(Response::GetItem(None)), at(0)), Action::Released);
    }

    /// The item as our own write left it: `guid` is the one we sent.
    fn ours(guid: &[u8], token: Option<i64>) -> Item {
        let mut item = holder(token, Some(100), None);
        item.insert(GUID.into(), AttributeValue::B(guid.to_vec()));
        item
    }

    #[test]
    fn an_acquire_whose_put_landed_unseen_holds_the_lock() {
        // The SDK resent a put whose answer was lost; the resend failed against our own item.
        let mut m = fail_open(false, false);
        m.next(Input::Start, at(0));
        // The put goes out at 5 ms (monotonic): the lease counts from its send, not its answer.
        m.next(Input::Response(Response::GetItem(None)), Now { unix_ms: 0, mono_ms: 5 });
        assert!(matches!(m.next(Input::ConditionFailed, at(0)), Action::Send(Request::GetItem(_))));
        let guid = m.guid().to_vec();
        let found = Input::Response(Response::GetItem(Some(ours(&guid, Some(1)))));
        assert_eq!(m.next(found, Now { unix_ms: 0, mono_ms: 40 }), Action::Acquired { guid, fencing_token: Some(1), lease_from_mono_ms: 5 });

        let config = FailClosedConfig { table: table(false), owner: "me".into(), acquire_period: Duration::from_millis(7), retry_count: 0 };
        let mut m = FailClosedAcquire::new(config, id(false));
        m.next(Input::Start);
        assert!(matches!(m.next(Input::ConditionFailed), Action::Send(Request::GetItem(_))));
        let guid = m.guid().to_vec();
        assert_eq!(m.next(Input::Response(Response::GetItem(Some(ours(&guid, None))))), Action::Acquired { guid, fencing_token: None, lease_from_mono_ms: 0 });
    }

    #[test]
    fn a_heartbeat_that_landed_unseen_keeps_the_lock() {
        let mut lock = held(Some(10));
        let Action::Send(Request::PutItem(heartbeat)) = lock.next(Input::Timer, at(0)) else { panic!("expected a heartbeat") };
        let Some(AttributeValue::B(next_guid)) = heartbeat.item.get(GUID).cloned() else { panic!("no guid") };
        assert!(matches!(lock.next(Input::ConditionFailed, at(0)), Action::Send(Request::GetItem(_))));
        assert_eq!(lock.next(Input::Response(Response::GetItem(Some(ours(&next_guid, Some(42))))), at(0)), Action::Sleep(Duration::from_millis(10)));
        assert_eq!(lock.guid(), next_guid.as_slice());
        // A release queued behind a heartbeat that landed unseen goes out on the new guid.
        lock.next(Input::Timer, at(0));
        lock.release(at(0));
        assert!(matches!(lock.next(Input::ConditionFailed, at(0)), Action::Send(Request::GetItem(_))));
        let Action::Send(Request::PutItem(release)) = lock.next(Input::Response(Response::GetItem(Some(ours(&lock_next_guid(&lock), Some(42))))), at(0)) else {
            panic!("expected the release")
        };
        assert_eq!(release.item.get(LEASE_DURATION_MS), Some(&AttributeValue::int(RELEASED_LEASE_MS)));
    }

    fn lock_next_guid(lock: &HeldLock) -> Vec<u8> {
        match &lock.state {
            HeldState::VerifyingHeartbeat { next_guid } => next_guid.clone(),
            other => panic!("not verifying a heartbeat: {other:?}"),
        }
    }

    #[test]
    fn fail_closed_release_deletes_on_our_guid() {
        let mut lock = HeldLock::new(table(true), id(true), HeldMode::FailClosed, vec![3; 64], Some(0));
        let Action::Send(Request::DeleteItem(delete)) = lock.release(at(0)) else { panic!() };
        let rendered = RenderedExpressions::new(delete.condition.as_ref(), None, None, None);
        assert_eq!(
            rendered.condition.as_deref(),
            Some("(attribute_exists(#partitionKey) and attribute_exists(#sortKey)) and guid = :guid")
        );
        assert_eq!(delete.key.len(), 2);
        assert_eq!(lock.next(Input::Response(Response::Written(None)), at(0)), Action::Released);
    }
}
