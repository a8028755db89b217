//! One suite, two backends: every public operation must behave the same on the memory
//! transport and on DynamoDB Local (through the native AWS SDK transport).

mod common;

use std::sync::Arc;
use std::time::Duration;

use dynalease::protocol::clock::{Clock, SharedClock, SystemClock};
use dynalease::kv::{KvConfig, KvStore, WriteOptions};
use dynalease::lock::{Handle, LockClient, LockConfig, LockId, LockStatus};
use dynalease::table::{create_table, KeyAttribute, TableSpec};
use dynalease::transport::memory::MemoryTransport;
use dynalease::transport::native::{NativeConfig, NativeTransport};
use dynalease::transport::Transport;
use dynalease::{Error, KeyType, Value};

async fn memory() -> Arc<dyn Transport> {
    Arc::new(MemoryTransport::new())
}

async fn dynamodb_local() -> Arc<dyn Transport> {
    let config = NativeConfig { endpoint_url: Some(common::endpoint()), ..Default::default() };
    Arc::new(NativeTransport::new(config).await.expect("DynamoDB Local transport"))
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::memory().await).await } )*
        }
        mod on_dynamodb_local {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::dynamodb_local().await).await } )*
        }
    };
}

conformance!(
    kv_put_get_exists_delete,
    kv_atomic_put_creates_then_compares_and_swaps,
    kv_atomic_delete_checks_the_version,
    kv_list_returns_a_prefix_in_key_order_across_pages,
    kv_values_keep_their_native_types,
    kv_expired_keys_are_hidden,
    kv_rejects_bad_input_and_writes_nothing,
    kv_fenced_writes_need_the_lock,
    locks_cycle_with_rising_fencing_tokens,
    locks_exclude_each_other,
    an_unrenewed_lease_is_taken_over_after_it_ends,
    heartbeats_keep_a_lease_alive,
    fail_closed_locks_are_deleted_on_release,
    sort_key_lock_ids,
    lock_data_survives_release,
    lock_input_past_dynamodb_limits_fails_before_sending_and_the_lock_stays_held,
    create_table_is_idempotent_and_checks_the_schema,
    a_missing_table_is_named_in_the_error,
    a_lock_id_of_the_wrong_type_is_explained,
    a_kv_store_on_a_table_with_other_keys_is_explained,
    a_transaction_resent_with_its_token_is_applied_once,
    a_detached_lock_is_resumed_renewed_and_released_elsewhere,
    a_handle_no_longer_held_is_refused,
    fail_closed_locks_hand_off_too,
    an_election_has_one_leader_per_term_and_watchers_see_each_term,
    a_semaphore_never_has_more_holders_than_permits,
    a_semaphore_permit_left_by_a_dead_holder_is_taken_after_its_lease,
    semaphore_clients_must_agree_on_the_permits,
    a_lock_ends_itself_at_its_deadline,
    a_scan_pages_through_the_whole_table_and_filters_after_reading,
    an_operator_release_acts_only_on_the_holder_it_was_shown,
    clients_count_what_they_did,
);

async fn kv_store(transport: &Arc<dyn Transport>, partition: &str) -> KvStore {
    let table = common::table_name("kv");
    create_table(transport.as_ref(), &TableSpec { sort_key: Some(KeyAttribute::new("sk", KeyType::S)), ..TableSpec::new(&table, "pk") }).await.unwrap();
    KvStore::new(KvConfig::new(table, partition), transport.clone()).unwrap()
}

async fn lock_table(transport: &Arc<dyn Transport>) -> String {
    let table = common::table_name("locks");
    create_table(transport.as_ref(), &TableSpec::new(&table, "id")).await.unwrap();
    table
}

fn json(value: serde_json::Value) -> Value {
    Value::try_from(value).unwrap()
}

fn none() -> WriteOptions {
    WriteOptions::default()
}

async fn kv_put_get_exists_delete(transport: Arc<dyn Transport>) {
    let kv = kv_store(&transport, "agents").await;
    assert_eq!(kv.get("agents/1").await.unwrap(), None);
    assert!(!kv.exists("agents/1").await.unwrap());
    let written = kv.put("agents/1", &json(serde_json::json!({"state": "idle"})), &none()).await.unwrap();
    let read = kv.get("agents/1").await.unwrap().unwrap();
    assert_eq!(read, written);
    assert!(kv.exists("agents/1").await.unwrap());
    let rewritten = kv.put("agents/1", &Value::from("busy"), &none()).await.unwrap();
    assert_ne!(rewritten.version, written.version, "every write changes the version");
    assert!(kv.delete("agents/1", &none()).await.unwrap());
    assert!(!kv.delete("agents/1", &none()).await.unwrap());
    assert_eq!(kv.get("agents/1").await.unwrap(), None);
}

async fn kv_atomic_put_creates_then_compares_and_swaps(transport: Arc<dyn Transport>) {
    let kv = kv_store(&transport, "cas").await;
    let created = kv.atomic_put("k", &Value::from(1), None, &none()).await.unwrap();
    assert!(matches!(kv.atomic_put("k", &Value::from(9), None, &none()).await, Err(Error::KeyExists { .. })));
    let swapped = kv.atomic_put("k", &Value::from(2), Some(&created), &none()).await.unwrap();
    // The stale pair loses.
    assert!(matches!(kv.atomic_put("k", &Value::from(3), Some(&created), &none()).await, Err(Error::KeyModified { .. })));
    assert_eq!(kv.get("k").await.unwrap().unwrap(), swapped);
    kv.delete("k", &none()).await.unwrap();
    assert!(matches!(kv.atomic_put("k", &Value::from(4), Some(&swapped), &none()).await, Err(Error::KeyNotFound { .. })));
    assert!(matches!(kv.atomic_put("other", &Value::from(4), Some(&swapped), &none()).await, Err(Error::Config(_))));
}

async fn kv_atomic_delete_checks_the_version(transport: Arc<dyn Transport>) {
    let kv = kv_store(&transport, "cas").await;
    let first = kv.put("k", &Value::from(1), &none()).await.unwrap();
    let second = kv.put("k", &Value::from(2), &none()).await.unwrap();
    assert!(matches!(kv.atomic_delete("k", &first, &none()).await, Err(Error::KeyModified { .. })));
    kv.atomic_delete("k", &second, &none()).await.unwrap();
    assert!(matches!(kv.atomic_delete("k", &second, &none()).await, Err(Error::KeyNotFound { .. })));
}

async fn kv_list_returns_a_prefix_in_key_order_across_pages(transport: Arc<dyn Transport>) {
    let kv = kv_store(&transport, "list").await;
    // 70 values of 20 KB: DynamoDB returns at most 1 MB a page, so this needs two pages.
    let big = Value::String("x".repeat(20_000));
    for i in (0..70).rev() {
        kv.put(&format!("jobs/{i:03}"), &big, &none()).await.unwrap();
    }
    kv.put("other/1", &Value::from(1), &none()).await.unwrap();
    let jobs = kv.list("jobs/").await.unwrap();
    assert_eq!(jobs.len(), 70);
    assert!(jobs.windows(2).all(|w| w[0].key < w[1].key));
    assert_eq!(kv.list("").await.unwrap().len(), 71);
    assert!(kv.list("none/").await.unwrap().is_empty());
    // Another namespace in the same table sees none of it.
    let other = KvStore::new(KvConfig::new(kv.config().table.clone(), "elsewhere"), transport.clone()).unwrap();
    assert!(other.list("").await.unwrap().is_empty());
}

async fn kv_values_keep_their_native_types(transport: Arc<dyn Transport>) {
    let kv = kv_store(&transport, "types").await;
    let value = Value::Map(
        [
            ("bytes".to_owned(), Value::Bytes(vec![0, 255, 7])),
            ("big".to_owned(), json(serde_json::json!(12345678901234567890u64))),
            ("neg".to_owned(), Value::from(-42)),
            ("float".to_owned(), Value::float(2.5).unwrap()),
            ("list".to_owned(), json(serde_json::json!([true, null, "s", {"nested": [1]}]))),
        ]
        .into(),
    );
    kv.put("v", &value, &none()).await.unwrap();
    assert_eq!(kv.get("v").await.unwrap().unwrap().value, value);
    for scalar in [Value::Null, Value::Bool(false), Value::from(""), Value::Bytes(vec![]), Value::List(vec![])] {
        kv.put("s", &scalar, &none()).await.unwrap();
        assert_eq!(kv.get("s").await.unwrap().unwrap().value, scalar);
    }
}

/// A clock an hour ahead: what readers will see once TTLs have passed.
#[derive(Debug)]
struct Later;

impl Clock for Later {
    fn now_unix_ms(&self) -> u64 {
        SystemClock.now_unix_ms() + 3_600_000
    }
}

async fn kv_expired_keys_are_hidden(transport: Arc<dyn Transport>) {
    let kv = kv_store(&transport, "ttl").await;
    let pair = kv.put("short", &Value::from(1), &none().ttl(Duration::from_secs(60))).await.unwrap();
    kv.put("forever", &Value::from(2), &none()).await.unwrap();
    let expected = (SystemClock.now_unix_ms() / 1000 + 60) as i64;
    assert!((pair.expires.unwrap() - expected).abs() <= 1);
    assert!(kv.exists("short").await.unwrap());
    let later = kv.clone().with_clock(Arc::new(Later) as SharedClock);
    assert_eq!(later.get("short").await.unwrap(), None);
    assert_eq!(later.list("").await.unwrap().iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["forever"]);
    // An expired leftover (TTL deletes lazily) counts as absent for creation.
    later.atomic_put("short", &Value::from(3), None, &none()).await.unwrap();
    assert_eq!(later.get("short").await.unwrap().unwrap().value, Value::from(3));
}

async fn kv_rejects_bad_input_and_writes_nothing(transport: Arc<dyn Transport>) {
    let kv = kv_store(&transport, "bad").await;
    let huge = Value::Bytes(vec![0; 401 * 1024]);
    let err = kv.put("k", &huge, &none()).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)) && err.to_string().contains("400 KB"), "{err}");
    assert!(matches!(kv.put("", &Value::Null, &none()).await, Err(Error::Config(_))));
    assert!(matches!(kv.put("k", &Value::Null, &none().ttl(Duration::ZERO)).await, Err(Error::Config(_))));
    // DynamoDB's 32 levels, the item being the first: 31 lists around a value fit, 32 do not.
    let nested = |levels: usize| (0..levels).fold(Value::from(1), |inner, _| Value::List(vec![inner]));
    kv.put("deepest", &nested(31), &none()).await.unwrap();
    let err = kv.put("k", &nested(32), &none()).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)) && err.to_string().contains("nested"), "{err}");
    assert!(kv.delete("deepest", &none()).await.unwrap());
    assert!(kv.list("").await.unwrap().is_empty(), "nothing was written");
    assert!(matches!(KvStore::new(KvConfig { sort_key: "value".into(), ..KvConfig::new("kv-store", "p") }, transport.clone()), Err(Error::Config(_))));
}

async fn kv_fenced_writes_need_the_lock(transport: Arc<dyn Transport>) {
    let kv = kv_store(&transport, "fenced").await;
    let table = lock_table(&transport).await;
    let locks = LockClient::new(LockConfig { lease_duration: Duration::from_millis(400), heartbeat_period: Some(Duration::ZERO), ..LockConfig::new(&table) }, transport.clone()).unwrap();
    let lock = locks.acquire("counter", None).await.unwrap();
    let created = kv.atomic_put("n", &Value::from(1), None, &none().fence(&lock)).await.unwrap();
    kv.atomic_put("n", &Value::from(2), Some(&created), &none().fence(&lock)).await.unwrap();
    assert!(matches!(kv.atomic_put("n", &Value::from(3), Some(&created), &none().fence(&lock)).await, Err(Error::KeyModified { .. })));
    // Another client takes over after the lease; the old holder's writes are refused.
    let _taker = locks.acquire("counter", Some(Duration::from_secs(5))).await.unwrap();
    assert!(matches!(kv.put("n", &Value::from(9), &none().fence(&lock)).await, Err(Error::LockLost { .. })));
    assert!(matches!(kv.delete("n", &none().fence(&lock)).await, Err(Error::LockLost { .. })));
    assert_eq!(kv.get("n").await.unwrap().unwrap().value, Value::from(2));
}

async fn locks_cycle_with_rising_fencing_tokens(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let locks = LockClient::new(LockConfig::new(&table), transport.clone()).unwrap();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let lock = locks.acquire("job", Some(Duration::from_secs(5))).await.unwrap();
        tokens.push(lock.fencing_token().unwrap());
        lock.release().await.unwrap();
        assert_eq!(lock.status(), LockStatus::Released);
        lock.release().await.unwrap(); // twice is fine
    }
    assert_eq!(tokens, [1, 2, 3]);
    assert_eq!(locks.acquire("other", None).await.unwrap().fencing_token(), Some(1), "each id has its own tokens");
}

async fn locks_exclude_each_other(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let config = LockConfig { lease_duration: Duration::from_secs(2), ..LockConfig::new(&table) };
    let a = LockClient::new(config.clone(), transport.clone()).unwrap();
    let b = LockClient::new(config, transport.clone()).unwrap();
    let held = a.acquire("job", None).await.unwrap();
    assert!(b.try_acquire("job").await.unwrap().is_none());
    let err = b.acquire("job", Some(Duration::from_millis(300))).await.unwrap_err();
    assert!(matches!(err, Error::LockNotAcquired { .. }), "{err}");
    let waiter = tokio::spawn(async move { b.acquire("job", Some(Duration::from_secs(10))).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    held.release().await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap().fencing_token(), Some(2));
}

async fn an_unrenewed_lease_is_taken_over_after_it_ends(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let config = LockConfig { lease_duration: Duration::from_millis(300), heartbeat_period: Some(Duration::ZERO), ..LockConfig::new(&table) };
    let a = LockClient::new(config.clone(), transport.clone()).unwrap().acquire("job", None).await.unwrap();
    let started = std::time::Instant::now();
    let b = LockClient::new(config, transport.clone()).unwrap().acquire("job", Some(Duration::from_secs(10))).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(b.fencing_token(), Some(2));
    // A's deadline passed no later than B's takeover; its watch reports it asynchronously.
    let reason = tokio::time::timeout(Duration::from_secs(1), a.wait_lost()).await.expect("A learns of the loss");
    assert!(reason.is_some());
    assert!(matches!(a.release().await, Err(Error::LockLost { .. })));
}

async fn heartbeats_keep_a_lease_alive(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let config = LockConfig { lease_duration: Duration::from_millis(600), heartbeat_period: Some(Duration::from_millis(150)), ..LockConfig::new(&table) };
    let held = LockClient::new(config.clone(), transport.clone()).unwrap().acquire("job", None).await.unwrap();
    let other = LockClient::new(config, transport.clone()).unwrap();
    // Three leases long, the waiter never sees the same guid for a whole lease.
    assert!(matches!(other.acquire("job", Some(Duration::from_millis(1800))).await, Err(Error::LockNotAcquired { .. })));
    assert_eq!(held.status(), LockStatus::Held);
    held.release().await.unwrap();
}

async fn fail_closed_locks_are_deleted_on_release(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let locks = LockClient::new(LockConfig { fail_closed: true, ..LockConfig::new(&table) }, transport.clone()).unwrap();
    let lock = locks.acquire("job", None).await.unwrap();
    assert_eq!(lock.fencing_token(), None);
    assert!(locks.try_acquire("job").await.unwrap().is_none());
    assert!(matches!(locks.acquire("job", Some(Duration::from_millis(200))).await, Err(Error::LockNotAcquired { .. })));
    lock.release().await.unwrap();
    locks.try_acquire("job").await.unwrap().expect("free after release");
}

async fn sort_key_lock_ids(transport: Arc<dyn Transport>) {
    let table = common::table_name("sorted");
    create_table(transport.as_ref(), &TableSpec { sort_key: Some(KeyAttribute::new("sk", KeyType::N)), ..TableSpec::new(&table, "id") }).await.unwrap();
    let locks = LockClient::new(LockConfig { sort_key: Some("sk".into()), ..LockConfig::new(&table) }, transport.clone()).unwrap();
    let one = locks.acquire(LockId::with_sort("tenant", 1i64), None).await.unwrap();
    let two = locks.acquire(LockId::with_sort("tenant", 2i64), None).await.unwrap();
    assert!(locks.try_acquire(LockId::with_sort("tenant", 1i64)).await.unwrap().is_none());
    one.release().await.unwrap();
    two.release().await.unwrap();
    assert_eq!(locks.try_acquire(LockId::with_sort("tenant", 1i64)).await.unwrap().unwrap().fencing_token(), Some(2));
}

async fn lock_data_survives_release(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let locks = LockClient::new(LockConfig::new(&table), transport.clone()).unwrap();
    let lock = locks.acquire("job", None).await.unwrap();
    lock.update_data(json(serde_json::json!({"step": 1}))).await.unwrap();
    lock.release_with_data(Some(json(serde_json::json!({"step": 2})))).await.unwrap();
    assert_eq!(locks.acquire("job", None).await.unwrap().data(), Some(json(serde_json::json!({"step": 2}))));
}

async fn lock_input_past_dynamodb_limits_fails_before_sending_and_the_lock_stays_held(transport: Arc<dyn Transport>) {
    let table = common::table_name("limits");
    create_table(transport.as_ref(), &TableSpec { sort_key: Some(KeyAttribute::new("sk", KeyType::S)), ..TableSpec::new(&table, "id") }).await.unwrap();
    let config = LockConfig { sort_key: Some("sk".into()), lease_duration: Duration::from_millis(600), heartbeat_period: Some(Duration::from_millis(150)), ..LockConfig::new(&table) };
    let locks = LockClient::new(config, transport.clone()).unwrap();
    // Key values at DynamoDB's limits are accepted; one byte more fails here, not in DynamoDB.
    let widest = locks.acquire(LockId::with_sort("p".repeat(2048), "s".repeat(1024)), None).await.unwrap();
    widest.release().await.unwrap();
    for id in [LockId::with_sort("p".repeat(2049), "s"), LockId::with_sort("p", "s".repeat(1025))] {
        let err = locks.try_acquire(id).await.unwrap_err();
        assert!(matches!(err, Error::Config(_)) && err.to_string().contains("bytes"), "{err}");
    }

    let lock = locks.acquire(LockId::with_sort("job", "1"), None).await.unwrap();
    lock.update_data(Value::Bytes(vec![7; 390 * 1024])).await.unwrap();
    let too_big = Value::Bytes(vec![7; 400 * 1024]);
    let err = lock.update_data(too_big.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)) && err.to_string().contains("400 KB"), "{err}");
    let err = lock.release_with_data(Some(too_big)).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    // Still held and still heartbeating, two leases later, with the data it had.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(lock.status(), LockStatus::Held);
    assert!(locks.try_acquire(LockId::with_sort("job", "1")).await.unwrap().is_none());
    lock.release().await.unwrap();
    let next = locks.acquire(LockId::with_sort("job", "1"), None).await.unwrap();
    assert_eq!(next.data(), Some(Value::Bytes(vec![7; 390 * 1024])));
    next.release().await.unwrap();
}

async fn create_table_is_idempotent_and_checks_the_schema(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    create_table(transport.as_ref(), &TableSpec::new(&table, "id")).await.unwrap();
    let err = create_table(transport.as_ref(), &TableSpec { sort_key: Some(KeyAttribute::new("sk", KeyType::S)), ..TableSpec::new(&table, "key") }).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::TableSchema { .. }), "{err}");
    assert!(message.contains("partition key is \"id\"") && message.contains("no sort key"), "{message}");
    assert!(matches!(create_table(transport.as_ref(), &TableSpec::new("x", "id")).await, Err(Error::Config(_))));
}

async fn a_missing_table_is_named_in_the_error(transport: Arc<dyn Transport>) {
    let missing = common::table_name("missing");
    let locks = LockClient::new(LockConfig::new(&missing), transport.clone()).unwrap();
    let err = locks.try_acquire("job").await.unwrap_err();
    assert!(matches!(&err, Error::TableNotFound { table } if *table == missing), "{err}");
    let kv = KvStore::new(KvConfig::new(&missing, "p"), transport.clone()).unwrap();
    assert!(matches!(kv.get("k").await, Err(Error::TableNotFound { .. })));
}

async fn a_lock_id_of_the_wrong_type_is_explained(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let locks = LockClient::new(LockConfig::new(&table), transport.clone()).unwrap();
    let err = locks.try_acquire(7i64).await.unwrap_err();
    assert!(matches!(err, Error::TableSchema { .. }), "{err}");
    assert!(err.to_string().contains("key schema"), "{err}");
    let wrong_key = LockClient::new(LockConfig { partition_key: "name".into(), ..LockConfig::new(&table) }, transport.clone()).unwrap();
    let err = wrong_key.try_acquire("job").await.unwrap_err();
    assert!(matches!(err, Error::TableSchema { .. }), "{err:?}");
}

async fn a_kv_store_on_a_table_with_other_keys_is_explained(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await; // keyed by "id" alone
    let kv = KvStore::new(KvConfig::new(&table, "p"), transport.clone()).unwrap();
    let none = none();
    let attempts: [(&str, dynalease::Result<()>); 4] = [
        ("put", kv.put("k", &Value::Null, &none).await.map(drop)),
        ("atomic_put", kv.atomic_put("k", &Value::Null, None, &none).await.map(drop)),
        ("get", kv.get("k").await.map(drop)),
        ("list", kv.list("").await.map(drop)),
    ];
    for (operation, result) in attempts {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::TableSchema { .. }), "{operation}: {err:?}");
        assert!(err.to_string().contains("partition_key \"pk\""), "{operation}: {err}");
    }
}

/// The KV store's writes rely on this: a resend after a lost answer is answered with success
/// and not applied again, even after another client wrote on top.
async fn a_transaction_resent_with_its_token_is_applied_once(transport: Arc<dyn Transport>) {
    use dynalease::protocol::expr::{Condition, Name};
    use dynalease::protocol::request::{PutItem, ReturnValues, TransactItem, TransactWrite};
    use dynalease::transport::TransportExt;
    use dynalease::AttributeValue;
    let kv = kv_store(&transport, "tokens").await;
    let table = kv.config().table.clone();
    let put = |value: &str| {
        let mut item = dynalease::Item::new();
        item.insert("pk".into(), AttributeValue::S("tokens".into()));
        item.insert("sk".into(), AttributeValue::S("k".into()));
        item.insert("value".into(), AttributeValue::S(value.into()));
        item.insert("version".into(), AttributeValue::int(1));
        TransactItem::Put(PutItem {
            table: table.clone(),
            item,
            condition: Some(Condition::NotExists(Name::aliased("#pk", "pk"))),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: false,
        })
    };
    let token = format!("conformance-{:x}", dynalease::protocol::random::random::<u64>());
    let first = TransactWrite { items: vec![put("first")], client_request_token: Some(token.clone()) };
    transport.transact_write(first.clone()).await.unwrap();
    kv.put("k", &Value::from("later"), &none()).await.unwrap();
    // Its condition would fail now: success means it was recognised, not evaluated again.
    transport.transact_write(first).await.unwrap();
    assert_eq!(kv.get("k").await.unwrap().unwrap().value, Value::from("later"));
    let other = TransactWrite { items: vec![put("other")], client_request_token: Some(token) };
    let err = transport.transact_write(other).await.unwrap_err();
    assert!(matches!(&err, Error::Service { code, .. } if code.contains("IdempotentParameterMismatch")), "{err:?}");
}

fn no_heartbeats(table: &str, lease_ms: u64) -> LockConfig {
    LockConfig { lease_duration: Duration::from_millis(lease_ms), heartbeat_period: Some(Duration::ZERO), ..LockConfig::new(table) }
}

async fn a_detached_lock_is_resumed_renewed_and_released_elsewhere(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let kv = kv_store(&transport, "handoff").await;
    let first = LockClient::new(LockConfig::new(&table), transport.clone()).unwrap();
    let lock = first.acquire("job", None).await.unwrap();
    lock.update_data(json(serde_json::json!({"step": 1}))).await.unwrap();
    let handle = lock.detach().await.unwrap();
    assert_eq!(lock.status(), LockStatus::Detached);
    assert!(matches!(lock.release().await, Err(Error::LockLost { .. })), "a detached lock acts no more");
    assert!(matches!(lock.check(), Err(Error::LockLost { .. })));
    drop(lock); // releases nothing
    assert!(first.try_acquire("job").await.unwrap().is_none(), "still held after the detached object is gone");

    // Another client (as another process would) takes it up from the text alone.
    let text = handle.to_string();
    assert!(text.len() < 1024);
    let second = LockClient::new(no_heartbeats(&table, 10_000), transport.clone()).unwrap();
    let resumed = second.resume(&Handle::parse(&text).unwrap()).await.unwrap();
    assert_eq!(resumed.fencing_token(), Some(1));
    assert_eq!(resumed.data(), Some(json(serde_json::json!({"step": 1}))));
    assert_eq!(resumed.handle(), handle);
    kv.put("n", &Value::from(1), &none().fence(&resumed)).await.unwrap();
    resumed.renew().await.unwrap();
    assert_ne!(resumed.handle(), handle, "a renewal writes a new guid");
    assert!(matches!(second.resume(&handle).await, Err(Error::LockLost { .. })), "the old handle is spent");
    kv.put("n", &Value::from(2), &none().fence(&resumed)).await.unwrap();
    resumed.release().await.unwrap();
    assert_eq!(first.try_acquire("job").await.unwrap().unwrap().fencing_token(), Some(2));
}

async fn a_handle_no_longer_held_is_refused(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let locks = LockClient::new(no_heartbeats(&table, 300), transport.clone()).unwrap();
    let handle = locks.acquire("released", None).await.unwrap().detach().await.unwrap();
    locks.resume(&handle).await.unwrap().release().await.unwrap();
    let err = locks.resume(&handle).await.unwrap_err();
    assert!(matches!(err, Error::LockLost { .. }) && err.to_string().contains("released"), "{err}");

    // Taken over after its lease by a waiter that watched it.
    let handle = locks.acquire("taken", None).await.unwrap().detach().await.unwrap();
    let taker = locks.acquire("taken", Some(Duration::from_secs(10))).await.unwrap();
    let err = locks.resume(&handle).await.unwrap_err();
    assert!(matches!(err, Error::LockLost { .. }) && err.to_string().contains("taken over"), "{err}");
    taker.release().await.unwrap();

    // The wrong table or mode is refused before any request.
    let other = LockClient::new(LockConfig::new("another-table"), transport.clone()).unwrap();
    assert!(matches!(other.resume(&handle).await, Err(Error::Config(_))));
    let closed = LockClient::new(LockConfig { fail_closed: true, ..LockConfig::new(&table) }, transport.clone()).unwrap();
    let err = closed.resume(&handle).await.unwrap_err();
    assert!(err.to_string().contains("fail-open lock"), "{err}");
}

async fn fail_closed_locks_hand_off_too(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let locks = LockClient::new(LockConfig { fail_closed: true, ..LockConfig::new(&table) }, transport.clone()).unwrap();
    let handle = locks.acquire("job", None).await.unwrap().detach().await.unwrap();
    assert!(locks.try_acquire("job").await.unwrap().is_none());
    let resumed = locks.resume(&handle).await.unwrap();
    assert_eq!(resumed.fencing_token(), None);
    assert!(matches!(resumed.renew().await, Err(Error::Config(_))), "no lease to renew");
    resumed.release().await.unwrap();
    assert!(matches!(locks.resume(&handle).await, Err(Error::LockLost { .. })));
    locks.try_acquire("job").await.unwrap().expect("free after the resumed release");
}

async fn an_election_has_one_leader_per_term_and_watchers_see_each_term(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let config = |owner: &str| LockConfig { owner: owner.into(), ..LockConfig::new(&table) };
    let a = LockClient::new(config("a"), transport.clone()).unwrap().election("scheduler").unwrap();
    let b = LockClient::new(config("b"), transport.clone()).unwrap().election("scheduler").unwrap();
    assert_eq!(a.leader().await.unwrap(), None);
    let mut watch = a.watch(Some(Duration::from_millis(20))).unwrap();
    assert_eq!(watch.next().await.unwrap(), None);

    let term1 = a.campaign(Some(json(serde_json::json!({"addr": "10.0.0.1"}))), None).await.unwrap();
    let leader = b.leader().await.unwrap().expect("a leads");
    assert_eq!((leader.owner.as_str(), leader.term), ("a", 1));
    assert_eq!(leader.data, Some(json(serde_json::json!({"addr": "10.0.0.1"}))));
    assert_eq!(watch.next().await.unwrap(), Some(leader));
    assert!(matches!(b.campaign(None, Some(Duration::from_millis(200))).await, Err(Error::LockNotAcquired { .. })));

    let candidate = tokio::spawn(async move { b.campaign(None, Some(Duration::from_secs(10))).await });
    term1.release().await.unwrap(); // resign
    let term2 = candidate.await.unwrap().unwrap();
    assert_eq!(term2.fencing_token(), Some(2));
    // The watcher may see the gap between the terms; it sees term 2, with no data of term 1.
    let mut next = watch.next().await.unwrap();
    if next.is_none() {
        next = watch.next().await.unwrap();
    }
    let next = next.expect("b leads");
    assert_eq!((next.owner.as_str(), next.term, next.data), ("b", 2, None));
    term2.release().await.unwrap();
    assert_eq!(watch.next().await.unwrap(), None);

    let closed = LockClient::new(LockConfig { fail_closed: true, ..LockConfig::new(&table) }, transport.clone()).unwrap();
    assert!(matches!(closed.election("scheduler"), Err(Error::Config(_))));
}

async fn a_semaphore_never_has_more_holders_than_permits(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let clients: Vec<LockClient> = (0..3).map(|_| LockClient::new(LockConfig::new(&table), transport.clone()).unwrap()).collect();
    let holding = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let sem = clients[i % 3].semaphore("exports", 3).unwrap();
        let (holding, most) = (holding.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..2 {
                let permit = sem.acquire(Some(Duration::from_secs(60))).await.unwrap();
                let now = holding.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                holding.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                permit.release().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(most.load(std::sync::atomic::Ordering::SeqCst) <= 3);

    let sem = clients[0].semaphore("exports", 3).unwrap();
    let permits = [sem.acquire(None).await.unwrap(), sem.acquire(None).await.unwrap(), sem.acquire(None).await.unwrap()];
    assert!(sem.try_acquire().await.unwrap().is_none(), "all three are held");
    let mut holders: Vec<u32> = sem.holders().await.unwrap().iter().map(|h| h.permit).collect();
    holders.sort();
    assert_eq!(holders, [0, 1, 2]);
    permits[1].release().await.unwrap();
    assert_eq!(sem.holders().await.unwrap().len(), 2);
    let again = sem.try_acquire().await.unwrap().expect("one is free");
    assert_eq!(again.id(), permits[1].id(), "the freed permit");
}

async fn a_semaphore_permit_left_by_a_dead_holder_is_taken_after_its_lease(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let locks = LockClient::new(no_heartbeats(&table, 400), transport.clone()).unwrap();
    let sem = locks.semaphore("one", 1).unwrap();
    let first = sem.acquire(None).await.unwrap();
    let started = std::time::Instant::now();
    let second = sem.acquire(Some(Duration::from_secs(10))).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400), "not before the lease ran out");
    assert_eq!(second.fencing_token(), Some(2));
    assert!(first.is_lost());
}

async fn semaphore_clients_must_agree_on_the_permits(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let locks = LockClient::new(LockConfig::new(&table), transport.clone()).unwrap();
    locks.semaphore("pool", 2).unwrap().try_acquire().await.unwrap().unwrap();
    let err = locks.semaphore("pool", 5).unwrap().try_acquire().await.unwrap_err();
    assert!(matches!(err, Error::Config(_)) && err.to_string().contains("has 2 permits"), "{err}");
    locks.acquire("a-lock", None).await.unwrap();
    let err = locks.semaphore("a-lock", 2).unwrap().acquire(None).await.unwrap_err();
    assert!(err.to_string().contains("not a semaphore"), "{err}");
    for bad in [0, 101] {
        assert!(matches!(locks.semaphore("pool", bad), Err(Error::Config(_))));
    }
}

async fn a_lock_ends_itself_at_its_deadline(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let kv = kv_store(&transport, "bounded").await;
    let locks = LockClient::new(LockConfig::new(&table), transport.clone()).unwrap();
    let lock = locks.acquire_within("order/7", Some(Duration::ZERO), Duration::from_millis(1_300), Duration::from_millis(1_000)).await.unwrap();
    kv.put("n", &Value::from(1), &none().fence(&lock)).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), lock.wait_lost()).await.expect("ends at its deadline");
    assert!(reason.unwrap().contains("deadline"));
    assert!(matches!(kv.put("n", &Value::from(2), &none().fence(&lock)).await, Err(Error::LockLost { .. })));
    // Released in the background, not left to its lease.
    let next = locks.acquire("order/7", Some(Duration::from_secs(5))).await.unwrap();
    assert_eq!(next.fencing_token(), Some(2));
    let busy = locks.acquire_within("order/7", Some(Duration::ZERO), Duration::from_secs(60), Duration::from_secs(1)).await;
    assert!(matches!(busy, Err(Error::LockNotAcquired { .. })));
    let late = locks.acquire_within("other", None, Duration::from_millis(500), Duration::from_secs(1)).await.unwrap_err();
    assert!(late.to_string().contains("margin"), "{late}");
}

async fn a_scan_pages_through_the_whole_table_and_filters_after_reading(transport: Arc<dyn Transport>) {
    use dynalease::protocol::expr::{val, Condition, Name};
    use dynalease::protocol::request::{Billing, Scan};
    use dynalease::transport::TransportExt;
    let table = lock_table(&transport).await;
    let locks = LockClient::new(LockConfig::new(&table), transport.clone()).unwrap();
    for i in 0..7 {
        let lock = locks.acquire(format!("job-{i}").as_str(), None).await.unwrap();
        if i % 2 == 0 {
            lock.release().await.unwrap();
        } else {
            std::mem::forget(lock); // still held when scanned
        }
    }
    let released = Condition::eq(Name::raw("leaseDurationMs"), val(":one", dynalease::AttributeValue::int(1)));
    let (mut seen, mut matched, mut pages, mut start) = (0, Vec::new(), 0, None);
    loop {
        let scan = Scan { table: table.clone(), filter: Some(released.clone()), consistent_read: true, limit: Some(3), exclusive_start_key: start };
        let page = transport.scan(scan.clone()).await.unwrap();
        let unfiltered = transport.scan(Scan { filter: None, ..scan }).await.unwrap();
        seen += unfiltered.items.len();
        matched.extend(page.items.iter().map(|item| item["id"].as_s().unwrap().to_owned()));
        pages += 1;
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    matched.sort();
    assert_eq!(matched, ["job-0", "job-2", "job-4", "job-6"]);
    assert_eq!(seen, 7);
    assert!(pages >= 3, "{pages} pages of at most 3 items");
    let description = dynalease::table::describe(transport.as_ref(), &table).await.unwrap();
    assert_eq!(description.billing, Billing::OnDemand);
}

async fn an_operator_release_acts_only_on_the_holder_it_was_shown(transport: Arc<dyn Transport>) {
    use dynalease::lock::admin::{self, ForceOutcome, LockState};
    use dynalease::lock::LockTable;
    let table = lock_table(&transport).await;
    let description = dynalease::table::describe(transport.as_ref(), &table).await.unwrap();
    let lock_table = LockTable::of(&description);
    let locks = LockClient::new(no_heartbeats(&table, 10_000), transport.clone()).unwrap();
    let holder = locks.acquire("job", None).await.unwrap();
    let shown = admin::show(transport.as_ref(), &lock_table, &LockId::new("job")).await.unwrap().unwrap();
    assert_eq!(shown.state, LockState::Held);
    // The holder renews between the operator's look and the write: the write is refused.
    holder.renew().await.unwrap();
    assert!(matches!(admin::force_release(transport.as_ref(), &lock_table, &shown).await.unwrap(), ForceOutcome::Changed(Some(_))));
    assert_eq!(holder.status(), LockStatus::Held);
    let shown = admin::show(transport.as_ref(), &lock_table, &LockId::new("job")).await.unwrap().unwrap();
    assert_eq!(admin::force_release(transport.as_ref(), &lock_table, &shown).await.unwrap(), ForceOutcome::Released);
    assert!(matches!(holder.release().await, Err(Error::LockLost { .. })), "the holder finds it gone");
    // Released, then taken again: a stale collect deletes nothing; a fresh one does.
    let released = admin::show(transport.as_ref(), &lock_table, &LockId::new("job")).await.unwrap().unwrap();
    assert_eq!(released.state, LockState::Released);
    let again = locks.acquire("job", None).await.unwrap();
    assert!(!admin::collect_released(transport.as_ref(), &lock_table, &released).await.unwrap());
    again.release().await.unwrap();
    let released = admin::show(transport.as_ref(), &lock_table, &LockId::new("job")).await.unwrap().unwrap();
    assert!(admin::collect_released(transport.as_ref(), &lock_table, &released).await.unwrap());
    assert!(admin::show(transport.as_ref(), &lock_table, &LockId::new("job")).await.unwrap().is_none());
}

async fn clients_count_what_they_did(transport: Arc<dyn Transport>) {
    let table = lock_table(&transport).await;
    let kv = kv_store(&transport, "counted").await;
    let config = LockConfig { lease_duration: Duration::from_millis(600), heartbeat_period: Some(Duration::from_millis(100)), ..LockConfig::new(&table) };
    let a = LockClient::new(config.clone(), transport.clone()).unwrap();
    let b = LockClient::new(config, transport.clone()).unwrap();
    let lock = a.acquire("job", None).await.unwrap();
    assert!(b.try_acquire("job").await.unwrap().is_none());
    assert!(b.acquire("job", Some(Duration::from_millis(100))).await.is_err());
    tokio::time::sleep(Duration::from_millis(350)).await;
    lock.release().await.unwrap();
    let created = kv.atomic_put("n", &Value::from(1), None, &none()).await.unwrap();
    assert!(kv.atomic_put("n", &Value::from(1), None, &none()).await.is_err());
    kv.get("n").await.unwrap();
    kv.atomic_delete("n", &created, &none()).await.unwrap();

    let (sa, sb, skv) = (a.stats(), b.stats(), kv.stats());
    assert_eq!((sa.acquisitions, sa.releases), (1, 1));
    assert!(sa.heartbeats >= 2, "{sa:?}");
    assert_eq!(sa.acquire_wait.counts.iter().sum::<u64>(), 1);
    assert_eq!(sb.acquisitions, 0);
    assert_eq!(sb.acquire_timeouts, 1);
    assert!(sb.contended_attempts >= 2, "{sb:?}");
    assert_eq!((skv.kv_writes, skv.kv_deletes, skv.kv_reads, skv.cas_conflicts), (2, 1, 1, 1));
    assert!(sa.requests >= 4 && skv.requests >= 4);
    if format!("{transport:?}").starts_with("NativeTransport") {
        // DynamoDB reports capacity: a lock cycle writes, a failed create is charged a unit.
        assert!(sa.write_units >= 2.0 && skv.write_units >= 3.0 && skv.read_units > 0.0, "{sa:?} {skv:?}");
    } else {
        assert_eq!((sa.read_units, sa.write_units), (0.0, 0.0), "an in-process table consumes no capacity");
    }
}
