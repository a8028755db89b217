//! The lock protocol on the memory transport with tokio's clock paused: every wait below is
//! measured exactly, and faults are injected at chosen requests.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Fault, Faulty};
use dynalease::protocol::clock::{SharedClock, TokioClock};
use dynalease::protocol::expr::{val, Name, Update};
use dynalease::kv::{KvConfig, KvStore, WriteOptions};
use dynalease::lock::{Lock, LockClient, LockConfig, LockId, LockStatus};
use dynalease::protocol::request::{DeleteItem, GetItem, PutItem, ReturnValues, UpdateItem};
use dynalease::table::{create_table, KeyAttribute, TableSpec};
use dynalease::transport::memory::MemoryTransport;
use dynalease::transport::{Transport, TransportExt};
use dynalease::{AttributeValue, Error, Item, KeyType, Value};
use tokio::time::Instant;

const LEASE: Duration = Duration::from_secs(10);

struct World {
    faulty: Faulty,
    transport: Arc<dyn Transport>,
    clock: SharedClock,
}

async fn world() -> World {
    let clock: SharedClock = Arc::new(TokioClock::starting_at(1_700_000_000_000));
    let memory = MemoryTransport::with_clock(clock.clone());
    create_table(&memory, &TableSpec::new("locks", "id")).await.unwrap();
    create_table(&memory, &TableSpec { sort_key: Some(KeyAttribute::new("sk", KeyType::S)), ..TableSpec::new("sorted", "id") }).await.unwrap();
    create_table(&memory, &TableSpec { sort_key: Some(KeyAttribute::new("sk", KeyType::S)), ..TableSpec::new("kvs", "pk") }).await.unwrap();
    let faulty = Faulty::new(Arc::new(memory));
    World { transport: Arc::new(faulty.clone()), faulty, clock }
}

/// A world, and a faulty transport of one client's own over its table.
async fn world_with_own_faults() -> (World, Faulty, Arc<dyn Transport>) {
    let w = world().await;
    let (faults, transport) = w.own_faults();
    (w, faults, transport)
}

/// Fail-closed locks on `locks`.
fn fail_closed() -> LockConfig {
    LockConfig { fail_closed: true, ..LockConfig::new("locks") }
}

impl World {
    fn client(&self, config: LockConfig) -> LockClient {
        LockClient::new(config, self.transport.clone()).unwrap().with_clock(self.clock.clone())
    }

    /// A fail-open client on `locks` with the given lease and heartbeat period.
    fn leases(&self, lease: Duration, heartbeat: Option<Duration>) -> LockClient {
        self.client(LockConfig { lease_duration: lease, heartbeat_period: Some(heartbeat.unwrap_or(Duration::ZERO)), ..LockConfig::new("locks") })
    }

    async fn item(&self, table: &str, id: &str) -> Option<Item> {
        let mut key = Item::new();
        key.insert("id".into(), AttributeValue::S(id.into()));
        self.transport.get_item(GetItem { table: table.into(), key, consistent_read: true }).await.unwrap()
    }

    /// Deletes lock `job`'s item unconditionally, as an operator would.
    async fn delete_job_by_hand(&self) {
        let mut key = Item::new();
        key.insert("id".into(), AttributeValue::S("job".into()));
        let delete = DeleteItem { table: "locks".into(), key, condition: None, return_values: ReturnValues::None, return_old_on_condition_failure: false };
        self.transport.delete_item(delete).await.unwrap();
    }

    /// The `leaseDurationMs` of lock `job` (1 once released).
    async fn job_lease_ms(&self) -> i64 {
        attr_n(&self.item("locks", "job").await.expect("the lock item"), "leaseDurationMs")
    }

    /// Writes a lock item the way another client would.
    async fn put_raw(&self, item: Item) {
        self.transport
            .put_item(PutItem { table: "locks".into(), item, condition: None, return_values: ReturnValues::None, return_old_on_condition_failure: false })
            .await
            .unwrap();
    }
}

fn attr_n(item: &Item, name: &str) -> i64 {
    item[name].as_i64().unwrap()
}

fn dlc_item(id: &str, guid: u8, token: Option<i64>, lease_ms: Option<i64>) -> Item {
    let mut item = Item::new();
    item.insert("id".into(), AttributeValue::S(id.into()));
    item.insert("owner".into(), AttributeValue::S("dynamodb-lock-client@0.7.3_other@host".into()));
    item.insert("guid".into(), AttributeValue::B(vec![guid; 64]));
    if let Some(token) = token {
        item.insert("fencingToken".into(), AttributeValue::int(token));
    }
    if let Some(lease) = lease_ms {
        item.insert("leaseDurationMs".into(), AttributeValue::int(lease));
    }
    item
}

#[tokio::test(start_paused = true)]
async fn a_held_lock_is_not_acquired_by_another_client() {
    let w = world().await;
    let a = w.leases(LEASE, Some(Duration::from_secs(3))).acquire("job", None).await.unwrap();
    let b = w.leases(LEASE, Some(Duration::from_secs(3)));
    assert!(b.try_acquire("job").await.unwrap().is_none());
    // A heartbeats, so B's 30 s wait (three leases) ends without the lock.
    let err = b.acquire("job", Some(Duration::from_secs(30))).await.unwrap_err();
    assert!(matches!(err, Error::LockNotAcquired { .. }), "{err}");
    assert!(err.to_string().contains("after waiting 30s"), "{err}");
    assert_eq!(a.status(), LockStatus::Held);
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_taken_only_after_a_full_lease_observed_by_the_waiter() {
    let w = world().await;
    let a = w.leases(LEASE, None).acquire("job", None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(9)).await;
    // A's lease ends at 10 s; B cannot know that without trusting clocks, so it waits 10 s
    // from its own first read.
    let b_started = Instant::now();
    let b = w.leases(LEASE, None).acquire("job", Some(Duration::from_secs(60))).await.unwrap();
    let waited = b_started.elapsed();
    assert!(waited >= LEASE, "took over after {waited:?}");
    assert!(waited < LEASE + Duration::from_millis(100), "took over late: {waited:?}");
    assert_eq!(b.fencing_token(), Some(2));
    assert!(a.is_lost());
    // The old holder learns its release came too late.
    assert!(matches!(a.release().await, Err(Error::LockLost { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_release_in_this_process_wakes_the_waiter_at_once() {
    let w = world().await;
    let a = w.leases(LEASE, Some(Duration::from_secs(3))).acquire("job", None).await.unwrap();
    let b = w.leases(LEASE, Some(Duration::from_secs(3)));
    let waiter = tokio::spawn(async move {
        let lock = b.acquire("job", Some(Duration::from_secs(60))).await.unwrap();
        (Instant::now(), lock)
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    a.release().await.unwrap();
    let released_at = Instant::now();
    let (acquired_at, lock) = waiter.await.unwrap();
    assert_eq!(acquired_at - released_at, Duration::ZERO);
    assert_eq!(lock.fencing_token(), Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_release_elsewhere_is_seen_within_the_poll_interval() {
    let w = world().await;
    w.put_raw(dlc_item("job", 9, Some(4), Some(10_000))).await;
    let b = w.leases(LEASE, None);
    let waiter = tokio::spawn(async move { (b.acquire("job", Some(Duration::from_secs(60))).await.unwrap(), Instant::now()) });
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Another process releases (dlc's release: lease 1 ms, same item).
    w.put_raw(dlc_item("job", 9, Some(4), Some(1))).await;
    let released_at = Instant::now();
    let (lock, acquired_at) = waiter.await.unwrap();
    assert!(acquired_at - released_at <= Duration::from_millis(50), "{:?}", acquired_at - released_at);
    assert_eq!(lock.fencing_token(), Some(5));
}

/// Starts `waiters` tasks acquiring `job` (held elsewhere for 10 minutes) for 60 s; returns
/// when each GetItem and UpdateItem was sent, from the start.
async fn one_minute_of_waiting(waiters: usize) -> (Vec<Duration>, Vec<Duration>) {
    let w = world().await;
    w.put_raw(dlc_item("job", 9, Some(4), Some(600_000))).await;
    let start = Instant::now();
    let tasks: Vec<_> = (0..waiters)
        .map(|_| {
            let client = w.leases(LEASE, None);
            tokio::spawn(async move { client.acquire("job", Some(Duration::from_secs(60))).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Err(Error::LockNotAcquired { .. })));
    }
    let since_start = |times: Vec<Instant>| times.into_iter().map(|at| at - start).collect();
    (since_start(w.faulty.sent("GetItem")), since_start(w.faulty.sent("UpdateItem")))
}

#[tokio::test(start_paused = true)]
async fn a_long_wait_reads_fast_at_first_then_about_once_a_second() {
    let (reads, writes) = one_minute_of_waiting(1).await;
    assert_eq!(writes, [Duration::ZERO], "one acquisition write, when the wait starts");
    // Never faster than the poll interval.
    assert!(reads.windows(2).all(|pair| pair[1] - pair[0] >= LockConfig::new("locks").poll_interval), "{reads:?}");
    // The first two seconds at the poll interval (a release there is seen within 50 ms)...
    assert_eq!(reads.iter().filter(|at| **at <= Duration::from_secs(2)).count(), 40);
    // ...then backing off: at most one read a second once the wait is a few seconds old.
    let late = reads.iter().filter(|at| **at > Duration::from_secs(5)).count();
    assert!((35..=55).contains(&late), "{late} reads in the last 55 s");
}

#[tokio::test(start_paused = true)]
async fn waiters_for_one_lock_in_a_process_share_one_poller() {
    let (one_reads, one_writes) = one_minute_of_waiting(1).await;
    let (many_reads, many_writes) = one_minute_of_waiting(25).await;
    // Each waiter's first look is its own try at the lock (one write as it starts: the lock may
    // have been freed since anyone here looked); from then on twenty-five waiters cost what one
    // does: one read schedule (the jitter differs between the runs by a read or two).
    assert_eq!(one_writes, [Duration::ZERO]);
    assert_eq!(many_writes, [Duration::ZERO; 25]);
    assert!(many_reads.len().abs_diff(one_reads.len()) <= 3, "{} reads for 25 waiters, {} for one", many_reads.len(), one_reads.len());
    assert!(many_reads.windows(2).all(|pair| pair[1] - pair[0] >= LockConfig::new("locks").poll_interval));
}

#[tokio::test(start_paused = true)]
async fn a_release_in_this_process_hands_over_to_each_local_waiter_in_turn_without_wasted_writes() {
    let w = world().await;
    let holder = w.leases(LEASE, Some(Duration::from_secs(3))).acquire("job", None).await.unwrap();
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let client = w.leases(LEASE, Some(Duration::from_secs(3)));
            tokio::spawn(async move {
                let lock = client.acquire("job", Some(Duration::from_secs(60))).await.unwrap();
                let token = lock.fencing_token();
                lock.release().await.unwrap();
                (Instant::now(), token)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    w.faulty.clear_log();
    holder.release().await.unwrap();
    let released_at = Instant::now();
    let mut tokens = Vec::new();
    for waiter in waiters {
        let (done_at, token) = waiter.await.unwrap();
        // Each release wakes the rest at once: no poll pause between the five holders.
        assert_eq!(done_at, released_at);
        tokens.push(token.unwrap());
    }
    tokens.sort();
    assert_eq!(tokens, [2, 3, 4, 5, 6]);
    // Each acquisition and release is one write; the waiters that lost a race learned it from
    // the winner's answer instead of writing themselves.
    assert_eq!(w.faulty.operations().iter().filter(|op| **op == "UpdateItem").count(), 1 + 5 * 2);
}

#[tokio::test(start_paused = true)]
async fn heartbeats_rotate_the_guid_and_keep_the_token() {
    let w = world().await;
    let lock = w.leases(Duration::from_secs(3), Some(Duration::from_secs(1))).acquire("job", None).await.unwrap();
    let before = w.item("locks", "job").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = w.item("locks", "job").await.unwrap();
    assert_ne!(before["guid"], after["guid"]);
    assert_eq!(attr_n(&before, "fencingToken"), attr_n(&after, "fencingToken"));
    assert!(attr_n(&after, "lockAcquiredTimeUnixMs") >= attr_n(&before, "lockAcquiredTimeUnixMs") + 1000);
    // Many leases later the lock is still held and nobody else can take it.
    let other = w.leases(Duration::from_secs(3), None);
    assert!(matches!(other.acquire("job", Some(Duration::from_secs(20))).await, Err(Error::LockNotAcquired { .. })));
    assert_eq!(lock.status(), LockStatus::Held);
}

#[tokio::test(start_paused = true)]
async fn a_lease_without_heartbeats_is_reported_lost_at_its_deadline() {
    let w = world().await;
    let lock = w.leases(Duration::from_secs(2), None).acquire("job", None).await.unwrap();
    let start = Instant::now();
    let reason = lock.wait_lost().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(reason.contains("no heartbeat"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_heartbeat_condition_reports_the_lease_lost() {
    let w = world().await;
    let lock = w.leases(LEASE, Some(Duration::from_secs(1))).acquire("job", None).await.unwrap();
    // Someone overwrites the item (an operator, or a client with a broken clock).
    w.put_raw(dlc_item("job", 7, Some(9), Some(10_000))).await;
    let start = Instant::now();
    let reason = lock.wait_lost().await.unwrap();
    assert!(start.elapsed() <= Duration::from_secs(1), "{:?}", start.elapsed());
    assert!(reason.contains("taken over"), "{reason}");
    assert!(lock.is_lost());
}

#[tokio::test(start_paused = true)]
async fn fencing_tokens_rise_across_release_and_takeover() {
    let w = world().await;
    let client = w.leases(Duration::from_secs(1), None);
    let first = client.acquire("job", None).await.unwrap();
    first.release().await.unwrap();
    let second = client.acquire("job", None).await.unwrap();
    // Not released: the next holder takes over after the lease.
    let third = w.leases(Duration::from_secs(1), None).acquire("job", Some(Duration::from_secs(5))).await.unwrap();
    assert_eq!([first.fencing_token(), second.fencing_token(), third.fencing_token()], [Some(1), Some(2), Some(3)]);
    // A released item stays, so the token keeps rising.
    third.release().await.unwrap();
    let item = w.item("locks", "job").await.unwrap();
    assert_eq!(attr_n(&item, "leaseDurationMs"), 1);
    assert_eq!(attr_n(&item, "fencingToken"), 3);
}

#[tokio::test(start_paused = true)]
async fn a_lost_response_to_acquire_still_yields_one_holder() {
    for fault in [Fault::LoseResponse, Fault::DropRequest] {
        let w = world().await;
        w.faulty.inject("UpdateItem", fault);
        let lock = w.leases(LEASE, Some(Duration::from_secs(3))).acquire("job", Some(Duration::from_secs(1))).await.unwrap();
        assert_eq!(w.faulty.pending_faults(), 0);
        assert_eq!(lock.fencing_token(), Some(1), "{fault:?}");
        let item = w.item("locks", "job").await.unwrap();
        assert_eq!(attr_n(&item, "fencingToken"), 1, "one acquisition, not two");
        assert!(w.leases(LEASE, None).try_acquire("job").await.unwrap().is_none());
    }
}

#[tokio::test(start_paused = true)]
async fn a_lost_heartbeat_response_does_not_lose_the_lock() {
    let w = world().await;
    let lock = w.leases(Duration::from_secs(3), Some(Duration::from_secs(1))).acquire("job", None).await.unwrap();
    w.faulty.inject("UpdateItem", Fault::LoseResponse);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(w.faulty.pending_faults(), 0, "the heartbeat was sent");
    // The next heartbeat settles the unknown one, and the lock lives on.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(lock.status(), LockStatus::Held);
    lock.release().await.unwrap();
    assert_eq!(attr_n(&w.item("locks", "job").await.unwrap(), "leaseDurationMs"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_release_response_still_releases() {
    let w = world().await;
    let lock = w.leases(LEASE, None).acquire("job", None).await.unwrap();
    w.faulty.inject("UpdateItem", Fault::LoseResponse);
    lock.release().await.unwrap();
    assert_eq!(lock.status(), LockStatus::Released);
    let next = w.leases(LEASE, None).try_acquire("job").await.unwrap().expect("released lock is free");
    assert_eq!(next.fencing_token(), Some(2));
}

#[tokio::test(start_paused = true)]
async fn release_waits_for_an_in_flight_heartbeat() {
    let w = world().await;
    let lock = w.leases(LEASE, Some(Duration::from_secs(1))).acquire("job", None).await.unwrap();
    // The next heartbeat is slow; the release arrives while it is in flight.
    w.faulty.inject("UpdateItem", Fault::Delay(Duration::from_millis(500)));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    lock.release().await.unwrap();
    assert_eq!(w.job_lease_ms().await, 1, "released, not left with a live lease");
}

#[tokio::test(start_paused = true)]
async fn trust_local_time_waits_the_full_lease_when_the_item_has_no_acquired_time() {
    let w = world().await;
    // dlc without trustLocalTime writes no lockAcquiredTimeUnixMs.
    w.put_raw(dlc_item("job", 1, Some(1), Some(5_000))).await;
    let client = w.client(LockConfig { lease_duration: LEASE, trust_local_time: true, ..LockConfig::new("locks") });
    let start = Instant::now();
    let lock = client.acquire("job", Some(Duration::from_secs(60))).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(5), "took over a live lease after {:?}", start.elapsed());
    assert_eq!(lock.fencing_token(), Some(2));
}

#[tokio::test(start_paused = true)]
async fn trust_local_time_shortens_the_wait_by_the_items_age() {
    let w = world().await;
    let mut item = dlc_item("job", 1, Some(1), Some(5_000));
    let acquired = w.clock.now_unix_ms() as i64 - 4_000;
    item.insert("lockAcquiredTimeUnixMs".into(), AttributeValue::int(acquired));
    w.put_raw(item).await;
    let client = w.client(LockConfig { lease_duration: LEASE, trust_local_time: true, ..LockConfig::new("locks") });
    let start = Instant::now();
    client.acquire("job", Some(Duration::from_secs(60))).await.unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_millis(1100), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn acquisitions_always_write_the_acquired_time() {
    let w = world().await;
    w.leases(LEASE, None).acquire("job", None).await.unwrap();
    let item = w.item("locks", "job").await.unwrap();
    assert_eq!(attr_n(&item, "lockAcquiredTimeUnixMs"), w.clock.now_unix_ms() as i64);
    assert_eq!(attr_n(&item, "leaseDurationMs"), 10_000);
    assert!(item["owner"].as_s().unwrap().starts_with("dynalease@"));
    assert_eq!(item["guid"].as_b().unwrap().len(), 64);
}

#[tokio::test(start_paused = true)]
async fn fail_open_waits_out_a_fail_closed_holder_instead_of_failing() {
    let w = world().await;
    w.put_raw(dlc_item("job", 3, None, None)).await;
    let client = w.leases(LEASE, None);
    let err = client.acquire("job", Some(Duration::from_secs(30))).await.unwrap_err();
    assert!(err.to_string().contains("fail-closed"), "{err}");
    // Once the fail-closed holder deletes its item, the token starts at 1.
    let closed = w.client(fail_closed());
    assert!(closed.try_acquire("job").await.unwrap().is_none());
    w.delete_job_by_hand().await;
    assert_eq!(client.try_acquire("job").await.unwrap().unwrap().fencing_token(), Some(1));
}

#[tokio::test(start_paused = true)]
async fn fail_closed_locks_are_held_until_released_and_deleted_on_release() {
    let w = world().await;
    let closed = w.client(fail_closed());
    let lock = closed.acquire("job", None).await.unwrap();
    assert_eq!(lock.fencing_token(), None);
    let item = w.item("locks", "job").await.unwrap();
    assert_eq!(item.keys().map(String::as_str).collect::<Vec<_>>(), ["guid", "id", "owner"]);
    // No lease: an hour later it is still held.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(closed.try_acquire("job").await.unwrap().is_none());
    lock.release().await.unwrap();
    assert!(w.item("locks", "job").await.is_none());
    assert!(closed.try_acquire("job").await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn lock_data_is_read_at_acquire_updated_while_held_and_written_at_release() {
    let w = world().await;
    let client = w.leases(LEASE, Some(Duration::from_secs(3)));
    let lock = client.acquire("job", None).await.unwrap();
    assert_eq!(lock.data(), None);
    let progress = Value::try_from(serde_json::json!({"done": 10})).unwrap();
    lock.update_data(progress.clone()).await.unwrap();
    assert_eq!(lock.data(), Some(progress));
    let finished = Value::try_from(serde_json::json!({"done": 20, "by": "a"})).unwrap();
    lock.release_with_data(Some(finished.clone())).await.unwrap();
    let next = client.acquire("job", None).await.unwrap();
    assert_eq!(next.data(), Some(finished));
    assert!(matches!(lock.update_data(Value::Null).await, Err(Error::LockLost { .. })));
}

#[tokio::test(start_paused = true)]
async fn sort_key_ids_are_separate_locks() {
    let w = world().await;
    let client = w.client(LockConfig { sort_key: Some("sk".into()), ..LockConfig::new("sorted") });
    let a = client.acquire(LockId::with_sort("tenant", "a"), None).await.unwrap();
    let b = client.acquire(LockId::with_sort("tenant", "b"), None).await.unwrap();
    assert_eq!((a.fencing_token(), b.fencing_token()), (Some(1), Some(1)));
    assert!(client.try_acquire(LockId::with_sort("tenant", "a")).await.unwrap().is_none());
    assert!(matches!(client.try_acquire("tenant").await, Err(Error::Config(_))));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_lock_stops_heartbeating_and_is_released_in_the_background() {
    for closed in [false, true] {
        let w = world().await;
        let config = if closed {
            fail_closed()
        } else {
            LockConfig { lease_duration: Duration::from_secs(2), heartbeat_period: Some(Duration::from_millis(500)), ..LockConfig::new("locks") }
        };
        let lock = w.client(config).acquire("job", None).await.unwrap();
        w.faulty.clear_log();
        drop(lock);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let release = if closed { "DeleteItem" } else { "UpdateItem" };
        assert_eq!(w.faulty.operations(), vec![release], "one release, then no heartbeats");
        // Free at once, not after a lease (or, fail-closed, never).
        assert!(w.leases(LEASE, None).try_acquire("job").await.unwrap().is_some(), "fail_closed={closed}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_fenced_write_is_rejected_after_takeover_and_lands_once_despite_lost_responses() {
    let w = world().await;
    let kv = KvStore::new(KvConfig::new("kvs", "counters"), w.transport.clone()).unwrap().with_clock(w.clock.clone());
    let holder = w.leases(Duration::from_secs(2), None).acquire("job", None).await.unwrap();
    w.faulty.inject("TransactWriteItems", Fault::LoseResponse);
    let first = kv.atomic_put("n", &Value::from(1), None, &WriteOptions::default().fence(&holder)).await.unwrap();
    assert_eq!(kv.get("n").await.unwrap().unwrap().version, first.version);
    // The holder stalls past its lease; another client takes over.
    let _next = w.leases(Duration::from_secs(2), None).acquire("job", Some(Duration::from_secs(5))).await.unwrap();
    let err = kv.put("n", &Value::from(2), &WriteOptions::default().fence(&holder)).await.unwrap_err();
    assert!(matches!(err, Error::LockLost { .. }), "{err}");
    assert_eq!(kv.get("n").await.unwrap().unwrap().value, Value::from(1));
}

#[tokio::test(start_paused = true)]
async fn a_holder_that_overslept_finds_its_fenced_write_refused() {
    let w = world().await;
    let kv = KvStore::new(KvConfig::new("kvs", "counters"), w.transport.clone()).unwrap().with_clock(w.clock.clone());
    let holder = w.leases(Duration::from_secs(2), None).acquire("job", None).await.unwrap();
    // Another client overwrites the item directly (as a dlc takeover would), without our lock
    // object noticing yet: the transaction's check on the lock item still refuses the write.
    let update = Update::default().set(Name::raw("guid"), val(":g", AttributeValue::B(vec![5; 64])));
    let mut key = Item::new();
    key.insert("id".into(), AttributeValue::S("job".into()));
    w.transport
        .update_item(UpdateItem { table: "locks".into(), key, update, condition: None, return_values: ReturnValues::None, return_old_on_condition_failure: false })
        .await
        .unwrap();
    assert_eq!(holder.status(), LockStatus::Held);
    let err = kv.put("n", &Value::from(2), &WriteOptions::default().fence(&holder)).await.unwrap_err();
    assert!(matches!(err, Error::LockLost { .. }), "{err}");
    assert!(kv.get("n").await.unwrap().is_none());
}

async fn _assert_lock_is_send(lock: Lock) -> impl Send {
    async move { lock.release().await }
}

#[tokio::test(start_paused = true)]
async fn a_fail_closed_waiter_on_a_released_lease_item_waits_without_spinning() {
    let w = world().await;
    w.put_raw(dlc_item("job", 2, Some(3), Some(1))).await;
    let closed = w.client(fail_closed());
    w.faulty.clear_log();
    let err = closed.acquire("job", Some(Duration::from_secs(1))).await.unwrap_err();
    assert!(matches!(err, Error::LockNotAcquired { .. }), "{err}");
    // Polling at most every 50 ms: about 20 requests in a second, not thousands.
    let requests = w.faulty.operations().len();
    assert!(requests <= 40, "{requests} requests in 1 s");
}

#[tokio::test(start_paused = true)]
async fn fail_closed_locks_take_sort_key_ids() {
    let w = world().await;
    let closed = w.client(LockConfig { sort_key: Some("sk".into()), fail_closed: true, ..LockConfig::new("sorted") });
    let a = closed.acquire(LockId::with_sort("tenant", "a"), None).await.unwrap();
    assert!(closed.try_acquire(LockId::with_sort("tenant", "a")).await.unwrap().is_none());
    let b = closed.try_acquire(LockId::with_sort("tenant", "b")).await.unwrap().expect("other sort key is free");
    a.release().await.unwrap();
    b.release().await.unwrap();
    assert!(closed.try_acquire(LockId::with_sort("tenant", "a")).await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_nobody_took_can_be_released_and_stays_reported_lost() {
    let w = world().await;
    let lock = w.leases(Duration::from_secs(2), None).acquire("job", None).await.unwrap();
    lock.wait_lost().await.unwrap();
    lock.release().await.unwrap();
    assert!(lock.is_released());
    assert!(lock.is_lost(), "the loss is not forgotten: {:?}", lock.status());
    lock.release().await.unwrap(); // twice is still fine
    assert_eq!(attr_n(&w.item("locks", "job").await.unwrap(), "leaseDurationMs"), 1);
    assert!(w.leases(LEASE, None).try_acquire("job").await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_resent_release_that_finds_a_new_holder_reports_success() {
    for closed in [false, true] {
        let w = world().await;
        let config = if closed { fail_closed() } else { LockConfig { lease_duration: LEASE, ..LockConfig::new("locks") } };
        let client = w.client(config);
        let lock = client.acquire("job", None).await.unwrap();
        // The release lands but its response is lost; before the resend, another client takes
        // the now free lock.
        let operation = if closed { "DeleteItem" } else { "UpdateItem" };
        w.faulty.inject(operation, Fault::LoseResponse);
        w.faulty.inject(operation, Fault::Delay(Duration::from_millis(100)));
        let other = client.clone();
        let taker = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            other.try_acquire("job").await.unwrap().expect("free after the first send")
        });
        lock.release().await.unwrap_or_else(|e| panic!("fail_closed={closed}: {e}"));
        assert_eq!(lock.status(), LockStatus::Released);
        let next = taker.await.unwrap();
        assert_eq!(next.status(), LockStatus::Held);
    }
}

// ---- Writes that land late: each test below failed before the engine accounted for it. ----

impl World {
    /// A transport of its own for one client, over the shared table, with its own faults.
    fn own_faults(&self) -> (Faulty, Arc<dyn Transport>) {
        let faulty = Faulty::new(self.transport.clone());
        (faulty.clone(), Arc::new(faulty))
    }

    fn client_over(&self, transport: Arc<dyn Transport>, config: LockConfig) -> LockClient {
        LockClient::new(config, transport).unwrap().with_clock(self.clock.clone())
    }

    fn kv_over(&self, transport: Arc<dyn Transport>) -> KvStore {
        KvStore::new(KvConfig::new("kvs", "counters"), transport).unwrap().with_clock(self.clock.clone())
    }
}

/// The next `operation` of `faulty` is cut off: `count` requests fail without being applied.
fn cut_off(faulty: &Faulty, operation: &'static str, count: usize) {
    for _ in 0..count {
        faulty.inject(operation, Fault::Fail);
    }
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_confirmed_by_its_resend_times_the_lease_from_its_first_send() {
    let w = world().await;
    let (holder_faults, holder_transport) = w.own_faults();
    let config = LockConfig { lease_duration: LEASE, ..LockConfig::new("locks") };
    let holder = w.client_over(holder_transport, config.clone()).acquire("job", None).await.unwrap();
    // The first heartbeat (at a third of the lease) lands, its answer is lost; the retry a
    // quarter period later finds its own guid. Then the holder is cut off.
    holder_faults.inject("UpdateItem", Fault::LoseResponse);
    let waiter = w.client(config);
    let waiting = tokio::spawn(async move { waiter.acquire("job", None).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(holder_faults.pending_faults(), 0, "the lost heartbeat was sent");
    cut_off(&holder_faults, "UpdateItem", 1000);
    let taken = waiting.await.unwrap();
    assert_eq!(taken.fencing_token(), Some(2));
    // The waiter waited a lease from first seeing the heartbeat's guid, which the holder wrote
    // with its first send: the holder's lease, timed from that send, has ended too.
    assert_ne!(holder.status(), LockStatus::Held, "two holders at {:?}", Instant::now());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_fail_closed_acquire_whose_write_lands_late_is_undone() {
    let (w, faults, transport) = world_with_own_faults().await;
    let closed = fail_closed();
    faults.inject("PutItem", Fault::LandLate(Duration::from_millis(1000)));
    let cancelled = tokio::time::timeout(Duration::from_millis(300), w.client_over(transport, closed.clone()).acquire("job", None)).await;
    assert!(cancelled.is_err(), "the caller gave up");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(w.item("locks", "job").await.is_some(), "the write landed after the caller left");
    tokio::time::sleep(common::CALL_TIMEOUT).await;
    let lock = w.client(closed).try_acquire("job").await.unwrap();
    assert!(lock.is_some(), "a fail-closed lock held by nobody was left behind");
}

#[tokio::test(start_paused = true)]
async fn an_acquire_that_gives_up_on_unknown_outcomes_takes_its_write_back() {
    for closed in [false, true] {
        let (w, faults, transport) = world_with_own_faults().await;
        let config = if closed { fail_closed() } else { LockConfig { lease_duration: LEASE, ..LockConfig::new("locks") } };
        let operation = if closed { "PutItem" } else { "UpdateItem" };
        for _ in 0..4 {
            faults.inject(operation, Fault::LoseResponse);
        }
        faults.inject("GetItem", Fault::DropRequest);
        let err = w.client_over(transport, config.clone()).acquire("job", None).await.unwrap_err();
        assert_eq!(err.kind(), dynalease::ErrorKind::OutcomeUnknown, "{err}");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let next = w.client(config).try_acquire("job").await.unwrap();
        assert!(next.is_some(), "fail_closed={closed}: the landed write still holds the lock for nobody");
    }
}

#[tokio::test(start_paused = true)]
async fn an_acquisition_landing_after_its_release_is_taken_back() {
    let (w, faults, transport) = world_with_own_faults().await;
    let config = fail_closed();
    // The first send sits in the network; the resend takes the lock.
    faults.inject("PutItem", Fault::LandLate(Duration::from_millis(1500)));
    let lock = w.client_over(transport, config.clone()).acquire("job", None).await.unwrap();
    lock.release().await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(w.item("locks", "job").await.is_some(), "the first send landed after the release");
    tokio::time::sleep(common::CALL_TIMEOUT).await;
    assert!(w.client(config).try_acquire("job").await.unwrap().is_some(), "taken back");
}

#[tokio::test(start_paused = true)]
async fn a_resent_unconditional_put_never_overwrites_a_later_write() {
    let (w, faults, transport) = world_with_own_faults().await;
    let a = w.kv_over(transport);
    let b = w.kv_over(w.transport.clone());
    // A's put lands, its answer is lost, and its resend is slow: B writes on top meanwhile.
    for operation in ["PutItem", "TransactWriteItems"] {
        faults.inject(operation, Fault::LoseResponse);
        faults.inject(operation, Fault::Delay(Duration::from_millis(100)));
    }
    let writer_b = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let seen = b.get("n").await.unwrap().expect("A's put landed");
        b.atomic_put("n", &Value::from(2), Some(&seen), &WriteOptions::default()).await.unwrap()
    });
    a.put("n", &Value::from(1), &WriteOptions::default()).await.unwrap();
    let written_b = writer_b.await.unwrap();
    assert_eq!(a.get("n").await.unwrap(), Some(written_b), "B's acknowledged write was overwritten");
}

#[tokio::test(start_paused = true)]
async fn a_compare_and_swap_that_landed_is_reported_as_done() {
    let (w, faults, transport) = world_with_own_faults().await;
    let a = w.kv_over(transport);
    let b = w.kv_over(w.transport.clone());
    let first = a.atomic_put("n", &Value::from(1), None, &WriteOptions::default()).await.unwrap();
    for operation in ["PutItem", "TransactWriteItems"] {
        faults.inject(operation, Fault::LoseResponse);
        faults.inject(operation, Fault::Delay(Duration::from_millis(100)));
    }
    let writer_b = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let seen = b.get("n").await.unwrap().unwrap();
        assert_eq!(seen.value, Value::from(2), "A's swap landed");
        b.atomic_put("n", &Value::from(3), Some(&seen), &WriteOptions::default()).await.unwrap()
    });
    // A counter's increment: told KeyModified, a retry loop would apply it twice.
    let swapped = a.atomic_put("n", &Value::from(2), Some(&first), &WriteOptions::default()).await;
    assert!(swapped.is_ok(), "{swapped:?}");
    assert_eq!(a.get("n").await.unwrap(), Some(writer_b.await.unwrap()));
}

#[tokio::test(start_paused = true)]
async fn a_release_resent_over_our_own_unconfirmed_heartbeat_does_not_claim_success_early() {
    let (w, faults, transport) = world_with_own_faults().await;
    let lock = w.client_over(transport, LockConfig { lease_duration: LEASE, ..LockConfig::new("locks") }).acquire("job", None).await.unwrap();
    // The first heartbeat lands with its answer lost; before its retry, the release's first
    // send is lost on the way, and its resend finds the heartbeat's guid.
    faults.inject("UpdateItem", Fault::LoseResponse);
    tokio::time::sleep(Duration::from_millis(3400)).await;
    faults.inject("UpdateItem", Fault::DropRequest);
    lock.release().await.unwrap();
    assert_eq!(w.job_lease_ms().await, 1, "released in name only: the item keeps a full lease");
}

#[tokio::test(start_paused = true)]
async fn a_failed_release_keeps_the_lock_renewed() {
    let (w, faults, transport) = world_with_own_faults().await;
    let config = LockConfig { lease_duration: Duration::from_secs(2), ..LockConfig::new("locks") };
    let lock = w.client_over(transport, config.clone()).acquire("job", None).await.unwrap();
    faults.inject("UpdateItem", Fault::Fail);
    assert!(lock.release().await.is_err());
    // Still ours: heartbeats go on, so nobody takes it over, and its status says so.
    let err = w.client(config).acquire("job", Some(Duration::from_secs(5))).await.unwrap_err();
    assert!(matches!(err, Error::LockNotAcquired { .. }), "{err}");
    assert_eq!(lock.status(), LockStatus::Held);
    lock.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_cut_off_mid_flight_that_lands_later_does_not_block_the_release() {
    let (w, faults, transport) = world_with_own_faults().await;
    let config = LockConfig { lease_duration: Duration::from_secs(3), heartbeat_period: Some(Duration::from_millis(2500)), ..LockConfig::new("locks") };
    let lock = w.client_over(transport, config).acquire("job", None).await.unwrap();
    // The heartbeat at 2.5 s is still waiting for its answer when the lease ends at 3 s: the
    // holder gives up on it and reports the loss. It lands at 3.5 s.
    faults.inject("UpdateItem", Fault::LandLate(Duration::from_millis(1000)));
    assert!(lock.wait_lost().await.is_some());
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The item carries the heartbeat's guid, which the holder recorded before sending it.
    lock.release().await.unwrap();
    assert_eq!(attr_n(&w.item("locks", "job").await.unwrap(), "leaseDurationMs"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_slow_fenced_write_does_not_hold_up_the_heartbeats() {
    let (w, faults, transport) = world_with_own_faults().await;
    let lock = w
        .client_over(transport.clone(), LockConfig { lease_duration: Duration::from_secs(2), ..LockConfig::new("locks") })
        .acquire("job", None)
        .await
        .unwrap();
    faults.inject("TransactWriteItems", Fault::Delay(Duration::from_secs(5)));
    let kv = w.kv_over(transport);
    kv.put("n", &Value::from(1), &WriteOptions::default().fence(&lock)).await.unwrap();
    assert_eq!(lock.status(), LockStatus::Held, "the lease ran out while the write was slow");
    assert_eq!(kv.get("n").await.unwrap().unwrap().value, Value::from(1));
}

/// An endpoint that ignores ReturnValuesOnConditionCheckFailure, and refuses to be spun on.
#[derive(Debug)]
struct NoOldItems {
    inner: Arc<dyn Transport>,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Transport for NoOldItems {
    async fn execute(&self, request: dynalease::protocol::request::Request) -> dynalease::Result<dynalease::protocol::request::Response> {
        let calls = self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(calls < 500, "spinning: {calls} requests");
        match self.inner.execute(request).await {
            Err(Error::ConditionalCheckFailed { .. }) => Err(Error::ConditionalCheckFailed { item: None }),
            other => other,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_without_old_items_on_failure_is_read_instead() {
    let w = world().await;
    let bare: Arc<dyn Transport> = Arc::new(NoOldItems { inner: w.transport.clone(), calls: Default::default() });
    let closed = fail_closed();
    let lock = w.client_over(bare.clone(), closed.clone()).acquire("job", None).await.unwrap();
    // A waiter paces its reads.
    let err = w.client_over(bare.clone(), closed.clone()).acquire("job", Some(Duration::from_secs(1))).await.unwrap_err();
    assert!(matches!(err, Error::LockNotAcquired { .. }), "{err}");
    // Someone deletes the lock by hand and another client takes it: our release must say lost.
    w.delete_job_by_hand().await;
    let _other = w.client(closed).acquire("job", None).await.unwrap();
    let err = lock.release().await.unwrap_err();
    assert!(matches!(err, Error::LockLost { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_release_retried_after_an_unknown_outcome_recognises_its_own_landing() {
    let (w, faults, transport) = world_with_own_faults().await;
    let lock = w.client_over(transport, LockConfig { lease_duration: LEASE, ..LockConfig::new("locks") }).acquire("job", None).await.unwrap();
    // Every send of the first release lands and loses its answer.
    for _ in 0..4 {
        faults.inject("UpdateItem", Fault::LoseResponse);
    }
    let err = lock.release().await.unwrap_err();
    assert_eq!(err.kind(), dynalease::ErrorKind::OutcomeUnknown, "{err}");
    lock.release().await.unwrap();
    assert_eq!(lock.status(), LockStatus::Released);
}

#[tokio::test(start_paused = true)]
async fn an_acquisition_answered_after_its_lease_ran_out_is_not_handed_out() {
    let (w, faults, transport) = world_with_own_faults().await;
    let config = LockConfig { lease_duration: Duration::from_secs(2), ..LockConfig::new("locks") };
    // The write lands and is answered 3 s after it was sent: by our clock its lease is over,
    // and another client may already have taken the lock with a higher token.
    faults.inject("UpdateItem", Fault::Delay(Duration::from_secs(3)));
    let late = w.client_over(transport, config.clone()).try_acquire("job").await.unwrap();
    assert!(late.is_none(), "handed out a lock that was already lost: {late:?}");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let next = w.client(config).try_acquire("job").await.unwrap().expect("taken back at once");
    assert_eq!(next.fencing_token(), Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_lock_taken_over_stays_lost_on_every_release() {
    let w = world().await;
    let config = LockConfig { lease_duration: Duration::from_secs(2), heartbeat_period: Some(Duration::ZERO), ..LockConfig::new("locks") };
    let lock = w.client(config.clone()).acquire("job", None).await.unwrap();
    let _taken = w.client(config).acquire("job", Some(Duration::from_secs(5))).await.unwrap();
    // Answered releases that found another holder prove nothing of ours landed.
    for _ in 0..2 {
        let err = lock.release().await.unwrap_err();
        assert!(matches!(err, Error::LockLost { .. }), "{err}");
    }
}

// Hand-off, elections, semaphores and deadlines under the fault model.

#[tokio::test(start_paused = true)]
async fn a_detach_settles_an_unconfirmed_heartbeat_so_the_handle_names_the_guid_in_the_item() {
    let (w, faults, transport) = world_with_own_faults().await;
    let config = LockConfig { lease_duration: Duration::from_secs(3), heartbeat_period: Some(Duration::from_secs(1)), ..LockConfig::new("locks") };
    let lock = w.client_over(transport, config.clone()).acquire("job", None).await.unwrap();
    // The first heartbeat sits in the network past its caller's deadline and lands later.
    faults.inject("UpdateItem", Fault::LandLate(Duration::from_millis(1500)));
    tokio::time::sleep(Duration::from_millis(2050)).await;
    assert_eq!(faults.pending_faults(), 0, "the heartbeat went out");
    let handle = lock.detach().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await; // the late heartbeat lands (its condition fails)
    let resumed = w.client(LockConfig { heartbeat_period: Some(Duration::ZERO), ..config }).resume(&handle).await.unwrap();
    assert_eq!(resumed.fencing_token(), Some(1));
    resumed.renew().await.unwrap();
    resumed.release().await.unwrap();
    assert_eq!(w.job_lease_ms().await, 1);
}

#[tokio::test(start_paused = true)]
async fn a_detach_after_a_release_of_unknown_outcome_never_hands_on_a_released_lock() {
    for lands in [true, false] {
        let (w, faults, transport) = world_with_own_faults().await;
        let config = LockConfig { lease_duration: LEASE, heartbeat_period: Some(Duration::ZERO), ..LockConfig::new("locks") };
        let lock = w.client_over(transport, config.clone()).acquire("job", None).await.unwrap();
        let fault = if lands { Fault::LoseResponse } else { Fault::DropRequest };
        for _ in 0..4 {
            faults.inject("UpdateItem", fault);
        }
        faults.inject("GetItem", Fault::DropRequest);
        assert!(lock.release().await.is_err(), "lands={lands}: the release's outcome is unknown");
        match lock.detach().await {
            Ok(handle) => {
                assert!(!lands, "a landed release was handed on");
                let resumed = w.client(config.clone()).resume(&handle).await.unwrap();
                resumed.release().await.unwrap();
            }
            Err(err) => {
                assert!(lands, "an unlanded release blocked the hand-off: {err}");
                assert!(matches!(err, Error::LockLost { .. }), "{err}");
            }
        }
        assert_eq!(w.job_lease_ms().await, 1, "lands={lands}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_fail_closed_detach_waits_out_an_acquisition_that_may_land_late() {
    let (w, faults, transport) = world_with_own_faults().await;
    // The first send sits in the network; the resend takes the lock.
    faults.inject("PutItem", Fault::LandLate(Duration::from_millis(1500)));
    let lock = w.client_over(transport, fail_closed()).acquire("job", None).await.unwrap();
    let started = Instant::now();
    let handle = lock.detach().await.unwrap();
    assert!(started.elapsed() > Duration::ZERO, "waited for the late-landing window");
    drop(lock);
    let resumed = w.client(fail_closed()).resume(&handle).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Nothing took back the resumed lock: it is still held, under the handle's guid.
    assert_eq!(resumed.status(), LockStatus::Held);
    assert!(w.client(fail_closed()).try_acquire("job").await.unwrap().is_none());
    resumed.release().await.unwrap();
    assert!(w.item("locks", "job").await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_resumed_lock_with_heartbeats_renews_at_once_and_keeps_the_lease() {
    let w = world().await;
    let lease = Duration::from_secs(3);
    let config = LockConfig { lease_duration: lease, heartbeat_period: Some(Duration::from_secs(1)), ..LockConfig::new("locks") };
    let handle = w.client(config.clone()).acquire("job", None).await.unwrap().detach().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await; // the hand-off took most of the lease
    let resumed = w.client(config.clone()).resume(&handle).await.unwrap();
    let waiter = w.client(config);
    assert!(matches!(waiter.acquire("job", Some(Duration::from_secs(20))).await, Err(Error::LockNotAcquired { .. })));
    assert_eq!(resumed.status(), LockStatus::Held);
    assert_ne!(resumed.handle(), handle);
}

#[tokio::test(start_paused = true)]
async fn a_resumed_lease_that_ran_out_unnoticed_is_renewed_or_refused_never_shared() {
    let w = world().await;
    let config = LockConfig { lease_duration: Duration::from_secs(2), heartbeat_period: Some(Duration::ZERO), ..LockConfig::new("locks") };
    let handle = w.client(config.clone()).acquire("job", None).await.unwrap().detach().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await; // nobody renewed it; nobody took it either
    let resumed = w.client(config.clone()).resume(&handle).await.unwrap();
    assert_eq!(resumed.status(), LockStatus::Held, "renewed on resume");
    assert!(w.client(config.clone()).try_acquire("job").await.unwrap().is_none());
    resumed.release().await.unwrap();

    // Taken over first: the resume is refused.
    let handle = w.client(config.clone()).acquire("job", None).await.unwrap().detach().await.unwrap();
    let taker = w.client(config.clone()).acquire("job", None).await.unwrap();
    assert!(matches!(w.client(config).resume(&handle).await, Err(Error::LockLost { .. })));
    assert_eq!(taker.status(), LockStatus::Held);
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_stops_renewing_learns_it_lost_before_a_new_term_begins() {
    let (w, faults, transport) = world_with_own_faults().await;
    let config = LockConfig { lease_duration: Duration::from_secs(3), heartbeat_period: Some(Duration::from_secs(1)), ..LockConfig::new("locks") };
    let leader = w.client_over(transport, config.clone()).election("job").unwrap();
    let term1 = leader.campaign(None, None).await.unwrap();
    // The leader's heartbeats never arrive (a partition, a paused process).
    cut_off(&faults, "UpdateItem", 1000);
    let candidate = w.client(config).election("job").unwrap();
    let term2 = candidate.campaign(None, Some(Duration::from_secs(30))).await.unwrap();
    assert!(term1.is_lost(), "two leaders at {:?}", Instant::now());
    assert_eq!(term2.fencing_token(), Some(2));
    assert_eq!(candidate.leader().await.unwrap().unwrap().term, 2);
}

#[tokio::test(start_paused = true)]
async fn watchers_of_an_election_in_one_process_share_one_read_per_interval() {
    let w = world().await;
    let election = w.leases(LEASE, None).election("job").unwrap();
    let mut watchers: Vec<_> = (0..10).map(|_| election.watch(Some(Duration::from_secs(1))).unwrap()).collect();
    w.faulty.clear_log();
    for watcher in &mut watchers {
        assert_eq!(watcher.next().await.unwrap(), None);
    }
    let lock = election.campaign(None, None).await.unwrap();
    let started = Instant::now();
    let seen = futures::future::join_all(watchers.iter_mut().map(|watcher| watcher.next())).await;
    assert!(seen.iter().all(|leader| leader.as_ref().unwrap().as_ref().unwrap().term == 1));
    assert!(started.elapsed() <= Duration::from_secs(1), "seen within one interval");
    assert_eq!(w.faulty.sent("GetItem").len(), 2, "one read for the first look, one for the change");
    lock.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_semaphore_waiter_reads_every_permit_in_one_request_per_poll() {
    let w = world().await;
    let client = w.leases(LEASE, Some(Duration::from_secs(3)));
    let sem = client.semaphore("pool", 5).unwrap();
    let mut permits = Vec::new();
    for _ in 0..5 {
        permits.push(sem.acquire(None).await.unwrap());
    }
    w.faulty.clear_log();
    let waiter = sem.clone();
    let waiting = tokio::spawn(async move { waiter.acquire(Some(Duration::from_secs(60))).await });
    tokio::time::sleep(Duration::from_secs(30)).await;
    let batches = w.faulty.sent("BatchGetItem");
    assert!(w.faulty.sent("GetItem").is_empty(), "the permits are read in batches only");
    // Like a lock's wait: fast for two seconds, then backing off to about once a second.
    let late = batches.iter().filter(|at| at.duration_since(batches[0]) >= Duration::from_secs(10)).count();
    assert!(late <= 20, "{late} reads in the last 20 s");
    // A release in this process wakes the waiter at once.
    let before = Instant::now();
    permits.pop().unwrap().release().await.unwrap();
    let permit = waiting.await.unwrap().unwrap();
    assert!(before.elapsed() < Duration::from_millis(50));
    assert_eq!(sem.holders().await.unwrap().len(), 5);
    drop(permit);
}

#[tokio::test(start_paused = true)]
async fn a_permit_write_with_a_lost_answer_is_resolved_and_never_overfills_the_semaphore() {
    for fault in [Fault::LoseResponse, Fault::DropRequest] {
        let (w, faults, transport) = world_with_own_faults().await;
        let sem = w.client_over(transport, LockConfig { lease_duration: LEASE, ..LockConfig::new("locks") }).semaphore("pool", 2).unwrap();
        faults.inject("UpdateItem", fault);
        let first = sem.acquire(Some(Duration::from_secs(5))).await.unwrap();
        let second = sem.acquire(Some(Duration::from_secs(5))).await.unwrap();
        assert_ne!(first.id(), second.id());
        assert!(sem.try_acquire().await.unwrap().is_none(), "{fault:?}: a third permit");
        assert_eq!(sem.holders().await.unwrap().len(), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn a_lock_past_its_deadline_refuses_fenced_writes_even_before_its_timer_runs() {
    let w = world().await;
    let kv = KvStore::new(KvConfig::new("kvs", "p"), w.transport.clone()).unwrap();
    let client = w.leases(LEASE, Some(Duration::from_secs(3)));
    let deadline = Instant::now() + Duration::from_secs(2);
    let lock = client.acquire_until("job", None, deadline).await.unwrap();
    kv.put("a", &Value::from(1), &WriteOptions::default().fence(&lock)).await.unwrap();
    tokio::time::sleep_until(deadline).await;
    // The status is checked on every use, so a write at the deadline is refused whichever task
    // runs first.
    assert!(matches!(kv.put("a", &Value::from(2), &WriteOptions::default().fence(&lock)).await, Err(Error::LockLost { .. })));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(w.job_lease_ms().await, 1, "released at its deadline");
    assert!(lock.is_lost(), "a deadline is reported as a loss, not a release");
}

#[tokio::test(start_paused = true)]
async fn a_semaphore_whose_own_item_write_is_lost_is_set_up_all_the_same() {
    for fault in [Fault::LoseResponse, Fault::DropRequest] {
        let (w, faults, transport) = world_with_own_faults().await;
        let sem = w.client_over(transport, LockConfig::new("locks")).semaphore("pool", 2).unwrap();
        faults.inject("PutItem", fault);
        let permit = sem.acquire(Some(Duration::from_secs(5))).await.unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(faults.pending_faults(), 0, "the create was sent");
        let item = w.item("locks", "pool").await.expect("the semaphore's own item");
        assert_eq!(attr_n(&item, "semaphorePermits"), 2);
        permit.release().await.unwrap();
    }
}
