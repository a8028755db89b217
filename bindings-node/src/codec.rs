//! Values cross the JS boundary as DynamoDB's own JSON format (`{"S": ".."}`, `{"N": "12"}`,
//! `{"B": "<base64>"}`, `{"M": {..}}`, ...): one well-known shape, exact for numbers of any
//! size and for bytes, which plain JSON or napi's object conversion would not be. The JS layer
//! (lib/codec.js) turns it into plain JS values and back.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use dynalease::lock::LockId;
use dynalease::{AttributeValue, Error, Item, KeyValue};
use serde_json::{json, Map, Value as Json};

fn bad(what: &str) -> Error {
    Error::config(format!("malformed value from the JS layer: {what}"))
}

pub fn attribute_to_json(value: &AttributeValue) -> Json {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": STANDARD.encode(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null => json!({ "NULL": true }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(attribute_to_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": item_to_json(m) }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::Bs(v) => json!({ "BS": v.iter().map(|b| STANDARD.encode(b)).collect::<Vec<_>>() }),
    }
}

pub fn item_to_json(item: &Item) -> Json {
    Json::Object(item.iter().map(|(k, v)| (k.clone(), attribute_to_json(v))).collect::<Map<_, _>>())
}

fn bytes(json: &Json) -> Result<Vec<u8>, Error> {
    STANDARD.decode(json.as_str().ok_or_else(|| bad("B is not a string"))?).map_err(|_| bad("B is not base64"))
}

fn strings(json: &Json) -> Result<Vec<String>, Error> {
    json.as_array()
        .ok_or_else(|| bad("set is not an array"))?
        .iter()
        .map(|s| s.as_str().map(str::to_owned).ok_or_else(|| bad("set member is not a string")))
        .collect()
}

pub fn attribute_from_json(json: &Json) -> Result<AttributeValue, Error> {
    let object = json.as_object().filter(|o| o.len() == 1).ok_or_else(|| bad("expected one type tag"))?;
    let (tag, inner) = object.iter().next().ok_or_else(|| bad("empty value"))?;
    Ok(match tag.as_str() {
        "S" => AttributeValue::S(inner.as_str().ok_or_else(|| bad("S is not a string"))?.to_owned()),
        "N" => AttributeValue::N(inner.as_str().ok_or_else(|| bad("N is not a string"))?.to_owned()),
        "B" => AttributeValue::B(bytes(inner)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or_else(|| bad("BOOL is not a boolean"))?),
        "NULL" => AttributeValue::Null,
        "L" => AttributeValue::L(
            inner.as_array().ok_or_else(|| bad("L is not an array"))?.iter().map(attribute_from_json).collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(item_from_json(inner)?),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "BS" => AttributeValue::Bs(
            inner.as_array().ok_or_else(|| bad("BS is not an array"))?.iter().map(bytes).collect::<Result<_, _>>()?,
        ),
        other => return Err(bad(&format!("unknown type tag {other:?}"))),
    })
}

pub fn item_from_json(json: &Json) -> Result<Item, Error> {
    json.as_object()
        .ok_or_else(|| bad("item is not an object"))?
        .iter()
        .map(|(k, v)| Ok((k.clone(), attribute_from_json(v)?)))
        .collect::<Result<BTreeMap<_, _>, Error>>()
}

pub fn parse(text: &str) -> Result<Json, Error> {
    serde_json::from_str(text).map_err(|e| bad(&e.to_string()))
}

/// A stored value (KV values, lock data) from its DynamoDB JSON.
pub fn value_from_text(text: &str) -> Result<dynalease::Value, Error> {
    let attribute = attribute_from_json(&parse(text)?)?;
    if let AttributeValue::N(n) = &attribute {
        dynalease::Number::parse(n).map_err(Error::invalid_value)?;
    }
    Ok(dynalease::Value::from_attribute(&attribute))
}

pub fn value_to_text(value: &dynalease::Value) -> String {
    attribute_to_json(&value.to_attribute()).to_string()
}

/// A lock id: `{"partition": <S|N|B>, "sort": <S|N|B> | null}`.
pub fn lock_id_from_text(text: &str) -> Result<LockId, Error> {
    let json = parse(text)?;
    let part = |name: &str| -> Result<Option<KeyValue>, Error> {
        match json.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => KeyValue::from_attribute(&attribute_from_json(v)?)
                .map(Some)
                .ok_or_else(|| Error::config(format!("the lock id's {name} part must be a string, a number or bytes"))),
        }
    };
    let partition = part("partition")?.ok_or_else(|| Error::config("a lock id is required"))?;
    Ok(LockId { partition, sort: part("sort")? })
}

pub fn lock_id_to_json(id: &LockId) -> Json {
    json!({
        "partition": attribute_to_json(&id.partition.clone().into()),
        "sort": id.sort.clone().map(|s| attribute_to_json(&s.into())),
    })
}
