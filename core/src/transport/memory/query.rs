//! Query: the items of one partition in sort key order, optionally narrowed to a sort key
//! prefix and filtered, in pages cut by `Limit` and by DynamoDB's 1 MB. Scan: the same over the
//! whole table, partition by partition.

use std::ops::Bound;

use crate::error::Result;
use crate::expr::Condition;
use crate::request::{Query, QueryPage, Scan};
use crate::value::{item_size, Item, KeyType};

use super::conditions::holds;
use super::tables::{KeyPart, PrimaryKey, Table};
use super::validation::{check_condition, condition_names, incorrect_operand, validation};
use super::State;

/// DynamoDB stops a Query page once it has read 1 MB.
const QUERY_PAGE_BYTES: usize = 1024 * 1024;

impl State {
    pub(super) fn query(&self, request: &Query) -> Result<QueryPage> {
        const OPERATION: &str = "Query";
        let table = self.table(&request.table)?;
        let (partition, prefix) = table.key_condition(OPERATION, request)?;
        if let Some(filter) = &request.filter {
            check_condition(OPERATION, "FilterExpression", filter)?;
            table.check_filter(OPERATION, filter)?;
        }
        let limit = match request.limit {
            Some(0) => return Err(validation(OPERATION, "Limit must be greater than or equal to 1")),
            Some(limit) => usize::try_from(limit).unwrap_or(usize::MAX),
            None => usize::MAX,
        };
        let start = match &request.exclusive_start_key {
            Some(key) => Bound::Excluded(table.start_key(OPERATION, key, &partition, prefix.as_ref())?),
            None => Bound::Unbounded,
        };

        let Some(items) = table.partitions.get(&partition) else {
            return Ok(QueryPage { items: Vec::new(), last_evaluated_key: None });
        };
        let in_range = items.range((start, Bound::Unbounded)).filter(|(sort, _)| {
            prefix.as_ref().is_none_or(|prefix| sort.as_ref().is_some_and(|s| s.starts_with(prefix)))
        });
        Ok(table.page(in_range.map(|(_, item)| item), request.filter.as_ref(), limit))
    }
}

impl State {
    pub(super) fn scan(&self, request: &Scan) -> Result<QueryPage> {
        const OPERATION: &str = "Scan";
        let table = self.table(&request.table)?;
        if let Some(filter) = &request.filter {
            check_condition(OPERATION, "FilterExpression", filter)?;
        }
        let limit = match request.limit {
            Some(0) => return Err(validation(OPERATION, "Limit must be greater than or equal to 1")),
            Some(limit) => usize::try_from(limit).unwrap_or(usize::MAX),
            None => usize::MAX,
        };
        let start: Option<PrimaryKey> = match &request.exclusive_start_key {
            Some(key) => Some(table.request_key(OPERATION, key).map_err(|_| {
                validation(OPERATION, "The provided starting key is invalid: The provided key element does not match the schema")
            })?),
            None => None,
        };
        let all = table.partitions.iter().flat_map(|(partition, items)| {
            items.iter().map(move |(sort, item)| (PrimaryKey { partition: partition.clone(), sort: sort.clone() }, item))
        });
        let after_start = all.filter(|(key, _)| start.as_ref().is_none_or(|start| key > start)).map(|(_, item)| item);
        Ok(table.page(after_start, request.filter.as_ref(), limit))
    }
}

impl Table {
    /// One page of `items` (in key order from where the request starts): `Limit` and the 1 MB
    /// page count the items read, before `filter` drops any. DynamoDB does not look ahead: a
    /// page that stops at the limit always carries a LastEvaluatedKey, even when no item follows.
    fn page<'a>(&self, items: impl Iterator<Item = &'a Item>, filter: Option<&Condition>, limit: usize) -> QueryPage {
        let mut page = QueryPage { items: Vec::new(), last_evaluated_key: None };
        let (mut evaluated, mut bytes) = (0, 0);
        for item in items {
            evaluated += 1;
            bytes += item_size(item);
            if filter.is_none_or(|filter| holds(filter, Some(item))) {
                page.items.push(item.clone());
            }
            if evaluated >= limit || bytes >= QUERY_PAGE_BYTES {
                page.last_evaluated_key = Some(self.key_attributes_of(item));
                break;
            }
        }
        page
    }

    /// The partition and optional sort key prefix of a Query, checked against the schema.
    fn key_condition(&self, operation: &'static str, query: &Query) -> Result<(KeyPart, Option<KeyPart>)> {
        let (name, value) = &query.partition;
        if name.attribute != self.partition_key.name {
            return Err(validation(
                operation,
                format!("Query condition missed key schema element: {}", self.partition_key.name),
            ));
        }
        let type_mismatch = || {
            validation(
                operation,
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            )
        };
        let partition = KeyPart::new(operation, &self.partition_key, &value.value)?.ok_or_else(type_mismatch)?;
        let Some((name, value)) = &query.sort_key_prefix else {
            return Ok((partition, None));
        };
        let sort_key = self
            .sort_key
            .as_ref()
            .filter(|sort| sort.name == name.attribute)
            .ok_or_else(|| validation(operation, "Query key condition not supported"))?;
        if sort_key.key_type == KeyType::N {
            return Err(incorrect_operand(operation, "KeyConditionExpression", "begins_with", &value.value));
        }
        let prefix = KeyPart::new(operation, sort_key, &value.value)?.ok_or_else(type_mismatch)?;
        Ok((partition, Some(prefix)))
    }

    /// The sort key a Query resumes after; the start key must lie inside the query's range.
    fn start_key(
        &self,
        operation: &'static str,
        key: &Item,
        partition: &KeyPart,
        prefix: Option<&KeyPart>,
    ) -> Result<Option<KeyPart>> {
        let start = self.request_key(operation, key).map_err(|_| {
            validation(
                operation,
                "The provided starting key is invalid: The provided key element does not match the schema",
            )
        })?;
        if start.partition != *partition {
            return Err(validation(
                operation,
                "The provided starting key is outside query boundaries based on provided conditions",
            ));
        }
        if let (Some(prefix), Some(sort)) = (prefix, &start.sort) {
            if !sort.starts_with(prefix) {
                return Err(validation(operation, "The provided starting key does not match the range key predicate"));
            }
        }
        Ok(start.sort)
    }

    /// A Query's filter may only name non-key attributes.
    fn check_filter(&self, operation: &'static str, filter: &Condition) -> Result<()> {
        match condition_names(filter).into_iter().find(|name| self.is_key_attribute(&name.attribute)) {
            Some(name) => Err(validation(
                operation,
                format!(
                    "Filter Expression can only contain non-primary key attributes: Primary key attribute: {}",
                    name.attribute
                ),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory::test_support::*;

    fn sort_keys(page: &QueryPage) -> Vec<AttributeValue> {
        page.items.iter().map(|item| item["sk"].clone()).collect()
    }

    async fn store_of(sort_type: KeyType, sorts: &[AttributeValue]) -> MemoryTransport {
        let store = store_with(Some(sort_type)).await;
        for (i, sort) in sorts.iter().enumerate() {
            let index = AttributeValue::int(i as i64);
            store.put_item(put(item(&[("pk", s("p")), ("sk", sort.clone()), ("i", index)]))).await.unwrap();
            store.put_item(put(item(&[("pk", s("other")), ("sk", sort.clone())]))).await.unwrap();
        }
        store
    }

    #[tokio::test]
    async fn query_orders_numbers_numerically_and_strings_by_bytes() {
        let store = store_of(KeyType::N, &[n("10"), n("9"), n("-1"), n("2.5")]).await;
        let page = store.query(query("p")).await.unwrap();
        assert_eq!(sort_keys(&page), vec![n("-1"), n("2.5"), n("9"), n("10")]);
        assert_eq!(page.last_evaluated_key, None);

        let store = store_of(KeyType::S, &[s("b"), s("a"), s("B"), s("é"), s("ab")]).await;
        let page = store.query(query("p")).await.unwrap();
        assert_eq!(sort_keys(&page), vec![s("B"), s("a"), s("ab"), s("b"), s("é")]);
        assert_eq!(store.query(query("nobody")).await.unwrap(), QueryPage { items: vec![], last_evaluated_key: None });
    }

    #[tokio::test]
    async fn query_narrows_to_a_sort_key_prefix() {
        let store = store_of(KeyType::S, &[s("lock#2"), s("data"), s("lock#1"), s("lock"), s("lockz")]).await;
        let request = Query { sort_key_prefix: Some((attr("sk"), val(":prefix", s("lock#")))), ..query("p") };
        assert_eq!(sort_keys(&store.query(request).await.unwrap()), vec![s("lock#1"), s("lock#2")]);

        let store = store_of(
            KeyType::B,
            &[AttributeValue::B(vec![1, 2]), AttributeValue::B(vec![2]), AttributeValue::B(vec![1])],
        )
        .await;
        let request =
            Query { sort_key_prefix: Some((attr("sk"), val(":prefix", AttributeValue::B(vec![1])))), ..query("p") };
        assert_eq!(
            sort_keys(&store.query(request).await.unwrap()),
            vec![AttributeValue::B(vec![1]), AttributeValue::B(vec![1, 2])]
        );
    }

    #[tokio::test]
    async fn query_pages_resume_after_the_last_evaluated_key() {
        let store = store_of(KeyType::N, &[n("1"), n("2"), n("3"), n("4"), n("5")]).await;
        let mut seen = Vec::new();
        let mut start = None;
        let mut pages = 0;
        loop {
            let request = Query { limit: Some(2), exclusive_start_key: start.take(), ..query("p") };
            let page = store.query(request).await.unwrap();
            pages += 1;
            seen.extend(sort_keys(&page));
            match page.last_evaluated_key {
                Some(key) => {
                    assert_eq!(
                        key,
                        item(&[("pk", s("p")), ("sk", page.items.last().unwrap()["sk"].clone())]),
                        "key attributes only"
                    );
                    start = Some(key);
                }
                None => break,
            }
        }
        assert_eq!(seen, vec![n("1"), n("2"), n("3"), n("4"), n("5")]);
        assert_eq!(pages, 3);

        // A page that ends exactly at the limit still carries a key, and the next one is empty.
        let request = Query { limit: Some(5), ..query("p") };
        let last = store.query(request).await.unwrap().last_evaluated_key;
        assert_eq!(last, Some(item(&[("pk", s("p")), ("sk", n("5"))])));
        let after = store.query(Query { exclusive_start_key: last, ..query("p") }).await.unwrap();
        assert_eq!(after, QueryPage { items: vec![], last_evaluated_key: None });

        // The start key need not exist.
        let request = Query { exclusive_start_key: Some(item(&[("pk", s("p")), ("sk", n("2.5"))])), ..query("p") };
        assert_eq!(sort_keys(&store.query(request).await.unwrap()), vec![n("3"), n("4"), n("5")]);
    }

    #[tokio::test]
    async fn query_limit_counts_items_before_the_filter() {
        let store = store_of(KeyType::N, &[n("1"), n("2"), n("3"), n("4")]).await;
        // Keep items with an odd index: sort keys 2 and 4.
        let odd = Condition::Compare(attr("i"), CompareOp::Eq, value(n("1"))).or(Condition::Compare(
            attr("i"),
            CompareOp::Eq,
            value(n("3")),
        ));
        let request = Query { limit: Some(1), filter: Some(odd.clone()), ..query("p") };
        let page = store.query(request).await.unwrap();
        assert!(page.items.is_empty(), "the one evaluated item was filtered out");
        assert_eq!(page.last_evaluated_key, Some(item(&[("pk", s("p")), ("sk", n("1"))])));

        let request = Query { limit: Some(3), filter: Some(odd.clone()), ..query("p") };
        assert_eq!(sort_keys(&store.query(request).await.unwrap()), vec![n("2")]);
        let request = Query { filter: Some(odd), ..query("p") };
        assert_eq!(sort_keys(&store.query(request).await.unwrap()), vec![n("2"), n("4")]);
    }

    #[tokio::test]
    async fn query_pages_stop_at_one_megabyte() {
        let store = store_with(Some(KeyType::N)).await;
        for i in 0..4 {
            let blob = AttributeValue::B(vec![0; 350 * 1024]);
            store.put_item(put(item(&[("pk", s("p")), ("sk", AttributeValue::int(i)), ("blob", blob)]))).await.unwrap();
        }
        let page = store.query(query("p")).await.unwrap();
        assert_eq!(page.items.len(), 3);
        assert_eq!(page.last_evaluated_key, Some(item(&[("pk", s("p")), ("sk", n("2"))])));
    }

    #[tokio::test]
    async fn query_without_sort_key_returns_the_partition_item() {
        let store = store().await;
        store.put_item(put(item(&[("pk", s("a")), ("v", n("1"))]))).await.unwrap();
        store.put_item(put(item(&[("pk", s("b"))]))).await.unwrap();
        let page = store.query(query("a")).await.unwrap();
        assert_eq!(page.items, vec![item(&[("pk", s("a")), ("v", n("1"))])]);
        assert_eq!(page.last_evaluated_key, None);
        let request = Query { sort_key_prefix: Some((attr("sk"), val(":prefix", s("x")))), ..query("a") };
        assert_validation(store.query(request).await, "Query key condition not supported");
    }

    #[tokio::test]
    async fn query_rejects_what_dynamodb_rejects() {
        let store = store_of(KeyType::S, &[s("a1"), s("b1")]).await;
        let wrong_partition = Query { partition: (attr("id"), val(":pk", s("p"))), ..query("p") };
        assert_validation(store.query(wrong_partition).await, "missed key schema element: pk");
        let wrong_type = Query { partition: (pk(), val(":pk", n("1"))), ..query("p") };
        assert_validation(store.query(wrong_type).await, "does not match schema type");
        let key_filter = Query { filter: Some(Condition::Exists(attr("sk"))), ..query("p") };
        assert_validation(store.query(key_filter).await, "Primary key attribute: sk");
        assert_validation(store.query(Query { limit: Some(0), ..query("p") }).await, "Limit");
        let outside = Query { exclusive_start_key: Some(item(&[("pk", s("other")), ("sk", s("a1"))])), ..query("p") };
        assert_validation(store.query(outside).await, "outside query boundaries");
        let outside_prefix = Query {
            sort_key_prefix: Some((attr("sk"), val(":prefix", s("b")))),
            exclusive_start_key: Some(item(&[("pk", s("p")), ("sk", s("a1"))])),
            ..query("p")
        };
        assert_validation(store.query(outside_prefix).await, "range key predicate");
        let partial = Query { exclusive_start_key: Some(item(&[("pk", s("p"))])), ..query("p") };
        assert_validation(store.query(partial).await, "starting key is invalid");

        let numeric = store_of(KeyType::N, &[n("1")]).await;
        let request = Query { sort_key_prefix: Some((attr("sk"), val(":prefix", s("1")))), ..query("p") };
        assert_validation(numeric.query(request).await, "begins_with");
    }
}
