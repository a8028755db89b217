//! The DynamoDB requests the engines send, as plain data.
//!
//! Engines decide *what* to send; a [`Transport`](crate::transport::Transport) decides *how*.
//! The shapes follow the DynamoDB API so that a transport is a mechanical translation.

use crate::expr::{Condition, ExpressionAttributes, Name, Placeholder, Update};
use crate::value::{Item, KeyType};

/// Which item attributes a write returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReturnValues {
    #[default]
    None,
    AllOld,
    AllNew,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GetItem {
    pub table: String,
    pub key: Item,
    pub consistent_read: bool,
}

/// DynamoDB's limit on the keys of one BatchGetItem.
pub const MAX_BATCH_GET_KEYS: usize = 100;

/// Up to 100 items of one table in one request (BatchGetItem).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchGet {
    pub table: String,
    pub keys: Vec<Item>,
    pub consistent_read: bool,
}

/// What a BatchGetItem found, in no particular order, and the keys DynamoDB left for another
/// request (it may stop early under throttling or past 16 MB).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchGetPage {
    pub items: Vec<Item>,
    pub unprocessed: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PutItem {
    pub table: String,
    pub item: Item,
    pub condition: Option<Condition>,
    /// `ALL_OLD` or nothing (DynamoDB allows no other value for PutItem).
    pub return_values: ReturnValues,
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`: learn the current item from a failed write.
    pub return_old_on_condition_failure: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UpdateItem {
    pub table: String,
    pub key: Item,
    pub update: Update,
    pub condition: Option<Condition>,
    pub return_values: ReturnValues,
    pub return_old_on_condition_failure: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeleteItem {
    pub table: String,
    pub key: Item,
    pub condition: Option<Condition>,
    pub return_values: ReturnValues,
    pub return_old_on_condition_failure: bool,
}

/// One page of a Query on a partition, optionally narrowed to sort keys with a prefix.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub table: String,
    pub partition: (Name, Placeholder),
    pub sort_key_prefix: Option<(Name, Placeholder)>,
    pub filter: Option<Condition>,
    pub consistent_read: bool,
    pub limit: Option<u32>,
    pub exclusive_start_key: Option<Item>,
}

impl Query {
    /// The key condition: `#pk = :pk [and begins_with(#sk, :prefix)]`.
    pub fn key_condition(&self) -> Condition {
        let (name, value) = &self.partition;
        let partition = Condition::eq(name.clone(), value.clone());
        match &self.sort_key_prefix {
            Some((sort, prefix)) => partition.and(Condition::BeginsWith(sort.clone(), prefix.clone())),
            None => partition,
        }
    }
}

/// One page of a Scan: every item of the table, in no promised order, filtered after reading
/// (a filter saves bandwidth, not read capacity). For operators' tools, not for the engines.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    pub table: String,
    pub filter: Option<Condition>,
    pub consistent_read: bool,
    pub limit: Option<u32>,
    pub exclusive_start_key: Option<Item>,
}

/// A page of a Query or a Scan.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryPage {
    pub items: Vec<Item>,
    pub last_evaluated_key: Option<Item>,
}

/// One action of a TransactWriteItems.
#[derive(Clone, Debug, PartialEq)]
pub enum TransactItem {
    ConditionCheck { table: String, key: Item, condition: Condition },
    Put(PutItem),
    Update(UpdateItem),
    Delete(DeleteItem),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TransactWrite {
    pub items: Vec<TransactItem>,
    /// Makes a retried transaction idempotent for ten minutes (DynamoDB's ClientRequestToken).
    pub client_request_token: Option<String>,
}

/// A key attribute of a table's primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAttribute {
    pub name: String,
    pub key_type: KeyType,
}

impl KeyAttribute {
    pub fn new(name: impl Into<String>, key_type: KeyType) -> KeyAttribute {
        KeyAttribute { name: name.into(), key_type }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreateTable {
    pub table: String,
    pub partition_key: KeyAttribute,
    pub sort_key: Option<KeyAttribute>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableStatus {
    Creating,
    Active,
    Updating,
    Deleting,
    Other(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableDescription {
    pub table: String,
    pub status: TableStatus,
    pub partition_key: KeyAttribute,
    pub sort_key: Option<KeyAttribute>,
    pub billing: Billing,
}

/// How a table pays for capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Billing {
    /// On demand (PAY_PER_REQUEST).
    OnDemand,
    /// Provisioned read and write capacity units.
    Provisioned { read: i64, write: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeToLive {
    Enabled { attribute: String },
    Enabling { attribute: String },
    Disabled,
    Disabling,
}

/// A request a transport executes.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    GetItem(GetItem),
    BatchGet(BatchGet),
    PutItem(PutItem),
    UpdateItem(UpdateItem),
    DeleteItem(DeleteItem),
    Query(Query),
    Scan(Scan),
    TransactWrite(TransactWrite),
    CreateTable(CreateTable),
    DescribeTable { table: String },
    DeleteTable { table: String },
    UpdateTimeToLive { table: String, attribute: String, enabled: bool },
    DescribeTimeToLive { table: String },
}

impl Request {
    /// The DynamoDB operation name, for logs and errors.
    pub fn operation(&self) -> &'static str {
        match self {
            Request::GetItem(_) => "GetItem",
            Request::BatchGet(_) => "BatchGetItem",
            Request::PutItem(_) => "PutItem",
            Request::UpdateItem(_) => "UpdateItem",
            Request::DeleteItem(_) => "DeleteItem",
            Request::Query(_) => "Query",
            Request::Scan(_) => "Scan",
            Request::TransactWrite(_) => "TransactWriteItems",
            Request::CreateTable(_) => "CreateTable",
            Request::DescribeTable { .. } => "DescribeTable",
            Request::DeleteTable { .. } => "DeleteTable",
            Request::UpdateTimeToLive { .. } => "UpdateTimeToLive",
            Request::DescribeTimeToLive { .. } => "DescribeTimeToLive",
        }
    }

    /// True for requests that may be sent again after an unknown outcome without changing what
    /// they do: reads, and descriptions. Writes are resolved by the engines instead.
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self,
            Request::GetItem(_)
                | Request::BatchGet(_)
                | Request::Query(_)
                | Request::Scan(_)
                | Request::DescribeTable { .. } | Request::DescribeTimeToLive { .. }
        )
    }
}

/// The outcome of a [`Request`], variant for variant.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    GetItem(Option<Item>),
    BatchGet(BatchGetPage),
    /// The attributes asked for with `return_values`, if any.
    Written(Option<Item>),
    Query(QueryPage),
    TransactWrite,
    Table(TableDescription),
    TableDeleted,
    TimeToLive(TimeToLive),
}

/// The pieces of a write as DynamoDB's API names them, rendered once for every text transport.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RenderedExpressions {
    pub condition: Option<String>,
    pub update: Option<String>,
    pub key_condition: Option<String>,
    pub filter: Option<String>,
    pub attributes: ExpressionAttributes,
}

impl RenderedExpressions {
    pub fn new(
        condition: Option<&Condition>,
        update: Option<&Update>,
        key_condition: Option<&Condition>,
        filter: Option<&Condition>,
    ) -> RenderedExpressions {
        let mut attributes = ExpressionAttributes::default();
        let key_condition = key_condition.map(|c| c.render(&mut attributes));
        let update = update.map(|u| u.render(&mut attributes));
        let condition = condition.map(|c| c.render(&mut attributes));
        let filter = filter.map(|c| c.render(&mut attributes));
        RenderedExpressions { condition, update, key_condition, filter, attributes }
    }
}
