//! `stats()` of the Promise API's `LockClient` and `KVStore`: the core's snapshot of a client's
//! counters (`dynalease::stats::StatsSnapshot`) as a napi class. The JS layer (lib/stats.js)
//! builds the plain object users see from `counters`, so the counter names live in the core
//! alone; `since` and `toEmf` are the core's.

use dynalease::stats::StatsSnapshot as CoreStatsSnapshot;
use napi_derive::napi;

use crate::errors::CoreResultExt;

/// One integer counter, by the core's stable snake_case name.
#[napi(object)]
pub struct Counter {
    pub name: String,
    pub value: f64,
}

/// Acquisition waits: `counts[i]` waits took at most `boundsMs[i]` (and more than the bound
/// before); the last count is the waits longer than every bound. `sumMs` is their total.
#[napi(object)]
pub struct WaitHistogram {
    pub bounds_ms: Vec<f64>,
    pub counts: Vec<f64>,
    pub sum_ms: f64,
}

/// A CloudWatch dimension: its name and value.
#[napi(object)]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

/// A client's counters at one moment.
#[napi]
pub struct StatsSnapshot {
    inner: CoreStatsSnapshot,
}

impl From<CoreStatsSnapshot> for StatsSnapshot {
    fn from(inner: CoreStatsSnapshot) -> StatsSnapshot {
        StatsSnapshot { inner }
    }
}

/// A count as a JS number (exact up to 2^53, far beyond what a client counts).
fn number(count: u64) -> f64 {
    count as f64
}

#[napi]
impl StatsSnapshot {
    /// Every integer counter (`StatsSnapshot::counters`), in the core's order.
    #[napi(getter)]
    pub fn counters(&self) -> Vec<Counter> {
        self.inner.counters().into_iter().map(|(name, value)| Counter { name: name.to_owned(), value: number(value) }).collect()
    }

    /// Read capacity units consumed, as DynamoDB reported them.
    #[napi(getter)]
    pub fn read_units(&self) -> f64 {
        self.inner.read_units
    }

    /// Write capacity units consumed, as reported, plus one per failed conditional write.
    #[napi(getter)]
    pub fn write_units(&self) -> f64 {
        self.inner.write_units
    }

    #[napi(getter)]
    pub fn acquire_wait(&self) -> WaitHistogram {
        let wait = &self.inner.acquire_wait;
        WaitHistogram {
            bounds_ms: wait.bounds_ms.iter().copied().map(number).collect(),
            counts: wait.counts.iter().copied().map(number).collect(),
            sum_ms: wait.sum.as_secs_f64() * 1000.0,
        }
    }

    /// What happened between `earlier` (a snapshot of the same client) and this one.
    #[napi]
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot { inner: self.inner.since(&earlier.inner) }
    }

    /// The counts as one CloudWatch embedded-metric-format document, on one line.
    #[napi]
    pub fn to_emf(&self, namespace: String, dimensions: Vec<Dimension>, timestamp_ms: f64) -> napi::Result<String> {
        let dimensions: Vec<(&str, &str)> = dimensions.iter().map(|d| (d.name.as_str(), d.value.as_str())).collect();
        // Date.now(): a whole, positive number of milliseconds.
        Ok(self.inner.to_emf(&namespace, &dimensions, timestamp_ms as u64).js()?.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynalease::stats::Stats;
    use std::time::Duration;

    #[test]
    fn counters_keep_the_core_names_and_order() {
        let stats = Stats::default();
        stats.acquired(Duration::from_millis(7));
        let snapshot = StatsSnapshot::from(stats.snapshot());
        let names: Vec<String> = snapshot.counters().into_iter().map(|c| c.name).collect();
        let core: Vec<&str> = stats.snapshot().counters().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, core);
        let wait = snapshot.acquire_wait();
        assert_eq!(wait.counts.len(), wait.bounds_ms.len() + 1);
        assert_eq!(wait.counts.iter().sum::<f64>(), 1.0);
        assert!((wait.sum_ms - 7.0).abs() < 1e-9);
    }

}
