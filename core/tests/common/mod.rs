//! Shared test helpers: backends, tables, and a transport that injects faults.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use dynalease::protocol::request::{Request, Response};
use dynalease::transport::Transport;
use dynalease::{Error, Result};

/// What to do to the next request that matches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Apply the request, then report an unknown outcome (the response was lost).
    LoseResponse,
    /// Report an unknown outcome without applying the request (lost on the way there).
    DropRequest,
    /// Hold the request this long before applying it (a slow network).
    Delay(std::time::Duration),
    /// Apply the request this long from now, whether or not its sender still waits (it sits in
    /// the network); the sender gets an unknown outcome after [`CALL_TIMEOUT`].
    LandLate(std::time::Duration),
    /// Fail without applying, and say so (a refused connection).
    Fail,
}

/// The per-call deadline [`Faulty`] models, and so its late-landing window.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Wraps a transport, counts requests by operation, and injects queued faults into requests of
/// a chosen operation.
#[derive(Debug, Clone)]
pub struct Faulty {
    inner: Arc<dyn Transport>,
    faults: Arc<Mutex<VecDeque<(&'static str, Fault)>>>,
    /// Each request's operation and when it was sent (tokio's clock).
    log: Arc<Mutex<Vec<(&'static str, tokio::time::Instant)>>>,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Transport>) -> Faulty {
        Faulty { inner, faults: Default::default(), log: Default::default() }
    }

    /// The next `operation` request (e.g. "UpdateItem") suffers `fault`.
    pub fn inject(&self, operation: &'static str, fault: Fault) {
        self.faults.lock().unwrap().push_back((operation, fault));
    }

    /// Forgets the faults not injected yet.
    pub fn clear_faults(&self) {
        self.faults.lock().unwrap().clear();
    }

    pub fn pending_faults(&self) -> usize {
        self.faults.lock().unwrap().len()
    }

    pub fn operations(&self) -> Vec<&'static str> {
        self.log.lock().unwrap().iter().map(|(operation, _)| *operation).collect()
    }

    /// When each `operation` request was sent.
    pub fn sent(&self, operation: &str) -> Vec<tokio::time::Instant> {
        self.log.lock().unwrap().iter().filter(|(op, _)| *op == operation).map(|(_, at)| *at).collect()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

#[async_trait]
impl Transport for Faulty {
    async fn execute(&self, request: Request) -> Result<Response> {
        let operation = request.operation();
        self.log.lock().unwrap().push((operation, tokio::time::Instant::now()));
        let fault = {
            let mut faults = self.faults.lock().unwrap();
            match faults.iter().position(|(op, _)| *op == operation) {
                Some(i) => faults.remove(i).map(|(_, f)| f),
                None => None,
            }
        };
        let ambiguous = || Error::Ambiguous { operation, message: "injected fault".into() };
        match fault {
            None => self.inner.execute(request).await,
            Some(Fault::DropRequest) => Err(ambiguous()),
            Some(Fault::Delay(pause)) => {
                tokio::time::sleep(pause).await;
                self.inner.execute(request).await
            }
            Some(Fault::LoseResponse) => {
                let _ = self.inner.execute(request).await;
                Err(ambiguous())
            }
            Some(Fault::LandLate(after)) => {
                let inner = self.inner.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = inner.execute(request).await;
                });
                tokio::time::sleep(CALL_TIMEOUT).await;
                Err(ambiguous())
            }
            Some(Fault::Fail) => Err(Error::Network { operation, message: "injected refusal".into() }),
        }
    }

    fn late_landing_window(&self) -> std::time::Duration {
        CALL_TIMEOUT
    }
}

/// A unique table name, so tests can share one DynamoDB Local.
pub fn table_name(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.finish()
}

/// The DynamoDB Local endpoint the test run started (scripts/test starts it).
pub fn endpoint() -> String {
    std::env::var("DYNALEASE_TEST_ENDPOINT").expect(
        "DYNALEASE_TEST_ENDPOINT is not set: run the tests with scripts/test, or start DynamoDB Local with `scripts/dynamodb-local start` and export its endpoint",
    )
}
