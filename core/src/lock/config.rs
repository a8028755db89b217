//! Lock client configuration and its validation.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::lock::item::RESERVED_ATTRIBUTES;

/// The default lease: long enough to ride out a slow DynamoDB call or a short GC pause, short
/// enough that a crashed Lambda's lock frees up quickly.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(10);

/// The longest a waiter sleeps between reads of a held lock, so a release in another process is
/// seen within about this long.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How locks behave when their holder dies.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// A lease: the lock frees itself `lease_duration` after the holder's last heartbeat.
    FailOpen {
        lease_duration: Duration,
        /// `None`: no heartbeats; the lock is lost `lease_duration` after acquisition.
        heartbeat_period: Option<Duration>,
        /// Shorten waits by the lock's `lockAcquiredTimeUnixMs`, trusting that clocks agree.
        trust_local_time: bool,
    },
    /// No lease: the lock is held until released (or deleted by hand).
    FailClosed,
}

/// Configuration of a [`LockClient`](crate::lock::LockClient).
#[derive(Clone, Debug)]
pub struct LockConfig {
    pub(crate) table: String,
    pub(crate) partition_key: String,
    pub(crate) sort_key: Option<String>,
    pub(crate) mode: Mode,
    pub(crate) owner: String,
    pub(crate) poll_interval: Duration,
    heartbeat_period_set: bool,
}

impl LockConfig {
    /// A fail-open configuration with a 10 s lease and a heartbeat every third of it.
    pub fn new(table: impl Into<String>, partition_key: impl Into<String>) -> LockConfig {
        LockConfig {
            table: table.into(),
            partition_key: partition_key.into(),
            sort_key: None,
            mode: Mode::FailOpen {
                lease_duration: DEFAULT_LEASE_DURATION,
                heartbeat_period: Some(DEFAULT_LEASE_DURATION / 3),
                trust_local_time: false,
            },
            owner: default_owner(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            heartbeat_period_set: false,
        }
    }

    /// The table's sort key, when lock ids have two parts.
    pub fn sort_key(mut self, name: impl Into<String>) -> Self {
        self.sort_key = Some(name.into());
        self
    }

    /// The lease. Unless a heartbeat period was set, heartbeats follow at a third of it.
    ///
    /// Rounded down to whole milliseconds: the item holds `leaseDurationMs`, and waiters wait
    /// what the item says, so the holder must not time a longer lease than it wrote.
    pub fn lease_duration(mut self, lease: Duration) -> Self {
        let lease = Duration::from_millis(lease.as_millis().min(u64::MAX as u128) as u64);
        if let Mode::FailOpen { lease_duration, heartbeat_period, .. } = &mut self.mode {
            *lease_duration = lease;
            if !self.heartbeat_period_set {
                *heartbeat_period = Some(lease / 3);
            }
        }
        self
    }

    /// How often the holder renews its lease; `None` sends no heartbeats.
    pub fn heartbeat_period(mut self, period: Option<Duration>) -> Self {
        if let Mode::FailOpen { heartbeat_period, .. } = &mut self.mode {
            *heartbeat_period = period;
            self.heartbeat_period_set = true;
        }
        self
    }

    pub fn trust_local_time(mut self, trust: bool) -> Self {
        if let Mode::FailOpen { trust_local_time, .. } = &mut self.mode {
            *trust_local_time = trust;
        }
        self
    }

    /// Fail-closed locks: no lease, no heartbeats, no fencing token; deleted on release.
    pub fn fail_closed(mut self) -> Self {
        self.mode = Mode::FailClosed;
        self
    }

    /// The `owner` written into lock items (default `dynalease@<version>_<user>@<host>`).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// The longest pause between reads while waiting for a held lock.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn partition_key(&self) -> &str {
        &self.partition_key
    }

    pub fn sort_key_name(&self) -> Option<&str> {
        self.sort_key.as_deref()
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    pub fn owner_name(&self) -> &str {
        &self.owner
    }

    /// The lease of fail-open locks.
    pub fn lease(&self) -> Option<Duration> {
        match self.mode {
            Mode::FailOpen { lease_duration, .. } => Some(lease_duration),
            Mode::FailClosed => None,
        }
    }

    /// Checks everything that can be checked without calling DynamoDB.
    pub fn validate(&self) -> Result<()> {
        if self.table.is_empty() {
            return Err(Error::config("table name is empty; pass the name of the lock table"));
        }
        crate::table::check_table_name(&self.table)?;
        validate_key_name("partition_key", &self.partition_key)?;
        if let Some(sort_key) = &self.sort_key {
            validate_key_name("sort_key", sort_key)?;
            if sort_key == &self.partition_key {
                return Err(Error::config(format!(
                    "sort_key and partition_key are both {sort_key:?}; they must name different attributes"
                )));
            }
        }
        if self.owner.is_empty() {
            return Err(Error::config("owner is empty; omit it to use the default"));
        }
        if self.poll_interval.is_zero() {
            return Err(Error::config("poll_interval must be greater than zero"));
        }
        if let Mode::FailOpen { lease_duration, heartbeat_period, .. } = &self.mode {
            // A lease of 1 ms is how the table marks a released lock.
            if *lease_duration < Duration::from_millis(2) {
                return Err(Error::config(format!(
                    "lease_duration must be at least 2 ms (got {lease_duration:?}); a lease of 1 ms marks a released lock"
                )));
            }
            if let Some(period) = heartbeat_period {
                if period.is_zero() {
                    return Err(Error::config("heartbeat_period must be greater than zero, or None for no heartbeats"));
                }
                if period >= lease_duration {
                    return Err(Error::config(format!(
                        "heartbeat_period ({period:?}) must be shorter than lease_duration ({lease_duration:?}), or the lease expires between heartbeats; a third of the lease is a good choice"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn validate_key_name(option: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::config(format!("{option} is empty; pass the table's key attribute name")));
    }
    if RESERVED_ATTRIBUTES.contains(&name) {
        return Err(Error::config(format!(
            "{option} {name:?} is reserved for lock attributes; reserved names are {}",
            RESERVED_ATTRIBUTES.join(", ")
        )));
    }
    Ok(())
}

fn default_owner() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    format!("dynalease@{}_{user}@{host}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(config: LockConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid_and_heartbeat_follows_lease() {
        let config = LockConfig::new("locks", "id").lease_duration(Duration::from_secs(9));
        config.validate().unwrap();
        assert_eq!(
            config.mode,
            Mode::FailOpen {
                lease_duration: Duration::from_secs(9),
                heartbeat_period: Some(Duration::from_secs(3)),
                trust_local_time: false
            }
        );
    }

    #[test]
    fn invalid_options_say_what_to_do() {
        assert!(message(LockConfig::new("", "id")).contains("table name is empty"));
        assert!(message(LockConfig::new("kv", "id")).contains("3 to 255 letters"));
        assert!(message(LockConfig::new("locks", "guid")).contains("reserved"));
        assert!(message(LockConfig::new("locks", "id").sort_key("id")).contains("different attributes"));
        assert!(message(LockConfig::new("locks", "id").lease_duration(Duration::from_millis(1))).contains("released"));
        assert!(message(
            LockConfig::new("locks", "id")
                .heartbeat_period(Some(Duration::from_secs(5)))
                .lease_duration(Duration::from_secs(5))
        )
        .contains("shorter than lease_duration"));
        assert!(message(LockConfig::new("locks", "id").heartbeat_period(Some(Duration::ZERO))).contains("greater than zero"));
    }

    #[test]
    fn the_lease_is_timed_as_written_in_whole_milliseconds() {
        let config = LockConfig::new("locks", "id").lease_duration(Duration::from_micros(10_000_900));
        assert_eq!(config.lease(), Some(Duration::from_millis(10_000)));
    }

    #[test]
    fn default_owner_names_the_library() {
        assert!(LockConfig::new("locks", "id").owner.starts_with("dynalease@"));
    }
}
