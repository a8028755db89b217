//! Condition and update expressions as data.
//!
//! The lock and KV engines build these trees; the memory transport evaluates them directly and
//! every other transport renders them to DynamoDB's expression strings. Placeholders are chosen
//! by the caller (`#partitionKey`, `:guid`), so the rendered text is stable and can match another
//! client's requests byte for byte.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::value::AttributeValue;

/// A reference to a top-level attribute.
///
/// A `placeholder` starting with `#` is sent through `ExpressionAttributeNames`; any other
/// placeholder is written into the expression as is, which suits names that are not DynamoDB
/// reserved words (`guid`, `fencingToken`).
#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    /// What the expression text says: `#name` for an alias, or the attribute name itself.
    pub placeholder: Cow<'static, str>,
    /// The attribute's name in the item.
    pub attribute: String,
}

impl Name {
    /// An attribute referenced through an `ExpressionAttributeNames` placeholder.
    pub fn aliased(placeholder: &'static str, attribute: impl Into<String>) -> Name {
        debug_assert!(placeholder.starts_with('#'));
        Name { placeholder: Cow::Borrowed(placeholder), attribute: attribute.into() }
    }

    /// An attribute written literally (its name must not be a DynamoDB reserved word).
    pub fn raw(attribute: &'static str) -> Name {
        Name { placeholder: Cow::Borrowed(attribute), attribute: attribute.to_owned() }
    }
}

/// A value bound to an `ExpressionAttributeValues` placeholder such as `:guid`.
#[derive(Clone, Debug, PartialEq)]
pub struct Placeholder {
    /// The placeholder in the expression text, starting with `:`.
    pub placeholder: Cow<'static, str>,
    /// The value sent for it in `ExpressionAttributeValues`.
    pub value: AttributeValue,
}

/// Shorthand for a [`Placeholder`].
pub fn val(placeholder: &'static str, value: AttributeValue) -> Placeholder {
    debug_assert!(placeholder.starts_with(':'));
    Placeholder { placeholder: Cow::Borrowed(placeholder), value }
}

/// A comparison of an attribute with a value, as in `fencingToken = :fencingToken`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal (`=`).
    Eq,
    /// Not equal (`<>`); also true when the attribute is absent.
    Ne,
    /// Less than (`<`).
    Lt,
    /// Less than or equal (`<=`).
    Le,
    /// Greater than (`>`).
    Gt,
    /// Greater than or equal (`>=`).
    Ge,
}

impl CompareOp {
    /// The operator as DynamoDB's expression language writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// A condition (or filter) expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// `attribute_exists(name)`: the item exists and has the attribute.
    Exists(Name),
    /// `attribute_not_exists(name)`: no such attribute; on a key attribute, no such item.
    NotExists(Name),
    /// `name <op> :value`; false when the attribute is absent, except for `<>`.
    Compare(Name, CompareOp, Placeholder),
    /// `begins_with(name, :prefix)`, for strings and bytes.
    BeginsWith(Name, Placeholder),
    /// True when every part is.
    And(Vec<Condition>),
    /// True when any part is.
    Or(Vec<Condition>),
    /// `not (...)`: true when the inner condition is false.
    Not(Box<Condition>),
}

impl Condition {
    /// `name = :value`.
    pub fn eq(name: Name, value: Placeholder) -> Condition {
        Condition::Compare(name, CompareOp::Eq, value)
    }

    /// Both conditions; appends to an existing `And` instead of nesting, so the rendered text
    /// stays flat.
    pub fn and(self, other: Condition) -> Condition {
        match self {
            Condition::And(mut all) => {
                all.push(other);
                Condition::And(all)
            }
            first => Condition::And(vec![first, other]),
        }
    }

    /// Either condition; appends to an existing `Or` instead of nesting, so the rendered text
    /// stays flat.
    pub fn or(self, other: Condition) -> Condition {
        match self {
            Condition::Or(mut any) => {
                any.push(other);
                Condition::Or(any)
            }
            first => Condition::Or(vec![first, other]),
        }
    }

    /// Renders the expression, registering its names and values in `attrs`.
    ///
    /// Nested `and`/`or` groups are parenthesised and the outermost is not, which reproduces
    /// the strings dynamodb-lock-client sends.
    pub fn render(&self, attrs: &mut ExpressionAttributes) -> String {
        self.render_nested(attrs, false)
    }

    fn render_nested(&self, attrs: &mut ExpressionAttributes, nested: bool) -> String {
        let group = |parts: &[Condition], joiner: &str, attrs: &mut ExpressionAttributes| {
            let text = parts.iter().map(|c| c.render_nested(attrs, true)).collect::<Vec<_>>().join(joiner);
            if nested && parts.len() > 1 {
                format!("({text})")
            } else {
                text
            }
        };
        match self {
            Condition::Exists(n) => format!("attribute_exists({})", attrs.name(n)),
            Condition::NotExists(n) => format!("attribute_not_exists({})", attrs.name(n)),
            Condition::Compare(n, op, v) => format!("{} {} {}", attrs.name(n), op.symbol(), attrs.value(v)),
            Condition::BeginsWith(n, v) => format!("begins_with({}, {})", attrs.name(n), attrs.value(v)),
            Condition::And(parts) => group(parts, " and ", attrs),
            Condition::Or(parts) => group(parts, " or ", attrs),
            Condition::Not(inner) => format!("not ({})", inner.render_nested(attrs, false)),
        }
    }
}

/// What an update sets an attribute to.
#[derive(Clone, Debug, PartialEq)]
pub enum SetValue {
    /// `name = :value`.
    Value(Placeholder),
    /// `if_not_exists(name, :start) + :increment`: counters that survive a missing attribute.
    IncrementFrom {
        /// The value counted from when the attribute is absent.
        start: Placeholder,
        /// What is added.
        increment: Placeholder,
    },
}

/// One clause item of an update expression.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateAction {
    /// `SET name = ...`: creates or replaces the attribute.
    Set(Name, SetValue),
    /// `REMOVE name`: deletes the attribute; nothing happens if it is absent.
    Remove(Name),
}

/// An update expression: `SET ...` and `REMOVE ...` clauses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    /// The actions in order; rendering groups them into one `SET` and one `REMOVE` clause.
    pub actions: Vec<UpdateAction>,
}

impl Update {
    /// Adds `SET name = :value`.
    pub fn set(mut self, name: Name, value: Placeholder) -> Update {
        self.actions.push(UpdateAction::Set(name, SetValue::Value(value)));
        self
    }

    /// Adds `SET name = if_not_exists(name, :start) + :increment`: a counter that starts from
    /// `start` when the attribute is absent.
    pub fn increment(mut self, name: Name, start: Placeholder, increment: Placeholder) -> Update {
        self.actions.push(UpdateAction::Set(name, SetValue::IncrementFrom { start, increment }));
        self
    }

    /// Adds `REMOVE name`.
    pub fn remove(mut self, name: Name) -> Update {
        self.actions.push(UpdateAction::Remove(name));
        self
    }

    /// Renders `SET ...` then `REMOVE ...`, registering names and values in `attrs`; an empty
    /// update renders as an empty string.
    pub fn render(&self, attrs: &mut ExpressionAttributes) -> String {
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        for action in &self.actions {
            match action {
                UpdateAction::Set(n, SetValue::Value(v)) => sets.push(format!("{} = {}", attrs.name(n), attrs.value(v))),
                UpdateAction::Set(n, SetValue::IncrementFrom { start, increment }) => {
                    let name = attrs.name(n);
                    sets.push(format!("{name} = if_not_exists({name}, {}) + {}", attrs.value(start), attrs.value(increment)))
                }
                UpdateAction::Remove(n) => removes.push(attrs.name(n)),
            }
        }
        let mut clauses = Vec::new();
        if !sets.is_empty() {
            clauses.push(format!("SET {}", sets.join(", ")));
        }
        if !removes.is_empty() {
            clauses.push(format!("REMOVE {}", removes.join(", ")));
        }
        clauses.join(" ")
    }
}

/// The `ExpressionAttributeNames` and `ExpressionAttributeValues` shared by the expressions of
/// one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExpressionAttributes {
    /// `ExpressionAttributeNames`: `#placeholder` to attribute name.
    pub names: BTreeMap<String, String>,
    /// `ExpressionAttributeValues`: `:placeholder` to value.
    pub values: BTreeMap<String, AttributeValue>,
}

impl ExpressionAttributes {
    fn name(&mut self, name: &Name) -> String {
        if name.placeholder.starts_with('#') {
            let previous = self.names.insert(name.placeholder.to_string(), name.attribute.clone());
            debug_assert!(previous.is_none_or(|p| p == name.attribute), "placeholder {} reused", name.placeholder);
        }
        name.placeholder.to_string()
    }

    fn value(&mut self, value: &Placeholder) -> String {
        let previous = self.values.insert(value.placeholder.to_string(), value.value.clone());
        debug_assert!(previous.is_none_or(|p| p == value.value), "placeholder {} reused", value.placeholder);
        value.placeholder.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_dlc_takeover_condition_exactly() {
        let pk = Name::aliased("#partitionKey", "id");
        let sk = Name::aliased("#sortKey", "sort");
        let cond = Condition::And(vec![Condition::NotExists(pk), Condition::NotExists(sk)]).or(Condition::And(vec![
            Condition::eq(Name::raw("guid"), val(":guid", AttributeValue::B(vec![1]))),
            Condition::eq(Name::raw("fencingToken"), val(":fencingToken", AttributeValue::int(3))),
        ]));
        let mut attrs = ExpressionAttributes::default();
        assert_eq!(
            cond.render(&mut attrs),
            "(attribute_not_exists(#partitionKey) and attribute_not_exists(#sortKey)) or (guid = :guid and fencingToken = :fencingToken)"
        );
        assert_eq!(attrs.names.len(), 2);
        assert_eq!(attrs.values[":fencingToken"], AttributeValue::N("3".into()));
    }

    #[test]
    fn renders_updates_with_counters_and_removals() {
        let update = Update::default()
            .set(Name::aliased("#owner", "owner"), val(":owner", AttributeValue::S("me".into())))
            .increment(Name::raw("fencingToken"), val(":zero", AttributeValue::int(0)), val(":one", AttributeValue::int(1)))
            .remove(Name::aliased("#data", "lockData"));
        let mut attrs = ExpressionAttributes::default();
        assert_eq!(
            update.render(&mut attrs),
            "SET #owner = :owner, fencingToken = if_not_exists(fencingToken, :zero) + :one REMOVE #data"
        );
        assert_eq!(attrs.names["#data"], "lockData");
    }
}
