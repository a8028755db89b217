//! Leader election: one lock per election, whose fencing token is the term.
//!
//! A candidate campaigns by acquiring the election's lock, writing its data (an address to
//! route to) into the item in the same write; resigning is releasing. Observers read the item:
//! [`Election::leader`] once, [`LeaderWatch`] on an interval whose reads are shared by every
//! watcher of the election in the process. A leader whose lease runs out learns it from its
//! lock's lost signal before any candidate can take over (a candidate waits the whole lease from
//! after its own read; the leader counts it from before its last renewal).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::lock::client::{AcquireWith, LockClient};
use crate::lock::held::Lock;
use crate::lock::item::{LockId, NewData, Observed, LOCK_DATA};
use crate::value::{Item, Value};

/// An election on one lock id of a [`LockClient`]'s table.
#[derive(Clone, Debug)]
pub struct Election {
    client: LockClient,
    id: LockId,
}

/// Who leads, as the election's item shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Leader {
    /// The leader's `owner` (its client's owner setting).
    pub owner: String,
    /// The lock's fencing token: strictly increasing from term to term.
    pub term: i64,
    /// What the leader wrote when it campaigned.
    pub data: Option<Value>,
}

impl LockClient {
    /// The election named `name` (a lock id of this client's table). Elections need fail-open
    /// locks: a leader that dies must free the way for the next one after its lease.
    pub fn election(&self, name: impl Into<LockId>) -> Result<Election> {
        Ok(Election { client: self.clone(), id: self.config().election_id(name)? })
    }
}

impl Election {
    /// The lock id every term of this election is held under.
    pub fn id(&self) -> &LockId {
        &self.id
    }

    /// Waits up to `timeout` (`None`: as long as it takes) until this process leads, and
    /// returns the term's lock: its fencing token is the term, and releasing it resigns.
    /// `data` replaces the previous leader's in the same write (none: the term has no data).
    pub async fn campaign(&self, data: Option<Value>, timeout: Option<Duration>) -> Result<Lock> {
        if let Some(data) = &data {
            self.client.table().check_data_size(&self.id, &self.client.config().owner, data)?;
        }
        let with = AcquireWith { data: NewData::Replace(data), group: None };
        self.client.acquire_checked(self.id.clone(), timeout, &with).await
    }

    /// The current leader with one consistent read, or `None` when nobody leads.
    ///
    /// A leader whose process died is still shown until a candidate takes its term over (after
    /// its lease); it never shows a term that has ended by a release.
    pub async fn leader(&self) -> Result<Option<Leader>> {
        Ok(leader_of(self.client.read(&self.id).await?.as_ref()))
    }

    /// Each change of leader, starting with the current one (see [`LeaderWatch::next`]). The
    /// watchers of this election in this process share their reads: the table sees at most one
    /// read per `interval` however many watch (`None`: the client's max poll interval).
    pub fn watch(&self, interval: Option<Duration>) -> Result<LeaderWatch> {
        if interval.is_some_and(|i| i.is_zero()) {
            return Err(Error::option("interval", "must be more than 0: it is the pause between reads"));
        }
        let interval = interval.unwrap_or(self.client.config().max_poll_interval);
        Ok(LeaderWatch { hub: hub(&self.client, &self.id), election: self.clone(), interval, seen: 0, last: None })
    }
}

fn leader_of(item: Option<&Item>) -> Option<Leader> {
    let item = item?;
    let seen = Observed::from_item(item);
    // A released term, or an item that is no lease (a fail-closed lock on the same id).
    if seen.is_released() || seen.lease_duration_ms.is_none() {
        return None;
    }
    Some(Leader {
        owner: seen.owner.unwrap_or_default(),
        term: seen.fencing_token?,
        data: item.get(LOCK_DATA).map(Value::from_attribute),
    })
}

/// Follows an election's leader. Dropping it stops the reads.
#[derive(Debug)]
pub struct LeaderWatch {
    hub: Arc<Hub>,
    election: Election,
    interval: Duration,
    /// The number of the last reading this watcher used.
    seen: u64,
    last: Option<Option<Leader>>,
}

impl LeaderWatch {
    /// The leader the first time; after that, waits until the leader (its term, owner or data)
    /// differs from the last one returned. `None`: nobody leads. A term that starts and ends
    /// within one interval may be missed; none is reported out of order.
    pub async fn next(&mut self) -> Result<Option<Leader>> {
        loop {
            let reading = self.reading().await?;
            if self.last.as_ref() != Some(&reading) {
                self.last = Some(reading.clone());
                return Ok(reading);
            }
        }
    }

    /// A reading newer than the last one this watcher used: another watcher's, or its own once
    /// the shared schedule says a read is due.
    async fn reading(&mut self) -> Result<Option<Leader>> {
        loop {
            // Held across the read, so the other watchers wait for its answer instead of asking.
            let mut shared = self.hub.reading.lock().await;
            if shared.number > self.seen {
                self.seen = shared.number;
                return Ok(shared.leader.clone());
            }
            if Instant::now() >= shared.next_at {
                let leader = leader_of(self.election.client.read(&self.election.id).await?.as_ref());
                shared.number += 1;
                shared.leader = leader.clone();
                shared.next_at = Instant::now() + self.interval;
                self.seen = shared.number;
                return Ok(leader);
            }
            let wake = shared.next_at;
            drop(shared);
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// The readings of one election in this process.
#[derive(Debug)]
struct Hub {
    reading: tokio::sync::Mutex<Reading>,
}

#[derive(Debug)]
struct Reading {
    /// Counts the reads; 0: none yet.
    number: u64,
    leader: Option<Leader>,
    next_at: Instant,
}

type Key = (usize, String, LockId);

fn hub(client: &LockClient, id: &LockId) -> Arc<Hub> {
    static HUBS: OnceLock<Mutex<HashMap<Key, Weak<Hub>>>> = OnceLock::new();
    let mut hubs = HUBS.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    let key = (client.transport().scope(), client.config().table.clone(), id.clone());
    if let Some(hub) = hubs.get(&key).and_then(Weak::upgrade) {
        return hub;
    }
    hubs.retain(|_, hub| hub.strong_count() > 0);
    let hub = Arc::new(Hub { reading: tokio::sync::Mutex::new(Reading { number: 0, leader: None, next_at: Instant::now() }) });
    hubs.insert(key, Arc::downgrade(&hub));
    hub
}
