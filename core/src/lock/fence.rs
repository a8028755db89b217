//! Fenced writes: a write to another item that must land only while a lock is held, sent as one
//! transaction with a check that the lock item still carries the holder's guid.
//!
//! The KV store sends the transaction (`kv.rs`); this module owns the lock's side: the check it
//! adds, how a failed check is told from a failed write, and what happens when a heartbeat moved
//! the guid meanwhile.

use crate::error::Result;
use crate::expr::Condition;
use crate::lock::held::Lock;
use crate::lock::item::Observed;
use crate::request::TransactItem;
use crate::transport::TransportExt;
use crate::value::Item;

/// The condition a fenced write adds to its transaction.
pub(crate) struct FenceCheck {
    table: String,
    key: Item,
    condition: Condition,
}

impl FenceCheck {
    /// The transaction's items: the lock check first, where [`lock_check_failed`] looks for it.
    pub fn transaction(self, write: TransactItem) -> Vec<TransactItem> {
        vec![TransactItem::ConditionCheck { table: self.table, key: self.key, condition: self.condition }, write]
    }
}

/// Whether a fenced transaction was cancelled by its lock check (DynamoDB gives one reason per
/// item, in order), rather than by the write's own condition.
pub(crate) fn lock_check_failed(reasons: &[String]) -> bool {
    reasons.first().is_some_and(|reason| reason == "ConditionalCheckFailed")
}

pub(crate) enum FencedOutcome<T> {
    Done(T),
    /// The transaction failed on the lock item's condition.
    LockCheckFailed,
}

impl Lock {
    /// Runs a write that must only succeed while this lock is held. `write` builds the request
    /// from the lock item's condition on one guid; it is called again with the new guid when a
    /// heartbeat replaced it meanwhile.
    ///
    /// The lock's mutex is held only to read the guid, not across the write: a slow KV table
    /// must not hold up the heartbeats that keep the lease. Conditioning on a guid a heartbeat
    /// is replacing is safe: DynamoDB applies the transaction only if the item still carries it.
    pub(crate) async fn fenced<T, F, Fut>(&self, write: F) -> Result<T>
    where
        F: Fn(FenceCheck) -> Fut,
        Fut: std::future::Future<Output = Result<FencedOutcome<T>>>,
    {
        let inner = &self.inner;
        loop {
            let guid = inner.lock_held().await?.guid.clone();
            let check = FenceCheck {
                table: inner.site.table.table.clone(),
                key: inner.site.table.key(&inner.site.id),
                condition: inner.site.table.held_by(&guid),
            };
            match write(check).await? {
                FencedOutcome::Done(value) => return Ok(value),
                FencedOutcome::LockCheckFailed => {
                    let mut held = inner.lock_held().await?;
                    if held.guid != guid {
                        continue; // a heartbeat moved the guid while we wrote: try with the new one
                    }
                    // A heartbeat with an unknown outcome may have moved the guid: look.
                    let item = inner.site.transport.get_item(inner.site.table.read(&inner.site.id)).await?;
                    inner.adopt_or_lose(&mut held, item.as_ref().map(Observed::from_item))?;
                }
            }
        }
    }
}
