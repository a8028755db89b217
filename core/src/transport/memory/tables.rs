//! Tables and their keys: creating, describing and deleting tables, time to live, the key
//! schema every request is checked against, and where items are kept in key order.

use std::collections::BTreeMap;

use bigdecimal::BigDecimal;

use crate::error::{Error, Result};
use crate::request::{Billing, CreateTable, KeyAttribute, TableDescription, TableStatus, TimeToLive};
use crate::value::{AttributeValue, Item, KeyType};

use super::validation::{check_table_name, parse_number, validation};
use super::writes::Outcome;
use super::State;

impl State {
    pub(super) fn create_table(&mut self, request: CreateTable) -> Result<TableDescription> {
        const OPERATION: &str = "CreateTable";
        check_table_name(OPERATION, &request.table)?;
        let key_attributes = std::iter::once(&request.partition_key).chain(request.sort_key.as_ref());
        if key_attributes.clone().any(|key| key.name.is_empty()) {
            return Err(validation(OPERATION, "Key attribute names must not be empty"));
        }
        if request.sort_key.as_ref().is_some_and(|sort| sort.name == request.partition_key.name) {
            return Err(validation(
                OPERATION,
                "Both the Hash Key and the Range Key element in the KeySchema have the same name",
            ));
        }
        if self.tables.contains_key(&request.table) {
            return Err(Error::Service {
                operation: OPERATION,
                code: "ResourceInUseException".into(),
                message: format!("Table already exists: {}", request.table),
            });
        }
        let table = Table::new(request.partition_key, request.sort_key);
        let description = table.describe(&request.table);
        self.tables.insert(request.table, table);
        Ok(description)
    }

    pub(super) fn delete_table(&mut self, name: &str) -> Result<()> {
        self.tables.remove(name).map(drop).ok_or_else(|| Error::TableNotFound { table: name.to_owned() })
    }

    pub(super) fn update_time_to_live(&mut self, name: &str, attribute: String, enabled: bool) -> Result<TimeToLive> {
        const OPERATION: &str = "UpdateTimeToLive";
        let table = self.table_mut(name)?;
        if attribute.is_empty() {
            return Err(validation(OPERATION, "TimeToLiveSpecification.AttributeName must not be empty"));
        }
        // DynamoDB refuses a specification that changes nothing rather than ignoring it.
        let next = match (&table.time_to_live, enabled) {
            (TimeToLive::Enabled { .. } | TimeToLive::Enabling { .. }, true) => {
                return Err(validation(OPERATION, "TimeToLive is already enabled"));
            }
            (TimeToLive::Disabled | TimeToLive::Disabling, false) => {
                return Err(validation(OPERATION, "TimeToLive is already disabled"));
            }
            (TimeToLive::Enabled { attribute: current } | TimeToLive::Enabling { attribute: current }, false)
                if *current != attribute =>
            {
                return Err(validation(
                    OPERATION,
                    format!("TimeToLive is active on a different AttributeName: current AttributeName is {current}"),
                ));
            }
            (_, true) => TimeToLive::Enabled { attribute },
            (_, false) => TimeToLive::Disabled,
        };
        table.time_to_live = next.clone();
        Ok(next)
    }
}

pub(super) struct Table {
    pub(super) partition_key: KeyAttribute,
    pub(super) sort_key: Option<KeyAttribute>,
    pub(super) time_to_live: TimeToLive,
    /// Items by partition, then by sort key (`None` in tables without one), in DynamoDB's order.
    pub(super) partitions: BTreeMap<KeyPart, BTreeMap<Option<KeyPart>, Item>>,
}

/// A key attribute's value, ordered as DynamoDB orders sort keys: strings and binaries by
/// bytes, numbers numerically (so `1` and `1.0` are the same key, as in DynamoDB).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum KeyPart {
    S(String),
    N(BigDecimal),
    B(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct PrimaryKey {
    pub(super) partition: KeyPart,
    pub(super) sort: Option<KeyPart>,
}

impl KeyPart {
    /// The key value of `value` for `attribute`, `None` if its type is not the schema's.
    pub(super) fn new(
        operation: &'static str,
        attribute: &KeyAttribute,
        value: &AttributeValue,
    ) -> Result<Option<KeyPart>> {
        let empty = |kind: &str| {
            validation(
                operation,
                format!(
                    "One or more parameter values are not valid. The AttributeValue for a key attribute \
                     cannot contain an empty {kind} value. Key: {}",
                    attribute.name
                ),
            )
        };
        Ok(Some(match (attribute.key_type, value) {
            (KeyType::S, AttributeValue::S(s)) if s.is_empty() => return Err(empty("string")),
            (KeyType::B, AttributeValue::B(b)) if b.is_empty() => return Err(empty("binary")),
            (KeyType::S, AttributeValue::S(s)) => KeyPart::S(s.clone()),
            (KeyType::B, AttributeValue::B(b)) => KeyPart::B(b.clone()),
            (KeyType::N, AttributeValue::N(n)) => KeyPart::N(parse_number(operation, n)?),
            _ => return Ok(None),
        }))
    }

    pub(super) fn starts_with(&self, prefix: &KeyPart) -> bool {
        match (self, prefix) {
            (KeyPart::S(s), KeyPart::S(p)) => s.starts_with(p.as_str()),
            (KeyPart::B(b), KeyPart::B(p)) => b.starts_with(p),
            _ => false,
        }
    }
}

fn key_type_descriptor(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::S => "S",
        KeyType::N => "N",
        KeyType::B => "B",
    }
}

impl Table {
    fn new(partition_key: KeyAttribute, sort_key: Option<KeyAttribute>) -> Table {
        Table { partition_key, sort_key, time_to_live: TimeToLive::Disabled, partitions: BTreeMap::new() }
    }

    pub(super) fn describe(&self, name: &str) -> TableDescription {
        TableDescription {
            table: name.to_owned(),
            status: TableStatus::Active,
            partition_key: self.partition_key.clone(),
            sort_key: self.sort_key.clone(),
            billing: Billing::OnDemand,
        }
    }

    fn key_schema(&self) -> impl Iterator<Item = &KeyAttribute> + Clone {
        std::iter::once(&self.partition_key).chain(self.sort_key.as_ref())
    }

    pub(super) fn is_key_attribute(&self, name: &str) -> bool {
        self.key_schema().any(|key| key.name == name)
    }

    /// The key a Get/Update/Delete names: exactly the schema's attributes with its types.
    pub(super) fn request_key(&self, operation: &'static str, key: &Item) -> Result<PrimaryKey> {
        let mismatch = || validation(operation, "The provided key element does not match the schema");
        if key.len() != self.key_schema().count() {
            return Err(mismatch());
        }
        let part = |attribute: &KeyAttribute| -> Result<KeyPart> {
            let value = key.get(&attribute.name).ok_or_else(mismatch)?;
            KeyPart::new(operation, attribute, value)?.ok_or_else(mismatch)
        };
        Ok(PrimaryKey { partition: part(&self.partition_key)?, sort: self.sort_key.as_ref().map(part).transpose()? })
    }

    /// The key of an item to put: its key attributes must be present with the schema's types.
    pub(super) fn item_key(&self, operation: &'static str, item: &Item) -> Result<PrimaryKey> {
        let part = |attribute: &KeyAttribute| -> Result<KeyPart> {
            let value = item.get(&attribute.name).ok_or_else(|| {
                validation(
                    operation,
                    format!(
                        "One or more parameter values were invalid: Missing the key {} in the item",
                        attribute.name
                    ),
                )
            })?;
            KeyPart::new(operation, attribute, value)?.ok_or_else(|| {
                validation(
                    operation,
                    format!(
                        "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                        attribute.name,
                        key_type_descriptor(attribute.key_type),
                        value.type_name()
                    ),
                )
            })
        };
        Ok(PrimaryKey { partition: part(&self.partition_key)?, sort: self.sort_key.as_ref().map(part).transpose()? })
    }

    pub(super) fn key_attributes_of(&self, item: &Item) -> Item {
        self.key_schema()
            .filter_map(|key| item.get_key_value(&key.name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    pub(super) fn get(&self, key: &PrimaryKey) -> Option<&Item> {
        self.partitions.get(&key.partition)?.get(&key.sort)
    }

    /// Applies an outcome; returns the item it replaced or removed.
    pub(super) fn commit(&mut self, key: PrimaryKey, outcome: Outcome) -> Option<Item> {
        match outcome {
            Outcome::Unchanged => None,
            Outcome::Store(item) => self.partitions.entry(key.partition).or_default().insert(key.sort, item),
            Outcome::Remove => {
                let partition = self.partitions.get_mut(&key.partition)?;
                let old = partition.remove(&key.sort);
                if partition.is_empty() {
                    self.partitions.remove(&key.partition);
                }
                old
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory::test_support::*;

    #[tokio::test]
    async fn keys_must_match_the_schema() {
        let store = store_with(Some(KeyType::N)).await;
        let schema = "The provided key element does not match the schema";
        let get = |key: Item| store.get_item(GetItem { table: TABLE.into(), key, consistent_read: false });
        assert_validation(get(item(&[("pk", s("a"))])).await, schema);
        assert_validation(get(item(&[("pk", s("a")), ("sk", s("1"))])).await, schema);
        assert_validation(get(item(&[("pk", s("a")), ("sk", n("1")), ("extra", s("x"))])).await, schema);
        assert_validation(get(item(&[("id", s("a")), ("sk", n("1"))])).await, schema);
        assert_validation(get(item(&[("pk", s("")), ("sk", n("1"))])).await, "empty string");
        assert_validation(get(item(&[("pk", s("a")), ("sk", n("one"))])).await, "numeric");
        assert_eq!(get(item(&[("pk", s("a")), ("sk", n("1"))])).await.unwrap(), None);

        assert_validation(store.put_item(put(item(&[("pk", s("a"))]))).await, "Missing the key sk");
        assert_validation(
            store.put_item(put(item(&[("pk", s("a")), ("sk", s("1"))]))).await,
            "Type mismatch for key sk",
        );
        assert_validation(store.delete_item(delete(item(&[("sk", n("1"))]))).await, schema);
    }

    #[tokio::test]
    async fn numeric_keys_are_equal_by_value() {
        let store = store_with(Some(KeyType::N)).await;
        store.put_item(put(item(&[("pk", s("a")), ("sk", n("1.0")), ("v", s("x"))]))).await.unwrap();
        let found = get(&store, item(&[("pk", s("a")), ("sk", n("1"))])).await.unwrap();
        assert_eq!(found["v"], s("x"));
    }

    #[tokio::test]
    async fn tables_are_created_once_described_and_deleted() {
        let store = store_with(Some(KeyType::B)).await;
        match store.execute(Request::DescribeTable { table: TABLE.into() }).await.unwrap() {
            Response::Table(description) => {
                assert_eq!(description.status, TableStatus::Active);
                assert_eq!(description.partition_key, KeyAttribute { name: "pk".into(), key_type: KeyType::S });
                assert_eq!(description.sort_key, Some(KeyAttribute { name: "sk".into(), key_type: KeyType::B }));
            }
            other => panic!("{other:?}"),
        }
        let again = CreateTable {
            table: TABLE.into(),
            partition_key: KeyAttribute { name: "pk".into(), key_type: KeyType::S },
            sort_key: None,
        };
        match store.execute(Request::CreateTable(again)).await {
            Err(Error::Service { operation: "CreateTable", code, .. }) => assert_eq!(code, "ResourceInUseException"),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.execute(Request::DeleteTable { table: TABLE.into() }).await.unwrap(), Response::TableDeleted);
        assert!(matches!(
            store
                .get_item(GetItem {
                    table: TABLE.into(),
                    key: item(&[("pk", s("a")), ("sk", AttributeValue::B(vec![1]))]),
                    consistent_read: true
                })
                .await,
            Err(Error::TableNotFound { .. })
        ));

        let bad_name = CreateTable {
            table: "x".into(),
            partition_key: KeyAttribute { name: "pk".into(), key_type: KeyType::S },
            sort_key: None,
        };
        assert_validation(store.execute(Request::CreateTable(bad_name)).await, "TableName");
    }

    #[tokio::test]
    async fn time_to_live_is_enabled_once_and_hides_nothing() {
        let store = store().await;
        let ttl =
            |enabled: bool| Request::UpdateTimeToLive { table: TABLE.into(), attribute: "expires".into(), enabled };
        let describe = || Request::DescribeTimeToLive { table: TABLE.into() };
        assert_eq!(store.execute(describe()).await.unwrap(), Response::TimeToLive(TimeToLive::Disabled));
        let enabled = Response::TimeToLive(TimeToLive::Enabled { attribute: "expires".into() });
        assert_eq!(store.execute(ttl(true)).await.unwrap(), enabled);
        assert_eq!(store.execute(describe()).await.unwrap(), enabled);
        assert_validation(store.execute(ttl(true)).await, "TimeToLive is already enabled");

        // Expired items stay readable: DynamoDB deletes them lazily, up to days later.
        let expired = item(&[("pk", s("a")), ("expires", n("1"))]);
        store.put_item(put(expired.clone())).await.unwrap();
        assert_eq!(get(&store, item(&[("pk", s("a"))])).await, Some(expired));

        assert_eq!(store.execute(ttl(false)).await.unwrap(), Response::TimeToLive(TimeToLive::Disabled));
        assert_validation(store.execute(ttl(false)).await, "already disabled");
    }
}
