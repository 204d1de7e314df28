//! A real tinyproxy per test: an HTTP forward proxy that allows `CONNECT` to the ports a test
//! names, on a free loopback port, with its configuration and log in a directory of its own.
//!
//! tinyproxy cannot be told to pick a free port itself, so the port is one the kernel handed
//! out a moment before. It runs in the foreground (`-d`) and logs every request line, which
//! is how a test sees that a call went through it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A tinyproxy process, killed and its directory removed on drop.
pub struct Tinyproxy {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Tinyproxy {
    /// Starts tinyproxy (which must be installed: `scripts/test` installs the Debian package
    /// `tinyproxy`), allowing `CONNECT` to `connect_ports` only, and waits until it accepts.
    pub fn start(connect_ports: &[u16]) -> Tinyproxy {
        Tinyproxy::start_with(connect_ports, &[])
    }

    /// Starts tinyproxy with these configuration lines besides the usual ones (e.g.
    /// `BasicAuth user password`).
    pub fn start_with(connect_ports: &[u16], extra_lines: &[&str]) -> Tinyproxy {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "prpc-tinyproxy-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create tinyproxy dir");
        let port = free_port();
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile \"{}\"\nLogLevel Info\n\
             MaxClients 64\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
            dir.join("tinyproxy.log").display()
        );
        // Without any ConnectPort line tinyproxy allows CONNECT to every port; a lone port 0
        // allows none (what a test that wants refusals asks for with an empty list).
        if connect_ports.is_empty() {
            config.push_str("ConnectPort 0\n");
        }
        for connect_port in connect_ports {
            config.push_str(&format!("ConnectPort {connect_port}\n"));
        }
        for line in extra_lines {
            config.push_str(line);
            config.push('\n');
        }
        let config_path = dir.join("tinyproxy.conf");
        std::fs::write(&config_path, config).expect("write tinyproxy config");
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy must be installed (scripts/test installs it)");
        let mut proxy = Tinyproxy {
            child,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(proxy.addr).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("tinyproxy exited with {status}; its log:\n{}", proxy.log());
            }
            assert!(Instant::now() < deadline, "tinyproxy did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        proxy
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tinyproxy.log")).unwrap_or_default()
    }

    /// The request lines of the `CONNECT` requests it received so far
    /// (`CONNECT 127.0.0.1:7000 HTTP/1.1`).
    pub fn connect_requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|line| line.split_once("): ").map(|(_, request)| request))
            .filter(|request| request.starts_with("CONNECT "))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
