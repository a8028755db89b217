//! A held lock: fencing token, heartbeats, lost-lease detection, lock data, release, and handing
//! it to another process (detach; `LockClient::resume` takes it back up).
//!
//! Heartbeats and releases hold the lock's async mutex across their sends, so that no release
//! ever conditions on a guid that a concurrent heartbeat has just replaced (dlc reports such a
//! release as a success and leaves a live lease behind). Data updates and fenced writes
//! (`lock::fence`) take it only to read the guid, so a slow write never holds up the heartbeats
//! that keep the lease.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::Handle as Runtime;
use tokio::sync::{watch, MutexGuard};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{duration_text, Error, Result};
use crate::lock::config::{LockConfig, Mode};
use crate::lock::handle::Handle;
use crate::lock::item::{freed_by_our_release, new_guid, LockId, Observed};
use crate::lock::undo::LockSite;
use crate::lock::poll;
use crate::request::Request;
use crate::resend::Sends;
use crate::stats::LossReason;
use crate::transport::TransportExt;
use crate::value::{Item, Value};

/// Where a lock stands, as seen by its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockStatus {
    /// Held: its lease (a fail-closed lock has none) has not run out, and no other client is
    /// known to have taken it.
    Held,
    /// The lease ran out or another client took the lock; the reason says which. A lost lock
    /// that is released afterwards (possible when nobody took it over) stays `Lost`.
    Lost(String),
    /// Released by this holder.
    Released,
    /// Handed to another process with [`Lock::detach`]: this object no longer acts for it.
    Detached,
}

impl LockStatus {
    /// `"held"`, `"lost"`, `"released"` or `"detached"`.
    pub fn name(&self) -> &'static str {
        match self {
            LockStatus::Held => "held",
            LockStatus::Lost(_) => "lost",
            LockStatus::Released => "released",
            LockStatus::Detached => "detached",
        }
    }
}

/// A lock this process holds. Cheap to clone; all clones are the same lock.
///
/// Dropping the last clone without [`release`](Lock::release) stops the heartbeats and sends a
/// best-effort release in the background; should that fail, a fail-open lock frees itself after
/// its lease, while a fail-closed lock stays held until released by hand.
#[derive(Clone)]
pub struct Lock {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// The lock's table, id and transport, and how to take back a write of ours.
    pub(super) site: LockSite,
    config: Arc<LockConfig>,
    fencing_token: Option<i64>,
    held: tokio::sync::Mutex<Held>,
    /// When the lease ends unless renewed (fail-open). Before then nobody can take the lock
    /// over; from then on [`Lock::status`] reports it lost, whether or not a task noticed.
    lease_deadline: Mutex<Option<Instant>>,
    data: Mutex<Option<Value>>,
    status: watch::Sender<LockStatus>,
    /// Set by a successful release, whatever the status says (a lost lock can be released).
    released: AtomicBool,
    keep_alive: Mutex<Option<JoinHandle<()>>>,
    /// Where the background writes of this lock run (heartbeats, undo, release on drop), so
    /// that a lock dropped outside the runtime (a Python finalizer) can still send them.
    runtime: Runtime,
    /// The process that acquired the lock: a forked child holds a copy of this object, but not
    /// the lock.
    pid: u32,
    /// The guid the lock was handed off under ([`Lock::detach`]). Shared with the task that takes
    /// back a late acquisition, which must not take back what another process now holds.
    handed_off: Arc<Mutex<Option<Vec<u8>>>>,
    /// The acquisition's guid, and until when an earlier send of it may still land.
    acquisition: (Vec<u8>, Option<Instant>),
    /// The lock's current guid, for [`Lock::handle`] without waiting for a heartbeat in flight.
    guid_now: Mutex<Vec<u8>>,
    /// Where the lock ends itself ([`Lock::end_at`]): from then on it is lost, and released.
    ends_at: Mutex<Option<Instant>>,
    /// Also told of this lock's release: the waiters of a semaphore whose permit it is.
    group: Option<LockId>,
}

/// The state writes condition on.
pub(super) struct Held {
    pub(super) guid: Vec<u8>,
    /// A heartbeat that was sent and not confirmed: the item may carry its guid instead.
    pending: Option<Pending>,
    /// The guids our fail-open releases wrote or may have written: an item that carries one was
    /// released by us, whatever our earlier release call was told.
    release_guids: Vec<Vec<u8>>,
    /// A fail-closed release whose outcome stayed unknown may still delete the item until then.
    release_unknown_until: Option<Instant>,
}

#[derive(Clone)]
struct Pending {
    guid: Vec<u8>,
    /// When this guid was first sent. Waiters may see it from then on and time their wait from
    /// it, so a lease it renewed runs from here, not from a later resend.
    first_sent: Instant,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("id", &self.inner.site.id)
            .field("fencing_token", &self.inner.fencing_token)
            .field("status", &*self.inner.status.borrow())
            .finish()
    }
}

pub(crate) struct Acquired {
    pub site: LockSite,
    pub config: Arc<LockConfig>,
    pub guid: Vec<u8>,
    pub item: Option<Item>,
    /// When the lease ends unless renewed (fail-open): a lease runs from the first send of the
    /// write that took (or last renewed) it.
    pub lease_deadline: Option<Instant>,
    /// When the first heartbeat is due (`None`: no heartbeats).
    pub first_beat: Option<Instant>,
    /// Until when an earlier send of the acquisition, whose outcome was unknown, may land.
    pub uncertain_until: Option<Instant>,
    pub group: Option<LockId>,
}

impl Acquired {
    /// A lock just taken by a write first sent at `lease_start`.
    pub fn fresh(site: LockSite, config: Arc<LockConfig>, guid: Vec<u8>, item: Option<Item>, lease_start: Instant) -> Acquired {
        Acquired {
            lease_deadline: config.lease().map(|lease| lease_start + lease),
            first_beat: config.heartbeat().map(|period| lease_start + period),
            site,
            config,
            guid,
            item,
            uncertain_until: None,
            group: None,
        }
    }
}

impl Lock {
    pub(crate) fn start(acquired: Acquired) -> Lock {
        let observed = acquired.item.as_ref().map(Observed::from_item);
        let data = acquired
            .item
            .as_ref()
            .and_then(|item| item.get(crate::lock::item::LOCK_DATA))
            .map(Value::from_attribute);
        let fencing_token = match acquired.config.mode() {
            Mode::FailOpen { .. } => observed.and_then(|o| o.fencing_token),
            Mode::FailClosed => None,
        };
        let (status, _) = watch::channel(LockStatus::Held);
        let runtime = Runtime::current();
        let acquisition_guid = acquired.guid.clone();
        let inner = Arc::new(Inner {
            site: acquired.site,
            config: acquired.config.clone(),
            fencing_token,
            held: tokio::sync::Mutex::new(Held {
                guid: acquired.guid.clone(),
                pending: None,
                release_guids: Vec::new(),
                release_unknown_until: None,
            }),
            lease_deadline: Mutex::new(acquired.lease_deadline),
            data: Mutex::new(data),
            status,
            released: AtomicBool::new(false),
            keep_alive: Mutex::new(None),
            runtime,
            pid: std::process::id(),
            handed_off: Arc::default(),
            acquisition: (acquisition_guid.clone(), acquired.uncertain_until),
            guid_now: Mutex::new(acquired.guid),
            ends_at: Mutex::new(None),
            group: acquired.group,
        });
        if acquired.lease_deadline.is_some() {
            inner.start_keep_alive(acquired.first_beat);
        }
        if let Some(until) = acquired.uncertain_until {
            // An earlier send of the acquisition may land after we released: it would take the
            // lock again, under this guid, for nobody.
            let handed_off = inner.handed_off.clone();
            tokio::spawn(undo_late_acquisition(Arc::downgrade(&inner), handed_off, inner.site.clone(), acquisition_guid, until));
        }
        tracing::debug!(lock = %inner.site.id, token = ?inner.fencing_token, "acquired");
        Lock { inner }
    }

    /// Which lock this is.
    pub fn id(&self) -> &LockId {
        &self.inner.site.id
    }

    /// Strictly increasing per lock id across all clients; `None` for fail-closed locks.
    pub fn fencing_token(&self) -> Option<i64> {
        self.inner.fencing_token
    }

    /// The lock data: as read at acquisition, then as last written by this holder.
    pub fn data(&self) -> Option<Value> {
        lock(&self.inner.data).clone()
    }

    /// `Held` until the lease deadline passes without a renewal (checked on every call, not only
    /// by the background task), another client takes the lock, or it is released.
    pub fn status(&self) -> LockStatus {
        self.inner.expire_if_due();
        self.inner.status.borrow().clone()
    }

    /// `Ok` while the lock is held; otherwise the [`Error::LockLost`] that says why not. Call it
    /// before work that must only happen under the lock.
    pub fn check(&self) -> Result<()> {
        let reason = match self.status() {
            LockStatus::Held => return Ok(()),
            LockStatus::Lost(reason) => reason,
            LockStatus::Released => "it was released".to_owned(),
            LockStatus::Detached => DETACHED.to_owned(),
        };
        Err(self.inner.lost_error(reason))
    }

    /// True once [`release`](Lock::release) succeeded (even if the lock had been lost).
    pub fn is_released(&self) -> bool {
        self.inner.released.load(Ordering::Acquire)
    }

    /// True once the lock is lost ([`LockStatus::Lost`]); see [`status`](Lock::status).
    pub fn is_lost(&self) -> bool {
        matches!(self.status(), LockStatus::Lost(_))
    }

    /// A receiver that sees every change of [`status`](Lock::status).
    pub fn watch(&self) -> watch::Receiver<LockStatus> {
        self.inner.expire_if_due();
        self.inner.status.subscribe()
    }

    /// Waits until the lock is lost (`Some(reason)`) or released (`None`).
    pub async fn wait_lost(&self) -> Option<String> {
        let mut watch = self.watch();
        let status = watch.wait_for(|s| *s != LockStatus::Held).await.map(|s| s.clone());
        match status {
            Ok(LockStatus::Lost(reason)) => Some(reason),
            _ => None,
        }
    }

    /// Replaces the lock data while the lock is held.
    pub async fn update_data(&self, data: Value) -> Result<()> {
        let inner = &self.inner;
        inner.site.table.check_data_size(&inner.site.id, &inner.config.owner, &data)?;
        let written = inner.write_while_held(|guid| Request::UpdateItem(inner.site.table.write_data(&inner.site.id, guid, &data))).await;
        inner.site.stats.outcome(&written);
        written?;
        *lock(&inner.data) = Some(data);
        Ok(())
    }

    /// Releases the lock. A fail-open lock keeps its item (lease 1 ms) so fencing tokens keep
    /// rising; a fail-closed lock's item is deleted. Releasing twice is a no-op.
    ///
    /// Fails with [`Error::LockLost`] when another client had taken the lock. Until a release
    /// succeeds the lock keeps its heartbeats, so a release that failed or was cancelled leaves
    /// a lock that is still renewed (or reported lost), never one that silently expires.
    pub async fn release(&self) -> Result<()> {
        self.release_with_data(None).await
    }

    /// Releases the lock, writing `data` into it (fail-open locks only keep their item).
    pub async fn release_with_data(&self, data: Option<Value>) -> Result<()> {
        let inner = &self.inner;
        if let Some(data) = &data {
            inner.site.table.check_data_size(&inner.site.id, &inner.config.owner, data)?;
        }
        inner.check_process()?;
        let mut held = inner.held.lock().await;
        if inner.released.load(Ordering::Acquire) {
            return Ok(());
        }
        if inner.is_handed_off() {
            return Err(inner.lost_error(DETACHED.into()));
        }
        let result = match inner.config.mode() {
            Mode::FailOpen { .. } => inner.release_fail_open(&mut held, data.as_ref()).await,
            Mode::FailClosed => inner.release_fail_closed(&mut held).await,
        };
        match &result {
            Ok(()) => {
                inner.stop_keep_alive();
                inner.released.store(true, Ordering::Release);
                // A loss stays reported: the holder's work may have run unprotected.
                inner.status.send_if_modified(|status| {
                    let held = *status == LockStatus::Held;
                    if held {
                        *status = LockStatus::Released;
                    }
                    held
                });
                if let Some(data) = data {
                    *lock(&inner.data) = Some(data);
                }
                inner.site.stats.released();
                poll::released(inner.site.transport.as_ref(), &inner.site.table.table, &inner.site.id);
                if let Some(group) = &inner.group {
                    poll::released(inner.site.transport.as_ref(), &inner.site.table.table, group);
                }
                tracing::debug!(lock = %inner.site.id, "released");
            }
            Err(Error::LockLost { reason, .. }) => {
                inner.stop_keep_alive();
                inner.mark_lost(reason.clone(), LossReason::TakenOver);
            }
            Err(_) => {}
        }
        inner.site.stats.outcome(&result);
        result
    }
}

impl Lock {
    /// The handle another process passes to `LockClient::resume` to take this lock up: its
    /// table, id, current guid, fencing token, lease and mode. It changes with every heartbeat
    /// (each one writes a new guid); [`detach`](Lock::detach) fixes it.
    pub fn handle(&self) -> Handle {
        let inner = &self.inner;
        Handle {
            table: inner.site.table.table.clone(),
            id: inner.site.id.clone(),
            guid: lock(&inner.guid_now).clone(),
            fencing_token: inner.fencing_token,
            lease_duration: inner.config.lease(),
        }
    }

    /// Stops this process's heartbeats and hands the lock on, still held: another process
    /// takes it up with `LockClient::resume(handle)`, and must renew it before the lease runs
    /// out. This object no longer acts for the lock (its status is [`LockStatus::Detached`], and
    /// dropping it releases nothing).
    ///
    /// A write of this lock whose outcome is unknown (a heartbeat, a release, the acquisition)
    /// could land after the hand-off and change what the handle names, so detach settles it
    /// first: a fail-open lock renews once (a new guid that no late write conditions on); a
    /// fail-closed lock waits until such a write can no longer land, then checks its item.
    pub async fn detach(&self) -> Result<Handle> {
        let inner = &self.inner;
        let mut held = inner.lock_held().await?;
        let (acquisition_guid, acquisition_until) = &inner.acquisition;
        let acquisition_unsettled = acquisition_until.filter(|until| Instant::now() < *until && held.guid == *acquisition_guid);
        match inner.config.mode() {
            Mode::FailOpen { lease_duration, .. } => {
                if held.pending.is_some() || !held.release_guids.is_empty() || acquisition_unsettled.is_some() {
                    inner.beat(&mut held, lease_duration).await?;
                }
            }
            Mode::FailClosed => {
                let unsettled = acquisition_unsettled.into_iter().chain(held.release_unknown_until).max();
                if let Some(until) = unsettled {
                    tokio::time::sleep_until(until).await;
                    let item = inner.site.transport.get_item(inner.site.table.read(&inner.site.id)).await?;
                    let current = item.as_ref().map(Observed::from_item);
                    if !current.as_ref().is_some_and(|o| o.has_guid(&held.guid)) {
                        let reason = loss_reason(current);
                        inner.mark_lost(reason.clone(), LossReason::TakenOver);
                        return Err(inner.lost_error(reason));
                    }
                    held.release_unknown_until = None;
                }
            }
        }
        inner.stop_keep_alive();
        *lock(&inner.handed_off) = Some(held.guid.clone());
        inner.status.send_if_modified(|status| {
            let held = *status == LockStatus::Held;
            if held {
                *status = LockStatus::Detached;
            }
            held
        });
        tracing::debug!(lock = %inner.site.id, "detached");
        Ok(self.handle())
    }

    /// For a lock taken up with no lease left by the clocks (started without a lease deadline):
    /// renews it before anyone uses it, then keeps it like any lock. If the renewal fails, the
    /// lock is left as it was found, for whoever holds the handle: nothing is released.
    pub(super) async fn renew_before_use(&self) -> Result<()> {
        let inner = &self.inner;
        let Mode::FailOpen { lease_duration, heartbeat_period, .. } = inner.config.mode() else { return Ok(()) };
        let mut held = inner.held.lock().await;
        if let Err(error) = inner.beat(&mut held, lease_duration).await {
            *lock(&inner.handed_off) = Some(held.guid.clone());
            inner.status.send_replace(LockStatus::Detached);
            return Err(error);
        }
        drop(held);
        inner.start_keep_alive(heartbeat_period.map(|period| Instant::now() + period));
        Ok(())
    }

    /// One heartbeat, now: a new guid and a fresh lease (so [`handle`](Lock::handle) changes).
    /// For locks taken up with `resume` in a process without background heartbeats, and for
    /// anyone who renews by hand. Fails with [`Error::LockLost`] if the lock is no longer held.
    pub async fn renew(&self) -> Result<()> {
        let inner = &self.inner;
        let Mode::FailOpen { lease_duration, .. } = inner.config.mode() else {
            return Err(Error::config("a fail-closed lock has no lease to renew: it is held until released"));
        };
        let mut held = inner.lock_held().await?;
        inner.beat(&mut held, lease_duration).await
    }

    /// Ends the lock at `deadline`: from then on it is lost (the lost signal fires, fenced
    /// writes and data updates are refused), and it is released in the background. The lock
    /// keeps its heartbeats until then. Calling it again keeps the earlier deadline.
    ///
    /// For work bounded from outside, like a Lambda invocation: the next invocation finds the
    /// lock free instead of waiting out a lease, and code that overruns learns it no longer
    /// holds the lock.
    pub fn end_at(&self, deadline: Instant) {
        let inner = &self.inner;
        {
            let mut ends_at = lock(&inner.ends_at);
            if ends_at.is_some_and(|earlier| earlier <= deadline) {
                return;
            }
            *ends_at = Some(deadline);
        }
        let weak = Arc::downgrade(inner);
        inner.runtime.spawn(async move {
            tokio::time::sleep_until(deadline).await;
            let Some(inner) = weak.upgrade() else { return };
            inner.expire_if_due();
            if inner.released.load(Ordering::Acquire) || inner.is_handed_off() {
                return;
            }
            if let Err(error) = (Lock { inner }).release().await {
                tracing::warn!(%error, "could not release a lock at its deadline; a fail-open lock frees itself after its lease");
            }
        });
    }
}

/// Why a detached lock refuses to act.
const DETACHED: &str = "it was detached and handed to another process: take it up with resume(handle)";

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    pub(super) async fn lock_held(&self) -> Result<MutexGuard<'_, Held>> {
        self.check_process()?;
        let held = self.held.lock().await;
        if self.released.load(Ordering::Acquire) {
            return Err(self.lost_error("it was already released".into()));
        }
        self.expire_if_due();
        match &*self.status.borrow() {
            LockStatus::Held => Ok(held),
            LockStatus::Lost(reason) => Err(self.lost_error(reason.clone())),
            LockStatus::Released => Err(self.lost_error("it was already released".into())),
            LockStatus::Detached => Err(self.lost_error(DETACHED.into())),
        }
    }

    fn is_handed_off(&self) -> bool {
        lock(&self.handed_off).is_some()
    }

    /// A forked child must not release, renew or fence with its parent's guid.
    fn check_process(&self) -> Result<()> {
        if std::process::id() != self.pid {
            return Err(self.lost_error(format!(
                "it is held by process {}; a forked child does not inherit its parent's locks: acquire it in the child",
                self.pid
            )));
        }
        Ok(())
    }

    fn lost_error(&self, reason: String) -> Error {
        Error::LockLost { id: self.site.id.clone(), reason }
    }

    fn lease(&self) -> Duration {
        self.config.lease().unwrap_or_default()
    }

    fn lease_deadline(&self) -> Option<Instant> {
        *lock(&self.lease_deadline)
    }

    fn renewed(&self, lease_start: Instant) {
        *lock(&self.lease_deadline) = Some(lease_start + self.lease());
    }

    fn expire_if_due(&self) {
        let now = Instant::now();
        if lock(&self.ends_at).is_some_and(|end| now >= end) {
            self.mark_lost("it reached the deadline it was given, and was let go (released)".into(), LossReason::Deadline);
        }
        if self.lease_deadline().is_some_and(|deadline| now >= deadline) {
            self.mark_lost(format!("no heartbeat succeeded within the {} lease", duration_text(self.lease())), LossReason::LeaseExpired);
        }
        if std::process::id() != self.pid {
            self.mark_lost(format!("it is held by process {}, not by this forked child", self.pid), LossReason::TakenOver);
        }
    }

    fn mark_lost(&self, reason: String, why: LossReason) {
        let changed = self.status.send_if_modified(|status| {
            if *status == LockStatus::Held {
                // Counted before the watchers hear of it, so a lost signal's handler sees it.
                self.site.stats.lost(why);
                *status = LockStatus::Lost(reason.clone());
                true
            } else {
                false
            }
        });
        if changed {
            tracing::warn!(lock = %self.site.id, %reason, "lock lost");
        }
    }

    /// Starts the task that renews the lease (if there are heartbeats) and reports it lost at
    /// its deadline.
    fn start_keep_alive(self: &Arc<Self>, first_beat: Option<Instant>) {
        if let Mode::FailOpen { lease_duration, heartbeat_period, .. } = self.config.mode() {
            let task = tokio::spawn(keep_alive(Arc::downgrade(self), first_beat, heartbeat_period, lease_duration));
            *lock(&self.keep_alive) = Some(task);
        }
    }

    fn stop_keep_alive(&self) {
        if let Some(task) = lock(&self.keep_alive).take() {
            task.abort();
        }
    }

    /// The pending heartbeat's guid for the next heartbeat, recorded before it is sent: if the
    /// send is cut off or its answer lost, the item may carry it from then on.
    fn next_guid(held: &mut Held) -> Pending {
        held.pending.get_or_insert_with(|| Pending { guid: new_guid(), first_sent: Instant::now() }).clone()
    }

    /// The item carries the pending heartbeat's guid: that heartbeat landed, and its lease runs
    /// from its first send.
    fn adopt(&self, held: &mut Held) {
        if let Some(pending) = held.pending.take() {
            held.guid = pending.guid;
            lock(&self.guid_now).clone_from(&held.guid);
            if self.config.lease().is_some() {
                self.renewed(pending.first_sent);
            }
        }
    }

    /// After a failed condition on our guid: if the item carries the guid of a heartbeat whose
    /// outcome was unknown, that heartbeat landed and its guid is ours now. Anything else means
    /// another client has the lock.
    pub(super) fn adopt_or_lose(&self, held: &mut Held, current: Option<Observed>) -> Result<()> {
        if held.pending.as_ref().is_some_and(|pending| current.as_ref().is_some_and(|o| o.has_guid(&pending.guid))) {
            self.adopt(held);
            return Ok(());
        }
        if held.release_guids.iter().any(|guid| current.as_ref().is_some_and(|o| o.has_guid(guid))) {
            // A release of ours whose outcome we were not told landed after all.
            self.released.store(true, Ordering::Release);
            self.status.send_if_modified(|status| {
                let held = *status == LockStatus::Held;
                if held {
                    *status = LockStatus::Released;
                }
                held
            });
            return Err(self.lost_error("it was released by an earlier release() of this lock".into()));
        }
        let reason = loss_reason(current);
        self.mark_lost(reason.clone(), LossReason::TakenOver);
        Err(self.lost_error(reason))
    }

    /// The item a failed condition returned, or (from an endpoint that ignores
    /// ReturnValuesOnConditionCheckFailure) the one a consistent read finds.
    async fn current_item(&self, returned: Option<Box<Item>>) -> Result<Option<Item>> {
        match returned {
            Some(item) => Ok(Some(*item)),
            None => self.site.transport.get_item(self.site.table.read(&self.site.id)).await,
        }
    }

    /// Sends a write conditioned on our guid, resending on unknown outcomes (the write is
    /// idempotent while we hold the lock).
    ///
    /// Like a fenced write, it takes the lock's mutex only to read the guid, so its resends never
    /// hold up the heartbeats; a heartbeat that moves the guid meanwhile makes it send again.
    async fn write_while_held(&self, request: impl Fn(&[u8]) -> Request) -> Result<()> {
        let mut sends = Sends::new("UpdateItem");
        // Lost or taken over: had an unanswered send of ours landed first (while we held the
        // lock), this is what we would see too.
        let lost_or_unknown = |sends: &Sends, lost: Error| {
            if sends.uncertain() && matches!(lost, Error::LockLost { .. }) {
                sends.unknown(&format!("may have landed before {lost}"))
            } else {
                lost
            }
        };
        loop {
            let guid = self.lock_held().await.map_err(|lost| lost_or_unknown(&sends, lost))?.guid.clone();
            match self.site.transport.execute(request(&guid)).await {
                Ok(_) => return Ok(()),
                Err(Error::ConditionalCheckFailed { item }) => {
                    let mut held = self.lock_held().await.map_err(|lost| lost_or_unknown(&sends, lost))?;
                    if held.guid != guid {
                        continue; // a heartbeat moved the guid while we wrote
                    }
                    let current = self.current_item(item).await.map_err(|e| sends.unresolved(e))?;
                    self.adopt_or_lose(&mut held, current.as_ref().map(Observed::from_item))
                        .map_err(|lost| lost_or_unknown(&sends, lost))?;
                }
                Err(e) => sends.failed(e)?,
            }
        }
    }

    /// One heartbeat: a new guid and a fresh lease, timed from the first send of that guid.
    async fn heartbeat(&self, lease: Duration) -> Result<()> {
        let mut held = self.lock_held().await?;
        self.beat(&mut held, lease).await
    }

    /// A heartbeat under the lock's mutex.
    async fn beat(&self, held: &mut Held, lease: Duration) -> Result<()> {
        // Reuse the guid of a heartbeat whose outcome is unknown: if it landed, this resend
        // fails its condition against that very guid, which proves it.
        let next = Self::next_guid(held);
        let request =
            self.site.table.heartbeat(&self.site.id, &held.guid, &next.guid, lease.as_millis() as i64, self.site.clock.now_unix_ms() as i64);
        let result = match self.site.transport.update_item(request).await {
            Ok(_) => {
                self.adopt(held);
                Ok(())
            }
            Err(Error::ConditionalCheckFailed { item }) => match self.current_item(item).await {
                Ok(current) => self.adopt_or_lose(held, current.as_ref().map(Observed::from_item)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.site.stats.heartbeat(result.is_ok());
        result
    }

    async fn release_fail_open(&self, held: &mut Held, data: Option<&Value>) -> Result<()> {
        let next = new_guid();
        // Recorded before sending: if this call is cancelled mid-flight, the item may carry it.
        held.release_guids.push(next.clone());
        let mut sends = Sends::new("UpdateItem");
        let result = self.send_release(held, data, &next, &mut sends).await;
        if result.is_err() && !sends.uncertain() {
            // Every send was answered, and none landed: this guid will never be there.
            held.release_guids.retain(|guid| guid != &next);
        }
        result
    }

    async fn send_release(&self, held: &mut Held, data: Option<&Value>, next: &[u8], sends: &mut Sends) -> Result<()> {
        loop {
            let request = self.site.table.release(&self.site.id, &held.guid, next, self.site.clock.now_unix_ms() as i64, data);
            match self.site.transport.update_item(request).await {
                Ok(_) => return Ok(()),
                Err(Error::ConditionalCheckFailed { item }) => {
                    let found = self.current_item(item).await.map_err(|e| sends.unresolved(e))?;
                    let current = found.as_ref().map(Observed::from_item);
                    if held.release_guids.iter().any(|guid| current.as_ref().is_some_and(|o| o.has_guid(guid))) {
                        return Ok(()); // an earlier send of this release, or of an earlier call, landed
                    }
                    if held.pending.as_ref().is_some_and(|p| current.as_ref().is_some_and(|o| o.has_guid(&p.guid))) {
                        self.adopt(held); // our heartbeat landed unseen: release under its guid
                        continue;
                    }
                    // A resend found the next holder's lock. While our lease lasts nobody can take
                    // it over, so the next token there proves an earlier send released it.
                    let within_lease = self.lease_deadline().is_some_and(|deadline| Instant::now() < deadline);
                    let next_holder = self.fencing_token.is_some() && freed_by_our_release(found.as_ref(), &held.guid, self.fencing_token);
                    // An earlier release() call of this lock, whose outcome we were not told, may
                    // have landed as well as an earlier send of this one (release_guids keeps
                    // only the guids of calls that may have landed).
                    let earlier_release = sends.resent() || held.release_guids.len() > 1;
                    if earlier_release && within_lease && next_holder {
                        return Ok(());
                    }
                    if let Err(lost) = self.adopt_or_lose(held, current) {
                        // Another client holds it now. Had a release of ours landed first, this
                        // is what we would see too, once our lease had run out: say we cannot
                        // tell.
                        let maybe_ours = sends.uncertain() || held.release_guids.len() > 1;
                        return Err(if maybe_ours { sends.unknown(&format!("may have released the lock before {lost}")) } else { lost });
                    }
                }
                Err(e) => sends.failed(e)?,
            }
        }
    }

    async fn release_fail_closed(&self, held: &mut Held) -> Result<()> {
        let mut sends = Sends::new("DeleteItem");
        let result = self.send_release_fail_closed(held, &mut sends).await;
        if result.is_err() && sends.uncertain() {
            held.release_unknown_until = Some(Instant::now() + self.site.transport.late_landing_window());
        }
        result
    }

    async fn send_release_fail_closed(&self, held: &mut Held, sends: &mut Sends) -> Result<()> {
        loop {
            match self.site.transport.delete_item(self.site.table.release_fail_closed(&self.site.id, &held.guid)).await {
                Ok(_) => return Ok(()),
                Err(Error::ConditionalCheckFailed { item }) => {
                    let found = self.current_item(item).await.map_err(|e| sends.unresolved(e))?;
                    // Gone: an earlier send of this delete landed (or someone deleted it by hand;
                    // either way nobody else holds it under our guid). Another fail-closed holder
                    // found by a resend: nobody takes a fail-closed lock over, so an earlier send
                    // deleted it and the next holder acquired it since.
                    if (found.is_none() || sends.resent()) && freed_by_our_release(found.as_ref(), &held.guid, None) {
                        return Ok(());
                    }
                    self.adopt_or_lose(held, found.as_ref().map(Observed::from_item))?;
                }
                Err(e) => sends.failed(e)?,
            }
        }
    }
}

/// Why a lock whose condition failed is no longer ours, from the item that is there now.
pub(super) fn loss_reason(current: Option<Observed>) -> String {
    match current {
        None => "its item was deleted".to_owned(),
        Some(o) if o.is_released() => "it was released by another client".to_owned(),
        Some(o) => format!("it was taken over ({})", o.describe_holder()),
    }
}

impl Drop for Inner {
    /// The last handle is gone without a release: stop heartbeating, and release in the
    /// background (conditioned on our guids, so it never frees another holder's lock) rather
    /// than leave the lock to its lease, or a fail-closed lock held for ever.
    fn drop(&mut self) {
        self.stop_keep_alive();
        if self.released.load(Ordering::Acquire) || self.is_handed_off() || std::process::id() != self.pid {
            return;
        }
        let held = self.held.get_mut();
        let guids = std::iter::once(held.guid.clone()).chain(held.pending.take().map(|p| p.guid));
        for guid in guids {
            self.site.take_back(&self.runtime, guid, vec![Instant::now()]);
        }
    }
}

/// Takes back a late landing of the acquisition's own write: once `until` has passed, if this
/// lock no longer holds under the acquisition's guid (released, renewed, dropped), an item that
/// carries it can only come from such a landing.
///
/// A lock handed off under the acquisition's guid is another process's now; `detach` waits out
/// the window (fail-closed) or renews first (fail-open) so that this never costs a late landing.
async fn undo_late_acquisition(weak: Weak<Inner>, handed_off: Arc<Mutex<Option<Vec<u8>>>>, site: LockSite, guid: Vec<u8>, until: Instant) {
    tokio::time::sleep_until(until).await;
    if lock(&handed_off).as_deref() == Some(guid.as_slice()) {
        return;
    }
    if let Some(inner) = weak.upgrade() {
        // Still the lock's own guid (no heartbeat since): the item is the lock's, lost or not,
        // and its release (or its drop) frees it.
        let held = inner.held.lock().await;
        if !inner.released.load(Ordering::Acquire) && held.guid == guid {
            return;
        }
    }
    site.take_back(&Runtime::current(), guid, vec![Instant::now()]);
}

/// Renews the lease every `period` and declares the lock lost when a heartbeat's condition
/// fails or when the lease deadline passes without a renewal. Holds only a weak reference, so a
/// dropped lock stops its heartbeats.
async fn keep_alive(lock: Weak<Inner>, mut next_beat: Option<Instant>, period: Option<Duration>, lease: Duration) {
    loop {
        let Some(deadline) = lock.upgrade().and_then(|inner| inner.lease_deadline()) else { return };
        let beat = async {
            match next_beat {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(deadline) => {
                // Another write (a data update that adopted a heartbeat) may have moved it.
                let Some(inner) = lock.upgrade() else { return };
                inner.expire_if_due();
                if inner.status.borrow().clone() != LockStatus::Held {
                    return;
                }
                continue;
            }
            _ = beat => {}
        }
        let Some(inner) = lock.upgrade() else { return };
        // After a pause (SIGSTOP, a frozen Lambda) both timers are due: the deadline wins.
        inner.expire_if_due();
        if *inner.status.borrow() != LockStatus::Held {
            return;
        }
        let period = period.unwrap_or(lease);
        match tokio::time::timeout_at(deadline, inner.heartbeat(lease)).await {
            Ok(Ok(())) => next_beat = Some(Instant::now() + period),
            Ok(Err(Error::LockLost { reason, .. })) => {
                inner.mark_lost(reason, LossReason::TakenOver);
                return;
            }
            Ok(Err(error)) => {
                // Transient: try again soon, while the lease lasts.
                tracing::warn!(lock = %inner.site.id, %error, "heartbeat failed; retrying");
                next_beat = Some(Instant::now() + (period / 4).max(Duration::from_millis(10)));
            }
            // The deadline passed mid-heartbeat; the loop's check reports the loss (unless a
            // concurrent adoption renewed the lease).
            Err(_) => next_beat = Some(Instant::now()),
        }
    }
}
