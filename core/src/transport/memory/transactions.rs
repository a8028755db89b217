//! TransactWriteItems: all-or-nothing writes over several items, and the ClientRequestToken that
//! makes a retried transaction succeed without applying it twice.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::expr::Condition;
use crate::request::{TransactItem, TransactWrite};
use crate::value::Item;

use super::validation::{check_condition, validation};
use super::writes::{Change, Prepared, Rejection};
use super::State;

/// DynamoDB's limit on the actions of one TransactWriteItems.
const MAX_TRANSACTION_ACTIONS: usize = 100;

/// How long DynamoDB remembers a transaction's ClientRequestToken.
const IDEMPOTENCY_WINDOW_MS: u64 = 10 * 60 * 1000;

pub(super) struct CompletedTransaction {
    items: Vec<TransactItem>,
    at_unix_ms: u64,
}

impl State {
    fn prepare_check<'r>(
        &self,
        operation: &'static str,
        table_name: &'r str,
        key: &'r Item,
        condition: &'r Condition,
    ) -> Result<Prepared<'r>> {
        let table = self.table(table_name)?;
        let key = table.request_key(operation, key)?;
        check_condition(operation, "ConditionExpression", condition)?;
        Ok(Prepared {
            table: table_name,
            key,
            condition: Some(condition),
            change: Change::Check,
            return_old_on_condition_failure: false,
        })
    }

    /// Transaction actions carry no ReturnValues in DynamoDB's API, so theirs are ignored.
    fn prepare_action<'r>(&self, operation: &'static str, action: &'r TransactItem) -> Result<Prepared<'r>> {
        match action {
            TransactItem::ConditionCheck { table, key, condition } => {
                self.prepare_check(operation, table, key, condition)
            }
            TransactItem::Put(put) => self.prepare_put(operation, put),
            TransactItem::Update(update) => self.prepare_update(operation, update),
            TransactItem::Delete(delete) => self.prepare_delete(operation, delete),
        }
    }

    pub(super) fn transact_write(&mut self, request: TransactWrite, now_unix_ms: u64) -> Result<()> {
        const OPERATION: &str = "TransactWriteItems";
        let count = request.items.len();
        if count == 0 || count > MAX_TRANSACTION_ACTIONS {
            return Err(validation(
                OPERATION,
                format!(
                    "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: \
                     Member must have length between 1 and {MAX_TRANSACTION_ACTIONS} (it has {count})"
                ),
            ));
        }
        if let Some(token) = &request.client_request_token {
            if self.replayed_transaction(OPERATION, token, &request.items, now_unix_ms)? {
                return Ok(());
            }
        }

        let prepared =
            request.items.iter().map(|action| self.prepare_action(OPERATION, action)).collect::<Result<Vec<_>>>()?;
        let mut targets = BTreeSet::new();
        if prepared.iter().any(|action| !targets.insert((action.table, &action.key))) {
            return Err(validation(OPERATION, "Transaction request cannot include multiple operations on one item"));
        }

        // Every action is checked against the state before the transaction, and every reason is
        // reported, as DynamoDB's CancellationReasons are.
        let mut outcomes = Vec::with_capacity(count);
        let mut reasons = Vec::with_capacity(count);
        for action in &prepared {
            let current = self.table(action.table)?.get(&action.key);
            match action.evaluate(OPERATION, current) {
                Ok(outcome) => {
                    outcomes.push(outcome);
                    reasons.push("None");
                }
                Err(Rejection::ConditionFailed) => reasons.push("ConditionalCheckFailed"),
                Err(Rejection::Invalid(_)) => reasons.push("ValidationError"),
            }
        }
        if outcomes.len() < count {
            return Err(Error::TransactionCanceled { reasons: reasons.into_iter().map(String::from).collect() });
        }
        for (action, outcome) in prepared.into_iter().zip(outcomes) {
            self.table_mut(action.table)?.commit(action.key, outcome);
        }

        if let Some(token) = request.client_request_token {
            self.transactions.insert(token, CompletedTransaction { items: request.items, at_unix_ms: now_unix_ms });
        }
        Ok(())
    }

    /// True when `token` already completed this very transaction within DynamoDB's ten-minute
    /// window: the retry succeeds without applying anything again.
    fn replayed_transaction(
        &mut self,
        operation: &'static str,
        token: &str,
        items: &[TransactItem],
        now_unix_ms: u64,
    ) -> Result<bool> {
        self.transactions.retain(|_, done| now_unix_ms.saturating_sub(done.at_unix_ms) < IDEMPOTENCY_WINDOW_MS);
        match self.transactions.get(token) {
            None => Ok(false),
            Some(done) if done.items == items => Ok(true),
            Some(_) => Err(Error::Service {
                operation,
                code: "IdempotentParameterMismatchException".into(),
                message: "The request uses the same client token as a previous, but non-identical request.".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory::test_support::*;
    use std::sync::Arc;

    use crate::clock;

    fn transaction(items: Vec<TransactItem>) -> TransactWrite {
        TransactWrite { items, client_request_token: None }
    }

    #[tokio::test]
    async fn transaction_applies_every_action_or_none() {
        let store = store().await;
        store.put_item(put(item(&[("pk", s("guard")), ("v", n("1"))]))).await.unwrap();
        store.put_item(put(item(&[("pk", s("doomed"))]))).await.unwrap();
        let actions = |guard_value: &str| {
            vec![
                TransactItem::Put(put(item(&[("pk", s("new"))]))),
                TransactItem::ConditionCheck {
                    table: TABLE.into(),
                    key: item(&[("pk", s("guard"))]),
                    condition: Condition::Compare(attr("v"), CompareOp::Eq, value(n(guard_value))),
                },
                TransactItem::Update(update(
                    item(&[("pk", s("counter"))]),
                    Update::default().set(attr("v"), value(n("7"))),
                )),
                TransactItem::Delete(DeleteItem {
                    condition: Some(Condition::Exists(pk())),
                    ..delete(item(&[("pk", s("doomed"))]))
                }),
            ]
        };

        match store.transact_write(transaction(actions("2"))).await {
            Err(Error::TransactionCanceled { reasons }) => {
                assert_eq!(reasons, vec!["None", "ConditionalCheckFailed", "None", "None"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(get(&store, item(&[("pk", s("new"))])).await, None);
        assert_eq!(get(&store, item(&[("pk", s("counter"))])).await, None);
        assert!(get(&store, item(&[("pk", s("doomed"))])).await.is_some());

        store.transact_write(transaction(actions("1"))).await.unwrap();
        assert!(get(&store, item(&[("pk", s("new"))])).await.is_some());
        assert_eq!(get(&store, item(&[("pk", s("counter"))])).await.unwrap()["v"], n("7"));
        assert_eq!(get(&store, item(&[("pk", s("doomed"))])).await, None);
    }

    #[tokio::test]
    async fn transaction_reports_every_failed_action() {
        let store = store().await;
        store.put_item(put(item(&[("pk", s("a")), ("count", s("text"))]))).await.unwrap();
        let actions = vec![
            TransactItem::Put(PutItem { condition: Some(Condition::NotExists(pk())), ..put(item(&[("pk", s("a"))])) }),
            TransactItem::Put(PutItem { condition: Some(Condition::Exists(pk())), ..put(item(&[("pk", s("b"))])) }),
            TransactItem::Update(update(item(&[("pk", s("c"))]), Update::default().set(attr("x"), value(s("y"))))),
        ];
        match store.transact_write(transaction(actions)).await {
            Err(Error::TransactionCanceled { reasons }) => {
                assert_eq!(reasons, vec!["ConditionalCheckFailed", "ConditionalCheckFailed", "None"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(get(&store, item(&[("pk", s("c"))])).await, None);

        // An update the item makes invalid cancels the transaction with ValidationError.
        let bad_increment = Update::default().increment(attr("count"), val(":zero", n("0")), val(":one", n("1")));
        let actions = vec![
            TransactItem::Update(update(item(&[("pk", s("a"))]), bad_increment)),
            TransactItem::Put(put(item(&[("pk", s("b"))]))),
        ];
        match store.transact_write(transaction(actions)).await {
            Err(Error::TransactionCanceled { reasons }) => assert_eq!(reasons, vec!["ValidationError", "None"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(get(&store, item(&[("pk", s("b"))])).await, None);
    }

    #[tokio::test]
    async fn transaction_validation() {
        let store = store().await;
        let twice = vec![
            TransactItem::Put(put(item(&[("pk", s("a"))]))),
            TransactItem::Delete(delete(item(&[("pk", s("a"))]))),
        ];
        assert_validation(store.transact_write(transaction(twice)).await, "multiple operations on one item");

        let too_many =
            (0..=MAX_TRANSACTION_ACTIONS).map(|i| TransactItem::Put(put(item(&[("pk", s(&i.to_string()))])))).collect();
        assert_validation(store.transact_write(transaction(too_many)).await, "transactItems");
        assert_validation(store.transact_write(transaction(vec![])).await, "transactItems");

        let hundred =
            (0..MAX_TRANSACTION_ACTIONS).map(|i| TransactItem::Put(put(item(&[("pk", s(&i.to_string()))])))).collect();
        store.transact_write(transaction(hundred)).await.unwrap();
        assert!(get(&store, item(&[("pk", s("99"))])).await.is_some());

        let bad_key = vec![TransactItem::Delete(delete(item(&[("pk", n("1"))])))];
        assert_validation(store.transact_write(transaction(bad_key)).await, "does not match the schema");
    }

    #[tokio::test(start_paused = true)]
    async fn transaction_tokens_make_retries_idempotent_for_ten_minutes() {
        let store = MemoryTransport::with_clock(Arc::new(clock::TokioClock::starting_at(1_000_000)));
        store
            .execute(Request::CreateTable(CreateTable {
                table: TABLE.into(),
                partition_key: KeyAttribute { name: "pk".into(), key_type: KeyType::S },
                sort_key: None,
            }))
            .await
            .unwrap();
        let create = || TransactWrite {
            items: vec![TransactItem::Put(PutItem {
                condition: Some(Condition::NotExists(pk())),
                ..put(item(&[("pk", s("a"))]))
            })],
            client_request_token: Some("token-1".into()),
        };
        store.transact_write(create()).await.unwrap();
        store.transact_write(create()).await.unwrap();

        let different = TransactWrite { items: vec![TransactItem::Put(put(item(&[("pk", s("b"))])))], ..create() };
        assert!(matches!(
            store.transact_write(different).await,
            Err(Error::Service { code, .. }) if code == "IdempotentParameterMismatchException"
        ));

        tokio::time::advance(std::time::Duration::from_millis(IDEMPOTENCY_WINDOW_MS)).await;
        assert!(matches!(store.transact_write(create()).await, Err(Error::TransactionCanceled { .. })));
    }
}
