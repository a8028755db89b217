//! The DynamoDB requests the engines send, as plain data.
//!
//! Engines decide *what* to send; a [`Transport`](crate::transport::Transport) decides *how*.
//! The shapes follow the DynamoDB API so that a transport is a mechanical translation.

use crate::expr::{Condition, ExpressionAttributes, Name, Placeholder, Update};
use crate::value::{Item, KeyType};

/// Which item attributes a write returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReturnValues {
    /// Nothing (`NONE`): the write returns no attributes.
    #[default]
    None,
    /// The item as it was before the write (`ALL_OLD`).
    AllOld,
    /// The item as the write left it (`ALL_NEW`; UpdateItem only).
    AllNew,
}

/// Reads one item by its full primary key (GetItem).
#[derive(Clone, Debug, PartialEq)]
pub struct GetItem {
    /// The name of the table to read.
    pub table: String,
    /// The item's primary key: the partition key attribute, and the sort key attribute if the
    /// table has one.
    pub key: Item,
    /// DynamoDB's `ConsistentRead`: see every write that succeeded before the read, not a
    /// possibly stale replica.
    pub consistent_read: bool,
}

/// DynamoDB's limit on the keys of one BatchGetItem.
pub const MAX_BATCH_GET_KEYS: usize = 100;

/// Up to 100 items of one table in one request (BatchGetItem).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchGet {
    /// The name of the table to read.
    pub table: String,
    /// The primary keys to read, at most [`MAX_BATCH_GET_KEYS`], with no key twice.
    pub keys: Vec<Item>,
    /// DynamoDB's `ConsistentRead`, for every key.
    pub consistent_read: bool,
}

/// What a BatchGetItem found, in no particular order, and the keys DynamoDB left for another
/// request (it may stop early under throttling or past 16 MB).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchGetPage {
    /// The items found; keys without an item are simply missing.
    pub items: Vec<Item>,
    /// DynamoDB's `UnprocessedKeys`: keys not read yet, to ask for again.
    pub unprocessed: Vec<Item>,
}

/// Creates or replaces a whole item (PutItem).
#[derive(Clone, Debug, PartialEq)]
pub struct PutItem {
    /// The name of the table to write.
    pub table: String,
    /// The complete item, its key attributes included.
    pub item: Item,
    /// DynamoDB's `ConditionExpression`: the write happens only if it holds for the current item.
    pub condition: Option<Condition>,
    /// `ALL_OLD` or nothing (DynamoDB allows no other value for PutItem).
    pub return_values: ReturnValues,
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`: learn the current item from a failed write.
    pub return_old_on_condition_failure: bool,
}

/// Changes some attributes of an item, creating it if it is absent (UpdateItem).
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateItem {
    /// The name of the table to write.
    pub table: String,
    /// The item's primary key.
    pub key: Item,
    /// DynamoDB's `UpdateExpression`: what to set and remove.
    pub update: Update,
    /// DynamoDB's `ConditionExpression`: the write happens only if it holds for the current item.
    pub condition: Option<Condition>,
    /// Which attributes the response carries (`ReturnValues`).
    pub return_values: ReturnValues,
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`: learn the current item from a failed write.
    pub return_old_on_condition_failure: bool,
}

/// Deletes an item by its primary key (DeleteItem); deleting an absent item succeeds.
#[derive(Clone, Debug, PartialEq)]
pub struct DeleteItem {
    /// The name of the table to write.
    pub table: String,
    /// The item's primary key.
    pub key: Item,
    /// DynamoDB's `ConditionExpression`: the delete happens only if it holds for the current item.
    pub condition: Option<Condition>,
    /// `ALL_OLD` or nothing (DynamoDB allows no other value for DeleteItem).
    pub return_values: ReturnValues,
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`: learn the current item from a failed write.
    pub return_old_on_condition_failure: bool,
}

/// One page of a Query on a partition, optionally narrowed to sort keys with a prefix.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The name of the table to query.
    pub table: String,
    /// The partition key attribute and the value every item returned has in it.
    pub partition: (Name, Placeholder),
    /// The sort key attribute and the prefix its values must start with (`begins_with`).
    pub sort_key_prefix: Option<(Name, Placeholder)>,
    /// DynamoDB's `FilterExpression`: drops items after they are read (and paid for).
    pub filter: Option<Condition>,
    /// DynamoDB's `ConsistentRead`: see every write that succeeded before the query.
    pub consistent_read: bool,
    /// DynamoDB's `Limit`: the most items to read for this page, counted before the filter.
    pub limit: Option<u32>,
    /// DynamoDB's `ExclusiveStartKey`: continue after this key, the previous page's
    /// [`last_evaluated_key`](QueryPage::last_evaluated_key).
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
    /// The name of the table to scan.
    pub table: String,
    /// DynamoDB's `FilterExpression`: drops items after they are read (and paid for).
    pub filter: Option<Condition>,
    /// DynamoDB's `ConsistentRead`: see every write that succeeded before the scan.
    pub consistent_read: bool,
    /// DynamoDB's `Limit`: the most items to read for this page, counted before the filter.
    pub limit: Option<u32>,
    /// DynamoDB's `ExclusiveStartKey`: continue after this key, the previous page's
    /// [`last_evaluated_key`](QueryPage::last_evaluated_key).
    pub exclusive_start_key: Option<Item>,
}

/// A page of a Query or a Scan.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryPage {
    /// The items of this page that passed the filter, in sort key order for a Query.
    pub items: Vec<Item>,
    /// DynamoDB's `LastEvaluatedKey`: where the next page starts; `None` on the last page. A page
    /// may be empty and still have one.
    pub last_evaluated_key: Option<Item>,
}

/// One action of a TransactWriteItems.
#[derive(Clone, Debug, PartialEq)]
pub enum TransactItem {
    /// Writes nothing, but the transaction happens only if `condition` holds for this item.
    ConditionCheck {
        /// The name of the item's table.
        table: String,
        /// The item's primary key.
        key: Item,
        /// What must be true of the item (DynamoDB's `ConditionExpression`).
        condition: Condition,
    },
    /// Writes an item, under its own condition if it has one.
    Put(PutItem),
    /// Updates an item, under its own condition if it has one.
    Update(UpdateItem),
    /// Deletes an item, under its own condition if it has one.
    Delete(DeleteItem),
}

/// Several writes applied all together or not at all (TransactWriteItems): if one condition
/// fails, nothing is written and the error lists a reason per action.
#[derive(Clone, Debug, PartialEq)]
pub struct TransactWrite {
    /// The actions, at most 100, each on a different item.
    pub items: Vec<TransactItem>,
    /// Makes a retried transaction idempotent for ten minutes (DynamoDB's ClientRequestToken).
    pub client_request_token: Option<String>,
}

/// A key attribute of a table's primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAttribute {
    /// The attribute's name.
    pub name: String,
    /// The attribute's scalar type, which every item's value of it must have.
    pub key_type: KeyType,
}

impl KeyAttribute {
    /// A key attribute named `name` of type `key_type`.
    pub fn new(name: impl Into<String>, key_type: KeyType) -> KeyAttribute {
        KeyAttribute { name: name.into(), key_type }
    }
}

/// Creates a table with on-demand billing (CreateTable). DynamoDB answers before the table is
/// usable: it is `CREATING` until it turns `ACTIVE`.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateTable {
    /// The name of the table to create.
    pub table: String,
    /// The partition (`HASH`) key.
    pub partition_key: KeyAttribute,
    /// The sort (`RANGE`) key, if items share partitions.
    pub sort_key: Option<KeyAttribute>,
}

/// Where a table is in its life (DynamoDB's `TableStatus`). Items can be read and written
/// while it is `Active` or `Updating`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableStatus {
    /// Being created: not usable yet.
    Creating,
    /// Ready.
    Active,
    /// Being changed (capacity, indexes); still serves requests.
    Updating,
    /// Being deleted.
    Deleting,
    /// A status this crate does not know, as DynamoDB spells it (e.g. `ARCHIVED`).
    Other(String),
}

/// What DescribeTable or CreateTable says about a table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableDescription {
    /// The table's name.
    pub table: String,
    /// Whether the table can serve requests yet.
    pub status: TableStatus,
    /// The partition (`HASH`) key.
    pub partition_key: KeyAttribute,
    /// The sort (`RANGE`) key, if the table has one.
    pub sort_key: Option<KeyAttribute>,
    /// How the table pays for reads and writes.
    pub billing: Billing,
}

/// How a table pays for capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Billing {
    /// On demand (PAY_PER_REQUEST).
    OnDemand,
    /// Provisioned read and write capacity units.
    Provisioned {
        /// Read capacity units.
        read: i64,
        /// Write capacity units.
        write: i64,
    },
}

/// Whether DynamoDB deletes the table's expired items (DescribeTimeToLive's
/// `TimeToLiveStatus`). Changes take up to an hour on AWS, in the `-ing` states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeToLive {
    /// TTL is on: items whose `attribute` holds a past time (epoch seconds) are deleted, within
    /// a few days.
    Enabled {
        /// The attribute holding each item's expiry time.
        attribute: String,
    },
    /// TTL is being turned on for `attribute`.
    Enabling {
        /// The attribute that will hold each item's expiry time.
        attribute: String,
    },
    /// TTL is off: nothing is deleted for its age.
    Disabled,
    /// TTL is being turned off.
    Disabling,
}

/// A request a transport executes.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Reads one item.
    GetItem(GetItem),
    /// Reads up to 100 items.
    BatchGet(BatchGet),
    /// Creates or replaces an item.
    PutItem(PutItem),
    /// Changes attributes of an item.
    UpdateItem(UpdateItem),
    /// Deletes an item.
    DeleteItem(DeleteItem),
    /// Reads a page of one partition.
    Query(Query),
    /// Reads a page of the whole table.
    Scan(Scan),
    /// Applies several writes atomically.
    TransactWrite(TransactWrite),
    /// Creates a table.
    CreateTable(CreateTable),
    /// Reads a table's key schema, status and billing.
    DescribeTable {
        /// The table's name.
        table: String,
    },
    /// Deletes a table and all its items.
    DeleteTable {
        /// The table's name.
        table: String,
    },
    /// Turns DynamoDB's TTL on or off for a table.
    UpdateTimeToLive {
        /// The table's name.
        table: String,
        /// The attribute holding each item's expiry time (epoch seconds).
        attribute: String,
        /// On (`true`) or off.
        enabled: bool,
    },
    /// Reads whether a table has TTL on, and on which attribute.
    DescribeTimeToLive {
        /// The table's name.
        table: String,
    },
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
    /// To [`Request::GetItem`]: the item, or `None` when there is none under the key.
    GetItem(Option<Item>),
    /// To [`Request::BatchGet`].
    BatchGet(BatchGetPage),
    /// The attributes asked for with `return_values`, if any.
    Written(Option<Item>),
    /// To [`Request::Query`] and [`Request::Scan`].
    Query(QueryPage),
    /// To [`Request::TransactWrite`]: every action was applied.
    TransactWrite,
    /// To [`Request::CreateTable`] and [`Request::DescribeTable`].
    Table(TableDescription),
    /// To [`Request::DeleteTable`]: deletion has started.
    TableDeleted,
    /// To [`Request::UpdateTimeToLive`] (the state it moves to) and [`Request::DescribeTimeToLive`].
    TimeToLive(TimeToLive),
}

/// The pieces of a write as DynamoDB's API names them, rendered once for every text transport.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RenderedExpressions {
    /// `ConditionExpression`.
    pub condition: Option<String>,
    /// `UpdateExpression`.
    pub update: Option<String>,
    /// `KeyConditionExpression` (Query).
    pub key_condition: Option<String>,
    /// `FilterExpression` (Query and Scan).
    pub filter: Option<String>,
    /// `ExpressionAttributeNames` and `ExpressionAttributeValues` for all of the above.
    pub attributes: ExpressionAttributes,
}

impl RenderedExpressions {
    /// Renders each expression given, registering the placeholders of all of them in one
    /// [`ExpressionAttributes`].
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
