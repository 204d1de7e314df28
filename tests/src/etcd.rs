//! A real etcd per test, on free loopback ports with a data directory of its own, that a
//! test can stop and start again on the same ports and data (an etcd restart) or kill.
//!
//! Started with etcd's fast timings (`--heartbeat-interval 10 --election-timeout 100`), so
//! that a single member elects itself within a fraction of a second; ready when `/health`
//! says so.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An etcd process, killed and its directory removed on drop.
pub struct EtcdServer {
    child: Option<Child>,
    /// Flags added to the usual ones.
    extra_args: Vec<String>,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

impl EtcdServer {
    /// Starts etcd (which must be installed: `scripts/test` installs the Debian package
    /// `etcd-server`) and waits until it is healthy.
    pub fn start() -> EtcdServer {
        EtcdServer::start_with(&[])
    }

    /// Starts etcd with these flags besides the usual ones (e.g.
    /// `--experimental-watch-progress-notify-interval=100ms`).
    pub fn start_with(extra_args: &[&str]) -> EtcdServer {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "prpc-etcd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create etcd dir");
        let mut server = EtcdServer {
            child: None,
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            dir,
            client_port: free_port(),
            peer_port: free_port(),
        };
        server.restart();
        server
    }

    /// The client URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Stops etcd with SIGKILL (nothing it has committed is lost: its data directory stays);
    /// [`restart`](Self::restart) brings it back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd (again) on the same ports and data directory and waits until it is
    /// healthy. Stops it first if it runs.
    pub fn restart(&mut self) {
        self.stop();
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .expect("open etcd log");
        let child = Command::new("etcd")
            .arg("--name")
            .arg("prpc-test")
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("prpc-test={peer}")])
            .args(["--heartbeat-interval", "10", "--election-timeout", "100"])
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd must be installed (scripts/test installs etcd-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.healthy() {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "etcd exited with {status}; its log:\n{}",
                    std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The etcd process's id, while it runs (to pin it to a core in benchmarks).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether `GET /health` answers that etcd is healthy (it has a leader).
    pub fn healthy(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.client_port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200") && answer.contains(r#""health":"true""#)
    }

    /// Freezes etcd with SIGSTOP: its sockets stay open and the kernel still accepts
    /// connections and acknowledges bytes, but nothing answers. [`resume`](Self::resume)
    /// thaws it.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws an etcd frozen by [`pause`](Self::pause) (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("etcd runs");
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }

    /// POSTs `json` to the v3 JSON gateway at `path` (e.g. `/v3/kv/deleterange`) and returns
    /// the answer's status line and body: for tests that change etcd behind a client's back.
    pub fn post(&self, path: &str, json: &str) -> String {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.client_port)).expect("connect to etcd");
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
            self.client_port,
            json.len()
        );
        stream.write_all(request.as_bytes()).expect("send to etcd");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("read etcd's answer");
        answer
    }

    /// Stops etcd, throws its data away and starts it afresh on the same ports: an etcd
    /// that lost its data (every lease and key gone, revisions counted from 1 again).
    pub fn restart_empty(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(self.dir.join("data"));
        self.restart();
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port free a moment ago (the kernel does not hand it out again at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
