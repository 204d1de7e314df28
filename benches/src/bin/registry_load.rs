//! Load for the built-in registry (`prpc-registry serve`), which runs as a process of its own:
//! how fast a change reaches its watchers, and what holding many registrations costs it.
//!
//! ```text
//! registry_load propagation ADDR [--watchers 1000] [--changes 100] [--spacing-ms 20] [--raw]
//!                    [--registry-pid PID]
//! registry_load scale ADDR --registry-pid PID [--services 100] [--instances 10000]
//!                    [--connections 100] [--ttl-s 30] [--settle-s 5] [--seconds 60]
//! ```
//!
//! `propagation`: `--watchers` watchers each follow one service through a `RegistryClient` of
//! their own (one TCP connection each, as that many client processes would), then a raw
//! `RegistryApiClient` on its own connection makes `--changes` changes to the service,
//! `--spacing-ms` apart, registering and deregistering in turn. Each change leaves a set no
//! other change leaves (`{c0}`, `{c0,c1}`, `{c1}`, `{c1,c2}`, ...), so a watcher knows from a
//! snapshot which change it reflects. A sample is the time from just before the change's call
//! was sent to when a watcher's `Watch::changed()` returned a snapshot reflecting it; a
//! watcher whose newest snapshot jumps past a change (the watch hands over the newest only)
//! takes that later time for the skipped change too. One line: `samples= p50_us= p90_us=
//! p99_us= max_us=`, then `last_watcher_p50_us=` (per change, the delay of its slowest
//! watcher; the median over changes), `skipped=` (samples taken from a later snapshot),
//! `missing=` (samples never taken), the changing call's round trip, and each side's CPU per
//! watcher event (the registry's when `--registry-pid` is given). With `--raw` each watcher
//! reads the raw watch stream (`RegistryApiClient::watch`, one connection each) and keeps the
//! set itself: what the registry alone delivers, without the client's `Discover` layers.
//!
//! `scale`: `--instances` registrations spread round robin over `--services` services, with a
//! `--ttl-s` TTL, registered from `--connections` connections, then heartbeats at a third of
//! the TTL, spread evenly: each connection renews its instances in turn, one every
//! (TTL / 3) / (instances per connection), the connections' schedules staggered. After
//! `--settle-s` seconds it measures the registry process (`--registry-pid`) for `--seconds`:
//! CPU from `/proc/PID/stat` (utime + stime of all its threads), RSS from `/proc/PID/status`
//! (VmRSS sampled every second, VmHWM at the end). One line: `cpu_pct=` (of one core),
//! `rss_max_mib= rss_end_mib= hwm_mib=`, the heartbeats/s achieved, failed calls, and the
//! registry's count of instances at the end.
//!
//! The load runs on one `current_thread` runtime; every loop is bounded and the program ends
//! by itself.

// One libc call (`sysconf`) with no safe wrapper in std.
#![allow(unsafe_code)]

use std::collections::{BTreeSet, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use prpc::discovery::{Discover, Endpoint, Watch};
use prpc_registry::{RegistryApiClient, RegistryClient, WatchEvent};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

const USAGE: &str = "usage:
  registry_load propagation ADDR [--watchers N] [--changes N] [--spacing-ms N] [--raw]
                     [--registry-pid PID]
  registry_load scale ADDR --registry-pid PID [--services N] [--instances N] [--connections N]
                     [--ttl-s N] [--settle-s N] [--seconds N]";

/// The service the propagation run changes and watches.
const WATCHED: &str = "bench.Propagation";
/// How long a watcher may take to connect and get its first snapshot.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after the last change the watchers may take to see it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Watchers connecting at once (the rest wait), so the registry's accept queue never overflows.
const CONNECTING_AT_ONCE: usize = 50;

fn main() -> ExitCode {
    let command = match Command::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("registry_load: {error}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let line = runtime.block_on(async move {
        match command {
            Command::Propagation(options) => propagation(options).await,
            Command::Scale(options) => scale(options).await,
        }
    });
    match line {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("registry_load: {error}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The command line.

enum Command {
    Propagation(PropagationOptions),
    Scale(ScaleOptions),
}

struct PropagationOptions {
    address: String,
    /// When given, the registry's CPU time over the changes is reported too.
    registry_pid: Option<u32>,
    /// Raw watch streams instead of `RegistryClient` watches.
    raw: bool,
    watchers: usize,
    changes: usize,
    spacing: Duration,
}

struct ScaleOptions {
    address: String,
    registry_pid: u32,
    services: usize,
    instances: usize,
    connections: usize,
    ttl: Duration,
    settle: Duration,
    measured: Duration,
}

impl Command {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
        let command = args.next().ok_or("no command")?;
        let address = args.next().ok_or("no registry address")?;
        let (switches, numbers): (Vec<String>, Vec<String>) = args.partition(|arg| arg == "--raw");
        let raw = !switches.is_empty();
        if raw && command != "propagation" {
            return Err("--raw is a propagation flag".to_owned());
        }
        let mut flags = Flags::parse(numbers.into_iter())?;
        let parsed = match command.as_str() {
            "propagation" => Command::Propagation(PropagationOptions {
                address,
                registry_pid: flags.pid()?,
                raw,
                watchers: flags.take("--watchers", 1_000)? as usize,
                changes: flags.take("--changes", 100)? as usize,
                spacing: Duration::from_millis(flags.take("--spacing-ms", 20)?),
            }),
            "scale" => Command::Scale(ScaleOptions {
                address,
                registry_pid: flags.pid()?.ok_or("scale needs --registry-pid PID")?,
                services: flags.take("--services", 100)? as usize,
                instances: flags.take("--instances", 10_000)? as usize,
                connections: flags.take("--connections", 100)? as usize,
                ttl: Duration::from_secs(flags.take("--ttl-s", 30)?),
                settle: Duration::from_secs(flags.take("--settle-s", 5)?),
                measured: Duration::from_secs(flags.take("--seconds", 60)?),
            }),
            other => return Err(format!("unknown command {other}")),
        };
        flags.finish()?;
        Ok(parsed)
    }
}

/// `--name number` pairs, taken one by one; any left over is an error.
struct Flags(HashMap<String, u64>);

impl Flags {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Flags, String> {
        let mut flags = HashMap::new();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = value
                .parse()
                .map_err(|_| format!("{flag} {value}: not a number"))?;
            flags.insert(flag, number);
        }
        Ok(Flags(flags))
    }

    fn take(&mut self, flag: &str, default: u64) -> Result<u64, String> {
        match self.0.remove(flag) {
            Some(0) => Err(format!("{flag} must be above 0")),
            Some(value) => Ok(value),
            None => Ok(default),
        }
    }

    fn pid(&mut self) -> Result<Option<u32>, String> {
        match self.0.remove("--registry-pid") {
            Some(pid) => u32::try_from(pid)
                .map(Some)
                .map_err(|_| format!("--registry-pid {pid}: not a process id")),
            None => Ok(None),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self.0.keys().next() {
            Some(flag) => Err(format!("unknown flag {flag}")),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Change propagation.

/// When each change's call was about to be sent.
type SentTimes = Arc<Vec<OnceLock<Instant>>>;

/// What one watcher saw: (change, delay) samples and how many it took from a later snapshot.
#[derive(Default)]
struct Seen {
    samples: Vec<(usize, Duration)>,
    skipped: usize,
}

async fn propagation(options: PropagationOptions) -> Result<String, String> {
    let ready = ready_watchers(&options.address, options.watchers, options.raw).await?;
    let sent: SentTimes = Arc::new((0..options.changes).map(|_| OnceLock::new()).collect());
    let mut watchers = JoinSet::new();
    for watcher in ready {
        watchers.spawn(follow_changes(watcher, options.changes, sent.clone()));
    }
    let cpu = CpuClock::start(options.registry_pid)?;
    let round_trips = make_changes(&options, &sent).await?;
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    let mut seen = Vec::with_capacity(options.watchers);
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, watchers.join_next()).await {
        seen.push(joined.map_err(|error| format!("a watcher failed: {error}"))?);
    }
    watchers.abort_all();
    // CPU per watcher event: each change reaches every watcher once.
    let events = (options.watchers * options.changes) as f64;
    let cpu = cpu.per(events, "us_per_event")?;
    Ok(format!(
        "{} {cpu}",
        propagation_report(&options, &seen, &round_trips)
    ))
}

/// `count` watchers of [`WATCHED`], each on a connection of its own, each holding its first
/// set (the empty one).
async fn ready_watchers(address: &str, count: usize, raw: bool) -> Result<Vec<Watcher>, String> {
    let mut watchers = Vec::with_capacity(count);
    let mut connecting = JoinSet::new();
    for _ in 0..count {
        if connecting.len() == CONNECTING_AT_ONCE {
            watchers.push(joined_watcher(connecting.join_next().await)?);
        }
        let address = address.to_owned();
        connecting.spawn(async move {
            tokio::time::timeout(READY_TIMEOUT, Watcher::start(&address, raw))
                .await
                .map_err(|_| format!("no first set within {READY_TIMEOUT:?}"))?
        });
    }
    while let Some(joined) = connecting.join_next().await {
        watchers.push(joined_watcher(Some(joined))?);
    }
    Ok(watchers)
}

fn joined_watcher(
    joined: Option<Result<Result<Watcher, String>, tokio::task::JoinError>>,
) -> Result<Watcher, String> {
    match joined {
        Some(Ok(result)) => result,
        Some(Err(error)) => Err(format!("a watcher failed to start: {error}")),
        None => Err("no watcher was starting".to_owned()),
    }
}

/// One watcher of [`WATCHED`]: through `Discover` (a `RegistryClient` of its own, what an
/// application holds), or the raw watch stream with the set kept by hand (what the
/// registry alone delivers, without the client's layers).
enum Watcher {
    Discover(Watch),
    Raw {
        events: prpc::Streaming<WatchEvent>,
        set: BTreeSet<String>,
    },
}

impl Watcher {
    /// A watcher that holds its first set, which must be empty.
    async fn start(address: &str, raw: bool) -> Result<Watcher, String> {
        let mut watcher = if raw {
            let api = RegistryApiClient::connect(address)
                .await
                .map_err(|error| format!("connecting a watcher: {error}"))?;
            let events = api
                .watch(WATCHED.to_owned())
                .await
                .map_err(|error| format!("watching: {error}"))?;
            Watcher::Raw {
                events,
                set: BTreeSet::new(),
            }
        } else {
            let client = RegistryClient::new(address).map_err(|error| error.to_string())?;
            Watcher::Discover(client.watch(WATCHED))
        };
        let first = match &mut watcher {
            Watcher::Discover(watch) => watch
                .ready()
                .await
                .map_err(|error| error.to_string())?
                .len(),
            Watcher::Raw { .. } => {
                watcher.next().await?;
                watcher.len()
            }
        };
        if first != 0 {
            return Err(format!("{WATCHED} is not empty ({first} instances)"));
        }
        Ok(watcher)
    }

    /// Waits for the next set; the change it reflects, if it is one of theirs.
    async fn next(&mut self) -> Result<Option<usize>, String> {
        match self {
            Watcher::Discover(watch) => {
                let snapshot = watch.changed().await.map_err(|error| error.to_string())?;
                Ok(change_of(
                    snapshot.endpoints.iter().map(|e| e.instance.as_str()),
                ))
            }
            Watcher::Raw { events, set } => {
                let event = events
                    .message()
                    .await
                    .map_err(|error| error.to_string())?
                    .ok_or("the registry ended the watch")?;
                if event.reset {
                    set.clear();
                }
                for instance in event.remove {
                    set.remove(&instance);
                }
                set.extend(event.upsert.into_iter().map(|endpoint| endpoint.instance));
                Ok(change_of(set.iter().map(String::as_str)))
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Watcher::Discover(watch) => watch.current().len(),
            Watcher::Raw { set, .. } => set.len(),
        }
    }
}

/// The instance id registered by the change that first adds it.
fn instance_id(index: usize) -> String {
    format!("c{index}")
}

/// Makes the changes, `spacing` apart; returns each call's round trip.
async fn make_changes(
    options: &PropagationOptions,
    sent: &SentTimes,
) -> Result<Vec<Duration>, String> {
    let api = RegistryApiClient::connect(options.address.as_str())
        .await
        .map_err(|error| format!("connecting the changer: {error}"))?;
    let mut tokens = HashMap::new();
    let mut round_trips = Vec::with_capacity(options.changes);
    let mut ticks = tokio::time::interval(options.spacing);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for change in 0..options.changes {
        ticks.tick().await;
        // Change 0 registers c0; an odd change registers the next instance; an even one
        // withdraws the older of the two registered.
        let (register, index) = match change {
            0 => (true, 0),
            odd if odd % 2 == 1 => (true, odd.div_ceil(2)),
            even => (false, even / 2 - 1),
        };
        let instance = instance_id(index);
        let started = Instant::now();
        let _ = sent[change].set(started);
        if register {
            let endpoint = Endpoint::new(format!("10.0.{}.{}:7000", index / 250, index % 250))
                .map_err(|error| error.to_string())?
                .instance(instance.clone());
            let granted = api
                .register(WATCHED.to_owned(), endpoint, 60_000, None)
                .await
                .map_err(|error| format!("registering {instance}: {error}"))?;
            tokens.insert(instance, granted.token);
        } else {
            let token = tokens.remove(&instance).ok_or("no token")?;
            api.deregister(WATCHED.to_owned(), instance.clone(), token)
                .await
                .map_err(|error| format!("deregistering {instance}: {error}"))?;
        }
        round_trips.push(started.elapsed());
    }
    Ok(round_trips)
}

/// The change whose set these instances are, if it is one: `{cj}` is change 2j, `{cj, cj+1}` is
/// change 2j+1.
fn change_of<'a>(instances: impl Iterator<Item = &'a str>) -> Option<usize> {
    let index = |instance: &str| instance.strip_prefix('c')?.parse::<usize>().ok();
    let mut indices: Vec<usize> = instances.map(index).collect::<Option<_>>()?;
    indices.sort_unstable();
    match indices[..] {
        [only] => Some(2 * only),
        [first, second] if second == first + 1 => Some(2 * first + 1),
        _ => None,
    }
}

/// One watcher: waits for snapshots until it has seen the last change.
async fn follow_changes(mut watcher: Watcher, changes: usize, sent: SentTimes) -> Seen {
    let mut seen = Seen::default();
    let mut next = 0;
    while next < changes {
        let Ok(reached) = watcher.next().await else {
            break;
        };
        let now = Instant::now();
        let Some(reached) = reached else {
            continue;
        };
        for change in next..=reached.min(changes - 1) {
            if let Some(started) = sent[change].get() {
                seen.samples
                    .push((change, now.saturating_duration_since(*started)));
            }
        }
        seen.skipped += reached.saturating_sub(next);
        next = next.max(reached + 1);
    }
    seen
}

fn propagation_report(options: &PropagationOptions, seen: &[Seen], trips: &[Duration]) -> String {
    let mut delays = histogram();
    let mut slowest = vec![Duration::ZERO; options.changes];
    let mut skipped = 0;
    for watcher in seen {
        skipped += watcher.skipped;
        for &(change, delay) in &watcher.samples {
            record(&mut delays, delay);
            slowest[change] = slowest[change].max(delay);
        }
    }
    let mut calls = histogram();
    for &trip in trips {
        record(&mut calls, trip);
    }
    let mut last = histogram();
    for &delay in &slowest {
        record(&mut last, delay);
    }
    let expected = (options.watchers * options.changes) as u64;
    format!(
        "watchers={} via={} changes={} spacing_ms={} samples={} p50_us={} p90_us={} p99_us={} max_us={} \
         last_watcher_p50_us={} skipped={} missing={} call_p50_us={} call_p99_us={}",
        options.watchers,
        if options.raw { "raw" } else { "discover" },
        options.changes,
        options.spacing.as_millis(),
        delays.len(),
        delays.value_at_quantile(0.5),
        delays.value_at_quantile(0.9),
        delays.value_at_quantile(0.99),
        delays.max(),
        last.value_at_quantile(0.5),
        skipped,
        expected.saturating_sub(delays.len()),
        calls.value_at_quantile(0.5),
        calls.value_at_quantile(0.99),
    )
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

fn record(histogram: &mut Histogram<u64>, delay: Duration) {
    let micros = delay.as_micros().clamp(1, 600_000_000) as u64;
    histogram.record(micros).expect("within bounds");
}

// ---------------------------------------------------------------------------------------------
// Scale.

/// One registration the load holds: service, instance id, token.
type Held = (String, String, String);

/// Calls the load made and how many failed.
#[derive(Default)]
struct Counts {
    heartbeats: AtomicU64,
    failures: AtomicU64,
}

async fn scale(options: ScaleOptions) -> Result<String, String> {
    let mut apis = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        let api = RegistryApiClient::connect(options.address.as_str())
            .await
            .map_err(|error| format!("connecting: {error}"))?;
        apis.push(api);
    }
    let registering = Instant::now();
    let held = register_all(&options, &apis).await?;
    let registered_in = registering.elapsed();
    let counts = Arc::new(Counts::default());
    let mut heartbeats = start_heartbeats(&options, apis.clone(), held, &counts);

    tokio::time::sleep(options.settle).await;
    let measured = measure(&options, &counts).await?;
    heartbeats.abort_all();
    let summaries = apis[0]
        .services()
        .await
        .map_err(|error| format!("services: {error}"))?;
    let held_now: u64 = summaries.iter().map(|summary| summary.instances).sum();
    Ok(format!(
        "instances={} services={} connections={} ttl_s={} seconds={} registered_in_ms={} {} \
         registry_instances_end={} registry_services_end={}",
        options.instances,
        options.services,
        options.connections,
        options.ttl.as_secs(),
        options.measured.as_secs(),
        registered_in.as_millis(),
        measured,
        held_now,
        summaries.len(),
    ))
}

/// Registers every instance, each connection its share in turn, the connections at once.
async fn register_all(
    options: &ScaleOptions,
    apis: &[RegistryApiClient],
) -> Result<Vec<Vec<Held>>, String> {
    let mut registering = JoinSet::new();
    for (connection, api) in apis.iter().enumerate() {
        let api = api.clone();
        let (services, ttl_ms) = (options.services, options.ttl.as_millis() as u64);
        let mine: Vec<usize> = (connection..options.instances)
            .step_by(options.connections)
            .collect();
        registering.spawn(async move {
            let mut held = Vec::with_capacity(mine.len());
            for index in mine {
                let service = format!("bench.Scale{}", index % services);
                let address = format!(
                    "10.{}.{}.{}:7000",
                    index / 62_500,
                    index / 250 % 250,
                    index % 250
                );
                let endpoint = Endpoint::new(address)
                    .map_err(|error| error.to_string())?
                    .instance(format!("instance-{index}"))
                    .zone("zone-a")
                    .tag("version", "1");
                let instance = endpoint.instance.clone();
                let granted = api
                    .register(service.clone(), endpoint, ttl_ms, None)
                    .await
                    .map_err(|error| format!("registering {instance}: {error}"))?;
                held.push((service, instance, granted.token));
            }
            Ok::<_, String>(held)
        });
    }
    let mut all = Vec::with_capacity(apis.len());
    while let Some(joined) = registering.join_next().await {
        all.push(joined.map_err(|error| error.to_string())??);
    }
    Ok(all)
}

/// Heartbeats every registration once a third of the TTL, evenly spread: each connection
/// renews its registrations in turn, its schedule offset from the others'.
fn start_heartbeats(
    options: &ScaleOptions,
    apis: Vec<RegistryApiClient>,
    held: Vec<Vec<Held>>,
    counts: &Arc<Counts>,
) -> JoinSet<()> {
    let period = options.ttl / 3;
    let start = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    let connections = apis.len() as u32;
    for (connection, (api, mine)) in apis.into_iter().zip(held).enumerate() {
        if mine.is_empty() {
            continue;
        }
        let every = period / mine.len() as u32;
        let first = start + every * connection as u32 / connections;
        let counts = counts.clone();
        tasks.spawn(async move {
            let mut ticks = tokio::time::interval_at(first, every);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            for (service, instance, token) in mine.iter().cycle() {
                ticks.tick().await;
                let renewed = api
                    .heartbeat(service.clone(), instance.clone(), token.clone())
                    .await;
                counts.heartbeats.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = renewed {
                    counts.failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("heartbeat of {instance}: {error}");
                }
            }
        });
    }
    tasks
}

/// The registry's CPU and memory, and the load's own CPU, over the measured window.
async fn measure(options: &ScaleOptions, counts: &Counts) -> Result<String, String> {
    let pid = options.registry_pid;
    let ticks_per_second = clock_ticks_per_second();
    let cpu_before = registry_cpu_ticks(pid)?;
    let own_before = prpc_benches::counters::process_cpu_time();
    let heartbeats_before = counts.heartbeats.load(Ordering::Relaxed);
    let failures_before = counts.failures.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut rss_max = 0;
    let mut seconds = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() < options.measured {
        seconds.tick().await;
        rss_max = rss_max.max(registry_memory_kib(pid, "VmRSS:")?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (registry_cpu_ticks(pid)? - cpu_before) as f64 / ticks_per_second;
    let own = (prpc_benches::counters::process_cpu_time() - own_before).as_secs_f64();
    let heartbeats = counts.heartbeats.load(Ordering::Relaxed) - heartbeats_before;
    let failures = counts.failures.load(Ordering::Relaxed) - failures_before;
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    Ok(format!(
        "cpu_pct={:.2} cpu_s={cpu:.2} rss_max_mib={} rss_end_mib={} hwm_mib={} \
         heartbeats_per_s={:.0} failures={failures} load_cpu_pct={:.2}",
        100.0 * cpu / elapsed,
        mib(rss_max),
        mib(registry_memory_kib(pid, "VmRSS:")?),
        mib(registry_memory_kib(pid, "VmHWM:")?),
        heartbeats as f64 / elapsed,
        100.0 * own / elapsed,
    ))
}

/// CPU time of this process and, when its pid is known, of the registry, from a start.
struct CpuClock {
    registry_pid: Option<u32>,
    registry_ticks: u64,
    own: Duration,
    started: Instant,
}

impl CpuClock {
    fn start(registry_pid: Option<u32>) -> Result<CpuClock, String> {
        Ok(CpuClock {
            registry_pid,
            registry_ticks: registry_pid
                .map(registry_cpu_ticks)
                .transpose()?
                .unwrap_or(0),
            own: prpc_benches::counters::process_cpu_time(),
            started: Instant::now(),
        })
    }

    /// `registry_cpu_pct= load_cpu_pct=` (of one core) since the start, and each side's CPU
    /// microseconds per `count` (as `registry_UNIT= load_UNIT=`).
    fn per(&self, count: f64, unit: &str) -> Result<String, String> {
        let elapsed = self.started.elapsed().as_secs_f64();
        let own = (prpc_benches::counters::process_cpu_time() - self.own).as_secs_f64();
        let mut line = format!(
            "load_cpu_pct={:.1} load_{unit}={:.2}",
            100.0 * own / elapsed,
            own * 1e6 / count
        );
        if let Some(pid) = self.registry_pid {
            let ticks = registry_cpu_ticks(pid)? - self.registry_ticks;
            let registry = ticks as f64 / clock_ticks_per_second();
            line = format!(
                "registry_cpu_pct={:.1} registry_{unit}={:.2} {line}",
                100.0 * registry / elapsed,
                registry * 1e6 / count
            );
        }
        Ok(line)
    }
}

/// utime + stime of a process, all its threads, in clock ticks (`/proc/PID/stat`).
fn registry_cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|error| format!("/proc/{pid}/stat: {error}"))?;
    // The command name (field 2) is in parentheses and may hold spaces; fields count on from
    // the last ')'. utime and stime are fields 14 and 15, the 12th and 13th after it.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |at: usize| -> Result<u64, String> {
        fields
            .get(at)
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {}", at + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// A `kB` line of `/proc/PID/status` (VmRSS, VmHWM), in KiB.
fn registry_memory_kib(pid: u32, key: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|error| format!("/proc/{pid}/status: {error}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status: no {key}"))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a configuration value; it takes no pointers.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}
