//! The checks DynamoDB applies to every request before looking at any item: table names,
//! ReturnValues, item sizes, malformed numbers and sets, and the operand types of expressions.

use std::collections::BTreeSet;

use bigdecimal::BigDecimal;

use crate::error::{Error, Result};
use crate::expr::{CompareOp, Condition, Name};
use crate::request::ReturnValues;
use crate::value::{item_size, parse_decimal, AttributeValue, Item, MAX_ITEM_SIZE};

pub(super) fn validation(operation: &'static str, message: impl Into<String>) -> Error {
    Error::Validation { operation, message: message.into() }
}

pub(super) fn check_table_name(operation: &'static str, name: &str) -> Result<()> {
    let valid_characters = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if (3..=255).contains(&name.len()) && valid_characters {
        Ok(())
    } else {
        Err(validation(
            operation,
            format!("TableName {name:?} must be 3 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.'"),
        ))
    }
}

pub(super) fn check_return_values_old_only(operation: &'static str, return_values: ReturnValues) -> Result<()> {
    match return_values {
        ReturnValues::AllNew => Err(validation(operation, "Return values set to invalid value")),
        ReturnValues::None | ReturnValues::AllOld => Ok(()),
    }
}

pub(super) fn check_item_size(operation: &'static str, item: &Item, message: &str) -> Result<()> {
    if item_size(item) > MAX_ITEM_SIZE {
        Err(validation(operation, message))
    } else {
        Ok(())
    }
}

/// DynamoDB refuses items nested deeper than [`crate::value::MAX_NESTING_DEPTH`] levels.
pub(super) fn check_nesting(operation: &'static str, item: &Item) -> Result<()> {
    if item.values().all(AttributeValue::within_nesting_limit) {
        Ok(())
    } else {
        Err(validation(
            operation,
            format!("{NESTING_TOO_DEEP}: Attributes in the item have nested levels beyond supported limit"),
        ))
    }
}

/// DynamoDB's message for a value nested deeper than it stores (an UpdateItem value gets it alone).
pub(super) const NESTING_TOO_DEEP: &str = "Nesting Levels have exceeded supported limits";

pub(super) fn check_attributes(operation: &'static str, item: &Item) -> Result<()> {
    item.values().try_for_each(|value| check_attribute(operation, value))
}

/// What DynamoDB rejects in any value it receives: malformed numbers, empty or duplicated sets.
pub(super) fn check_attribute(operation: &'static str, value: &AttributeValue) -> Result<()> {
    let set_error = |kind: &str, problem: &str| {
        validation(operation, format!("One or more parameter values were invalid: An {kind} set {problem}"))
    };
    match value {
        AttributeValue::N(n) => parse_number(operation, n).map(drop),
        AttributeValue::Ns(numbers) => {
            if numbers.is_empty() {
                return Err(set_error("number", "may not be empty"));
            }
            let mut seen = BTreeSet::new();
            for n in numbers {
                if !seen.insert(parse_number(operation, n)?) {
                    return Err(set_error("number", "may not contain duplicates"));
                }
            }
            Ok(())
        }
        AttributeValue::Ss(strings) => check_set(
            strings,
            || set_error("string", "may not be empty"),
            || set_error("string", "may not contain duplicates"),
        ),
        AttributeValue::Bs(binaries) => check_set(
            binaries,
            || set_error("binary", "may not be empty"),
            || set_error("binary", "may not contain duplicates"),
        ),
        AttributeValue::L(values) => values.iter().try_for_each(|v| check_attribute(operation, v)),
        AttributeValue::M(map) => check_attributes(operation, map),
        AttributeValue::S(_) | AttributeValue::B(_) | AttributeValue::Bool(_) | AttributeValue::Null => Ok(()),
    }
}

fn check_set<T: Ord>(members: &[T], empty: impl FnOnce() -> Error, duplicate: impl FnOnce() -> Error) -> Result<()> {
    if members.is_empty() {
        return Err(empty());
    }
    if members.iter().collect::<BTreeSet<_>>().len() != members.len() {
        return Err(duplicate());
    }
    Ok(())
}

pub(super) fn parse_number(operation: &'static str, text: &str) -> Result<BigDecimal> {
    parse_decimal(text).map_err(|reason| {
        validation(operation, format!("The parameter cannot be converted to a numeric value: {reason}"))
    })
}

pub(super) fn check_optional_condition(operation: &'static str, condition: Option<&Condition>) -> Result<()> {
    condition.map_or(Ok(()), |condition| check_condition(operation, "ConditionExpression", condition))
}

/// What DynamoDB rejects when it parses an expression: empty groups, malformed values, and
/// operand types the operator cannot take (`<` on a boolean, `begins_with` on a number).
pub(super) fn check_condition(operation: &'static str, expression: &str, condition: &Condition) -> Result<()> {
    match condition {
        Condition::Exists(_) | Condition::NotExists(_) => Ok(()),
        Condition::Compare(_, op, value) => {
            check_attribute(operation, &value.value)?;
            let ordering = !matches!(op, CompareOp::Eq | CompareOp::Ne);
            if ordering && !is_scalar(&value.value) {
                return Err(incorrect_operand(operation, expression, op.symbol(), &value.value));
            }
            Ok(())
        }
        Condition::BeginsWith(_, value) => {
            check_attribute(operation, &value.value)?;
            if !matches!(value.value, AttributeValue::S(_) | AttributeValue::B(_)) {
                return Err(incorrect_operand(operation, expression, "begins_with", &value.value));
            }
            Ok(())
        }
        Condition::And(parts) | Condition::Or(parts) => {
            if parts.is_empty() {
                return Err(validation(operation, format!("Invalid {expression}: The expression can not be empty")));
            }
            parts.iter().try_for_each(|part| check_condition(operation, expression, part))
        }
        Condition::Not(inner) => check_condition(operation, expression, inner),
    }
}

pub(super) fn incorrect_operand(
    operation: &'static str,
    expression: &str,
    operator: &str,
    value: &AttributeValue,
) -> Error {
    validation(
        operation,
        format!(
            "Invalid {expression}: Incorrect operand type for operator or function; operator or function: {operator}, \
             operand type: {}",
            value.type_name()
        ),
    )
}

fn is_scalar(value: &AttributeValue) -> bool {
    matches!(value, AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_))
}

pub(super) fn condition_names(condition: &Condition) -> Vec<&Name> {
    match condition {
        Condition::Exists(name)
        | Condition::NotExists(name)
        | Condition::Compare(name, _, _)
        | Condition::BeginsWith(name, _) => vec![name],
        Condition::And(parts) | Condition::Or(parts) => parts.iter().flat_map(condition_names).collect(),
        Condition::Not(inner) => condition_names(inner),
    }
}

#[cfg(test)]
mod tests {
    use crate::transport::memory::test_support::*;

    #[tokio::test]
    async fn ordering_a_non_scalar_operand_is_refused() {
        let store = store().await;
        let request = PutItem {
            condition: Some(field(CompareOp::Lt, AttributeValue::Bool(true))),
            ..put(item(&[("pk", s("a"))]))
        };
        assert_validation(store.put_item(request).await, "operator or function: <, operand type: BOOL");
    }

    #[tokio::test]
    async fn invalid_values_are_refused() {
        let store = store().await;
        let with = |v: AttributeValue| put(item(&[("pk", s("a")), ("v", v)]));
        assert_validation(store.put_item(with(n("12abc"))).await, "numeric");
        assert_validation(store.put_item(with(n("1e200"))).await, "numeric");
        assert_validation(store.put_item(with(AttributeValue::Ss(vec![]))).await, "may not be empty");
        assert_validation(store.put_item(with(AttributeValue::Ns(vec!["1".into(), "1.0".into()]))).await, "duplicates");
        assert_validation(store.put_item(with(AttributeValue::L(vec![n("x")]))).await, "numeric");
        // Empty strings are fine outside keys.
        store.put_item(with(s(""))).await.unwrap();
    }

    #[tokio::test]
    async fn items_nested_deeper_than_dynamodb_stores_are_refused() {
        use crate::value::MAX_NESTING_DEPTH;
        let store = store().await;
        let nested = |maps: usize| (0..maps).fold(s("x"), |inner, _| AttributeValue::M(item(&[("a", inner)])));
        let deepest = item(&[("pk", s("a")), ("v", nested(MAX_NESTING_DEPTH - 1))]);
        store.put_item(put(deepest.clone())).await.unwrap();
        assert_eq!(get(&store, item(&[("pk", s("a"))])).await, Some(deepest));

        let too_deep = || item(&[("pk", s("b")), ("v", nested(MAX_NESTING_DEPTH))]);
        let message = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels";
        assert_validation(store.put_item(put(too_deep())).await, message);
        let in_transaction =
            TransactWrite { items: vec![TransactItem::Put(put(too_deep()))], client_request_token: None };
        assert_validation(store.transact_write(in_transaction).await, message);
        let set = Update::default().set(attr("v"), value(nested(MAX_NESTING_DEPTH)));
        assert_validation(
            store.update_item(update(item(&[("pk", s("b"))]), set)).await,
            "Nesting Levels have exceeded",
        );
        assert_eq!(get(&store, item(&[("pk", s("b"))])).await, None);
    }
}
