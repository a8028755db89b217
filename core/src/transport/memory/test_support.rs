//! Requests and stores shared by the unit tests of the memory transport.

use std::fmt;

pub(crate) use crate::error::{Error, Result};
pub(crate) use crate::expr::{val, CompareOp, Condition, Name, Placeholder, Update};
pub(crate) use crate::request::{
    CreateTable, DeleteItem, GetItem, KeyAttribute, PutItem, Query, Request, Response, ReturnValues, TransactItem,
    TransactWrite, UpdateItem,
};
pub(crate) use crate::transport::{Transport, TransportExt};
pub(crate) use crate::value::{AttributeValue, Item, KeyType, MAX_ITEM_SIZE};

pub(crate) use super::MemoryTransport;

pub(crate) const TABLE: &str = "locks";

pub(crate) fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

pub(crate) fn n(text: &str) -> AttributeValue {
    AttributeValue::N(text.to_owned())
}

pub(crate) fn item(attributes: &[(&str, AttributeValue)]) -> Item {
    attributes.iter().map(|(name, value)| (name.to_string(), value.clone())).collect()
}

pub(crate) fn pk() -> Name {
    Name::aliased("#pk", "pk")
}

pub(crate) fn attr(name: &str) -> Name {
    Name { placeholder: format!("#{name}").into(), attribute: name.to_owned() }
}

pub(crate) fn value(value: AttributeValue) -> Placeholder {
    val(":v", value)
}

pub(crate) async fn store_with(sort_key: Option<KeyType>) -> MemoryTransport {
    let store = MemoryTransport::new();
    store
        .execute(Request::CreateTable(CreateTable {
            table: TABLE.into(),
            partition_key: KeyAttribute { name: "pk".into(), key_type: KeyType::S },
            sort_key: sort_key.map(|key_type| KeyAttribute { name: "sk".into(), key_type }),
        }))
        .await
        .unwrap();
    store
}

pub(crate) async fn store() -> MemoryTransport {
    store_with(None).await
}

pub(crate) fn put(item: Item) -> PutItem {
    PutItem {
        table: TABLE.into(),
        item,
        condition: None,
        return_values: ReturnValues::None,
        return_old_on_condition_failure: false,
    }
}

pub(crate) fn update(key: Item, update: Update) -> UpdateItem {
    UpdateItem {
        table: TABLE.into(),
        key,
        update,
        condition: None,
        return_values: ReturnValues::AllNew,
        return_old_on_condition_failure: false,
    }
}

pub(crate) fn delete(key: Item) -> DeleteItem {
    DeleteItem {
        table: TABLE.into(),
        key,
        condition: None,
        return_values: ReturnValues::None,
        return_old_on_condition_failure: false,
    }
}

pub(crate) async fn get(store: &MemoryTransport, key: Item) -> Option<Item> {
    store.get_item(GetItem { table: TABLE.into(), key, consistent_read: true }).await.unwrap()
}

pub(crate) fn assert_validation<T: fmt::Debug>(result: Result<T>, expected: &str) {
    match result {
        Err(Error::Validation { message, .. }) => {
            assert!(message.contains(expected), "{message:?} lacks {expected:?}")
        }
        other => panic!("expected a validation error containing {expected:?}, got {other:?}"),
    }
}

pub(crate) fn field(op: CompareOp, v: AttributeValue) -> Condition {
    Condition::Compare(attr("field"), op, value(v))
}

pub(crate) fn query(partition: &str) -> Query {
    Query {
        table: TABLE.into(),
        partition: (pk(), val(":pk", s(partition))),
        sort_key_prefix: None,
        filter: None,
        consistent_read: true,
        limit: None,
        exclusive_start_key: None,
    }
}
