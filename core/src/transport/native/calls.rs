//! Requests to SDK calls, and the SDK's outputs back to responses: expressions are rendered once
//! per request, and a prepared [`Call`] is cloned for every attempt.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::batch_get_item::builders::BatchGetItemFluentBuilder;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::delete_table::builders::DeleteTableFluentBuilder;
use aws_sdk_dynamodb::operation::describe_table::builders::DescribeTableFluentBuilder;
use aws_sdk_dynamodb::operation::describe_time_to_live::builders::DescribeTimeToLiveFluentBuilder;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_time_to_live::builders::UpdateTimeToLiveFluentBuilder;
use aws_sdk_dynamodb::types as sdk;
use aws_sdk_dynamodb::Client;

use crate::error::{Error, Result};
use crate::request::{
    Billing, BatchGet, BatchGetPage, CreateTable, DeleteItem, GetItem, KeyAttribute, PutItem, Query, QueryPage, RenderedExpressions, Request, Response, Scan,
    ReturnValues, TableDescription, TableStatus, TimeToLive, TransactItem, TransactWrite, UpdateItem,
};
use crate::expr::{Condition, Update};
use crate::value::KeyType;

use super::classify::{classify, Context, Verdict};
use super::values::{from_sdk_item, to_sdk_item, to_sdk_value, SdkItem};

/// A request translated into an SDK call, ready to send (and to clone for another attempt).
#[derive(Clone, Debug)]
pub(super) enum Call {
    GetItem(GetItemFluentBuilder),
    BatchGet(BatchGetItemFluentBuilder, String),
    PutItem(PutItemFluentBuilder),
    UpdateItem(UpdateItemFluentBuilder),
    DeleteItem(DeleteItemFluentBuilder),
    Query(QueryFluentBuilder),
    Scan(ScanFluentBuilder),
    TransactWrite(TransactWriteItemsFluentBuilder),
    CreateTable(CreateTableFluentBuilder, String),
    DescribeTable(DescribeTableFluentBuilder, String),
    DeleteTable(DeleteTableFluentBuilder),
    UpdateTimeToLive(UpdateTimeToLiveFluentBuilder, String, bool),
    DescribeTimeToLive(DescribeTimeToLiveFluentBuilder),
}

/// Translates `request` into an SDK call, rendering its expressions once. Item operations ask
/// for the capacity they consume (`ReturnConsumedCapacity: TOTAL`), which the client's stats
/// count.
pub(super) fn prepare(client: &Client, request: Request) -> Result<Call> {
    prepare_call(client, request).map(Call::counting_capacity)
}

fn prepare_call(client: &Client, request: Request) -> Result<Call> {
    Ok(match request {
        Request::GetItem(GetItem { table, key, consistent_read }) => Call::GetItem(
            client.get_item().table_name(table).set_key(Some(to_sdk_item(&key))).consistent_read(consistent_read),
        ),
        Request::BatchGet(BatchGet { table, keys, consistent_read }) => {
            let keys = sdk::KeysAndAttributes::builder()
                .set_keys(Some(keys.iter().map(to_sdk_item).collect()))
                .consistent_read(consistent_read)
                .build()
                .map_err(build_error)?;
            Call::BatchGet(client.batch_get_item().request_items(&table, keys), table)
        }
        Request::PutItem(put) => Call::PutItem(prepare_put(client, put)),
        Request::UpdateItem(update) => Call::UpdateItem(prepare_update(client, update)),
        Request::DeleteItem(delete) => Call::DeleteItem(prepare_delete(client, delete)),
        Request::Query(query) => Call::Query(prepare_query(client, query)),
        Request::Scan(scan) => Call::Scan(prepare_scan(client, scan)),
        Request::TransactWrite(transaction) => Call::TransactWrite(prepare_transaction(client, transaction)?),
        Request::CreateTable(create) => {
            let table = create.table.clone();
            Call::CreateTable(prepare_create_table(client, create)?, table)
        }
        Request::DescribeTable { table } => Call::DescribeTable(client.describe_table().table_name(&table), table),
        Request::DeleteTable { table } => Call::DeleteTable(client.delete_table().table_name(table)),
        Request::UpdateTimeToLive { table, attribute, enabled } => {
            let specification = sdk::TimeToLiveSpecification::builder()
                .attribute_name(&attribute)
                .enabled(enabled)
                .build()
                .map_err(build_error)?;
            Call::UpdateTimeToLive(
                client.update_time_to_live().table_name(table).time_to_live_specification(specification),
                attribute,
                enabled,
            )
        }
        Request::DescribeTimeToLive { table } => {
            Call::DescribeTimeToLive(client.describe_time_to_live().table_name(table))
        }
    })
}

fn build_error(error: aws_smithy_types::error::operation::BuildError) -> Error {
    Error::config(format!("invalid DynamoDB request: {error}"))
}

/// The expression attribute maps, or `None` when empty: DynamoDB rejects empty maps.
fn expression_maps(rendered: &RenderedExpressions) -> (Option<HashMap<String, String>>, Option<SdkItem>) {
    let names = &rendered.attributes.names;
    let values = &rendered.attributes.values;
    let names = (!names.is_empty()).then(|| names.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    let values = (!values.is_empty()).then(|| values.iter().map(|(k, v)| (k.clone(), to_sdk_value(v))).collect());
    (names, values)
}

fn return_value(values: ReturnValues) -> sdk::ReturnValue {
    match values {
        ReturnValues::None => sdk::ReturnValue::None,
        ReturnValues::AllOld => sdk::ReturnValue::AllOld,
        ReturnValues::AllNew => sdk::ReturnValue::AllNew,
    }
}

fn return_on_failure(all_old: bool) -> Option<sdk::ReturnValuesOnConditionCheckFailure> {
    all_old.then_some(sdk::ReturnValuesOnConditionCheckFailure::AllOld)
}

/// Sets what every conditional write shares on an SDK builder (seven builder types, one method
/// set): the table, the condition and its attribute maps, and whether a failed condition
/// returns the item. The SDK has no trait over them, hence a macro.
macro_rules! conditional_write {
    ($builder:expr, $write:ident, $rendered:expr) => {{
        let (names, values) = expression_maps(&$rendered);
        $builder
            .table_name($write.table)
            .set_condition_expression($rendered.condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .set_return_values_on_condition_check_failure(return_on_failure($write.return_old_on_condition_failure))
    }};
}

fn prepare_put(client: &Client, put: PutItem) -> PutItemFluentBuilder {
    let rendered = RenderedExpressions::new(put.condition.as_ref(), None, None, None);
    conditional_write!(client.put_item(), put, rendered).set_item(Some(to_sdk_item(&put.item))).return_values(return_value(put.return_values))
}

fn prepare_update(client: &Client, update: UpdateItem) -> UpdateItemFluentBuilder {
    let rendered = RenderedExpressions::new(update.condition.as_ref(), Some(&update.update), None, None);
    let (key, expression, returned) = (to_sdk_item(&update.key), rendered.update.clone(), return_value(update.return_values));
    conditional_write!(client.update_item(), update, rendered).set_key(Some(key)).set_update_expression(expression).return_values(returned)
}

fn prepare_delete(client: &Client, delete: DeleteItem) -> DeleteItemFluentBuilder {
    let rendered = RenderedExpressions::new(delete.condition.as_ref(), None, None, None);
    conditional_write!(client.delete_item(), delete, rendered).set_key(Some(to_sdk_item(&delete.key))).return_values(return_value(delete.return_values))
}

fn prepare_query(client: &Client, query: Query) -> QueryFluentBuilder {
    let key_condition = query.key_condition();
    let rendered = RenderedExpressions::new(None, None, Some(&key_condition), query.filter.as_ref());
    let (names, values) = expression_maps(&rendered);
    client
        .query()
        .table_name(query.table)
        .set_key_condition_expression(rendered.key_condition)
        .set_filter_expression(rendered.filter)
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .consistent_read(query.consistent_read)
        .set_limit(query.limit.map(|limit| i32::try_from(limit).unwrap_or(i32::MAX)))
        .set_exclusive_start_key(query.exclusive_start_key.as_ref().map(to_sdk_item))
}

fn prepare_scan(client: &Client, scan: Scan) -> ScanFluentBuilder {
    let rendered = RenderedExpressions::new(None, None, None, scan.filter.as_ref());
    let (names, values) = expression_maps(&rendered);
    client
        .scan()
        .table_name(scan.table)
        .set_filter_expression(rendered.filter)
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .consistent_read(scan.consistent_read)
        .set_limit(scan.limit.map(|limit| i32::try_from(limit).unwrap_or(i32::MAX)))
        .set_exclusive_start_key(scan.exclusive_start_key.as_ref().map(to_sdk_item))
}

fn prepare_transaction(client: &Client, transaction: TransactWrite) -> Result<TransactWriteItemsFluentBuilder> {
    let items = transaction.items.into_iter().map(transact_item).collect::<Result<Vec<_>>>()?;
    Ok(client
        .transact_write_items()
        .set_transact_items(Some(items))
        .set_client_request_token(transaction.client_request_token))
}

/// The expressions of one transaction action. Actions cannot return values in a transaction, so
/// asking for them is refused rather than silently ignored.
fn action_expressions(values: ReturnValues, condition: Option<&Condition>, update: Option<&Update>) -> Result<RenderedExpressions> {
    match values {
        ReturnValues::None => Ok(RenderedExpressions::new(condition, update, None, None)),
        other => Err(Error::config(format!("TransactWriteItems actions cannot return values (asked for {other:?})"))),
    }
}

/// One action of a transaction.
fn transact_item(item: TransactItem) -> Result<sdk::TransactWriteItem> {
    let builder = sdk::TransactWriteItem::builder();
    let item = match item {
        TransactItem::ConditionCheck { table, key, condition } => {
            let rendered = RenderedExpressions::new(Some(&condition), None, None, None);
            // A check returns nothing: the cancellation reason is the answer.
            let (names, values) = expression_maps(&rendered);
            let check = sdk::ConditionCheck::builder()
                .table_name(table)
                .set_key(Some(to_sdk_item(&key)))
                .set_condition_expression(rendered.condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values);
            builder.condition_check(check.build().map_err(build_error)?)
        }
        TransactItem::Put(put) => {
            let rendered = action_expressions(put.return_values, put.condition.as_ref(), None)?;
            let action = conditional_write!(sdk::Put::builder(), put, rendered).set_item(Some(to_sdk_item(&put.item)));
            builder.put(action.build().map_err(build_error)?)
        }
        TransactItem::Update(update) => {
            let rendered = action_expressions(update.return_values, update.condition.as_ref(), Some(&update.update))?;
            let (key, expression) = (to_sdk_item(&update.key), rendered.update.clone());
            let action = conditional_write!(sdk::Update::builder(), update, rendered).set_key(Some(key)).set_update_expression(expression);
            builder.update(action.build().map_err(build_error)?)
        }
        TransactItem::Delete(delete) => {
            let rendered = action_expressions(delete.return_values, delete.condition.as_ref(), None)?;
            let action = conditional_write!(sdk::Delete::builder(), delete, rendered).set_key(Some(to_sdk_item(&delete.key)));
            builder.delete(action.build().map_err(build_error)?)
        }
    };
    Ok(item.build())
}

/// A table with on-demand capacity and the given key.
fn prepare_create_table(client: &Client, create: CreateTable) -> Result<CreateTableFluentBuilder> {
    let keys = std::iter::once((&create.partition_key, sdk::KeyType::Hash))
        .chain(create.sort_key.as_ref().map(|sort| (sort, sdk::KeyType::Range)));
    let mut builder =
        client.create_table().table_name(create.table.clone()).billing_mode(sdk::BillingMode::PayPerRequest);
    for (attribute, role) in keys {
        let definition = sdk::AttributeDefinition::builder()
            .attribute_name(&attribute.name)
            .attribute_type(scalar_type(attribute.key_type))
            .build()
            .map_err(build_error)?;
        let element = sdk::KeySchemaElement::builder()
            .attribute_name(&attribute.name)
            .key_type(role)
            .build()
            .map_err(build_error)?;
        builder = builder.attribute_definitions(definition).key_schema(element);
    }
    Ok(builder)
}

/// Capacity units a call consumed, as DynamoDB reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Units {
    pub read: f64,
    pub write: f64,
}

fn units<'a>(reported: impl IntoIterator<Item = &'a sdk::ConsumedCapacity>, write: bool) -> Units {
    let total: f64 = reported.into_iter().filter_map(|c| c.capacity_units).sum();
    if write {
        Units { read: 0.0, write: total }
    } else {
        Units { read: total, write: 0.0 }
    }
}

impl Call {
    fn counting_capacity(self) -> Call {
        let total = sdk::ReturnConsumedCapacity::Total;
        match self {
            Call::GetItem(c) => Call::GetItem(c.return_consumed_capacity(total)),
            Call::BatchGet(c, table) => Call::BatchGet(c.return_consumed_capacity(total), table),
            Call::PutItem(c) => Call::PutItem(c.return_consumed_capacity(total)),
            Call::UpdateItem(c) => Call::UpdateItem(c.return_consumed_capacity(total)),
            Call::DeleteItem(c) => Call::DeleteItem(c.return_consumed_capacity(total)),
            Call::Query(c) => Call::Query(c.return_consumed_capacity(total)),
            Call::Scan(c) => Call::Scan(c.return_consumed_capacity(total)),
            Call::TransactWrite(c) => Call::TransactWrite(c.return_consumed_capacity(total)),
            other => other,
        }
    }

    /// Sends the call once and converts its output; also says what capacity it consumed.
    pub(super) async fn send(self, context: &Context) -> std::result::Result<(Response, Units), Verdict> {
        let operation = context.operation;
        let item = |item: Option<SdkItem>| {
            item.map(from_sdk_item).transpose().map_err(|unknown| Verdict::Final(unknown.into_error(operation)))
        };
        let described =
            |description: Result<TableDescription>| description.map(Response::Table).map_err(Verdict::Final);
        match self {
            Call::GetItem(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                let used = units(&output.consumed_capacity, false);
                Ok((Response::GetItem(item(output.item)?), used))
            }
            Call::BatchGet(call, table) => {
                let mut output = call.send().await.map_err(|e| classify(context, e))?;
                let used = units(output.consumed_capacity.iter().flatten(), false);
                let mut page = BatchGetPage::default();
                for found in output.responses.as_mut().and_then(|r| r.remove(&table)).unwrap_or_default() {
                    page.items.extend(item(Some(found))?);
                }
                let left = output.unprocessed_keys.as_mut().and_then(|u| u.remove(&table));
                for key in left.map(|keys| keys.keys).unwrap_or_default() {
                    page.unprocessed.extend(item(Some(key))?);
                }
                Ok((Response::BatchGet(page), used))
            }
            // A write answers with the item it replaced or wrote, when asked to.
            Call::PutItem(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                Ok((Response::Written(item(output.attributes)?), units(&output.consumed_capacity, true)))
            }
            Call::UpdateItem(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                Ok((Response::Written(item(output.attributes)?), units(&output.consumed_capacity, true)))
            }
            Call::DeleteItem(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                Ok((Response::Written(item(output.attributes)?), units(&output.consumed_capacity, true)))
            }
            Call::Query(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                let mut items = Vec::new();
                for found in output.items.unwrap_or_default() {
                    items.extend(item(Some(found))?);
                }
                let used = units(&output.consumed_capacity, false);
                Ok((Response::Query(QueryPage { items, last_evaluated_key: item(output.last_evaluated_key)? }), used))
            }
            Call::Scan(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                let mut items = Vec::new();
                for found in output.items.unwrap_or_default() {
                    items.extend(item(Some(found))?);
                }
                let used = units(&output.consumed_capacity, false);
                Ok((Response::Query(QueryPage { items, last_evaluated_key: item(output.last_evaluated_key)? }), used))
            }
            Call::TransactWrite(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                Ok((Response::TransactWrite, units(output.consumed_capacity.iter().flatten(), true)))
            }
            Call::CreateTable(call, table) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                described(table_description(operation, &table, output.table_description)).map(|r| (r, Units::default()))
            }
            Call::DescribeTable(call, table) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                described(table_description(operation, &table, output.table)).map(|r| (r, Units::default()))
            }
            Call::DeleteTable(call) => {
                call.send().await.map_err(|e| classify(context, e))?;
                Ok((Response::TableDeleted, Units::default()))
            }
            Call::UpdateTimeToLive(call, attribute, enabled) => {
                call.send().await.map_err(|e| classify(context, e))?;
                // DynamoDB echoes the specification; the change itself takes a while (up to an
                // hour on AWS), during which DescribeTimeToLive reports ENABLING or DISABLING.
                let ttl = if enabled { TimeToLive::Enabling { attribute } } else { TimeToLive::Disabling };
                Ok((Response::TimeToLive(ttl), Units::default()))
            }
            Call::DescribeTimeToLive(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                time_to_live(operation, output.time_to_live_description)
                    .map(|ttl| (Response::TimeToLive(ttl), Units::default()))
                    .map_err(Verdict::Final)
            }
        }
    }
}

fn unexpected_response(operation: &'static str, message: String) -> Error {
    Error::Service { operation, code: "UnexpectedResponse".into(), message }
}

fn scalar_type(key_type: KeyType) -> sdk::ScalarAttributeType {
    match key_type {
        KeyType::S => sdk::ScalarAttributeType::S,
        KeyType::N => sdk::ScalarAttributeType::N,
        KeyType::B => sdk::ScalarAttributeType::B,
    }
}

fn table_description(
    operation: &'static str,
    table: &str,
    description: Option<sdk::TableDescription>,
) -> Result<TableDescription> {
    let description =
        description.ok_or_else(|| unexpected_response(operation, format!("no description of table {table:?}")))?;
    let key_types: HashMap<&str, &sdk::ScalarAttributeType> =
        description.attribute_definitions().iter().map(|d| (d.attribute_name(), d.attribute_type())).collect();
    let key_attribute = |element: &sdk::KeySchemaElement| {
        let name = element.attribute_name();
        let key_type = match key_types.get(name) {
            Some(sdk::ScalarAttributeType::S) => KeyType::S,
            Some(sdk::ScalarAttributeType::N) => KeyType::N,
            Some(sdk::ScalarAttributeType::B) => KeyType::B,
            other => {
                return Err(unexpected_response(operation, format!("key attribute {name:?} has type {other:?}")));
            }
        };
        Ok(KeyAttribute { name: name.to_owned(), key_type })
    };
    let mut partition_key = None;
    let mut sort_key = None;
    for element in description.key_schema() {
        match element.key_type() {
            sdk::KeyType::Hash => partition_key = Some(key_attribute(element)?),
            sdk::KeyType::Range => sort_key = Some(key_attribute(element)?),
            other => return Err(unexpected_response(operation, format!("unknown key type {other:?}"))),
        }
    }
    let partition_key =
        partition_key.ok_or_else(|| unexpected_response(operation, format!("table {table:?} has no partition key")))?;
    let status = match description.table_status {
        Some(sdk::TableStatus::Creating) => TableStatus::Creating,
        Some(sdk::TableStatus::Active) => TableStatus::Active,
        Some(sdk::TableStatus::Updating) => TableStatus::Updating,
        Some(sdk::TableStatus::Deleting) => TableStatus::Deleting,
        Some(other) => TableStatus::Other(other.as_str().to_owned()),
        None => TableStatus::Other("UNKNOWN".to_owned()),
    };
    // Tables created on demand report no billing mode summary on some endpoints (DynamoDB Local
    // among them) but always have provisioned throughput of 0/0.
    let throughput = description.provisioned_throughput.as_ref();
    let (read, write) = (throughput.and_then(|t| t.read_capacity_units).unwrap_or(0), throughput.and_then(|t| t.write_capacity_units).unwrap_or(0));
    let billing = match description.billing_mode_summary.as_ref().and_then(|b| b.billing_mode.as_ref()) {
        Some(sdk::BillingMode::PayPerRequest) => Billing::OnDemand,
        Some(_) => Billing::Provisioned { read, write },
        None if read == 0 && write == 0 => Billing::OnDemand,
        None => Billing::Provisioned { read, write },
    };
    Ok(TableDescription {
        table: description.table_name.unwrap_or_else(|| table.to_owned()),
        status,
        partition_key,
        sort_key,
        billing,
    })
}

fn time_to_live(operation: &'static str, description: Option<sdk::TimeToLiveDescription>) -> Result<TimeToLive> {
    let description = description.unwrap_or_else(|| sdk::TimeToLiveDescription::builder().build());
    let attribute = || description.attribute_name().unwrap_or_default().to_owned();
    Ok(match description.time_to_live_status() {
        Some(sdk::TimeToLiveStatus::Enabled) => TimeToLive::Enabled { attribute: attribute() },
        Some(sdk::TimeToLiveStatus::Enabling) => TimeToLive::Enabling { attribute: attribute() },
        Some(sdk::TimeToLiveStatus::Disabling) => TimeToLive::Disabling,
        Some(sdk::TimeToLiveStatus::Disabled) | None => TimeToLive::Disabled,
        Some(other) => return Err(unexpected_response(operation, format!("unknown time to live status {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::native::test_support::*;
    use aws_config::{BehaviorVersion, Region};
    use crate::expr::{val, Name};
    use crate::value::AttributeValue;

    #[test]
    fn expression_maps_are_sent_only_when_used() {
        let client = Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .build(),
        );
        let Call::PutItem(call) = prepare(&client, put_request()).unwrap() else { unreachable!() };
        let input = call.as_input();
        assert_eq!(input.get_condition_expression().as_deref(), Some("attribute_not_exists(#pk)"));
        assert_eq!(input.get_expression_attribute_names().as_ref().unwrap()["#pk"], "pk");
        assert_eq!(input.get_expression_attribute_values(), &None);
        assert_eq!(
            input.get_return_values_on_condition_check_failure(),
            &Some(sdk::ReturnValuesOnConditionCheckFailure::AllOld)
        );

        let unconditional = Request::PutItem(PutItem {
            table: "locks".into(),
            item: key(),
            condition: None,
            return_values: ReturnValues::AllOld,
            return_old_on_condition_failure: false,
        });
        let Call::PutItem(call) = prepare(&client, unconditional).unwrap() else { unreachable!() };
        let input = call.as_input();
        assert_eq!(input.get_condition_expression(), &None);
        assert_eq!(input.get_expression_attribute_names(), &None);
        assert_eq!(input.get_return_values(), &Some(sdk::ReturnValue::AllOld));

        let query = Request::Query(Query {
            table: "locks".into(),
            partition: (Name::aliased("#pk", "pk"), val(":pk", AttributeValue::S("p".into()))),
            sort_key_prefix: Some((Name::aliased("#sk", "sk"), val(":prefix", AttributeValue::S("a".into())))),
            filter: None,
            consistent_read: true,
            limit: Some(10),
            exclusive_start_key: None,
        });
        let Call::Query(call) = prepare(&client, query).unwrap() else { unreachable!() };
        let input = call.as_input();
        assert_eq!(input.get_key_condition_expression().as_deref(), Some("#pk = :pk and begins_with(#sk, :prefix)"));
        assert_eq!(input.get_expression_attribute_values().as_ref().unwrap().len(), 2);
        assert_eq!(input.get_limit(), &Some(10));
    }

    #[test]
    fn transaction_actions_cannot_return_values() {
        let put = PutItem {
            table: "locks".into(),
            item: key(),
            condition: None,
            return_values: ReturnValues::AllOld,
            return_old_on_condition_failure: false,
        };
        assert!(matches!(transact_item(TransactItem::Put(put)), Err(Error::Config(_))));
    }

    #[test]
    fn table_descriptions_take_key_types_from_attribute_definitions() {
        let key = |name: &str, role| sdk::KeySchemaElement::builder().attribute_name(name).key_type(role).build().unwrap();
        let attribute = |name: &str, kind| sdk::AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().unwrap();
        let description = sdk::TableDescription::builder()
            .table_name("locks")
            .table_status(sdk::TableStatus::Active)
            .key_schema(key("id", sdk::KeyType::Hash))
            .key_schema(key("at", sdk::KeyType::Range))
            .attribute_definitions(attribute("id", sdk::ScalarAttributeType::B))
            .attribute_definitions(attribute("at", sdk::ScalarAttributeType::N))
            .build();
        let described = table_description("DescribeTable", "locks", Some(description)).unwrap();
        assert_eq!(described.status, TableStatus::Active);
        assert_eq!(described.partition_key, KeyAttribute { name: "id".into(), key_type: KeyType::B });
        assert_eq!(described.sort_key, Some(KeyAttribute { name: "at".into(), key_type: KeyType::N }));

        let archived = sdk::TableDescription::builder()
            .table_status(sdk::TableStatus::Archived)
            .key_schema(
                sdk::KeySchemaElement::builder().attribute_name("id").key_type(sdk::KeyType::Hash).build().unwrap(),
            )
            .build();
        // The key's type is missing from the definitions.
        assert!(table_description("DescribeTable", "locks", Some(archived)).is_err());
        assert!(table_description("DescribeTable", "locks", None).is_err());
    }

    #[test]
    fn time_to_live_statuses_map_one_to_one() {
        let ttl = |status: sdk::TimeToLiveStatus| {
            let description =
                sdk::TimeToLiveDescription::builder().time_to_live_status(status).attribute_name("expires").build();
            time_to_live("DescribeTimeToLive", Some(description)).unwrap()
        };
        assert_eq!(ttl(sdk::TimeToLiveStatus::Enabled), TimeToLive::Enabled { attribute: "expires".into() });
        assert_eq!(ttl(sdk::TimeToLiveStatus::Enabling), TimeToLive::Enabling { attribute: "expires".into() });
        assert_eq!(ttl(sdk::TimeToLiveStatus::Disabled), TimeToLive::Disabled);
        assert_eq!(ttl(sdk::TimeToLiveStatus::Disabling), TimeToLive::Disabling);
        assert_eq!(time_to_live("DescribeTimeToLive", None).unwrap(), TimeToLive::Disabled);
    }
}
