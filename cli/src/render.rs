//! What a command prints: the same result as aligned text for people or as JSON for scripts.

use dynalease::lock::admin::LockRecord;
use dynalease::lock::LockId;
use dynalease::KeyValue;
use serde_json::{json, Value as Json};

use crate::args::Output;
use crate::Exit;

/// A command's result.
#[derive(Debug)]
pub struct Report {
    /// The code the process exits with ([`Exit::Problem`] when a check found something).
    pub exit: Exit,
    /// The result for people (`--output table`), on stdout.
    pub text: String,
    /// The same result as one JSON document (`--output json`), on stdout.
    pub json: Json,
    /// Said on stderr whatever the output format (how much was read, what was skipped).
    pub notes: Vec<String>,
}

impl Report {
    /// A successful result, as text and as JSON.
    pub fn new(text: impl Into<String>, json: Json) -> Report {
        Report { exit: Exit::Done, text: text.into(), json, notes: Vec::new() }
    }

    /// Adds a line for stderr.
    pub fn note(mut self, note: impl Into<String>) -> Report {
        self.notes.push(note.into());
        self
    }

    /// Prints the result in the format asked for, then the notes on stderr.
    /// Writes the report. A closed pipe (`dynalease ... | head -1`) ends the output quietly:
    /// the reader has what it wanted.
    pub fn print(&self, output: Output) {
        use std::io::Write;
        let text = match output {
            Output::Table if self.text.is_empty() => String::new(),
            Output::Table => format!("{}\n", self.text.trim_end()),
            Output::Json => format!("{}\n", serde_json::to_string_pretty(&self.json).unwrap_or_default()),
        };
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
        let mut stderr = std::io::stderr().lock();
        for note in &self.notes {
            let _ = writeln!(stderr, "{note}");
        }
    }
}

/// Rows under headers, each column as wide as its widest cell.
pub fn columns(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells.zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push('\n');
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

pub fn key_text(value: &KeyValue) -> String {
    match value {
        KeyValue::S(s) | KeyValue::N(s) => s.clone(),
        KeyValue::B(b) => format!("base64:{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b)),
    }
}

pub fn id_text(id: &LockId) -> String {
    match &id.sort {
        Some(sort) => format!("{} {}", key_text(&id.partition), key_text(sort)),
        None => key_text(&id.partition),
    }
}

/// How long ago `unix_ms` was by this host's clock, e.g. `3m12s`.
pub fn age(unix_ms: i64, now_unix_ms: i64) -> String {
    let ms = now_unix_ms - unix_ms;
    if ms < 0 {
        return format!("in {} (clocks differ)", span(-ms));
    }
    span(ms)
}

pub fn span(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        _ if ms < 1000 => format!("{ms}ms"),
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

pub fn record_json(record: &LockRecord) -> Json {
    json!({
        "id": id_text(&record.id),
        "state": record.state.name(),
        "owner": record.owner,
        "fencingToken": record.fencing_token,
        "leaseDurationMs": record.lease_duration_ms,
        "lockAcquiredTimeUnixMs": record.written_unix_ms,
        "dataBytes": record.data_bytes,
        "permits": record.permits,
    })
}

/// The listing's columns for one record. The age is marked: it is the holder's clock against
/// ours.
pub fn record_row(record: &LockRecord, now_unix_ms: i64) -> Vec<String> {
    let dash = || "-".to_owned();
    vec![
        id_text(&record.id),
        record.state.name().to_owned(),
        record.owner.clone().unwrap_or_else(dash),
        record.fencing_token.map(|t| t.to_string()).unwrap_or_else(dash),
        match (record.lease_duration_ms, record.permits) {
            (_, Some(n)) => format!("{n} permits"),
            (Some(1), _) => "released".into(),
            (Some(ms), _) => span(ms),
            (None, _) => dash(),
        },
        record.written_unix_ms.map(|at| format!("{}*", age(at, now_unix_ms))).unwrap_or_else(dash),
        record.data_bytes.map(|b| format!("{b} B")).unwrap_or_else(dash),
    ]
}

pub const RECORD_HEADERS: [&str; 7] = ["ID", "STATE", "OWNER", "TOKEN", "LEASE", "AGE*", "DATA"];
pub const AGE_FOOTNOTE: &str = "* age since the holder's last write, by its clock against this host's";

pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_under_their_headers() {
        let rows = vec![vec!["job-1".to_owned(), "held".to_owned()], vec!["a".to_owned(), "released".to_owned()]];
        assert_eq!(columns(&["ID", "STATE"], &rows), "ID     STATE\njob-1  held\na      released");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(0, 450), "450ms");
        assert_eq!(age(0, 192_000), "3m12s");
        assert_eq!(age(0, 2 * 86_400_000 + 3_600_000), "2d01h");
        assert!(age(5_000, 0).contains("clocks differ"));
    }
}
