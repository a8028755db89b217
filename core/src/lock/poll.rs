//! The waiters for one lock id in one process share a poller: one request for the id at a time
//! (a read, or an acquisition write), whose answer every waiter uses, and one read schedule that
//! backs off as the wait grows. However many tasks wait for a lock, the process reads it as
//! often as one waiter would. A release in this process wakes its waiters at once; waiters in
//! other processes find out by polling.
//!
//! Sharing an answer is safe because a waiter only acts on what the table showed *after* it
//! wanted to know: a sighting whose request went out earlier is never used. "After" is counted
//! in events of the poller (requests sent, releases here), not read off a clock, so that two
//! things at the same instant are still in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use rand::Rng;
use tokio::sync::{MutexGuard, Notify};
use tokio::time::Instant;

use crate::lock::config::LockConfig;
use crate::lock::item::{LockId, Observed};
use crate::transport::Transport;

/// A moment in a poller's history: every request sent and every release here is one event.
pub(super) type Event = u64;

/// What one request showed of the lock item (`None`: no item).
#[derive(Clone, Debug)]
pub(super) struct Sighting {
    /// The event of the request's send: the table showed this at some moment after it.
    pub sent: Event,
    /// When the answer came: the table showed this at some moment before it.
    pub answered: Instant,
    pub seen: Option<Observed>,
}

/// The poller of one lock id in this process.
#[derive(Debug)]
pub(super) struct Poll {
    /// Held by the waiter whose request for the id is out; the others wait for its answer.
    turn: tokio::sync::Mutex<()>,
    shared: Mutex<Shared>,
    released: Notify,
}

#[derive(Debug)]
struct Shared {
    events: Event,
    /// The event of the last release here.
    released: Event,
    newest: Option<Sighting>,
    /// When a waiter may read next.
    next_read: Instant,
    /// When this poller started: waits longer than a few seconds read less often.
    since: Instant,
}

/// Held while the holder's request is out. Dropping it (an answer, an error, a cancelled wait)
/// lets the next waiter look.
pub(super) struct Turn<'a> {
    poll: &'a Poll,
    _turn: MutexGuard<'a, ()>,
}

type Key = (usize, String, LockId);
type Registry = Mutex<HashMap<Key, Weak<Poll>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn key(transport: &dyn Transport, table: &str, id: &LockId) -> Key {
    (transport.scope(), table.to_owned(), id.clone())
}

/// The poller of `(table, id)` behind `transport`, shared with this process's other waiters
/// for it. Kept alive by the waiters that hold it.
pub(super) fn join(transport: &dyn Transport, table: &str, id: &LockId) -> Arc<Poll> {
    let mut map = registry().lock().unwrap_or_else(PoisonError::into_inner);
    let key = key(transport, table, id);
    if let Some(existing) = map.get(&key).and_then(Weak::upgrade) {
        return existing;
    }
    // Forget pollers whose waiters are all gone, so the map stays as small as the live waits.
    map.retain(|_, weak| weak.strong_count() > 0);
    let now = Instant::now();
    let poll = Arc::new(Poll {
        turn: tokio::sync::Mutex::new(()),
        shared: Mutex::new(Shared { events: 0, released: 0, newest: None, next_read: now, since: now }),
        released: Notify::new(),
    });
    map.insert(key, Arc::downgrade(&poll));
    poll
}

/// Tells this process's waiters for `(table, id)` that it was just released.
pub(super) fn released(transport: &dyn Transport, table: &str, id: &LockId) {
    let poll = registry().lock().unwrap_or_else(PoisonError::into_inner).get(&key(transport, table, id)).and_then(Weak::upgrade);
    if let Some(poll) = poll {
        let mut shared = poll.shared();
        shared.events += 1;
        shared.released = shared.events;
        drop(shared);
        poll.released.notify_waiters();
    }
}

impl Poll {
    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves at a release in this process (create it before looking, so a release between
    /// the look and the sleep is not missed).
    pub fn released(&self) -> tokio::sync::futures::Notified<'_> {
        self.released.notified()
    }

    /// The latest event: a waiter that wants news from now on uses sightings after it.
    pub fn now(&self) -> Event {
        self.shared().events
    }

    /// The event of the last release in this process.
    pub fn last_release(&self) -> Event {
        self.shared().released
    }

    /// When a waiter may read next.
    pub fn next_read(&self) -> Instant {
        self.shared().next_read
    }

    /// Waits until no other waiter's request for the id is out.
    pub async fn turn(&self) -> Turn<'_> {
        Turn { poll: self, _turn: self.turn.lock().await }
    }
}

impl Turn<'_> {
    /// The newest sighting, if its request went out after event `after`: what a waiter that
    /// wanted news from then on may use instead of asking itself.
    pub fn sighting_after(&self, after: Event) -> Option<Sighting> {
        self.poll.shared().newest.clone().filter(|s| s.sent > after)
    }

    /// Call just before sending a request: its event.
    pub fn sending(&self) -> Event {
        let mut shared = self.poll.shared();
        shared.events += 1;
        shared.events
    }

    /// Records what the request sent at event `sent` showed, and schedules the next read by
    /// `config`'s poll pauses (see [`LockConfig::poll_pause`]).
    pub fn publish(&self, sent: Event, seen: Option<Observed>, config: &LockConfig) -> Sighting {
        let answered = Instant::now();
        let sighting = Sighting { sent, answered, seen };
        let mut shared = self.poll.shared();
        let waited = answered.saturating_duration_since(shared.since);
        let shorten_by = crate::random::with_rng(|rng| rng.random_range(0.0..=0.25));
        shared.next_read = answered + config.poll_pause(waited, shorten_by);
        shared.newest = Some(sighting.clone());
        sighting
    }
}
