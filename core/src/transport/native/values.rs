//! Attribute values between the crate's [`AttributeValue`] and the SDK's.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types as sdk;

use crate::error::Error;
use crate::value::{AttributeValue, Item};

/// An item as the SDK holds it.
pub(super) type SdkItem = HashMap<String, sdk::AttributeValue>;

/// An attribute value of a type this SDK version does not know (a type DynamoDB added later).
#[derive(Debug, PartialEq)]
pub(super) struct UnknownAttributeType;

impl UnknownAttributeType {
    pub(super) fn into_error(self, operation: &'static str) -> Error {
        Error::Service {
            operation,
            code: "UnknownAttributeType".into(),
            message: "DynamoDB returned an attribute value of a type this SDK version does not know".into(),
        }
    }
}

pub(super) fn to_sdk_value(value: &AttributeValue) -> sdk::AttributeValue {
    match value {
        AttributeValue::S(s) => sdk::AttributeValue::S(s.clone()),
        AttributeValue::N(n) => sdk::AttributeValue::N(n.clone()),
        AttributeValue::B(b) => sdk::AttributeValue::B(Blob::new(b.clone())),
        AttributeValue::Bool(b) => sdk::AttributeValue::Bool(*b),
        AttributeValue::Null => sdk::AttributeValue::Null(true),
        AttributeValue::L(list) => sdk::AttributeValue::L(list.iter().map(to_sdk_value).collect()),
        AttributeValue::M(map) => sdk::AttributeValue::M(to_sdk_item(map)),
        AttributeValue::Ss(set) => sdk::AttributeValue::Ss(set.clone()),
        AttributeValue::Ns(set) => sdk::AttributeValue::Ns(set.clone()),
        AttributeValue::Bs(set) => sdk::AttributeValue::Bs(set.iter().cloned().map(Blob::new).collect()),
    }
}

fn from_sdk_value(value: sdk::AttributeValue) -> std::result::Result<AttributeValue, UnknownAttributeType> {
    Ok(match value {
        sdk::AttributeValue::S(s) => AttributeValue::S(s),
        sdk::AttributeValue::N(n) => AttributeValue::N(n),
        sdk::AttributeValue::B(b) => AttributeValue::B(b.into_inner()),
        sdk::AttributeValue::Bool(b) => AttributeValue::Bool(b),
        sdk::AttributeValue::Null(_) => AttributeValue::Null,
        sdk::AttributeValue::L(list) => {
            AttributeValue::L(list.into_iter().map(from_sdk_value).collect::<std::result::Result<_, _>>()?)
        }
        sdk::AttributeValue::M(map) => AttributeValue::M(from_sdk_item(map)?),
        sdk::AttributeValue::Ss(set) => AttributeValue::Ss(set),
        sdk::AttributeValue::Ns(set) => AttributeValue::Ns(set),
        sdk::AttributeValue::Bs(set) => AttributeValue::Bs(set.into_iter().map(Blob::into_inner).collect()),
        _ => return Err(UnknownAttributeType),
    })
}

pub(super) fn to_sdk_item(item: &Item) -> SdkItem {
    item.iter().map(|(name, value)| (name.clone(), to_sdk_value(value))).collect()
}

pub(super) fn from_sdk_item(item: SdkItem) -> std::result::Result<Item, UnknownAttributeType> {
    item.into_iter()
        .map(|(name, value)| Ok((name, from_sdk_value(value)?)))
        .collect::<std::result::Result<BTreeMap<_, _>, _>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_convert_losslessly() {
        let every_type: Item = [
            ("s", AttributeValue::S("text".into())),
            ("n", AttributeValue::N("-1.5E+10".into())),
            ("b", AttributeValue::B(vec![0, 255])),
            ("bool", AttributeValue::Bool(false)),
            ("null", AttributeValue::Null),
            ("l", AttributeValue::L(vec![AttributeValue::Null, AttributeValue::int(7)])),
            ("m", AttributeValue::M([("inner".to_owned(), AttributeValue::Bool(true))].into())),
            ("ss", AttributeValue::Ss(vec!["a".into(), "b".into()])),
            ("ns", AttributeValue::Ns(vec!["1".into(), "2.5".into()])),
            ("bs", AttributeValue::Bs(vec![vec![1], vec![]])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let sdk_item = to_sdk_item(&every_type);
        assert_eq!(sdk_item["null"], sdk::AttributeValue::Null(true));
        assert_eq!(sdk_item["b"], sdk::AttributeValue::B(Blob::new(vec![0, 255])));
        assert_eq!(from_sdk_item(sdk_item).unwrap(), every_type);

        assert_eq!(from_sdk_value(sdk::AttributeValue::Null(false)), Ok(AttributeValue::Null));
    }
}
