//! Update expressions: what DynamoDB refuses in one before looking at the item, and the item
//! that results from applying one (SET, REMOVE and `if_not_exists(..) + n`).

use std::collections::BTreeSet;

use crate::error::Result;
use crate::expr::{SetValue, Update, UpdateAction};
use crate::value::{AttributeValue, Item, Number};

use super::tables::Table;
use super::validation::{
    check_attribute, check_item_size, incorrect_operand, parse_number, validation, NESTING_TOO_DEEP,
};

impl Table {
    /// DynamoDB refuses updates that touch the key or name one attribute twice.
    pub(super) fn check_update(&self, operation: &'static str, update: &Update) -> Result<()> {
        let mut targets = BTreeSet::new();
        for action in &update.actions {
            let (UpdateAction::Set(name, _) | UpdateAction::Remove(name)) = action;
            if self.is_key_attribute(&name.attribute) {
                return Err(validation(
                    operation,
                    format!(
                        "One or more parameter values were invalid: Cannot update attribute {}. \
                         This attribute is part of the key",
                        name.attribute
                    ),
                ));
            }
            if !targets.insert(name.attribute.as_str()) {
                return Err(validation(
                    operation,
                    format!(
                        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or \
                         rewrite one of these paths; path one: [{0}], path two: [{0}]",
                        name.attribute
                    ),
                ));
            }
            match action {
                UpdateAction::Set(_, SetValue::Value(value)) => {
                    check_attribute(operation, &value.value)?;
                    if !value.value.within_nesting_limit() {
                        return Err(validation(operation, NESTING_TOO_DEEP));
                    }
                }
                UpdateAction::Set(_, SetValue::IncrementFrom { start, increment }) => {
                    check_attribute(operation, &start.value)?;
                    check_attribute(operation, &increment.value)?;
                    // The literal operand of `+` is typed when the expression is parsed; the
                    // `if_not_exists` operand only when it is evaluated.
                    if !matches!(increment.value, AttributeValue::N(_)) {
                        return Err(incorrect_operand(operation, "UpdateExpression", "+", &increment.value));
                    }
                }
                UpdateAction::Remove(_) => {}
            }
        }
        Ok(())
    }
}

/// The item after an update. Every operand reads the item as it was before the update, as in
/// DynamoDB; an absent item starts from its key attributes.
pub(super) fn apply_update(
    operation: &'static str,
    current: Option<&Item>,
    key: &Item,
    update: &Update,
) -> Result<Item> {
    let mut next = current.cloned().unwrap_or_else(|| key.clone());
    for action in &update.actions {
        match action {
            UpdateAction::Set(name, SetValue::Value(value)) => {
                next.insert(name.attribute.clone(), value.value.clone());
            }
            UpdateAction::Set(name, SetValue::IncrementFrom { start, increment }) => {
                let base = current.and_then(|item| item.get(&name.attribute)).unwrap_or(&start.value);
                next.insert(name.attribute.clone(), add_numbers(operation, base, &increment.value)?);
            }
            UpdateAction::Remove(name) => {
                next.remove(&name.attribute);
            }
        }
    }
    check_item_size(operation, &next, "Item size to update has exceeded the maximum allowed size")?;
    Ok(next)
}

/// `a + b` with DynamoDB's exact decimal arithmetic and its 38-digit, 1E-130..9.99E+125 range.
fn add_numbers(operation: &'static str, a: &AttributeValue, b: &AttributeValue) -> Result<AttributeValue> {
    let (AttributeValue::N(a), AttributeValue::N(b)) = (a, b) else {
        return Err(validation(operation, "An operand in the update expression has an incorrect data type"));
    };
    let sum = parse_number(operation, a)? + parse_number(operation, b)?;
    let sum =
        Number::from_decimal(&sum).map_err(|reason| validation(operation, format!("Number overflow: {reason}")))?;
    Ok(AttributeValue::N(sum.as_str().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory::test_support::*;

    #[tokio::test]
    async fn update_creates_the_item_from_its_key() {
        let store = store().await;
        let key = item(&[("pk", s("a"))]);
        let set = Update::default().set(attr("owner"), val(":owner", s("me")));
        let request = UpdateItem { return_values: ReturnValues::AllOld, ..update(key.clone(), set.clone()) };
        assert_eq!(store.update_item(request).await.unwrap(), None, "no old item");
        assert_eq!(get(&store, key.clone()).await, Some(item(&[("pk", s("a")), ("owner", s("me"))])));

        let new = store.update_item(update(key.clone(), Update::default().remove(attr("owner")))).await.unwrap();
        assert_eq!(new, Some(key.clone()));

        // A condition that fails on the absent item creates nothing.
        let other = item(&[("pk", s("b"))]);
        let request = UpdateItem { condition: Some(Condition::Exists(pk())), ..update(other.clone(), set) };
        assert!(matches!(store.update_item(request).await, Err(Error::ConditionalCheckFailed { item: None })));
        assert_eq!(get(&store, other).await, None);
    }

    #[tokio::test]
    async fn update_returns_old_or_new_attributes() {
        let store = store().await;
        let key = item(&[("pk", s("a"))]);
        store.put_item(put(item(&[("pk", s("a")), ("v", n("1")), ("gone", s("x"))]))).await.unwrap();
        let change = Update::default().set(attr("v"), value(n("2"))).remove(attr("gone"));
        let request = UpdateItem { return_values: ReturnValues::AllOld, ..update(key.clone(), change.clone()) };
        assert_eq!(
            store.update_item(request).await.unwrap(),
            Some(item(&[("pk", s("a")), ("v", n("1")), ("gone", s("x"))]))
        );
        assert_eq!(
            store.update_item(update(key.clone(), change.clone())).await.unwrap(),
            Some(item(&[("pk", s("a")), ("v", n("2"))]))
        );
        let request = UpdateItem { return_values: ReturnValues::None, ..update(key, change) };
        assert_eq!(store.update_item(request).await.unwrap(), None);
    }

    #[tokio::test]
    async fn increment_starts_from_a_missing_attribute_and_stays_exact() {
        let store = store().await;
        let key = item(&[("pk", s("a"))]);
        let increment =
            |by: &str| Update::default().increment(Name::raw("fencingToken"), val(":zero", n("0")), val(":by", n(by)));
        let token = |item: Option<Item>| item.unwrap()["fencingToken"].clone();
        assert_eq!(token(store.update_item(update(key.clone(), increment("1"))).await.unwrap()), n("1"));
        assert_eq!(token(store.update_item(update(key.clone(), increment("1"))).await.unwrap()), n("2"));
        assert_eq!(token(store.update_item(update(key.clone(), increment("-5"))).await.unwrap()), n("-3"));

        let big = "99999999999999999999999999999999999999";
        store
            .put_item(put(item(&[("pk", s("a")), ("fencingToken", n("99999999999999999999999999999999999998"))])))
            .await
            .unwrap();
        assert_eq!(token(store.update_item(update(key.clone(), increment("1"))).await.unwrap()), n(big));
        let carried = format!("1{}", "0".repeat(38));
        assert_eq!(token(store.update_item(update(key.clone(), increment("1"))).await.unwrap()), n(&carried));
        // 39 significant digits, or a magnitude past 9.99E+125, do not fit DynamoDB's numbers.
        assert_validation(store.update_item(update(key.clone(), increment("1"))).await, "Number overflow");
        store.put_item(put(item(&[("pk", s("a")), ("fencingToken", n("9.99E+125"))]))).await.unwrap();
        assert_validation(store.update_item(update(key.clone(), increment("9.99E+125"))).await, "Number overflow");

        store.put_item(put(item(&[("pk", s("a")), ("fencingToken", n("0.1"))]))).await.unwrap();
        assert_eq!(token(store.update_item(update(key, increment("0.2"))).await.unwrap()), n("0.3"));
    }

    #[tokio::test]
    async fn increment_of_a_non_number_is_refused() {
        let store = store().await;
        let key = item(&[("pk", s("a"))]);
        store.put_item(put(item(&[("pk", s("a")), ("count", s("seven"))]))).await.unwrap();
        let increment = Update::default().increment(attr("count"), val(":zero", n("0")), val(":one", n("1")));
        assert_validation(store.update_item(update(key.clone(), increment)).await, "incorrect data type");
        assert_eq!(get(&store, key.clone()).await.unwrap()["count"], s("seven"), "unchanged");

        let by_string = Update::default().increment(attr("other"), val(":zero", n("0")), val(":one", s("1")));
        assert_validation(store.update_item(update(key, by_string)).await, "operator or function: +");
    }

    #[tokio::test]
    async fn updates_may_not_touch_the_key_or_one_attribute_twice() {
        let store = store_with(Some(KeyType::S)).await;
        let key = item(&[("pk", s("a")), ("sk", s("1"))]);
        let set_sort = Update::default().set(attr("sk"), value(s("2")));
        assert_validation(store.update_item(update(key.clone(), set_sort)).await, "Cannot update attribute sk");
        assert_validation(
            store.update_item(update(key.clone(), Update::default().remove(pk()))).await,
            "part of the key",
        );
        let twice = Update::default().set(attr("x"), value(s("1"))).remove(attr("x"));
        assert_validation(store.update_item(update(key.clone(), twice)).await, "overlap");
        assert_eq!(get(&store, key).await, None);
    }
}
