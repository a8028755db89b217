//! One conversion from core errors to JS errors. napi rejects with its own status as `code`,
//! so the stable dynalease code (`ErrorKind::code()`) travels as a `[CODE] ` prefix of the
//! message, which the JS layer (lib/errors.js) turns into `err.code` in one place.

use dynalease::Error;

pub fn to_napi(error: Error) -> napi::Error {
    napi::Error::from_reason(format!("[{}] {}", error.kind().code(), error))
}

pub trait CoreResultExt<T> {
    fn js(self) -> napi::Result<T>;
}

impl<T> CoreResultExt<T> for dynalease::Result<T> {
    fn js(self) -> napi::Result<T> {
        self.map_err(to_napi)
    }
}

/// An operation cancelled through an AbortSignal: the JS layer rethrows the signal's reason.
pub fn aborted() -> napi::Error {
    napi::Error::from_reason("[ABORT_ERR] the operation was aborted")
}
