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

use std::time::Duration;

use crate::clock::SharedClock;
use crate::error::Error;
use crate::lock::item::{LockId, LockTable};
use crate::stats::Stats;
use crate::transport::Transport;

/// How long an undo keeps trying through transient failures.
pub(crate) const UNDO_PERSISTENCE: Duration = Duration::from_secs(60);
const FIRST_UNDO_PAUSE: Duration = Duration::from_millis(50);
const MAX_UNDO_PAUSE: Duration = Duration::from_secs(5);

/// Where one lock lives (transport, table, id, mode) and how to reach it from any task: what
/// every write of the lock, and taking one back, needs.
#[derive(Clone, Debug)]
pub(crate) struct LockSite {
    pub transport: Arc<dyn Transport>,
    pub table: LockTable,
    pub id: LockId,
    pub fail_open: bool,
    pub clock: SharedClock,
    /// The client's counters (heartbeats, losses, releases).
    pub stats: Arc<Stats>,
}

impl LockSite {
    /// Sends the undo of `guid` at each of `times`, in the background. Each one is repeated
    /// through transient failures (a refused connection, throttling, no answer) for up to
    /// [`UNDO_PERSISTENCE`], since a fail-closed lock left behind stays held for ever; it ends at
    /// the first definite answer. Every time in `times` gets its send even after one succeeded,
    /// because another send of the undone write may still be on its way.
    pub fn take_back(&self, runtime: &Handle, guid: Vec<u8>, times: Vec<Instant>) {
        let site = self.clone();
        runtime.spawn(async move {
            for at in times {
                tokio::time::sleep_until(at.max(Instant::now())).await;
                site.send_until_answered(&guid).await;
            }
        });
    }

    async fn send_until_answered(&self, guid: &[u8]) {
        let give_up_at = Instant::now() + UNDO_PERSISTENCE;
        let mut pause = FIRST_UNDO_PAUSE;
        loop {
            let request = self.table.undo(&self.id, guid, self.fail_open, self.clock.now_unix_ms() as i64);
            match self.transport.execute(request).await {
                Ok(_) => return tracing::debug!(lock = %self.id, "took back a write nobody waits for"),
                // The write never landed, or was taken back already.
                Err(Error::ConditionalCheckFailed { .. }) => return,
                Err(error) if Instant::now() + pause >= give_up_at => {
                    return tracing::warn!(lock = %self.id, %error, "could not take back a lock write nobody waits for; a fail-closed lock may need releasing by hand");
                }
                Err(error) => tracing::debug!(lock = %self.id, %error, "taking back a write failed; retrying"),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_UNDO_PAUSE);
        }
    }
}

/// Guards one acquisition write (all sends of one guid) until its outcome is definite.
pub(crate) struct AcquireGuard {
    site: LockSite,
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
    pub fn arm(site: LockSite, guid: Vec<u8>) -> AcquireGuard {
        AcquireGuard { site, runtime: Handle::current(), guid, in_flight: false, uncertain_until: None, armed: true }
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
            self.uncertain_until = Some(Instant::now() + self.site.transport.late_landing_window());
        }
    }

    /// The acquisition landed but is of no use (its lease ran out before we learnt of it): take
    /// it back now, and again once any send still on its way may have landed.
    pub fn give_up(mut self) {
        let window_end = Instant::now() + self.site.transport.late_landing_window();
        self.uncertain_until = Some(self.uncertain_until.map_or(window_end, |until| until.max(window_end)));
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
        let window_end = if self.in_flight { Some(now + self.site.transport.late_landing_window()) } else { None };
        let Some(last) = window_end.into_iter().chain(self.uncertain_until).max() else { return };
        tracing::debug!(lock = %self.site.id, "an acquisition nobody waits for may still land; undoing it");
        self.site.take_back(&self.runtime, std::mem::take(&mut self.guid), vec![now, last]);
    }
}
