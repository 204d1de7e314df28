//! The balanced client (`prpc::cluster::Cluster`, issue 15): what it costs over a direct
//! client, and what a server's death costs its callers. `benches/cluster_failover.sh` runs both.
//!
//! ```text
//! cluster_bench overhead [--runtime current|multi] [--repeats N] [--seconds S] [--warmup S]
//!                        [--in-flight N] [--size BYTES] [--balance NAME] [--server-cpu LIST]
//! cluster_bench failover [--runtime current|multi] [--seconds S] [--kill-at S]
//!                        [--in-flight N] [--size BYTES] [--poll-ms MS] [--balance NAME]
//! cluster_bench server [--index N] [--runtime current|multi]   # what the others start
//! ```
//!
//! **overhead** starts one server (a child process, pinned with `taskset` to
//! `--server-cpu`, core 0 by default) and opens two clients of it in this process: a direct
//! `prpc::Client` on one connection (as `macro_echo` does) and a `Cluster` over a
//! `StaticDiscover` of that one endpoint (`round_robin` by default), each under the same
//! generated `EchoClient`, default format (MessagePack). It then runs them in alternation, the
//! order swapped every repeat, each run the peer comparison's load (`driver::measure`:
//! `--in-flight` callers, each sending the next call when the previous returns) and prints
//! each run's line, then the medians and the ratio cluster/direct. `--runtime current` is a
//! `current_thread` runtime on both sides; `multi` a 2-worker `multi_thread` runtime in this
//! process and a 1-worker one in the server's.
//!
//! **failover** starts three servers (child processes, unpinned), calls them through a
//! `Cluster` (`--balance`, `round_robin` by default; default settings otherwise) with an
//! idempotent method (`whoami`: the 64 B payload in, the server's index out) from
//! `--in-flight` callers for `--seconds`, and SIGKILLs server 2 at `--kill-at`. Meanwhile it
//! polls `cluster.endpoint_stats()` every `--poll-ms`. It prints the failed calls, each
//! server's answers per 250 ms, and for the dead endpoint: when its breaker opened (its
//! `on_state_change` hook), and when the attempts it had finished (its breaker's
//! `total_successes + total_failures`, which count every attempt picked for it, dials that
//! failed included) last grew, both counted from the kill.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use prpc::cluster::{BreakerConfig, BreakerState, Cluster};
use prpc::discovery::{Endpoint, StaticDiscover};
use prpc::{Channel, Client, Server};
use prpc_benches::counters::process_cpu_time;
use prpc_benches::driver::{self, Caller};
use prpc_benches::options::{Options, Payload, Role, RuntimeKind};

/// `macro_echo`'s service, and one idempotent method that names the server.
#[prpc::service]
pub trait Echo {
    /// The payload, back.
    async fn echo(&self, payload: Bytes) -> Bytes;
    /// The server's CPU time so far, in nanoseconds.
    async fn cpu(&self) -> u64;
    /// The server's index (the payload only travels).
    #[prpc(idempotent)]
    async fn whoami(&self, payload: Bytes) -> u32;
}

struct Echoer {
    index: u32,
}

impl Echo for Echoer {
    async fn echo(&self, payload: Bytes) -> Bytes {
        payload
    }

    async fn cpu(&self) -> u64 {
        process_cpu_time().as_nanos() as u64
    }

    async fn whoami(&self, _payload: Bytes) -> u32 {
        self.index
    }
}

const USAGE: &str = "usage: cluster_bench overhead|failover|server [--flag value ...] \
(see the program's documentation)";

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let flags = match Flags::parse(args) {
        Ok(flags) => flags,
        Err(error) => fail(&error),
    };
    let runtime = flags.text("--runtime", "current");
    if runtime != "current" && runtime != "multi" {
        fail("--runtime is current or multi");
    }
    match mode.as_str() {
        "server" => {
            let index = flags.number("--index", 0.0) as u32;
            let kind = if runtime == "current" {
                RuntimeKind::CurrentThread
            } else {
                RuntimeKind::MultiThread
            };
            kind.run(serve(index));
        }
        "overhead" => {
            let settings = Overhead {
                repeats: flags.number("--repeats", 5.0) as usize,
                seconds: flags.number("--seconds", 2.0),
                warmup: flags.number("--warmup", 0.5),
                in_flight: flags.number("--in-flight", 128.0) as usize,
                size: flags.number("--size", 64.0) as usize,
                balance: flags.text("--balance", "round_robin"),
                runtime: runtime.clone(),
            };
            let server_cpu = flags.text("--server-cpu", "0");
            let mut servers = Servers::start(1, &runtime, Some(&server_cpu));
            let addr = servers.addrs[0].clone();
            client_runtime(&runtime, overhead(settings, addr));
            servers.stop();
        }
        "failover" => {
            let settings = Failover {
                runtime: runtime.clone(),
                seconds: flags.number("--seconds", 6.0),
                kill_at: flags.number("--kill-at", 2.0),
                in_flight: flags.number("--in-flight", 128.0) as usize,
                size: flags.number("--size", 64.0) as usize,
                poll: Duration::from_secs_f64(flags.number("--poll-ms", 10.0) / 1000.0),
                balance: flags.text("--balance", "round_robin"),
            };
            let mut servers = Servers::start(3, &runtime, None);
            let victim = servers.children.pop().expect("three servers");
            let addrs = servers.addrs.clone();
            client_runtime(&runtime, failover(settings, addrs, victim));
            servers.stop();
        }
        _ => fail(&format!("unknown mode {mode:?}")),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("{message}\n{USAGE}");
    std::process::exit(2);
}

/// `--flag value` pairs.
struct Flags(HashMap<String, String>);

impl Flags {
    fn parse(args: impl Iterator<Item = String>) -> Result<Flags, String> {
        let mut args = args.peekable();
        let mut flags = HashMap::new();
        while let Some(flag) = args.next() {
            if !flag.starts_with("--") {
                return Err(format!("unexpected argument {flag}"));
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            flags.insert(flag, value);
        }
        Ok(Flags(flags))
    }

    fn text(&self, flag: &str, default: &str) -> String {
        self.0
            .get(flag)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    fn number(&self, flag: &str, default: f64) -> f64 {
        match self.0.get(flag) {
            None => default,
            Some(value) => match value.parse::<f64>() {
                Ok(number) if number >= 0.0 && number.is_finite() => number,
                _ => fail(&format!("{flag} takes a number, not {value}")),
            },
        }
    }
}

/// The client's runtime: `current_thread`, or `multi_thread` with 2 workers (the future
/// spawned onto them, as `RuntimeKind::run` does).
fn client_runtime<F>(runtime: &str, future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if runtime == "current" {
        return RuntimeKind::CurrentThread.run(future);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(async move { tokio::spawn(future).await.expect("main task panicked") })
}

async fn serve(index: u32) {
    let server = Server::builder()
        .add_service(EchoServer::new(Echoer { index }))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let bound = server.local_addr().to_string();
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening {}", bound.trim_start_matches("tcp://"));
        let _ = stdout.flush();
    }
    server.serve().await.expect("serve");
}

/// Server processes: this program re-run as `server`, killed when dropped.
struct Servers {
    children: Vec<Child>,
    addrs: Vec<String>,
}

impl Servers {
    fn start(count: u32, runtime: &str, cpu: Option<&str>) -> Servers {
        let exe = std::env::current_exe().expect("own path");
        let mut servers = Servers {
            children: Vec::new(),
            addrs: Vec::new(),
        };
        for index in 0..count {
            let mut command = match cpu {
                Some(cpu) => {
                    let mut command = Command::new("taskset");
                    command.arg("-c").arg(cpu).arg(&exe);
                    command
                }
                None => Command::new(&exe),
            };
            let mut child = command
                .args([
                    "server",
                    "--index",
                    &index.to_string(),
                    "--runtime",
                    runtime,
                ])
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a server");
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            let addr = lines
                .by_ref()
                .map_while(Result::ok)
                .find_map(|line| line.strip_prefix("listening ").map(str::to_owned))
                .expect("the server did not start");
            std::thread::spawn(move || lines.for_each(drop));
            servers.children.push(child);
            servers.addrs.push(addr);
        }
        servers
    }

    fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A generated client over any channel, as the peer comparison's driver calls it.
#[derive(Clone)]
struct MacroCaller<C> {
    client: EchoClient<C>,
}

impl<C: Channel + Clone> Caller for MacroCaller<C> {
    async fn echo(&self, body: Bytes) -> usize {
        self.client.echo(body).await.expect("echo call").len()
    }

    async fn server_cpu(&self) -> Duration {
        Duration::from_nanos(self.client.cpu().await.expect("cpu call"))
    }
}

struct Overhead {
    repeats: usize,
    seconds: f64,
    warmup: f64,
    in_flight: usize,
    size: usize,
    balance: String,
    runtime: String,
}

async fn overhead(settings: Overhead, addr: String) {
    let options = Options {
        role: Role::Client,
        addr: addr.clone(),
        connections: 1,
        in_flight: settings.in_flight,
        size: settings.size,
        payload: Payload::Bytes,
        duration: Duration::from_secs_f64(settings.seconds),
        warmup: Duration::from_secs_f64(settings.warmup),
        runtime: RuntimeKind::CurrentThread,
    };
    let (stream, socket) = driver::connect(&addr).await;
    let direct = MacroCaller {
        client: EchoClient::new(Client::builder().from_stream(stream)),
    };
    let discovery = StaticDiscover::new([Endpoint::new(addr.as_str()).expect("address")]);
    let algorithm = settings.balance.parse().expect("a balancing algorithm");
    let cluster = MacroCaller {
        client: EchoClient::new(
            Cluster::builder()
                .balance(algorithm)
                .build(&discovery, "Echo"),
        ),
    };
    println!(
        "overhead: runtime={} balance={} in_flight={} size={} {} repeats of {} s (+{} s warm-up)",
        settings.runtime,
        settings.balance,
        settings.in_flight,
        settings.size,
        settings.repeats,
        settings.seconds,
        settings.warmup
    );
    let mut lines: HashMap<&str, Vec<HashMap<String, f64>>> = HashMap::new();
    for repeat in 0..settings.repeats {
        for turn in 0..2 {
            let name = if (repeat + turn) % 2 == 0 {
                "direct"
            } else {
                "cluster"
            };
            let report = if name == "direct" {
                driver::measure(
                    &options,
                    vec![direct.clone()],
                    vec![socket.try_clone().expect("dup")],
                )
                .await
            } else {
                driver::measure(&options, vec![cluster.clone()], Vec::new()).await
            }
            .to_string();
            println!("client={name} repeat={} {report}", repeat + 1);
            let fields = report
                .split_whitespace()
                .filter_map(|field| field.split_once('='))
                .filter_map(|(key, value)| Some((key.to_owned(), value.parse().ok()?)))
                .collect();
            lines.entry(name).or_default().push(fields);
        }
    }
    let median = |name: &str, key: &str| {
        let mut values: Vec<f64> = lines[name].iter().map(|fields| fields[key]).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let range = |name: &str, key: &str| {
        let values = lines[name].iter().map(|fields| fields[key]);
        let min = values.clone().fold(f64::INFINITY, f64::min);
        let max = values.fold(f64::NEG_INFINITY, f64::max);
        format!("{min:.0}–{max:.0}")
    };
    for key in [
        "calls/s",
        "p50_us",
        "p99_us",
        "client_us_per_call",
        "server_us_per_call",
    ] {
        let (direct, cluster) = (median("direct", key), median("cluster", key));
        println!(
            "median {key}: direct={direct:.3} cluster={cluster:.3} cluster/direct={:.3}",
            cluster / direct
        );
    }
    println!(
        "calls/s range: direct {} cluster {}",
        range("direct", "calls/s"),
        range("cluster", "calls/s")
    );
}

struct Failover {
    runtime: String,
    /// The balancing algorithm, by name (`round_robin`, `p2c`, ...).
    balance: String,
    seconds: f64,
    kill_at: f64,
    in_flight: usize,
    size: usize,
    poll: Duration,
}

/// What the callers saw.
struct Tally {
    /// Answers per server per 250 ms window since the start.
    windows: Vec<[u64; 3]>,
    /// The last answer from each server, since the start.
    last_answer: [Option<Duration>; 3],
    failed: u64,
    first_error: Option<String>,
    latencies: Histogram<u64>,
}

/// One poll of the dead endpoint's stats that differed from the one before.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    attempts: u64,
    state: BreakerState,
    connected: bool,
    backing_off: bool,
}

const WINDOW: Duration = Duration::from_millis(250);

async fn failover(settings: Failover, addrs: Vec<String>, mut victim: Child) {
    let endpoints: Vec<Endpoint> = addrs
        .iter()
        .enumerate()
        .map(|(index, addr)| {
            Endpoint::new(addr.as_str())
                .expect("address")
                .instance(format!("s{index}"))
        })
        .collect();
    let discovery = StaticDiscover::new(endpoints);
    let started = Instant::now();
    let changes: Arc<Mutex<Vec<(Duration, BreakerState, BreakerState)>>> = Arc::default();
    let hook = changes.clone();
    let breaker = BreakerConfig::default().on_state_change(move |change| {
        hook.lock().unwrap_or_else(PoisonError::into_inner).push((
            started.elapsed(),
            change.from,
            change.to,
        ));
    });
    let cluster = Cluster::builder()
        .balance(settings.balance.parse().expect("a balancing algorithm"))
        .breaker(breaker)
        .build(&discovery, "Echo");
    let client = EchoClient::new(cluster.clone());
    let body = Bytes::from(vec![0x5a; settings.size]);
    let windows = (settings.seconds / WINDOW.as_secs_f64()).ceil() as usize + 8;
    let tally = Arc::new(Mutex::new(Tally {
        windows: vec![[0; 3]; windows],
        last_answer: [None; 3],
        failed: 0,
        first_error: None,
        latencies: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram"),
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..settings.in_flight)
        .map(|_| {
            let (client, body, tally, stop) =
                (client.clone(), body.clone(), tally.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let result = client.whoami(body.clone()).await;
                    let now = started.elapsed();
                    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                    tally
                        .latencies
                        .saturating_record(sent.elapsed().as_nanos() as u64);
                    match result {
                        Ok(index) => {
                            let index = (index as usize).min(2);
                            let window = (now.as_nanos() / WINDOW.as_nanos()) as usize;
                            if let Some(counts) = tally.windows.get_mut(window) {
                                counts[index] += 1;
                            }
                            tally.last_answer[index] = Some(now);
                        }
                        Err(error) => {
                            tally.failed += 1;
                            tally.first_error.get_or_insert_with(|| error.to_string());
                        }
                    }
                }
            })
        })
        .collect();
    // The dead endpoint's stats, whenever a poll saw them change.
    let poller = {
        let (cluster, stop) = (cluster.clone(), stop.clone());
        let poll = settings.poll;
        tokio::spawn(async move {
            let mut seen: Vec<(Duration, Seen)> = Vec::new();
            let mut ticks = tokio::time::interval(poll);
            while !stop.load(Ordering::Relaxed) {
                ticks.tick().await;
                let now = started.elapsed();
                let Some(stats) = cluster
                    .endpoint_stats()
                    .into_iter()
                    .find(|stats| stats.endpoint.instance == "s2")
                else {
                    continue;
                };
                let current = Seen {
                    attempts: stats.breaker.total_successes + stats.breaker.total_failures,
                    state: stats.breaker.state,
                    connected: stats.connected,
                    backing_off: stats.backing_off,
                };
                if seen.last().is_none_or(|(_, last)| *last != current) {
                    seen.push((now, current));
                }
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_secs_f64(settings.kill_at)).await;
    victim.kill().expect("SIGKILL the victim");
    let killed = started.elapsed();
    let rest = Duration::from_secs_f64(settings.seconds - settings.kill_at);
    tokio::time::sleep(rest).await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.expect("caller task panicked");
    }
    let elapsed = started.elapsed();
    let seen = poller.await.expect("poller panicked");
    let _ = victim.wait();

    let tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    let answered: u64 = tally.windows.iter().flatten().sum();
    let ms = |at: Duration| (at.as_secs_f64() - killed.as_secs_f64()) * 1000.0;
    println!(
        "failover: runtime={} {} over 3 servers, in_flight={} size={} {:.1} s, \
         server 2 SIGKILLed at {:.3} s",
        settings.runtime,
        settings.balance,
        settings.in_flight,
        settings.size,
        elapsed.as_secs_f64(),
        killed.as_secs_f64()
    );
    println!(
        "calls answered={answered} failed={} calls/s={:.0} p50_us={:.1} p99_us={:.1} \
         p999_us={:.1} max_us={:.1}",
        tally.failed,
        (answered + tally.failed) as f64 / elapsed.as_secs_f64(),
        tally.latencies.value_at_quantile(0.5) as f64 / 1000.0,
        tally.latencies.value_at_quantile(0.99) as f64 / 1000.0,
        tally.latencies.value_at_quantile(0.999) as f64 / 1000.0,
        tally.latencies.max() as f64 / 1000.0,
    );
    if let Some(error) = &tally.first_error {
        println!("first error: {error}");
    }
    if let Some(last) = tally.last_answer[2] {
        println!(
            "last answer from server 2: {:+.1} ms from the kill",
            ms(last)
        );
    }
    for (at, from, to) in changes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        println!(
            "breaker change (hook): {from:?} -> {to:?} at {:+.1} ms",
            ms(*at)
        );
    }
    let before_kill = seen
        .iter()
        .rev()
        .find(|(at, _)| *at <= killed)
        .map_or(0, |(_, seen)| seen.attempts);
    let last_attempt = seen
        .iter()
        .zip(seen.iter().skip(1))
        .filter(|((_, before), (_, after))| after.attempts != before.attempts)
        .map(|(_, (at, _))| *at)
        .rfind(|at| *at > killed);
    let final_attempts = seen.last().map_or(0, |(_, seen)| seen.attempts);
    println!(
        "server 2 attempts finished: {before_kill} by the kill, {} after it",
        final_attempts - before_kill
    );
    match last_attempt {
        Some(at) => println!(
            "no new attempts on server 2 from {:+.1} ms after the kill (the last poll whose \
             finished attempts grew; polls every {} ms)",
            ms(at),
            settings.poll.as_millis()
        ),
        None => println!("no attempt on server 2 finished after the kill"),
    }
    println!("server 2 as polled (ms from the kill: attempts state connected backing_off):");
    for (at, seen) in seen
        .iter()
        .filter(|(at, _)| *at + Duration::from_millis(50) >= killed)
    {
        println!(
            "  {:+8.1} {} {:?} {} {}",
            ms(*at),
            seen.attempts,
            seen.state,
            seen.connected,
            seen.backing_off
        );
    }
    println!("answers per 250 ms window (from the start): s0 s1 s2");
    let last_window = (elapsed.as_nanos() / WINDOW.as_nanos()) as usize;
    for (index, counts) in tally.windows.iter().enumerate().take(last_window + 1) {
        println!(
            "  {:5.2} s {:7} {:7} {:7}",
            index as f64 * WINDOW.as_secs_f64(),
            counts[0],
            counts[1],
            counts[2]
        );
    }
}
