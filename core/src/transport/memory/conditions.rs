//! Evaluation of condition and filter expressions against an item, with DynamoDB's rules for
//! missing attributes, mismatched types and numbers compared by value.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::expr::{CompareOp, Condition, Name, Placeholder};
use crate::value::{parse_decimal, AttributeValue, Item};

/// Evaluates a condition against an item (`None` when there is none) as DynamoDB does.
pub(super) fn holds(condition: &Condition, item: Option<&Item>) -> bool {
    let attribute = |name: &Name| item.and_then(|item| item.get(&name.attribute));
    match condition {
        Condition::Exists(name) => attribute(name).is_some(),
        Condition::NotExists(name) => attribute(name).is_none(),
        Condition::Compare(name, op, value) => compare(attribute(name), *op, value),
        Condition::BeginsWith(name, prefix) => attribute(name).is_some_and(|value| begins_with(value, &prefix.value)),
        Condition::And(parts) => parts.iter().all(|part| holds(part, item)),
        Condition::Or(parts) => parts.iter().any(|part| holds(part, item)),
        Condition::Not(inner) => !holds(inner, item),
    }
}

fn compare(actual: Option<&AttributeValue>, op: CompareOp, expected: &Placeholder) -> bool {
    // A missing attribute is equal to nothing and ordered against nothing, so `<>` is the one
    // comparison it satisfies. The same goes for values of different types.
    let Some(actual) = actual else {
        return op == CompareOp::Ne;
    };
    let expected = &expected.value;
    match op {
        CompareOp::Eq => values_equal(actual, expected),
        CompareOp::Ne => !values_equal(actual, expected),
        CompareOp::Lt => order(actual, expected).is_some_and(Ordering::is_lt),
        CompareOp::Le => order(actual, expected).is_some_and(Ordering::is_le),
        CompareOp::Gt => order(actual, expected).is_some_and(Ordering::is_gt),
        CompareOp::Ge => order(actual, expected).is_some_and(Ordering::is_ge),
    }
}

/// DynamoDB's ordering: numbers numerically, strings by UTF-8 bytes, binaries by bytes; no
/// other pair of values is ordered.
fn order(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::N(a), AttributeValue::N(b)) => Some(parse_decimal(a).ok()?.cmp(&parse_decimal(b).ok()?)),
        (AttributeValue::S(a), AttributeValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (AttributeValue::B(a), AttributeValue::B(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// Deep equality with numbers compared by value and sets compared without order.
fn values_equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (a, b) {
        (V::N(a), V::N(b)) => match (parse_decimal(a), parse_decimal(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        },
        (V::Ns(a), V::Ns(b)) => {
            let numbers = |set: &[String]| set.iter().map(|n| parse_decimal(n).ok()).collect::<Option<BTreeSet<_>>>();
            numbers(a).is_some_and(|a| numbers(b).is_some_and(|b| a == b))
        }
        (V::Ss(a), V::Ss(b)) => a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>(),
        (V::Bs(a), V::Bs(b)) => a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>(),
        (V::L(a), V::L(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| values_equal(a, b)),
        (V::M(a), V::M(b)) => {
            a.len() == b.len() && a.iter().all(|(name, a)| b.get(name).is_some_and(|b| values_equal(a, b)))
        }
        _ => a == b,
    }
}

fn begins_with(value: &AttributeValue, prefix: &AttributeValue) -> bool {
    match (value, prefix) {
        (AttributeValue::S(s), AttributeValue::S(p)) => s.starts_with(p.as_str()),
        (AttributeValue::B(b), AttributeValue::B(p)) => b.starts_with(p),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory::test_support::*;

    /// Puts `{pk: "a", field: stored}` and reports whether `condition` allowed a second put.
    async fn condition_holds(stored: Option<AttributeValue>, condition: Condition) -> bool {
        let store = store().await;
        let mut first = item(&[("pk", s("a"))]);
        if let Some(stored) = stored {
            first.insert("field".into(), stored);
        }
        store.put_item(put(first)).await.unwrap();
        let second = PutItem { condition: Some(condition), ..put(item(&[("pk", s("a"))])) };
        match store.put_item(second).await {
            Ok(_) => true,
            Err(Error::ConditionalCheckFailed { .. }) => false,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    #[tokio::test]
    async fn missing_attributes_satisfy_only_not_equal() {
        assert!(condition_holds(None, field(CompareOp::Ne, s("x"))).await);
        for op in [CompareOp::Eq, CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge] {
            assert!(!condition_holds(None, field(op, s("x"))).await, "{op:?}");
        }
        assert!(condition_holds(None, Condition::NotExists(attr("field"))).await);
        assert!(!condition_holds(None, Condition::Exists(attr("field"))).await);
        assert!(!condition_holds(None, Condition::BeginsWith(attr("field"), value(s("")))).await);
    }

    #[tokio::test]
    async fn values_of_another_type_are_unequal_and_unordered() {
        assert!(!condition_holds(Some(s("6")), field(CompareOp::Eq, n("6"))).await);
        assert!(condition_holds(Some(s("6")), field(CompareOp::Ne, n("6"))).await);
        for op in [CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge] {
            assert!(!condition_holds(Some(s("6")), field(op, n("6"))).await, "{op:?}");
        }
    }

    #[tokio::test]
    async fn numbers_compare_numerically_and_exactly() {
        assert!(condition_holds(Some(n("10")), field(CompareOp::Gt, n("9"))).await);
        assert!(!condition_holds(Some(n("10")), field(CompareOp::Lt, n("9"))).await);
        assert!(condition_holds(Some(n("-10")), field(CompareOp::Lt, n("-9"))).await);
        assert!(condition_holds(Some(n("1.50")), field(CompareOp::Eq, n("1.5"))).await);
        assert!(condition_holds(Some(n("1e3")), field(CompareOp::Eq, n("1000"))).await);
        assert!(condition_holds(Some(n("0.1")), field(CompareOp::Ge, n("1E-1"))).await);
        // Beyond f64's 53-bit mantissa: these differ only in the last digit.
        assert!(condition_holds(Some(n("9007199254740993")), field(CompareOp::Gt, n("9007199254740992"))).await);
        let big = "12345678901234567890123456789012345678";
        let bigger = "12345678901234567890123456789012345679";
        assert!(condition_holds(Some(n(big)), field(CompareOp::Lt, n(bigger))).await);
        assert!(condition_holds(Some(n(big)), field(CompareOp::Ne, n(bigger))).await);
    }

    #[tokio::test]
    async fn strings_and_binaries_compare_by_bytes() {
        assert!(condition_holds(Some(s("Z")), field(CompareOp::Lt, s("a"))).await);
        assert!(condition_holds(Some(s("é")), field(CompareOp::Gt, s("z"))).await);
        assert!(condition_holds(Some(s("ab")), field(CompareOp::Gt, s("a"))).await);
        let b = |bytes: &[u8]| AttributeValue::B(bytes.to_vec());
        assert!(condition_holds(Some(b(&[0x80])), field(CompareOp::Gt, b(&[0x7f, 0xff]))).await);
        assert!(condition_holds(Some(b(&[1, 2])), field(CompareOp::Eq, b(&[1, 2]))).await);
    }

    #[tokio::test]
    async fn begins_with_matches_strings_and_binaries_of_the_same_type() {
        let begins = |prefix: AttributeValue| Condition::BeginsWith(attr("field"), value(prefix));
        assert!(condition_holds(Some(s("lock#1")), begins(s("lock#"))).await);
        assert!(!condition_holds(Some(s("lock#1")), begins(s("lock#2"))).await);
        assert!(condition_holds(Some(AttributeValue::B(vec![1, 2, 3])), begins(AttributeValue::B(vec![1, 2]))).await);
        assert!(!condition_holds(Some(s("12")), begins(AttributeValue::B(b"1".to_vec()))).await);

        let store = store().await;
        let request = PutItem { condition: Some(begins(n("1"))), ..put(item(&[("pk", s("a"))])) };
        assert_validation(store.put_item(request).await, "begins_with");
    }

    #[tokio::test]
    async fn composite_conditions_combine_like_dynamodb() {
        let lost = Condition::NotExists(attr("field"));
        let owned = field(CompareOp::Eq, s("me"));
        assert!(condition_holds(Some(s("me")), lost.clone().or(owned.clone())).await);
        assert!(!condition_holds(Some(s("you")), lost.clone().or(owned.clone())).await);
        assert!(
            !condition_holds(
                Some(s("me")),
                Condition::Exists(attr("field")).and(Condition::Not(Box::new(owned.clone())))
            )
            .await
        );
        // NOT of a comparison on a missing attribute is true.
        assert!(condition_holds(None, Condition::Not(Box::new(owned))).await);
        assert!(condition_holds(Some(s("x")), Condition::Exists(pk()).and(Condition::Exists(attr("field")))).await);
    }

    #[tokio::test]
    async fn deep_values_compare_numbers_by_value_and_sets_without_order() {
        let stored =
            AttributeValue::M(item(&[("n", n("1.0")), ("tags", AttributeValue::Ss(vec!["a".into(), "b".into()]))]));
        let same =
            AttributeValue::M(item(&[("n", n("1")), ("tags", AttributeValue::Ss(vec!["b".into(), "a".into()]))]));
        let other =
            AttributeValue::M(item(&[("n", n("2")), ("tags", AttributeValue::Ss(vec!["a".into(), "b".into()]))]));
        assert!(condition_holds(Some(stored.clone()), field(CompareOp::Eq, same)).await);
        assert!(condition_holds(Some(stored), field(CompareOp::Ne, other)).await);
    }
}
