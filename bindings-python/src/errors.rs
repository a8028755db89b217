//! The exception hierarchy, and the one place core errors become Python exceptions.
//!
//! Exceptions are created under the module name `dynalease` (not `dynalease._native`), so their
//! `__module__` is the public package and they pickle and unpickle by that name.

use dynalease::ErrorKind;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

create_exception!(dynalease, Error, PyException, "Base class of every dynalease error.");
create_exception!(
    dynalease,
    LockNotAcquiredError,
    Error,
    "The lock was not acquired: it stayed held by another client until the timeout."
);
create_exception!(
    dynalease,
    LockLostError,
    Error,
    "The lock is no longer held: its lease ran out or another client took it over."
);
create_exception!(dynalease, KeyExistsError, Error, "atomic_put(previous=None) found the key already present.");
create_exception!(
    dynalease,
    KeyModifiedError,
    Error,
    "The key changed since `previous` was read; read it again and retry."
);
create_exception!(dynalease, KeyNotFoundError, Error, "The key does not exist (or has expired).");
create_exception!(
    dynalease,
    TableError,
    Error,
    "The table is missing, not ACTIVE, or its key schema does not fit the client's options."
);
create_exception!(
    dynalease,
    TransportError,
    Error,
    "DynamoDB could not be reached or refused the request (network, credentials, throttling after retries)."
);
create_exception!(
    dynalease,
    OutcomeUnknownError,
    TransportError,
    "A write got no answer and could not be resolved: it may or may not have been applied, and may still land. Read the current state before retrying. Never raised for a write that certainly did not happen."
);

/// `ConfigError` is both a `dynalease.Error` and a `ValueError`, which `create_exception!`
/// (one base) cannot express, so it is made with `type()` once per interpreter.
static CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const CONFIG_ERROR_DOC: &str = "An argument or option is invalid (wrong type, negative duration, reserved name, \
unstorable value); nothing was sent to DynamoDB. Also a ValueError.";

pub fn config_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    CONFIG_ERROR
        .get_or_try_init(py, || {
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "dynalease")?;
            namespace.set_item("__doc__", CONFIG_ERROR_DOC)?;
            let bases = PyTuple::new(py, [py.get_type::<Error>(), py.get_type::<PyValueError>()])?;
            let created = py.get_type::<PyType>().call1(("ConfigError", bases, namespace))?;
            Ok(created.cast_into::<PyType>()?.unbind())
        })
        .map(|ty| ty.bind(py))
}

/// A `ConfigError` raised by the binding itself (argument conversion).
pub fn config_error(message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| match config_error_type(py) {
        Ok(ty) => PyErr::from_type(ty.clone(), message),
        Err(error) => error,
    })
}

/// Every core error becomes the exception of its family; the message is the core's, which
/// says what to do next.
pub fn to_py_err(error: dynalease::Error) -> PyErr {
    let message = error.to_string();
    match error.kind() {
        ErrorKind::Config => config_error(message),
        ErrorKind::LockNotAcquired => LockNotAcquiredError::new_err(message),
        ErrorKind::LockLost => LockLostError::new_err(message),
        ErrorKind::KeyExists => KeyExistsError::new_err(message),
        ErrorKind::KeyModified => KeyModifiedError::new_err(message),
        ErrorKind::KeyNotFound => KeyNotFoundError::new_err(message),
        ErrorKind::Table => TableError::new_err(message),
        ErrorKind::Transport => TransportError::new_err(message),
        ErrorKind::OutcomeUnknown => OutcomeUnknownError::new_err(message),
    }
}

/// `?` on core results inside the binding: `core_call().await.map_err(to_py_err)` in short.
pub trait CoreResultExt<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> CoreResultExt<T> for dynalease::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}

pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("Error", py.get_type::<Error>())?;
    module.add("ConfigError", config_error_type(py)?)?;
    module.add("LockNotAcquiredError", py.get_type::<LockNotAcquiredError>())?;
    module.add("LockLostError", py.get_type::<LockLostError>())?;
    module.add("KeyExistsError", py.get_type::<KeyExistsError>())?;
    module.add("KeyModifiedError", py.get_type::<KeyModifiedError>())?;
    module.add("KeyNotFoundError", py.get_type::<KeyNotFoundError>())?;
    module.add("TableError", py.get_type::<TableError>())?;
    module.add("TransportError", py.get_type::<TransportError>())?;
    module.add("OutcomeUnknownError", py.get_type::<OutcomeUnknownError>())?;
    Ok(())
}
