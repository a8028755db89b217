//! One seeded run: draws the world's shape from the seed, starts the clients and the chaos,
//! stops the faults, lets everything settle and checks the end state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dynalease::protocol::clock::{SharedClock, TokioClock};
use dynalease::protocol::request::GetItem;
use dynalease::table::{create_table, KeyAttribute, TableSpec};
use dynalease::transport::memory::MemoryTransport;
use dynalease::transport::TransportExt;
use dynalease::{AttributeValue, Item, KeyType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::checker::{counter_value, Checker, Shared, Stats};
use super::clients::{dlc_client, engine_client, observer_client, SEMAPHORE};
use super::faults::{Cut, Link, Net};
use super::SimRng;

/// The shape of one run, all drawn from its seed.
#[derive(Clone, Debug)]
pub struct Params {
    pub lease: Duration,
    /// Every request's per-call deadline; late requests land within one more.
    pub deadline: Duration,
    /// The typical chance of a fault per request; each client's network has between none
    /// and twice this.
    pub fault_rate: f64,
    /// Percentage of faults that land late.
    pub late_share: u32,
    /// Mean pause between two cut-offs of some client (`None`: no cut-offs).
    pub cuts_every: Option<Duration>,
    pub engine_open: usize,
    pub engine_closed: usize,
    pub dlc_open: usize,
    pub dlc_closed: usize,
    pub open_ids: Vec<String>,
    pub closed_ids: Vec<String>,
    pub duration: Duration,
    /// The permits of the semaphore fail-open engine clients share.
    pub permits: u32,
    /// Engine clients 2k and 2k+1 run in one process: their waiters for a lock id share one
    /// poller, and a release by one wakes the other's waiters.
    pub paired_processes: bool,
    /// A broken client for the checker's own test: it trusts wall clocks, and its runs an hour
    /// ahead, so it takes over leases that are still held.
    pub skewed_client: Option<usize>,
}

impl Params {
    fn draw(rng: &mut StdRng) -> Params {
        let ids = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}-{i}")).collect();
        let mut params = Params {
            lease: Duration::from_millis(rng.random_range(1_000..=3_000)),
            deadline: Duration::from_millis(rng.random_range(50..=400)),
            fault_rate: [0.0, 0.05, 0.15, 0.3][rng.random_range(0..4)],
            late_share: [20, 50][rng.random_range(0..2)],
            cuts_every: rng.random_bool(0.5).then(|| Duration::from_millis(rng.random_range(500..=5_000))),
            engine_open: rng.random_range(2..=4),
            engine_closed: rng.random_range(1..=2),
            dlc_open: rng.random_range(0..=1),
            dlc_closed: rng.random_range(0..=1),
            open_ids: ids("open", rng.random_range(1..=2)),
            closed_ids: ids("closed", rng.random_range(1..=2)),
            duration: Duration::from_millis(rng.random_range(5_000..=15_000)),
            permits: rng.random_range(1..=2),
            paired_processes: false,
            skewed_client: None,
        };
        // A quarter of the runs are a storm on one lease lock: many waiters, many faults and
        // frequent cut-offs, where a holder's view of its lease and a waiter's differ most.
        if rng.random_bool(0.25) {
            params.open_ids.truncate(1);
            params.engine_open = rng.random_range(4..=6);
            params.fault_rate = 0.3;
            params.cuts_every = Some(Duration::from_millis(rng.random_range(300..=1_500)));
            params.duration = Duration::from_millis(rng.random_range(10_000..=20_000));
        }
        params.paired_processes = rng.random_bool(0.5);
        params
    }
}

/// Everything the clients share.
pub struct World {
    pub net: Arc<Net>,
    pub checker: Shared,
    pub rng: SimRng,
    pub clock: SharedClock,
    /// The origin of the dlc machines' monotonic clock.
    pub start: Instant,
    pub params: Params,
    pub locks_table: String,
    pub kv_table: String,
    links: Mutex<Vec<Arc<Link>>>,
    /// Locks handed off by one engine client for another to take up.
    handoffs: Mutex<Vec<Handoff>>,
    /// Work the clients left running in the background (the drop-in's take-backs).
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// A detached lock on its way to another client.
pub struct Handoff {
    pub fail_closed: bool,
    pub handle: String,
    pub id: String,
    /// The operation that acquired the lock.
    pub lock: u64,
}

impl World {
    pub fn hand_off(&self, handoff: Handoff) {
        self.handoffs.lock().unwrap().push(handoff);
    }

    pub fn take_handoff(&self, fail_closed: bool) -> Option<Handoff> {
        let mut handoffs = self.handoffs.lock().unwrap();
        let at = handoffs.iter().position(|h| h.fail_closed == fail_closed)?;
        Some(handoffs.remove(at))
    }

    pub fn has_handoff(&self, fail_closed: bool) -> bool {
        self.handoffs.lock().unwrap().iter().any(|h| h.fail_closed == fail_closed)
    }

    pub fn link(&self, client: usize) -> Arc<Link> {
        let fault_rate = {
            let mut rng = self.rng.lock().unwrap();
            (self.params.fault_rate * [0.0, 0.5, 1.0, 2.0][rng.random_range(0..4)]).min(0.6)
        };
        let process = if self.params.paired_processes { client / 2 } else { client };
        self.checker.lock().unwrap().note(format!("c{client}'s network: fault rate {fault_rate}; process {process}"));
        let link = Link::new(self.net.clone(), client, process, fault_rate);
        self.links.lock().unwrap().push(link.clone());
        link
    }

    pub fn background(&self, task: tokio::task::JoinHandle<()>) {
        self.background.lock().unwrap().push(task);
    }

    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    pub async fn stopped(&self) {
        let _ = self.stop.subscribe().wait_for(|stop| *stop).await;
    }

    /// The lock item as the table holds it now (no faults: the checker's own look).
    pub async fn peek_lock(&self, id: &str) -> Option<Item> {
        let key = Item::from([("id".to_owned(), AttributeValue::S(id.to_owned()))]);
        let get = GetItem { table: self.locks_table.clone(), key, consistent_read: true };
        self.net.memory().get_item(get).await.expect("the lock table exists")
    }

    async fn peek_counter(&self, key: &str) -> Option<i64> {
        let key = Item::from([("pk".to_owned(), AttributeValue::S("sim".into())), ("sk".to_owned(), AttributeValue::S(key.to_owned()))]);
        let get = GetItem { table: self.kv_table.clone(), key, consistent_read: true };
        let item = self.net.memory().get_item(get).await.expect("the kv table exists")?;
        Some(counter_value(&dynalease::Value::from_attribute(item.get("value")?)))
    }
}

/// What one run found.
pub struct Report {
    pub seed: u64,
    pub trace_hash: u64,
    pub violations: Vec<String>,
    pub trace: Vec<String>,
    pub stats: Stats,
    #[allow(dead_code)]
    pub params: Params,
}

/// Runs `seed` on a fresh current-thread runtime whose clock only moves when every task waits.
pub fn run(seed: u64, full_trace: bool) -> Report {
    run_with(seed, full_trace, |_| {})
}

/// Runs `seed` with its drawn parameters changed by `tweak`.
pub fn run_with(seed: u64, full_trace: bool, tweak: impl FnOnce(&mut Params)) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("a runtime");
    runtime.block_on(simulate(seed, full_trace, tweak))
}

/// The longest pause between two sends of a write the core (or the drop-in's take-back) keeps
/// sending in the background after its caller had an unknown outcome.
const UNDO_PAUSE: Duration = Duration::from_secs(5);

/// Tables get a name per run: the core shares pollers and wakes waiters by table and id within
/// a process (here: a link's process number), and runs on other test threads must not mix with ours.
static RUNS: AtomicU64 = AtomicU64::new(0);

async fn simulate(seed: u64, full_trace: bool, tweak: impl FnOnce(&mut Params)) -> Report {
    dynalease::protocol::random::seed_this_thread(seed ^ 0x005e_ed0f_c0de);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut params = Params::draw(&mut rng);
    tweak(&mut params);
    let rng: SimRng = Arc::new(Mutex::new(rng));
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let (locks_table, kv_table) = (format!("locks-{run}"), format!("kv-{run}"));

    let clock: SharedClock = Arc::new(TokioClock::starting_at(1_700_000_000_000));
    let memory = MemoryTransport::with_clock(clock.clone());
    create_table(&memory, &TableSpec::new(locks_table.clone(), "id")).await.expect("lock table");
    create_table(&memory, &TableSpec { sort_key: Some(KeyAttribute::new("sk", KeyType::S)), ..TableSpec::new(kv_table.clone(), "pk") }).await.expect("kv table");
    let checker = Checker::new(full_trace);
    checker.lock().unwrap().note(format!("seed {seed}: {params:?}"));
    let net = Net::new(memory, rng.clone(), checker.clone(), params.deadline, params.late_share);
    let world = Arc::new(World {
        net,
        checker: checker.clone(),
        rng,
        clock,
        start: Instant::now(),
        params: params.clone(),
        locks_table,
        kv_table,
        links: Mutex::new(Vec::new()),
        handoffs: Mutex::new(Vec::new()),
        background: Mutex::new(Vec::new()),
        stop: tokio::sync::watch::channel(false).0,
    });

    let mut clients = Vec::new();
    let kinds = [(params.engine_open, false, false), (params.engine_closed, false, true), (params.dlc_open, true, false), (params.dlc_closed, true, true)];
    for (count, dlc, fail_closed) in kinds {
        for _ in 0..count {
            let me = clients.len();
            clients.push(if dlc {
                tokio::spawn(dlc_client(world.clone(), me, fail_closed))
            } else {
                tokio::spawn(engine_client(world.clone(), me, fail_closed))
            });
        }
    }
    checker.lock().unwrap().use_semaphore(SEMAPHORE, params.permits);
    clients.push(tokio::spawn(observer_client(world.clone(), clients.len())));
    let chaos = tokio::spawn(chaos(world.clone()));
    let watch = tokio::spawn(watch_holders(world.clone()));

    // SIM_KEEP_GOING=1 runs on after a violation, to see what else a seed finds.
    let keep_going = std::env::var_os("SIM_KEEP_GOING").is_some();
    let failed = || !keep_going && checker.lock().unwrap().failed();
    let end = Instant::now() + params.duration;
    while Instant::now() < end && !failed() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    world.stop.send_replace(true);
    world.net.heal();
    checker.lock().unwrap().note("faults stop; clients finish".into());

    // Every client's waits are bounded (a few leases); ten minutes means one hangs.
    let give_up = Instant::now() + Duration::from_secs(600);
    let busy = |clients: &[tokio::task::JoinHandle<()>]| {
        clients.iter().any(|c| !c.is_finished()) || world.background.lock().unwrap().iter().any(|t| !t.is_finished())
    };
    while !failed() && busy(&clients) && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (me, client) in clients.into_iter().enumerate() {
        if !client.is_finished() {
            if !failed() {
                checker.lock().unwrap().violations.push(format!("client c{me} did not finish within 10 minutes after the faults stopped"));
            }
            client.abort();
        } else if let Err(e) = client.await {
            checker.lock().unwrap().violations.push(format!("client c{me} panicked: {e}"));
        }
    }
    chaos.abort();

    if !failed() {
        // Late requests land within two deadlines of their send, a write the core retries in
        // the background (an undo) waits at most UNDO_PAUSE between sends; after that and one
        // more lease every lock must be free or held by a live holder (there are none left).
        tokio::time::sleep(params.lease + params.deadline * 2 + UNDO_PAUSE + Duration::from_millis(100)).await;
        let mut items = BTreeMap::new();
        let permits = (0..params.permits).map(|k| format!("{SEMAPHORE}#{k}"));
        for id in params.open_ids.iter().chain(&params.closed_ids).cloned().chain(permits) {
            let item = world.peek_lock(&id).await;
            items.insert(id, item);
        }
        let mut counters = BTreeMap::new();
        let permits = (0..params.permits).map(|k| format!("{SEMAPHORE}#{k}"));
        let ids = params.open_ids.iter().chain(&params.closed_ids).cloned().chain(permits);
        let keys = ids.map(|id| format!("counter-{id}")).chain((0..2).map(|i| format!("counter-shared-{i}")));
        for key in keys {
            if let Some(value) = world.peek_counter(&key).await {
                counters.insert(key, value);
            }
        }
        checker.lock().unwrap().check_end(&items, &counters);
    }
    watch.abort();

    let checker = checker.lock().unwrap();
    Report {
        seed,
        trace_hash: checker.trace_hash(),
        violations: checker.violations.clone(),
        trace: checker.trace().cloned().collect(),
        stats: checker.stats.clone(),
        params,
    }
}

/// Cuts clients off now and then: for a while or for the rest of the faulty part of the run,
/// failing at once or hanging until the deadline.
async fn chaos(world: Arc<World>) {
    let Some(every) = world.params.cuts_every else { return };
    while !world.stopping() {
        let pause = Duration::from_micros(world.rng.lock().unwrap().random_range(0..2 * every.as_micros() as u64));
        tokio::time::sleep(pause).await;
        let links = world.links.lock().unwrap().clone();
        if links.is_empty() || world.stopping() {
            continue;
        }
        let holding = world.checker.lock().unwrap().holding_clients();
        let (victim, cut) = {
            let mut rng = world.rng.lock().unwrap();
            // Mostly a holder: a holder cut off from the table while others wait is where a
            // lease is most at risk.
            let victim = match holding.is_empty() || rng.random_bool(0.3) {
                true => links[rng.random_range(0..links.len())].client,
                false => holding[rng.random_range(0..holding.len())],
            };
            let lease_ms = world.params.lease.as_millis() as u64;
            let until = (!rng.random_bool(0.1)).then(|| Instant::now() + Duration::from_millis(rng.random_range(200..=2 * lease_ms)));
            (victim, Cut { until, hang: rng.random_bool(0.5) })
        };
        let how = if cut.hang { "hanging" } else { "refused" };
        let span = cut.until.map(|until| format!("{:?}", until - Instant::now())).unwrap_or_else(|| "the rest of the faults".into());
        world.checker.lock().unwrap().note(format!("c{victim} cut off ({how}) for {span}"));
        if let Some(link) = links.iter().find(|link| link.client == victim) {
            link.cut_off(cut);
        }
    }
}

/// Invariant 1 between events too: a lease can run out while nothing happens.
async fn watch_holders(world: Arc<World>) {
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        world.checker.lock().unwrap().check_holders();
    }
}
