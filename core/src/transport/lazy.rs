//! The transport a binding's client uses: chosen from the connection options when the client is
//! made, built on first use, and shared by every request of the process.
//!
//! Built lazily because building the SDK transport is async (it reads the AWS configuration
//! chain) while the bindings' constructors are not. Cached per process because a forked child
//! must not use connections that belong to its parent's runtime: it builds its own. Clients
//! with the same target share one transport: one connection pool, and one poller per lock id
//! for their waiters (see [`Transport::scope`]).

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use crate::error::Result;
use crate::transport::{native, Target, TargetOptions, Transport};

/// A transport picked from connection options when made, built on its first use, and shared
/// by the clients of the process with the same target (see the module's documentation).
#[derive(Debug)]
pub struct LazyTransport {
    target: Target,
    call_timeout: Duration,
    max_retries: u32,
    /// The transport and the process that built it.
    built: Mutex<Option<(u32, Arc<dyn Transport>)>>,
}

impl LazyTransport {
    /// Validates the options now (see [`Target::new`]); nothing is connected until [`get`](Self::get).
    pub fn new(options: TargetOptions) -> Result<LazyTransport> {
        let call_timeout = options.call_timeout.unwrap_or(native::DEFAULT_CALL_TIMEOUT);
        let max_retries = options.max_retries.unwrap_or(native::DEFAULT_MAX_RETRIES);
        Ok(LazyTransport { target: Target::new(options)?, call_timeout, max_retries, built: Mutex::new(None) })
    }

    /// Where requests go, as the options said.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The deadline of one DynamoDB call (the default when none was given).
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// How often a failed call is repeated when that is safe (the default when none was given).
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The transport of this process, built on first use (or shared with another client of the
    /// same target that built one).
    pub async fn get(&self) -> Result<Arc<dyn Transport>> {
        let pid = std::process::id();
        if let Some((owner, transport)) = &*self.built.lock().unwrap_or_else(PoisonError::into_inner) {
            if *owner == pid {
                return Ok(transport.clone());
            }
        }
        let transport = match shared(&self.target, pid) {
            Some(transport) => transport,
            None => self.target.connect().await?,
        };
        // Two first calls racing both build one; the first stored wins, so clients stay shared.
        let transport = share(&self.target, pid, transport);
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        match &*built {
            Some((owner, existing)) if *owner == pid => Ok(existing.clone()),
            _ => {
                *built = Some((pid, transport.clone()));
                Ok(transport)
            }
        }
    }
}

/// The transports built in this process, by target: weak, so one goes when its clients do.
type Built = Mutex<Vec<(Target, u32, Weak<dyn Transport>)>>;

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(Default::default)
}

fn shared(target: &Target, pid: u32) -> Option<Arc<dyn Transport>> {
    alive(&built().lock().unwrap_or_else(PoisonError::into_inner), target, pid)
}

/// The transport this process built for `target`, if a client still uses it.
fn alive(built: &[(Target, u32, Weak<dyn Transport>)], target: &Target, pid: u32) -> Option<Arc<dyn Transport>> {
    built.iter().filter(|(t, owner, _)| t == target && *owner == pid).find_map(|(_, _, weak)| weak.upgrade())
}

/// The transport to use for `target`: one built earlier and still alive, else `transport`.
fn share(target: &Target, pid: u32, transport: Arc<dyn Transport>) -> Arc<dyn Transport> {
    let mut built = built().lock().unwrap_or_else(PoisonError::into_inner);
    built.retain(|(_, owner, weak)| *owner == pid && weak.strong_count() > 0);
    if let Some(existing) = alive(&built, target, pid) {
        return existing;
    }
    built.push((target.clone(), pid, Arc::downgrade(&transport)));
    transport
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_transport_per_process_with_the_defaults_filled_in() {
        let options = TargetOptions { endpoint_url: Some("memory://lazy-test".into()), ..TargetOptions::default() };
        let lazy = LazyTransport::new(options).unwrap();
        assert_eq!((lazy.call_timeout(), lazy.max_retries()), (native::DEFAULT_CALL_TIMEOUT, native::DEFAULT_MAX_RETRIES));
        let (a, b) = (lazy.get().await.unwrap(), lazy.get().await.unwrap());
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[tokio::test]
    async fn clients_with_the_same_target_share_one_transport() {
        let options = |name: &str| TargetOptions { endpoint_url: Some(format!("memory://{name}")), ..TargetOptions::default() };
        let (one, two, other) = (
            LazyTransport::new(options("lazy-shared")).unwrap(),
            LazyTransport::new(options("lazy-shared")).unwrap(),
            LazyTransport::new(options("lazy-other")).unwrap(),
        );
        let first = one.get().await.unwrap();
        assert!(Arc::ptr_eq(&first, &two.get().await.unwrap()));
        assert!(!Arc::ptr_eq(&first, &other.get().await.unwrap()));
        assert_eq!(first.scope(), two.get().await.unwrap().scope());
    }

    #[test]
    fn retry_counts_as_the_bindings_receive_them() {
        assert_eq!(TargetOptions::retry_count("3", Some(3)).unwrap(), 3);
        let fraction = TargetOptions::retry_count(2.5, None).unwrap_err().to_string();
        assert!(fraction.starts_with("max_retries must be a whole number >= 0 (got 2.5)"), "{fraction}");
        assert!(TargetOptions::retry_count(-1, Some(-1)).unwrap_err().to_string().contains("(got -1)"));
        let huge = TargetOptions::retry_count("10**30", Some(i128::MAX)).unwrap_err().to_string();
        assert!(huge.contains("is 10**30; at most 100 is allowed"), "{huge}");
    }

    #[test]
    fn bad_options_fail_before_anything_is_built() {
        let options = TargetOptions { max_retries: Some(native::MAX_RETRIES_LIMIT + 1), ..TargetOptions::default() };
        assert!(LazyTransport::new(options).is_err());
    }
}
