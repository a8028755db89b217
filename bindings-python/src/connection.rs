//! Where a client sends its requests: `endpoint_url="memory://name"` selects the core's
//! in-process table (shared by every client of that name in the process), anything else the AWS
//! SDK transport, built on first use and once per process (`dynalease::transport::LazyTransport`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dynalease::transport::{LazyTransport, TargetOptions, Transport};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

use crate::convert::optional_seconds;
use crate::errors::CoreResultExt;

#[derive(Debug)]
pub struct Connection {
    endpoint_url: Option<String>,
    region: Option<String>,
    transport: LazyTransport,
}

/// The connection options every client and `create_table` take, as Python passed them.
pub struct ConnectionArgs<'a, 'py> {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub call_timeout: Option<f64>,
    pub max_retries: Option<&'a Bound<'py, PyAny>>,
}

impl Connection {
    /// Fails on a malformed endpoint, region, call timeout or retry count (see `Target::new`).
    pub fn new(args: ConnectionArgs<'_, '_>) -> PyResult<Connection> {
        let call_timeout = optional_seconds("call_timeout", args.call_timeout)?;
        let max_retries = args.max_retries.filter(|m| !m.is_none()).map(retries).transpose()?;
        let options = TargetOptions { endpoint_url: args.endpoint_url.clone(), region: args.region.clone(), call_timeout, max_retries };
        Ok(Connection { endpoint_url: args.endpoint_url, region: args.region, transport: LazyTransport::new(options).py()? })
    }

    /// The deadline of one DynamoDB call (the default when none was given).
    pub fn call_timeout(&self) -> Duration {
        self.transport.call_timeout()
    }

    pub fn max_retries(&self) -> u32 {
        self.transport.max_retries()
    }

    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The transport of this process, built on first use.
    pub async fn transport(&self) -> dynalease::Result<Arc<dyn Transport>> {
        self.transport.get().await
    }
}

/// `max_retries` as the core takes it. A count is an int, so a float (even 2.0) or a bool is a
/// mistake of type; negative and huge ints are wrong values.
fn retries(value: &Bound<'_, PyAny>) -> PyResult<u32> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        let name = value.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        return Err(PyTypeError::new_err(format!("max_retries must be an int, not {name}")));
    }
    // Beyond i128 only the sign matters: the core refuses it either way, showing the int as given.
    let whole = match value.extract::<i128>() {
        Ok(count) => count,
        Err(error) if error.is_instance_of::<PyOverflowError>(value.py()) => if value.lt(0)? { i128::MIN } else { i128::MAX },
        Err(error) => return Err(error),
    };
    TargetOptions::retry_count(value.str()?, Some(whole)).py()
}

/// A value made once per process, such as the core client a Python client stands for: it keeps
/// the counters `stats()` reads, so every call of the Python client must reach the same one.
/// A forked child makes its own (the parent's holds connections of the parent's runtime), and
/// its counts start from zero.
#[derive(Debug)]
pub struct PerProcess<T> {
    /// The value and the process that made it. Held only to clone or store, never across an
    /// await, so a fork cannot catch it locked in practice.
    made: Mutex<Option<(u32, T)>>,
}

impl<T> Default for PerProcess<T> {
    fn default() -> Self {
        PerProcess { made: Mutex::new(None) }
    }
}

impl<T: Clone> PerProcess<T> {
    /// This process's value, if it was made.
    pub fn get(&self) -> Option<T> {
        let pid = std::process::id();
        match &*self.made.lock().unwrap_or_else(PoisonError::into_inner) {
            Some((owner, value)) if *owner == pid => Some(value.clone()),
            _ => None,
        }
    }

    /// Keeps `made` as this process's value, unless another call stored one first: then that one
    /// is returned (and `made` dropped), so concurrent first calls end up sharing one value.
    pub fn keep(&self, made: T) -> T {
        let pid = std::process::id();
        let mut slot = self.made.lock().unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Some((owner, existing)) if *owner == pid => existing.clone(),
            _ => {
                *slot = Some((pid, made.clone()));
                made
            }
        }
    }
}
