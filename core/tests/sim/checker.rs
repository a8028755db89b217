//! The invariants, and the history they are checked against.
//!
//! Two streams reach the checker: what the table did (every application of a request, with the
//! item before and after, from the fault layer) and what the clients were told (every operation's
//! outcome, every lock they hold). Each invariant compares the two:
//!
//! 1. **One holder**: at no instant do two clients believe they hold one id. An engine `Lock`
//!    counts while `status()` says `Held` and its owner has not started releasing it (a holder
//!    inside `release()` does no more work under the lock; its release may land and be taken
//!    before its answer arrives). A dlc machine's lock counts from `Acquired` until its lease,
//!    timed from the send of its last renewing write, runs out, or until it releases or a
//!    heartbeat fails.
//! 2. **Fencing tokens** handed to clients rise strictly per id.
//! 3. **KV**: an increment (compare-and-swap) reported done has landed; one reported refused
//!    (KeyModified, KeyExists, KeyNotFound, LockLost, a network error) never lands, then or
//!    later; a write reported done never lands again once reported (a resend arriving late
//!    would overwrite writes acknowledged after it); every landing of an increment adds exactly
//!    one; at the end each counter equals the increments reported done plus the unknown-outcome
//!    ones that landed.
//! 4. **No orphans**: after the faults stop, every client has finished and the longest lease
//!    plus two deadlines has passed, every lock item is absent, released, or a fail-open lease
//!    that has run out (anyone may take it): no lock is held by nobody.
//! 5. **Outcomes match landings**: an acquire reported done took the lock with a write of that
//!    operation and reports the token that write left; a release reported done ended that lock
//!    (a release write of it landed, whichever call or background retry sent it); a release or
//!    data update reported refused (LockLost, a definite error) has no write of that call land,
//!    then or later. An acquire reported refused (not acquired, a definite error) whose earlier
//!    unanswered send lands all the same leaves a lock held by nobody, which the core must take
//!    back or let expire (invariant 4); `SIM_STRICT=1` counts such landings as violations too.
//!    Unknown outcomes and cancelled operations may land or not.
//! 6. **Coordination**: a semaphore's permits are held by at most N clients at any instant (its
//!    permit ids are `NAME#0` to `NAME#N-1`, each a lock under invariant 1); an election's
//!    observer never sees a term older than one it saw before; a lock handed off (detached) and
//!    taken up elsewhere (resumed) is one lock: its releases, heartbeats and data writes follow
//!    it from one process to the next.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{DefaultHasher, Hasher};
use std::sync::{Arc, Mutex};

use dynalease::lock::{Lock, LockStatus};
use dynalease::protocol::request::{Request, TransactItem};
use dynalease::{AttributeValue, Error, Item, Value};
use tokio::time::Instant;

pub type Shared = Arc<Mutex<Checker>>;
pub type OpId = u64;

/// What one operation was about.
#[derive(Clone, Debug, PartialEq)]
pub enum OpKind {
    Acquire { id: String },
    /// A permit of this semaphore, before it is known which (then it becomes an `Acquire`).
    AcquirePermit { semaphore: String },
    /// Taking up a lock handed off by `lock`'s holder.
    Resume { id: String, lock: OpId },
    /// `lock`: the acquire operation that took the lock being released.
    Release { id: String, lock: OpId },
    UpdateData { id: String },
    /// A KV write: an increment of a counter (compare-and-swap) or a blind put.
    KvWrite { key: String },
}

/// What the client was told.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Acquired { token: Option<i64> },
    /// Done: the write it made is the one of this version (KV), or just done.
    Done { version: Option<i64> },
    /// A definite "this did not happen": not acquired, lock lost, key modified, network error.
    Refused(String),
    /// An unknown outcome, reported as such.
    Unknown(String),
    /// The caller dropped the operation's future.
    Cancelled,
}

impl Outcome {
    /// How an error reports on a write: `Ambiguous` is the only unknown outcome.
    pub fn of_error(error: &Error) -> Outcome {
        match error {
            Error::Ambiguous { .. } => Outcome::Unknown(error.to_string()),
            other => Outcome::Refused(format!("{:?}: {other}", other.kind())),
        }
    }
}

/// One application of a write by the table.
pub struct Applied {
    pub client: usize,
    pub op: OpId,
    pub table: String,
    pub key: Item,
    pub before: Option<Item>,
    pub after: Option<Item>,
    pub ok: bool,
    pub summary: String,
}

impl Applied {
    pub fn describe(request: &Request) -> String {
        let version = |item: &Item| item.get("version").and_then(AttributeValue::as_i64).map(|v| format!(" v{v}")).unwrap_or_default();
        match request {
            Request::PutItem(put) => format!("Put{}", version(&put.item)),
            Request::UpdateItem(_) => "Update".into(),
            Request::DeleteItem(_) => "Delete".into(),
            Request::TransactWrite(tx) => {
                let put = tx.items.iter().find_map(|i| match i {
                    TransactItem::Put(p) => Some(version(&p.item)),
                    _ => None,
                });
                format!("Transact{}", put.unwrap_or_default())
            }
            other => other.operation().to_owned(),
        }
    }
}

/// What a write did to a lock item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockChange {
    Acquisition,
    Heartbeat,
    Release,
    Data,
    Nothing,
}

/// Someone who may believe they hold a lock.
pub enum Holder {
    Engine(Lock),
    Dlc(Arc<Mutex<DlcHold>>),
}

/// A dlc machine's lock as its driver sees it.
#[derive(Debug)]
pub struct DlcHold {
    /// When its lease ends; `None` for a fail-closed lock (never).
    pub until: Option<Instant>,
    /// False once it released, or a heartbeat failed.
    pub active: bool,
}

struct Registered {
    client: usize,
    id: String,
    holder: Holder,
    releasing: bool,
}

struct Op {
    client: usize,
    kind: OpKind,
    outcome: Option<Outcome>,
    /// Guids its acquisition writes left on the item.
    acquired_guids: Vec<Vec<u8>>,
    /// Tokens its acquisition writes left.
    acquired_tokens: Vec<Option<i64>>,
    releases_landed: u32,
    data_landed: u32,
    /// KV: versions of its writes that changed the item.
    versions_landed: Vec<i64>,
}

pub struct Checker {
    start: Instant,
    ops: Vec<Op>,
    holders: BTreeMap<u64, Registered>,
    next_holder: u64,
    tokens: HashMap<String, i64>,
    /// Guid → the acquire operation whose lock carries it.
    lineage: HashMap<Vec<u8>, OpId>,
    /// Locks (by acquire operation) a release write ended.
    released: std::collections::HashSet<OpId>,
    /// When each lock item was last written, and the lease it carried then.
    last_lock_write: BTreeMap<String, Instant>,
    counters: BTreeMap<String, i64>,
    /// The semaphore clients use, and its permits.
    semaphore: Option<(String, u32)>,
    /// The newest term each election observer saw.
    terms_seen: HashMap<usize, i64>,
    pub violations: Vec<String>,
    hasher: DefaultHasher,
    trace: VecDeque<String>,
    keep_full_trace: bool,
    strict: bool,
    pub stats: Stats,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub acquisitions: u64,
    pub releases: u64,
    pub increments: u64,
    pub landings: u64,
    pub unknown_outcomes: u64,
}

const TRACE_TAIL: usize = 400;

impl Checker {
    /// Operation 0 stands for "no operation": writes sent between two operations of a client.
    pub fn new(keep_full_trace: bool) -> Shared {
        Arc::new(Mutex::new(Checker {
            start: Instant::now(),
            ops: vec![Op::new(usize::MAX, OpKind::Acquire { id: String::new() })],
            holders: BTreeMap::new(),
            next_holder: 0,
            tokens: HashMap::new(),
            lineage: HashMap::new(),
            released: Default::default(),
            last_lock_write: BTreeMap::new(),
            counters: BTreeMap::new(),
            semaphore: None,
            terms_seen: HashMap::new(),
            violations: Vec::new(),
            hasher: DefaultHasher::new(),
            trace: VecDeque::new(),
            keep_full_trace,
            strict: std::env::var_os("SIM_STRICT").is_some(),
            stats: Stats::default(),
        }))
    }

    /// Everything the run did, as one number: equal for two runs of one seed.
    pub fn trace_hash(&self) -> u64 {
        self.hasher.finish()
    }

    pub fn trace(&self) -> impl Iterator<Item = &String> {
        self.trace.iter()
    }

    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }

    fn log(&mut self, line: String) {
        let line = format!("{:>9.3}s {line}", self.start.elapsed().as_secs_f64());
        self.hasher.write(line.as_bytes());
        self.trace.push_back(line);
        if !self.keep_full_trace && self.trace.len() > TRACE_TAIL {
            self.trace.pop_front();
        }
    }

    fn violation(&mut self, invariant: u8, message: String) {
        let message = format!("invariant {invariant}: {message}");
        self.log(format!("VIOLATION {message}"));
        if self.violations.len() < 20 {
            self.violations.push(message);
        }
    }

    /// An acquisition nobody was told about: fine if the core takes it back (fail-closed) or
    /// lets it expire (fail-open), which invariant 4 checks at the end; a violation of
    /// invariant 5 only with SIM_STRICT, where an acquire reported refused must never land.
    fn orphan(&mut self, message: String) {
        if self.strict {
            self.violation(5, message);
        } else {
            self.log(format!("orphan: {message}"));
        }
    }

    // ----- operations -----

    pub fn begin(&mut self, client: usize, kind: OpKind) -> OpId {
        self.log(format!("c{client} begins {kind:?}"));
        self.ops.push(Op::new(client, kind));
        (self.ops.len() - 1) as OpId
    }

    /// The client was told `outcome`. For acquisitions, `holder` is the lock it now holds.
    pub fn finish(&mut self, op: OpId, outcome: Outcome, current_item: Option<&Item>) {
        let o = &self.ops[op as usize];
        let (client, kind) = (o.client, o.kind.clone());
        self.log(format!("c{client} op{op} {kind:?} -> {outcome:?}"));
        match &outcome {
            Outcome::Unknown(_) => self.stats.unknown_outcomes += 1,
            Outcome::Acquired { .. } => self.stats.acquisitions += 1,
            _ => {}
        }
        let o = &self.ops[op as usize];
        match (&kind, &outcome) {
            (OpKind::Acquire { id }, Outcome::Acquired { token }) => {
                if !o.acquired_tokens.contains(token) {
                    let message = format!(
                        "c{client} op{op}: acquire of {id} reported done with token {token:?}, but its writes took the lock with {:?}",
                        o.acquired_tokens
                    );
                    self.violation(5, message);
                }
                if let Some(token) = *token {
                    let last = self.tokens.get(id).copied();
                    if last.is_some_and(|last| token <= last) {
                        self.violation(2, format!("c{client} op{op}: token {token} for {id} after token {last:?} was handed out"));
                    }
                    self.tokens.insert(id.clone(), token);
                }
            }
            (OpKind::Acquire { id }, Outcome::Refused(why)) => {
                // A released item may carry our guid (dlc's undo releases with it): that is free.
                let ours = current_item.filter(|item| item.get("leaseDurationMs").and_then(AttributeValue::as_i64) != Some(1))
                    .and_then(|item| item.get("guid"))
                    .and_then(AttributeValue::as_b)
                    .is_some_and(|g| o.acquired_guids.iter().any(|a| a == g));
                if ours {
                    // An earlier unanswered send of the acquire landed; the core must take it
                    // back (invariant 4 checks that it did). SIM_STRICT=1 counts it anyway.
                    let message = format!("c{client} op{op}: acquire of {id} reported refused ({why}) while its own write holds the item");
                    self.orphan(message);
                }
            }
            (OpKind::Release { id, lock }, Outcome::Done { .. }) => {
                self.stats.releases += 1;
                // Any release of this lock counts: an earlier call's send that landed late, or
                // the one the core sent in the background after that call's unknown outcome.
                if !self.released.contains(lock) {
                    self.violation(5, format!("c{client} op{op}: release of {id} reported done, but no release of that lock landed"));
                }
            }
            (OpKind::Release { id, .. } | OpKind::UpdateData { id }, Outcome::Refused(why)) if o.releases_landed + o.data_landed > 0 => {
                self.violation(5, format!("c{client} op{op}: {kind:?} of {id} reported refused ({why}), but its write landed"));
            }
            (OpKind::UpdateData { id }, Outcome::Done { .. }) if o.data_landed == 0 => {
                self.violation(5, format!("c{client} op{op}: data update of {id} reported done, but no write of it landed"));
            }
            (OpKind::KvWrite { key }, Outcome::Done { version: Some(version) }) => {
                self.stats.increments += 1;
                if !o.versions_landed.contains(version) {
                    self.violation(3, format!("c{client} op{op}: write of {key} reported done (version {version}), but it never landed"));
                }
            }
            (OpKind::KvWrite { key }, Outcome::Refused(why)) if !o.versions_landed.is_empty() => {
                let message = format!("c{client} op{op}: write of {key} reported refused ({why}), but version {:?} landed", o.versions_landed);
                self.violation(3, message);
            }
            _ => {}
        }
        self.ops[op as usize].outcome = Some(outcome);
        self.check_holders();
    }

    // ----- what the table did -----

    pub fn applied(&mut self, applied: Applied) {
        let Applied { client, op, table, key, before, after, ok, summary } = applied;
        let name = key.get("id").or_else(|| key.get("sk")).and_then(AttributeValue::as_s).unwrap_or("?").to_owned();
        if !ok {
            self.log(format!("c{client} op{op} {summary} on {name}: refused by the table"));
            return;
        }
        self.stats.landings += 1;
        if table.starts_with("locks") {
            self.lock_written(client, op, &name, before.as_ref(), after.as_ref(), &summary);
        } else {
            self.kv_written(client, op, &name, before.as_ref(), after.as_ref(), &summary);
        }
        self.check_holders();
    }

    fn lock_written(&mut self, client: usize, op: OpId, id: &str, before: Option<&Item>, after: Option<&Item>, summary: &str) {
        let change = lock_change(before, after);
        self.log(format!("c{client} op{op} {summary} on {id}: {change:?} -> {}", describe_lock(after)));
        self.last_lock_write.insert(id.to_owned(), Instant::now());
        let (kind, outcome) = (self.ops[op as usize].kind.clone(), self.ops[op as usize].outcome.clone());
        let refused = matches!(outcome, Some(Outcome::Refused(_)));
        // Writes of the client's other locks (heartbeats, the release a dropped lock sends in
        // the background) go out while this operation runs: they are not its own.
        self.follow_lineage(op, &kind, change, before, after);
        let permit_of = |semaphore: &str| id.strip_prefix(semaphore).is_some_and(|rest| rest.starts_with('#'));
        match &kind {
            OpKind::Acquire { id: op_id } | OpKind::Release { id: op_id, .. } | OpKind::UpdateData { id: op_id } if op_id == id => {}
            OpKind::AcquirePermit { semaphore } if permit_of(semaphore) => {}
            _ => return,
        }
        match (change, &kind) {
            (LockChange::Acquisition, OpKind::Acquire { .. } | OpKind::AcquirePermit { .. }) => {
                let after = after.expect("an acquisition leaves an item");
                let o = &mut self.ops[op as usize];
                o.acquired_guids.push(after.get("guid").and_then(AttributeValue::as_b).unwrap_or_default().to_vec());
                o.acquired_tokens.push(after.get("fencingToken").and_then(AttributeValue::as_i64));
                if refused {
                    self.orphan(format!("c{client} op{op}: an acquisition of {id} landed after the acquire was reported refused ({outcome:?})"));
                }
            }
            (LockChange::Release, OpKind::Release { .. }) | (LockChange::Release, OpKind::Acquire { .. }) => {
                self.ops[op as usize].releases_landed += 1;
                if refused && matches!(kind, OpKind::Release { .. }) {
                    self.violation(5, format!("c{client} op{op}: a release of {id} landed after it was reported refused ({outcome:?})"));
                }
            }
            (LockChange::Data, OpKind::UpdateData { .. }) => {
                self.ops[op as usize].data_landed += 1;
                if refused {
                    self.violation(5, format!("c{client} op{op}: a data update of {id} landed after it was reported refused ({outcome:?})"));
                }
            }
            _ => {}
        }
    }

    /// Which lock each guid belongs to: an acquisition starts a lock (named by the acquire
    /// operation), a heartbeat or data write carries it to the next guid, a release ends it,
    /// whoever sent the write (the caller, or the core in the background).
    fn follow_lineage(&mut self, op: OpId, kind: &OpKind, change: LockChange, before: Option<&Item>, after: Option<&Item>) {
        let guid = |item: Option<&Item>| item.and_then(|i| i.get("guid")).and_then(AttributeValue::as_b).map(<[u8]>::to_vec);
        let lock = guid(before).and_then(|g| self.lineage.get(&g).copied());
        match change {
            LockChange::Acquisition if matches!(kind, OpKind::Acquire { .. } | OpKind::AcquirePermit { .. }) => {
                if let Some(g) = guid(after) {
                    self.lineage.insert(g, op);
                }
            }
            LockChange::Heartbeat | LockChange::Data => {
                if let (Some(lock), Some(g)) = (lock, guid(after)) {
                    self.lineage.insert(g, lock);
                }
            }
            LockChange::Release => {
                if let Some(lock) = lock {
                    self.released.insert(lock);
                }
            }
            _ => {}
        }
    }

    fn kv_written(&mut self, client: usize, op: OpId, key: &str, before: Option<&Item>, after: Option<&Item>, summary: &str) {
        let version = |item: Option<&Item>| item.and_then(|i| i.get("version")).and_then(AttributeValue::as_i64);
        let value = |item: Option<&Item>| item.and_then(|i| i.get("value")).and_then(AttributeValue::as_i64);
        let (old, new) = (version(before), version(after));
        self.log(format!("c{client} op{op} {summary} on {key}: v{old:?} -> v{new:?} value {:?}", value(after)));
        if old == new {
            return; // a resend of a write already there, or a transaction answered from its token
        }
        let Some(new) = new else { return };
        if key.starts_with("counter") {
            let (was, now) = (value(before).unwrap_or(0), value(after).unwrap_or(-1));
            if now != was + 1 {
                self.violation(3, format!("c{client} op{op}: counter {key} went from {was} to {now}"));
            }
            *self.counters.entry(key.to_owned()).or_default() += 1;
        }
        if self.ops[op as usize].kind != (OpKind::KvWrite { key: key.to_owned() }) {
            self.violation(3, format!("c{client} op{op}: a write of {key} was sent by another operation"));
            return;
        }
        let outcome = self.ops[op as usize].outcome.clone();
        self.ops[op as usize].versions_landed.push(new);
        match &outcome {
            Some(Outcome::Refused(why)) => {
                self.violation(3, format!("c{client} op{op}: write of {key} (v{new}) landed after it was reported refused ({why})"));
            }
            Some(Outcome::Done { .. }) => {
                let message = format!(
                    "c{client} op{op}: write of {key} (v{new}) landed again after it was reported done, replacing v{old:?} written since"
                );
                self.violation(3, message);
            }
            _ => {}
        }
    }

    // ----- coordination -----

    pub fn use_semaphore(&mut self, name: &str, permits: u32) {
        self.semaphore = Some((name.to_owned(), permits));
    }

    /// A permit acquisition turned out to take permit `id`: from here it is that lock's acquire.
    pub fn permit_taken(&mut self, op: OpId, id: &str) {
        self.ops[op as usize].kind = OpKind::Acquire { id: id.to_owned() };
    }

    /// Invariant 6: what an election observer saw.
    pub fn leader_seen(&mut self, client: usize, term: Option<i64>) {
        self.log(format!("c{client} sees leader term {term:?}"));
        let Some(term) = term else { return };
        let last = self.terms_seen.insert(client, term);
        if last.is_some_and(|last| term < last) {
            self.violation(6, format!("c{client} saw leader term {term} after term {last:?}"));
        }
    }

    // ----- holders -----

    pub fn hold(&mut self, client: usize, id: &str, holder: Holder) -> u64 {
        self.next_holder += 1;
        self.holders.insert(self.next_holder, Registered { client, id: id.to_owned(), holder, releasing: false });
        self.check_holders();
        self.next_holder
    }

    /// The holder starts releasing (or is about to drop the lock): it no longer counts.
    pub fn releasing(&mut self, handle: u64) {
        if let Some(h) = self.holders.get_mut(&handle) {
            h.releasing = true;
        }
    }

    /// Clients that hold a lock now (a partition hurts most there).
    pub fn holding_clients(&self) -> Vec<usize> {
        self.holders.values().filter(|h| !h.releasing).map(|h| h.client).collect()
    }

    pub fn unhold(&mut self, handle: u64) {
        self.holders.remove(&handle);
    }

    /// Invariant 1, at this instant.
    pub fn check_holders(&mut self) {
        let now = Instant::now();
        let mut by_id: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for h in self.holders.values() {
            let held = !h.releasing
                && match &h.holder {
                    Holder::Engine(lock) => lock.status() == LockStatus::Held,
                    Holder::Dlc(hold) => {
                        let hold = hold.lock().unwrap();
                        hold.active && hold.until.is_none_or(|until| now < until)
                    }
                };
            if held {
                by_id.entry(&h.id).or_default().push(h.client);
            }
        }
        let mut permits_held = Vec::new();
        if let Some((name, permits)) = &self.semaphore {
            for (id, clients) in &by_id {
                let Some(k) = id.strip_prefix(name.as_str()).and_then(|rest| rest.strip_prefix('#')) else { continue };
                if k.parse::<u32>().is_ok_and(|k| k < *permits) {
                    permits_held.extend(clients.iter().map(|c| format!("c{c} holds {id}")));
                } else {
                    permits_held.push(format!("{id} is not a permit of {name}, which has {permits}"));
                    permits_held.extend(std::iter::repeat_n(String::new(), *permits as usize));
                }
            }
            if permits_held.len() > *permits as usize {
                let message = format!("more than {permits} permits of {name} are held: {permits_held:?}");
                permits_held = vec![message];
            } else {
                permits_held.clear();
            }
        }
        let overlaps: Vec<String> =
            by_id.into_iter().filter(|(_, c)| c.len() > 1).map(|(id, c)| format!("clients {c:?} all hold {id}")).collect();
        for overlap in overlaps {
            self.violation(1, overlap);
        }
        for overfull in permits_held {
            self.violation(6, overfull);
        }
    }

    // ----- the end -----

    /// Invariants 3 and 4 once everything has settled. `items`: every lock item by id, `kv`:
    /// every counter's stored value.
    pub fn check_end(&mut self, items: &BTreeMap<String, Option<Item>>, counters: &BTreeMap<String, i64>) {
        let now = Instant::now();
        for (id, item) in items {
            let Some(item) = item else { continue };
            let lease = item.get("leaseDurationMs").and_then(AttributeValue::as_i64);
            let expired = match lease {
                Some(1) => true,
                Some(ms) => self.last_lock_write.get(id).is_some_and(|at| now.duration_since(*at).as_millis() as i64 >= ms),
                None => false,
            };
            if !expired {
                self.violation(4, format!("lock {id} is held by nobody after every client finished: {}", describe_lock(Some(item))));
            }
        }
        for (key, stored) in counters {
            let landed = self.counters.get(key).copied().unwrap_or(0);
            let mut done = 0;
            let mut unknown_landed = 0;
            for op in &self.ops {
                if op.kind == (OpKind::KvWrite { key: key.clone() }) && !op.versions_landed.is_empty() {
                    match op.outcome {
                        Some(Outcome::Done { .. }) => done += 1,
                        _ => unknown_landed += 1,
                    }
                }
            }
            if *stored != landed || *stored != done + unknown_landed {
                self.violation(
                    3,
                    format!("counter {key} is {stored}: {landed} increments landed, {done} reported done, {unknown_landed} unknown ones landed"),
                );
            }
        }
        self.log(format!("end: locks {}, counters {counters:?}", items.len()));
    }

    pub fn note(&mut self, line: String) {
        self.log(line);
    }
}

impl Op {
    fn new(client: usize, kind: OpKind) -> Op {
        Op {
            client,
            kind,
            outcome: None,
            acquired_guids: Vec::new(),
            acquired_tokens: Vec::new(),
            releases_landed: 0,
            data_landed: 0,
            versions_landed: Vec::new(),
        }
    }
}

/// Classifies a write on a lock item by what it changed.
pub fn lock_change(before: Option<&Item>, after: Option<&Item>) -> LockChange {
    let lease = |i: &Item| i.get("leaseDurationMs").and_then(AttributeValue::as_i64);
    let token = |i: &Item| i.get("fencingToken").and_then(AttributeValue::as_i64);
    let guid = |i: &Item| i.get("guid").cloned();
    match (before, after) {
        (None, None) => LockChange::Nothing,
        (Some(_), None) => LockChange::Release, // a fail-closed release deletes the item
        (None, Some(_)) => LockChange::Acquisition,
        (Some(b), Some(a)) => {
            if lease(a) == Some(1) {
                if lease(b) == Some(1) && guid(a) == guid(b) { LockChange::Nothing } else { LockChange::Release }
            } else if lease(b) == Some(1) || token(a) != token(b) {
                LockChange::Acquisition
            } else if guid(a) != guid(b) {
                LockChange::Heartbeat
            } else if a.get("lockData") != b.get("lockData") {
                LockChange::Data
            } else {
                LockChange::Nothing
            }
        }
    }
}

fn describe_lock(item: Option<&Item>) -> String {
    match item {
        None => "absent".into(),
        Some(item) => {
            let guid = item.get("guid").and_then(AttributeValue::as_b).map(|g| format!("{:02x}{:02x}", g[0], g[1])).unwrap_or_default();
            let owner = item.get("owner").and_then(AttributeValue::as_s).unwrap_or("?");
            let token = item.get("fencingToken").and_then(AttributeValue::as_i64);
            let lease = item.get("leaseDurationMs").and_then(AttributeValue::as_i64);
            format!("{owner} guid {guid} token {token:?} lease {lease:?}")
        }
    }
}

/// A counter's value as the KV store holds it.
pub fn counter_value(value: &Value) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(-1),
        _ => -1,
    }
}
