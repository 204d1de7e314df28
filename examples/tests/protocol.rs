//! The `arith` example is the server docs/PROTOCOL.md section 11 runs against: its worked
//! example's request bytes, sent to the example's binary, get exactly the documented response
//! bytes; and the binary shuts down gracefully on SIGTERM and on SIGINT (goaway, then close,
//! then exit 0), so that a client in another language can test shutdown against it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Section 11.1, the request.
const REQUEST: &str = "b70101100000002eac02000a6d6174682e417269746803616464dc0b010674656e616e740461636d657b2261223a312c2262223a327d";
/// Section 11.2, its response.
const RESPONSE: &str = "b701021000000007ac020000000033";
/// Section 11.4, the goaway a server sends when graceful shutdown begins.
const GOAWAY: &str = "b70106000000001b00000e17736572766572206973207368757474696e6720646f776e";

fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
        .collect()
}

/// The example server on an ephemeral loopback port, and that port's address.
fn start() -> (Child, String) {
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

fn connect(addr: &str) -> TcpStream {
    let socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
}

fn read_exact(socket: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buffer = vec![0; len];
    socket.read_exact(&mut buffer).unwrap();
    buffer
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_worked_example_runs_against_the_arith_example() {
    let (child, addr) = start();
    let _child = Killed(child);
    let mut socket = connect(&addr);
    socket.write_all(&bytes(REQUEST)).unwrap();
    let expected = bytes(RESPONSE);
    assert_eq!(read_exact(&mut socket, expected.len()), expected);
}

fn shuts_down_gracefully_on(signal: &str) {
    let (child, addr) = start();
    let mut child = Killed(child);
    let mut socket = connect(&addr);
    // A call first, so the connection is surely being served.
    socket.write_all(&bytes(REQUEST)).unwrap();
    read_exact(&mut socket, bytes(RESPONSE).len());
    let status = Command::new("kill")
        .args([signal, &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let expected = bytes(GOAWAY);
    assert_eq!(read_exact(&mut socket, expected.len()), expected);
    // Then the server closes the connection and exits cleanly.
    let mut rest = Vec::new();
    socket.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    let exit = child.0.wait().unwrap();
    assert!(exit.success(), "{signal}: {exit}");
}

#[test]
fn the_arith_example_shuts_down_gracefully_on_sigterm() {
    shuts_down_gracefully_on("-TERM");
}

#[test]
fn the_arith_example_shuts_down_gracefully_on_sigint() {
    shuts_down_gracefully_on("-INT");
}
