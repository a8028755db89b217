//! The AWS SDK transport against DynamoDB Local.
//!
//! Needs `DYNALEASE_TEST_ENDPOINT`: run `scripts/dynamodb-local start` and export the endpoint it
//! prints. Every test uses its own table, so the tests run in parallel.

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use dynalease::protocol::expr::{val, Condition, Name, Update};
use dynalease::protocol::request::{
    CreateTable, DeleteItem, GetItem, KeyAttribute, PutItem, Query, Request, Response, ReturnValues, TableStatus,
    TimeToLive, TransactItem, TransactWrite, UpdateItem,
};
use dynalease::transport::native::{NativeConfig, NativeTransport};
use dynalease::transport::{Transport, TransportExt};
use dynalease::{AttributeValue, Error, Item, KeyType};

fn endpoint() -> String {
    std::env::var("DYNALEASE_TEST_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "DYNALEASE_TEST_ENDPOINT is not set. Start DynamoDB Local with `scripts/dynamodb-local start` \
             and export DYNALEASE_TEST_ENDPOINT=<the endpoint it prints>"
        )
    })
}

async fn transport() -> NativeTransport {
    let config = NativeConfig { endpoint_url: Some(endpoint()), ..NativeConfig::default() };
    NativeTransport::new(config).await.expect("transport for DynamoDB Local")
}

fn unique_table(purpose: &str) -> String {
    format!("dynalease-native-{purpose}-{:016x}", rand::random::<u64>())
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn item(pairs: &[(&str, AttributeValue)]) -> Item {
    pairs.iter().map(|(name, value)| (name.to_string(), value.clone())).collect()
}

/// Creates a table keyed by `pk` (string) and, when `sorted`, `sk` (string).
async fn create_table(transport: &NativeTransport, purpose: &str, sorted: bool) -> String {
    let table = unique_table(purpose);
    let request = CreateTable {
        table: table.clone(),
        partition_key: KeyAttribute { name: "pk".into(), key_type: KeyType::S },
        sort_key: sorted.then(|| KeyAttribute { name: "sk".into(), key_type: KeyType::S }),
    };
    match transport.execute(Request::CreateTable(request)).await.expect("CreateTable") {
        Response::Table(description) => assert_eq!(description.table, table),
        other => panic!("CreateTable answered {other:?}"),
    }
    table
}

async fn delete_table(transport: &NativeTransport, table: String) {
    let response = transport.execute(Request::DeleteTable { table }).await.expect("DeleteTable");
    assert_eq!(response, Response::TableDeleted);
}

fn put(table: &str, item: Item) -> PutItem {
    PutItem {
        table: table.to_owned(),
        item,
        condition: None,
        return_values: ReturnValues::None,
        return_old_on_condition_failure: false,
    }
}

fn get(table: &str, key: Item) -> GetItem {
    GetItem { table: table.to_owned(), key, consistent_read: true }
}

fn pk_absent() -> Condition {
    Condition::NotExists(Name::aliased("#pk", "pk"))
}

#[tokio::test]
async fn writes_honour_conditions_and_values_round_trip() {
    let transport = transport().await;
    let table = create_table(&transport, "items", false).await;
    let key = item(&[("pk", s("lock-1"))]);

    // Every attribute type survives the trip through DynamoDB.
    let every_type = AttributeValue::M(item(&[
        ("s", s("text")),
        ("n", AttributeValue::N("12345678901234567890.5".into())),
        ("b", AttributeValue::B(vec![0, 1, 255])),
        ("bool", AttributeValue::Bool(true)),
        ("null", AttributeValue::Null),
        ("l", AttributeValue::L(vec![s("x"), AttributeValue::int(1)])),
        ("ss", AttributeValue::Ss(vec!["a".into(), "b".into()])),
        ("ns", AttributeValue::Ns(vec!["1".into(), "2".into()])),
        ("bs", AttributeValue::Bs(vec![vec![1], vec![2]])),
    ]));
    let first = item(&[("pk", s("lock-1")), ("owner", s("alice")), ("data", every_type.clone())]);
    let created = PutItem { condition: Some(pk_absent()), ..put(&table, first.clone()) };
    assert_eq!(transport.put_item(created.clone()).await.unwrap(), None);
    assert_eq!(transport.get_item(get(&table, key.clone())).await.unwrap(), Some(first.clone()));

    // The same conditional put fails and reports the current item.
    let second = item(&[("pk", s("lock-1")), ("owner", s("bob"))]);
    let refused = PutItem { item: second.clone(), return_old_on_condition_failure: true, ..created.clone() };
    match transport.put_item(refused).await {
        Err(Error::ConditionalCheckFailed { item: Some(current) }) => assert_eq!(*current, first),
        other => panic!("expected ConditionalCheckFailed with the item, got {other:?}"),
    }
    // Without ALL_OLD there is no item.
    let refused = PutItem { item: second, ..created };
    assert!(matches!(transport.put_item(refused).await, Err(Error::ConditionalCheckFailed { item: None })));

    // A conditional update with a counter, returning the new item.
    let owner = Name::aliased("#owner", "owner");
    let update = UpdateItem {
        table: table.clone(),
        key: key.clone(),
        update: Update::default().set(owner.clone(), val(":new", s("carol"))).increment(
            Name::raw("version"),
            val(":zero", AttributeValue::int(0)),
            val(":one", AttributeValue::int(1)),
        ),
        condition: Some(Condition::eq(owner.clone(), val(":expected", s("alice")))),
        return_values: ReturnValues::AllNew,
        return_old_on_condition_failure: true,
    };
    let updated = transport.update_item(update.clone()).await.unwrap().expect("ALL_NEW item");
    assert_eq!(updated["owner"], s("carol"));
    assert_eq!(updated["version"], AttributeValue::int(1));
    assert_eq!(updated["data"], every_type);
    // Repeating it fails its condition and shows what is there now.
    match transport.update_item(update).await {
        Err(Error::ConditionalCheckFailed { item: Some(current) }) => assert_eq!(current["owner"], s("carol")),
        other => panic!("expected ConditionalCheckFailed, got {other:?}"),
    }

    // A conditional delete returning the old item.
    let delete = DeleteItem {
        table: table.clone(),
        key: key.clone(),
        condition: Some(Condition::eq(owner, val(":owner", s("carol")))),
        return_values: ReturnValues::AllOld,
        return_old_on_condition_failure: false,
    };
    let deleted = transport.delete_item(delete.clone()).await.unwrap().expect("ALL_OLD item");
    assert_eq!(deleted["version"], AttributeValue::int(1));
    assert_eq!(transport.get_item(get(&table, key)).await.unwrap(), None);
    assert!(matches!(transport.delete_item(delete).await, Err(Error::ConditionalCheckFailed { item: None })));

    delete_table(&transport, table).await;
}

#[tokio::test]
async fn query_returns_pages_of_a_prefix() {
    let transport = transport().await;
    let table = create_table(&transport, "query", true).await;
    for sk in ["a-1", "a-2", "a-3", "a-4", "a-5", "b-1"] {
        let row = item(&[("pk", s("p")), ("sk", s(sk)), ("even", AttributeValue::Bool(sk.ends_with(['2', '4'])))]);
        transport.put_item(put(&table, row)).await.unwrap();
    }
    transport.put_item(put(&table, item(&[("pk", s("other")), ("sk", s("a-1"))]))).await.unwrap();

    let query = Query {
        table: table.clone(),
        partition: (Name::aliased("#pk", "pk"), val(":pk", s("p"))),
        sort_key_prefix: Some((Name::aliased("#sk", "sk"), val(":prefix", s("a-")))),
        filter: None,
        consistent_read: true,
        limit: Some(2),
        exclusive_start_key: None,
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut next = query.clone();
    loop {
        let page = transport.query(next.clone()).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|i| i["sk"].as_s().unwrap().to_owned()));
        match page.last_evaluated_key {
            Some(key) => next.exclusive_start_key = Some(key),
            None => break,
        }
    }
    assert_eq!(seen, ["a-1", "a-2", "a-3", "a-4", "a-5"]);
    assert!(pages >= 3, "{pages} pages");

    // A filter narrows what a page returns.
    let filtered = Query {
        filter: Some(Condition::eq(Name::aliased("#even", "even"), val(":true", AttributeValue::Bool(true)))),
        limit: None,
        ..query
    };
    let page = transport.query(filtered).await.unwrap();
    let sks: Vec<_> = page.items.iter().map(|i| i["sk"].as_s().unwrap()).collect();
    assert_eq!(sks, ["a-2", "a-4"]);
    assert_eq!(page.last_evaluated_key, None);

    delete_table(&transport, table).await;
}

#[tokio::test]
async fn transactions_apply_or_report_cancellation_reasons() {
    let transport = transport().await;
    let table = create_table(&transport, "transact", false).await;
    transport.put_item(put(&table, item(&[("pk", s("guard")), ("open", AttributeValue::Bool(false))]))).await.unwrap();

    let guarded_put = |open: bool| TransactWrite {
        items: vec![
            TransactItem::ConditionCheck {
                table: table.clone(),
                key: item(&[("pk", s("guard"))]),
                condition: Condition::eq(Name::aliased("#open", "open"), val(":open", AttributeValue::Bool(open))),
            },
            TransactItem::Put(PutItem { condition: Some(pk_absent()), ..put(&table, item(&[("pk", s("new"))])) }),
        ],
        client_request_token: Some(format!("token-{open}-{:x}", rand::random::<u64>())),
    };

    match transport.transact_write(guarded_put(true)).await {
        Err(Error::TransactionCanceled { reasons }) => assert_eq!(reasons, ["ConditionalCheckFailed", "None"]),
        other => panic!("expected TransactionCanceled, got {other:?}"),
    }
    assert_eq!(transport.get_item(get(&table, item(&[("pk", s("new"))]))).await.unwrap(), None);

    transport.transact_write(guarded_put(false)).await.unwrap();
    assert!(transport.get_item(get(&table, item(&[("pk", s("new"))]))).await.unwrap().is_some());

    // Actions with an update and a delete, without a token.
    let update_and_delete = TransactWrite {
        items: vec![
            TransactItem::Update(UpdateItem {
                table: table.clone(),
                key: item(&[("pk", s("guard"))]),
                update: Update::default().set(Name::aliased("#open", "open"), val(":open", AttributeValue::Bool(true))),
                condition: None,
                return_values: ReturnValues::None,
                return_old_on_condition_failure: false,
            }),
            TransactItem::Delete(DeleteItem {
                table: table.clone(),
                key: item(&[("pk", s("new"))]),
                condition: None,
                return_values: ReturnValues::None,
                return_old_on_condition_failure: false,
            }),
        ],
        client_request_token: None,
    };
    transport.transact_write(update_and_delete).await.unwrap();
    let guard = transport.get_item(get(&table, item(&[("pk", s("guard"))]))).await.unwrap().unwrap();
    assert_eq!(guard["open"], AttributeValue::Bool(true));

    delete_table(&transport, table).await;
}

#[tokio::test]
async fn missing_tables_are_reported_as_such() {
    let transport = transport().await;
    let table = unique_table("missing");
    match transport.get_item(get(&table, item(&[("pk", s("x"))]))).await {
        Err(Error::TableNotFound { table: reported }) => assert_eq!(reported, table),
        other => panic!("expected TableNotFound, got {other:?}"),
    }
    let described = transport.execute(Request::DescribeTable { table: table.clone() }).await;
    assert!(matches!(described, Err(Error::TableNotFound { .. })), "{described:?}");
    let written = transport.put_item(put(&table, item(&[("pk", s("x"))]))).await;
    assert!(matches!(written, Err(Error::TableNotFound { .. })), "{written:?}");
}

#[tokio::test]
async fn invalid_requests_are_validation_errors() {
    let transport = transport().await;
    let table = create_table(&transport, "invalid", false).await;
    // The key names an attribute the table's key does not have.
    let result = transport.get_item(get(&table, item(&[("nope", s("x"))]))).await;
    assert!(matches!(result, Err(Error::Validation { operation: "GetItem", .. })), "{result:?}");
    delete_table(&transport, table).await;
}

#[tokio::test]
async fn tables_are_described_and_get_a_time_to_live() {
    let transport = transport().await;
    let table = create_table(&transport, "describe", true).await;

    let description = match transport.execute(Request::DescribeTable { table: table.clone() }).await.unwrap() {
        Response::Table(description) => description,
        other => panic!("DescribeTable answered {other:?}"),
    };
    assert_eq!(description.table, table);
    assert_eq!(description.status, TableStatus::Active);
    assert_eq!(description.partition_key, KeyAttribute { name: "pk".into(), key_type: KeyType::S });
    assert_eq!(description.sort_key, Some(KeyAttribute { name: "sk".into(), key_type: KeyType::S }));

    let ttl = Request::DescribeTimeToLive { table: table.clone() };
    assert_eq!(transport.execute(ttl.clone()).await.unwrap(), Response::TimeToLive(TimeToLive::Disabled));

    let enable = Request::UpdateTimeToLive { table: table.clone(), attribute: "expires".into(), enabled: true };
    match transport.execute(enable).await.unwrap() {
        Response::TimeToLive(TimeToLive::Enabling { attribute } | TimeToLive::Enabled { attribute }) => {
            assert_eq!(attribute, "expires")
        }
        other => panic!("UpdateTimeToLive answered {other:?}"),
    }
    match transport.execute(ttl).await.unwrap() {
        Response::TimeToLive(TimeToLive::Enabling { attribute } | TimeToLive::Enabled { attribute }) => {
            assert_eq!(attribute, "expires")
        }
        other => panic!("DescribeTimeToLive answered {other:?}"),
    }

    delete_table(&transport, table).await;
}

/// A transport with quick retries for endpoints that fail.
async fn impatient_transport(endpoint: String, call_timeout: Duration) -> NativeTransport {
    let config = NativeConfig {
        endpoint_url: Some(endpoint),
        call_timeout,
        max_retries: 2,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..NativeConfig::default()
    };
    NativeTransport::new(config).await.unwrap()
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Serves connections in a thread: reads the request, then either closes the connection at once
/// (`respond_never == false`) or keeps it open without answering.
fn misbehaving_server(respond_never: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buffer = [0u8; 64 * 1024];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.read(&mut buffer);
            if respond_never {
                open.push(stream);
            }
        }
    });
    endpoint
}

fn probe_key() -> Item {
    item(&[("pk", s("x"))])
}

#[tokio::test]
async fn refused_connections_are_network_errors_after_retries() {
    let transport = impatient_transport(format!("http://127.0.0.1:{}", closed_port()), Duration::from_secs(5)).await;
    let started = Instant::now();
    let read = transport.get_item(get("t", probe_key())).await;
    assert!(matches!(read, Err(Error::Network { operation: "GetItem", .. })), "{read:?}");
    // A write that never left is not ambiguous: it is retried like a read.
    let write = transport.put_item(put("t", probe_key())).await;
    assert!(matches!(write, Err(Error::Network { operation: "PutItem", .. })), "{write:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn writes_cut_off_after_sending_are_ambiguous() {
    let transport = impatient_transport(misbehaving_server(false), Duration::from_secs(5)).await;
    let write = transport.put_item(put("t", probe_key())).await;
    assert!(matches!(write, Err(Error::Ambiguous { operation: "PutItem", .. })), "{write:?}");
    let read = transport.get_item(get("t", probe_key())).await;
    assert!(matches!(read, Err(Error::Network { operation: "GetItem", .. })), "{read:?}");
}

#[tokio::test]
async fn writes_without_an_answer_in_time_are_ambiguous() {
    let transport = impatient_transport(misbehaving_server(true), Duration::from_millis(300)).await;
    let started = Instant::now();
    let write = transport.put_item(put("t", probe_key())).await;
    assert!(matches!(write, Err(Error::Ambiguous { operation: "PutItem", .. })), "{write:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    let read = transport.get_item(get("t", probe_key())).await;
    assert!(matches!(read, Err(Error::Network { operation: "GetItem", .. })), "{read:?}");
}
