//! What the tests of the example binaries share: starting the `arith` example on an ephemeral
//! loopback port and talking to it over a plain socket.

#![allow(dead_code)] // each test binary uses its own part of this

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
        .collect()
}

/// The example server on an ephemeral loopback port, and that port's address.
pub fn start() -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arith"))
        .args(["serve", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "serving math.Arith on tcp://127.0.0.1:PORT"
    let addr = line.trim().rsplit(' ').next().unwrap();
    let addr = addr.strip_prefix("tcp://").unwrap_or(addr).to_owned();
    (child, addr)
}

pub fn connect(addr: &str) -> TcpStream {
    let socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
}

pub fn read_exact(socket: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buffer = vec![0; len];
    socket.read_exact(&mut buffer).unwrap();
    buffer
}

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
