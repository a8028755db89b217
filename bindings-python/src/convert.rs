//! Python objects <-> core types: durations, values, lock ids. Every rejection is a
//! `ConfigError` naming the offending type or value, raised before anything is sent.

use std::collections::BTreeMap;
use std::time::Duration;

use dynalease::lock::LockId;
use dynalease::{KeyValue, Number, Value};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::{config_error, CoreResultExt};

/// Turns a self-referencing list or dict into an error instead of a stack overflow. The core
/// checks DynamoDB's exact limit (`Value::validate`); anything deeper than it is refused here.
const MAX_NESTING: usize = dynalease::value::MAX_NESTING_DEPTH;

/// Seconds (int or float) to a duration; negative, NaN, infinite or non-numbers are refused.
pub fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    if !value.is_finite() || value < 0.0 {
        return Err(config_error(format!("{name} must be a finite number of seconds >= 0 (got {value})")));
    }
    Duration::try_from_secs_f64(value).map_err(|_| config_error(format!("{name} is too large (got {value} seconds)")))
}

pub fn optional_seconds(name: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    value.map(|v| seconds(name, v)).transpose()
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// A Python value to a stored value: dict (str keys), list, tuple, str, int, float, bool, None,
/// bytes, bytearray.
pub fn to_value(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    to_value_at(value, 0)
}

fn to_value_at(value: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_NESTING {
        return Err(config_error(format!(
            "the value is nested more than {MAX_NESTING} levels deep (or contains itself); DynamoDB stores at most {MAX_NESTING}"
        )));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is an int subclass, but DynamoDB has a separate BOOL type.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        // Through the decimal text, so integers of any size DynamoDB accepts stay exact.
        let text = value.str()?.to_string();
        return Number::parse(&text).map(Value::Number).map_err(config_error);
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Value::float(f.value()).py();
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = value.cast::<PyByteArray>() {
        return Ok(Value::Bytes(b.to_vec()));
    }
    if let Ok(list) = value.cast::<PyList>() {
        return list.iter().map(|item| to_value_at(&item, depth + 1)).collect::<PyResult<_>>().map(Value::List);
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return tuple.iter().map(|item| to_value_at(&item, depth + 1)).collect::<PyResult<_>>().map(Value::List);
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = BTreeMap::new();
        for (key, item) in dict.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(config_error(format!(
                    "dict keys must be str to be stored (found a key of type {})",
                    type_name(&key)
                )));
            };
            map.insert(key.to_cow()?.into_owned(), to_value_at(&item, depth + 1)?);
        }
        return Ok(Value::Map(map));
    }
    Err(config_error(format!(
        "values of type {} cannot be stored; use dict, list, tuple, str, int, float, bool, None or bytes",
        type_name(value)
    )))
}

/// A stored value back to Python. Numbers written without '.' or an exponent are ints (exact,
/// any size); others are floats. Lists come back as lists (tuples are not remembered).
pub fn from_value<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => number(py, n)?,
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::List(items) => {
            PyList::new(py, items.iter().map(|item| from_value(py, item)).collect::<PyResult<Vec<_>>>()?)?.into_any()
        }
        Value::Map(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, from_value(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

fn number<'py>(py: Python<'py>, n: &Number) -> PyResult<Bound<'py, PyAny>> {
    if n.is_integer_literal() {
        py.get_type::<PyInt>().call1((n.as_str(),))
    } else {
        py.get_type::<PyFloat>().call1((n.as_str(),))
    }
}

/// One part of a lock id: str, int or bytes (bool is refused: True is not a lock name).
fn key_value(value: &Bound<'_, PyAny>, what: &str) -> PyResult<KeyValue> {
    if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!("{what} must be str, int or bytes, not bool")));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(KeyValue::S(s.to_cow()?.into_owned()));
    }
    if value.is_instance_of::<PyInt>() {
        return Ok(KeyValue::N(value.str()?.to_string()));
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(KeyValue::B(b.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err(format!("{what} must be str, int or bytes, not {}", type_name(value))))
}

/// A lock id: one key value, or a `(partition, sort)` tuple for a client with a sort key. The
/// core checks that the shape fits the client.
pub fn lock_id(value: &Bound<'_, PyAny>) -> PyResult<LockId> {
    lock_id_named(value, "lock id")
}

/// A lock id that the caller knows by another name (an election's or a semaphore's `name`),
/// so that a type error names the argument that has the wrong type.
pub fn lock_id_named(value: &Bound<'_, PyAny>, what: &str) -> PyResult<LockId> {
    if let Ok(tuple) = value.cast::<PyTuple>() {
        if tuple.len() != 2 {
            return Err(config_error(format!("a {what} tuple must be (partition, sort), got {} items", tuple.len())));
        }
        let partition = key_value(&tuple.get_item(0)?, &format!("the {what}'s partition part"))?;
        let sort = key_value(&tuple.get_item(1)?, &format!("the {what}'s sort part"))?;
        return Ok(LockId { partition, sort: Some(sort) });
    }
    Ok(LockId { partition: key_value(value, what)?, sort: None })
}

fn key_value_to_py<'py>(py: Python<'py>, value: &KeyValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        KeyValue::S(s) => PyString::new(py, s).into_any(),
        KeyValue::N(n) => number(py, &Number::parse(n).map_err(config_error)?)?,
        KeyValue::B(b) => PyBytes::new(py, b).into_any(),
    })
}

pub fn lock_id_to_py<'py>(py: Python<'py>, id: &LockId) -> PyResult<Bound<'py, PyAny>> {
    let partition = key_value_to_py(py, &id.partition)?;
    Ok(match &id.sort {
        Some(sort) => PyTuple::new(py, [partition, key_value_to_py(py, sort)?])?.into_any(),
        None => partition,
    })
}
