//! Acquiring locks: one conditional write when the lock is free, otherwise a bounded wait that
//! never trusts another host's clock.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::{self, SharedClock};
use crate::error::{duration_text, Error, Result};
use crate::lock::config::{LockConfig, Mode};
use crate::lock::handle::Handle;
use crate::lock::held::{loss_reason, Acquired, Lock};
use crate::lock::item::{new_guid, LockId, LockTable, NewData, Observed};
use crate::lock::undo::{AcquireGuard, LockSite};
use crate::lock::poll;
use crate::resend::Sends;
use crate::stats::{Stats, StatsSnapshot};
use crate::transport::{Counted, Transport, TransportExt};
use crate::value::Item;

/// Acquires locks of one table and configuration. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LockClient {
    config: Arc<LockConfig>,
    table: LockTable,
    /// The shared transport, seen through this client's counters.
    transport: Arc<dyn Transport>,
    clock: SharedClock,
    stats: Arc<Stats>,
}

/// The outcome of one acquisition write.
pub(super) enum Attempt {
    /// Taken, and what the item shows now.
    Acquired(Lock, Option<Observed>),
    /// Held by someone else: what the failed write saw (`None`: the item vanished meanwhile).
    Held(Option<Observed>),
}

/// What a waiter asks the table next.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    /// A look at the item.
    Read,
    /// An acquisition write: the lock looked free, or this is the first try.
    Write,
    /// A takeover write: the watched lease ran out on our clock.
    Takeover,
}

/// A holder we are waiting out: its guid and token, and when we may take over if they stay.
pub(super) struct Watch {
    pub seen: Observed,
    /// `None`: a fail-closed lock, which is never taken over.
    pub takeover_at: Option<Instant>,
}

/// What an acquisition writes besides the lock itself, and who hears of its release.
#[derive(Clone, Debug, Default)]
pub(super) struct AcquireWith {
    pub data: NewData,
    /// A semaphore's id: its waiters in this process wake when this permit is released.
    pub group: Option<LockId>,
}

impl LockClient {
    /// Validates the configuration; makes no request.
    pub fn new(config: LockConfig, transport: Arc<dyn Transport>) -> Result<LockClient> {
        config.validate()?;
        let table = LockTable {
            table: config.table.clone(),
            partition_key: config.partition_key.clone(),
            sort_key: config.sort_key.clone(),
        };
        let stats = Stats::new();
        let transport = Arc::new(Counted::new(transport, stats.clone()));
        Ok(LockClient { config: Arc::new(config), table, transport, clock: clock::system(), stats })
    }

    /// Uses `clock` for the wall-clock times written into lock items.
    pub fn with_clock(mut self, clock: SharedClock) -> LockClient {
        self.clock = clock;
        self
    }

    /// The configuration the client was created with.
    pub fn config(&self) -> &LockConfig {
        &self.config
    }

    /// The transport the client sends through, wrapped to count into this client's stats.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// What this client and its locks did so far (see [`crate::stats`]).
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    pub(super) fn counters(&self) -> &Stats {
        &self.stats
    }

    /// Takes the lock if it is free (absent or released) with one request; `None` if it is held.
    pub async fn try_acquire(&self, id: impl Into<LockId>) -> Result<Option<Lock>> {
        let id = self.check_id(id.into())?;
        let started = Instant::now();
        let result = self.attempt(&id, None, &AcquireWith::default()).await;
        self.stats.outcome(&result);
        Ok(match result? {
            Attempt::Acquired(lock, _) => {
                self.stats.acquired(started.elapsed());
                Some(lock)
            }
            Attempt::Held(_) => None,
        })
    }

    /// Acquires the lock, waiting up to `timeout` (`None`: as long as it takes).
    ///
    /// A held lease is taken over only after this client has seen the same guid and token for
    /// the item's whole `leaseDurationMs` on its own monotonic clock. While it waits, a release
    /// elsewhere is noticed within the poll interval for the first two seconds, then within a
    /// pause that grows with the wait up to the max poll interval (see
    /// [`LockConfig::poll_pause`]); a release in this process wakes its waiters at once.
    ///
    /// The waiters of one lock id in this process share one poller (when their clients share a
    /// transport, see [`Transport::scope`]): one request for the id at a time, whose answer
    /// serves them all, so a hundred waiting tasks cost the table what one does.
    ///
    /// Cancel by dropping the future. If it is dropped while a write is in flight, that write
    /// may still take the lock for nobody; it is taken back (conditioned on that write's own
    /// guid) at once and again once the transport's late-landing window has passed.
    pub async fn acquire(&self, id: impl Into<LockId>, timeout: Option<Duration>) -> Result<Lock> {
        let id = self.check_id(id.into())?;
        self.acquire_checked(id, timeout, &AcquireWith::default()).await
    }

    /// Acquires the lock like [`acquire`](LockClient::acquire), waiting no later than
    /// `deadline`, and has it end itself there ([`Lock::end_at`]): lost, then released.
    pub async fn acquire_until(&self, id: impl Into<LockId>, timeout: Option<Duration>, deadline: Instant) -> Result<Lock> {
        let id = self.check_id(id.into())?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::LockNotAcquired { id, reason: "its deadline has already passed, so it was not tried".into() });
        }
        let lock = self.acquire_checked(id, Some(timeout.map_or(left, |t| t.min(left))), &AcquireWith::default()).await?;
        lock.end_at(deadline);
        Ok(lock)
    }

    /// Acquires a lock for work that must end `margin` before `remaining` runs out (a Lambda
    /// invocation: `remaining` is what its context says is left): see
    /// [`acquire_until`](LockClient::acquire_until).
    pub async fn acquire_within(&self, id: impl Into<LockId>, timeout: Option<Duration>, remaining: Duration, margin: Duration) -> Result<Lock> {
        let id = self.check_id(id.into())?;
        if remaining <= margin {
            return Err(Error::LockNotAcquired {
                id,
                reason: format!("only {} is left, within the {} margin; give the work more time or lower the margin", duration_text(remaining), duration_text(margin)),
            });
        }
        self.acquire_until(id, timeout, Instant::now() + (remaining - margin)).await
    }

    /// Takes up a lock that another process (or this one) handed off with `Lock::detach`, after
    /// one consistent read that finds the handle's guid still in the item. Fails with
    /// [`Error::LockLost`] when it is not (released, taken over, renewed by someone else).
    ///
    /// The lease left is the item's, by its `lockAcquiredTimeUnixMs` and this host's clock: the
    /// one place the library compares two hosts' clocks, because the hand-off crosses hosts. If
    /// they may disagree by more than you can spare, call [`Lock::renew`] first; a lock whose
    /// lease has run out by this host's clock is renewed here before it is handed back (both
    /// that renewal and any takeover condition on the same guid, so only one can win). The
    /// lock heartbeats in the background if this client has a heartbeat period (the first one
    /// at once), and is renewed with this client's lease.
    pub async fn resume(&self, handle: &Handle) -> Result<Lock> {
        if handle.table != self.config.table {
            return Err(Error::invalid_value(format!(
                "the handle is for a lock in table {:?}, and this client uses {:?}: resume it with a client of that table",
                handle.table, self.config.table
            )));
        }
        if handle.is_fail_open() != self.is_fail_open() {
            let (handle_mode, ours) = if handle.is_fail_open() { ("fail-open", "fail-closed") } else { ("fail-closed", "fail-open") };
            return Err(Error::invalid_value(format!(
                "the handle is for a {handle_mode} lock, and this client makes {ours} locks: resume it with a {handle_mode} client"
            )));
        }
        let id = self.check_id(handle.id.clone())?;
        let sent = Instant::now();
        let item = self.read(&id).await?;
        let seen = item.as_ref().map(Observed::from_item);
        let ours = seen.as_ref().is_some_and(|o| o.has_guid(&handle.guid) && !o.is_released() && o.fencing_token == handle.fencing_token);
        if !ours {
            let reason = match &seen {
                Some(o) if o.fencing_token == handle.fencing_token && !o.is_released() && o.fencing_token.is_some() => {
                    "it was renewed under another handle since this one was taken".to_owned()
                }
                _ => loss_reason(seen),
            };
            return Err(Error::LockLost { id, reason: format!("{reason}; the handle no longer names a held lock") });
        }
        let left = seen.as_ref().and_then(|o| self.lease_left_by_clock(o));
        let mut acquired = Acquired::fresh(self.site(&id), self.config.clone(), handle.guid.clone(), item, sent);
        // Nothing left: no deadline until the renewal below sets one (a lock started with a
        // deadline already passed would be reported lost before it could renew).
        acquired.lease_deadline = left.filter(|left| !left.is_zero()).map(|left| sent + left);
        acquired.first_beat = self.config.heartbeat().map(|_| Instant::now());
        let lock = Lock::start(acquired);
        if left.is_some_and(|left| left.is_zero()) {
            lock.renew_before_use().await?;
        }
        Ok(lock)
    }

    /// What is left of a lease by the item's wall-clock time and ours (none when the item does
    /// not say when it was written). Fail-closed: `None`.
    fn lease_left_by_clock(&self, seen: &Observed) -> Option<Duration> {
        let lease_ms = seen.lease_duration_ms?;
        let left = match seen.acquired_unix_ms {
            Some(written) => lease_ms - (self.clock.now_unix_ms() as i64 - written).max(0),
            None => 0,
        };
        Some(Duration::from_millis(left.clamp(0, lease_ms.max(0)) as u64))
    }

    pub(super) async fn acquire_checked(&self, id: LockId, timeout: Option<Duration>, with: &AcquireWith) -> Result<Lock> {
        let started = Instant::now();
        let result = self.wait_and_acquire(id, timeout, with).await;
        match &result {
            Ok(_) => self.stats.acquired(started.elapsed()),
            Err(Error::LockNotAcquired { .. }) => self.stats.acquire_timed_out(),
            Err(_) => self.stats.outcome(&result),
        }
        result
    }

    async fn wait_and_acquire(&self, id: LockId, timeout: Option<Duration>, with: &AcquireWith) -> Result<Lock> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let poll = poll::join(self.transport.as_ref(), &self.table.table, &id);
        let mut watch: Option<Watch> = None;
        // What this waiter needs next, and after which event of the poller: it acts only on
        // what the table showed after that (another waiter's sighting qualifies if its request
        // went out later).
        let mut want = Want::Write;
        let mut wanted_after = poll.now();
        loop {
            // Listen before looking, so a release between the look and the sleep still wakes us.
            let released_here = poll.released();
            tokio::pin!(released_here);
            released_here.as_mut().enable();

            let turn = match deadline {
                Some(d) => tokio::time::timeout_at(d, poll.turn()).await.ok(),
                None => Some(poll.turn().await),
            };
            let Some(turn) = turn else {
                return Err(self.not_acquired(&id, timeout, watch.as_ref().map(|w| &w.seen)));
            };
            let sighting = match turn.sighting_after(wanted_after) {
                Some(sighting) => Some(sighting),
                None if want == Want::Read && Instant::now() < poll.next_read() => None,
                None => {
                    let sent = turn.sending();
                    let seen = match want {
                        Want::Read => self.read(&id).await?.as_ref().map(Observed::from_item),
                        // A failed takeover starts a fresh watch, even if the item looks the same.
                        Want::Write | Want::Takeover => {
                            let watched = if want == Want::Takeover { watch.take() } else { None };
                            match self.attempt(&id, watched.as_ref().map(|w| &w.seen), with).await? {
                                Attempt::Acquired(lock, seen) => {
                                    // The others learn the lock is taken without asking.
                                    turn.publish(sent, seen, &self.config);
                                    return Ok(lock);
                                }
                                Attempt::Held(seen) => seen,
                            }
                        }
                    };
                    Some(turn.publish(sent, seen, &self.config))
                }
            };
            drop(turn);

            if let Some(sighting) = sighting {
                want = Want::Read;
                match sighting.seen {
                    None => want = Want::Write,
                    // Fail-closed acquisition needs the item gone; a released lease item is not
                    // free to it (mixing modes on one id), so it waits like for any holder.
                    Some(seen) if seen.is_released() && self.is_fail_open() => want = Want::Write,
                    Some(seen) => {
                        if !watch.as_ref().is_some_and(|w| w.seen.same_lease(&seen)) {
                            // A new holder or a renewed lease: the lease is timed from this
                            // sighting's answer, after the table showed it.
                            let takeover_at = self.lease_remaining(&seen).map(|remaining| sighting.answered + remaining);
                            watch = Some(Watch { seen, takeover_at });
                        }
                    }
                }
            }

            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.not_acquired(&id, timeout, watch.as_ref().map(|w| &w.seen)));
            }
            if want == Want::Write {
                wanted_after = poll.now();
                continue;
            }
            let takeover_at = watch.as_ref().and_then(|w| w.takeover_at);
            let mut wake_at = poll.next_read();
            if let Some(at) = takeover_at {
                wake_at = wake_at.min(at);
            }
            if let Some(d) = deadline {
                wake_at = wake_at.min(d);
            }
            // Never poll in a tight loop, whatever the item claims its lease is.
            wake_at = wake_at.max(Instant::now() + Duration::from_millis(1));
            // Biased: a seeded simulation replays the same branch choices.
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(wake_at) => {
                    if takeover_at.is_some_and(|at| Instant::now() >= at) {
                        want = Want::Takeover;
                    }
                    wanted_after = poll.now();
                }
                _ = released_here => {
                    want = Want::Write;
                    wanted_after = poll.last_release();
                }
            }
        }
    }

    pub(super) fn is_fail_open(&self) -> bool {
        matches!(self.config.mode(), Mode::FailOpen { .. })
    }

    /// How long after our read the watched lease may be taken over, if its holder does not
    /// renew it. Without `trust_local_time` that is the whole lease; with it, what the item's
    /// `lockAcquiredTimeUnixMs` says is left (the whole lease when the item lacks it).
    pub(super) fn lease_remaining(&self, seen: &Observed) -> Option<Duration> {
        if !self.is_fail_open() {
            return None; // fail-closed clients never take a lock over
        }
        let lease_ms = seen.lease_duration_ms?.max(0);
        let trust = matches!(self.config.mode(), Mode::FailOpen { trust_local_time: true, .. });
        let remaining_ms = match (trust, seen.acquired_unix_ms) {
            (true, Some(acquired)) => {
                let elapsed = self.clock.now_unix_ms() as i64 - acquired;
                (lease_ms - elapsed.max(0)).clamp(0, lease_ms)
            }
            _ => lease_ms,
        };
        Some(Duration::from_millis(remaining_ms as u64))
    }

    /// One acquisition write, resent with the same guid while its outcome is unknown. Guarded
    /// from before the first send: if this future is dropped or gives up while a send may still
    /// land, the guard takes the write back (see `lock::undo`).
    pub(super) async fn attempt(&self, id: &LockId, takeover: Option<&Observed>, with: &AcquireWith) -> Result<Attempt> {
        let mut guard = AcquireGuard::arm(self.site(id), new_guid());
        // The lease runs from the first send: waiters may see our guid from then on.
        let lease_start = Instant::now();
        let operation = if self.is_fail_open() { "UpdateItem" } else { "PutItem" };
        let mut sends = Sends::new(operation);
        loop {
            guard.sending();
            let outcome = match &self.config.mode() {
                Mode::FailOpen { lease_duration, .. } => {
                    let request = self.table.acquire(
                        id,
                        guard.guid(),
                        &self.config.owner,
                        lease_duration.as_millis() as i64,
                        self.clock.now_unix_ms() as i64,
                        takeover,
                        &with.data,
                    );
                    self.transport.update_item(request).await
                }
                Mode::FailClosed => {
                    let request = self.table.acquire_fail_closed(id, guard.guid(), &self.config.owner, &with.data);
                    let written = request.item.clone();
                    self.transport.put_item(request).await.map(|_| Some(written))
                }
            };
            guard.answered(outcome.as_ref().is_err_and(Error::is_ambiguous));
            let item = match outcome {
                Ok(item) => item,
                Err(Error::ConditionalCheckFailed { item }) => {
                    let current = match item {
                        Some(item) => Some(*item),
                        // An endpoint that ignores ReturnValuesOnConditionCheckFailure: look.
                        None => self.read(id).await.map_err(|e| sends.unresolved(e))?,
                    };
                    if current.as_ref().is_some_and(|item| Observed::from_item(item).has_guid(guard.guid())) {
                        // An earlier send of this write landed.
                        current
                    } else {
                        self.stats.contended();
                        return Ok(Attempt::Held(current.as_ref().map(Observed::from_item)));
                    }
                }
                Err(e) => match sends.failed(self.explain(e)) {
                    Ok(()) => continue,
                    // Out of resends, or a resend failed after an unknown outcome: a consistent
                    // read says whether our guid is there. If not (or the read fails too), the
                    // guard undoes the write in case it lands yet.
                    Err(e) if e.is_ambiguous() => match self.read(id).await {
                        Ok(Some(item)) if Observed::from_item(&item).has_guid(guard.guid()) => Some(item),
                        _ => return Err(e),
                    },
                    Err(e) => return Err(e),
                },
            };
            if self.config.lease().is_some_and(|lease| Instant::now() >= lease_start + lease) {
                // The answer came after the lease we wrote had run out (resends, a cut-off): by
                // now another client may hold the lock with a higher token. Handing this one out
                // would give the caller a lock that is already lost and a token out of order.
                let observed = item.as_ref().map(Observed::from_item);
                guard.give_up();
                return Ok(Attempt::Held(observed));
            }
            let guid = guard.guid().to_vec();
            let uncertain_until = guard.disarm_held();
            let seen = item.as_ref().map(Observed::from_item);
            let mut acquired = Acquired::fresh(self.site(id), self.config.clone(), guid, item, lease_start);
            acquired.uncertain_until = uncertain_until;
            acquired.group = with.group.clone();
            if takeover.is_some() {
                self.stats.took_over();
            }
            return Ok(Attempt::Acquired(Lock::start(acquired), seen));
        }
    }

    fn site(&self, id: &LockId) -> LockSite {
        LockSite {
            transport: self.transport.clone(),
            table: self.table.clone(),
            id: id.clone(),
            fail_open: self.is_fail_open(),
            clock: self.clock.clone(),
            stats: self.stats.clone(),
        }
    }

    pub(super) async fn read(&self, id: &LockId) -> Result<Option<Item>> {
        self.transport.get_item(self.table.read(id)).await.map_err(|e| self.explain(e))
    }

    pub(super) fn table(&self) -> &LockTable {
        &self.table
    }

    pub(super) fn check_id(&self, id: LockId) -> Result<LockId> {
        self.config.check_id(id)
    }

    pub(super) fn not_acquired(&self, id: &LockId, timeout: Option<Duration>, seen: Option<&Observed>) -> Error {
        let holder = seen.map(Observed::describe_holder).unwrap_or_else(|| "held by another client".into());
        let waited = timeout.map(|t| format!(" after waiting {}", duration_text(t))).unwrap_or_default();
        Error::LockNotAcquired { id: id.clone(), reason: format!("{holder}{waited}; retry later or raise the timeout") }
    }

    /// Turns DynamoDB's terse key-schema complaints into something actionable.
    pub(super) fn explain(&self, error: Error) -> Error {
        error.explain_key_schema(&self.config.table, || {
            format!(
                "{{partition_key}} {:?}, {{sort_key}} {:?}, and the lock id's type",
                self.config.partition_key, self.config.sort_key
            )
        })
    }
}
