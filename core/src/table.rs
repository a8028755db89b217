//! Creating tables and checking that an existing table fits a configuration.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::request::{CreateTable, Request, Response, TableDescription, TableStatus, TimeToLive};

pub use crate::request::KeyAttribute;
use crate::transport::Transport;
use crate::value::KeyType;

/// The attribute the KV store writes expiry times into (epoch seconds), and that
/// [`create_table`] turns DynamoDB TTL on for.
pub const TTL_ATTRIBUTE: &str = "expires";

/// How long [`create_table`] waits for a new table to become ACTIVE.
pub const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(120);

/// The key schema a table must have.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSpec {
    /// The table's name.
    pub name: String,
    /// The partition (`HASH`) key attribute and its type.
    pub partition_key: KeyAttribute,
    /// The sort (`RANGE`) key attribute and its type, if the table has one.
    pub sort_key: Option<KeyAttribute>,
    /// Turn DynamoDB TTL on for this attribute when creating (default `expires`).
    pub ttl_attribute: Option<String>,
}

impl TableSpec {
    /// A table keyed by a string partition key.
    pub fn new(name: impl Into<String>, partition_key: impl Into<String>) -> TableSpec {
        TableSpec {
            name: name.into(),
            partition_key: KeyAttribute { name: partition_key.into(), key_type: KeyType::S },
            sort_key: None,
            ttl_attribute: Some(TTL_ATTRIBUTE.into()),
        }
    }

    fn validate(&self) -> Result<()> {
        check_table_name(&self.name)?;
        if self.partition_key.name.is_empty() || self.sort_key.as_ref().is_some_and(|s| s.name.is_empty()) {
            return Err(Error::config("key attribute names must not be empty"));
        }
        if self.sort_key.as_ref().is_some_and(|s| s.name == self.partition_key.name) {
            return Err(Error::option("partition_key", "and {sort_key} must name different attributes"));
        }
        Ok(())
    }

    /// Says what differs between this spec and an existing table, if anything.
    pub fn check(&self, table: &TableDescription) -> Result<()> {
        let describe = |key: &KeyAttribute| format!("{:?} of type {}", key.name, key.key_type);
        let mut differences = Vec::new();
        if table.partition_key != self.partition_key {
            differences.push(format!(
                "partition key is {} but {} was expected",
                describe(&table.partition_key),
                describe(&self.partition_key)
            ));
        }
        match (&table.sort_key, &self.sort_key) {
            (Some(actual), Some(wanted)) if actual != wanted => {
                differences.push(format!("sort key is {} but {} was expected", describe(actual), describe(wanted)))
            }
            (Some(actual), None) => differences.push(format!("it has sort key {} but none was expected", describe(actual))),
            (None, Some(wanted)) => differences.push(format!("it has no sort key but {} was expected", describe(wanted))),
            _ => {}
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(Error::TableSchema {
                table: self.name.clone(),
                message: format!("{}; use a table with the expected keys or change the client's key options", differences.join("; ")),
            })
        }
    }
}

/// Creates the table (on-demand billing, TTL on `expires`) and waits until it is ACTIVE.
///
/// Idempotent: an existing table is accepted if its key schema matches, and rejected with
/// [`Error::TableSchema`] saying what differs otherwise.
pub async fn create_table(transport: &dyn Transport, spec: &TableSpec) -> Result<TableDescription> {
    create_table_within(transport, spec, DEFAULT_CREATE_TIMEOUT).await
}

/// [`create_table`] with a bound on the wait for ACTIVE.
pub async fn create_table_within(transport: &dyn Transport, spec: &TableSpec, timeout: Duration) -> Result<TableDescription> {
    spec.validate()?;
    let request = CreateTable { table: spec.name.clone(), partition_key: spec.partition_key.clone(), sort_key: spec.sort_key.clone() };
    match transport.execute(Request::CreateTable(request)).await {
        Ok(_) => tracing::info!(table = %spec.name, "created table"),
        Err(Error::Service { code, .. }) if code == "ResourceInUseException" => {}
        // A lost response to CreateTable: the describe below tells whether it exists.
        Err(e) if e.is_ambiguous() => {}
        Err(e) => return Err(e),
    }
    let table = wait_until_active(transport, &spec.name, timeout).await?;
    spec.check(&table)?;
    if let Some(attribute) = &spec.ttl_attribute {
        enable_ttl(transport, &spec.name, attribute).await?;
    }
    Ok(table)
}

/// Checks that the table exists, is usable and has the key schema of `spec`.
pub async fn check_table(transport: &dyn Transport, spec: &TableSpec) -> Result<TableDescription> {
    let table = describe(transport, &spec.name).await?;
    spec.check(&table)?;
    Ok(table)
}

/// DescribeTable: the table's key schema, status and billing; [`Error::TableNotFound`] if it
/// does not exist.
pub async fn describe(transport: &dyn Transport, table: &str) -> Result<TableDescription> {
    match transport.execute(Request::DescribeTable { table: table.to_owned() }).await? {
        Response::Table(description) => Ok(description),
        other => Err(unexpected("DescribeTable", other)),
    }
}

/// Deletes a table (for tests and tear-down); a missing table is not an error.
pub async fn delete_table(transport: &dyn Transport, table: &str) -> Result<()> {
    match transport.execute(Request::DeleteTable { table: table.to_owned() }).await {
        Ok(_) | Err(Error::TableNotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn wait_until_active(transport: &dyn Transport, table: &str, timeout: Duration) -> Result<TableDescription> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        let description = describe(transport, table).await?;
        match &description.status {
            TableStatus::Active => return Ok(description),
            TableStatus::Deleting => {
                return Err(Error::TableSchema { table: table.to_owned(), message: "it is being deleted; wait and create it again".into() })
            }
            _ if Instant::now() >= deadline => {
                return Err(Error::TableSchema {
                    table: table.to_owned(),
                    message: format!("it did not become ACTIVE within {timeout:?} (status {:?})", description.status),
                })
            }
            _ => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

async fn enable_ttl(transport: &dyn Transport, table: &str, attribute: &str) -> Result<()> {
    let current = match transport.execute(Request::DescribeTimeToLive { table: table.to_owned() }).await? {
        Response::TimeToLive(ttl) => ttl,
        other => return Err(unexpected("DescribeTimeToLive", other)),
    };
    match current {
        TimeToLive::Enabled { attribute: a } | TimeToLive::Enabling { attribute: a } if a == attribute => Ok(()),
        TimeToLive::Enabled { attribute: other } | TimeToLive::Enabling { attribute: other } => {
            // A table has one TTL attribute; respect the owner's choice and say so.
            tracing::warn!(%table, ttl = %other, wanted = %attribute, "table already has TTL on another attribute; leaving it");
            Ok(())
        }
        TimeToLive::Disabled | TimeToLive::Disabling => {
            let request = Request::UpdateTimeToLive { table: table.to_owned(), attribute: attribute.to_owned(), enabled: true };
            match transport.execute(request).await {
                Ok(_) => Ok(()),
                // Enabled concurrently by another creator.
                Err(Error::Validation { message, .. }) if message.contains("already enabled") => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

fn unexpected(operation: &'static str, response: Response) -> Error {
    Error::Service { operation, code: "UnexpectedResponse".into(), message: format!("{response:?}") }
}

/// Checks a table name the way DynamoDB will, so that a typo fails when the client is built
/// rather than on its first request: 3 to 255 letters, digits, `_`, `-` or `.`, or the ARN of
/// such a table (`arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`, for a table in another account).
pub fn check_table_name(name: &str) -> Result<()> {
    let plain = match name.strip_prefix("arn:") {
        None => name,
        Some(rest) => match rest.splitn(5, ':').collect::<Vec<_>>()[..] {
            [_partition, "dynamodb", _region, _account, resource] => resource.strip_prefix("table/").unwrap_or_default(),
            _ => "",
        },
    };
    let valid = (3..=255).contains(&plain.len()) && plain.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if !valid {
        return Err(Error::config(format!(
            "table name {name:?} is invalid: DynamoDB table names are 3 to 255 letters, digits, '_', '-' or '.' (or a table's ARN, arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_follow_dynamodb_rules() {
        for good in ["abc", "locks", "my_table-1.v2", &"t".repeat(255), "arn:aws:dynamodb:eu-west-1:123456789012:table/locks"] {
            check_table_name(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["", "kv", "a b c", "locks!", &"t".repeat(256), "arn:aws:s3:::bucket", "arn:aws:dynamodb:eu-west-1:1:table/x", "arn:aws:dynamodb:eu-west-1:1:index/locks"] {
            let message = check_table_name(bad).unwrap_err().to_string();
            assert!(message.contains("3 to 255 letters"), "{bad}: {message}");
        }
    }
}
