//! dynalease: distributed lease locks and a compare-and-swap key/value store on Amazon DynamoDB.

pub mod clock;
pub mod error;
pub mod expr;
pub mod kv;
pub mod lock;
pub mod random;
pub(crate) mod resend;
pub mod request;
pub mod table;
pub mod transport;
pub mod value;

pub use error::{Error, ErrorKind, Result};
pub use value::{AttributeValue, Item, KeyType, KeyValue, Number, Value};
