//! The `arith` example is the server docs/PROTOCOL.md section 11 runs against: its worked
//! example's request bytes, sent to the example's binary, get exactly the documented response
//! bytes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Section 11.1, the request.
const REQUEST: &str = "b70101100000002eac02000a6d6174682e417269746803616464dc0b010674656e616e740461636d657b2261223a312c2262223a327d";
/// Section 11.2, its response.
const RESPONSE: &str = "b701021000000007ac020000000033";

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
