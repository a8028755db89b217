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
    pub placeholder: Cow<'static, str>,
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
    pub placeholder: Cow<'static, str>,
    pub value: AttributeValue,
}

/// Shorthand for a [`Placeholder`].
pub fn val(placeholder: &'static str, value: AttributeValue) -> Placeholder {
    debug_assert!(placeholder.starts_with(':'));
    Placeholder { placeholder: Cow::Borrowed(placeholder), value }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
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
    Exists(Name),
    NotExists(Name),
    Compare(Name, CompareOp, Placeholder),
    BeginsWith(Name, Placeholder),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
}

impl Condition {
    pub fn eq(name: Name, value: Placeholder) -> Condition {
        Condition::Compare(name, CompareOp::Eq, value)
    }

    pub fn and(self, other: Condition) -> Condition {
        match self {
            Condition::And(mut all) => {
                all.push(other);
                Condition::And(all)
            }
            first => Condition::And(vec![first, other]),
        }
    }

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
    Value(Placeholder),
    /// `if_not_exists(name, :start) + :increment`: counters that survive a missing attribute.
    IncrementFrom { start: Placeholder, increment: Placeholder },
}

#[derive(Clone, Debug, PartialEq)]
pub enum UpdateAction {
    Set(Name, SetValue),
    Remove(Name),
}

/// An update expression: `SET ...` and `REMOVE ...` clauses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    pub actions: Vec<UpdateAction>,
}

impl Update {
    pub fn set(mut self, name: Name, value: Placeholder) -> Update {
        self.actions.push(UpdateAction::Set(name, SetValue::Value(value)));
        self
    }

    pub fn increment(mut self, name: Name, start: Placeholder, increment: Placeholder) -> Update {
        self.actions.push(UpdateAction::Set(name, SetValue::IncrementFrom { start, increment }));
        self
    }

    pub fn remove(mut self, name: Name) -> Update {
        self.actions.push(UpdateAction::Remove(name));
        self
    }

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
    pub names: BTreeMap<String, String>,
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
