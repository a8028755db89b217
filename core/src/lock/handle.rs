//! Lock handles: a held lock written down as a short URL-safe string, so that one process can
//! hand it to another (through a queue message, a Step Functions state, an HTTP header).
//!
//! The string is base64url (no padding) of a small binary record, version first:
//!
//! | bytes | field |
//! |---|---|
//! | 2 | `dl`, so that other text is told apart |
//! | 1 | format version, 1 |
//! | 1 | mode: 1 fail-open, 0 fail-closed |
//! | 8 + 8 | fail-open only: fencing token (i64), lease in ms (u64), big-endian |
//! | 1 + n | guid: length, bytes |
//! | 1 + n | table name: length, UTF-8 |
//! | 1 + 2 + n | partition key value: type (0 S, 1 N, 2 B), length (u16), bytes |
//! | 1 (+ 2 + n) | sort key value: as above, or 255 when the id has none |
//!
//! A handle proves nothing by itself: `resume` reads the lock item and accepts the handle only
//! while the item still carries its guid. It is as secret as the lock: whoever has it can
//! release the lock.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::{Error, Result};
use crate::lock::item::LockId;
use crate::value::KeyValue;

const MAGIC: &[u8; 2] = b"dl";
const VERSION: u8 = 1;
const NO_SORT_KEY: u8 = 255;

/// What a process needs to take up a lock another one detached (see `Lock::detach` and
/// `LockClient::resume`). `to_string()` gives the handle's text; [`Handle::parse`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handle {
    /// The lock table's name: only a client of that table can resume the lock.
    pub table: String,
    /// Which lock the handle is for.
    pub id: LockId,
    /// The lock item's guid when the handle was taken.
    pub guid: Vec<u8>,
    /// `None` for a fail-closed lock.
    pub fencing_token: Option<i64>,
    /// The holder's lease; `None` for a fail-closed lock.
    pub lease_duration: Option<Duration>,
}

impl Handle {
    /// True for a lease lock, false for a fail-closed one (which has no lease).
    pub fn is_fail_open(&self) -> bool {
        self.lease_duration.is_some()
    }

    /// Reads a handle's text. Anything that is not one (truncated, edited, another version)
    /// is a [`Error::Config`] error that says so.
    pub fn parse(text: &str) -> Result<Handle> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| not_a_handle("it is not base64url text"))?;
        let mut reader = Reader { bytes: &bytes };
        if reader.take(MAGIC.len()).ok() != Some(MAGIC.as_slice()) {
            return Err(not_a_handle("it does not start like one"));
        }
        match reader.u8()? {
            VERSION => {}
            other => return Err(not_a_handle(&format!("it has format version {other}, and this dynalease reads version {VERSION}; resume it with the version that detached it"))),
        }
        let (fencing_token, lease_duration) = match reader.u8()? {
            1 => (Some(reader.i64()?), Some(Duration::from_millis(reader.i64()? as u64))),
            0 => (None, None),
            _ => return Err(not_a_handle("its mode is neither fail-open nor fail-closed")),
        };
        let guid = reader.short_bytes()?.to_vec();
        let table = String::from_utf8(reader.short_bytes()?.to_vec()).map_err(|_| not_a_handle("its table name is not UTF-8"))?;
        let partition = reader.key_value()?.ok_or_else(|| not_a_handle("it has no lock id"))?;
        let sort = reader.key_value()?;
        if !reader.bytes.is_empty() {
            return Err(not_a_handle("it has bytes past its end"));
        }
        Ok(Handle { table, id: LockId { partition, sort }, guid, fencing_token, lease_duration })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(VERSION);
        match (self.fencing_token, self.lease_duration) {
            (Some(token), Some(lease)) => {
                out.push(1);
                out.extend(token.to_be_bytes());
                out.extend((lease.as_millis() as u64).to_be_bytes());
            }
            _ => out.push(0),
        }
        // Guids are 64 bytes and table names at most 255 (DynamoDB's limit): both fit a byte.
        for short in [self.guid.as_slice(), self.table.as_bytes()] {
            out.push(short.len().min(255) as u8);
            out.extend(&short[..short.len().min(255)]);
        }
        push_key_value(&mut out, Some(&self.id.partition));
        push_key_value(&mut out, self.id.sort.as_ref());
        out
    }
}

impl std::fmt::Display for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.encode()))
    }
}

fn push_key_value(out: &mut Vec<u8>, value: Option<&KeyValue>) {
    let (kind, bytes) = match value {
        None => return out.push(NO_SORT_KEY),
        Some(KeyValue::S(s)) => (0, s.as_bytes()),
        Some(KeyValue::N(n)) => (1, n.as_bytes()),
        Some(KeyValue::B(b)) => (2, b.as_slice()),
    };
    out.push(kind);
    // Key values are at most 2048 bytes (DynamoDB's limit, checked before any lock is held).
    out.extend((bytes.len() as u16).to_be_bytes());
    out.extend(bytes);
}

fn not_a_handle(why: &str) -> Error {
    Error::invalid_value(format!("not a lock handle ({why}); pass the text that detach() or the lock's handle gave"))
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(not_a_handle("it is cut short"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn short_bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }

    fn key_value(&mut self) -> Result<Option<KeyValue>> {
        let kind = self.u8()?;
        if kind == NO_SORT_KEY {
            return Ok(None);
        }
        let n = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        let bytes = self.take(n)?.to_vec();
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| not_a_handle("a key value is not UTF-8"));
        Ok(Some(match kind {
            0 => KeyValue::S(text(bytes)?),
            1 => KeyValue::N(text(bytes)?),
            2 => KeyValue::B(bytes),
            _ => return Err(not_a_handle("a key value has an unknown type")),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail_open() -> Handle {
        Handle {
            table: "locks".into(),
            id: LockId::with_sort("tenant-1", 7),
            guid: vec![9; 64],
            fencing_token: Some(42),
            lease_duration: Some(Duration::from_millis(10_000)),
        }
    }

    #[test]
    fn a_handle_reads_back_as_written_in_url_safe_text() {
        for handle in [
            fail_open(),
            Handle { fencing_token: None, lease_duration: None, id: LockId::new(vec![0u8, 255]), ..fail_open() },
        ] {
            let text = handle.to_string();
            assert!(text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{text}");
            assert_eq!(Handle::parse(&text).unwrap(), handle);
        }
    }

    #[test]
    fn a_handle_for_a_typical_lock_is_well_under_a_kilobyte() {
        let handle = Handle { id: LockId::new("orders/2026-12-02/batch-0017"), ..fail_open() };
        assert!(handle.to_string().len() < 200, "{}", handle.to_string().len());
        // The longest table name with a 400-byte id still fits in 1 KB.
        let long = Handle { table: "t".repeat(255), id: LockId::new("i".repeat(400)), ..fail_open() };
        assert!(long.to_string().len() < 1024, "{}", long.to_string().len());
    }

    #[test]
    fn anything_else_is_refused_with_what_to_pass() {
        let text = fail_open().to_string();
        for bad in ["", "not a handle!", &text[..text.len() - 3], &format!("{text}AAAA"), "AgE", "c29tZSByYW5kb20gYmFzZTY0IHRleHQ"] {
            let error = Handle::parse(bad).unwrap_err();
            assert!(error.to_string().contains("not a lock handle"), "{bad:?}: {error}");
        }
        let mut other_version = URL_SAFE_NO_PAD.decode(&text).unwrap();
        other_version[2] = 2;
        let error = Handle::parse(&URL_SAFE_NO_PAD.encode(other_version)).unwrap_err();
        assert!(error.to_string().contains("format version 2"), "{error}");
    }
}
