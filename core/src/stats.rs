//! What a client did: counters and an acquisition-wait histogram, kept with relaxed atomics so
//! counting costs a few nanoseconds on any path, and read as a [`StatsSnapshot`].
//!
//! Each [`LockClient`](crate::lock::LockClient) and [`KvStore`](crate::kv::KvStore) counts
//! into its own [`Stats`]; the requests it sends count there too (attempts, throttles, and the
//! read and write units DynamoDB reports with `ReturnConsumedCapacity`), whichever transport
//! they share. The bindings expose snapshots (`client.stats()`) and bridge them to OpenTelemetry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// Upper bounds (ms) of the acquisition-wait histogram's buckets; a last bucket takes the rest.
pub const WAIT_BUCKETS_MS: [u64; 14] = [1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000];

/// Why a held lock was lost, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossReason {
    /// No heartbeat succeeded within the lease (cut off, paused, throttled).
    LeaseExpired,
    /// Another client's write replaced ours (taken over, released or deleted by hand).
    TakenOver,
    /// It reached the deadline it was given (`Lock::end_at`).
    Deadline,
}

/// The live counters of one client. Cheap to share (`Arc`); every method takes `&self`.
#[derive(Debug, Default)]
pub struct Stats {
    acquisitions: AtomicU64,
    acquire_timeouts: AtomicU64,
    contended_attempts: AtomicU64,
    takeovers: AtomicU64,
    wait_buckets: [AtomicU64; WAIT_BUCKETS_MS.len() + 1],
    wait_sum_us: AtomicU64,
    heartbeats: AtomicU64,
    heartbeat_failures: AtomicU64,
    lost_lease_expired: AtomicU64,
    lost_taken_over: AtomicU64,
    lost_deadline: AtomicU64,
    releases: AtomicU64,
    unknown_outcomes: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    throttles: AtomicU64,
    kv_reads: AtomicU64,
    kv_writes: AtomicU64,
    kv_deletes: AtomicU64,
    kv_lists: AtomicU64,
    cas_conflicts: AtomicU64,
    /// Capacity units, in thousandths (DynamoDB reports halves for eventually consistent reads).
    read_milli_units: AtomicU64,
    write_milli_units: AtomicU64,
}

/// A KV store operation, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// A `get`, `get_with` or `exists`.
    Read,
    /// A `put` or `atomic_put`.
    Write,
    /// A `delete` or `atomic_delete`.
    Delete,
    /// A `list`, however many pages it reads.
    List,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Stats {
    /// Zeroed counters, ready to share between a client and its locks.
    pub fn new() -> Arc<Stats> {
        Arc::new(Stats::default())
    }

    /// An acquisition that succeeded after waiting `waited` (from the call to its return).
    pub fn acquired(&self, waited: Duration) {
        add(&self.acquisitions, 1);
        let ms = waited.as_millis() as u64;
        let bucket = WAIT_BUCKETS_MS.iter().position(|bound| ms <= *bound).unwrap_or(WAIT_BUCKETS_MS.len());
        add(&self.wait_buckets[bucket], 1);
        add(&self.wait_sum_us, waited.as_micros() as u64);
    }

    /// An acquisition that gave up waiting at its timeout ([`Error::LockNotAcquired`]).
    pub fn acquire_timed_out(&self) {
        add(&self.acquire_timeouts, 1);
    }

    /// An acquisition write refused because someone held the lock.
    pub fn contended(&self) {
        add(&self.contended_attempts, 1);
    }

    /// An acquisition that took over a lease that ran out.
    pub fn took_over(&self) {
        add(&self.takeovers, 1);
    }

    /// A lease renewal (background heartbeat or `Lock::renew`) that succeeded (`ok`) or failed.
    pub fn heartbeat(&self, ok: bool) {
        add(if ok { &self.heartbeats } else { &self.heartbeat_failures }, 1);
    }

    /// A held lock found lost, for `reason`.
    pub fn lost(&self, reason: LossReason) {
        add(
            match reason {
                LossReason::LeaseExpired => &self.lost_lease_expired,
                LossReason::TakenOver => &self.lost_taken_over,
                LossReason::Deadline => &self.lost_deadline,
            },
            1,
        );
    }

    /// A release that freed the lock.
    pub fn released(&self) {
        add(&self.releases, 1);
    }

    /// A KV store call, counted when it starts.
    pub fn kv(&self, op: KvOp) {
        add(
            match op {
                KvOp::Read => &self.kv_reads,
                KvOp::Write => &self.kv_writes,
                KvOp::Delete => &self.kv_deletes,
                KvOp::List => &self.kv_lists,
            },
            1,
        );
    }

    /// Counts what a call's result says beyond success: an unknown outcome, or a
    /// compare-and-swap that found the key changed or present.
    pub fn outcome<T>(&self, result: &Result<T, Error>) {
        match result.as_ref().map_err(Error::kind) {
            Err(ErrorKind::OutcomeUnknown) => add(&self.unknown_outcomes, 1),
            Err(ErrorKind::KeyModified | ErrorKind::KeyExists) => add(&self.cas_conflicts, 1),
            _ => {}
        }
    }

    /// One request as the transport sent it: `attempts` sends, `throttled` of them throttled,
    /// and the capacity DynamoDB reported (or charges for a failed conditional write).
    pub fn request(&self, attempts: u32, throttled: u32, read_units: f64, write_units: f64) {
        add(&self.requests, 1);
        add(&self.retries, u64::from(attempts.saturating_sub(1)));
        add(&self.throttles, u64::from(throttled));
        add(&self.read_milli_units, (read_units * 1000.0).round() as u64);
        add(&self.write_milli_units, (write_units * 1000.0).round() as u64);
    }

    /// The counters now. Each is read on its own, so a snapshot taken while others count may
    /// be a few counts apart between related counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            acquisitions: get(&self.acquisitions),
            acquire_timeouts: get(&self.acquire_timeouts),
            contended_attempts: get(&self.contended_attempts),
            takeovers: get(&self.takeovers),
            acquire_wait: WaitHistogram {
                bounds_ms: WAIT_BUCKETS_MS.to_vec(),
                counts: self.wait_buckets.iter().map(get).collect(),
                sum: Duration::from_micros(get(&self.wait_sum_us)),
            },
            heartbeats: get(&self.heartbeats),
            heartbeat_failures: get(&self.heartbeat_failures),
            lost_lease_expired: get(&self.lost_lease_expired),
            lost_taken_over: get(&self.lost_taken_over),
            lost_deadline: get(&self.lost_deadline),
            releases: get(&self.releases),
            unknown_outcomes: get(&self.unknown_outcomes),
            requests: get(&self.requests),
            retries: get(&self.retries),
            throttles: get(&self.throttles),
            kv_reads: get(&self.kv_reads),
            kv_writes: get(&self.kv_writes),
            kv_deletes: get(&self.kv_deletes),
            kv_lists: get(&self.kv_lists),
            cas_conflicts: get(&self.cas_conflicts),
            read_units: get(&self.read_milli_units) as f64 / 1000.0,
            write_units: get(&self.write_milli_units) as f64 / 1000.0,
        }
    }
}

/// Acquisition waits: `counts[i]` waits took at most `bounds_ms[i]` (and more than the bound
/// before); the last count is the waits longer than every bound.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitHistogram {
    /// Each bucket's upper bound in milliseconds, ascending ([`WAIT_BUCKETS_MS`]).
    pub bounds_ms: Vec<u64>,
    /// Waits per bucket: one more entry than `bounds_ms`, the last for waits past every bound.
    pub counts: Vec<u64>,
    /// All the waits added up, for the mean.
    pub sum: Duration,
}

/// The counters of one client at one moment; every count only grows.
#[derive(Clone, Debug, PartialEq)]
pub struct StatsSnapshot {
    /// Successful acquisitions: of locks, of semaphore permits, of leadership in an election.
    pub acquisitions: u64,
    /// Acquisitions that gave up at their timeout.
    pub acquire_timeouts: u64,
    /// Acquisition writes refused because the lock was held.
    pub contended_attempts: u64,
    /// Acquisitions that took over an expired lease.
    pub takeovers: u64,
    /// How long successful acquisitions waited, from the call to its return.
    pub acquire_wait: WaitHistogram,
    /// Lease renewals that succeeded, in the background or by hand.
    pub heartbeats: u64,
    /// Lease renewals that failed; the next may still succeed within the lease.
    pub heartbeat_failures: u64,
    /// Locks lost because no heartbeat succeeded within the lease ([`LossReason::LeaseExpired`]).
    pub lost_lease_expired: u64,
    /// Locks lost to another client's write ([`LossReason::TakenOver`]).
    pub lost_taken_over: u64,
    /// Locks let go at the deadline they were given ([`LossReason::Deadline`]).
    pub lost_deadline: u64,
    /// Releases that freed a held lock.
    pub releases: u64,
    /// Calls that returned an unknown outcome.
    pub unknown_outcomes: u64,
    /// DynamoDB requests (each maybe sent several times: see `retries`).
    pub requests: u64,
    /// Sends beyond the first of each request: the transport's retries.
    pub retries: u64,
    /// Sends DynamoDB throttled.
    pub throttles: u64,
    /// KV reads ([`KvOp::Read`]).
    pub kv_reads: u64,
    /// KV writes ([`KvOp::Write`]).
    pub kv_writes: u64,
    /// KV deletes ([`KvOp::Delete`]).
    pub kv_deletes: u64,
    /// KV listings ([`KvOp::List`]).
    pub kv_lists: u64,
    /// KV compare-and-swaps that found the key changed (or present, for a create).
    pub cas_conflicts: u64,
    /// Read capacity units consumed, as DynamoDB reported them.
    pub read_units: f64,
    /// Write capacity units consumed, as reported, plus one per failed conditional write (which
    /// DynamoDB charges without reporting).
    pub write_units: f64,
}

/// The integer counters of [`StatsSnapshot`], named once: `counters()` and `counter_mut()` are
/// generated from this list, so a binding that exports or reads them by name never lists them.
macro_rules! named_counters {
    ($($field:ident),* $(,)?) => {
        impl StatsSnapshot {
            /// Every counter by a stable snake_case name (the field's), for bridges that export
            /// them all.
            pub fn counters(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), self.$field)),*]
            }

            /// The counter named `name` (as [`counters`](StatsSnapshot::counters) names it), to
            /// set; `None` for any other name. For bindings that rebuild a snapshot from their
            /// language's form of it.
            pub fn counter_mut(&mut self, name: &str) -> Option<&mut u64> {
                match name {
                    $(stringify!($field) => Some(&mut self.$field),)*
                    _ => None,
                }
            }
        }
    };
}

named_counters!(
    acquisitions,
    acquire_timeouts,
    contended_attempts,
    takeovers,
    heartbeats,
    heartbeat_failures,
    lost_lease_expired,
    lost_taken_over,
    lost_deadline,
    releases,
    unknown_outcomes,
    requests,
    retries,
    throttles,
    kv_reads,
    kv_writes,
    kv_deletes,
    kv_lists,
    cas_conflicts,
);

impl StatsSnapshot {
    /// What happened between `earlier` (a snapshot of the same client) and this one: every
    /// count's difference. For publishing per period, or per Lambda invocation.
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        let d = |now: u64, then: u64| now.saturating_sub(then);
        StatsSnapshot {
            acquisitions: d(self.acquisitions, earlier.acquisitions),
            acquire_timeouts: d(self.acquire_timeouts, earlier.acquire_timeouts),
            contended_attempts: d(self.contended_attempts, earlier.contended_attempts),
            takeovers: d(self.takeovers, earlier.takeovers),
            acquire_wait: WaitHistogram {
                bounds_ms: self.acquire_wait.bounds_ms.clone(),
                counts: self.acquire_wait.counts.iter().zip(&earlier.acquire_wait.counts).map(|(a, b)| d(*a, *b)).collect(),
                sum: self.acquire_wait.sum.saturating_sub(earlier.acquire_wait.sum),
            },
            heartbeats: d(self.heartbeats, earlier.heartbeats),
            heartbeat_failures: d(self.heartbeat_failures, earlier.heartbeat_failures),
            lost_lease_expired: d(self.lost_lease_expired, earlier.lost_lease_expired),
            lost_taken_over: d(self.lost_taken_over, earlier.lost_taken_over),
            lost_deadline: d(self.lost_deadline, earlier.lost_deadline),
            releases: d(self.releases, earlier.releases),
            unknown_outcomes: d(self.unknown_outcomes, earlier.unknown_outcomes),
            requests: d(self.requests, earlier.requests),
            retries: d(self.retries, earlier.retries),
            throttles: d(self.throttles, earlier.throttles),
            kv_reads: d(self.kv_reads, earlier.kv_reads),
            kv_writes: d(self.kv_writes, earlier.kv_writes),
            kv_deletes: d(self.kv_deletes, earlier.kv_deletes),
            kv_lists: d(self.kv_lists, earlier.kv_lists),
            cas_conflicts: d(self.cas_conflicts, earlier.cas_conflicts),
            read_units: (self.read_units - earlier.read_units).max(0.0),
            write_units: (self.write_units - earlier.write_units).max(0.0),
        }
    }

    /// The counts as one CloudWatch embedded-metric-format document: print it as one line to a
    /// Lambda function's log and CloudWatch records each count as a metric of `namespace`, with
    /// `dimensions` (name, value) on every one. Counts are published as they are: pass
    /// [`since`](StatsSnapshot::since) of the last published snapshot to publish per invocation.
    ///
    /// Refused with [`Error::Config`] (nothing is built) where CloudWatch would reject or
    /// misread the document: an empty namespace, more than 30 dimensions, an empty dimension
    /// name or value, or a dimension named like a metric or like EMF's own `_aws`.
    pub fn to_emf(&self, namespace: &str, dimensions: &[(&str, &str)], timestamp_ms: u64) -> Result<serde_json::Value, Error> {
        use serde_json::{json, Map, Value};
        const MAX_DIMENSIONS: usize = 30;
        // The metrics beside the counters; a dimension may not take any of their names.
        const READ_UNITS: &str = "read_units";
        const WRITE_UNITS: &str = "write_units";
        const WAIT_MEAN: &str = "acquire_wait_mean_ms";
        if namespace.trim().is_empty() {
            return Err(Error::config("the EMF namespace is empty: name the CloudWatch namespace the metrics go to"));
        }
        if dimensions.len() > MAX_DIMENSIONS {
            return Err(Error::config(format!("{} EMF dimensions; CloudWatch takes at most {MAX_DIMENSIONS}", dimensions.len())));
        }
        let metric_names: Vec<&str> =
            self.counters().iter().map(|(name, _)| *name).chain([READ_UNITS, WRITE_UNITS, WAIT_MEAN, "_aws"]).collect();
        for (name, value) in dimensions {
            if name.is_empty() || value.is_empty() {
                return Err(Error::config(format!("EMF dimension {name:?} = {value:?}: names and values must not be empty")));
            }
            if metric_names.contains(name) {
                return Err(Error::config(format!("EMF dimension {name:?} is also a metric's name (or EMF's `_aws`); name it otherwise")));
            }
        }
        let mut document = Map::new();
        let mut metrics = Vec::new();
        let mut put = |name: &str, value: Value, unit: &str| {
            metrics.push(json!({"Name": name, "Unit": unit}));
            document.insert(name.to_owned(), value);
        };
        for (name, value) in self.counters() {
            put(name, json!(value), "Count");
        }
        put(READ_UNITS, json!(self.read_units), "Count");
        put(WRITE_UNITS, json!(self.write_units), "Count");
        let waits: u64 = self.acquire_wait.counts.iter().sum();
        if waits > 0 {
            put(WAIT_MEAN, json!(self.acquire_wait.sum.as_secs_f64() * 1000.0 / waits as f64), "Milliseconds");
        }
        for (name, value) in dimensions {
            document.insert((*name).to_owned(), json!(value));
        }
        let dimension_names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
        document.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [dimension_names], "Metrics": metrics}],
            }),
        );
        Ok(Value::Object(document))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_fall_in_the_first_bucket_that_holds_them() {
        let stats = Stats::default();
        stats.acquired(Duration::from_micros(300));
        stats.acquired(Duration::from_millis(7));
        stats.acquired(Duration::from_secs(120));
        let wait = stats.snapshot().acquire_wait;
        assert_eq!(wait.counts[0], 1);
        assert_eq!(wait.counts[2], 1, "7 ms is in the <= 10 ms bucket");
        assert_eq!(*wait.counts.last().unwrap(), 1, "past every bound");
        assert_eq!(stats.snapshot().acquisitions, 3);
    }

    #[test]
    fn requests_count_retries_throttles_and_capacity() {
        let stats = Stats::default();
        stats.request(3, 2, 0.5, 0.0);
        stats.request(1, 0, 0.0, 1.0);
        let s = stats.snapshot();
        assert_eq!((s.requests, s.retries, s.throttles), (2, 2, 2));
        assert_eq!((s.read_units, s.write_units), (0.5, 1.0));
    }

    #[test]
    fn a_period_is_the_difference_and_emf_names_every_count() {
        let stats = Stats::default();
        let before = stats.snapshot();
        stats.acquired(Duration::from_millis(20));
        stats.request(1, 0, 1.0, 2.0);
        let period = stats.snapshot().since(&before);
        assert_eq!((period.acquisitions, period.requests, period.write_units), (1, 1, 2.0));
        let emf = period.to_emf("Locks", &[("Service", "exports")], 1_700_000_000_000).unwrap();
        assert_eq!(emf["acquisitions"], 1);
        assert_eq!(emf["Service"], "exports");
        let declared = &emf["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "Locks");
        assert_eq!(declared["Dimensions"][0][0], "Service");
        let names: Vec<&str> = declared["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
        for name in names {
            assert!(emf.get(name).is_some(), "{name} is declared and present");
        }
    }

    #[test]
    fn emf_refuses_what_cloudwatch_would_reject() {
        let stats = Stats::default().snapshot();
        let many: Vec<(String, String)> = (0..31).map(|i| (format!("d{i}"), "v".to_owned())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        for (namespace, dimensions, says) in [
            ("", vec![], "namespace is empty"),
            ("Locks", many, "at most 30"),
            ("Locks", vec![("acquisitions", "x")], "also a metric's name"),
            ("Locks", vec![("_aws", "x")], "also a metric's name"),
            ("Locks", vec![("Service", "")], "must not be empty"),
        ] {
            let error = stats.to_emf(namespace, &dimensions, 0).unwrap_err();
            assert!(matches!(error, Error::Config(_)) && error.to_string().contains(says), "{error}");
        }
    }

    #[test]
    fn outcomes_count_unknowns_and_cas_conflicts_only() {
        let stats = Stats::default();
        stats.outcome::<()>(&Err(Error::Ambiguous { operation: "PutItem", message: String::new() }));
        stats.outcome::<()>(&Err(Error::KeyModified { key: "k".into() }));
        stats.outcome::<()>(&Ok(()));
        let s = stats.snapshot();
        assert_eq!((s.unknown_outcomes, s.cas_conflicts), (1, 1));
    }
}
