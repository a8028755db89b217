//! Lock client configuration and its validation.

use std::time::Duration;

use crate::error::{duration_text, Error, Result};
use crate::lock::item::{LockId, RESERVED_ATTRIBUTES};
use crate::value::{MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};

/// The default lease: long enough to ride out a slow DynamoDB call or a short GC pause, short
/// enough that a crashed Lambda's lock frees up quickly.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(10);

/// How often a waiter reads a held lock in the first [`FAST_POLL_WINDOW`] of its wait, and the
/// shortest pause between its reads ever: a release in another process is seen within this long
/// while a wait is young, when most waits end (a holder finishing its work).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The longest pause between a waiter's reads, reached a few seconds into a wait: a waiter
/// reads about once every 1.3 s (at most one read a second) however long it waits.
pub const DEFAULT_MAX_POLL_INTERVAL: Duration = Duration::from_millis(1_500);

/// How long a wait polls at the poll interval before the pauses start to grow.
pub const FAST_POLL_WINDOW: Duration = Duration::from_secs(2);

/// The partition key attribute of lock tables unless configured otherwise (dlc's examples use
/// it too).
pub const DEFAULT_PARTITION_KEY: &str = "id";

/// How locks behave when their holder dies, as [`LockConfig::mode`] resolves it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// A lease: the lock frees itself `lease_duration` after the holder's last heartbeat.
    FailOpen {
        /// The lease each acquisition and heartbeat writes (`leaseDurationMs`).
        lease_duration: Duration,
        /// `None`: no heartbeats; the lock is lost `lease_duration` after acquisition.
        heartbeat_period: Option<Duration>,
        /// Shorten waits by the lock's `lockAcquiredTimeUnixMs`, trusting that clocks agree.
        trust_local_time: bool,
    },
    /// No lease: the lock is held until released (or deleted by hand).
    FailClosed,
}

/// Configuration of a [`LockClient`](crate::lock::LockClient): plain data, checked by
/// [`validate`](LockConfig::validate) (which `LockClient::new` calls).
///
/// The bindings fill it from their options as given, so every default and every rule for
/// combining options lives here.
///
/// ```
/// use std::time::Duration;
/// use dynalease::lock::LockConfig;
///
/// let config = LockConfig { lease_duration: Duration::from_secs(30), ..LockConfig::new("locks") };
/// assert_eq!(config.heartbeat(), Some(Duration::from_secs(10)));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LockConfig {
    /// The lock table.
    pub table: String,
    /// The table's partition key attribute (default `"id"`).
    pub partition_key: String,
    /// The table's sort key attribute, when lock ids have two parts.
    pub sort_key: Option<String>,
    /// The lease of fail-open locks (default [`DEFAULT_LEASE_DURATION`]). Timed in whole
    /// milliseconds: the item holds `leaseDurationMs`, and waiters wait what the item says, so
    /// the holder must not time a longer lease than it wrote.
    pub lease_duration: Duration,
    /// How often the holder renews its lease: `None` (default) every third of the lease,
    /// [`Duration::ZERO`] never (the lock is lost a lease after it was acquired).
    pub heartbeat_period: Option<Duration>,
    /// Fail-closed locks: no lease, no heartbeats, no fencing token; deleted on release.
    pub fail_closed: bool,
    /// Shorten waits by the holder's `lockAcquiredTimeUnixMs`: only if all hosts' clocks agree.
    pub trust_local_time: bool,
    /// The `owner` written into lock items (default `dynalease@<version>_<user>@<host>`).
    pub owner: String,
    /// The pause between reads while waiting for a held lock, for the first
    /// [`FAST_POLL_WINDOW`] of a wait, and the shortest pause ever (default
    /// [`DEFAULT_POLL_INTERVAL`]).
    pub poll_interval: Duration,
    /// The longest pause between reads of a long wait (default [`DEFAULT_MAX_POLL_INTERVAL`]);
    /// a longer `poll_interval` wins. See [`poll_pause`](LockConfig::poll_pause).
    pub max_poll_interval: Duration,
}

impl LockConfig {
    /// Fail-open locks on `table`, keyed by `id`, with a 10 s lease and a heartbeat every third
    /// of it.
    pub fn new(table: impl Into<String>) -> LockConfig {
        LockConfig {
            table: table.into(),
            partition_key: DEFAULT_PARTITION_KEY.to_owned(),
            sort_key: None,
            lease_duration: DEFAULT_LEASE_DURATION,
            heartbeat_period: None,
            fail_closed: false,
            trust_local_time: false,
            owner: default_owner(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_poll_interval: DEFAULT_MAX_POLL_INTERVAL,
        }
    }

    /// The pause before a waiter's next read, `waited` into the wait: the poll interval for the
    /// first [`FAST_POLL_WINDOW`], then half the time waited beyond it, up to the max poll
    /// interval; shortened by the fraction `shorten_by` (0 to 1/4, drawn at random, so that
    /// waiters in many processes do not read in step), and never below the poll interval.
    ///
    /// A release is seen within a poll interval while a wait is young, and within about 5% of
    /// the time waited (at most the max poll interval) later; a long wait costs about one read
    /// per max poll interval.
    pub fn poll_pause(&self, waited: Duration, shorten_by: f64) -> Duration {
        let ceiling = self.max_poll_interval.max(self.poll_interval);
        let target = (waited.saturating_sub(FAST_POLL_WINDOW) / 2).clamp(self.poll_interval, ceiling);
        target.mul_f64(1.0 - shorten_by.clamp(0.0, 0.25)).max(self.poll_interval)
    }

    /// The behaviour these options add up to.
    pub fn mode(&self) -> Mode {
        if self.fail_closed {
            return Mode::FailClosed;
        }
        Mode::FailOpen { lease_duration: self.lease_ms(), heartbeat_period: self.heartbeat(), trust_local_time: self.trust_local_time }
    }

    /// The lease of fail-open locks, as timed (whole milliseconds).
    pub fn lease(&self) -> Option<Duration> {
        (!self.fail_closed).then(|| self.lease_ms())
    }

    /// The heartbeat period fail-open locks use: `None` when they send no heartbeats.
    pub fn heartbeat(&self) -> Option<Duration> {
        if self.fail_closed {
            return None;
        }
        match self.heartbeat_period {
            None => Some(self.lease_ms() / 3),
            Some(period) if period.is_zero() => None,
            Some(period) => Some(period),
        }
    }

    fn lease_ms(&self) -> Duration {
        Duration::from_millis(self.lease_duration.as_millis().min(u64::MAX as u128) as u64)
    }

    /// Checks that `id` fits this configuration (a sort key part exactly when the table has a
    /// sort key) and DynamoDB's key limits; makes no request.
    pub fn check_id(&self, id: LockId) -> Result<LockId> {
        id.partition.validate("lock id", MAX_PARTITION_KEY_BYTES)?;
        match (&self.sort_key, &id.sort) {
            (Some(_), Some(sort)) => sort.validate("lock id's sort key part", MAX_SORT_KEY_BYTES)?,
            (Some(sort_key), None) => {
                return Err(Error::config(format!(
                    "lock id {id} has no sort key part, but the client uses sort key {sort_key:?}: pass (partition, sort)"
                )))
            }
            (None, Some(_)) => {
                return Err(Error::config(format!("lock id {id} has a sort key part, but the client has no {{sort_key}} configured")))
            }
            (None, None) => {}
        }
        Ok(id)
    }

    /// The lock id of election `name`, checked as [`LockClient::election`] checks it (for
    /// bindings that validate before their transport exists).
    ///
    /// [`LockClient::election`]: crate::lock::LockClient::election
    pub fn election_id(&self, name: impl Into<LockId>) -> Result<LockId> {
        if self.fail_closed {
            return Err(Error::config(
                "elections need fail-open locks (a dead leader's term must end with its lease): use a client without {fail_closed}",
            ));
        }
        self.check_id(name.into())
    }

    /// The lock ids of semaphore `name` (its own, then its permits'), checked as
    /// [`LockClient::semaphore`] checks them.
    ///
    /// [`LockClient::semaphore`]: crate::lock::LockClient::semaphore
    pub fn semaphore_ids(&self, name: impl Into<LockId>, permits: u32) -> Result<(LockId, Vec<LockId>)> {
        crate::lock::semaphore::ids(self, name.into(), permits)
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
                return Err(Error::option(
                    "sort_key",
                    format!("and {{partition_key}} are both {sort_key:?}; they must name different attributes"),
                ));
            }
        }
        if self.owner.is_empty() {
            return Err(Error::option("owner", "is empty; omit it to use the default"));
        }
        if self.poll_interval.is_zero() {
            return Err(Error::option("poll_interval", "must be greater than zero"));
        }
        if self.max_poll_interval.is_zero() {
            return Err(Error::option("max_poll_interval", "must be greater than zero"));
        }
        if let Mode::FailOpen { lease_duration, heartbeat_period, .. } = self.mode() {
            // A lease of 1 ms is how the table marks a released lock.
            if lease_duration < Duration::from_millis(2) {
                return Err(Error::option(
                    "lease_duration",
                    format!("must be at least 2 ms (got {}); a lease of 1 ms marks a released lock", duration_text(self.lease_duration)),
                ));
            }
            if let Some(period) = heartbeat_period {
                if period >= lease_duration {
                    return Err(Error::option(
                        "heartbeat_period",
                        format!("({}) must be shorter than {{lease_duration}} ({}), or the lease expires between heartbeats; a third of the lease is a good choice, 0 turns heartbeats off", duration_text(period), duration_text(lease_duration)),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn validate_key_name(option: &'static str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::option(option, "is empty; pass the table's key attribute name"));
    }
    if RESERVED_ATTRIBUTES.contains(&name) {
        return Err(Error::option(
            option,
            format!("{name:?} is reserved for lock attributes; reserved names are {}", RESERVED_ATTRIBUTES.join(", ")),
        ));
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
        let config = LockConfig { lease_duration: Duration::from_secs(9), ..LockConfig::new("locks") };
        config.validate().unwrap();
        assert_eq!(config.partition_key, "id");
        assert_eq!(
            config.mode(),
            Mode::FailOpen {
                lease_duration: Duration::from_secs(9),
                heartbeat_period: Some(Duration::from_secs(3)),
                trust_local_time: false
            }
        );
    }

    #[test]
    fn a_zero_heartbeat_period_turns_heartbeats_off() {
        let config = LockConfig { heartbeat_period: Some(Duration::ZERO), ..LockConfig::new("locks") };
        config.validate().unwrap();
        assert_eq!(config.heartbeat(), None);
        assert_eq!(LockConfig { fail_closed: true, ..LockConfig::new("locks") }.heartbeat(), None);
    }

    #[test]
    fn invalid_options_say_what_to_do() {
        let locks = || LockConfig::new("locks");
        assert!(message(LockConfig::new("")).contains("table name is empty"));
        assert!(message(LockConfig::new("kv")).contains("3 to 255 letters"));
        assert!(message(LockConfig { partition_key: "guid".into(), ..locks() }).contains("reserved"));
        assert!(message(LockConfig { sort_key: Some("id".into()), ..locks() }).contains("different attributes"));
        assert!(message(LockConfig { lease_duration: Duration::from_millis(1), ..locks() }).contains("released"));
        assert!(message(LockConfig {
            heartbeat_period: Some(Duration::from_secs(5)),
            lease_duration: Duration::from_secs(5),
            ..locks()
        })
        .contains("shorter than lease_duration"));
        assert!(message(LockConfig { poll_interval: Duration::ZERO, ..locks() }).contains("greater than zero"));
        assert!(message(LockConfig { max_poll_interval: Duration::ZERO, ..locks() }).starts_with("max_poll_interval must be greater"));
    }

    #[test]
    fn waits_poll_fast_for_two_seconds_then_back_off_to_the_ceiling() {
        let config = LockConfig::new("locks");
        let pause = |waited_ms: u64, shorten_by: f64| config.poll_pause(Duration::from_millis(waited_ms), shorten_by).as_millis();
        // The poll interval, never shortened below it, through the fast window and just after.
        assert_eq!([pause(0, 0.0), pause(1_999, 0.25), pause(2_050, 0.0)], [50, 50, 50]);
        // Then half the time waited beyond the window, shortened by up to a quarter.
        assert_eq!([pause(2_400, 0.0), pause(3_000, 0.0), pause(3_000, 0.25)], [200, 500, 375]);
        // Up to the ceiling: at most one read a second on average, however long the wait.
        assert_eq!([pause(60_000, 0.0), pause(60_000, 0.25), pause(60_000, 1.0)], [1_500, 1_125, 1_125]);
        // A poll interval above the ceiling wins.
        let slow = LockConfig { poll_interval: Duration::from_secs(3), ..LockConfig::new("locks") };
        assert_eq!(slow.poll_pause(Duration::from_secs(60), 0.25), Duration::from_secs(3));
    }

    #[test]
    fn the_lease_is_timed_as_written_in_whole_milliseconds() {
        let config = LockConfig { lease_duration: Duration::from_micros(10_000_900), ..LockConfig::new("locks") };
        assert_eq!(config.lease(), Some(Duration::from_millis(10_000)));
    }

    #[test]
    fn default_owner_names_the_library() {
        assert!(LockConfig::new("locks").owner.starts_with("dynalease@"));
    }
}
