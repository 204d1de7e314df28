//! How the command fails: one line on stderr and an exit code that says the failure's class.
//!
//! | exit | meaning |
//! | --- | --- |
//! | 0 | success (`health`: serving) |
//! | 1 | the command's own input is wrong: address, JSON, file, header, duration |
//! | 2 | usage: unknown command or flag, missing argument (clap's code) |
//! | 3 | `health`: the server or the service is not serving |
//! | 10 + N | a call failed with status code N: 11 cancelled, 12 unknown, 13 invalid_argument, 14 deadline_exceeded, 15 not_found, 16 already_exists, 17 permission_denied, 18 resource_exhausted, 19 failed_precondition, 20 aborted, 21 out_of_range, 22 unimplemented (no such service or method), 23 internal (also: the peer does not speak prpc), 24 unavailable (also: the server cannot be reached), 25 data_loss, 26 unauthenticated |
//! | 110 | the method returned its application error (code 100) |
//! | 111 | the call may have run, but its outcome is unknown (code 101, `outcome_unknown`): it was not run again |
//!
//! Failures on this side of the connection take the code prpc gives them
//! ([`prpc::Error::code`]): a connection refused is `unavailable`, a deadline that passed is
//! `deadline_exceeded`.

use std::fmt::Display;
use std::process::ExitCode;
use std::time::Duration;

use prpc::{Code, Error};

/// Exit code of a failure in the command's own input.
const INPUT: u8 = 1;
/// Exit code of `health` when the answer is not serving.
pub(crate) const NOT_SERVING: u8 = 3;
/// Added to a status code's number.
const STATUS_BASE: u8 = 10;

/// Why the command failed: the line to print and the code to exit with.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    exit: u8,
}

impl Failure {
    /// Input on the command line, in a file or on stdin that cannot be used.
    pub(crate) fn input(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exit: INPUT,
        }
    }

    /// A failure with the exit code of status `code`.
    pub(crate) fn status(code: Code, message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exit: exit_code(code),
        }
    }

    /// Nothing to call: no instance listed, or discovery unreachable.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Failure::status(Code::Unavailable, message)
    }

    /// A call to `target` (of `method`, `SERVICE/METHOD`, when it is known) failed.
    pub(crate) fn call(target: &impl Display, method: Option<&str>, error: &Error) -> Self {
        let place = match method {
            Some(method) => format!("{method} at {target}"),
            None => target.to_string(),
        };
        let message = match error {
            Error::Connect { source, .. } => format!("cannot reach {target}: {source}"),
            Error::ConnectTimeout { timeout, .. } => {
                format!("cannot reach {target}: no connection within {timeout:?}")
            }
            Error::Protocol { error: wire, .. } => {
                format!("{target} does not speak prpc (is it a prpc server?): {wire}")
            }
            Error::Closed { reason: closed, .. } => format!(
                "{target} closed the connection without an answer (is it a prpc server?): {closed}"
            ),
            Error::Timeout { timeout, .. } => {
                // prpc's own services answer at once: silence there means another protocol.
                let hint = if method.is_some_and(|method| method.starts_with("prpc.")) {
                    " (is it a prpc server?)"
                } else {
                    ""
                };
                format!(
                    "{place}: no reply within {:?}, deadline_exceeded{hint}",
                    to_millis(*timeout)
                )
            }
            Error::Status(status) if status.message().is_empty() => {
                format!("{place}: {}", status.code())
            }
            Error::Status(status) => {
                format!("{place}: {}: {}", status.code(), status.message())
            }
            other => format!("{place}: {other}"),
        };
        Failure::status(error.code(), message)
    }

    /// This failure with more said after its message.
    pub(crate) fn with_note(mut self, note: &str) -> Self {
        self.message.push_str(note);
        self
    }

    /// The process's exit code for this failure.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit)
    }
}

/// `duration` to the nearest millisecond, for messages (a deadline's remaining time is a few
/// nanoseconds short of what was asked).
fn to_millis(duration: Duration) -> Duration {
    Duration::from_millis(((duration.as_nanos() + 500_000) / 1_000_000) as u64)
}

/// The exit code of a call that ended with `code`.
pub(crate) fn exit_code(code: Code) -> u8 {
    match code {
        Code::Ok => 0,
        // 100 + 10: still below 126, where shells start giving codes their own meaning.
        other => u8::try_from(other.as_u32())
            .map_or(u8::MAX, |number| number.saturating_add(STATUS_BASE)),
    }
}

/// Prints `failure` as one line on stderr and returns its exit code.
pub(crate) fn report(failure: &Failure) -> ExitCode {
    // Server messages and OS errors may hold line breaks; the contract is one line.
    let line: String = failure
        .message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    eprintln!("prpc: {line}");
    failure.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prpcs_own_codes_exit_above_110() {
        assert_eq!(exit_code(Code::Ok), 0);
        assert_eq!(exit_code(Code::Unavailable), 24);
        assert_eq!(exit_code(Code::Application), 110);
        assert_eq!(exit_code(Code::OutcomeUnknown), 111);
    }
}
