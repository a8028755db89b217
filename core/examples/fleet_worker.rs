//! A fleet worker in Rust: competes for lease locks and increments a fenced counter under each.
//!
//! It speaks the worker protocol of `docs/fleet.md`, like the Python workers in
//! `tests/fleet/worker.py`, so that `make demo` and `tests/fleet` can mix languages on one lock
//! table and check them together:
//!
//! ```sh
//! cargo build -p dynalease --example fleet_worker
//! fleet_worker --client rust --endpoint http://127.0.0.1:PORT --lock-table T --kv-table K \
//!     --kv-partition P --locks a,b,c,d --duration 10 --log worker.jsonl
//! ```
//!
//! Log times are CLOCK_MONOTONIC nanoseconds, read with `clock_gettime` itself: the checker
//! compares them with the Python workers' `time.monotonic_ns()`, and `std::time::Instant` keeps
//! its raw value private.
//!
//! With `--semaphore NAME:N`, `--election NAME` and `--handoff-share F` it also takes permits of
//! a shared semaphore, campaigns in and observes a shared election, and hands locks off to other
//! processes through a KV mailbox and takes theirs up (docs/fleet.md, "Semaphore, election,
//! hand-offs").

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dynalease::kv::{KvConfig, KvPair, KvStore, WriteOptions};
use dynalease::lock::{Election, Handle, Lock, LockClient, LockConfig, LockId, Semaphore};
use dynalease::transport::native::{NativeConfig, NativeTransport};
use dynalease::value::KeyValue;
use dynalease::{ErrorKind, Value};
use rand::Rng;
use serde_json::{json, Value as Json};

const USAGE: &str = "usage: fleet_worker --endpoint URL --lock-table T --kv-table K --kv-partition P --locks a,b \
--log PATH [--client rust] [--duration S | --deadline-ns NS] [--lease S] [--heartbeat S] [--hold-ms MS] [--tasks N] \
[--announce] [--seed N] [--semaphore NAME:N] [--semaphore-share F] [--election NAME] [--term-ms MIN:MAX] [--observe-ms MS] \
[--observe-tail-ms MS] [--handoff-share F]";

fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64
}

struct Args {
    client: String,
    endpoint: String,
    lock_table: String,
    kv_table: String,
    kv_partition: String,
    locks: Vec<String>,
    deadline_ns: i64,
    lease: Duration,
    heartbeat: Option<Duration>,
    hold_ms: f64,
    log: String,
    tasks: usize,
    announce: bool,
    seed: Option<u64>,
    /// (name, permits)
    semaphore: Option<(String, u32)>,
    semaphore_share: f64,
    election: Option<String>,
    term_ms: (f64, f64),
    observe: Duration,
    observe_tail: Duration,
    handoff_share: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let (mut client, mut endpoint, mut lock_table, mut kv_table, mut kv_partition, mut locks, mut log) =
        ("rust".to_string(), None, None, None, None, None, None);
    let (mut duration, mut deadline_ns, mut lease, mut heartbeat, mut hold_ms, mut tasks, mut announce, mut seed) =
        (10.0_f64, None, 3.0_f64, None, 20.0_f64, 1_usize, false, None);
    let (mut semaphore, mut semaphore_share, mut election, mut term_ms, mut observe_ms, mut observe_tail_ms, mut handoff_share) =
        (None, 0.25_f64, None, (300.0_f64, 2000.0_f64), 50.0_f64, 1500.0_f64, 0.0_f64);
    let seconds = |v: String, name: &str| v.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0).ok_or(format!("{name}: not a positive number of seconds: {v}"));
    let share = |v: String, name: &str| v.parse::<f64>().ok().filter(|s| (0.0..=1.0).contains(s)).ok_or(format!("{name}: not a share in [0, 1]: {v}"));
    let millis = |v: &str, name: &str| v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).ok_or(format!("{name}: not a number of ms >= 0: {v}"));
    while let Some(flag) = raw.next() {
        if flag == "--announce" {
            announce = true;
            continue;
        }
        let value = raw.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--client" => client = value,
            "--endpoint" => endpoint = Some(value),
            "--lock-table" => lock_table = Some(value),
            "--kv-table" => kv_table = Some(value),
            "--kv-partition" => kv_partition = Some(value),
            "--locks" => locks = Some(value.split(',').filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>()),
            "--log" => log = Some(value),
            "--duration" => duration = seconds(value, "--duration")?,
            "--deadline-ns" => deadline_ns = Some(value.parse::<i64>().map_err(|e| format!("--deadline-ns: {e}"))?),
            "--lease" => lease = seconds(value, "--lease")?,
            "--heartbeat" => heartbeat = Some(seconds(value, "--heartbeat")?),
            "--hold-ms" => hold_ms = value.parse::<f64>().ok().filter(|v| *v >= 0.0).ok_or("--hold-ms: not a number >= 0")?,
            "--tasks" => tasks = value.parse::<usize>().ok().filter(|t| *t >= 1).ok_or("--tasks: not a number >= 1")?,
            "--seed" => seed = Some(value.parse::<u64>().map_err(|e| format!("--seed: {e}"))?),
            "--semaphore" => {
                let (name, permits) = value.rsplit_once(':').ok_or("--semaphore: NAME:N")?;
                let permits = permits.parse::<u32>().ok().filter(|n| *n >= 1).ok_or("--semaphore: N is not a number >= 1")?;
                if name.is_empty() {
                    return Err("--semaphore: NAME:N".into());
                }
                semaphore = Some((name.to_string(), permits));
            }
            "--semaphore-share" => semaphore_share = share(value, "--semaphore-share")?,
            "--election" => election = Some(value).filter(|v| !v.is_empty()),
            "--term-ms" => {
                let (low, high) = value.split_once(':').unwrap_or((value.as_str(), value.as_str()));
                term_ms = (millis(low, "--term-ms")?, millis(high, "--term-ms")?);
                if term_ms.1 < term_ms.0 {
                    return Err("--term-ms: MIN:MAX with MIN <= MAX".into());
                }
            }
            "--observe-ms" => observe_ms = millis(&value, "--observe-ms")?.max(1.0),
            "--observe-tail-ms" => observe_tail_ms = millis(&value, "--observe-tail-ms")?,
            "--handoff-share" => handoff_share = share(value, "--handoff-share")?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let need = |v: Option<String>, name: &str| v.ok_or(format!("{name} is required"));
    let locks = locks.ok_or("--locks is required")?;
    if locks.is_empty() {
        return Err("--locks names no lock id".into());
    }
    Ok(Args {
        client,
        endpoint: need(endpoint, "--endpoint")?,
        lock_table: need(lock_table, "--lock-table")?,
        kv_table: need(kv_table, "--kv-table")?,
        kv_partition: need(kv_partition, "--kv-partition")?,
        locks,
        deadline_ns: deadline_ns.unwrap_or_else(|| monotonic_ns() + (duration * 1e9) as i64),
        lease: Duration::from_secs_f64(lease),
        heartbeat: heartbeat.map(Duration::from_secs_f64),
        hold_ms,
        log: need(log, "--log")?,
        tasks,
        announce,
        seed,
        semaphore,
        semaphore_share,
        election,
        term_ms,
        observe: Duration::from_secs_f64(observe_ms / 1000.0),
        observe_tail: Duration::from_secs_f64(observe_tail_ms / 1000.0),
        handoff_share,
    })
}

/// One JSON line per write, flushed at once (the file is unbuffered): the runner tails the logs,
/// and a worker killed with SIGKILL loses at most the line it was writing.
struct Log {
    file: Mutex<File>,
    client: String,
    pid: u32,
}

impl Log {
    fn write(&self, mut record: Json) {
        record["client"] = json!(self.client);
        record["pid"] = json!(self.pid);
        let mut line = record.to_string();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes()).expect("cannot write the worker log");
    }

    fn event(&self, event: &str, mut fields: Json) {
        fields["event"] = json!(event);
        fields["at"] = json!(monotonic_ns());
        self.write(fields);
    }

    fn error(&self, op: &str, lock: &str, error: &dynalease::Error) {
        let name = format!("{:?}", error.kind());
        let message: String = error.to_string().chars().take(300).collect();
        self.event("error", json!({"op": op, "lock": lock, "error": name, "message": message}));
    }
}

fn counter_key(lock: &str) -> String {
    format!("counter/{lock}")
}

/// A lock id as the logs write it (the fleet's ids are strings).
fn id_text(id: &LockId) -> String {
    match &id.partition {
        KeyValue::S(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads the counter and writes it + 1 with a compare-and-swap fenced by `lock`.
async fn increment(kv: &KvStore, lock: &Lock, lock_id: &str) -> dynalease::Result<()> {
    let key = counter_key(lock_id);
    let previous: Option<KvPair> = kv.get(&key).await?;
    let next = match &previous {
        Some(pair) => pair.value.to_json()?.as_i64().unwrap_or(0) + 1,
        None => 1,
    };
    kv.atomic_put(&key, &Value::from(next), previous.as_ref(), &WriteOptions::default().fence(lock)).await?;
    Ok(())
}

/// The fenced increment's outcome for the hold line: true applied; false certainly not
/// applied; null unknown. Only the unknown-outcome family may have landed: the checker holds
/// every other error to "no".
async fn counted_increment(kv: &KvStore, lock: &Lock, lock_id: &str, log: &Log) -> Json {
    match increment(kv, lock, lock_id).await {
        Ok(()) => Json::Bool(true),
        Err(e) => {
            log.error("increment", lock_id, &e);
            match e.kind() {
                ErrorKind::OutcomeUnknown => Json::Null,
                _ => Json::Bool(false),
            }
        }
    }
}

fn hold_line(lock_id: &str, lock: &Lock, acquired: i64, released: i64, lost: bool, applied: Json) -> Json {
    json!({
        "lock": lock_id,
        "token": lock.fencing_token(),
        "acquired": acquired,
        "released": released,
        "ok": !lost,
        "increment": applied,
    })
}

/// What the worker shares between its loops.
struct Fleet {
    args: Arc<Args>,
    log: Arc<Log>,
    locks: LockClient,
    kv: KvStore,
    semaphore: Option<Semaphore>,
    election: Option<Election>,
    /// Numbers this process's mailbox keys.
    handoffs: AtomicU64,
    /// Set once a hold of this process ended with a hand-off (the first one that can does).
    handed_off: AtomicBool,
}

impl Fleet {
    fn lease_ns(&self) -> i64 {
        self.args.lease.as_nanos() as i64
    }

    /// Takes `released`, reads the lost flag and, when the lock is still ours, detaches it,
    /// logs the hold and puts the handle into the mailbox. Returns the lock back when it has
    /// to be released instead (lost, or the detach failed), with the hold line logged.
    async fn hand_off(&self, lock: Lock, lock_id: &str, acquired: i64, applied: Json) -> Option<(Lock, i64, bool)> {
        let released = monotonic_ns();
        if lock.is_lost() {
            return Some((lock, released, true));
        }
        let handle = match lock.detach().await {
            Ok(handle) => handle,
            Err(e) => {
                self.log.error("detach", lock_id, &e);
                // Not lost at `released` (read above): the hold stands; release it now.
                return Some((lock, released, false));
            }
        };
        let key = format!("handoff/{}-{}", self.log.pid, self.handoffs.fetch_add(1, Ordering::Relaxed) + 1);
        let mut line = hold_line(lock_id, &lock, acquired, released, false, applied);
        line["detached"] = json!(true);
        line["handoff"] = json!(key);
        self.log.write(line);
        let entry = json!({
            "handle": handle.to_string(),
            "lock": lock_id,
            "token": lock.fencing_token(),
            "client": self.log.client,
            "pid": self.log.pid,
            "at": monotonic_ns(),
        });
        let put = match Value::try_from(entry) {
            Ok(value) => self.kv.put(&key, &value, &WriteOptions::default()).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = put {
            self.log.error("handoff", lock_id, &e);
        }
        None
    }
}

async fn holder(fleet: Arc<Fleet>, seed: u64) {
    let (args, log, kv) = (&fleet.args, &fleet.log, &fleet.kv);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    loop {
        let remaining = args.deadline_ns - monotonic_ns();
        if remaining <= 0 {
            return;
        }
        let timeout = Duration::from_nanos(remaining as u64).min(args.lease * 3);
        let permit = fleet.semaphore.as_ref().filter(|_| rng.random::<f64>() < args.semaphore_share);
        let lock_id = args.locks[rng.random_range(0..args.locks.len())].clone();
        let attempt = match permit {
            Some(semaphore) => semaphore.acquire(Some(timeout)).await,
            None => fleet.locks.acquire(lock_id.as_str(), Some(timeout)).await,
        };
        let (op, named) = if permit.is_some() { ("semaphore", fleet.args.semaphore.as_ref().map(|s| s.0.clone()).unwrap_or_default()) } else { ("acquire", lock_id) };
        let lock = match attempt {
            Ok(lock) => lock,
            Err(e) if e.kind() == ErrorKind::LockNotAcquired => continue,
            Err(e) => {
                log.error(op, &named, &e);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acquired = monotonic_ns();
        let lock_id = id_text(lock.id());
        if args.announce {
            log.event("acquired", json!({"lock": lock_id, "token": lock.fencing_token(), "acquired": acquired}));
        }
        let applied = counted_increment(kv, &lock, &lock_id, log).await;
        let hold = Duration::from_secs_f64(rng.random_range(0.0..=args.hold_ms) / 1000.0);
        tokio::time::sleep(hold).await;

        // The process's first hold that can, then a share of the others; never with less than
        // a lease left before the deadline.
        let hand_off = permit.is_none() && args.handoff_share > 0.0 && {
            let chosen = rng.random::<f64>() < args.handoff_share;
            args.deadline_ns - monotonic_ns() > fleet.lease_ns() && (!fleet.handed_off.swap(true, Ordering::Relaxed) || chosen)
        };
        let (lock, released, lost) = if hand_off {
            match fleet.hand_off(lock, &lock_id, acquired, applied.clone()).await {
                Some(back) => back,
                None => continue,
            }
        } else {
            let released = monotonic_ns();
            // Read after `released`: not lost now means it was held then.
            let lost = lock.is_lost();
            (lock, released, lost)
        };
        let mut line = hold_line(&lock_id, &lock, acquired, released, lost, applied);
        if let (Some(_), Some((name, permits))) = (permit, &args.semaphore) {
            line["semaphore"] = json!(name);
            line["permits"] = json!(permits);
        }
        log.write(line);
        if let Err(e) = lock.release().await {
            log.error("release", &lock_id, &e);
        }
    }
}

/// Campaigns until the deadline; holds each term for --term-ms, then resigns and pauses so that
/// the term passes to another process.
async fn candidate(fleet: Arc<Fleet>, election: Election, seed: u64) {
    let (args, log, kv) = (&fleet.args, &fleet.log, &fleet.kv);
    let name = id_text(election.id());
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let data = Value::try_from(json!({"client": log.client, "pid": log.pid})).expect("campaign data");
    loop {
        let remaining = args.deadline_ns - monotonic_ns();
        if remaining <= 0 {
            return;
        }
        let timeout = Duration::from_nanos(remaining as u64).min(args.lease * 3);
        let lock = match election.campaign(Some(data.clone()), Some(timeout)).await {
            Ok(lock) => lock,
            Err(e) if e.kind() == ErrorKind::LockNotAcquired => continue,
            Err(e) => {
                log.error("campaign", &name, &e);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acquired = monotonic_ns();
        if args.announce {
            log.event("acquired", json!({"lock": name, "token": lock.fencing_token(), "acquired": acquired}));
        }
        let applied = counted_increment(kv, &lock, &name, log).await;
        let (low, high) = args.term_ms;
        tokio::time::sleep(Duration::from_secs_f64(rng.random_range(low..=high) / 1000.0)).await;
        let released = monotonic_ns();
        let lost = lock.is_lost();
        let mut line = hold_line(&name, &lock, acquired, released, lost, applied);
        line["election"] = json!(name);
        log.write(line);
        if let Err(e) = lock.release().await {
            log.error("release", &name, &e);
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..=400))).await;
    }
}

/// Logs each change of the election's term until `stop` turns true.
async fn observer(fleet: Arc<Fleet>, election: Election, mut stop: tokio::sync::watch::Receiver<bool>) {
    let log = &fleet.log;
    let name = id_text(election.id());
    log.event("observer-start", json!({"election": name, "interval_ms": fleet.args.observe.as_secs_f64() * 1000.0}));
    // The term last logged: Some(None) is "nobody leads".
    let mut last: Option<Option<i64>> = None;
    'watching: loop {
        let mut watch = election.watch(Some(fleet.args.observe)).expect("the observer's interval is at least 1 ms");
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => break 'watching,
                next = watch.next() => next,
            };
            match next {
                Ok(leader) => {
                    let at = monotonic_ns();
                    let term = leader.map(|l| l.term);
                    if last != Some(term) {
                        last = Some(term);
                        log.write(json!({"event": "leader", "election": name, "term": term, "at": at}));
                    }
                }
                Err(e) => {
                    log.error("observe", &name, &e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue 'watching;
                }
            }
        }
    }
    log.event("observer-stop", json!({"election": name}));
}

/// Takes up other processes' hand-offs until the deadline: claims a mailbox entry with a
/// compare-and-swap delete, resumes its lock, increments under it, works and releases.
async fn mailbox(fleet: Arc<Fleet>, seed: u64) {
    let (args, log, kv) = (&fleet.args, &fleet.log, &fleet.kv);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    while monotonic_ns() < args.deadline_ns {
        let entries = match kv.list("handoff/").await {
            Ok(entries) => entries,
            Err(e) => {
                log.error("claim", "handoff/", &e);
                Vec::new()
            }
        };
        let others: Vec<&KvPair> = entries
            .iter()
            .filter(|pair| pair.value.to_json().ok().and_then(|v| v.get("pid").and_then(Json::as_u64)) != Some(u64::from(log.pid)))
            .collect();
        if others.is_empty() {
            tokio::time::sleep(Duration::from_millis(rng.random_range(100..=150))).await;
            continue;
        }
        let pair = others[rng.random_range(0..others.len())];
        let entry = pair.value.to_json().unwrap_or(Json::Null);
        let lock_id = entry.get("lock").and_then(Json::as_str).unwrap_or("?").to_string();
        match kv.atomic_delete(&pair.key, pair, &WriteOptions::default()).await {
            Ok(()) => {}
            // Another process claimed it first.
            Err(e) if matches!(e.kind(), ErrorKind::KeyModified | ErrorKind::KeyNotFound) => continue,
            Err(e) => {
                // Perhaps ours, perhaps not: resuming it could make two holders.
                log.error("claim", &lock_id, &e);
                continue;
            }
        }
        let handle = match entry.get("handle").and_then(Json::as_str).map(Handle::parse) {
            Some(Ok(handle)) => handle,
            Some(Err(e)) => {
                log.error("resume", &lock_id, &e);
                continue;
            }
            None => {
                log.event("error", json!({"op": "resume", "lock": lock_id, "error": "BadEntry", "message": "a mailbox entry without a handle"}));
                continue;
            }
        };
        let lock = match fleet.locks.resume(&handle).await {
            Ok(lock) => lock,
            Err(e) => {
                log.error("resume", &lock_id, &e);
                continue;
            }
        };
        let acquired = monotonic_ns();
        let applied = counted_increment(kv, &lock, &lock_id, log).await;
        tokio::time::sleep(Duration::from_secs_f64(rng.random_range(0.0..=args.hold_ms) / 1000.0)).await;
        let released = monotonic_ns();
        let lost = lock.is_lost();
        let mut line = hold_line(&lock_id, &lock, acquired, released, lost, applied);
        line["resumed"] = json!(true);
        line["handoff"] = json!(pair.key);
        log.write(line);
        if let Err(e) = lock.release().await {
            log.error("release", &lock_id, &e);
        }
    }
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => Arc::new(args),
        Err(message) => {
            eprintln!("fleet_worker: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let file = OpenOptions::new().create(true).append(true).open(&args.log).expect("cannot open the worker log");
    let log = Arc::new(Log { file: Mutex::new(file), client: args.client.clone(), pid: std::process::id() });

    let transport = match NativeTransport::new(NativeConfig { endpoint_url: Some(args.endpoint.clone()), ..Default::default() }).await {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("fleet_worker: {e}");
            std::process::exit(1);
        }
    };
    let config = LockConfig { lease_duration: args.lease, heartbeat_period: args.heartbeat, ..LockConfig::new(args.lock_table.as_str()) };
    let locks = LockClient::new(config, transport.clone()).expect("invalid lock configuration");
    let kv = KvStore::new(KvConfig::new(args.kv_table.as_str(), args.kv_partition.as_str()), transport).expect("invalid KV configuration");
    let semaphore = args.semaphore.as_ref().map(|(name, permits)| locks.semaphore(name.as_str(), *permits).expect("invalid semaphore"));
    let election = args.election.as_ref().map(|name| locks.election(name.as_str()).expect("invalid election"));
    let fleet = Arc::new(Fleet { args: args.clone(), log: log.clone(), locks, kv, semaphore, election, handoffs: AtomicU64::new(0), handed_off: AtomicBool::new(false) });

    log.event("start", json!({"locks": args.locks}));
    let base_seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let mut loops: Vec<_> = (0..args.tasks)
        .map(|i| tokio::spawn(holder(fleet.clone(), base_seed.wrapping_add(i as u64 * 7919))))
        .collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let observing = fleet.election.clone().map(|election| tokio::spawn(observer(fleet.clone(), election, stopped)));
    if let Some(election) = fleet.election.clone() {
        loops.push(tokio::spawn(candidate(fleet.clone(), election, base_seed.wrapping_add(104_729))));
    }
    if args.handoff_share > 0.0 {
        loops.push(tokio::spawn(mailbox(fleet.clone(), base_seed.wrapping_add(1_299_709))));
    }
    for task in loops {
        task.await.expect("a worker loop panicked");
    }
    if let Some(observing) = observing {
        let until = args.deadline_ns + args.observe_tail.as_nanos() as i64 - monotonic_ns();
        if until > 0 {
            tokio::time::sleep(Duration::from_nanos(until as u64)).await;
        }
        let _ = stop.send(true);
        observing.await.expect("the observer panicked");
    }
    log.event("stop", json!({}));
}
