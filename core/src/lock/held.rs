//! A held lock: fencing token, heartbeats, lost-lease detection, lock data and release.
//!
//! Heartbeats and releases hold the lock's async mutex across their sends, so that no release
//! ever conditions on a guid that a concurrent heartbeat has just replaced (dlc reports such a
//! release as a success and leaves a live lease behind). Data updates and fenced writes
//! (`lock::fence`) take it only to read the guid, so a slow write never holds up the heartbeats
//! that keep the lease.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{watch, MutexGuard};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::lock::config::{LockConfig, Mode};
use crate::lock::item::{freed_by_our_release, new_guid, LockId, Observed};
use crate::lock::undo::LockSite;
use crate::lock::poll;
use crate::request::Request;
use crate::resend::Sends;
use crate::transport::TransportExt;
use crate::value::{Item, Value};

/// Where a lock stands, as seen by its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockStatus {
    Held,
    /// The lease ran out or another client took the lock; the reason says which. A lost lock
    /// that is released afterwards (possible when nobody took it over) stays `Lost`.
    Lost(String),
    Released,
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
    runtime: Handle,
    /// The process that acquired the lock: a forked child holds a copy of this object, but not
    /// the lock.
    pid: u32,
}

/// The state writes condition on.
pub(super) struct Held {
    pub(super) guid: Vec<u8>,
    /// A heartbeat that was sent and not confirmed: the item may carry its guid instead.
    pending: Option<Pending>,
    /// The guids our fail-open releases wrote or may have written: an item that carries one was
    /// released by us, whatever our earlier release call was told.
    release_guids: Vec<Vec<u8>>,
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
    /// When the write that took the lock was first sent: the lease runs from here.
    pub lease_start: Instant,
    /// Until when an earlier send of the acquisition, whose outcome was unknown, may land.
    pub uncertain_until: Option<Instant>,
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
        let runtime = Handle::current();
        let acquisition_guid = acquired.guid.clone();
        let inner = Arc::new(Inner {
            site: acquired.site,
            config: acquired.config.clone(),
            fencing_token,
            held: tokio::sync::Mutex::new(Held { guid: acquired.guid, pending: None, release_guids: Vec::new() }),
            lease_deadline: Mutex::new(acquired.config.lease().map(|lease| acquired.lease_start + lease)),
            data: Mutex::new(data),
            status,
            released: AtomicBool::new(false),
            keep_alive: Mutex::new(None),
            runtime,
            pid: std::process::id(),
        });
        if let Mode::FailOpen { lease_duration, heartbeat_period, .. } = acquired.config.mode() {
            let first_beat = heartbeat_period.map(|period| acquired.lease_start + period);
            let task = tokio::spawn(keep_alive(Arc::downgrade(&inner), first_beat, heartbeat_period, lease_duration));
            *lock(&inner.keep_alive) = Some(task);
        }
        if let Some(until) = acquired.uncertain_until {
            // An earlier send of the acquisition may land after we released: it would take the
            // lock again, under this guid, for nobody.
            tokio::spawn(undo_late_acquisition(Arc::downgrade(&inner), inner.site.clone(), acquisition_guid, until));
        }
        tracing::debug!(lock = %inner.site.id, token = ?inner.fencing_token, "acquired");
        Lock { inner }
    }

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

    /// True once [`release`](Lock::release) succeeded (even if the lock had been lost).
    pub fn is_released(&self) -> bool {
        self.inner.released.load(Ordering::Acquire)
    }

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
        inner.write_while_held(|guid| Request::UpdateItem(inner.site.table.write_data(&inner.site.id, guid, &data))).await?;
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
                poll::released(inner.site.transport.as_ref(), &inner.site.table.table, &inner.site.id);
                tracing::debug!(lock = %inner.site.id, "released");
            }
            Err(Error::LockLost { reason, .. }) => {
                inner.stop_keep_alive();
                inner.mark_lost(reason.clone());
            }
            Err(_) => {}
        }
        result
    }
}

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
        }
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
        if self.lease_deadline().is_some_and(|deadline| Instant::now() >= deadline) {
            self.mark_lost(format!("no heartbeat succeeded within the {:?} lease", self.lease()));
        }
        if std::process::id() != self.pid {
            self.mark_lost(format!("it is held by process {}, not by this forked child", self.pid));
        }
    }

    fn mark_lost(&self, reason: String) {
        let changed = self.status.send_if_modified(|status| {
            if *status == LockStatus::Held {
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
        self.mark_lost(reason.clone());
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
        // Reuse the guid of a heartbeat whose outcome is unknown: if it landed, this resend
        // fails its condition against that very guid, which proves it.
        let next = Self::next_guid(&mut held);
        let request =
            self.site.table.heartbeat(&self.site.id, &held.guid, &next.guid, lease.as_millis() as i64, self.site.clock.now_unix_ms() as i64);
        match self.site.transport.update_item(request).await {
            Ok(_) => {
                self.adopt(&mut held);
                Ok(())
            }
            Err(Error::ConditionalCheckFailed { item }) => {
                let current = self.current_item(item).await?;
                self.adopt_or_lose(&mut held, current.as_ref().map(Observed::from_item))
            }
            Err(e) => Err(e),
        }
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
fn loss_reason(current: Option<Observed>) -> String {
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
        if self.released.load(Ordering::Acquire) || std::process::id() != self.pid {
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
async fn undo_late_acquisition(lock: Weak<Inner>, site: LockSite, guid: Vec<u8>, until: Instant) {
    tokio::time::sleep_until(until).await;
    if let Some(inner) = lock.upgrade() {
        // Still the lock's own guid (no heartbeat since): the item is the lock's, lost or not,
        // and its release (or its drop) frees it.
        let held = inner.held.lock().await;
        if !inner.released.load(Ordering::Acquire) && held.guid == guid {
            return;
        }
    }
    site.take_back(&Handle::current(), guid, vec![Instant::now()]);
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
                inner.mark_lost(reason);
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
