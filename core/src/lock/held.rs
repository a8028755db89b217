//! A held lock: fencing token, heartbeats, lost-lease detection, lock data and release.
//!
//! Every write on a held lock (heartbeat, data update, fenced KV write, release) takes the same
//! async mutex, so that no write ever conditions on a guid that a concurrent heartbeat has just
//! replaced (dlc reports such a release as a success and leaves a live lease behind).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{watch, MutexGuard};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::expr::Condition;
use crate::lock::config::{LockConfig, Mode};
use crate::lock::item::{new_guid, LockId, LockTable, Observed};
use crate::lock::wake;
use crate::transport::{Transport, TransportExt};
use crate::value::{Item, Value};

/// How many times a write with an unknown outcome is sent again before giving up. Each resend
/// carries the same guid, so a resend that fails its condition against our own guid proves
/// that an earlier attempt landed.
const AMBIGUOUS_RESENDS: u32 = 3;

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
/// Dropping the last clone without [`release`](Lock::release) stops the heartbeats; a fail-open
/// lock then frees itself after its lease.
#[derive(Clone)]
pub struct Lock {
    inner: Arc<Inner>,
}

struct Inner {
    id: LockId,
    table: LockTable,
    config: Arc<LockConfig>,
    transport: Arc<dyn Transport>,
    clock: SharedClock,
    fencing_token: Option<i64>,
    held: tokio::sync::Mutex<Held>,
    data: Mutex<Option<Value>>,
    status: watch::Sender<LockStatus>,
    /// Set by a successful release, whatever the status says (a lost lock can be released).
    released: AtomicBool,
    keep_alive: Mutex<Option<JoinHandle<()>>>,
}

/// The state writes condition on.
struct Held {
    guid: Vec<u8>,
    /// The guid of a heartbeat whose outcome is unknown: the item may carry it instead.
    pending_guid: Option<Vec<u8>>,
    /// When the lease ends unless renewed (fail-open): before then nobody can take it over.
    lease_deadline: Option<Instant>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("id", &self.inner.id)
            .field("fencing_token", &self.inner.fencing_token)
            .field("status", &*self.inner.status.borrow())
            .finish()
    }
}

pub(crate) struct Acquired {
    pub id: LockId,
    pub table: LockTable,
    pub config: Arc<LockConfig>,
    pub transport: Arc<dyn Transport>,
    pub clock: SharedClock,
    pub guid: Vec<u8>,
    pub item: Option<Item>,
    /// When the write that took the lock was first sent: the lease runs from here.
    pub lease_start: Instant,
}

impl Lock {
    pub(crate) fn start(acquired: Acquired) -> Lock {
        let observed = acquired.item.as_ref().map(Observed::from_item);
        let data = acquired
            .item
            .as_ref()
            .and_then(|item| item.get(crate::lock::item::LOCK_DATA))
            .map(Value::from_attribute);
        let fencing_token = match acquired.config.mode {
            Mode::FailOpen { .. } => observed.and_then(|o| o.fencing_token),
            Mode::FailClosed => None,
        };
        let (status, _) = watch::channel(LockStatus::Held);
        let inner = Arc::new(Inner {
            id: acquired.id,
            table: acquired.table,
            config: acquired.config.clone(),
            transport: acquired.transport,
            clock: acquired.clock,
            fencing_token,
            held: tokio::sync::Mutex::new(Held {
                guid: acquired.guid,
                pending_guid: None,
                lease_deadline: acquired.config.lease().map(|lease| acquired.lease_start + lease),
            }),
            data: Mutex::new(data),
            status,
            released: AtomicBool::new(false),
            keep_alive: Mutex::new(None),
        });
        if let Mode::FailOpen { lease_duration, heartbeat_period, .. } = acquired.config.mode {
            let task = tokio::spawn(keep_alive(
                Arc::downgrade(&inner),
                acquired.lease_start + lease_duration,
                heartbeat_period,
                lease_duration,
            ));
            *inner.keep_alive.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        tracing::debug!(lock = %inner.id, token = ?inner.fencing_token, "acquired");
        Lock { inner }
    }

    pub fn id(&self) -> &LockId {
        &self.inner.id
    }

    /// Strictly increasing per lock id across all clients; `None` for fail-closed locks.
    pub fn fencing_token(&self) -> Option<i64> {
        self.inner.fencing_token
    }

    /// The lock data: as read at acquisition, then as last written by this holder.
    pub fn data(&self) -> Option<Value> {
        self.inner.data.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn status(&self) -> LockStatus {
        self.inner.status.borrow().clone()
    }

    /// True once [`release`](Lock::release) succeeded (even if the lock had been lost).
    pub fn is_released(&self) -> bool {
        self.inner.released.load(Ordering::Acquire)
    }

    pub fn is_lost(&self) -> bool {
        matches!(*self.inner.status.borrow(), LockStatus::Lost(_))
    }

    /// A receiver that sees every change of [`status`](Lock::status).
    pub fn watch(&self) -> watch::Receiver<LockStatus> {
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
        self.inner.table.check_data_size(&self.inner.id, self.inner.config.owner_name(), &data)?;
        let mut held = self.inner.lock_held().await?;
        self.inner
            .write_while_held(&mut held, |guid| crate::request::Request::UpdateItem(self.inner.table.write_data(&self.inner.id, guid, &data)))
            .await?;
        *self.inner.data.lock().unwrap_or_else(|e| e.into_inner()) = Some(data);
        Ok(())
    }

    /// Releases the lock. A fail-open lock keeps its item (lease 1 ms) so fencing tokens keep
    /// rising; a fail-closed lock's item is deleted. Releasing twice is a no-op.
    ///
    /// Fails with [`Error::LockLost`] when another client had taken the lock.
    pub async fn release(&self) -> Result<()> {
        self.release_with_data(None).await
    }

    /// Releases the lock, writing `data` into it (fail-open locks only keep their item).
    pub async fn release_with_data(&self, data: Option<Value>) -> Result<()> {
        let inner = &self.inner;
        if let Some(data) = &data {
            inner.table.check_data_size(&inner.id, inner.config.owner_name(), data)?;
        }
        let mut held = inner.held.lock().await;
        inner.stop_keep_alive();
        if inner.released.load(Ordering::Acquire) {
            return Ok(());
        }
        let result = match inner.config.mode {
            Mode::FailOpen { .. } => inner.release_fail_open(&mut held, data.as_ref()).await,
            Mode::FailClosed => inner.release_fail_closed(&mut held).await,
        };
        match &result {
            Ok(()) => {
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
                    *inner.data.lock().unwrap_or_else(|e| e.into_inner()) = Some(data);
                }
                wake::released(&inner.table.table, &inner.id);
                tracing::debug!(lock = %inner.id, "released");
            }
            Err(Error::LockLost { reason, .. }) => inner.mark_lost(reason.clone()),
            Err(_) => {}
        }
        result
    }

    /// Runs a write that must only succeed while this lock is held. `write` builds the request
    /// from the lock item's condition; heartbeats wait until it is done.
    pub(crate) async fn fenced<T, F, Fut>(&self, write: F) -> Result<T>
    where
        F: Fn(FenceCheck) -> Fut,
        Fut: std::future::Future<Output = Result<FencedOutcome<T>>>,
    {
        let inner = &self.inner;
        let mut held = inner.lock_held().await?;
        loop {
            let check = FenceCheck {
                table: inner.table.table.clone(),
                key: inner.table.key(&inner.id),
                condition: inner.table.held_by(&held.guid),
            };
            match write(check).await? {
                FencedOutcome::Done(value) => return Ok(value),
                FencedOutcome::LockCheckFailed => {
                    // A heartbeat with an unknown outcome may have moved the guid: look.
                    let item = inner.transport.get_item(inner.table.read(&inner.id)).await?;
                    inner.adopt_or_lose(&mut held, item.as_ref().map(Observed::from_item))?;
                }
            }
        }
    }
}

/// The condition a fenced write adds to its transaction.
pub(crate) struct FenceCheck {
    pub table: String,
    pub key: Item,
    pub condition: Condition,
}

pub(crate) enum FencedOutcome<T> {
    Done(T),
    /// The transaction failed on the lock item's condition.
    LockCheckFailed,
}

impl Inner {
    async fn lock_held(&self) -> Result<MutexGuard<'_, Held>> {
        let held = self.held.lock().await;
        if self.released.load(Ordering::Acquire) {
            return Err(self.lost_error("it was already released".into()));
        }
        match &*self.status.borrow() {
            LockStatus::Held => Ok(held),
            LockStatus::Lost(reason) => Err(self.lost_error(reason.clone())),
            LockStatus::Released => Err(self.lost_error("it was already released".into())),
        }
    }

    fn lost_error(&self, reason: String) -> Error {
        Error::LockLost { id: self.id.to_string(), reason }
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
            tracing::warn!(lock = %self.id, %reason, "lock lost");
        }
    }

    fn stop_keep_alive(&self) {
        if let Some(task) = self.keep_alive.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }

    /// After a failed condition on our guid: if the item carries the guid of a heartbeat whose
    /// outcome was unknown, that heartbeat landed and its guid is ours now. Anything else means
    /// another client has the lock.
    fn adopt_or_lose(&self, held: &mut Held, current: Option<Observed>) -> Result<()> {
        let current_guid = current.as_ref().and_then(|o| o.guid.clone());
        if current_guid.is_some() && current_guid == held.pending_guid {
            held.guid = held.pending_guid.take().unwrap_or_default();
            return Ok(());
        }
        let reason = loss_reason(current);
        self.mark_lost(reason.clone());
        Err(self.lost_error(reason))
    }

    /// Sends a write conditioned on our guid, resending on unknown outcomes (the write is
    /// idempotent while we hold the lock).
    async fn write_while_held(&self, held: &mut Held, request: impl Fn(&[u8]) -> crate::request::Request) -> Result<()> {
        let mut resends = 0;
        loop {
            match self.transport.execute(request(&held.guid)).await {
                Ok(_) => return Ok(()),
                Err(Error::ConditionalCheckFailed { item }) => {
                    self.adopt_or_lose(held, item.as_deref().map(Observed::from_item))?;
                }
                Err(e) if e.is_ambiguous() && resends < AMBIGUOUS_RESENDS => resends += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// One heartbeat: a new guid and a fresh lease. Returns when the new lease ends.
    async fn heartbeat(&self, lease: Duration) -> Result<Instant> {
        let mut held = self.lock_held().await?;
        // Reuse the guid of a heartbeat whose outcome is unknown: if it landed, this resend
        // fails its condition against that very guid, which proves it.
        let next = held.pending_guid.clone().unwrap_or_else(new_guid);
        let lease_start = Instant::now();
        let request = self.table.heartbeat(&self.id, &held.guid, &next, lease.as_millis() as i64, self.clock.now_unix_ms() as i64);
        match self.transport.update_item(request).await {
            Ok(_) => {
                held.guid = next;
                held.pending_guid = None;
                held.lease_deadline = Some(lease_start + lease);
                Ok(lease_start + lease)
            }
            Err(Error::ConditionalCheckFailed { item }) => {
                let current = item.as_deref().map(Observed::from_item);
                if current.as_ref().and_then(|o| o.guid.as_deref()) == Some(next.as_slice()) {
                    // An earlier send of this heartbeat landed; its lease began before this one.
                    held.guid = next;
                    held.pending_guid = None;
                    held.lease_deadline = Some(lease_start + lease);
                    return Ok(lease_start + lease);
                }
                held.pending_guid = None;
                Err(self.lost_error(loss_reason(current)))
            }
            Err(e) => {
                if e.is_ambiguous() {
                    held.pending_guid = Some(next);
                }
                Err(e)
            }
        }
    }

    async fn release_fail_open(&self, held: &mut Held, data: Option<&Value>) -> Result<()> {
        let next = new_guid();
        let mut resends = 0;
        loop {
            let request = self.table.release(&self.id, &held.guid, &next, self.clock.now_unix_ms() as i64, data);
            match self.transport.update_item(request).await {
                Ok(_) => return Ok(()),
                Err(Error::ConditionalCheckFailed { item }) => {
                    let current = item.as_deref().map(Observed::from_item);
                    if current.as_ref().and_then(|o| o.guid.as_deref()) == Some(next.as_slice()) {
                        return Ok(()); // an earlier send of this release landed
                    }
                    // A resend found someone else's lock. While our lease lasts nobody can take
                    // it over, so the change proves an earlier send released it and the next
                    // holder acquired it since.
                    if resends > 0 && held.lease_deadline.is_some_and(|deadline| Instant::now() < deadline) {
                        return Ok(());
                    }
                    self.adopt_or_lose(held, current)?;
                }
                Err(e) if e.is_ambiguous() && resends < AMBIGUOUS_RESENDS => resends += 1,
                Err(e) => return Err(e),
            }
        }
    }

    async fn release_fail_closed(&self, held: &mut Held) -> Result<()> {
        let mut resends = 0;
        loop {
            match self.transport.delete_item(self.table.release_fail_closed(&self.id, &held.guid)).await {
                Ok(_) => return Ok(()),
                // Gone: an earlier send of this delete landed (or someone deleted it by hand;
                // either way nobody else holds it under our guid).
                Err(Error::ConditionalCheckFailed { item: None }) => return Ok(()),
                // A resend finding another holder: nobody takes a fail-closed lock over, so an
                // earlier send deleted it and the next holder acquired it since.
                Err(Error::ConditionalCheckFailed { item: Some(_) }) if resends > 0 => return Ok(()),
                Err(Error::ConditionalCheckFailed { item: Some(item) }) => {
                    self.adopt_or_lose(held, Some(Observed::from_item(&item)))?;
                }
                Err(e) if e.is_ambiguous() && resends < AMBIGUOUS_RESENDS => resends += 1,
                Err(e) => return Err(e),
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
    fn drop(&mut self) {
        self.stop_keep_alive();
    }
}

/// Renews the lease every `heartbeat_period` and declares the lock lost when a heartbeat's
/// condition fails or when the lease deadline passes without a successful heartbeat. Holds only
/// a weak reference, so a dropped lock stops its heartbeats.
async fn keep_alive(lock: Weak<Inner>, mut lease_deadline: Instant, period: Option<Duration>, lease: Duration) {
    let mut next_beat = period.map(|p| lease_deadline - lease + p);
    loop {
        let beat = async {
            match next_beat {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(lease_deadline) => {
                if let Some(inner) = lock.upgrade() {
                    inner.mark_lost(format!("no heartbeat succeeded within the {lease:?} lease"));
                }
                return;
            }
            _ = beat => {}
        }
        let Some(inner) = lock.upgrade() else { return };
        // After a pause (SIGSTOP, a frozen Lambda) both timers are due: the deadline wins.
        if Instant::now() >= lease_deadline {
            inner.mark_lost(format!("no heartbeat succeeded within the {lease:?} lease"));
            return;
        }
        let period = period.unwrap_or(lease);
        match tokio::time::timeout_at(lease_deadline, inner.heartbeat(lease)).await {
            Ok(Ok(deadline)) => {
                lease_deadline = deadline;
                next_beat = Some(Instant::now() + period);
            }
            Ok(Err(Error::LockLost { reason, .. })) => {
                inner.mark_lost(reason);
                return;
            }
            Ok(Err(error)) => {
                // Transient: try again soon, while the lease lasts.
                tracing::warn!(lock = %inner.id, %error, "heartbeat failed; retrying");
                next_beat = Some(Instant::now() + (period / 4).max(Duration::from_millis(10)));
            }
            Err(_) => {
                inner.mark_lost(format!("no heartbeat succeeded within the {lease:?} lease"));
                return;
            }
        }
    }
}
