//! Where a client sends its requests: `endpoint_url="memory://name"` selects the core's
//! in-process table (shared by every client of that name in the process), anything else the AWS
//! SDK transport.
//!
//! The SDK transport is built on first use, not in the constructor, because building it is async
//! (it reads the AWS configuration chain) and constructors are not. It is cached per process: a
//! forked child must not use connections that belong to its parent's runtime, so it builds its
//! own.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dynalease::transport::native::{DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_RETRIES, MAX_RETRIES_LIMIT};
use dynalease::transport::{Target, TargetOptions, Transport};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

use crate::convert::optional_seconds;
use crate::errors::{config_error, CoreResultExt};

#[derive(Debug)]
pub struct Connection {
    endpoint_url: Option<String>,
    region: Option<String>,
    call_timeout: Duration,
    max_retries: u32,
    target: Target,
    cached: Mutex<Option<(u32, Arc<dyn Transport>)>>,
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
        let target = Target::new(options).py()?;
        Ok(Connection {
            endpoint_url: args.endpoint_url,
            region: args.region,
            call_timeout: call_timeout.unwrap_or(DEFAULT_CALL_TIMEOUT),
            max_retries: max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            target,
            cached: Mutex::new(None),
        })
    }

    /// The deadline of one DynamoDB call (the default when none was given).
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The transport of this process, built on first use.
    pub async fn transport(&self) -> dynalease::Result<Arc<dyn Transport>> {
        let pid = std::process::id();
        if let Some((owner, transport)) = &*self.cached.lock().unwrap_or_else(PoisonError::into_inner) {
            if *owner == pid {
                return Ok(transport.clone());
            }
        }
        let transport = self.target.connect().await?;
        // Two first calls racing both build one; the first stored wins so clients stay shared.
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        match &*cached {
            Some((owner, existing)) if *owner == pid => Ok(existing.clone()),
            _ => {
                *cached = Some((pid, transport.clone()));
                Ok(transport)
            }
        }
    }
}

/// `max_retries` as the core takes it. A count is an int, so a float (even 2.0) or a bool is a
/// mistake of type; negative and huge ints are wrong values.
fn retries(value: &Bound<'_, PyAny>) -> PyResult<u32> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        let name = value.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        return Err(PyTypeError::new_err(format!("max_retries must be an int, not {name}")));
    }
    let count = match value.extract::<i64>() {
        Ok(count) => Some(count),
        Err(error) if error.is_instance_of::<PyOverflowError>(value.py()) => None,
        Err(error) => return Err(error),
    };
    if value.lt(0)? {
        return Err(config_error(format!("max_retries must be a whole number >= 0 (got {}); use 0 to send each request once", value.str()?)));
    }
    // Counts within u32 go to the core, whose limit message says why; larger ones fail the same way here.
    match count.and_then(|c| u32::try_from(c).ok()) {
        Some(count) => Ok(count),
        None => Err(config_error(format!(
            "max_retries is {}; at most {MAX_RETRIES_LIMIT} is allowed; use 0 to send each request once",
            value.str()?
        ))),
    }
}
