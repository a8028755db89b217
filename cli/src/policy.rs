//! `iam-policy`: the least-privilege IAM policy for a table's clients, or for this tool.
//!
//! Each statement is one reason (docs/operations.md explains them): TransactWriteItems has no
//! IAM action of its own; a fenced write needs ConditionCheckItem plus the write's own action.

use serde_json::json;

use crate::args::IamArgs;
use crate::render::Report;

/// The actions of each group, and why a client needs them.
const READ: (&str, &[&str]) = ("Read", &["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable"]);
const WRITE: (&str, &[&str]) =
    ("LockAndKvWrites", &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]);
const SETUP: (&str, &[&str]) = ("CreateTable", &["dynamodb:CreateTable", "dynamodb:DescribeTimeToLive", "dynamodb:UpdateTimeToLive"]);
/// Operators' reads. DescribeTimeToLive again, for a policy without CreateTable.
const OPERATE: (&str, &[&str]) = ("OperatorReads", &["dynamodb:Scan", "dynamodb:DescribeTimeToLive"]);

pub fn policy(args: &IamArgs) -> serde_json::Value {
    let region = args.arn_region.as_deref().unwrap_or("*");
    let account = args.account.as_deref().unwrap_or("*");
    let resources: Vec<String> = args.tables.iter().map(|table| format!("arn:aws:dynamodb:{region}:{account}:table/{table}")).collect();
    let resource = if resources.len() == 1 { json!(resources[0]) } else { json!(resources) };
    let mut groups = vec![READ];
    if args.cli {
        groups.push(OPERATE);
    }
    if !args.read_only {
        groups.push(WRITE);
        if args.create {
            groups.push(SETUP);
        }
    }
    let statements: Vec<serde_json::Value> = groups
        .iter()
        .map(|(sid, actions)| json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}))
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

pub fn iam_policy(args: &IamArgs) -> Report {
    let policy = policy(args);
    Report::new(serde_json::to_string_pretty(&policy).unwrap_or_default(), policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(read_only: bool, cli: bool) -> IamArgs {
        IamArgs { tables: vec!["locks".into()], read_only, cli, create: false, arn_region: None, account: Some("123456789012".into()) }
    }

    fn actions(policy: &serde_json::Value) -> Vec<String> {
        let mut all: Vec<String> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    #[test]
    fn clients_get_what_locks_semaphores_and_fenced_writes_send_and_nothing_else() {
        let all = actions(&policy(&args(false, false)));
        for needed in ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"] {
            assert!(all.contains(&needed.to_owned()), "{needed}");
        }
        assert!(!all.iter().any(|a| a == "dynamodb:Scan" || a == "dynamodb:CreateTable" || a.ends_with('*')), "{all:?}");
        assert_eq!(policy(&args(false, false))["Statement"][0]["Resource"], "arn:aws:dynamodb:*:123456789012:table/locks");
    }

    #[test]
    fn a_fenced_write_needs_both_tables_and_creating_is_asked_for() {
        let both = IamArgs { tables: vec!["locks".into(), "kv-store".into()], create: true, ..args(false, false) };
        let policy = policy(&both);
        assert_eq!(policy["Statement"][0]["Resource"][1], "arn:aws:dynamodb:*:123456789012:table/kv-store");
        assert!(actions(&policy).contains(&"dynamodb:CreateTable".to_owned()));
    }

    #[test]
    fn read_only_writes_nothing_and_the_cli_may_scan() {
        let read = actions(&policy(&args(true, true)));
        assert!(read.contains(&"dynamodb:Scan".to_owned()));
        assert!(!read.iter().any(|a| ["PutItem", "UpdateItem", "DeleteItem", "CreateTable"].iter().any(|w| a.ends_with(w))), "{read:?}");
    }
}
