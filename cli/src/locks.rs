//! `locks list|show|watch|release` and `gc`: the lock table seen and operated from outside.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use dynalease::lock::admin::{self, ForceOutcome, ListFilter, LockRecord, LockState};
use dynalease::lock::{LockId, LockTable};
use dynalease::protocol::request::TableDescription;
use dynalease::table::describe;
use dynalease::transport::Transport;
use dynalease::{Item, KeyType, KeyValue};
use serde_json::json;

use crate::args::{GcArgs, ListArgs, LockArgs, Output, ReleaseArgs, StateFilter, WatchArgs};
use crate::render::{columns, id_text, now_unix_ms, record_json, record_row, span, Report, AGE_FOOTNOTE, RECORD_HEADERS};
use crate::{confirm, CommandResult, Exit, Failure};

/// Items a Scan page asks for: small enough to show progress on a big table.
const PAGE: u32 = 100;

async fn lock_table(transport: &Arc<dyn Transport>, table: &str) -> Result<(LockTable, TableDescription), Failure> {
    let description = describe(transport.as_ref(), table).await?;
    Ok((LockTable::of(&description), description))
}

/// A key value typed as the table's key attribute is.
fn key_value(text: &str, key_type: KeyType, what: &str) -> Result<KeyValue, Failure> {
    let bad = |why: String| Failure::new(Exit::Usage, format!("{what} {text:?}: {why}"));
    match key_type {
        KeyType::S => Ok(KeyValue::S(text.to_owned())),
        KeyType::N => {
            text.parse::<f64>().map_err(|_| bad("the table's key is a number; pass a number".into()))?;
            Ok(KeyValue::N(text.to_owned()))
        }
        KeyType::B => {
            let encoded = text.strip_prefix("base64:").ok_or_else(|| bad("the table's key is binary; pass it as base64:...".into()))?;
            base64::engine::general_purpose::STANDARD.decode(encoded).map(KeyValue::B).map_err(|e| bad(format!("not base64: {e}")))
        }
    }
}

fn lock_id(description: &TableDescription, id: &str, sort: Option<&str>) -> Result<LockId, Failure> {
    let partition = key_value(id, description.partition_key.key_type, "lock id")?;
    let sort = match (&description.sort_key, sort) {
        (Some(key), Some(sort)) => Some(key_value(sort, key.key_type, "sort key value")?),
        (Some(key), None) => return Err(Failure::new(Exit::Usage, format!("table {} has sort key {:?}: pass the lock id's sort key value too", description.table, key.name))),
        (None, Some(_)) => return Err(Failure::new(Exit::Usage, format!("table {} has no sort key: pass the lock id alone", description.table))),
        (None, None) => None,
    };
    Ok(LockId { partition, sort })
}

fn state_of(filter: StateFilter) -> LockState {
    match filter {
        StateFilter::Held => LockState::Held,
        StateFilter::Released => LockState::Released,
        StateFilter::FailClosed => LockState::FailClosed,
    }
}

/// Scans up to `limit` items (0: all), page by page.
async fn scan(transport: &Arc<dyn Transport>, table: &LockTable, filter: &ListFilter, limit: u64) -> Result<(Vec<LockRecord>, usize, bool), Failure> {
    let (mut records, mut scanned, mut start) = (Vec::new(), 0usize, None);
    loop {
        let room = if limit == 0 { u64::from(PAGE) } else { (limit - scanned as u64).min(u64::from(PAGE)) };
        let page = admin::list(transport.as_ref(), table, filter, room as u32, start).await?;
        scanned += page.scanned;
        records.extend(page.records);
        start = page.next;
        let more = start.is_some();
        if !more || (limit != 0 && scanned as u64 >= limit) {
            return Ok((records, scanned, more));
        }
    }
}

pub async fn list(transport: &Arc<dyn Transport>, args: &ListArgs) -> CommandResult {
    let (table, _) = lock_table(transport, &args.table).await?;
    let filter = ListFilter { prefix: args.prefix.clone(), state: args.state.map(state_of) };
    let (records, scanned, more) = scan(transport, &table, &filter, args.limit).await?;
    let now = now_unix_ms();
    let rows: Vec<Vec<String>> = records.iter().map(|r| record_row(r, now)).collect();
    let text = if rows.is_empty() { "no locks match".to_owned() } else { format!("{}\n{AGE_FOOTNOTE}", columns(&RECORD_HEADERS, &rows)) };
    let json = json!({"locks": records.iter().map(record_json).collect::<Vec<_>>(), "scanned": scanned, "complete": !more});
    let read = format!("read {scanned} items of table {} with a Scan (a Scan reads every item, whatever the filter)", args.table);
    let report = Report::new(text, json).note(read);
    Ok(if more {
        report.note(format!("stopped after {} items: pass --limit N to read more, or --limit 0 for the whole table", args.limit))
    } else {
        report
    })
}

pub async fn show(transport: &Arc<dyn Transport>, args: &LockArgs) -> CommandResult {
    let (table, description) = lock_table(transport, &args.table).await?;
    let id = lock_id(&description, &args.id, args.sort.as_deref())?;
    let record = admin::show(transport.as_ref(), &table, &id).await?.ok_or_else(|| not_found(&args.table, &id))?;
    Ok(Report::new(describe_record(&record), record_json(&record)))
}

fn not_found(table: &str, id: &LockId) -> Failure {
    Failure::new(Exit::NotFound, format!("table {table} has no item for lock {}: it was never acquired, or was deleted", id_text(id)))
}

fn describe_record(record: &LockRecord) -> String {
    let now = now_unix_ms();
    let mut lines = vec![format!("lock {}: {}", id_text(&record.id), record.state.name())];
    let mut field = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            lines.push(format!("  {name:<15} {value}"));
        }
    };
    field("owner", record.owner.clone());
    field("fencing token", record.fencing_token.map(|t| t.to_string()));
    field("lease", record.lease_duration_ms.filter(|ms| *ms != 1).map(span));
    field("last write", record.written_unix_ms.map(|at| format!("{} ago (holder's clock)", crate::render::age(at, now))));
    if record.state == LockState::Held {
        field("lease ends", record.lease_ends_unix_ms().map(|end| match end - now {
            left if left > 0 => format!("in {} unless renewed (holder's clock)", span(left)),
            _ => "passed, by the holder's clock: a waiter may take it over".to_owned(),
        }));
    }
    field("data", record.data_bytes.map(|b| format!("{b} bytes")));
    field("permits", record.permits.map(|n| n.to_string()));
    lines.join("\n")
}

pub async fn watch(transport: &Arc<dyn Transport>, args: &WatchArgs, output: Output) -> CommandResult {
    let (table, description) = lock_table(transport, &args.table).await?;
    let id = args.id.as_deref().map(|id| lock_id(&description, id, args.sort.as_deref())).transpose()?;
    let mut last: BTreeMap<String, LockRecord> = BTreeMap::new();
    let mut events: Vec<String> = Vec::new();
    let mut reads = 0u64;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let records = match &id {
            Some(id) => admin::show(transport.as_ref(), &table, id).await?.into_iter().collect(),
            None => admin::list(transport.as_ref(), &table, &ListFilter::default(), args.limit, None).await?.records,
        };
        reads += 1;
        let clock = chrono_free_time();
        let current: BTreeMap<String, LockRecord> = records.into_iter().map(|r| (id_text(&r.id), r)).collect();
        for change in changes(&last, &current) {
            events.push(format!("{clock}  {change}"));
            if output == Output::Json {
                println!("{}", json!({"at": clock, "event": change}));
            }
        }
        last = current;
        if output == Output::Table {
            draw(&args.table, &last, &events, args.interval);
        }
        if args.count.is_some_and(|count| reads >= count) {
            return Ok(Report::new("", json!(null)));
        }
        tokio::select! {
            _ = tokio::time::sleep(args.interval) => {}
            _ = &mut stop => return Ok(Report::new("", json!(null))),
        }
    }
}

/// What changed between two reads: acquisitions (a new token), releases, renewals are not shown.
fn changes(before: &BTreeMap<String, LockRecord>, after: &BTreeMap<String, LockRecord>) -> Vec<String> {
    let mut out = Vec::new();
    for (id, now) in after {
        let owner = now.owner.as_deref().unwrap_or("?");
        match before.get(id) {
            None if now.state == LockState::Held || now.state == LockState::FailClosed => {
                out.push(format!("{id}: acquired by {owner}{}", token_text(now.fencing_token)))
            }
            Some(was) if was.fencing_token != now.fencing_token && now.state == LockState::Held => {
                out.push(format!("{id}: handed over to {owner}{}", token_text(now.fencing_token)))
            }
            Some(was) if was.state != LockState::Released && now.state == LockState::Released => out.push(format!("{id}: released")),
            _ => {}
        }
    }
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        out.push(format!("{id}: deleted"));
    }
    out
}

fn token_text(token: Option<i64>) -> String {
    token.map(|t| format!(" (token {t})")).unwrap_or_default()
}

/// HH:MM:SS in UTC, without a date library.
fn chrono_free_time() -> String {
    let s = now_unix_ms() / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

/// Redraws the whole view in place, like `top`.
fn draw(table: &str, records: &BTreeMap<String, LockRecord>, events: &[String], interval: Duration) {
    let now = now_unix_ms();
    let rows: Vec<Vec<String>> = records.values().map(|r| record_row(r, now)).collect();
    let held = records.values().filter(|r| matches!(r.state, LockState::Held | LockState::FailClosed)).count();
    let mut screen = format!(
        "\x1b[H\x1b[2Jdynalease locks watch {table}: {held} held, {} items, every {}   (Ctrl-C to stop)\n\n{}\n\nrecent changes:\n",
        records.len(),
        span(interval.as_millis() as i64),
        columns(&RECORD_HEADERS, &rows)
    );
    for event in events.iter().rev().take(10) {
        screen.push_str(&format!("  {event}\n"));
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(screen.as_bytes());
    let _ = stdout.flush();
}

pub async fn release(transport: &Arc<dyn Transport>, args: &ReleaseArgs) -> CommandResult {
    if !args.force {
        return Err(Failure::new(
            Exit::Usage,
            "releasing a lock this tool does not hold takes --force: its holder, if alive, loses it and may still be working",
        ));
    }
    let lock = &args.lock;
    let (table, description) = lock_table(transport, &lock.table).await?;
    let id = lock_id(&description, &lock.id, lock.sort.as_deref())?;
    let shown = admin::show(transport.as_ref(), &table, &id).await?.ok_or_else(|| not_found(&lock.table, &id))?;
    match shown.state {
        LockState::Held | LockState::FailClosed => {}
        other => return Err(Failure::new(Exit::Problem, format!("lock {} is {}; nothing to release", id_text(&id), other.name()))),
    }
    if let Some(expected) = args.expect_token {
        if shown.fencing_token != Some(expected) {
            return Err(Failure::new(
                Exit::Problem,
                format!("lock {} has fencing token {:?}, not {expected}: it changed hands; nothing was written", id_text(&id), shown.fencing_token),
            ));
        }
    }
    eprintln!("{}", describe_record(&shown));
    if !args.yes {
        confirm(&format!("Release lock {} held by {}?", id_text(&id), shown.owner.as_deref().unwrap_or("an unknown owner")))?;
    }
    match admin::force_release(transport.as_ref(), &table, &shown).await? {
        ForceOutcome::Released => {
            let text = format!("released lock {}{}", id_text(&id), token_text(shown.fencing_token));
            Ok(Report::new(text, json!({"released": true, "lock": record_json(&shown)})))
        }
        ForceOutcome::Changed(now) => {
            let now = now.map(|r| describe_record(&r)).unwrap_or_else(|| "its item is gone".into());
            Err(Failure::new(Exit::Problem, format!("lock {} changed since it was shown; nothing was written. Now:\n{now}", id_text(&id))))
        }
    }
}

pub async fn gc(transport: &Arc<dyn Transport>, args: &GcArgs) -> CommandResult {
    let (table, _) = lock_table(transport, &args.table).await?;
    let filter = ListFilter { prefix: None, state: Some(LockState::Released) };
    let cutoff = now_unix_ms() - args.released_before.as_millis() as i64;
    let (mut old, mut unknown_age, mut scanned, mut start): (Vec<LockRecord>, usize, usize, Option<Item>) = (Vec::new(), 0, 0, None);
    loop {
        let page = admin::list(transport.as_ref(), &table, &filter, PAGE, start).await?;
        scanned += page.scanned;
        for record in page.records {
            match record.written_unix_ms {
                Some(at) if at < cutoff => old.push(record),
                Some(_) => {}
                None => unknown_age += 1,
            }
        }
        start = page.next;
        if start.is_none() {
            break;
        }
    }
    let ids: Vec<String> = old.iter().map(|r| id_text(&r.id)).collect();
    let mut report_json = json!({"scanned": scanned, "candidates": ids, "unknownAge": unknown_age});
    if args.dry_run || old.is_empty() {
        let text = format!("{} released lock items older than {} would be deleted{}", old.len(), span(args.released_before.as_millis() as i64), list_ids(&ids));
        return Ok(Report::new(text, report_json).note(gc_notes(scanned, unknown_age)));
    }
    if !args.yes {
        confirm(&format!(
            "Delete {} released lock items? Their fencing tokens start again from 1 when next acquired.",
            old.len()
        ))?;
    }
    let (mut deleted, mut changed) = (0, 0);
    for record in &old {
        if admin::collect_released(transport.as_ref(), &table, record).await? {
            deleted += 1;
        } else {
            changed += 1;
        }
    }
    report_json["deleted"] = json!(deleted);
    report_json["skippedChanged"] = json!(changed);
    let text = format!("deleted {deleted} released lock items; {changed} were acquired again meanwhile and kept");
    Ok(Report::new(text, report_json).note(gc_notes(scanned, unknown_age)))
}

fn list_ids(ids: &[String]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    format!(":\n  {}", ids.join("\n  "))
}

fn gc_notes(scanned: usize, unknown_age: usize) -> String {
    let mut note = format!("read {scanned} items with a Scan");
    if unknown_age > 0 {
        note.push_str(&format!("; {unknown_age} released items say nothing of when (written by dynamodb-lock-client without trustLocalTime) and were kept"));
    }
    note
}
