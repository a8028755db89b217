//! Requests shared by the unit tests of the native transport.

pub(crate) use crate::error::Error;
pub(crate) use crate::expr::{Condition, Name};
pub(crate) use crate::request::{GetItem, PutItem, Request, ReturnValues, TransactItem, TransactWrite};
pub(crate) use crate::value::{AttributeValue, Item};

pub(crate) fn key() -> Item {
    [("pk".to_owned(), AttributeValue::S("k".into()))].into()
}

pub(crate) fn put_request() -> Request {
    Request::PutItem(PutItem {
        table: "locks".into(),
        item: key(),
        condition: Some(Condition::NotExists(Name::aliased("#pk", "pk"))),
        return_values: ReturnValues::None,
        return_old_on_condition_failure: true,
    })
}

pub(crate) fn get_request() -> Request {
    Request::GetItem(GetItem { table: "locks".into(), key: key(), consistent_read: true })
}

pub(crate) fn transaction(token: Option<&str>) -> Request {
    let check = TransactItem::ConditionCheck {
        table: "locks".into(),
        key: key(),
        condition: Condition::Exists(Name::aliased("#pk", "pk")),
    };
    Request::TransactWrite(TransactWrite { items: vec![check], client_request_token: token.map(str::to_owned) })
}
