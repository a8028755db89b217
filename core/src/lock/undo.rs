//! Taking back lock writes that nobody waits for any more.
//!
//! A write can land after its sender stopped waiting: the caller dropped the future (a timeout,
//! Ctrl-C, an asyncio cancel, an AbortSignal), the outcome stayed unknown after every resend, or
//! the request sat in the network past its deadline. An acquisition that lands like that holds
//! the lock for nobody: a fail-open lock until its lease runs out, a fail-closed lock for ever.
//! So every acquisition is guarded from before its first send until its outcome is definite, and
//! a guard that is dropped while a send may still land sends the undo ([`LockTable::undo`],
//! conditioned on the acquisition's own fresh guid): at once, for a write that already landed,
//! and again when the transport's late-landing window has passed, for one that lands late.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::clock::SharedClock;
use crate::lock::item::{LockId, LockTable};
use crate::transport::Transport;

/// Everything needed to send the undo of one lock's writes, from any task.
#[derive(Clone, Debug)]
pub(crate) struct Undo {
    pub transport: Arc<dyn Transport>,
    pub table: LockTable,
    pub id: LockId,
    pub fail_open: bool,
    pub clock: SharedClock,
}

impl Undo {
    /// Sends the undo of `guid` at each of `times`, in the background and best effort: a failed
    /// undo is logged, and a later one (or a fail-open lease) covers for it. Every send goes out
    /// even after one succeeds, because another send of the undone write may still be on its way.
    pub fn spawn(&self, runtime: &Handle, guid: Vec<u8>, times: Vec<Instant>) {
        let undo = self.clone();
        runtime.spawn(async move {
            for at in times {
                tokio::time::sleep_until(at).await;
                let request = undo.table.undo(&undo.id, &guid, undo.fail_open, undo.clock.now_unix_ms() as i64);
                match undo.transport.execute(request).await {
                    Ok(_) => tracing::debug!(lock = %undo.id, "undid a write nobody waits for"),
                    // Mostly a failed condition: the write never landed, or was undone already.
                    Err(error) => tracing::debug!(lock = %undo.id, %error, "undo found nothing to undo"),
                }
            }
        });
    }
}

/// Guards one acquisition write (all sends of one guid) until its outcome is definite.
pub(crate) struct AcquireGuard {
    undo: Undo,
    runtime: Handle,
    guid: Vec<u8>,
    /// A send is on its way and its answer has not come.
    in_flight: bool,
    /// Until when a send whose outcome stayed unknown may still land.
    uncertain_until: Option<Instant>,
    armed: bool,
}

impl AcquireGuard {
    /// Arms the guard before the first send of `guid`.
    pub fn arm(undo: Undo, guid: Vec<u8>) -> AcquireGuard {
        AcquireGuard { undo, runtime: Handle::current(), guid, in_flight: false, uncertain_until: None, armed: true }
    }

    pub fn guid(&self) -> &[u8] {
        &self.guid
    }

    pub fn sending(&mut self) {
        self.in_flight = true;
    }

    /// The answer came; `unknown`: it did not say whether the send landed.
    pub fn answered(&mut self, unknown: bool) {
        self.in_flight = false;
        if unknown {
            self.uncertain_until = Some(Instant::now() + self.undo.transport.late_landing_window());
        }
    }

    /// The acquisition is ours: from here the held lock answers for late landings of this guid.
    /// Returns until when one may still come.
    pub fn disarm_held(mut self) -> Option<Instant> {
        self.armed = false;
        self.uncertain_until
    }
}

impl Drop for AcquireGuard {
    /// Not acquired (condition failed, an error, given up, or the future dropped): if a send may
    /// still land, undo it now and once the late-landing window has passed.
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let now = Instant::now();
        let window_end = if self.in_flight { Some(now + self.undo.transport.late_landing_window()) } else { None };
        let Some(last) = window_end.into_iter().chain(self.uncertain_until).max() else { return };
        tracing::debug!(lock = %self.undo.id, "an acquisition nobody waits for may still land; undoing it");
        self.undo.spawn(&self.runtime, std::mem::take(&mut self.guid), vec![now, last]);
    }
}
