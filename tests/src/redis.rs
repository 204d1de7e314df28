//! A real redis-server per test, on a unix socket in a fresh directory (Redis 7 cannot pick a
//! free TCP port itself; a socket per test needs no port at all).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A redis-server process, killed and its directory removed on drop.
pub struct RedisServer {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
    persistence: Persistence,
}

/// What a [`RedisServer`] keeps across a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing: a restart loses every key.
    None,
    /// An append-only file synced on every write (`appendfsync always`): nothing is lost.
    AlwaysFsync,
}

impl RedisServer {
    /// Starts redis-server (which must be installed: `scripts/test` installs it) without
    /// persistence and waits until it accepts connections.
    pub fn start() -> RedisServer {
        RedisServer::start_with(Persistence::None)
    }

    /// Starts redis-server with this persistence and waits until it accepts connections.
    pub fn start_with(persistence: Persistence) -> RedisServer {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "prpc-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create redis dir");
        let socket = dir.join("redis.sock");
        let child = spawn(&dir, &socket, persistence);
        let server = RedisServer {
            child,
            dir,
            socket,
            persistence,
        };
        server.wait_until_up();
        server
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server with SIGKILL (no shutdown save) and starts it again on the same
    /// socket and directory, with the same persistence; waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.dir, &self.socket, self.persistence);
        self.wait_until_up();
    }

    /// Where it listens (a unix socket).
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// The URL to connect to it.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// Runs a command through a plain socket (for `DEBUG SLEEP` and the like) without
    /// waiting for the answer.
    pub fn send_command(&self, words: &[&str]) {
        use std::io::Write;
        let mut stream =
            std::os::unix::net::UnixStream::connect(&self.socket).expect("connect to redis");
        let mut command = format!("*{}\r\n", words.len());
        for word in words {
            command.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        stream
            .write_all(command.as_bytes())
            .expect("write to redis");
        // Keep the connection open long enough for Redis to read the command.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(5));
            drop(stream);
        });
    }

    /// Kills the server now (to test an unreachable Redis).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &std::path::Path, socket: &std::path::Path, persistence: Persistence) -> Child {
    let appendonly: &[&str] = match persistence {
        Persistence::None => &["--appendonly", "no"],
        Persistence::AlwaysFsync => &["--appendonly", "yes", "--appendfsync", "always"],
    };
    Command::new("redis-server")
        .args(["--port", "0", "--save", ""])
        .args(appendonly)
        .arg("--unixsocket")
        .arg(socket)
        .args(["--enable-debug-command", "yes"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/test installs it)")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
