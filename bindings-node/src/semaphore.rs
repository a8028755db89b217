//! `Semaphore` of the Promise API, over the core's counting semaphores
//! (`dynalease::lock::Semaphore`): a permit is an ordinary `Lock`.

use std::sync::Arc;
use std::time::Duration;

use dynalease::lock::{LockId, PermitHolder as CorePermitHolder, Semaphore as CoreSemaphore};
use napi::bindgen_prelude::PromiseRaw;
use napi::{Env, Result};
use napi_derive::napi;
use tokio::sync::OnceCell;

use crate::codec::{lock_id_to_json, value_to_text};
use crate::errors::CoreResultExt;
use crate::locks::{millis, Acquisition, Lock, SharedClient, Wanted};

/// The most permits a semaphore can have (`dynalease::lock::MAX_PERMITS`).
#[napi]
pub const MAX_PERMITS: u32 = dynalease::lock::MAX_PERMITS;

/// A semaphore's core object, made on first use and kept: it checks the permits the table
/// records once, not on every call.
pub(crate) struct SharedSemaphore {
    client: Arc<SharedClient>,
    id: LockId,
    permits: u32,
    core: OnceCell<CoreSemaphore>,
}

impl SharedSemaphore {
    /// `id` and `permits` as the core accepted them (`LockClient.semaphore` checked them).
    pub(crate) fn new(client: Arc<SharedClient>, id: LockId, permits: u32) -> Arc<SharedSemaphore> {
        Arc::new(SharedSemaphore { client, id, permits, core: OnceCell::new() })
    }

    pub(crate) async fn get(&self) -> Result<CoreSemaphore> {
        let made = self.core.get_or_try_init(|| async {
            self.client.get().await?.semaphore(self.id.clone(), self.permits).js()
        });
        Ok(made.await?.clone())
    }
}

/// Who holds a permit: its number (0 to permits - 1), the holder's owner and fencing token, and
/// the permit's lock data (DynamoDB JSON).
#[napi(object)]
pub struct PermitHolder {
    pub permit: u32,
    pub owner: String,
    pub fencing_token: Option<i64>,
    pub data: Option<String>,
}

impl From<CorePermitHolder> for PermitHolder {
    fn from(holder: CorePermitHolder) -> PermitHolder {
        PermitHolder {
            permit: holder.permit,
            owner: holder.owner,
            fencing_token: holder.fencing_token,
            data: holder.data.as_ref().map(value_to_text),
        }
    }
}

/// A counting semaphore on a `LockClient`'s table (from `LockClient.semaphore`).
#[napi]
pub struct Semaphore {
    shared: Arc<SharedSemaphore>,
}

impl Semaphore {
    pub(crate) fn new(shared: Arc<SharedSemaphore>) -> Semaphore {
        Semaphore { shared }
    }
}

#[napi]
impl Semaphore {
    /// The semaphore's lock id as DynamoDB JSON (`{"partition": .., "sort": ..}`).
    #[napi(getter)]
    pub fn name(&self) -> String {
        lock_id_to_json(&self.shared.id).to_string()
    }

    #[napi(getter)]
    pub fn permits(&self) -> u32 {
        self.shared.permits
    }

    /// Prepares a wait of up to `timeoutMs` for a permit, that can be cancelled.
    #[napi]
    pub fn acquisition(&self, timeout_ms: Option<f64>) -> Result<Acquisition> {
        let timeout: Option<Duration> = timeout_ms.map(|t| millis("timeoutMs", t)).transpose()?;
        let shared = &self.shared;
        Ok(Acquisition::new(shared.client.clone(), Wanted::Permit(shared.clone()), timeout))
    }

    /// Takes a free permit with one read and one write; resolves to null when all are held.
    #[napi(ts_return_type = "Promise<Lock | null>")]
    pub fn try_acquire<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Option<Lock>>> {
        let shared = self.shared.clone();
        env.spawn_future(async move { Ok(shared.get().await?.try_acquire().await.js()?.map(|inner| Lock { inner })) })
    }

    /// The permits' holders now (one read of every permit).
    #[napi(ts_return_type = "Promise<Array<PermitHolder>>")]
    pub fn holders<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<PermitHolder>>> {
        let shared = self.shared.clone();
        env.spawn_future(async move { Ok(shared.get().await?.holders().await.js()?.into_iter().map(PermitHolder::from).collect()) })
    }
}
