//! Values as DynamoDB stores them, independent of any SDK.
//!
//! [`AttributeValue`] is the wire-level type every transport converts to and from. [`Value`] is
//! what the KV store and lock data accept from users: JSON plus bytes, with numbers kept as exact
//! decimal strings so that integers of any size DynamoDB accepts round-trip unchanged.

use std::collections::BTreeMap;

use bigdecimal::num_bigint::BigInt;
use bigdecimal::{BigDecimal, ToPrimitive, Zero};

use crate::error::Error;

/// An item: attribute name to value.
pub type Item = BTreeMap<String, AttributeValue>;

/// One DynamoDB attribute value (the `S`, `N`, `B`, `BOOL`, `NULL`, `L`, `M` and set types).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeValue {
    /// A string (`S`): UTF-8, may be empty outside keys.
    S(String),
    /// A number as DynamoDB's decimal string.
    N(String),
    /// Bytes (`B`), base64 on the wire.
    B(Vec<u8>),
    /// A boolean (`BOOL`).
    Bool(bool),
    /// The null value (`NULL: true`).
    Null,
    /// A list of values of any types (`L`).
    L(Vec<AttributeValue>),
    /// A map of attribute names to values (`M`).
    M(Item),
    /// A string set (`SS`): distinct strings, never empty.
    Ss(Vec<String>),
    /// A number set (`NS`), each number as DynamoDB's decimal string.
    Ns(Vec<String>),
    /// A binary set (`BS`).
    Bs(Vec<Vec<u8>>),
}

impl AttributeValue {
    /// An `N` from an integer.
    pub fn int(n: impl Into<i128>) -> Self {
        AttributeValue::N(n.into().to_string())
    }

    /// The text of an `S`; `None` for any other type.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            AttributeValue::S(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes of a `B`; `None` for any other type.
    pub fn as_b(&self) -> Option<&[u8]> {
        match self {
            AttributeValue::B(b) => Some(b),
            _ => None,
        }
    }

    /// The value of an `N` that holds an integer (also `1E+3`-style integers DynamoDB may return).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttributeValue::N(n) => integer_value(n),
            _ => None,
        }
    }

    /// False when this value, stored as an attribute of an item, would be nested deeper than
    /// [`MAX_NESTING_DEPTH`]: then DynamoDB refuses the write.
    pub fn within_nesting_limit(&self) -> bool {
        fn fits(value: &AttributeValue, levels_left: usize) -> bool {
            match value {
                AttributeValue::L(items) => levels_left > 0 && items.iter().all(|v| fits(v, levels_left - 1)),
                AttributeValue::M(map) => levels_left > 0 && map.values().all(|v| fits(v, levels_left - 1)),
                _ => true,
            }
        }
        // The item holding the attribute is the first level.
        fits(self, MAX_NESTING_DEPTH - 1)
    }

    /// The DynamoDB type descriptor: `S`, `N`, `B`, `BOOL`, `NULL`, `L`, `M`, `SS`, `NS`, `BS`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::L(_) => "L",
            AttributeValue::M(_) => "M",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
        }
    }

    /// DynamoDB's size accounting for a value (used to reject items over 400 KB before sending).
    pub fn size(&self) -> usize {
        match self {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::B(b) => b.len(),
            AttributeValue::Bool(_) | AttributeValue::Null => 1,
            AttributeValue::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            AttributeValue::M(m) => 3 + item_size(m) + m.len(),
            AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
            AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
            AttributeValue::Bs(v) => v.iter().map(Vec::len).sum(),
        }
    }
}

/// The size DynamoDB counts for an item: names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// DynamoDB's limit on one item.
pub const MAX_ITEM_SIZE: usize = 400 * 1024;

/// DynamoDB's limit on nesting: the item is the first level and every list or map one more,
/// so an attribute's value holds at most 31 lists and maps one inside another (sets and
/// scalars add no level). Measured against DynamoDB Local: 31 maps around a string are
/// stored, 32 are refused, and so are 31 around an empty map.
pub const MAX_NESTING_DEPTH: usize = 32;

/// DynamoDB's limit on a partition key value, in bytes (UTF-8 for strings).
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// DynamoDB's limit on a sort key value, in bytes (UTF-8 for strings).
pub const MAX_SORT_KEY_BYTES: usize = 1024;

/// The value of number text holding an integer that fits an `i64` (`12`, `1.0`, `1E+3`).
fn integer_value(text: &str) -> Option<i64> {
    let value = parse_decimal(text).ok()?;
    if !value.is_integer() {
        return None;
    }
    value.with_scale(0).as_bigint_and_exponent().0.to_i64()
}

/// A key attribute's value: DynamoDB keys are strings, numbers or bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyValue {
    /// A string key.
    S(String),
    /// A number key, as DynamoDB's decimal string.
    N(String),
    /// A binary key.
    B(Vec<u8>),
}

impl KeyValue {
    /// The type a table's key attribute must have to hold this value.
    pub fn key_type(&self) -> KeyType {
        match self {
            KeyValue::S(_) => KeyType::S,
            KeyValue::N(_) => KeyType::N,
            KeyValue::B(_) => KeyType::B,
        }
    }

    /// Checks what DynamoDB would reject: empty strings and bytes, values over `max_bytes`
    /// ([`MAX_PARTITION_KEY_BYTES`] or [`MAX_SORT_KEY_BYTES`]), malformed numbers.
    pub fn validate(&self, what: &str, max_bytes: usize) -> Result<(), Error> {
        match self {
            KeyValue::S(s) if s.is_empty() => {
                Err(Error::config(format!("{what} is an empty string; DynamoDB keys must not be empty")))
            }
            KeyValue::B(b) if b.is_empty() => {
                Err(Error::config(format!("{what} is empty bytes; DynamoDB keys must not be empty")))
            }
            KeyValue::S(s) if s.len() > max_bytes => Err(Error::config(format!(
                "{what} is {} bytes (UTF-8); DynamoDB limits this key to {max_bytes} bytes",
                s.len()
            ))),
            KeyValue::B(b) if b.len() > max_bytes => Err(Error::config(format!(
                "{what} is {} bytes; DynamoDB limits this key to {max_bytes} bytes",
                b.len()
            ))),
            KeyValue::N(n) => Number::parse(n).map(|_| ()).map_err(|e| Error::config(format!("{what}: {e}"))),
            _ => Ok(()),
        }
    }

    /// Reads a key attribute back from an item.
    pub fn from_attribute(value: &AttributeValue) -> Option<KeyValue> {
        match value {
            AttributeValue::S(s) => Some(KeyValue::S(s.clone())),
            AttributeValue::N(n) => Some(KeyValue::N(n.clone())),
            AttributeValue::B(b) => Some(KeyValue::B(b.clone())),
            _ => None,
        }
    }
}

impl std::fmt::Display for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyValue::S(s) => write!(f, "{s:?}"),
            KeyValue::N(n) => f.write_str(n),
            KeyValue::B(b) => write!(f, "<{} bytes>", b.len()),
        }
    }
}

impl From<KeyValue> for AttributeValue {
    fn from(k: KeyValue) -> Self {
        match k {
            KeyValue::S(s) => AttributeValue::S(s),
            KeyValue::N(n) => AttributeValue::N(n),
            KeyValue::B(b) => AttributeValue::B(b),
        }
    }
}

impl From<&str> for KeyValue {
    fn from(s: &str) -> Self {
        KeyValue::S(s.to_owned())
    }
}

impl From<String> for KeyValue {
    fn from(s: String) -> Self {
        KeyValue::S(s)
    }
}

impl From<i64> for KeyValue {
    fn from(n: i64) -> Self {
        KeyValue::N(n.to_string())
    }
}

impl From<Vec<u8>> for KeyValue {
    fn from(b: Vec<u8>) -> Self {
        KeyValue::B(b)
    }
}

/// The scalar type of a key attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// String (`S`).
    S,
    /// Number (`N`).
    N,
    /// Binary (`B`).
    B,
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyType::S => "S (string)",
            KeyType::N => "N (number)",
            KeyType::B => "B (binary)",
        })
    }
}

/// An exact decimal number in DynamoDB's range (38 significant digits, 1E-130 to 9.99E+125).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Number(String);

impl Number {
    /// Validates a decimal string (`-12`, `3.25`, `1e10`).
    pub fn parse(text: &str) -> Result<Number, String> {
        parse_decimal(text).map(|_| Number(text.to_owned()))
    }

    /// A number from an exact value, written in plain notation without trailing zeros (`1500`,
    /// `0.025`), which DynamoDB reads exactly; refused outside DynamoDB's digits and range.
    pub(crate) fn from_decimal(value: &BigDecimal) -> Result<Number, String> {
        let value = value.normalized();
        let text = value.to_plain_string();
        check_limits(&text, &value)?;
        Ok(Number(text))
    }

    /// The decimal text as it is sent to DynamoDB (`1e3` stays `1e3`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as an integer, when it is one that fits.
    pub fn as_i64(&self) -> Option<i64> {
        integer_value(&self.0)
    }

    /// True when the text has no fraction or exponent: such numbers read back as integers.
    pub fn is_integer_literal(&self) -> bool {
        !self.0.contains(['.', 'e', 'E'])
    }
}

/// The exact value of DynamoDB number text (`-12`, `3.25`, `.5`, `1e10`, `1E-3`), refused
/// when DynamoDB would refuse it. Every reading of number text in the crate goes through here,
/// so that validation, comparisons and arithmetic agree on what a number is.
pub(crate) fn parse_decimal(text: &str) -> Result<BigDecimal, String> {
    let bad = || format!("{text:?} is not a number DynamoDB can store");
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], unsigned[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let digits: BigInt = format!("{int_part}{frac_part}").parse().map_err(|_| bad())?;
    let scale = i64::try_from(frac_part.len()).map_err(|_| bad())? - i64::from(exponent);
    let value = BigDecimal::new(if negative { -digits } else { digits }, scale);
    check_limits(text, &value)?;
    Ok(value)
}

/// DynamoDB keeps 38 significant digits and magnitudes from 1E-130 to 9.99E+125.
fn check_limits(text: &str, value: &BigDecimal) -> Result<(), String> {
    if value.is_zero() {
        return Ok(());
    }
    let normalized = value.normalized();
    let significant = normalized.digits();
    if significant > 38 {
        return Err(format!("{text:?} has more than the 38 significant digits DynamoDB keeps"));
    }
    // Decimal exponent of the leading digit.
    let (_, scale) = normalized.as_bigint_and_exponent();
    let magnitude = i64::try_from(significant).unwrap_or(i64::MAX) - scale - 1;
    if !(-130..=125).contains(&magnitude) {
        return Err(format!("{text:?} is outside DynamoDB's number range (1E-130 to 9.99E+125)"));
    }
    Ok(())
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Self {
        Number(n.to_string())
    }
}

/// A value the KV store and lock data hold: JSON's types plus bytes.
///
/// Each maps to DynamoDB's native type (`S`, `N`, `B`, `BOOL`, `NULL`, `L`, `M`), so every
/// language, the console and other tools read it directly.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// JSON's `null`; DynamoDB's `NULL`.
    Null,
    /// `true` or `false` (`BOOL`).
    Bool(bool),
    /// An exact decimal number (`N`).
    Number(Number),
    /// UTF-8 text (`S`).
    String(String),
    /// Binary data (`B`), which JSON cannot hold.
    Bytes(Vec<u8>),
    /// An ordered list of values (`L`).
    List(Vec<Value>),
    /// Named values (`M`), like a JSON object.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// A float, rejected if DynamoDB cannot store it (NaN, infinities).
    pub fn float(f: f64) -> Result<Value, Error> {
        if !f.is_finite() {
            return Err(Error::invalid_value(format!("{f} cannot be stored: DynamoDB numbers are finite")));
        }
        // Rust's shortest round-trip form, which DynamoDB parses exactly.
        let text = format!("{f:?}");
        Number::parse(&text).map(Value::Number).map_err(Error::invalid_value)
    }

    /// Refuses a value that DynamoDB could not store as an attribute: one nested deeper than
    /// [`MAX_NESTING_DEPTH`] levels, the item holding it being the first.
    pub fn validate(&self) -> Result<(), Error> {
        fn fits(value: &Value, levels_left: usize) -> bool {
            match value {
                Value::List(items) => levels_left > 0 && items.iter().all(|v| fits(v, levels_left - 1)),
                Value::Map(map) => levels_left > 0 && map.values().all(|v| fits(v, levels_left - 1)),
                _ => true,
            }
        }
        if fits(self, MAX_NESTING_DEPTH - 1) {
            Ok(())
        } else {
            Err(Error::invalid_value(format!(
                "the value is nested more than {} levels deep; DynamoDB stores items nested at most \
                 {MAX_NESTING_DEPTH} levels deep, the item being the first",
                MAX_NESTING_DEPTH - 1
            )))
        }
    }

    /// The attribute value DynamoDB stores for this value.
    pub fn to_attribute(&self) -> AttributeValue {
        match self {
            Value::Null => AttributeValue::Null,
            Value::Bool(b) => AttributeValue::Bool(*b),
            Value::Number(n) => AttributeValue::N(n.0.clone()),
            Value::String(s) => AttributeValue::S(s.clone()),
            Value::Bytes(b) => AttributeValue::B(b.clone()),
            Value::List(l) => AttributeValue::L(l.iter().map(Value::to_attribute).collect()),
            Value::Map(m) => AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), v.to_attribute())).collect()),
        }
    }

    /// Reads any attribute value; sets become lists.
    pub fn from_attribute(value: &AttributeValue) -> Value {
        match value {
            AttributeValue::S(s) => Value::String(s.clone()),
            AttributeValue::N(n) => Value::Number(Number(n.clone())),
            AttributeValue::B(b) => Value::Bytes(b.clone()),
            AttributeValue::Bool(b) => Value::Bool(*b),
            AttributeValue::Null => Value::Null,
            AttributeValue::L(l) => Value::List(l.iter().map(Value::from_attribute).collect()),
            AttributeValue::M(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), Value::from_attribute(v))).collect()),
            AttributeValue::Ss(v) => Value::List(v.iter().cloned().map(Value::String).collect()),
            AttributeValue::Ns(v) => Value::List(v.iter().map(|n| Value::Number(Number(n.clone()))).collect()),
            AttributeValue::Bs(v) => Value::List(v.iter().cloned().map(Value::Bytes).collect()),
        }
    }

    /// Converts to JSON. Bytes have no faithful JSON form, so they are refused.
    pub fn to_json(&self) -> Result<serde_json::Value, Error> {
        Ok(match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::from_str(n.as_str())
                .map_err(|_| Error::invalid_value(format!("number {n} has no exact JSON form")))?,
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Bytes(_) => return Err(Error::invalid_value("bytes have no JSON form; read the Value directly")),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect::<Result<_, _>>()?),
            Value::Map(m) => serde_json::Value::Object(
                m.iter().map(|(k, v)| Ok((k.clone(), v.to_json()?))).collect::<Result<_, Error>>()?,
            ),
        })
    }
}

impl TryFrom<serde_json::Value> for Value {
    type Error = Error;

    fn try_from(json: serde_json::Value) -> Result<Self, Error> {
        Ok(match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(Number::parse(&n.to_string()).map_err(Error::invalid_value)?),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::List(a.into_iter().map(Value::try_from).collect::<Result<_, _>>()?),
            serde_json::Value::Object(o) => {
                Value::Map(o.into_iter().map(|(k, v)| Ok((k, Value::try_from(v)?))).collect::<Result<_, Error>>()?)
            }
        })
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_within_dynamodb_limits_parse() {
        for ok in ["0", "-12", "3.25", "1e10", "1E-130", "9.99E+125", "12345678901234567890123456789012345678", "0.000"] {
            assert!(Number::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-", "abc", "1.2.3", "1e", "NaN", "1e126", "1e-131", "123456789012345678901234567890123456789"] {
            assert!(Number::parse(bad).is_err(), "{bad}");
        }
    }

    fn decimal(text: &str) -> BigDecimal {
        parse_decimal(text).unwrap_or_else(|e| panic!("{text} should parse: {e}"))
    }

    #[test]
    fn numbers_parse_to_exact_values() {
        assert_eq!(decimal("1.50"), decimal("1.5"));
        assert_eq!(decimal("0.000"), BigDecimal::zero());
        assert_eq!(decimal("-0"), BigDecimal::zero());
        assert_eq!(decimal("1e3"), decimal("1000"));
        assert_eq!(decimal(".5"), decimal("5E-1"));
        for bad in ["", "-", ".", "1e", "abc", "1.2.3", "+-1", "1e1.5", "+1", "1_000", " 1"] {
            assert!(parse_decimal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_order_by_value() {
        let ordered = ["-100", "-9.5", "-9", "-0.001", "0", "0.001", "0.01", "1", "1.05", "1.5", "9", "10", "1e2"];
        for pair in ordered.windows(2) {
            assert!(decimal(pair[0]) < decimal(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn sums_are_exact_and_written_plainly() {
        let sum = |a: &str, b: &str| Number::from_decimal(&(decimal(a) + decimal(b))).map(|n| n.as_str().to_owned());
        assert_eq!(sum("0.1", "0.2").unwrap(), "0.3");
        assert_eq!(sum("9", "1").unwrap(), "10");
        assert_eq!(sum("1", "-1").unwrap(), "0");
        assert_eq!(sum("-5", "3").unwrap(), "-2");
        assert_eq!(sum("1e3", "0.25").unwrap(), "1000.25");
        assert_eq!(sum("-0.001", "0").unwrap(), "-0.001");
        assert_eq!(sum("1.50", "0").unwrap(), "1.5");
        let big = "12345678901234567890123456789012345678";
        assert_eq!(sum(big, "1").unwrap(), "12345678901234567890123456789012345679");
        assert_eq!(sum("1E-130", "1E-130").unwrap(), "0.".to_owned() + &"0".repeat(129) + "2");
        assert!(sum(&"9".repeat(38), "1").is_ok(), "1E+38 has one significant digit");
        assert!(sum(&"9".repeat(38), "2").unwrap_err().contains("38 significant digits"));
        assert!(sum("9.99E+125", "9.99E+125").unwrap_err().contains("number range"));
    }

    #[test]
    fn integers_read_back_exactly() {
        let int = |text: &str| Number::parse(text).unwrap().as_i64();
        assert_eq!(int("12"), Some(12));
        assert_eq!(int("-12"), Some(-12));
        assert_eq!(int("1.0"), Some(1));
        assert_eq!(int("1E+3"), Some(1000));
        assert_eq!(int("9007199254740993"), Some(9_007_199_254_740_993));
        assert_eq!(int("9223372036854775807"), Some(i64::MAX));
        assert_eq!(int("9223372036854775808"), None);
        assert_eq!(int("1.5"), None);
        assert_eq!(int("1E-3"), None);
        assert_eq!(AttributeValue::N("2.50E1".into()).as_i64(), Some(25));
        assert_eq!(AttributeValue::N("x".into()).as_i64(), None);
    }

    #[test]
    fn values_nested_deeper_than_dynamodb_stores_are_refused() {
        let nested = |levels: usize, innermost: Value| {
            (0..levels).fold(innermost, |inner, i| {
                if i % 2 == 0 {
                    Value::List(vec![inner])
                } else {
                    Value::Map([("a".to_owned(), inner)].into())
                }
            })
        };
        let deepest = nested(MAX_NESTING_DEPTH - 1, Value::from("x"));
        deepest.validate().unwrap();
        assert!(deepest.to_attribute().within_nesting_limit());
        let scalars_add_no_level = nested(MAX_NESTING_DEPTH - 1, Value::Bytes(vec![1]));
        scalars_add_no_level.validate().unwrap();
        for too_deep in [nested(MAX_NESTING_DEPTH, Value::Null), nested(MAX_NESTING_DEPTH - 1, Value::List(vec![]))] {
            let message = too_deep.validate().unwrap_err().to_string();
            assert!(message.contains("at most 32 levels"), "{message}");
            assert!(!too_deep.to_attribute().within_nesting_limit());
        }
        let set = AttributeValue::Ss(vec!["a".into()]);
        let in_maps = (0..MAX_NESTING_DEPTH - 1).fold(set, |inner, _| AttributeValue::M([("a".to_owned(), inner)].into()));
        assert!(in_maps.within_nesting_limit(), "sets add no level");
    }

    #[test]
    fn non_finite_floats_are_refused() {
        assert!(Value::float(f64::NAN).is_err());
        assert!(Value::float(f64::INFINITY).is_err());
        assert_eq!(Value::float(0.1).unwrap(), Value::Number(Number("0.1".into())));
    }

    #[test]
    fn values_round_trip_through_attributes() {
        let json = serde_json::json!({"a": [1, "x", true, null, {"b": 2.5}], "big": 12345678901234567890u64});
        let value = Value::try_from(json.clone()).unwrap();
        let back = Value::from_attribute(&value.to_attribute());
        assert_eq!(back, value);
        assert_eq!(back.to_json().unwrap(), json);
    }

    #[test]
    fn empty_keys_are_refused() {
        assert!(KeyValue::S(String::new()).validate("lock id", MAX_PARTITION_KEY_BYTES).is_err());
        assert!(KeyValue::B(vec![]).validate("lock id", MAX_PARTITION_KEY_BYTES).is_err());
        assert!(KeyValue::N("x".into()).validate("lock id", MAX_PARTITION_KEY_BYTES).is_err());
        assert!(KeyValue::S("a".into()).validate("lock id", MAX_PARTITION_KEY_BYTES).is_ok());
        assert!(KeyValue::S("é".repeat(1024)).validate("lock id", MAX_PARTITION_KEY_BYTES).is_ok());
        let long = KeyValue::S("é".repeat(1025)).validate("lock id", MAX_PARTITION_KEY_BYTES).unwrap_err();
        assert!(long.to_string().contains("2050 bytes"), "{long}");
        assert!(KeyValue::B(vec![1; 1025]).validate("sort part", MAX_SORT_KEY_BYTES).is_err());
    }
}
