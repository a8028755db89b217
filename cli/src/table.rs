//! `table create` and `table check`.

use std::sync::Arc;

use dynalease::lock::admin::{self, ListFilter, LockState};
use dynalease::lock::LockTable;
use dynalease::protocol::request::{Billing, Request, Response, TableDescription, TimeToLive};
use dynalease::table::{create_table, describe, KeyAttribute, TableSpec, TTL_ATTRIBUTE};
use dynalease::transport::Transport;
use dynalease::KeyType;
use serde_json::json;

use crate::args::{CheckArgs, CreateArgs};
use crate::render::{columns, Report};
use crate::{CommandResult, Exit, Failure};

fn spec(table: &str, partition_key: Option<&str>, sort_key: Option<&str>, kv: bool) -> TableSpec {
    let (default_pk, sort) = if kv { ("pk", Some(sort_key.unwrap_or("sk"))) } else { ("id", sort_key) };
    TableSpec {
        sort_key: sort.map(|name| KeyAttribute::new(name, KeyType::S)),
        // Lock items carry no expiry; only the KV store writes `expires`.
        ttl_attribute: kv.then(|| TTL_ATTRIBUTE.to_owned()),
        ..TableSpec::new(table, partition_key.unwrap_or(default_pk))
    }
}

pub async fn create(transport: &Arc<dyn Transport>, args: &CreateArgs) -> CommandResult {
    let spec = spec(&args.table, args.partition_key.as_deref(), args.sort_key.as_deref(), args.kv);
    let table = create_table(transport.as_ref(), &spec).await?;
    let text = format!("table {} is ready: {}", table.table, describe_keys(&table));
    Ok(Report::new(text, description_json(&table, None)))
}

fn describe_keys(table: &TableDescription) -> String {
    let key = |k: &KeyAttribute| format!("{} ({})", k.name, short_type(k.key_type));
    match &table.sort_key {
        Some(sort) => format!("partition key {}, sort key {}", key(&table.partition_key), key(sort)),
        None => format!("partition key {}", key(&table.partition_key)),
    }
}

fn short_type(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::S => "S",
        KeyType::N => "N",
        KeyType::B => "B",
    }
}

fn description_json(table: &TableDescription, ttl: Option<&TimeToLive>) -> serde_json::Value {
    let key = |k: &KeyAttribute| json!({"name": k.name, "type": short_type(k.key_type)});
    json!({
        "table": table.table,
        "status": format!("{:?}", table.status),
        "partitionKey": key(&table.partition_key),
        "sortKey": table.sort_key.as_ref().map(key),
        "billing": match table.billing {
            Billing::OnDemand => json!("PAY_PER_REQUEST"),
            Billing::Provisioned { read, write } => json!({"PROVISIONED": {"read": read, "write": write}}),
        },
        "ttl": ttl.map(|ttl| format!("{ttl:?}")),
    })
}

/// One line of the check: what was looked at, what was found, and what to change if anything.
struct Finding {
    what: &'static str,
    found: String,
    fix: Option<String>,
}

pub async fn check(transport: &Arc<dyn Transport>, args: &CheckArgs) -> CommandResult {
    let table = describe(transport.as_ref(), &args.table).await?;
    let ttl = match transport.execute(Request::DescribeTimeToLive { table: args.table.clone() }).await? {
        Response::TimeToLive(ttl) => ttl,
        other => return Err(Failure::new(Exit::Service, format!("DescribeTimeToLive answered {other:?}"))),
    };
    let mut findings = vec![keys_finding(&table, args.kv), ttl_finding(&ttl, args.kv), billing_finding(&table)];
    let mut kinds = serde_json::Map::new();
    if args.sample > 0 && !args.kv {
        let lock_table = LockTable::of(&table);
        let page = admin::list(transport.as_ref(), &lock_table, &ListFilter::default(), args.sample, None).await?;
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for record in &page.records {
            *counts.entry(record.state.name()).or_default() += 1;
        }
        let others = counts.get(LockState::Other.name()).copied().unwrap_or(0);
        let summary: Vec<String> = counts.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
        let more = if page.next.is_some() { " (a sample: the first page)" } else { "" };
        findings.push(Finding {
            what: "items",
            found: if summary.is_empty() { "none yet".into() } else { format!("{}{more}", summary.join(", ")) },
            fix: (others > 0).then(|| format!("{others} items are not lock items: keep other data in another table (see docs/table-format.md)")),
        });
        kinds = counts.into_iter().map(|(k, n)| (k.to_owned(), json!(n))).collect();
    }
    let problems = findings.iter().filter(|f| f.fix.is_some()).count();
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| vec![f.what.to_owned(), f.found.clone(), f.fix.as_ref().map_or_else(|| "ok".to_owned(), |fix| format!("FIX: {fix}"))])
        .collect();
    let verdict = if problems == 0 { format!("table {} is ready", args.table) } else { format!("table {}: {problems} problem(s)", args.table) };
    let mut json = description_json(&table, Some(&ttl));
    json["itemKinds"] = json!(kinds);
    json["problems"] = json!(findings.iter().filter_map(|f| f.fix.clone()).collect::<Vec<_>>());
    let mut report = Report::new(format!("{}\n{verdict}", columns(&["CHECK", "FOUND", "VERDICT"], &rows)), json);
    if problems > 0 {
        report.exit = Exit::Problem;
    }
    Ok(report)
}

fn keys_finding(table: &TableDescription, kv: bool) -> Finding {
    let found = describe_keys(table);
    let fix = if kv {
        let sort_ok = table.sort_key.as_ref().is_some_and(|k| k.key_type == KeyType::S);
        let ok = table.partition_key.key_type == KeyType::S && sort_ok;
        (!ok).then(|| "a KV table needs a string partition key and a string sort key: create one with `dynalease table create NAME --kv`".to_owned())
    } else {
        None // lock ids may be strings, numbers or bytes, with or without a sort key
    };
    Finding { what: "keys", found, fix }
}

fn ttl_finding(ttl: &TimeToLive, kv: bool) -> Finding {
    let found = match ttl {
        TimeToLive::Enabled { attribute } => format!("on `{attribute}`"),
        TimeToLive::Enabling { attribute } => format!("being turned on for `{attribute}`"),
        TimeToLive::Disabled => "off".into(),
        TimeToLive::Disabling => "being turned off".into(),
    };
    let on_expires = matches!(ttl, TimeToLive::Enabled { attribute } | TimeToLive::Enabling { attribute } if attribute == TTL_ATTRIBUTE);
    let fix = (kv && !on_expires).then(|| {
        format!("turn TTL on for `{TTL_ATTRIBUTE}` (aws dynamodb update-time-to-live), or expired KV pairs stay stored (they are still hidden from reads)")
    });
    Finding { what: "ttl", found, fix }
}

fn billing_finding(table: &TableDescription) -> Finding {
    match table.billing {
        Billing::OnDemand => Finding { what: "billing", found: "on demand".into(), fix: None },
        Billing::Provisioned { read, write } => Finding {
            what: "billing",
            found: format!("provisioned: {read} read, {write} write units"),
            // Waiters and heartbeats come in bursts; throttled heartbeats lose leases.
            fix: (read < 5 || write < 5).then(|| {
                "under 5 units can throttle heartbeats and lose leases: switch to on demand or raise the capacity (see docs/operations.md)".to_owned()
            }),
        },
    }
}
