//! `client.stats()` as a Python dict, and `dynalease.emf()`: a CloudWatch embedded-metric-format
//! line built by the core (`StatsSnapshot::to_emf`, per period with `StatsSnapshot::since`).
//!
//! The dict is made from the core's list of counters (`StatsSnapshot::counters`), so a counter
//! the core adds shows up here without a change. Besides the counters it has the snapshot's other
//! fields, named by the constants below.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dynalease::stats::{Stats, StatsSnapshot, WaitHistogram};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString};

use crate::errors::{config_error, CoreResultExt};
use crate::kv::KVStoreBase;
use crate::locks::LockClientBase;

const READ_UNITS: &str = "read_units";
const WRITE_UNITS: &str = "write_units";
const ACQUIRE_WAIT: &str = "acquire_wait";
const BOUNDS_MS: &str = "bounds_ms";
const COUNTS: &str = "counts";
const SUM_SECONDS: &str = "sum_seconds";

/// The snapshot of a client that did nothing yet.
pub fn nothing() -> StatsSnapshot {
    Stats::default().snapshot()
}

/// A snapshot as the dict `stats()` returns: every counter by the core's name, the capacity
/// units, and the acquisition-wait histogram.
pub fn to_dict<'py>(py: Python<'py>, snapshot: &StatsSnapshot) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, value) in snapshot.counters() {
        dict.set_item(name, value)?;
    }
    dict.set_item(READ_UNITS, snapshot.read_units)?;
    dict.set_item(WRITE_UNITS, snapshot.write_units)?;
    let wait = PyDict::new(py);
    wait.set_item(BOUNDS_MS, &snapshot.acquire_wait.bounds_ms)?;
    wait.set_item(COUNTS, &snapshot.acquire_wait.counts)?;
    wait.set_item(SUM_SECONDS, snapshot.acquire_wait.sum.as_secs_f64())?;
    dict.set_item(ACQUIRE_WAIT, wait)?;
    Ok(dict)
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// `dict[key]`, or a ConfigError saying that `what` is not a stats() dict.
fn member<'py>(dict: &Bound<'py, PyDict>, key: &str, what: &str) -> PyResult<Bound<'py, PyAny>> {
    dict.get_item(key)?
        .ok_or_else(|| config_error(format!("{what} must be a dict that stats() returned; it has no {key:?}")))
}

fn count(value: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<pyo3::types::PyBool>() {
        if let Ok(count) = value.extract::<u64>() {
            return Ok(count);
        }
        return Err(config_error(format!("{what} must be a count >= 0 (got {value})")));
    }
    Err(PyTypeError::new_err(format!("{what} must be an int, not {}", type_name(value))))
}

fn amount(value: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if !(value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>()) || value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!("{what} must be a number, not {}", type_name(value))));
    }
    let amount: f64 = value.extract()?;
    if !amount.is_finite() || amount < 0.0 {
        return Err(config_error(format!("{what} must be a finite number >= 0 (got {amount})")));
    }
    Ok(amount)
}

fn counts(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u64>> {
    let list = value.cast::<PyList>().map_err(|_| PyTypeError::new_err(format!("{what} must be a list of ints, not {}", type_name(value))))?;
    list.iter().enumerate().map(|(i, item)| count(&item, &format!("{what}[{i}]"))).collect()
}

/// A dict `stats()` returned (or one like it, e.g. read back from JSON), as a core snapshot.
pub fn from_dict(value: &Bound<'_, PyAny>, what: &str) -> PyResult<StatsSnapshot> {
    let dict = value
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a dict that stats() returned, not {}", type_name(value))))?;
    let mut snapshot = nothing();
    let names: Vec<&'static str> = snapshot.counters().into_iter().map(|(name, _)| name).collect();
    for name in names {
        let value = count(&member(dict, name, what)?, &format!("{what}[{name:?}]"))?;
        if let Some(field) = snapshot.counter_mut(name) {
            *field = value;
        }
    }
    snapshot.read_units = amount(&member(dict, READ_UNITS, what)?, &format!("{what}[{READ_UNITS:?}]"))?;
    snapshot.write_units = amount(&member(dict, WRITE_UNITS, what)?, &format!("{what}[{WRITE_UNITS:?}]"))?;
    let wait_what = format!("{what}[{ACQUIRE_WAIT:?}]");
    let wait = member(dict, ACQUIRE_WAIT, what)?;
    let wait = wait.cast::<PyDict>().map_err(|_| PyTypeError::new_err(format!("{wait_what} must be a dict, not {}", type_name(&wait))))?;
    let bounds_ms = counts(&member(wait, BOUNDS_MS, &wait_what)?, &format!("{wait_what}[{BOUNDS_MS:?}]"))?;
    let counts = counts(&member(wait, COUNTS, &wait_what)?, &format!("{wait_what}[{COUNTS:?}]"))?;
    if counts.len() != bounds_ms.len() + 1 {
        return Err(config_error(format!(
            "{wait_what} has {} counts for {} bounds; stats() gives one count more than bounds (the last: longer than every bound)",
            counts.len(),
            bounds_ms.len()
        )));
    }
    let sum = amount(&member(wait, SUM_SECONDS, &wait_what)?, &format!("{wait_what}[{SUM_SECONDS:?}]"))?;
    snapshot.acquire_wait = WaitHistogram { bounds_ms, counts, sum: Duration::from_secs_f64(sum) };
    Ok(snapshot)
}

/// The snapshot of a client now, or of a dict `stats()` returned.
fn snapshot_of(source: &Bound<'_, PyAny>, what: &str) -> PyResult<StatsSnapshot> {
    if let Ok(client) = source.cast::<LockClientBase>() {
        return Ok(client.get().locks.stats());
    }
    if let Ok(store) = source.cast::<KVStoreBase>() {
        return Ok(store.get().snapshot());
    }
    if source.is_instance_of::<PyDict>() {
        return from_dict(source, what);
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be a LockClient, AsyncLockClient, KVStore or AsyncKVStore, or a dict that stats() returned, not {}",
        type_name(source)
    )))
}

/// `dimensions` (a dict of str to str, in order), as the core takes them.
fn dimension_pairs(dimensions: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(dimensions) = dimensions.filter(|d| !d.is_none()) else {
        return Ok(Vec::new());
    };
    let dict = dimensions
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err(format!("dimensions must be a dict of str to str, not {}", type_name(dimensions))))?;
    dict.iter()
        .map(|(name, value)| {
            let text = |v: &Bound<'_, PyAny>, role: &str| -> PyResult<String> {
                v.cast::<PyString>()
                    .map(|s| s.to_string())
                    .map_err(|_| PyTypeError::new_err(format!("dimensions: each {role} must be a str, not {}", type_name(v))))
            };
            Ok((text(&name, "name")?, text(&value, "value")?))
        })
        .collect()
}

/// One CloudWatch embedded-metric-format (EMF) document, as one line of JSON: print it to an
/// AWS Lambda function's log (stdout) and CloudWatch records every count of `source` as a metric
/// in `namespace`, with `dimensions` (a dict of names to values) on each.
///
/// `source` is a LockClient, AsyncLockClient, KVStore or AsyncKVStore (its counts now), or a
/// dict that stats() returned. Counts are totals since the client was made; pass `since=` a
/// dict stats() returned earlier (of the same client) to publish what happened since then,
/// e.g. during one invocation. Metrics: every counter and `read_units` / `write_units` (Count),
/// and `acquire_wait_mean_ms` (Milliseconds) when acquisitions waited in the period. For
/// several clients, print one line for each, with a dimension that tells them apart.
///
///     before = locks.stats()
///     ...                                  # the invocation's work
///     print(dynalease.emf(locks, "Orders", {"Function": "checkout"}, since=before))
#[pyfunction]
#[pyo3(signature = (source, namespace, dimensions = None, since = None))]
pub fn emf(source: &Bound<'_, PyAny>, namespace: &str, dimensions: Option<&Bound<'_, PyAny>>, since: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
    let mut snapshot = snapshot_of(source, "source")?;
    if let Some(since) = since.filter(|s| !s.is_none()) {
        let earlier = from_dict(since, "since")?;
        if earlier.acquire_wait.bounds_ms != snapshot.acquire_wait.bounds_ms {
            return Err(config_error("since has other acquire_wait bounds than source: pass a dict stats() returned for the same client"));
        }
        snapshot = snapshot.since(&earlier);
    }
    let dimensions = dimension_pairs(dimensions)?;
    let borrowed: Vec<(&str, &str)> = dimensions.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let document = snapshot.to_emf(namespace, &borrowed, now_ms).py()?;
    Ok(document.to_string())
}

/// `Stats` and `AcquireWait`: what stats() returns, as `typing.TypedDict`s made from the core's
/// list of counters (the stubs spell the same keys for type checkers; a test compares them).
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let typing = py.import("typing")?;
    let typed_dict = typing.getattr("TypedDict")?;
    let list_of_int = typing.getattr("List")?.get_item(py.get_type::<PyInt>())?;
    let float = py.get_type::<PyFloat>();

    let wait_fields = PyDict::new(py);
    wait_fields.set_item(BOUNDS_MS, &list_of_int)?;
    wait_fields.set_item(COUNTS, &list_of_int)?;
    wait_fields.set_item(SUM_SECONDS, &float)?;
    let acquire_wait = typed_dict.call1(("AcquireWait", wait_fields))?;
    acquire_wait.setattr("__module__", "dynalease")?;
    acquire_wait.setattr("__doc__", "The acquisition-wait histogram of stats(): counts[i] waits took at most bounds_ms[i] ms; the last count, longer than every bound.")?;

    let fields = PyDict::new(py);
    for (name, _) in nothing().counters() {
        fields.set_item(name, py.get_type::<PyInt>())?;
    }
    fields.set_item(READ_UNITS, &float)?;
    fields.set_item(WRITE_UNITS, &float)?;
    fields.set_item(ACQUIRE_WAIT, &acquire_wait)?;
    let stats = typed_dict.call1(("Stats", fields))?;
    stats.setattr("__module__", "dynalease")?;
    stats.setattr("__doc__", "What client.stats() returns: a plain dict of counts that only grow, the capacity units consumed, and the acquisition-wait histogram.")?;

    module.add("AcquireWait", acquire_wait)?;
    module.add("Stats", stats)?;
    module.add_function(wrap_pyfunction!(emf, module)?)?;
    Ok(())
}
