//! The simulated clients: what an application does with locks and the KV store, at random.
//!
//! Engine clients use `LockClient`/`Lock`/`KvStore` as an application would: acquire (with
//! timeouts, some cancelled by dropping the future), try_acquire, hold for several heartbeat
//! periods while incrementing counters and writing under the lock, update lock data, release
//! or just drop the lock, hand it to another client (detach, resume) or let it end at a deadline;
//! take permits of a semaphore, and campaign in an election that an observer watches. dlc clients drive the drop-in's sans-IO machines with a loop of a few
//! lines, as the Node binding does. Every outcome goes to the checker.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dynalease::protocol::clock::{SharedClock, TokioClock};
use dynalease::kv::{KvConfig, KvStore, WriteOptions};
use dynalease::lock::dlc::{
    Action, DlcKey, DlcTable, FailClosedAcquire, FailClosedConfig, FailOpenAcquire, FailOpenConfig, HeldLock, HeldMode, Input, Now, TakeBack,
};
use dynalease::lock::{Handle, Lock, LockClient, LockConfig, LockStatus, Semaphore};
use dynalease::protocol::request::Request;
use dynalease::transport::Transport;
use dynalease::{AttributeValue, Error, Value};
use rand::Rng;
use tokio::time::Instant;

use super::checker::{counter_value, DlcHold, Holder, OpId, OpKind, Outcome};
use super::driver::{Handoff, World};
use super::faults::Link;

/// What every client kind shares: its link, and the world it reports to.
struct Client {
    world: Arc<World>,
    me: usize,
    link: Arc<Link>,
    fail_closed: bool,
}

impl Client {
    fn new(world: Arc<World>, me: usize, fail_closed: bool) -> Client {
        let link = world.link(me);
        Client { world, me, link, fail_closed }
    }

    fn roll(&self, below: u32) -> u32 {
        self.world.rng.lock().unwrap().random_range(0..below)
    }

    fn pause(&self, most: Duration) -> Duration {
        let most = most.as_micros().max(1) as u64;
        Duration::from_micros(self.world.rng.lock().unwrap().random_range(0..most))
    }

    fn pick_id(&self) -> String {
        let ids = if self.fail_closed { &self.world.params.closed_ids } else { &self.world.params.open_ids };
        ids[self.roll(ids.len() as u32) as usize].clone()
    }

    fn begin(&self, kind: OpKind) -> OpId {
        let op = self.world.checker.lock().unwrap().begin(self.me, kind);
        self.link.set_op(op);
        op
    }

    async fn finish(&self, op: OpId, outcome: Outcome, id: Option<&str>) {
        // Between operations the core may still write in the background (the release a dropped
        // lock sends, the undo of an abandoned acquire): those writes are nobody's operation.
        self.link.set_op(0);
        let item = match id {
            Some(id) => self.world.peek_lock(id).await,
            None => None,
        };
        self.world.checker.lock().unwrap().finish(op, outcome, item.as_ref());
    }

    /// How long an acquire waits, or a lock is held: up to a few leases.
    fn span(&self) -> Duration {
        self.pause(self.world.params.lease * 3)
    }
}

// ----- engine clients -----

pub async fn engine_client(world: Arc<World>, me: usize, fail_closed: bool) {
    let c = Client::new(world, me, fail_closed);
    let transport: Arc<dyn Transport> = c.link.clone();
    let skewed = c.world.params.skewed_client == Some(me);
    let config = LockConfig {
        owner: format!("engine-{me}"),
        fail_closed,
        lease_duration: c.world.params.lease,
        trust_local_time: skewed,
        ..LockConfig::new(c.world.locks_table.clone())
    };
    let clock: SharedClock = if skewed {
        Arc::new(TokioClock::starting_at(c.world.clock.now_unix_ms() + 3_600_000))
    } else {
        c.world.clock.clone()
    };
    let locks = LockClient::new(config, transport.clone()).expect("valid lock config").with_clock(clock);
    let kv = KvStore::new(KvConfig::new(c.world.kv_table.clone(), "sim"), transport).expect("valid kv config").with_clock(c.world.clock.clone());
    let semaphore = (!fail_closed).then(|| locks.semaphore(SEMAPHORE, engine_permits(&c.world)).expect("valid semaphore"));
    let engine = Engine { c, locks, kv, semaphore };
    while !engine.c.world.stopping() {
        match engine.c.roll(100) {
            0..30 => engine.acquire_and_hold(false).await,
            30..42 => engine.acquire_and_hold(true).await,
            42..50 => engine.take_permit().await,
            50..68 => engine.increment(None).await,
            68..78 => engine.put(None).await,
            78..86 => engine.resume_handoff().await,
            _ => tokio::time::sleep(engine.c.pause(engine.c.world.params.lease / 2)).await,
        }
    }
    // Locks handed off and not yet taken up: the last clients take them up and release them.
    for _ in 0..20 {
        if !engine.c.world.has_handoff(engine.c.fail_closed) {
            break;
        }
        engine.resume_handoff().await;
    }
}

/// A permit's lock id as the checker names locks.
fn permit_name(permit: &Lock) -> String {
    match &permit.id().partition {
        dynalease::KeyValue::S(name) => name.clone(),
        other => panic!("permit ids are strings, not {other}"),
    }
}

/// The semaphore engine clients share.
pub const SEMAPHORE: &str = "pool";

fn engine_permits(world: &World) -> u32 {
    world.params.permits
}

/// Watches the election on the first lease lock id, as an observer that never campaigns.
pub async fn observer_client(world: Arc<World>, me: usize) {
    let c = Client::new(world, me, false);
    let transport: Arc<dyn Transport> = c.link.clone();
    let config = LockConfig { owner: format!("observer-{me}"), lease_duration: c.world.params.lease, ..LockConfig::new(c.world.locks_table.clone()) };
    let locks = LockClient::new(config, transport).expect("valid lock config").with_clock(c.world.clock.clone());
    let election = locks.election(c.world.params.open_ids[0].as_str()).expect("an election on a lease lock id");
    let mut watch = election.watch(Some(c.world.params.lease / 4)).expect("a valid interval");
    while !c.world.stopping() {
        match tokio::time::timeout(c.world.params.lease, watch.next()).await {
            Ok(Ok(leader)) => c.world.checker.lock().unwrap().leader_seen(me, leader.map(|l| l.term)),
            Ok(Err(_)) => tokio::time::sleep(c.world.params.lease / 4).await,
            Err(_) => {}
        }
    }
}

struct Engine {
    c: Client,
    locks: LockClient,
    kv: KvStore,
    /// Fail-open clients only: permits must free themselves when a holder dies.
    semaphore: Option<Semaphore>,
}

impl Engine {
    async fn acquire_and_hold(&self, try_only: bool) {
        let c = &self.c;
        let id = c.pick_id();
        let op = c.begin(OpKind::Acquire { id: id.clone() });
        // Some acquisitions are an election's campaign (the same lock, data written with it),
        // some end themselves at a deadline (a Lambda's).
        let how = if try_only || c.fail_closed { 100 } else { c.roll(100) };
        let attempt = async {
            match how {
                _ if try_only => self.locks.try_acquire(id.as_str()).await,
                0..15 => {
                    let election = self.locks.election(id.as_str()).expect("an election on a lease lock id");
                    election.campaign(Some(Value::from(op as i64)), Some(c.span())).await.map(Some)
                }
                15..30 => {
                    let deadline = Instant::now() + c.span() + c.span();
                    self.locks.acquire_until(id.as_str(), Some(c.span()), deadline).await.map(Some)
                }
                _ => self.locks.acquire(id.as_str(), Some(c.span())).await.map(Some),
            }
        };
        // Some acquires are cancelled by dropping their future, at any moment of their wait.
        let result = if !c.world.stopping() && c.roll(100) < 25 {
            let cancel_after = c.pause(c.world.params.lease * 2 + c.world.params.deadline);
            tokio::time::timeout(cancel_after, attempt).await.ok()
        } else {
            Some(attempt.await)
        };
        let outcome = match &result {
            None => Outcome::Cancelled,
            Some(Ok(Some(lock))) => Outcome::Acquired { token: lock.fencing_token() },
            Some(Ok(None)) => Outcome::Refused("held (try_acquire)".into()),
            Some(Err(e)) => Outcome::of_error(e),
        };
        c.finish(op, outcome, Some(&id)).await;
        if let Some(Ok(Some(lock))) = result {
            self.hold(&id, lock, op).await;
        }
    }

    async fn hold(&self, id: &str, lock: Lock, acquired_by: OpId) {
        let c = &self.c;
        let handle = c.world.checker.lock().unwrap().hold(c.me, id, Holder::Engine(lock.clone()));
        let until = Instant::now() + c.span();
        while Instant::now() < until && !c.world.stopping() && lock.status() == LockStatus::Held {
            match c.roll(100) {
                0..45 => self.increment(Some((id, &lock))).await,
                45..60 => self.put(Some((id, &lock))).await,
                60..75 => self.update_data(id, &lock).await,
                _ => tokio::time::sleep(c.pause(c.world.params.lease / 2)).await,
            }
        }
        c.world.checker.lock().unwrap().releasing(handle);
        // A fail-open lock may be left to expire (a crashed holder); a fail-closed one never is.
        let next = c.roll(100);
        if !self.c.fail_closed && !c.world.stopping() && next < 15 {
            c.world.checker.lock().unwrap().note(format!("c{} drops its lock on {id}", c.me));
            c.world.checker.lock().unwrap().unhold(handle);
            return;
        }
        // Or handed to another client, which takes it up (or, at the end, this one does).
        if (15..35).contains(&next) {
            match lock.detach().await {
                Ok(handed) => {
                    c.world.checker.lock().unwrap().note(format!("c{} detaches its lock on {id}", c.me));
                    c.world.checker.lock().unwrap().unhold(handle);
                    let handoff = Handoff { fail_closed: c.fail_closed, handle: handed.to_string(), id: id.to_owned(), lock: acquired_by };
                    c.world.hand_off(handoff);
                    return;
                }
                // Lost: the release below finds out and reports it. A failed write: still ours.
                Err(e) => c.world.checker.lock().unwrap().note(format!("c{} could not detach {id}: {e}", c.me)),
            }
        }
        // An unknown or failed release is retried, as a careful application would.
        for _ in 0..5 {
            let op = c.begin(OpKind::Release { id: id.to_owned(), lock: acquired_by });
            let result = lock.release().await;
            let retry = matches!(result, Err(Error::Ambiguous { .. } | Error::Network { .. } | Error::Throttled { .. }));
            let outcome = match &result {
                Ok(()) => Outcome::Done { version: None },
                Err(e) => Outcome::of_error(e),
            };
            c.finish(op, outcome, None).await;
            if !retry {
                break;
            }
        }
        c.world.checker.lock().unwrap().unhold(handle);
    }

    /// Takes a permit of the semaphore and holds it like a lock.
    async fn take_permit(&self) {
        let Some(semaphore) = &self.semaphore else { return self.acquire_and_hold(false).await };
        let c = &self.c;
        let op = c.begin(OpKind::AcquirePermit { semaphore: SEMAPHORE.into() });
        let attempt = async {
            if c.roll(2) == 0 {
                semaphore.try_acquire().await
            } else {
                semaphore.acquire(Some(c.span())).await.map(Some)
            }
        };
        let result = if !c.world.stopping() && c.roll(100) < 25 {
            tokio::time::timeout(c.pause(c.world.params.lease * 2 + c.world.params.deadline), attempt).await.ok()
        } else {
            Some(attempt.await)
        };
        let outcome = match &result {
            None => Outcome::Cancelled,
            Some(Ok(Some(permit))) => {
                c.world.checker.lock().unwrap().permit_taken(op, &permit_name(permit));
                Outcome::Acquired { token: permit.fencing_token() }
            }
            Some(Ok(None)) => Outcome::Refused("all permits held (try_acquire)".into()),
            Some(Err(e)) => Outcome::of_error(e),
        };
        let id = match &result {
            Some(Ok(Some(permit))) => Some(permit_name(permit)),
            _ => None,
        };
        c.finish(op, outcome, id.as_deref()).await;
        if let (Some(Ok(Some(permit))), Some(id)) = (result, id) {
            self.hold(&id, permit, op).await;
        }
    }

    /// Takes up a lock another client handed off, and holds it. A failed read leaves the handle
    /// for a later try (a careful application keeps it until the resume succeeds or is refused).
    async fn resume_handoff(&self) {
        let c = &self.c;
        let Some(handoff) = c.world.take_handoff(c.fail_closed) else { return };
        let op = c.begin(OpKind::Resume { id: handoff.id.clone(), lock: handoff.lock });
        let handle = Handle::parse(&handoff.handle).expect("a handle the simulation passed on");
        let result = self.locks.resume(&handle).await;
        let outcome = match &result {
            Ok(_) => Outcome::Done { version: None },
            Err(e) => Outcome::of_error(e),
        };
        c.finish(op, outcome, None).await;
        match result {
            Ok(lock) => self.hold(&handoff.id, lock, handoff.lock).await,
            Err(Error::LockLost { .. }) => {}
            Err(_) => c.world.hand_off(handoff),
        }
    }

    /// The key a KV operation writes: the lock's own (`KIND-ID`), or one of two shared ones.
    fn key_for(&self, kind: &str, fence: Option<(&str, &Lock)>) -> String {
        match fence {
            Some((id, _)) => format!("{kind}-{id}"),
            None => format!("{kind}-shared-{}", self.c.roll(2)),
        }
    }

    /// A compare-and-swap increment: of the lock's own counter, fenced by it, or of a shared one.
    async fn increment(&self, fence: Option<(&str, &Lock)>) {
        let c = &self.c;
        let key = self.key_for("counter", fence);
        let op = c.begin(OpKind::KvWrite { key: key.clone() });
        let previous = match self.kv.get(&key).await {
            Ok(previous) => previous,
            Err(e) => return c.finish(op, Outcome::Refused(format!("read failed, nothing written: {e}")), None).await,
        };
        let next = Value::from(previous.as_ref().map_or(0, |p| counter_value(&p.value)) + 1);
        let options = fence.map(|(_, lock)| WriteOptions::default().fence(lock)).unwrap_or_default();
        let write = self.kv.atomic_put(&key, &next, previous.as_ref(), &options);
        let result = if c.roll(100) < 10 { tokio::time::timeout(c.pause(c.world.params.deadline * 3), write).await.ok() } else { Some(write.await) };
        let outcome = match result {
            None => Outcome::Cancelled,
            Some(Ok(pair)) => Outcome::Done { version: Some(pair.version) },
            Some(Err(e)) => Outcome::of_error(&e),
        };
        c.finish(op, outcome, None).await;
    }

    /// A blind put of a register: fenced by the lock, or not.
    async fn put(&self, fence: Option<(&str, &Lock)>) {
        let c = &self.c;
        let key = self.key_for("register", fence);
        let op = c.begin(OpKind::KvWrite { key: key.clone() });
        let options = fence.map(|(_, lock)| WriteOptions::default().fence(lock)).unwrap_or_default();
        let outcome = match self.kv.put(&key, &Value::from(op as i64), &options).await {
            Ok(pair) => Outcome::Done { version: Some(pair.version) },
            Err(e) => Outcome::of_error(&e),
        };
        c.finish(op, outcome, None).await;
    }

    async fn update_data(&self, id: &str, lock: &Lock) {
        let c = &self.c;
        let op = c.begin(OpKind::UpdateData { id: id.to_owned() });
        let outcome = match lock.update_data(Value::from(op as i64)).await {
            Ok(()) => Outcome::Done { version: None },
            Err(e) => Outcome::of_error(&e),
        };
        c.finish(op, outcome, None).await;
    }
}

// ----- dlc machine clients -----

pub async fn dlc_client(world: Arc<World>, me: usize, fail_closed: bool) {
    let c = Client::new(world, me, fail_closed);
    let table = DlcTable { table: c.world.locks_table.clone(), partition_key: "id".into(), sort_key: None };
    let dlc = Dlc { c, table };
    while !dlc.c.world.stopping() {
        if dlc.c.roll(100) < 60 {
            dlc.acquire_and_hold().await;
        } else {
            tokio::time::sleep(dlc.c.pause(dlc.c.world.params.lease / 2)).await;
        }
    }
}

struct Dlc {
    c: Client,
    table: DlcTable,
}

/// Either acquire machine, behind one face.
enum Acquiring {
    Open(FailOpenAcquire),
    Closed(FailClosedAcquire),
}

impl Acquiring {
    fn next(&mut self, input: Input, now: Now) -> Action {
        match self {
            Acquiring::Open(m) => m.next(input, now),
            Acquiring::Closed(m) => m.next(input),
        }
    }

    fn abandon(&mut self, now: Now) -> Action {
        match self {
            Acquiring::Open(m) => m.abandon(now),
            Acquiring::Closed(m) => m.abandon(),
        }
    }
}

type Sending = Pin<Box<dyn Future<Output = (Input, Option<Error>)> + Send>>;

/// The errors one run of a machine met, kept as the drop-in keeps them
/// (bindings-node/lib/dlc.js, `run`), so a machine's `PassError` is reported with the error the
/// drop-in would report: the last request's (not an undo's), the first that was not a condition
/// failure, and the first such of a write.
#[derive(Default)]
struct Errors {
    last: Option<Outcome>,
    first_other: Option<Outcome>,
    first_write: Option<Outcome>,
}

impl Errors {
    fn saw(&mut self, request_was: (bool, bool), error: Option<&Error>) {
        let (write, undo) = request_was;
        let Some(error) = error else { return };
        let outcome = Outcome::of_error(error);
        if !undo {
            self.last = Some(outcome.clone());
        }
        if !matches!(error, Error::ConditionalCheckFailed { .. }) {
            self.first_other.get_or_insert(outcome.clone());
            if write && !undo {
                self.first_write.get_or_insert(outcome);
            }
        }
    }

    /// The error the drop-in reports, as its caller must read it: dlc's callbacks have one
    /// error channel, and once a write of the operation met an error other than a failed
    /// condition the machine treats it as possibly landed (it reads back, resends or takes
    /// back), so that error says "may have happened", whichever request it came from.
    fn report(&self, choice: [&Option<Outcome>; 2]) -> Outcome {
        let reported = choice.into_iter().flatten().next().cloned().unwrap_or(Outcome::Unknown("an error without an error".into()));
        match reported {
            Outcome::Refused(error) if self.first_write.is_some() => Outcome::Unknown(format!("{error} (after a write that may have landed)")),
            other => other,
        }
    }
}

/// (a write, an undo): what the drop-in's error bookkeeping needs to know of a request.
fn kind_of(request: &Request, undo: bool) -> (bool, bool) {
    (!matches!(request, Request::GetItem(_)), undo)
}

impl Dlc {
    fn lease_ms(&self) -> i64 {
        self.c.world.params.lease.as_millis() as i64
    }

    fn now(&self) -> Now {
        Now { unix_ms: self.c.world.clock.now_unix_ms() as i64, mono_ms: self.c.world.start.elapsed().as_millis() as i64 }
    }

    fn key(id: &str) -> DlcKey {
        DlcKey { partition: AttributeValue::S(id.to_owned()), sort: None }
    }

    /// One request, its outcome as the machines take it (and the error, to report it as is).
    fn send(&self, request: Request) -> Sending {
        let link = self.c.link.clone();
        Box::pin(async move {
            match link.execute(request).await {
                Ok(response) => (Input::Response(response), None),
                Err(e @ Error::ConditionalCheckFailed { .. }) => (Input::ConditionFailed, Some(e)),
                Err(e) => (Input::OtherError, Some(e)),
            }
        })
    }

    /// Runs a machine's take-back (the delete of a fail-closed item of ours that may be there)
    /// beside the client, as the drop-in does once it has reported to its caller.
    fn take_back_in_background(&self, mut take_back: TakeBack) {
        let (world, link) = (self.c.world.clone(), self.c.link.clone());
        world.checker.lock().unwrap().note(format!("c{}: take-back in the background", self.c.me));
        let now = move |world: &World| Now { unix_ms: world.clock.now_unix_ms() as i64, mono_ms: world.start.elapsed().as_millis() as i64 };
        let task = tokio::spawn(async move {
            let mut action = take_back.start(now(&world));
            loop {
                action = match action {
                    Action::Sleep(pause) => {
                        tokio::time::sleep(pause).await;
                        take_back.next(Input::Timer, now(&world))
                    }
                    Action::Send(request) => {
                        let input = match link.execute(request).await {
                            Ok(response) => Input::Response(response),
                            Err(Error::ConditionalCheckFailed { .. }) => Input::ConditionFailed,
                            Err(_) => Input::OtherError,
                        };
                        take_back.next(input, now(&world))
                    }
                    other => {
                        world.checker.lock().unwrap().note(format!("c{}: take-back ends: {other:?}", link.client));
                        return;
                    }
                };
            }
        });
        self.c.world.background(task);
    }

    async fn acquire_and_hold(&self) {
        let c = &self.c;
        let id = c.pick_id();
        let op = c.begin(OpKind::Acquire { id: id.clone() });
        let mut machine = if c.fail_closed {
            let config = FailClosedConfig {
                table: self.table.clone(),
                owner: format!("dlc-{}", c.me),
                acquire_period: Duration::from_millis(100),
                retry_count: c.roll(5),
                // A put may land up to two deadlines after it was sent (one past the caller's
                // deadline), and the caller may abandon it right after sending.
                undo_delay: c.world.params.deadline * 2 + Duration::from_millis(10),
            };
            Acquiring::Closed(FailClosedAcquire::new(config, Self::key(&id)))
        } else {
            let config = FailOpenConfig {
                table: self.table.clone(),
                owner: format!("dlc-{}", c.me),
                lease_duration_ms: self.lease_ms(),
                trust_local_time: false,
                retry_count: c.roll(3),
            };
            Acquiring::Open(FailOpenAcquire::new(config, Self::key(&id)))
        };
        let give_up_at = Instant::now() + c.span();
        let mut abandoned = false;
        let mut errors = Errors::default();
        let mut action = machine.next(Input::Start, self.now());
        loop {
            action = match action {
                Action::Send(request) if !abandoned => {
                    let kind = kind_of(&request, false);
                    match tokio::time::timeout_at(give_up_at, self.send(request)).await {
                        Ok((input, error)) => {
                            errors.saw(kind, error.as_ref());
                            machine.next(input, self.now())
                        }
                        Err(_) => {
                            abandoned = true;
                            machine.abandon(self.now())
                        }
                    }
                }
                Action::Send(request) | Action::Undo(request) => {
                    let kind = kind_of(&request, true);
                    let (input, error) = self.send(request).await;
                    errors.saw(kind, error.as_ref());
                    machine.next(input, self.now())
                }
                Action::Sleep(pause) if !abandoned && Instant::now() + pause > give_up_at => {
                    tokio::time::sleep_until(give_up_at).await;
                    abandoned = true;
                    machine.abandon(self.now())
                }
                Action::Sleep(pause) => {
                    tokio::time::sleep(pause).await;
                    machine.next(Input::Timer, self.now())
                }
                Action::Acquired { guid, fencing_token, lease_from_mono_ms } => {
                    c.finish(op, Outcome::Acquired { token: fencing_token }, Some(&id)).await;
                    return self.hold(&id, op, guid, fencing_token, lease_from_mono_ms).await;
                }
                Action::FailedToAcquire => return c.finish(op, Outcome::Refused("FailedToAcquire".into()), Some(&id)).await,
                // The drop-in reports an acquire's first error that was not a condition failure.
                Action::PassError => return c.finish(op, errors.report([&errors.first_other, &errors.last]), Some(&id)).await,
                Action::Abandoned => return c.finish(op, Outcome::Cancelled, Some(&id)).await,
                Action::PassErrorAndTakeBack(take_back) => {
                    self.take_back_in_background(take_back);
                    return c.finish(op, errors.report([&errors.first_other, &errors.last]), Some(&id)).await;
                }
                Action::AbandonedAndTakeBack(take_back) => {
                    self.take_back_in_background(take_back);
                    return c.finish(op, Outcome::Cancelled, Some(&id)).await;
                }
                other => {
                    let message = format!("c{} op{op}: the acquire machine answered {other:?}", c.me);
                    c.world.checker.lock().unwrap().note(message);
                    return c.finish(op, Outcome::Unknown("machine stalled".into()), Some(&id)).await;
                }
            };
        }
    }

    async fn hold(&self, id: &str, acquired_by: OpId, guid: Vec<u8>, fencing_token: Option<i64>, lease_from_mono_ms: i64) {
        let c = &self.c;
        let start = c.world.start;
        let lease = Duration::from_millis(self.lease_ms() as u64);
        let lease_end = |from_mono_ms: i64| start + Duration::from_millis(from_mono_ms as u64) + lease;
        let until = fencing_token.map(|_| lease_end(lease_from_mono_ms));
        let hold = Arc::new(Mutex::new(DlcHold { until, active: true }));
        let handle = c.world.checker.lock().unwrap().hold(c.me, id, Holder::Dlc(hold.clone()));
        let mode = match fencing_token {
            Some(token) => HeldMode::FailOpen {
                fencing_token: token,
                lease_duration_ms: self.lease_ms(),
                owner: format!("dlc-{}", c.me),
                heartbeat_period: Some(lease / 3),
                trust_local_time: false,
            },
            None => HeldMode::FailClosed,
        };
        let mut lock = HeldLock::new(self.table.clone(), Self::key(id), mode, guid, Some(lease_from_mono_ms));
        let release_at = Instant::now() + c.span();
        let mut release_op = None;
        let mut heartbeat_sent_ms = None;
        // The drop-in keeps one run (and its errors) from the first heartbeat until a release
        // that starts a run of its own; a release queued behind a heartbeat stays in its run.
        let mut errors = Errors::default();
        let mut sending: Option<(Sending, (bool, bool))> = None;
        let mut sleeping: Option<Instant> = None;
        let mut action = lock.start();
        loop {
            match action {
                Action::Send(request) => {
                    if release_op.is_none() && matches!(request, Request::PutItem(_)) {
                        heartbeat_sent_ms = Some(self.now().mono_ms);
                    }
                    let kind = kind_of(&request, false);
                    sending = Some((self.send(request), kind));
                }
                Action::Sleep(pause) => {
                    // Back to sleep after a heartbeat: it renewed the lease from its send.
                    if let Some(sent) = heartbeat_sent_ms.take() {
                        hold.lock().unwrap().until = Some(lease_end(sent));
                    }
                    sleeping = Some(Instant::now() + pause);
                }
                Action::Idle => {}
                Action::HeartbeatFailed => hold.lock().unwrap().active = false,
                Action::Released | Action::FailedToRelease | Action::PassError | Action::PassErrorAndTakeBack(_) => {
                    let outcome = match action {
                        Action::Released => Outcome::Done { version: None },
                        Action::FailedToRelease => Outcome::Refused("FailedToRelease".into()),
                        // A fail-closed release that stayed unknown: the drop-in reports its first
                        // write's error; any other release error as the last request got it.
                        Action::PassErrorAndTakeBack(take_back) => {
                            self.take_back_in_background(take_back);
                            errors.report([&errors.first_write, &errors.last])
                        }
                        _ => errors.report([&errors.last, &None]),
                    };
                    match release_op {
                        Some(op) => c.finish(op, outcome, None).await,
                        None => c.world.checker.lock().unwrap().note(format!("c{}: the held machine ended unasked: {outcome:?}", c.me)),
                    }
                    break;
                }
                other => {
                    c.world.checker.lock().unwrap().note(format!("c{}: the held machine answered {other:?}", c.me));
                    break;
                }
            }
            action = Action::Idle;
            if release_op.is_none() && (Instant::now() >= release_at || c.world.stopping()) {
                // A holder stops counting as one when it asks to release.
                c.world.checker.lock().unwrap().releasing(handle);
                release_op = Some(c.begin(OpKind::Release { id: id.to_owned(), lock: acquired_by }));
                heartbeat_sent_ms = None;
                action = lock.release(self.now());
                if !matches!(action, Action::Idle) {
                    sending = None; // only a sleep was pending: the release replaces it
                    sleeping = None;
                    errors = Errors::default();
                }
                continue;
            }
            if sending.is_none() && sleeping.is_none() && release_op.is_some() {
                c.world.checker.lock().unwrap().note(format!("c{}: the held machine stalled while releasing", c.me));
                break;
            }
            let release_wait = async {
                match release_op {
                    None => tokio::time::sleep_until(release_at).await,
                    Some(_) => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                answer = async { sending.as_mut().expect("guarded").0.as_mut().await }, if sending.is_some() => {
                    let kind = sending.take().expect("guarded").1;
                    let (input, error) = answer;
                    errors.saw(kind, error.as_ref());
                    action = lock.next(input, self.now());
                }
                _ = async { tokio::time::sleep_until(sleeping.expect("guarded")).await }, if sleeping.is_some() => {
                    sleeping = None;
                    action = lock.next(Input::Timer, self.now());
                }
                _ = release_wait => {}
                _ = c.world.stopped(), if release_op.is_none() => {}
            }
        }
        c.world.checker.lock().unwrap().unhold(handle);
    }
}
