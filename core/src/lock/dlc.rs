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
//!   (or being verified) is sent after it, with the guid it wrote (dlc conditions on the stale
//!   guid); after a heartbeat whose outcome is unknown the release tries both guids;
//! - a release whose condition fails reports [`Action::FailedToRelease`] (dlc reports success);
//! - an acquire whose put got an error other than a condition failure (a timeout or network
//!   error, which may have landed) reads the item back: our fresh guid there means we hold the
//!   lock; otherwise the put may still land, so the machine sends a best-effort undo
//!   ([`Action::Undo`], conditioned on our guid) before the error is reported. A fail-closed
//!   lock never frees itself, so a put of ours landing unseen would leave it held by nobody
//!   for good: its undo is sent once more after [`FailClosedConfig::undo_delay`], and when that
//!   one gets no definite answer either, the error comes with a [`TakeBack`]
//!   ([`Action::PassErrorAndTakeBack`]) that the caller runs in the background;
//! - a fail-closed release whose delete gets an error other than a condition failure (it may
//!   have landed) reads the item back: gone, or taken by the next fail-closed holder, means our
//!   delete landed (nothing else frees a fail-closed lock); still ours, it is resent, up to
//!   `resend::AMBIGUOUS_RESENDS` times, the engine's bound. When it stays unknown the error is
//!   reported with a [`TakeBack`], which deletes on our guid through failures for up to a
//!   minute: a fail-closed lock is never left held by nobody for ever. A fail-open release
//!   reports such an error at once, as dlc does (dlc's own suite requires it, answering no
//!   read): its heartbeats have stopped, so its lease frees the lock.
//!
//! dlc reports such errors at once and sends nothing more, so these requests appear only on
//! paths dlc never handled.

use std::time::Duration;

use crate::expr::{val, Condition, Name};
use crate::lock::item::{carries_guid, freed_by_our_release, lock_key, new_guid, FENCING_TOKEN, GUID, LEASE_DURATION_MS, LOCK_ACQUIRED_TIME_UNIX_MS, OWNER, RELEASED_LEASE_MS};
use crate::request::{DeleteItem, GetItem, PutItem, Request, Response, ReturnValues};
use crate::resend::Sends;
#[cfg(test)]
use crate::resend::AMBIGUOUS_RESENDS;
use crate::value::{AttributeValue, Item};

/// A table as a dlc client names it.
#[derive(Clone, Debug, PartialEq)]
pub struct DlcTable {
    /// The table's name (dlc's `lockTable`).
    pub table: String,
    /// The partition key attribute (dlc's `partitionKey`).
    pub partition_key: String,
    /// The sort key attribute (dlc's `sortKey`), if the table has one.
    pub sort_key: Option<String>,
}

/// A lock id as dlc takes it: any key value, and the sort key's value when the table has one.
#[derive(Clone, Debug, PartialEq)]
pub struct DlcKey {
    /// The partition key's value: the lock id, or its first part when the table has a sort key.
    pub partition: AttributeValue,
    /// The sort key's value: needed when the table has a sort key, ignored otherwise.
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
    /// Milliseconds since the Unix epoch.
    pub unix_ms: i64,
    /// Milliseconds on a clock that never goes back; only differences between readings count.
    pub mono_ms: i64,
}

/// What the caller does next.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send this request and feed back its outcome.
    Send(Request),
    /// Wait this long, then feed [`Input::Timer`].
    Sleep(Duration),
    /// Nothing to do until the next input (e.g. a release queued behind a heartbeat).
    Idle,
    /// The lock is ours: build a [`HeldLock`] from these.
    Acquired {
        /// The guid the item carries, which the first heartbeat or the release is conditioned on.
        guid: Vec<u8>,
        /// The item's `fencingToken`; `None` for a fail-closed lock, which has none.
        fencing_token: Option<i64>,
        /// When the put that took the lock was sent, on the caller's monotonic clock; the held
        /// lock's lease runs from there.
        lease_from_mono_ms: i64,
    },
    /// Out of retries on a condition failure: dlc's `FailedToAcquireLock`.
    FailedToAcquire,
    /// The release landed: the lock is free (fail-open: marked released; fail-closed: deleted).
    Released,
    /// The release's condition failed: the lock was taken over or deleted (`FailedToReleaseLock`).
    FailedToRelease,
    /// A heartbeat failed (the error it got, condition or other): the lock emits `'error'` and
    /// heartbeats stop.
    HeartbeatFailed,
    /// Report the error the last request got, unchanged, to the caller of the operation.
    /// After an [`Action::Undo`], report the error that left the acquire's outcome unknown,
    /// never the undo's: the acquire's first error other than a condition failure (the put's;
    /// the read's when it followed a condition failure). The drop-in does so.
    PassError,
    /// Send this best-effort undo, then feed back its outcome as for [`Action::Send`]. An
    /// acquire emits it when its put may have landed unseen (an error other than a condition
    /// failure, and no read proved it either way) or when the caller abandons it: a put
    /// landing after we gave up would leave a lock held by nobody, which for a fail-closed
    /// lock means for ever. The request is conditioned on our own fresh guid, so it can never
    /// touch another holder's lock. Its own outcome is never reported (it is expected to fail
    /// its condition when our put did not land).
    Undo(Request),
    /// The caller gave up on the acquire ([`FailOpenAcquire::abandon`],
    /// [`FailClosedAcquire::abandon`]) and any undo it needed has been sent: nothing to report.
    Abandoned,
    /// As [`Action::PassError`], and a fail-closed item of ours may still be there (every send
    /// of the release, or of the acquire's undo, ended without a definite answer): run this
    /// [`TakeBack`] in the background, so the lock is not held by nobody for ever. What the
    /// caller reports does not wait for it.
    PassErrorAndTakeBack(TakeBack),
    /// As [`Action::Abandoned`], with a [`TakeBack`] to run in the background (see
    /// [`Action::PassErrorAndTakeBack`]).
    AbandonedAndTakeBack(TakeBack),
}

/// How long a [`TakeBack`] keeps sending through failures, and its pauses: the engine's rule
/// for a write nobody waits for (`lock::undo`), so a fail-closed lock is freed once a network
/// that failed for a few seconds comes back.
pub const TAKE_BACK_PERSISTENCE: Duration = Duration::from_secs(60);
const FIRST_TAKE_BACK_PAUSE: Duration = Duration::from_millis(50);
const MAX_TAKE_BACK_PAUSE: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, PartialEq)]
enum TakeBackState {
    New,
    Sleeping,
    Sending,
    Done,
}

/// Takes back a fail-closed lock of ours that nobody holds any more, in the background: dlc's
/// release delete, conditioned on our guid (so it can never touch another holder's lock),
/// sent after a pause and again through every failure other than a failed condition, with
/// pauses doubling from 50 ms to 5 s, for up to [`TAKE_BACK_PERSISTENCE`]. Driven like the
/// other machines: [`TakeBack::start`], then [`TakeBack::next`] with each outcome. It ends
/// with [`Action::Released`] (the delete landed, or its failed condition shows our guid gone)
/// or [`Action::PassError`] (it gave up; the caller may log the last error). Neither is the
/// operation's outcome, which was reported already.
#[derive(Clone, Debug, PartialEq)]
pub struct TakeBack {
    request: Request,
    pause: Duration,
    give_up_at_mono_ms: i64,
    state: TakeBackState,
}

impl TakeBack {
    fn new(request: Request) -> TakeBack {
        TakeBack { request, pause: FIRST_TAKE_BACK_PAUSE, give_up_at_mono_ms: 0, state: TakeBackState::New }
    }

    /// The delete it sends.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The first action: a pause, since the network just failed every send we made.
    pub fn start(&mut self, now: Now) -> Action {
        self.give_up_at_mono_ms = now.mono_ms.saturating_add(TAKE_BACK_PERSISTENCE.as_millis() as i64);
        self.state = TakeBackState::Sleeping;
        Action::Sleep(self.pause)
    }

    /// Advances with the outcome of the last action: [`Action::Sleep`] or [`Action::Send`] until
    /// it ends in [`Action::Released`] or [`Action::PassError`].
    pub fn next(&mut self, input: Input, now: Now) -> Action {
        match (std::mem::replace(&mut self.state, TakeBackState::Done), input) {
            (TakeBackState::Sleeping, Input::Timer) => {
                self.state = TakeBackState::Sending;
                Action::Send(self.request.clone())
            }
            // Deleted, or nothing of ours there any more: either way not held by nobody.
            (TakeBackState::Sending, Input::Response(_) | Input::ConditionFailed) => Action::Released,
            (TakeBackState::Sending, Input::OtherError) => {
                self.pause = (self.pause * 2).min(MAX_TAKE_BACK_PAUSE);
                if now.mono_ms.saturating_add(self.pause.as_millis() as i64) >= self.give_up_at_mono_ms {
                    return Action::PassError;
                }
                self.state = TakeBackState::Sleeping;
                Action::Sleep(self.pause)
            }
            (state, _) => {
                // An input the current state does not expect (a caller bug): stay put.
                self.state = state;
                Action::Idle
            }
        }
    }
}

impl DlcTable {
    fn key(&self, id: &DlcKey) -> Item {
        lock_key(&self.partition_key, id.partition.clone(), self.sort_key.as_deref(), id.sort.clone())
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

    /// dlc's fail-closed release: delete the item if it still carries `guid`.
    fn delete_held(&self, id: &DlcKey, guid: &[u8]) -> Request {
        Request::DeleteItem(DeleteItem {
            table: self.table.clone(),
            key: self.key(id),
            condition: Some(self.held_by(guid)),
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

    /// The attributes of a request's `Item` or `Key` in the order dlc builds them: the
    /// partition key, the lease attributes, the sort key last (any other attribute after them,
    /// by name). A JS object keeps the order its keys were set in, and the SDKs serialize params
    /// in that order, so params built in this order are dlc's bytes on the wire.
    pub fn in_dlc_order<'a>(&self, item: &'a Item) -> Vec<(&'a String, &'a AttributeValue)> {
        const LEASE_ORDER: [&str; 5] = [FENCING_TOKEN, LEASE_DURATION_MS, OWNER, GUID, LOCK_ACQUIRED_TIME_UNIX_MS];
        let rank = |name: &str| {
            if name == self.partition_key {
                0
            } else if let Some(i) = LEASE_ORDER.iter().position(|lease| *lease == name) {
                1 + i
            } else if Some(name) == self.sort_key.as_deref() {
                1 + LEASE_ORDER.len()
            } else {
                2 + LEASE_ORDER.len()
            }
        };
        let mut attributes: Vec<_> = item.iter().collect();
        // Stable: attributes of equal rank keep the item's (name) order.
        attributes.sort_by_key(|(name, _)| rank(name));
        attributes
    }
}

/// dlc's `FailOpen` options that shape its requests.
#[derive(Clone, Debug, PartialEq)]
pub struct FailOpenConfig {
    /// The lock table and its key attributes.
    pub table: DlcTable,
    /// Written into the item's `owner` attribute, for people reading the table.
    pub owner: String,
    /// The lease written into the item (`leaseDurationMs`): how long a contender waits out a
    /// holder whose heartbeats stopped.
    pub lease_duration_ms: i64,
    /// dlc's `trustLocalTime`: write `lockAcquiredTimeUnixMs`, and wait only for what is left of
    /// a holder's lease by this host's clock instead of the whole lease.
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
    /// The put failed otherwise (a timeout or network error): reading the item, since the
    /// put may have landed all the same.
    ReadingBack,
    /// The put's outcome stayed unknown: our release write (the undo) is in flight.
    Undoing,
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
    /// The caller gave up ([`Self::abandon`]): the undo ends in `Abandoned`, not `PassError`.
    abandoned: bool,
}

impl FailOpenAcquire {
    /// A machine acquiring `id` with a fresh guid; feed it [`Input::Start`] first.
    pub fn new(config: FailOpenConfig, id: DlcKey) -> FailOpenAcquire {
        let retries_left = config.retry_count;
        FailOpenAcquire {
            config,
            id,
            guid: new_guid(),
            retries_left,
            fencing_token: 0,
            put_sent_mono_ms: 0,
            state: AcquireState::Reading,
            abandoned: false,
        }
    }

    /// The guid this acquire writes, the same across its retries.
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
            (AcquireState::Writing, Input::OtherError) => {
                // dlc reports this error at once; but a put that timed out may have landed, and
                // then we hold a lock nobody knows about.
                self.state = AcquireState::ReadingBack;
                Action::Send(table.get(&self.id))
            }
            (AcquireState::Verifying | AcquireState::ReadingBack, Input::Response(Response::GetItem(Some(item))))
                if carries_guid(&item, &self.guid) =>
            {
                // Our guid is fresh for this call, so finding it proves our put landed.
                let fencing_token = item.get(FENCING_TOKEN).and_then(AttributeValue::as_i64).unwrap_or(self.fencing_token);
                // The put that landed was sent (and resent by the SDK) from put_sent_mono_ms.
                Action::Acquired { guid: self.guid.clone(), fencing_token: Some(fencing_token), lease_from_mono_ms: self.put_sent_mono_ms }
            }
            // Not ours (yet), or the read failed: the put may still land. Undo and report.
            (AcquireState::ReadingBack, Input::Response(_) | Input::ConditionFailed | Input::OtherError)
            | (AcquireState::Verifying, Input::OtherError) => self.undo(now),
            (AcquireState::Undoing, Input::Response(_) | Input::ConditionFailed | Input::OtherError) => self.finish_undo(),
            (AcquireState::Verifying, Input::Response(Response::GetItem(found))) => {
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

    /// The caller gives up on this acquire (a deadline of its own, say) and feeds no answer
    /// to the request in flight, if any. When a put of ours may still land (one was sent and
    /// no answer settled it), this returns the [`Action::Undo`] to send; later inputs answer
    /// it and the machine ends with [`Action::Abandoned`]. Otherwise `Abandoned` at once.
    /// A fail-open lock left behind would free itself after its lease; the undo frees it now.
    pub fn abandon(&mut self, now: Now) -> Action {
        self.abandoned = true;
        match std::mem::replace(&mut self.state, AcquireState::Done) {
            AcquireState::Writing | AcquireState::Verifying | AcquireState::ReadingBack => self.undo(now),
            _ => Action::Abandoned,
        }
    }

    /// Our release write, conditioned on our guid: the request a release of the lock sends.
    fn undo(&mut self, now: Now) -> Action {
        self.state = AcquireState::Undoing;
        let table = &self.config.table;
        let mut item = self.item(now.unix_ms);
        item.insert(LEASE_DURATION_MS.into(), AttributeValue::int(RELEASED_LEASE_MS));
        Action::Undo(table.put(item, table.held_by(&self.guid)))
    }

    /// One undo suffices here: a put of ours that lands after it frees itself after our lease
    /// (nobody heartbeats it), which is what fail-open means; waiting to undo it again would
    /// hold up every error report.
    fn finish_undo(&mut self) -> Action {
        self.state = AcquireState::Done;
        if self.abandoned {
            Action::Abandoned
        } else {
            Action::PassError
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

/// dlc's `FailClosed` options that shape its requests.
#[derive(Clone, Debug, PartialEq)]
pub struct FailClosedConfig {
    /// The lock table and its key attributes.
    pub table: DlcTable,
    /// Written into the item's `owner` attribute, for people reading the table.
    pub owner: String,
    /// dlc's `acquirePeriodMs`: the pause before trying again after the lock was found held.
    pub acquire_period: Duration,
    /// dlc's `retryCount`: attempts after the first before [`Action::FailedToAcquire`].
    pub retry_count: u32,
    /// How long after the first undo of an acquire whose outcome stayed unknown the undo is
    /// sent once more, before the error is reported: long enough for a put still on its way
    /// (the SDK's own retries, a slow connection) to have landed or died. Not one of dlc's
    /// options; [`DEFAULT_UNDO_DELAY`] unless the caller knows its SDK's per-call deadline.
    pub undo_delay: Duration,
}

/// [`FailClosedConfig::undo_delay`]'s default: 5 s, longer than the SDKs' usual per-attempt
/// timeouts on a healthy network, short enough that a caller who got an error is not kept
/// waiting long.
pub const DEFAULT_UNDO_DELAY: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, PartialEq)]
enum ClosedState {
    /// Before the first put, or sleeping before the next attempt.
    Idle,
    Putting,
    /// Reading the item to learn whether a put of ours landed: after its condition failed
    /// (`after_error: false`; an earlier send may have landed before the SDK's resend), or
    /// after another error (`true`; the put itself may have landed).
    Checking { after_error: bool },
    /// The undo (a delete conditioned on our guid) is in flight; `last`: the second one.
    Undoing { last: bool },
    /// Between the two undos.
    UndoWaiting,
    Done,
}

/// One `FailClosed.acquireLock`: conditional put, retried after `acquire_period`.
#[derive(Clone, Debug)]
pub struct FailClosedAcquire {
    config: FailClosedConfig,
    id: DlcKey,
    guid: Vec<u8>,
    retries_left: u32,
    state: ClosedState,
    /// The caller gave up ([`Self::abandon`]): the undo ends in `Abandoned`, not `PassError`.
    abandoned: bool,
}

impl FailClosedAcquire {
    /// A machine acquiring `id` with a fresh guid; feed it [`Input::Start`] first.
    pub fn new(config: FailClosedConfig, id: DlcKey) -> FailClosedAcquire {
        let retries_left = config.retry_count;
        FailClosedAcquire { config, id, guid: new_guid(), retries_left, state: ClosedState::Idle, abandoned: false }
    }

    /// The guid this acquire writes, the same across its retries.
    pub fn guid(&self) -> &[u8] {
        &self.guid
    }

    /// Advances the machine with the outcome of its last action. No clock: a fail-closed lock
    /// has no lease to time, and attempts are `acquire_period` apart.
    pub fn next(&mut self, input: Input) -> Action {
        match (std::mem::replace(&mut self.state, ClosedState::Done), input) {
            (ClosedState::Idle, Input::Start | Input::Timer) => {
                self.state = ClosedState::Putting;
                Action::Send(self.put())
            }
            (ClosedState::Putting, Input::Response(_)) => self.acquired(),
            // The put's condition failed: read the item, since a fail-closed lock whose put
            // landed unseen (resent by the SDK after a lost answer) would stay held forever.
            (ClosedState::Putting, Input::ConditionFailed) => {
                self.state = ClosedState::Checking { after_error: false };
                Action::Send(self.config.table.get(&self.id))
            }
            // dlc reports this error at once; but a put that timed out may have landed, and a
            // fail-closed lock nobody knows it holds is never freed.
            (ClosedState::Putting, Input::OtherError) => {
                self.state = ClosedState::Checking { after_error: true };
                Action::Send(self.config.table.get(&self.id))
            }
            (ClosedState::Checking { .. }, Input::Response(Response::GetItem(Some(item)))) if carries_guid(&item, &self.guid) => self.acquired(),
            (ClosedState::Checking { after_error: false }, Input::Response(Response::GetItem(_))) => {
                if self.retries_left > 0 {
                    self.retries_left -= 1;
                    self.state = ClosedState::Idle;
                    Action::Sleep(self.config.acquire_period)
                } else {
                    Action::FailedToAcquire
                }
            }
            // Not ours (yet), or the read failed: our put may still land.
            (ClosedState::Checking { after_error: true }, Input::Response(_) | Input::ConditionFailed)
            | (ClosedState::Checking { .. }, Input::OtherError) => self.undo(false),
            (ClosedState::Undoing { last: false }, Input::Response(_) | Input::ConditionFailed | Input::OtherError) => {
                // Even a delete that removed our item does not end it: another send of the put
                // (an SDK retry) may still be on its way.
                self.state = ClosedState::UndoWaiting;
                Action::Sleep(self.config.undo_delay)
            }
            (ClosedState::UndoWaiting, Input::Timer) => self.undo(true),
            (ClosedState::Undoing { last: true }, Input::Response(_) | Input::ConditionFailed) => {
                if self.abandoned {
                    Action::Abandoned
                } else {
                    Action::PassError
                }
            }
            // The last undo got no definite answer either: a put of ours that landed would hold
            // the lock for nobody, for ever. Report now, and take it back in the background.
            (ClosedState::Undoing { last: true }, Input::OtherError) => {
                let take_back = TakeBack::new(self.config.table.delete_held(&self.id, &self.guid));
                if self.abandoned {
                    Action::AbandonedAndTakeBack(take_back)
                } else {
                    Action::PassErrorAndTakeBack(take_back)
                }
            }
            (state, _) => {
                // An input the current state does not expect (a caller bug): stay put.
                self.state = state;
                Action::Idle
            }
        }
    }

    /// The caller gives up on this acquire (a deadline of its own, say) and feeds no answer
    /// to the request in flight, if any. When a put of ours may still land (one was sent and
    /// no answer settled it), this returns the [`Action::Undo`] to send, and the machine goes
    /// on as after an unknown outcome (a second undo after `undo_delay`), ending with
    /// [`Action::Abandoned`]. Abandoned during the undos, it drops the one in flight and
    /// waits for the next. Otherwise `Abandoned` at once.
    pub fn abandon(&mut self) -> Action {
        self.abandoned = true;
        match std::mem::replace(&mut self.state, ClosedState::Done) {
            ClosedState::Putting | ClosedState::Checking { .. } => self.undo(false),
            ClosedState::Undoing { last: false } | ClosedState::UndoWaiting => {
                self.state = ClosedState::UndoWaiting;
                Action::Sleep(self.config.undo_delay)
            }
            _ => Action::Abandoned,
        }
    }

    fn acquired(&self) -> Action {
        Action::Acquired { guid: self.guid.clone(), fencing_token: None, lease_from_mono_ms: 0 }
    }

    /// The request a release of the lock sends: a delete conditioned on our guid.
    fn undo(&mut self, last: bool) -> Action {
        self.state = ClosedState::Undoing { last };
        Action::Undo(self.config.table.delete_held(&self.id, &self.guid))
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
    /// dlc's `FailOpen`: a lease that heartbeats renew; a contender may take the lock once a
    /// lease passes without one.
    FailOpen {
        /// The token the acquire wrote; heartbeats and the release keep it.
        fencing_token: i64,
        /// The lease each heartbeat writes (`leaseDurationMs`).
        lease_duration_ms: i64,
        /// Written into the item's `owner` attribute on every heartbeat and the release.
        owner: String,
        /// `None` (or zero, as dlc treats it): no heartbeats.
        heartbeat_period: Option<Duration>,
        /// dlc's `trustLocalTime`: every write carries `lockAcquiredTimeUnixMs`.
        trust_local_time: bool,
    },
    /// dlc's `FailClosed`: no lease and no heartbeats; the lock is held until its item is deleted.
    FailClosed,
}

#[derive(Clone, Debug, PartialEq)]
enum HeldState {
    Idle,
    Heartbeating { next_guid: Vec<u8> },
    /// A heartbeat's condition failed: reading the item, which carries `next_guid` if an
    /// earlier send of the same heartbeat landed.
    VerifyingHeartbeat { next_guid: Vec<u8> },
    /// The release is in flight, conditioned on `guid`. `unsettled`: the new guid of a
    /// heartbeat whose outcome is unknown (it got an error other than a condition failure),
    /// which the item carries if that heartbeat landed after all.
    Releasing { unsettled: Option<Vec<u8>> },
    /// The release's condition failed: reading the item to see whether it carries the
    /// `unsettled` heartbeat's guid (then we release on that), or, when `landed_unseen` (the
    /// failure came while our lease still ran), whether our release landed unseen and the
    /// next holder took the freed lock.
    VerifyingRelease { unsettled: Option<Vec<u8>>, landed_unseen: bool },
    /// A fail-closed release whose outcome is unknown (a send got an error other than a
    /// condition failure): reading the item to learn whether our delete landed. `guid_gone`:
    /// the last delete's condition failed, so our guid had left the item.
    ReadingBackRelease { guid_gone: bool },
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
    /// A heartbeat found the item changed (or failed otherwise): the lock counts as lost,
    /// unless a later read finds the item carrying our guid.
    lost: bool,
    /// A heartbeat that stopped the heartbeats without a known outcome: its new guid, which
    /// a later release tries when its own guid is no longer there.
    unsettled_guid: Option<Vec<u8>>,
    /// When the write that last renewed our lease was sent (monotonic ms), and when the
    /// heartbeat in flight was.
    lease_from_mono_ms: Option<i64>,
    heartbeat_sent_mono_ms: i64,
    /// A send of the current release got no definite answer: it may have landed, or land yet.
    /// Its resends after unknown outcomes, within the engine's bound.
    release_sends: Sends,
}

impl HeldLock {
    /// `lease_from_mono_ms`: from [`Action::Acquired`]; `None` when unknown (a lock built by
    /// hand), and then a release whose condition fails is always reported as failed.
    pub fn new(table: DlcTable, id: DlcKey, mode: HeldMode, guid: Vec<u8>, lease_from_mono_ms: Option<i64>) -> HeldLock {
        let release_sends = Sends::new(if mode == HeldMode::FailClosed { "DeleteItem" } else { "UpdateItem" });
        HeldLock {
            table,
            id,
            mode,
            guid,
            state: HeldState::Idle,
            released: false,
            release_queued: false,
            lost: false,
            unsettled_guid: None,
            lease_from_mono_ms,
            heartbeat_sent_mono_ms: 0,
            release_sends,
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

    /// The caller asks to release. Sent at once, or after an in-flight heartbeat, including
    /// one whose condition failed and whose read is in flight (then this returns `Idle` and
    /// the heartbeat's outcome returns the release: that read's answer is not the release's).
    pub fn release(&mut self, now: Now) -> Action {
        let now_unix_ms = now.unix_ms;
        self.released = true;
        // A release asked for again (after an error) gets resends of its own; whether an
        // earlier one may have landed is still remembered.
        self.release_sends.new_call();
        match self.state {
            HeldState::Heartbeating { .. } | HeldState::VerifyingHeartbeat { .. } => {
                self.release_queued = true;
                Action::Idle
            }
            _ => {
                self.state = HeldState::Releasing { unsettled: self.unsettled_guid.clone() };
                Action::Send(self.release_request(now_unix_ms))
            }
        }
    }

    /// Advances with the outcome of the last action: a timer that was due, or the answer to a
    /// heartbeat, a release or a read that verifies one.
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
                    self.state = HeldState::Releasing { unsettled: None };
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
            (HeldState::VerifyingHeartbeat { next_guid }, Input::OtherError) if self.release_queued => {
                // The heartbeat's old guid is gone (its condition failed), and whether its new
                // one is there is unknown: read once more before the release reports anything.
                self.state = HeldState::VerifyingRelease { unsettled: Some(next_guid), landed_unseen: false };
                Action::Send(self.table.get(&self.id))
            }
            (HeldState::VerifyingHeartbeat { next_guid }, Input::OtherError) => {
                self.state = HeldState::Stopped;
                self.lost = true;
                self.unsettled_guid = Some(next_guid);
                Action::HeartbeatFailed
            }
            (HeldState::VerifyingHeartbeat { .. }, Input::Response(_)) => {
                self.state = HeldState::Stopped;
                self.lost = true;
                Action::HeartbeatFailed
            }
            (HeldState::Heartbeating { next_guid }, Input::OtherError) if self.release_queued => {
                // The heartbeat may or may not have landed (or may land yet): release on the
                // guid we know, and on the heartbeat's if that one fails.
                self.state = HeldState::Releasing { unsettled: Some(next_guid) };
                Action::Send(self.release_request(now_unix_ms))
            }
            (HeldState::Heartbeating { next_guid }, Input::OtherError) => {
                self.state = HeldState::Stopped;
                self.lost = true;
                self.unsettled_guid = Some(next_guid);
                Action::HeartbeatFailed
            }
            (HeldState::Releasing { .. }, Input::Response(_)) => Action::Released,
            // A send of ours may have landed: what the item shows now settles it.
            (HeldState::Releasing { .. }, Input::ConditionFailed) if self.release_sends.uncertain() => self.read_back_release(true),
            (HeldState::Releasing { unsettled }, Input::ConditionFailed) => {
                let landed_unseen = self.may_have_released_unseen(now);
                if unsettled.is_none() && !landed_unseen {
                    return Action::FailedToRelease;
                }
                self.state = HeldState::VerifyingRelease { unsettled, landed_unseen };
                Action::Send(self.table.get(&self.id))
            }
            (HeldState::VerifyingRelease { unsettled: Some(next_guid), .. }, Input::Response(Response::GetItem(Some(item))))
                if carries_guid(&item, &next_guid) =>
            {
                // The heartbeat landed unseen: we still hold the lock, on its guid, with the
                // lease it renewed. Release that.
                self.guid = next_guid;
                self.lease_from_mono_ms = Some(self.heartbeat_sent_mono_ms);
                self.lost = false;
                self.unsettled_guid = None;
                self.state = HeldState::Releasing { unsettled: None };
                Action::Send(self.release_request(now_unix_ms))
            }
            (HeldState::VerifyingRelease { landed_unseen: true, .. }, Input::Response(Response::GetItem(found)))
                if self.next_holder_after_us(found.as_ref()) =>
            {
                Action::Released
            }
            // A fail-closed item of ours back after our delete's condition failed (a put of
            // ours landing late re-created it): nothing else would ever free it, so release it.
            (HeldState::VerifyingRelease { .. }, Input::Response(Response::GetItem(Some(item))))
                if self.mode == HeldMode::FailClosed && carries_guid(&item, &self.guid) =>
            {
                self.resend_release(now_unix_ms)
            }
            // Whether the heartbeat's guid is there is unknown: report the read's error.
            (HeldState::VerifyingRelease { unsettled: Some(_), .. }, Input::OtherError) => Action::PassError,
            (HeldState::VerifyingRelease { .. }, _) => Action::FailedToRelease,
            // A fail-closed lock is never freed but by our delete: one that timed out (or was
            // cut off, throttled, refused) is read back, resent while still ours, and taken back
            // in the background if it stays unknown, never left held by nobody. A fail-open
            // release reports its error at once, as dlc does (its suite waits for exactly that):
            // heartbeats have stopped, so the lease frees the lock.
            (HeldState::Releasing { .. }, Input::OtherError) if self.mode == HeldMode::FailClosed => {
                self.release_sends.unanswered();
                self.read_back_release(false)
            }
            (HeldState::Releasing { .. }, Input::OtherError) => Action::PassError,
            (HeldState::ReadingBackRelease { .. }, Input::Response(Response::GetItem(found))) => {
                if found.as_ref().is_some_and(|item| carries_guid(item, &self.guid)) {
                    self.resend_release(now_unix_ms)
                } else if self.next_holder_after_us(found.as_ref()) {
                    Action::Released
                } else {
                    // Taken over (by a fail-open contender) after our delete may have landed:
                    // not ours either way, and unknown.
                    self.state = HeldState::Stopped;
                    Action::PassError
                }
            }
            // The read failed, and our guid had left the item: a delete could only fail its
            // condition again, so read again (within the same bound), then report the error;
            // nothing of ours is there to take back.
            (HeldState::ReadingBackRelease { guid_gone: true }, Input::OtherError | Input::ConditionFailed) => {
                if self.release_sends.may_resend() {
                    return self.read_back_release(true);
                }
                self.state = HeldState::Stopped;
                Action::PassError
            }
            // The read failed too: the delete, conditioned on our guid, is safe to resend.
            (HeldState::ReadingBackRelease { guid_gone: false }, Input::OtherError | Input::ConditionFailed) => self.resend_release(now_unix_ms),
            (state, _) => {
                self.state = state;
                Action::Idle
            }
        }
    }

    fn read_back_release(&mut self, guid_gone: bool) -> Action {
        self.state = HeldState::ReadingBackRelease { guid_gone };
        Action::Send(self.table.get(&self.id))
    }

    /// The release's outcome is still unknown: resend it, or after [`AMBIGUOUS_RESENDS`]
    /// resends report the error and hand the caller the delete to take the lock back with.
    fn resend_release(&mut self, now_unix_ms: i64) -> Action {
        if self.release_sends.may_resend() {
            self.state = HeldState::Releasing { unsettled: None };
            return Action::Send(self.release_request(now_unix_ms));
        }
        self.state = HeldState::Stopped;
        Action::PassErrorAndTakeBack(TakeBack::new(self.release_request(now_unix_ms)))
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

    /// The item after a failed release condition shows the lock freed by our release (see
    /// [`freed_by_our_release`]).
    fn next_holder_after_us(&self, found: Option<&Item>) -> bool {
        let fencing_token = match &self.mode {
            HeldMode::FailOpen { fencing_token, .. } => Some(*fencing_token),
            HeldMode::FailClosed => None,
        };
        freed_by_our_release(found, &self.guid, fencing_token)
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
            HeldMode::FailClosed => self.table.delete_held(&self.id, &self.guid),
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
    fn items_are_listed_in_dlcs_order() {
        let table = table(true);
        let lease = LeaseItem { fencing_token: 2, lease_ms: 10, owner: "o", guid: &[1], acquired_unix_ms: Some(7) };
        let mut item = table.lease_item(&id(true), lease);
        item.insert("other".into(), AttributeValue::Null);
        let names: Vec<_> = table.in_dlc_order(&item).into_iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["pk", "fencingToken", "leaseDurationMs", "owner", "guid", "lockAcquiredTimeUnixMs", "sk", "other"]);
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
        let config = FailClosedConfig { table: table(true), owner: "me".into(), acquire_period: Duration::from_millis(7), retry_count: 1, undo_delay: DEFAULT_UNDO_DELAY };
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

        let config = FailClosedConfig { table: table(false), owner: "me".into(), acquire_period: Duration::from_millis(7), retry_count: 0, undo_delay: DEFAULT_UNDO_DELAY };
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

    /// The guid a heartbeat (or release) put writes.
    fn written_guid(action: &Action) -> Vec<u8> {
        let Action::Send(Request::PutItem(put)) = action else { panic!("expected a put, got {action:?}") };
        put.item[GUID].as_b().unwrap().to_vec()
    }

    /// The `:guid` a put or delete is conditioned on.
    fn conditioned_on(request: &Request) -> AttributeValue {
        let condition = match request {
            Request::PutItem(put) => put.condition.as_ref(),
            Request::DeleteItem(delete) => delete.condition.as_ref(),
            other => panic!("no condition on {other:?}"),
        };
        RenderedExpressions::new(condition, None, None, None).attributes.values[":guid"].clone()
    }

    fn read(found: Option<Item>) -> Input {
        Input::Response(Response::GetItem(found))
    }

    #[test]
    fn a_release_during_a_heartbeat_verification_waits_for_it() {
        // The heartbeat's condition failed and its read is in flight when the release comes:
        // the release must not go out, and the read's answer is not the release's.
        let mut lock = held(Some(10));
        let next_guid = written_guid(&lock.next(Input::Timer, at(0)));
        assert!(matches!(lock.next(Input::ConditionFailed, at(0)), Action::Send(Request::GetItem(_))));
        assert_eq!(lock.release(at(0)), Action::Idle);
        // Someone else's item: we lost the lock, and the release says so.
        assert_eq!(lock.next(read(Some(holder(Some(43), Some(100), None))), at(0)), Action::FailedToRelease);

        // The heartbeat had landed (its answer was lost): the release goes out on its guid.
        let mut lock = held(Some(10));
        let next_guid_2 = written_guid(&lock.next(Input::Timer, at(0)));
        lock.next(Input::ConditionFailed, at(0));
        assert_eq!(lock.release(at(0)), Action::Idle);
        let action = lock.next(read(Some(ours(&next_guid_2, Some(42)))), at(0));
        let Action::Send(release) = &action else { panic!("expected the release, got {action:?}") };
        assert_eq!(conditioned_on(release), AttributeValue::B(next_guid_2.clone()));
        assert_eq!(written_guid(&action), next_guid_2);
        assert_eq!(lock.next(Input::Response(Response::Written(None)), at(0)), Action::Released);
        assert_ne!(next_guid, next_guid_2);
    }

    #[test]
    fn a_release_queued_behind_a_heartbeat_of_unknown_outcome_tries_both_guids() {
        let after_lease = Now { unix_ms: 0, mono_ms: 150 };
        let start = |lock: &mut HeldLock| {
            let next_guid = written_guid(&lock.next(Input::Timer, at(0)));
            assert_eq!(lock.release(at(0)), Action::Idle);
            // The heartbeat timed out: the release goes out on the guid we know, as before.
            let action = lock.next(Input::OtherError, at(0));
            let Action::Send(release) = &action else { panic!("expected the release, got {action:?}") };
            assert_eq!(conditioned_on(release), AttributeValue::B(vec![1; 64]));
            next_guid
        };
        // The heartbeat landed after all: the release on the old guid fails, the item carries
        // the heartbeat's guid, and the release goes out on that one (even after our first
        // lease: the heartbeat renewed it).
        let mut lock = held(Some(10));
        let next_guid = start(&mut lock);
        assert!(matches!(lock.next(Input::ConditionFailed, after_lease), Action::Send(Request::GetItem(_))));
        let action = lock.next(read(Some(ours(&next_guid, Some(42)))), after_lease);
        let Action::Send(release) = &action else { panic!("expected the release, got {action:?}") };
        assert_eq!(conditioned_on(release), AttributeValue::B(next_guid.clone()));
        assert_eq!(lock.guid(), next_guid.as_slice());
        assert_eq!(lock.next(Input::Response(Response::Written(None)), after_lease), Action::Released);

        // It did not land: the release on the old guid answers.
        let mut lock = held(Some(10));
        start(&mut lock);
        assert_eq!(lock.next(Input::Response(Response::Written(None)), at(0)), Action::Released);

        // Neither guid is there (taken over after our lease): a failure.
        let mut lock = held(Some(10));
        start(&mut lock);
        lock.next(Input::ConditionFailed, after_lease);
        assert_eq!(lock.next(read(Some(holder(Some(43), Some(100), None))), after_lease), Action::FailedToRelease);

        // The read fails: unknown, so the read's error is reported.
        let mut lock = held(Some(10));
        start(&mut lock);
        lock.next(Input::ConditionFailed, at(0));
        assert_eq!(lock.next(Input::OtherError, at(0)), Action::PassError);

        // Within our lease, the next holder's token proves our release landed unseen.
        let mut lock = held(Some(10));
        start(&mut lock);
        lock.next(Input::ConditionFailed, at(0));
        assert_eq!(lock.next(read(Some(holder(Some(43), Some(100), None))), at(0)), Action::Released);
    }

    #[test]
    fn a_heartbeat_read_that_fails_under_a_queued_release_is_read_again() {
        let mut lock = held(Some(10));
        let next_guid = written_guid(&lock.next(Input::Timer, at(0)));
        lock.release(at(0));
        lock.next(Input::ConditionFailed, at(0));
        assert!(matches!(lock.next(Input::OtherError, at(0)), Action::Send(Request::GetItem(_))));
        let action = lock.next(read(Some(ours(&next_guid, Some(42)))), at(0));
        let Action::Send(release) = &action else { panic!("expected the release, got {action:?}") };
        assert_eq!(conditioned_on(release), AttributeValue::B(next_guid));
        assert_eq!(lock.next(Input::Response(Response::Written(None)), at(0)), Action::Released);
    }

    #[test]
    fn a_release_after_a_heartbeat_error_tries_the_heartbeats_guid() {
        // The heartbeat timed out with no release queued: 'error', heartbeats stop. The user
        // then releases; the heartbeat had landed, so the item carries its guid.
        let mut lock = held(Some(10));
        let next_guid = written_guid(&lock.next(Input::Timer, at(0)));
        assert_eq!(lock.next(Input::OtherError, at(0)), Action::HeartbeatFailed);
        let Action::Send(release) = lock.release(at(0)) else { panic!("expected the release") };
        assert_eq!(conditioned_on(&release), AttributeValue::B(vec![1; 64]));
        assert!(matches!(lock.next(Input::ConditionFailed, at(0)), Action::Send(Request::GetItem(_))));
        let action = lock.next(read(Some(ours(&next_guid, Some(42)))), at(0));
        let Action::Send(release) = &action else { panic!("expected the release, got {action:?}") };
        assert_eq!(conditioned_on(release), AttributeValue::B(next_guid));
        assert_eq!(lock.next(Input::Response(Response::Written(None)), at(0)), Action::Released);
        // Nothing of ours there: still a failure.
        let mut lock = held(Some(10));
        lock.next(Input::Timer, at(0));
        lock.next(Input::OtherError, at(0));
        lock.release(at(0));
        lock.next(Input::ConditionFailed, at(0));
        assert_eq!(lock.next(read(Some(holder(Some(43), Some(100), None))), at(0)), Action::FailedToRelease);
    }

    fn fail_closed_acquire() -> FailClosedAcquire {
        let config = FailClosedConfig {
            table: table(false),
            owner: "me".into(),
            acquire_period: Duration::from_millis(7),
            retry_count: 1,
            undo_delay: Duration::from_millis(900),
        };
        FailClosedAcquire::new(config, id(false))
    }

    /// The fail-closed undo: dlc's release delete, on our guid.
    fn assert_delete_undo(action: Action, guid: &[u8]) {
        let Action::Undo(Request::DeleteItem(delete)) = action else { panic!("expected a delete undo, got {action:?}") };
        let mut release = HeldLock::new(table(false), id(false), HeldMode::FailClosed, guid.to_vec(), Some(0));
        assert_eq!(release.release(at(0)), Action::Send(Request::DeleteItem(delete)));
    }

    #[test]
    fn a_fail_closed_put_that_errs_but_landed_holds_the_lock() {
        let mut m = fail_closed_acquire();
        assert!(matches!(m.next(Input::Start), Action::Send(Request::PutItem(_))));
        let action = m.next(Input::OtherError);
        assert_eq!(action, Action::Send(table(false).get(&id(false))), "a consistent read of the lock");
        let guid = m.guid().to_vec();
        assert_eq!(m.next(read(Some(ours(&guid, None)))), Action::Acquired { guid, fencing_token: None, lease_from_mono_ms: 0 });
    }

    #[test]
    fn a_fail_closed_put_of_unknown_outcome_is_undone_twice_before_the_error() {
        // The read shows no item (or another holder's, or fails): our put may land yet.
        for found in [read(None), read(Some(holder(None, None, None))), Input::OtherError] {
            let mut m = fail_closed_acquire();
            m.next(Input::Start);
            m.next(Input::OtherError);
            let guid = m.guid().to_vec();
            assert_delete_undo(m.next(found), &guid);
            // Whatever the undo's outcome (its condition fails if our put never landed), it
            // goes out once more after the delay, then the put's error is reported.
            assert_eq!(m.next(Input::ConditionFailed), Action::Sleep(Duration::from_millis(900)));
            assert_delete_undo(m.next(Input::Timer), &guid);
            assert_eq!(m.next(Input::Response(Response::Written(None))), Action::PassError);
        }
        // A condition failure whose read fails is unknown too (an earlier send may have landed).
        let mut m = fail_closed_acquire();
        m.next(Input::Start);
        m.next(Input::ConditionFailed);
        let guid = m.guid().to_vec();
        assert_delete_undo(m.next(Input::OtherError), &guid);
        assert_eq!(m.next(Input::OtherError), Action::Sleep(Duration::from_millis(900)));
        assert_delete_undo(m.next(Input::Timer), &guid);
        assert_eq!(m.next(Input::ConditionFailed), Action::PassError);
    }

    #[test]
    fn an_abandoned_fail_closed_acquire_undoes_a_put_that_may_land() {
        // Given up while the put is in flight.
        let mut m = fail_closed_acquire();
        m.next(Input::Start);
        let guid = m.guid().to_vec();
        assert_delete_undo(m.abandon(), &guid);
        assert_eq!(m.next(Input::ConditionFailed), Action::Sleep(Duration::from_millis(900)));
        assert_delete_undo(m.next(Input::Timer), &guid);
        assert_eq!(m.next(Input::ConditionFailed), Action::Abandoned);
        // Given up before sending anything, or while sleeping after a settled condition failure.
        assert_eq!(fail_closed_acquire().abandon(), Action::Abandoned);
        let mut m = fail_closed_acquire();
        m.next(Input::Start);
        m.next(Input::ConditionFailed);
        assert_eq!(m.next(read(Some(holder(None, None, None)))), Action::Sleep(Duration::from_millis(7)));
        assert_eq!(m.abandon(), Action::Abandoned);
    }

    #[test]
    fn a_fail_open_put_that_errs_is_read_back() {
        // Landed: we hold it, with the lease counted from the put's send.
        let mut m = fail_open(false, false);
        m.next(Input::Start, at(0));
        m.next(read(None), Now { unix_ms: 0, mono_ms: 5 });
        assert_eq!(m.next(Input::OtherError, at(0)), Action::Send(table(false).get(&id(false))));
        let guid = m.guid().to_vec();
        assert_eq!(m.next(read(Some(ours(&guid, Some(1)))), at(0)), Action::Acquired { guid, fencing_token: Some(1), lease_from_mono_ms: 5 });

        // Unknown: undone with the very request a release of the lock sends, then the error.
        for found in [read(None), read(Some(holder(Some(1), Some(100), None))), Input::OtherError] {
            let mut m = fail_open(false, false);
            m.next(Input::Start, at(0));
            m.next(read(None), at(0));
            m.next(Input::OtherError, at(0));
            let Action::Undo(undo) = m.next(found, at(0)) else { panic!("expected an undo") };
            let mode = HeldMode::FailOpen { fencing_token: 1, lease_duration_ms: 100, owner: "me".into(), heartbeat_period: None, trust_local_time: false };
            let mut release = HeldLock::new(table(false), id(false), mode, m.guid().to_vec(), Some(0));
            assert_eq!(release.release(at(0)), Action::Send(undo));
            assert_eq!(m.next(Input::ConditionFailed, at(0)), Action::PassError);
        }
        // A condition failure whose read fails: undo too.
        let mut m = fail_open(false, false);
        m.next(Input::Start, at(0));
        m.next(read(None), at(0));
        m.next(Input::ConditionFailed, at(0));
        let Action::Undo(undo) = m.next(Input::OtherError, at(0)) else { panic!("expected an undo") };
        assert_eq!(conditioned_on(&undo), AttributeValue::B(m.guid().to_vec()));
        assert_eq!(m.next(Input::Response(Response::Written(None)), at(0)), Action::PassError);
        // The first read failing sent no put: nothing to undo.
        let mut m = fail_open(false, false);
        m.next(Input::Start, at(0));
        assert_eq!(m.next(Input::OtherError, at(0)), Action::PassError);
    }

    #[test]
    fn an_abandoned_fail_open_acquire_undoes_a_put_that_may_land() {
        let mut m = fail_open(false, false);
        m.next(Input::Start, at(0));
        m.next(read(None), at(0));
        let Action::Undo(undo) = m.abandon(at(0)) else { panic!("expected an undo") };
        let (put, _) = put(Action::Send(undo));
        assert_eq!(put.item[LEASE_DURATION_MS], AttributeValue::int(RELEASED_LEASE_MS));
        assert_eq!(m.next(Input::ConditionFailed, at(0)), Action::Abandoned);
        // Waiting out a holder: no put of ours is out.
        let mut m = fail_open(false, false);
        m.next(Input::Start, at(0));
        m.next(read(Some(holder(Some(1), Some(100), None))), at(0));
        assert_eq!(m.abandon(at(0)), Action::Abandoned);
    }

    fn fail_closed_lock() -> HeldLock {
        HeldLock::new(table(false), id(false), HeldMode::FailClosed, vec![3; 64], Some(0))
    }

    /// A fail-closed holder's item as another client's acquisition leaves it: no token.
    fn fail_closed_holder() -> Item {
        let mut item = holder(None, None, None);
        item.remove(LEASE_DURATION_MS);
        item
    }

    #[test]
    fn a_fail_closed_release_of_unknown_outcome_is_read_back() {
        let get = Action::Send(table(false).get(&id(false)));
        // Gone, or taken by the next fail-closed holder: only our delete frees it, so it landed.
        for found in [None, Some(fail_closed_holder())] {
            let mut lock = fail_closed_lock();
            lock.release(at(0));
            assert_eq!(lock.next(Input::OtherError, at(0)), get, "a consistent read, not the error");
            assert_eq!(lock.next(read(found), at(0)), Action::Released);
        }
        // Still ours: the very same delete goes out again, and its answer is the release's.
        let mut lock = fail_closed_lock();
        let Action::Send(release) = lock.release(at(0)) else { panic!("expected the release") };
        lock.next(Input::OtherError, at(0));
        assert_eq!(lock.next(read(Some(ours(&[3; 64], None))), at(0)), Action::Send(release.clone()));
        assert_eq!(lock.next(Input::Response(Response::Written(None)), at(0)), Action::Released);
        // The read fails: the delete is resent; its failed condition after an unknown send is
        // read too (an earlier send landed), not reported as a failure.
        let mut lock = fail_closed_lock();
        lock.release(at(0));
        lock.next(Input::OtherError, at(0));
        assert_eq!(lock.next(Input::OtherError, at(0)), Action::Send(release.clone()));
        assert_eq!(lock.next(Input::ConditionFailed, at(0)), get);
        assert_eq!(lock.next(read(None), at(0)), Action::Released);
        // Once a condition failure showed our guid gone, failed reads are retried, not the
        // delete, and when none answers the error is reported with nothing to take back.
        let mut lock = fail_closed_lock();
        lock.release(at(0));
        lock.next(Input::OtherError, at(0));
        lock.next(Input::OtherError, at(0));
        assert_eq!(lock.next(Input::ConditionFailed, at(0)), get);
        for _ in 1..AMBIGUOUS_RESENDS {
            assert_eq!(lock.next(Input::OtherError, at(0)), get);
        }
        assert_eq!(lock.next(Input::OtherError, at(0)), Action::PassError);
        // A fail-open contender took it over (a token): ours no more, whether our delete
        // landed or not; the error is reported, with nothing to take back.
        let mut lock = fail_closed_lock();
        lock.release(at(0));
        lock.next(Input::OtherError, at(0));
        assert_eq!(lock.next(read(Some(holder(Some(1), Some(100), None))), at(0)), Action::PassError);
    }

    #[test]
    fn a_fail_closed_release_that_stays_unknown_is_resent_then_taken_back() {
        let mut lock = fail_closed_lock();
        let Action::Send(release) = lock.release(at(0)) else { panic!("expected the release") };
        assert!(matches!(lock.next(Input::OtherError, at(0)), Action::Send(Request::GetItem(_))));
        for _ in 0..AMBIGUOUS_RESENDS {
            assert_eq!(lock.next(read(Some(ours(&[3; 64], None))), at(0)), Action::Send(release.clone()));
            assert!(matches!(lock.next(Input::OtherError, at(0)), Action::Send(Request::GetItem(_))));
        }
        let Action::PassErrorAndTakeBack(take_back) = lock.next(Input::OtherError, at(0)) else { panic!("expected the error and a take-back") };
        assert_eq!(take_back.request(), &release, "the take-back is the release's delete, on our guid");
        // Nothing more from the lock itself; asked again, it releases afresh: the delete fails
        // its condition (the take-back or a late send landed), and the read shows it gone.
        assert_eq!(lock.next(Input::Timer, at(0)), Action::Idle);
        assert_eq!(lock.release(at(0)), Action::Send(release));
        assert!(matches!(lock.next(Input::ConditionFailed, at(0)), Action::Send(Request::GetItem(_))));
        assert_eq!(lock.next(read(None), at(0)), Action::Released);
    }

    #[test]
    fn a_fail_open_release_error_is_reported_at_once_as_dlc_does() {
        let mut lock = held(Some(10));
        assert!(matches!(lock.release(at(0)), Action::Send(Request::PutItem(_))));
        assert_eq!(lock.next(Input::OtherError, at(0)), Action::PassError);
    }

    #[test]
    fn a_fail_closed_release_whose_condition_fails_after_the_next_holder_took_it_had_landed() {
        // The SDK resent our delete after a lost answer; another fail-closed client took the
        // freed lock before the resend arrived.
        let mut lock = fail_closed_lock();
        lock.release(at(0));
        assert!(matches!(lock.next(Input::ConditionFailed, at(0)), Action::Send(Request::GetItem(_))));
        assert_eq!(lock.next(read(Some(fail_closed_holder())), at(0)), Action::Released);
        // Our own item again (a late put of ours re-created it): released once more.
        let mut lock = fail_closed_lock();
        let Action::Send(release) = lock.release(at(0)) else { panic!("expected the release") };
        lock.next(Input::ConditionFailed, at(0));
        assert_eq!(lock.next(read(Some(ours(&[3; 64], None))), at(0)), Action::Send(release));
        assert_eq!(lock.next(Input::Response(Response::Written(None)), at(0)), Action::Released);
        // A fail-open contender's takeover (it writes a token) is a loss.
        let mut lock = fail_closed_lock();
        lock.release(at(0));
        lock.next(Input::ConditionFailed, at(0));
        assert_eq!(lock.next(read(Some(holder(Some(1), Some(100), None))), at(0)), Action::FailedToRelease);
    }

    #[test]
    fn a_take_back_repeats_through_failures_for_a_bounded_time() {
        let mono = |mono_ms| Now { unix_ms: 0, mono_ms };
        let delete = table(false).delete_held(&id(false), &[3; 64]);
        let mut take_back = TakeBack::new(delete.clone());
        assert_eq!(take_back.start(mono(1_000)), Action::Sleep(Duration::from_millis(50)));
        assert_eq!(take_back.next(Input::Timer, mono(1_050)), Action::Send(delete.clone()));
        let mut pauses = Vec::new();
        let mut t = 1_050;
        loop {
            match take_back.next(Input::OtherError, mono(t)) {
                Action::Sleep(pause) => {
                    pauses.push(pause.as_millis() as i64);
                    t += pause.as_millis() as i64;
                    assert_eq!(take_back.next(Input::Timer, mono(t)), Action::Send(delete.clone()));
                }
                Action::PassError => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(&pauses[..7], &[100, 200, 400, 800, 1_600, 3_200, 5_000]);
        assert!(pauses[7..].iter().all(|p| *p == 5_000));
        assert!(t <= 61_000 && t > 55_000, "gave up after about a minute: {t}");
        // A definite answer ends it: deleted, or our guid no longer there.
        for answer in [Input::Response(Response::Written(None)), Input::ConditionFailed] {
            let mut take_back = TakeBack::new(delete.clone());
            take_back.start(mono(0));
            take_back.next(Input::Timer, mono(50));
            assert_eq!(take_back.next(answer, mono(60)), Action::Released);
        }
    }

    #[test]
    fn a_fail_closed_acquire_whose_last_undo_stays_unknown_is_taken_back() {
        let mut m = fail_closed_acquire();
        m.next(Input::Start);
        m.next(Input::OtherError);
        let guid = m.guid().to_vec();
        m.next(Input::OtherError);
        m.next(Input::OtherError);
        m.next(Input::Timer);
        let Action::PassErrorAndTakeBack(take_back) = m.next(Input::OtherError) else { panic!("expected the error and a take-back") };
        assert_delete_undo(Action::Undo(take_back.request().clone()), &guid);
        // Abandoned: the same, without an error to report.
        let mut m = fail_closed_acquire();
        m.next(Input::Start);
        m.abandon();
        m.next(Input::OtherError);
        m.next(Input::Timer);
        assert!(matches!(m.next(Input::OtherError), Action::AbandonedAndTakeBack(_)));
    }
}
