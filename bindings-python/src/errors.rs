//! The exception hierarchy, and the one place core errors become Python exceptions.
//!
//! Exceptions are created under the module name `dynalease` (not `dynalease._native`), so their
//! `__module__` is the public package and they pickle and unpickle by that name.
//!
//! Every family has a class attribute `code` (the core's stable `ErrorKind::code()`), so code can
//! branch on `error.code` or on the class alike; lock and key errors also carry what they are
//! about (`lock_id` and `reason`, `key`) as instance attributes.

use dynalease::ErrorKind;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};
use pyo3::{PyErrArguments, PyTypeInfo};

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
            namespace.set_item("code", ErrorKind::Config.code())?;
            let bases = PyTuple::new(py, [py.get_type::<Error>(), py.get_type::<PyValueError>()])?;
            let created = py.get_type::<PyType>().call1(("ConfigError", bases, namespace))?;
            Ok(created.cast_into::<PyType>()?.unbind())
        })
        .map(|ty| ty.bind(py))
}

/// A `ConfigError` raised by the binding itself (argument conversion).
pub fn config_error(message: impl Into<String>) -> PyErr {
    config_error_with(message.into(), Vec::new())
}

fn config_error_with(message: String, attributes: Vec<(&'static str, Attribute)>) -> PyErr {
    Python::attach(|py| match config_error_type(py) {
        Ok(ty) => PyErr::from_type(ty.clone(), Detailed { family: config_family, message, attributes }),
        Err(error) => error,
    })
}

fn config_family(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    config_error_type(py).cloned()
}

/// Every core error becomes the exception of its family; the message is the core's, which
/// says what to do next.
pub fn to_py_err(error: dynalease::Error) -> PyErr {
    let kind = error.kind();
    let message = error.to_string();
    let attributes = match error {
        dynalease::Error::LockNotAcquired { id, reason } | dynalease::Error::LockLost { id, reason } => {
            vec![("lock_id", Attribute::LockId(id)), ("reason", Attribute::Text(reason))]
        }
        dynalease::Error::KeyExists { key } | dynalease::Error::KeyModified { key } | dynalease::Error::KeyNotFound { key } => {
            vec![("key", Attribute::Text(key))]
        }
        dynalease::Error::Config(config) => vec![("option", Attribute::Option(config.option()))],
        _ => Vec::new(),
    };
    match kind {
        ErrorKind::Config => config_error_with(message, attributes),
        ErrorKind::LockNotAcquired => detailed::<LockNotAcquiredError>(message, attributes),
        ErrorKind::LockLost => detailed::<LockLostError>(message, attributes),
        ErrorKind::KeyExists => detailed::<KeyExistsError>(message, attributes),
        ErrorKind::KeyModified => detailed::<KeyModifiedError>(message, attributes),
        ErrorKind::KeyNotFound => detailed::<KeyNotFoundError>(message, attributes),
        ErrorKind::Table => detailed::<TableError>(message, attributes),
        ErrorKind::Transport => detailed::<TransportError>(message, attributes),
        ErrorKind::OutcomeUnknown => detailed::<OutcomeUnknownError>(message, attributes),
    }
}

/// An instance attribute of an exception, converted once Python looks at it.
enum Attribute {
    Text(String),
    /// The id as the caller passed it (str, int, bytes or a tuple).
    LockId(dynalease::lock::LockId),
    /// The option at fault, as Python spells it (the core's names), or None.
    Option(Option<&'static str>),
}

impl Attribute {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            Attribute::Text(text) => PyString::new(py, text).into_any(),
            Attribute::LockId(id) => crate::convert::lock_id_to_py(py, id)?,
            Attribute::Option(option) => option.into_pyobject(py)?.into_any(),
        })
    }
}

/// An exception of family `T` with instance attributes besides its message.
fn detailed<T: PyTypeInfo + 'static>(message: String, attributes: Vec<(&'static str, Attribute)>) -> PyErr {
    PyErr::new::<T, _>(Detailed { family: |py| Ok(T::type_object(py)), message, attributes })
}

/// Errors are made on runtime threads without the GIL, so the exception object (and its
/// attributes) is built only when Python first looks at it: pyo3 raises a lazy error with
/// `PyErr_SetObject(type, arguments)`, and CPython takes an `arguments` that is already an
/// instance of `type` as the exception itself.
struct Detailed {
    family: for<'py> fn(Python<'py>) -> PyResult<Bound<'py, PyType>>,
    message: String,
    attributes: Vec<(&'static str, Attribute)>,
}

impl PyErrArguments for Detailed {
    fn arguments(self, py: Python<'_>) -> Py<PyAny> {
        let instance = || -> PyResult<Bound<'_, PyAny>> {
            let instance = (self.family)(py)?.call1((self.message.as_str(),))?;
            for (name, value) in &self.attributes {
                instance.setattr(*name, value.to_py(py)?)?;
            }
            Ok(instance)
        };
        // Only a failing allocation gets here; the exception then still has its message.
        instance().map(Bound::unbind).unwrap_or_else(|_| PyString::new(py, &self.message).into_any().unbind())
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

/// Gives every class its `code`: class attributes, so `except` code can compare with
/// `LockLostError.code` and exceptions made by hand (or unpickled) have one too.
fn set_codes(py: Python<'_>) -> PyResult<()> {
    // No kind is ever raised as the bare base class; its code is the prefix the families share.
    py.get_type::<Error>().setattr("code", "ERR_DYNALEASE")?;
    let families = [
        (py.get_type::<LockNotAcquiredError>(), ErrorKind::LockNotAcquired),
        (py.get_type::<LockLostError>(), ErrorKind::LockLost),
        (py.get_type::<KeyExistsError>(), ErrorKind::KeyExists),
        (py.get_type::<KeyModifiedError>(), ErrorKind::KeyModified),
        (py.get_type::<KeyNotFoundError>(), ErrorKind::KeyNotFound),
        (py.get_type::<TableError>(), ErrorKind::Table),
        (py.get_type::<TransportError>(), ErrorKind::Transport),
        (py.get_type::<OutcomeUnknownError>(), ErrorKind::OutcomeUnknown),
    ];
    for (family, kind) in families {
        family.setattr("code", kind.code())?;
    }
    Ok(())
}

pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    set_codes(py)?;
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
