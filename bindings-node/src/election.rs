//! `Election` and `LeaderWatch` of the Promise API, over the core's elections
//! (`dynalease::lock::Election`): a campaign is an [`Acquisition`] whose lock is the term, the
//! leader is one read, and a watch follows the leader with reads shared by every watcher of the
//! election in the process.

use std::sync::Arc;
use std::time::Duration;

use dynalease::lock::{Leader as CoreLeader, LeaderWatch as CoreLeaderWatch, LockId};
use napi::bindgen_prelude::PromiseRaw;
use napi::{Env, Result};
use napi_derive::napi;
use tokio::sync::watch;

use crate::codec::{lock_id_to_json, value_from_text, value_to_text};
use crate::errors::{aborted, CoreResultExt};
use crate::locks::{millis, Acquisition, SharedClient, Wanted};

/// Who leads: the leader's owner, its term (the fencing token of its lock) and the data it
/// campaigned with (DynamoDB JSON), as the election's item shows them.
#[napi(object)]
pub struct Leader {
    pub owner: String,
    pub term: i64,
    pub data: Option<String>,
}

fn leader_to_js(leader: Option<CoreLeader>) -> Option<Leader> {
    leader.map(|leader| Leader { owner: leader.owner, term: leader.term, data: leader.data.as_ref().map(value_to_text) })
}

/// An election on one lock id of a `LockClient`'s table (from `LockClient.election`, which
/// checked the client and the name).
#[napi]
pub struct Election {
    client: Arc<SharedClient>,
    id: LockId,
}

impl Election {
    pub(crate) fn new(client: Arc<SharedClient>, id: LockId) -> Election {
        Election { client, id }
    }
}

#[napi]
impl Election {
    /// The election's lock id as DynamoDB JSON (`{"partition": .., "sort": ..}`).
    #[napi(getter)]
    pub fn name(&self) -> String {
        lock_id_to_json(&self.id).to_string()
    }

    /// Prepares a campaign (`data`: DynamoDB JSON, written into the term's lock) that waits up
    /// to `timeoutMs` until this process leads, and can be cancelled.
    #[napi]
    pub fn campaign(&self, data: Option<String>, timeout_ms: Option<f64>) -> Result<Acquisition> {
        let data = data.map(|text| value_from_text(&text)).transpose().js()?;
        let timeout = timeout_ms.map(|t| millis("timeoutMs", t)).transpose()?;
        Ok(Acquisition::new(self.client.clone(), Wanted::Campaign { id: self.id.clone(), data }, timeout))
    }

    /// The current leader (one consistent read), or null when nobody leads.
    #[napi(ts_return_type = "Promise<Leader | null>")]
    pub fn leader<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Option<Leader>>> {
        let (client, id) = (self.client.clone(), self.id.clone());
        env.spawn_future(async move {
            let election = client.get().await?.election(id).js()?;
            Ok(leader_to_js(election.leader().await.js()?))
        })
    }

    /// Follows the leader, reading at most once per `intervalMs` (default: the client's
    /// `maxPollIntervalMs`) however many watch this election in the process.
    #[napi]
    pub fn watch(&self, interval_ms: Option<f64>) -> Result<LeaderWatch> {
        let interval = interval_ms.map(|ms| millis("intervalMs", ms)).transpose()?;
        let (cancel, _) = watch::channel(false);
        Ok(LeaderWatch {
            client: self.client.clone(),
            id: self.id.clone(),
            interval,
            watch: Arc::new(tokio::sync::Mutex::new(None)),
            cancel: Arc::new(cancel),
        })
    }
}

/// One watcher of an election: `next()` resolves to the leader the first time, then to each
/// change; `cancel()` settles a pending `next()` (rejecting it as aborted) and ends the watch.
#[napi]
pub struct LeaderWatch {
    client: Arc<SharedClient>,
    id: LockId,
    interval: Option<Duration>,
    /// The core watch, made by the first `next()` (the transport is built asynchronously), and
    /// dropped by `cancel()`.
    watch: Arc<tokio::sync::Mutex<Option<CoreLeaderWatch>>>,
    cancel: Arc<watch::Sender<bool>>,
}

#[napi]
impl LeaderWatch {
    #[napi(ts_return_type = "Promise<Leader | null>")]
    pub fn next<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Option<Leader>>> {
        let (client, id, interval) = (self.client.clone(), self.id.clone(), self.interval);
        let state = self.watch.clone();
        let mut cancelled = self.cancel.subscribe();
        env.spawn_future(async move {
            let watch = state.clone();
            let next = async move {
                let mut watch = watch.lock().await;
                if watch.is_none() {
                    let election = client.get().await?.election(id).js()?;
                    *watch = Some(election.watch(interval).js()?);
                }
                let watch = watch.as_mut().expect("made above");
                watch.next().await.js()
            };
            // Biased, cancel first: once cancelled, no reading is handed out, and dropping
            // `next` stops its read (and its sleep until the next one is due).
            let leader = tokio::select! {
                biased;
                _ = cancelled.wait_for(|c| *c) => None,
                leader = next => Some(leader),
            };
            match leader {
                Some(leader) => Ok(leader_to_js(leader?)),
                None => {
                    // `next` is dropped by now, and with it its hold on the watch.
                    drop_watch(&state);
                    Err(aborted())
                }
            }
        })
    }

    #[napi]
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
        // A pending `next()` drops the watch itself once it sees the cancel.
        drop_watch(&self.watch);
    }
}

/// Drops a cancelled watch (its share of the election's readings), unless a `next()` still
/// holds it: that one drops it when it sees the cancel.
fn drop_watch(watch: &tokio::sync::Mutex<Option<CoreLeaderWatch>>) {
    if let Ok(mut watch) = watch.try_lock() {
        watch.take();
    }
}
