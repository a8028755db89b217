//! Single-item writes (PutItem, UpdateItem, DeleteItem) in two steps: everything DynamoDB
//! rejects before looking at the item is checked first, then the write is evaluated against the
//! current item and committed. Transactions reuse both steps for each of their actions.

use crate::error::{Error, Result};
use crate::expr::{Condition, Update};
use crate::request::{DeleteItem, PutItem, ReturnValues, UpdateItem};
use crate::value::Item;

use super::conditions::holds;
use super::tables::PrimaryKey;
use super::updates::apply_update;
use super::validation::{
    check_attributes, check_item_size, check_nesting, check_optional_condition, check_return_values_old_only,
};
use super::State;

impl State {
    pub(super) fn put_item(&mut self, request: &PutItem) -> Result<Option<Item>> {
        const OPERATION: &str = "PutItem";
        check_return_values_old_only(OPERATION, request.return_values)?;
        let prepared = self.prepare_put(OPERATION, request)?;
        self.write(OPERATION, prepared, request.return_values)
    }

    pub(super) fn update_item(&mut self, request: &UpdateItem) -> Result<Option<Item>> {
        const OPERATION: &str = "UpdateItem";
        let prepared = self.prepare_update(OPERATION, request)?;
        self.write(OPERATION, prepared, request.return_values)
    }

    pub(super) fn delete_item(&mut self, request: &DeleteItem) -> Result<Option<Item>> {
        const OPERATION: &str = "DeleteItem";
        check_return_values_old_only(OPERATION, request.return_values)?;
        let prepared = self.prepare_delete(OPERATION, request)?;
        self.write(OPERATION, prepared, request.return_values)
    }

    /// Evaluates one prepared write against the current item and applies it.
    fn write(
        &mut self,
        operation: &'static str,
        prepared: Prepared<'_>,
        return_values: ReturnValues,
    ) -> Result<Option<Item>> {
        let table = self.table_mut(prepared.table)?;
        let current = table.get(&prepared.key);
        let outcome = match prepared.evaluate(operation, current) {
            Ok(outcome) => outcome,
            Err(Rejection::ConditionFailed) => {
                let item = current.filter(|_| prepared.return_old_on_condition_failure).cloned().map(Box::new);
                return Err(Error::ConditionalCheckFailed { item });
            }
            Err(Rejection::Invalid(error)) => return Err(error),
        };
        let new_item = match (&outcome, return_values) {
            (Outcome::Store(item), ReturnValues::AllNew) => Some(item.clone()),
            _ => None,
        };
        let old_item = table.commit(prepared.key, outcome);
        Ok(match return_values {
            ReturnValues::None => None,
            ReturnValues::AllOld => old_item,
            ReturnValues::AllNew => new_item,
        })
    }

    // Preparing checks everything DynamoDB rejects before it looks at the item.

    pub(super) fn prepare_put<'r>(&self, operation: &'static str, request: &'r PutItem) -> Result<Prepared<'r>> {
        let table = self.table(&request.table)?;
        let key = table.item_key(operation, &request.item)?;
        check_attributes(operation, &request.item)?;
        check_nesting(operation, &request.item)?;
        check_item_size(operation, &request.item, "Item size has exceeded the maximum allowed size")?;
        check_optional_condition(operation, request.condition.as_ref())?;
        Ok(Prepared {
            table: &request.table,
            key,
            condition: request.condition.as_ref(),
            change: Change::Put(&request.item),
            return_old_on_condition_failure: request.return_old_on_condition_failure,
        })
    }

    pub(super) fn prepare_update<'r>(&self, operation: &'static str, request: &'r UpdateItem) -> Result<Prepared<'r>> {
        let table = self.table(&request.table)?;
        let key = table.request_key(operation, &request.key)?;
        table.check_update(operation, &request.update)?;
        check_optional_condition(operation, request.condition.as_ref())?;
        Ok(Prepared {
            table: &request.table,
            key,
            condition: request.condition.as_ref(),
            change: Change::Update { key: &request.key, update: &request.update },
            return_old_on_condition_failure: request.return_old_on_condition_failure,
        })
    }

    pub(super) fn prepare_delete<'r>(&self, operation: &'static str, request: &'r DeleteItem) -> Result<Prepared<'r>> {
        let table = self.table(&request.table)?;
        let key = table.request_key(operation, &request.key)?;
        check_optional_condition(operation, request.condition.as_ref())?;
        Ok(Prepared {
            table: &request.table,
            key,
            condition: request.condition.as_ref(),
            change: Change::Delete,
            return_old_on_condition_failure: request.return_old_on_condition_failure,
        })
    }
}

/// A write that passed validation and has not been evaluated against its item yet.
pub(super) struct Prepared<'r> {
    pub(super) table: &'r str,
    pub(super) key: PrimaryKey,
    pub(super) condition: Option<&'r Condition>,
    pub(super) change: Change<'r>,
    pub(super) return_old_on_condition_failure: bool,
}

pub(super) enum Change<'r> {
    /// A transaction's ConditionCheck: nothing is written.
    Check,
    Put(&'r Item),
    /// `key` becomes the new item's key attributes when the item does not exist yet.
    Update {
        key: &'r Item,
        update: &'r Update,
    },
    Delete,
}

/// What a write does to its item.
pub(super) enum Outcome {
    Unchanged,
    Store(Item),
    Remove,
}

/// Why a write was refused after looking at the item.
pub(super) enum Rejection {
    ConditionFailed,
    /// The item makes the write invalid (adding to a string, growing past 400 KB).
    Invalid(Error),
}

impl Prepared<'_> {
    pub(super) fn evaluate(&self, operation: &'static str, current: Option<&Item>) -> Result<Outcome, Rejection> {
        if self.condition.is_some_and(|condition| !holds(condition, current)) {
            return Err(Rejection::ConditionFailed);
        }
        match self.change {
            Change::Check => Ok(Outcome::Unchanged),
            Change::Put(item) => Ok(Outcome::Store(item.clone())),
            Change::Update { key, update } => {
                apply_update(operation, current, key, update).map(Outcome::Store).map_err(Rejection::Invalid)
            }
            Change::Delete => Ok(Outcome::Remove),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory::test_support::*;

    #[tokio::test]
    async fn conditional_put_succeeds_only_while_the_item_is_absent() {
        let store = store().await;
        let create = |owner: &str| PutItem {
            condition: Some(Condition::NotExists(pk())),
            ..put(item(&[("pk", s("a")), ("owner", s(owner))]))
        };
        assert_eq!(store.put_item(create("first")).await.unwrap(), None);
        let err = store.put_item(create("second")).await.unwrap_err();
        assert!(matches!(err, Error::ConditionalCheckFailed { item: None }), "{err:?}");
        assert_eq!(get(&store, item(&[("pk", s("a"))])).await.unwrap()["owner"], s("first"));
    }

    #[tokio::test]
    async fn failed_condition_returns_the_current_item_when_asked() {
        let store = store().await;
        let current = item(&[("pk", s("a")), ("owner", s("first"))]);
        store.put_item(put(current.clone())).await.unwrap();
        let request = PutItem {
            condition: Some(Condition::NotExists(pk())),
            return_old_on_condition_failure: true,
            ..put(item(&[("pk", s("a"))]))
        };
        match store.put_item(request).await {
            Err(Error::ConditionalCheckFailed { item: Some(old) }) => assert_eq!(*old, current),
            other => panic!("{other:?}"),
        }

        // Nothing to return when the condition failed on an absent item.
        let request = DeleteItem {
            condition: Some(Condition::Exists(pk())),
            return_old_on_condition_failure: true,
            ..delete(item(&[("pk", s("missing"))]))
        };
        assert!(matches!(store.delete_item(request).await, Err(Error::ConditionalCheckFailed { item: None })));
    }

    #[tokio::test]
    async fn put_and_delete_return_the_old_item_when_asked() {
        let store = store().await;
        let all_old = |item: Item| PutItem { return_values: ReturnValues::AllOld, ..put(item) };
        let first = item(&[("pk", s("a")), ("v", n("1"))]);
        assert_eq!(store.put_item(all_old(first.clone())).await.unwrap(), None);
        assert_eq!(store.put_item(all_old(item(&[("pk", s("a")), ("v", n("2"))]))).await.unwrap(), Some(first));
        assert_eq!(store.put_item(put(item(&[("pk", s("a"))]))).await.unwrap(), None, "ReturnValues NONE");

        let request = DeleteItem { return_values: ReturnValues::AllOld, ..delete(item(&[("pk", s("a"))])) };
        assert_eq!(store.delete_item(request.clone()).await.unwrap(), Some(item(&[("pk", s("a"))])));
        assert_eq!(store.delete_item(request).await.unwrap(), None);
        assert_eq!(get(&store, item(&[("pk", s("a"))])).await, None);

        let all_new = PutItem { return_values: ReturnValues::AllNew, ..put(item(&[("pk", s("a"))])) };
        assert_validation(store.put_item(all_new).await, "Return values");
    }

    #[tokio::test]
    async fn conditional_delete_checks_the_current_item() {
        let store = store().await;
        store.put_item(put(item(&[("pk", s("a")), ("guid", s("g1"))]))).await.unwrap();
        let guarded = |guid: &str| DeleteItem {
            condition: Some(Condition::eq(Name::raw("guid"), val(":guid", s(guid)))),
            ..delete(item(&[("pk", s("a"))]))
        };
        assert!(matches!(store.delete_item(guarded("other")).await, Err(Error::ConditionalCheckFailed { .. })));
        assert!(get(&store, item(&[("pk", s("a"))])).await.is_some());
        store.delete_item(guarded("g1")).await.unwrap();
        assert_eq!(get(&store, item(&[("pk", s("a"))])).await, None);
    }

    #[tokio::test]
    async fn items_over_400_kb_are_refused() {
        let store = store().await;
        let key = item(&[("pk", s("a"))]);
        // Name and value count: "pk" + "a" + "blob" + 400 KB - 7 bytes is exactly the limit.
        let fits = MAX_ITEM_SIZE - "pk".len() - "a".len() - "blob".len();
        store.put_item(put(item(&[("pk", s("a")), ("blob", AttributeValue::B(vec![0; fits]))]))).await.unwrap();
        let too_big = put(item(&[("pk", s("a")), ("blob", AttributeValue::B(vec![0; fits + 1]))]));
        assert_validation(store.put_item(too_big).await, "Item size has exceeded the maximum allowed size");

        let grow = Update::default().set(attr("x"), value(s("y")));
        assert_validation(store.update_item(update(key.clone(), grow)).await, "Item size to update has exceeded");
        assert!(!get(&store, key).await.unwrap().contains_key("x"));
    }
}
