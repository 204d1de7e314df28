//! Runs the conformance cases of `tests/conformance/cases.txt` (the format is in that
//! directory's README) against the `arith` example's binary: each case on a new connection,
//! its bytes sent as written, the server's frames compared with what the case expects.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

use common::{Killed, bytes, connect, start};

const CASES: &str = include_str!("../../tests/conformance/cases.txt");

/// One line of a case.
enum Step {
    Send(Vec<u8>),
    Shutdown,
    Frame(Vec<u8>),
    Response {
        request_id: u64,
        attempt: u64,
        code: u64,
    },
    Close,
    /// The next expectation first drops message and credit frames.
    SkipMessages,
}

struct Case {
    name: String,
    steps: Vec<Step>,
}

fn parse(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        if word == "case" {
            cases.push(Case {
                name: rest.to_owned(),
                steps: Vec::new(),
            });
            continue;
        }
        let step = match (word, rest.split_once(' ')) {
            ("send", _) => Step::Send(bytes(rest)),
            ("shutdown", _) => Step::Shutdown,
            ("expect", Some(("frame", hex))) => Step::Frame(bytes(hex)),
            ("expect", Some(("response", numbers))) => {
                let numbers: Vec<u64> = numbers.split(' ').map(|n| n.parse().unwrap()).collect();
                Step::Response {
                    request_id: numbers[0],
                    attempt: numbers[1],
                    code: numbers[2],
                }
            }
            ("expect", None) if rest == "close" => Step::Close,
            ("skip", None) if rest == "messages" => Step::SkipMessages,
            _ => panic!("line {}: cannot read {line:?}", number + 1),
        };
        cases
            .last_mut()
            .unwrap_or_else(|| panic!("line {}: a step before any case", number + 1))
            .steps
            .push(step);
    }
    cases
}

fn read_frame(socket: &mut TcpStream) -> Option<Vec<u8>> {
    let mut prefix = [0; 8];
    if let Err(error) = socket.read_exact(&mut prefix) {
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof, "{error}");
        return None;
    }
    let length = u32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]) as usize;
    let mut frame = prefix.to_vec();
    frame.resize(8 + length, 0);
    socket.read_exact(&mut frame[8..]).unwrap();
    Some(frame)
}

/// The next frame, past any message (kind 7) and credit (kind 8) frames if `skip`.
fn next_frame(socket: &mut TcpStream, skip: bool) -> Option<Vec<u8>> {
    loop {
        let frame = read_frame(socket)?;
        if !(skip && matches!(frame[2] & 0x0f, 7 | 8)) {
            return Some(frame);
        }
    }
}

fn varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut value = 0;
    for shift in (0..64).step_by(7) {
        let byte = bytes[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    value
}

fn run(case: &Case, addr: &str) {
    let mut socket = connect(addr);
    let mut steps = case.steps.iter().peekable();
    let mut skip = false;
    while let Some(step) = steps.next() {
        match step {
            Step::SkipMessages => {
                skip = true;
                continue;
            }
            Step::Send(first) => {
                // Consecutive sends go in one write, as one read would bring them.
                let mut out = first.clone();
                while let Some(Step::Send(more)) = steps.peek() {
                    out.extend_from_slice(more);
                    steps.next();
                }
                socket.write_all(&out).unwrap();
            }
            Step::Shutdown => socket.shutdown(Shutdown::Write).unwrap(),
            Step::Frame(expected) => {
                let frame = next_frame(&mut socket, skip);
                assert_eq!(
                    frame.as_deref().map(hex),
                    Some(hex(expected)),
                    "case {}",
                    case.name
                );
            }
            Step::Response {
                request_id,
                attempt,
                code,
            } => {
                let frame = next_frame(&mut socket, skip).expect("a response");
                assert_eq!(frame[2] & 0x0f, 2, "case {}: not a response", case.name);
                let mut at = 8;
                let found = [
                    varint(&frame, &mut at),
                    varint(&frame, &mut at),
                    varint(&frame, &mut at),
                ];
                assert_eq!(found, [*request_id, *attempt, *code], "case {}", case.name);
            }
            Step::Close => {
                let frame = next_frame(&mut socket, skip);
                assert!(
                    frame.is_none(),
                    "case {}: {:?} instead of a close",
                    case.name,
                    frame
                );
            }
        }
        // A skip applies to the next expectation only.
        if !matches!(step, Step::Send(_) | Step::Shutdown) {
            skip = false;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_arith_example_passes_every_conformance_case() {
    let cases = parse(CASES);
    assert!(cases.len() >= 34, "{} cases", cases.len());
    let (child, addr) = start();
    let _child = Killed(child);
    for case in &cases {
        run(case, &addr);
    }
}
