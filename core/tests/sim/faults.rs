//! The network between the simulated clients and the one shared table.
//!
//! Every client talks through its own [`Link`]; all links reach one [`Net`], which owns the
//! memory transport. A request is applied by a detached task, never by the caller's future, so a
//! caller that gives up (its per-call deadline passed) or is dropped (a cancelled acquire) does
//! not take back a request already on the wire, exactly as on a real network. Each application
//! is reported to the checker together with the item before and after it, which is how the
//! checker knows what landed regardless of what the client was told.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use dynalease::protocol::request::{GetItem, Request, Response, TransactItem};
use dynalease::transport::memory::MemoryTransport;
use dynalease::transport::{Transport, TransportExt};
use dynalease::{Error, Item, Result};
use rand::Rng;
use tokio::time::Instant;

use super::checker::{Applied, Shared};
use super::SimRng;

/// What the network does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Applied after a short delay; the answer arrives before the deadline.
    Normal,
    /// Applied after the caller's deadline, when the caller has already seen an unknown outcome
    /// (and may have resent, released, or gone away).
    Late,
    /// Applied, but the answer never comes: unknown outcome at the deadline.
    LoseAnswer,
    /// Applied; the answer is slow and may miss the deadline.
    DelayAnswer,
    /// The connection resets after the request went out: unknown outcome, applied or not.
    Reset { applied: bool },
    /// Refused before applying (DynamoDB's throttling, after the SDK's own retries).
    Throttle,
    /// Never left the client: a network error, certainly not applied.
    Drop,
}

/// A client cut off from the table for a while.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    pub until: Option<Instant>,
    /// Requests hang until the deadline (unknown outcome) instead of failing at once.
    pub hang: bool,
}

/// The shared network: the table, the fault dice and the checker's ears.
pub struct Net {
    memory: MemoryTransport,
    rng: SimRng,
    checker: Shared,
    /// The per-call deadline every link enforces.
    pub deadline: Duration,
    /// Percentage of the faults that land late (the rest split evenly among the others).
    late_share: u32,
    faults_on: AtomicBool,
}

impl Net {
    pub fn new(memory: MemoryTransport, rng: SimRng, checker: Shared, deadline: Duration, late_share: u32) -> Arc<Net> {
        Arc::new(Net { memory, rng, checker, deadline, late_share, faults_on: AtomicBool::new(true) })
    }

    /// From now on every request is delivered normally (late requests already on their way
    /// still land late).
    pub fn heal(&self) {
        self.faults_on.store(false, Ordering::SeqCst);
    }

    pub fn faults_on(&self) -> bool {
        self.faults_on.load(Ordering::SeqCst)
    }

    pub fn memory(&self) -> &MemoryTransport {
        &self.memory
    }

    fn fate(&self, fault_rate: f64) -> Fate {
        let mut rng = self.rng.lock().unwrap();
        if !self.faults_on() || !rng.random_bool(fault_rate) {
            return Fate::Normal;
        }
        let roll = rng.random_range(0..100);
        if roll < self.late_share {
            return Fate::Late;
        }
        match (roll - self.late_share) * 5 / (100 - self.late_share) {
            0 => Fate::LoseAnswer,
            1 => Fate::DelayAnswer,
            2 => Fate::Reset { applied: rng.random_bool(0.5) },
            3 => Fate::Throttle,
            _ => Fate::Drop,
        }
    }

    fn pause(&self, range: std::ops::Range<u64>) -> Duration {
        let micros = self.rng.lock().unwrap().random_range(range);
        Duration::from_micros(micros)
    }

    /// Applies `request` now, telling the checker the item before and after. The memory
    /// transport answers without ever yielding, so nothing else runs between the three calls.
    async fn apply(&self, request: Request, client: usize, op: u64, fate: Fate) -> Result<Response> {
        let key = written_key(&request);
        let before = match &key {
            Some((table, key)) => self.read(table, key).await,
            None => None,
        };
        let late = if fate == Fate::Late { " (late)" } else { "" };
        let summary = format!("{}{late}", Applied::describe(&request));
        let result = self.memory.execute(request).await;
        if let Some((table, key)) = key {
            let after = self.read(&table, &key).await;
            self.checker.lock().unwrap().applied(Applied { client, op, table, key, before, after, ok: result.is_ok(), summary });
        }
        result
    }

    async fn read(&self, table: &str, key: &Item) -> Option<Item> {
        let get = GetItem { table: table.to_owned(), key: key.clone(), consistent_read: true };
        self.memory.get_item(get).await.expect("the simulation reads only tables it created")
    }
}

/// The table and key a write changes (the non-check action of a transaction).
fn written_key(request: &Request) -> Option<(String, Item)> {
    let key_of = |item: &Item, names: &[&str]| -> Item {
        item.iter().filter(|(name, _)| names.contains(&name.as_str())).map(|(n, v)| (n.clone(), v.clone())).collect()
    };
    match request {
        Request::PutItem(put) => Some((put.table.clone(), key_of(&put.item, &["id", "pk", "sk"]))),
        Request::UpdateItem(update) => Some((update.table.clone(), update.key.clone())),
        Request::DeleteItem(delete) => Some((delete.table.clone(), delete.key.clone())),
        Request::TransactWrite(tx) => tx.items.iter().find_map(|item| match item {
            TransactItem::Put(put) => Some((put.table.clone(), key_of(&put.item, &["id", "pk", "sk"]))),
            TransactItem::Update(update) => Some((update.table.clone(), update.key.clone())),
            TransactItem::Delete(delete) => Some((delete.table.clone(), delete.key.clone())),
            TransactItem::ConditionCheck { .. } => None,
        }),
        _ => None,
    }
}

/// When the caller of a request stopped waiting for it: set when its call returns or is
/// dropped (the guard lives in the call's future).
struct GiveUpGuard(Arc<Mutex<Option<Instant>>>);

impl Drop for GiveUpGuard {
    fn drop(&mut self) {
        self.0.lock().unwrap().get_or_insert(Instant::now());
    }
}

/// One client's connection. Its requests are tagged with the operation the client is running
/// when they are sent (heartbeats run beside it and are told apart by what they change).
#[derive(Debug)]
pub struct Link {
    net: Arc<Net>,
    pub client: usize,
    /// The simulated process the client runs in: clients of one process share its pollers.
    process: usize,
    /// Chance that one of this client's requests suffers a fault: clients have networks of
    /// their own, some clean, some bad.
    fault_rate: f64,
    op: AtomicU64,
    cut: Mutex<Option<Cut>>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net").field("deadline", &self.deadline).finish()
    }
}

impl Link {
    pub fn new(net: Arc<Net>, client: usize, process: usize, fault_rate: f64) -> Arc<Link> {
        Arc::new(Link { net, client, process, fault_rate, op: AtomicU64::new(0), cut: Mutex::new(None) })
    }

    /// Requests sent from now on belong to `op`.
    pub fn set_op(&self, op: u64) {
        self.op.store(op, Ordering::SeqCst);
    }

    pub fn cut_off(&self, cut: Cut) {
        *self.cut.lock().unwrap() = Some(cut);
    }

    /// Whether this client is cut off right now, and how.
    fn cut(&self) -> Option<Cut> {
        let mut cut = self.cut.lock().unwrap();
        match *cut {
            Some(c) if c.until.is_none_or(|until| Instant::now() < until) && self.net.faults_on() => Some(c),
            _ => {
                *cut = None;
                None
            }
        }
    }

    fn ambiguous(operation: &'static str, message: &str) -> Error {
        Error::Ambiguous { operation, message: message.into() }
    }
}

#[async_trait]
impl Transport for Link {
    async fn execute(&self, request: Request) -> Result<Response> {
        let net = &self.net;
        let operation = request.operation();
        let sent = Instant::now();
        let deadline = sent + net.deadline;
        if let Some(cut) = self.cut() {
            if cut.hang {
                tokio::time::sleep_until(deadline).await;
                return Err(Link::ambiguous(operation, "cut off: no answer before the deadline"));
            }
            tokio::time::sleep(net.pause(0..1_000)).await;
            return Err(Error::Network { operation, message: "cut off: connection refused".into() });
        }
        let fate = net.fate(self.fault_rate);
        let quarter = net.deadline.as_micros() as u64 / 4;
        match fate {
            Fate::Throttle => {
                tokio::time::sleep(net.pause(0..quarter)).await;
                return Err(Error::Throttled { operation, attempts: 1, message: "simulated throttling".into() });
            }
            Fate::Drop => {
                tokio::time::sleep(net.pause(0..quarter)).await;
                return Err(Error::Network { operation, message: "simulated drop".into() });
            }
            Fate::Reset { applied: false } => {
                tokio::time::sleep(net.pause(0..quarter)).await;
                return Err(Link::ambiguous(operation, "simulated reset before the request arrived"));
            }
            _ => {}
        }
        // When the table applies it: within the deadline, or after it (within one more
        // deadline: that is what late_landing_window promises).
        let apply_after = match fate {
            Fate::Late => net.deadline + net.pause(1..net.deadline.as_micros() as u64),
            _ => net.pause(0..quarter),
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let (task_net, client, op) = (net.clone(), self.client, self.op.load(Ordering::SeqCst));
        // The transport contract: a request lands at most late_landing_window after its caller
        // gave up, be it at the deadline or earlier, by dropping the call (a cancelled acquire).
        let gave_up = Arc::new(Mutex::new(None));
        let _give_up_on_return = GiveUpGuard(gave_up.clone());
        tokio::spawn(async move {
            let planned = sent + apply_after;
            if fate == Fate::Late {
                tokio::time::sleep_until(sent + task_net.deadline).await;
                let gave_up_at = gave_up.lock().unwrap().unwrap_or(sent + task_net.deadline);
                tokio::time::sleep_until(planned.min(gave_up_at + task_net.deadline)).await;
            } else {
                tokio::time::sleep_until(planned).await;
            }
            let _ = answer.send(task_net.apply(request, client, op, fate).await);
        });
        let back = match fate {
            Fate::DelayAnswer => net.pause(0..2 * net.deadline.as_micros() as u64),
            _ => net.pause(0..quarter),
        };
        let wait = async {
            let result = answered.await.expect("the applying task always answers");
            match fate {
                Fate::LoseAnswer => std::future::pending().await,
                Fate::Reset { .. } => Err(Link::ambiguous(operation, "simulated reset after the request was applied")),
                _ => {
                    tokio::time::sleep(back).await;
                    result
                }
            }
        };
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(result) => result,
            Err(_) => Err(Link::ambiguous(operation, "no answer before the deadline")),
        }
    }

    fn late_landing_window(&self) -> Duration {
        self.net.deadline
    }

    fn scope(&self) -> usize {
        self.process
    }
}
