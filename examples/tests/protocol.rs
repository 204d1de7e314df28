//! The `arith` example is the server docs/PROTOCOL.md section 11 runs against: its worked
//! example's request bytes, sent to the example's binary, get exactly the documented response
//! bytes; and the binary shuts down gracefully on SIGTERM and on SIGINT (goaway, then close,
//! then exit 0), so that a client in another language can test shutdown against it.

mod common;

use std::io::{Read, Write};
use std::process::Command;

use common::{Killed, bytes, connect, read_exact, start};

/// Section 11.1, the request.
const REQUEST: &str = "b70101100000002eac02000a6d6174682e417269746803616464dc0b010674656e616e740461636d657b2261223a312c2262223a327d";
/// Section 11.2, its response.
const RESPONSE: &str = "b701021000000007ac020000000033";
/// Section 11.4, the goaway a server sends when graceful shutdown begins.
const GOAWAY: &str = "b70106000000001b00000e17736572766572206973207368757474696e6720646f776e";

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
    // The shell's own `kill`, so that no separate binary is needed.
    let status = Command::new("sh")
        .args(["-c", &format!("kill {signal} {}", child.0.id())])
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
