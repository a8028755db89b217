//! Counting semaphores: at most N holders at once, each holding a permit that is an ordinary
//! lease lock (fencing token, heartbeats, lost signal, release), so a crashed holder's permit
//! frees itself after its lease and none leak.
//!
//! Permit `k` of semaphore `name` is the lock `name#k` (the suffix goes on the sort key part when
//! the id has one); the semaphore's own item, `name`, records N so that every client counts the
//! same permits. A waiter reads all N permit items in one BatchGetItem per poll, whatever N is,
//! and writes only to a permit it saw free (or watched for a whole lease).

use std::collections::HashMap;
use std::time::Duration;

use rand::seq::SliceRandom;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::error::{duration_text, Error, Result};
use crate::lock::client::{AcquireWith, Attempt, LockClient, Watch};
use crate::lock::config::LockConfig;
use crate::lock::held::Lock;
use crate::lock::item::{LockId, Observed, LOCK_DATA, SEMAPHORE_PERMITS};
use crate::lock::poll;
use crate::request::MAX_BATCH_GET_KEYS;
use crate::transport::TransportExt;
use crate::value::{AttributeValue, Item, KeyValue, Value, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};

/// The most permits a semaphore can have: one BatchGetItem reads them all.
pub const MAX_PERMITS: u32 = MAX_BATCH_GET_KEYS as u32;

/// How many times one look asks again for permit items DynamoDB left unprocessed (throttling).
const UNPROCESSED_RETRIES: u32 = 5;

/// A counting semaphore on a [`LockClient`]'s table. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Semaphore {
    client: LockClient,
    id: LockId,
    permits: Vec<LockId>,
    /// Set once the semaphore's item was found (or written) with our number of permits.
    checked: std::sync::Arc<OnceCell<()>>,
}

/// Who holds a permit, as its item shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PermitHolder {
    /// The permit's number, 0 to N - 1; its lock id is the semaphore's with `#number` appended.
    pub permit: u32,
    /// The holder's `owner` attribute: the holder as it named itself.
    pub owner: String,
    /// The permit's fencing token, which rises with every holder.
    pub fencing_token: Option<i64>,
    /// The lock data its holder wrote, if any.
    pub data: Option<Value>,
}

/// What one read of the permits showed.
struct Look {
    /// Free permits (no item, or released).
    free: Vec<usize>,
    /// Held permits whose watched lease ran out: they may be taken over.
    expired: Vec<usize>,
}

impl LockClient {
    /// The semaphore named `name` (a lock id of this client's table whose last part is a
    /// string) with `permits` permits (1 to [`MAX_PERMITS`]). Every client of one semaphore must
    /// pass the same number: the first one to use it records it in the table.
    pub fn semaphore(&self, name: impl Into<LockId>, permits: u32) -> Result<Semaphore> {
        let (id, permit_ids) = self.config().semaphore_ids(name, permits)?;
        Ok(Semaphore { client: self.clone(), id, permits: permit_ids, checked: Default::default() })
    }
}

/// A number of permits as a binding received it: `shown` as the caller wrote it, `whole` its
/// value when it is a whole number (`None` for 2.5 or NaN). Counts out of range are refused with
/// the same words as [`LockClient::semaphore`] uses.
pub fn permit_count(shown: impl std::fmt::Display, whole: Option<i128>) -> Result<u32> {
    match whole.and_then(|n| u32::try_from(n).ok()).filter(|n| (1..=MAX_PERMITS).contains(n)) {
        Some(n) => Ok(n),
        None => Err(Error::option("permits", format!("must be 1 to {MAX_PERMITS}, not {shown}"))),
    }
}

/// A semaphore's own lock id and its permits', checked against `config`.
pub(super) fn ids(config: &LockConfig, name: LockId, permits: u32) -> Result<(LockId, Vec<LockId>)> {
    if config.fail_closed {
        return Err(Error::config(
            "semaphores need fail-open locks (a dead holder's permit must free itself): use a client without {fail_closed}",
        ));
    }
    if !(1..=MAX_PERMITS).contains(&permits) {
        return Err(Error::option("permits", format!("must be 1 to {MAX_PERMITS}, not {permits}")));
    }
    let id = config.check_id(name)?;
    let permit_ids = (0..permits).map(|k| permit_id(&id, k).and_then(|permit| config.check_id(permit))).collect::<Result<Vec<_>>>()?;
    Ok((id, permit_ids))
}

/// Permit `k`'s lock id: the semaphore's, with `#k` on its last part.
fn permit_id(id: &LockId, k: u32) -> Result<LockId> {
    let suffixed = |value: &KeyValue, what: &str, max: usize| match value {
        KeyValue::S(name) if name.len() + 4 <= max => Ok(KeyValue::S(format!("{name}#{k}"))),
        KeyValue::S(_) => Err(Error::invalid_value(format!("the semaphore's {what} is too long: it takes up to {} bytes", max - 4))),
        _ => Err(Error::invalid_value(format!("a semaphore's name must be a string, since its permits are named after it; its {what} is not"))),
    };
    Ok(match &id.sort {
        Some(sort) => LockId { partition: id.partition.clone(), sort: Some(suffixed(sort, "sort key part", MAX_SORT_KEY_BYTES)?) },
        None => LockId::new(suffixed(&id.partition, "name", MAX_PARTITION_KEY_BYTES)?),
    })
}

impl Semaphore {
    /// The semaphore's own lock id, which its permits' ids extend.
    pub fn id(&self) -> &LockId {
        &self.id
    }

    /// How many holders it admits at once.
    pub fn permits(&self) -> u32 {
        self.permits.len() as u32
    }

    /// Takes a free permit with one read and one write, or returns `None` when all are held.
    pub async fn try_acquire(&self) -> Result<Option<Lock>> {
        let started = Instant::now();
        self.check_permits().await?;
        let look = self.look(&mut HashMap::new()).await?;
        let permit = self.take_one(&look.free, &HashMap::new()).await;
        if let Ok(Some(_)) = &permit {
            self.client.counters().acquired(started.elapsed());
        }
        self.client.counters().outcome(&permit);
        permit
    }

    /// Takes a permit, waiting up to `timeout` (`None`: as long as it takes). Each poll is one
    /// read of every permit; waits back off like a lock's ([`crate::lock::LockConfig::poll_pause`]),
    /// and a permit released in this process wakes its waiters at once. A held permit is taken
    /// over only after its guid stayed the same for its whole lease on this client's clock.
    pub async fn acquire(&self, timeout: Option<Duration>) -> Result<Lock> {
        let started = Instant::now();
        let result = self.wait_and_acquire(timeout).await;
        let counters = self.client.counters();
        match &result {
            Ok(_) => counters.acquired(started.elapsed()),
            Err(Error::LockNotAcquired { .. }) => counters.acquire_timed_out(),
            Err(_) => counters.outcome(&result),
        }
        result
    }

    async fn wait_and_acquire(&self, timeout: Option<Duration>) -> Result<Lock> {
        self.check_permits().await?;
        let started = Instant::now();
        let deadline = timeout.map(|t| started + t);
        let poll = poll::join(self.client.transport().as_ref(), &self.client.config().table, &self.id);
        let mut watches = HashMap::new();
        loop {
            let released_here = poll.released();
            tokio::pin!(released_here);
            released_here.as_mut().enable();

            let look = self.look(&mut watches).await?;
            let mut candidates = look.free;
            let expired_from = candidates.len();
            candidates.extend(look.expired);
            let takeovers: HashMap<usize, Observed> =
                candidates[expired_from..].iter().filter_map(|k| watches.get(k).map(|w: &Watch| (*k, w.seen.clone()))).collect();
            if let Some(permit) = self.take_one(&candidates, &takeovers).await? {
                return Ok(permit);
            }
            for k in takeovers.keys() {
                watches.remove(k); // a failed takeover starts a fresh watch
            }

            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                let held = format!("all {} permits of semaphore {} are held", self.permits(), self.id);
                let waited = timeout.map(|t| format!(" after waiting {}", duration_text(t))).unwrap_or_default();
                return Err(Error::LockNotAcquired { id: self.id.clone(), reason: format!("{held}{waited}; retry later or raise the timeout") });
            }
            let shorten_by = crate::random::with_rng(|rng| rand::Rng::random_range(rng, 0.0..=0.25));
            let mut wake_at = now + self.client.config().poll_pause(now - started, shorten_by);
            if let Some(at) = watches.values().filter_map(|w| w.takeover_at).min() {
                wake_at = wake_at.min(at);
            }
            if let Some(d) = deadline {
                wake_at = wake_at.min(d);
            }
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(wake_at.max(now + Duration::from_millis(1))) => {}
                _ = released_here => {}
            }
        }
    }

    /// Who holds permits now (one read of every permit). A holder whose process died is listed
    /// until its permit is taken over or released.
    pub async fn holders(&self) -> Result<Vec<PermitHolder>> {
        let items = self.read_permits().await?;
        let mut holders = Vec::new();
        for (k, item) in items.iter().enumerate() {
            let Some(item) = item else { continue };
            let seen = Observed::from_item(item);
            if seen.is_released() {
                continue;
            }
            holders.push(PermitHolder {
                permit: k as u32,
                owner: seen.owner.unwrap_or_default(),
                fencing_token: seen.fencing_token,
                data: item.get(LOCK_DATA).map(Value::from_attribute),
            });
        }
        Ok(holders)
    }

    /// Tries `candidates` in random order (so that waiters spread over the free permits) until
    /// one is taken; those in `takeovers` are taken over from the holder watched.
    async fn take_one(&self, candidates: &[usize], takeovers: &HashMap<usize, Observed>) -> Result<Option<Lock>> {
        let mut order = candidates.to_vec();
        crate::random::with_rng(|rng| order.shuffle(rng));
        let with = AcquireWith { group: Some(self.id.clone()), ..AcquireWith::default() };
        for k in order {
            if let Attempt::Acquired(lock, _) = self.client.attempt(&self.permits[k], takeovers.get(&k), &with).await? {
                return Ok(Some(lock));
            }
        }
        Ok(None)
    }

    /// Reads every permit, and updates `watches` with the held ones: a new holder (or a renewed
    /// lease) is timed from this read's answer.
    async fn look(&self, watches: &mut HashMap<usize, Watch>) -> Result<Look> {
        let items = self.read_permits().await?;
        let answered = Instant::now();
        let mut look = Look { free: Vec::new(), expired: Vec::new() };
        for (k, item) in items.iter().enumerate() {
            let seen = item.as_ref().map(Observed::from_item);
            match seen {
                None => {
                    watches.remove(&k);
                    look.free.push(k);
                }
                Some(seen) if seen.is_released() => {
                    watches.remove(&k);
                    look.free.push(k);
                }
                Some(seen) => {
                    let watch = watches.entry(k).or_insert_with(|| Watch { seen: seen.clone(), takeover_at: None });
                    if !watch.seen.same_lease(&seen) || watch.takeover_at.is_none() {
                        let takeover_at = self.client.lease_remaining(&seen).map(|left| answered + left);
                        *watch = Watch { seen, takeover_at };
                    }
                    if watch.takeover_at.is_some_and(|at| answered >= at) {
                        look.expired.push(k);
                    }
                }
            }
        }
        Ok(look)
    }

    /// Every permit's item (in permit order), with one BatchGetItem unless DynamoDB leaves some
    /// keys unprocessed.
    async fn read_permits(&self) -> Result<Vec<Option<Item>>> {
        let table = self.client.table();
        let mut found: Vec<Option<Item>> = vec![None; self.permits.len()];
        let mut wanted: Vec<usize> = (0..self.permits.len()).collect();
        for retry in 0..=UNPROCESSED_RETRIES {
            let ids: Vec<LockId> = wanted.iter().map(|k| self.permits[*k].clone()).collect();
            let page = self.client.transport().batch_get(table.read_many(&ids)).await.map_err(|e| self.client.explain(e))?;
            for item in page.items {
                if let Some(k) = wanted.iter().copied().find(|k| table.is_item_of(&item, &self.permits[*k])) {
                    found[k] = Some(item);
                }
            }
            wanted.retain(|k| page.unprocessed.iter().any(|key| table.is_item_of(key, &self.permits[*k])));
            if wanted.is_empty() {
                return Ok(found);
            }
            tokio::time::sleep(Duration::from_millis(25 << retry)).await;
        }
        Err(Error::Throttled {
            operation: "BatchGetItem",
            attempts: UNPROCESSED_RETRIES + 1,
            message: format!("DynamoDB left {} of semaphore {}'s permits unread", wanted.len(), self.id),
        })
    }

    /// Makes sure the table records this semaphore with our number of permits (once per
    /// semaphore object: one read, and one write the first time anyone uses it).
    async fn check_permits(&self) -> Result<()> {
        self.checked.get_or_try_init(|| self.record_or_read_permits()).await.map(|_| ())
    }

    /// Writes the semaphore's own item if there is none, or reads it; then compares its
    /// permits with ours. A create whose outcome stays unknown is looked up again: it may not
    /// have landed, and then it is sent again (its condition makes a second landing harmless).
    async fn record_or_read_permits(&self) -> Result<()> {
        const TRIES: usize = 3;
        let transport = self.client.transport();
        let mut last_unknown = None;
        for _ in 0..TRIES {
            let recorded = match self.client.read(&self.id).await? {
                Some(item) => item,
                None => match transport.put_item(self.client.table().create_semaphore(&self.id, self.permits())).await {
                    Ok(_) => return Ok(()),
                    // Another client wrote it first (or an earlier send of ours did).
                    Err(Error::ConditionalCheckFailed { item: Some(item) }) => *item,
                    Err(Error::ConditionalCheckFailed { item: None }) => continue,
                    Err(e) if e.is_ambiguous() => {
                        last_unknown = Some(e);
                        continue;
                    }
                    Err(e) => return Err(self.client.explain(e)),
                },
            };
            return self.compare_permits(&recorded);
        }
        Err(last_unknown.unwrap_or_else(|| {
            Error::invalid_value(format!("semaphore {}'s item keeps disappearing while it is being set up; try again", self.id))
        }))
    }

    fn compare_permits(&self, recorded: &Item) -> Result<()> {
        match recorded.get(SEMAPHORE_PERMITS).and_then(AttributeValue::as_i64) {
            Some(n) if n == i64::from(self.permits()) => Ok(()),
            Some(n) => Err(Error::option(
                "permits",
                format!(
                    "is {}, but semaphore {} has {n} permits in the table: every client must pass the same number (to change it, delete the semaphore's items while nobody holds a permit)",
                    self.permits(),
                    self.id
                ),
            )),
            None => Err(Error::invalid_value(format!("{} is a lock id in use, not a semaphore: name the semaphore differently", self.id))),
        }
    }
}
