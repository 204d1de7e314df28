#!/usr/bin/env bash
# Build cost: the same one-service app (a server and a client in one process, one call) in
# prpc (this checkout, default features) and in tarpc (from crates.io), built side by side.
#
#   bash benches/build_cost.sh            # 3 rounds
#   ROUNDS=5 bash benches/build_cost.sh
#   TIMINGS=1 bash benches/build_cost.sh  # also keeps cargo's --timings report of each app
#
# Each round builds both apps, in alternating order, from a clean target/: debug, then
# release, then a one-line edit of main.rs rebuilt in debug. Sources are fetched first, so
# no download is timed. Prints the medians of the wall times, their ratio prpc/tarpc, the
# number of crates each build compiles (its "Compiling" lines) and the CPU seconds the build
# took (user + system, cargo and its rustcs), with their ratio: CPU time is what other work
# on a shared box disturbs least. Each run's line in $BUILD_COST_DIR/results ends with the
# 1-minute load average after it, so a busy box shows there. Needs crates.io the first time.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${ROUNDS:-3}"
work="${BUILD_COST_DIR:-$(mktemp -d /tmp/prpc-build-cost.XXXXXX)}"
mkdir -p "$work"

# --- the two apps -------------------------------------------------------------------------
mkdir -p "$work/prpc_app/src" "$work/tarpc_app/src"
cat > "$work/prpc_app/Cargo.toml" <<EOF
[package]
name = "prpc_app"
version = "0.1.0"
edition = "2024"

[dependencies]
prpc = { path = "$repo/prpc" }
tokio = { version = "1", features = ["macros", "rt"] }

[workspace]
EOF
cat > "$work/prpc_app/src/main.rs" <<'EOF'
#[prpc::service]
pub trait Greeter {
    async fn hello(&self, name: String) -> String;
}

struct Hi;

impl Greeter for Hi {
    async fn hello(&self, name: String) -> String {
        format!("Hello, {name}!")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = prpc::Server::builder()
        .add_service(GreeterServer::new(Hi))
        .bind("127.0.0.1:0")
        .await?;
    let addr = server.local_addr();
    tokio::spawn(server.serve());
    let client = GreeterClient::connect(addr).await?;
    println!("{}", client.hello("world".to_owned()).await?); // EDIT
    Ok(())
}
EOF
cat > "$work/tarpc_app/Cargo.toml" <<'EOF'
[package]
name = "tarpc_app"
version = "0.1.0"
edition = "2024"

[dependencies]
tarpc = { version = "0.38.0", features = ["serde-transport", "serde-transport-bincode", "tcp"] }
tokio = { version = "1", features = ["macros", "rt"] }
futures = "0.3"

[workspace]
EOF
cat > "$work/tarpc_app/src/main.rs" <<'EOF'
use futures::StreamExt;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{client, context, serde_transport};

#[tarpc::service]
pub trait Greeter {
    async fn hello(name: String) -> String;
}

#[derive(Clone)]
struct Hi;

impl Greeter for Hi {
    async fn hello(self, _: context::Context, name: String) -> String {
        format!("Hello, {name}!")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listener = serde_transport::tcp::listen("127.0.0.1:0", Bincode::default).await?;
    let addr = listener.local_addr();
    tokio::spawn(async move {
        while let Some(Ok(transport)) = listener.next().await {
            let channel = BaseChannel::with_defaults(transport);
            tokio::spawn(channel.execute(Hi.serve()).for_each(|call| async {
                tokio::spawn(call);
            }));
        }
    });
    let transport = serde_transport::tcp::connect(addr, Bincode::default).await?;
    let client = GreeterClient::new(client::Config::default(), transport).spawn();
    println!("{}", client.hello(context::current(), "world".to_owned()).await?); // EDIT
    Ok(())
}
EOF

for app in prpc_app tarpc_app; do
  (cd "$work/$app" && cargo generate-lockfile -q && cargo fetch -q)
done

# --- timing -------------------------------------------------------------------------------
# One build of $1 with cargo args $2...; prints "seconds crates cpu-seconds" (cpu: user +
# system time of cargo and every rustc it ran, which other work on the box disturbs less than
# the wall time).
build() {
  local app="$1"; shift
  local log="$work/$app.log" start end cpu TIMEFORMAT='%U %S'
  start=$(date +%s.%N)
  cpu=$({ time (cd "$work/$app" && cargo build --offline "$@" 2> "$log"); } 2>&1)
  end=$(date +%s.%N)
  echo "$(echo "$end - $start" | bc) $(grep -c '^ *Compiling' "$log" || true)" \
    "$(echo "$cpu" | awk '{ print $1 + $2 }')"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

results="$work/results"
: > "$results"
for round in $(seq 1 "$rounds"); do
  order=(prpc_app tarpc_app)
  [ $((round % 2)) -eq 0 ] && order=(tarpc_app prpc_app)
  for app in "${order[@]}"; do
    rm -rf "$work/$app/target"
    timings=()
    [ -n "${TIMINGS:-}" ] && timings=(--timings)
    read -r secs crates cpu < <(build "$app" "${timings[@]}")
    echo "$app debug $secs $crates $cpu $(cut -d' ' -f1 /proc/loadavg)" >> "$results"
    [ -n "${TIMINGS:-}" ] && cp "$work/$app"/target/cargo-timings/cargo-timing.html \
      "$work/$app-debug-timing.html"
    # The one-line edit: a different string each round, then a debug rebuild.
    sed -i "s|// EDIT.*|// EDIT $round|" "$work/$app/src/main.rs"
    read -r secs crates cpu < <(build "$app")
    echo "$app edit $secs $crates $cpu $(cut -d' ' -f1 /proc/loadavg)" >> "$results"
    rm -rf "$work/$app/target"
    read -r secs crates cpu < <(build "$app" --release)
    echo "$app release $secs $crates $cpu $(cut -d' ' -f1 /proc/loadavg)" >> "$results"
    echo "round $round: $app done" >&2
  done
done

# --- report -------------------------------------------------------------------------------
echo
echo "build cost, $rounds rounds, medians ($(nproc) cores; $(rustc --version))"
printf '%-14s %10s %10s %8s %8s %8s %9s %9s %8s\n' build prpc_s tarpc_s ratio prpc_n tarpc_n \
  prpc_cpu tarpc_cpu cpu_ratio
for kind in debug release edit; do
  col() { awk -v a="$1" -v k=$kind -v c="$2" '$1 == a && $2 == k { print $c }' "$results" | median; }
  p=$(col prpc_app 3) t=$(col tarpc_app 3)
  pc=$(col prpc_app 5) tc=$(col tarpc_app 5)
  printf '%-14s %10.2f %10.2f %8.2f %8s %8s %9.2f %9.2f %8.2f\n' "clean $kind" "$p" "$t" \
    "$(echo "$p / $t" | bc -l)" "$(col prpc_app 4)" "$(col tarpc_app 4)" "$pc" "$tc" \
    "$(echo "$pc / $tc" | bc -l)"
done | sed 's/^clean edit/one-line edit/'
echo "(all runs: $results)"
