//! Credit-based flow control, counted in bytes: what a sender may still send, and what a
//! receiver has buffered and grants back as its consumer takes messages.
//!
//! The rules (docs/PROTOCOL.md section 7.10): a sender may send a message while its credit is
//! positive, and pays the frame's `length` for it, so credit may go below zero by at most one
//! frame; a receiver grants credit back as messages leave its buffer, in grants of at least
//! half its window, so that one credit frame answers many messages. Every stream has this, and
//! so has the connection as a whole, so that many streams cannot together buffer more than one
//! connection window.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Credit the server has on a stream the moment the client opens it (the request grants it);
/// the client has none until the server's first credit frame on the stream.
pub(crate) const INITIAL_STREAM_CREDIT: i64 = 64 * 1024;

/// Credit each side has on a connection before the other grants any.
pub(crate) const INITIAL_CONNECTION_CREDIT: i64 = 1024 * 1024;

/// The most credit a sender may hold on one stream or connection: a grant past it is an error.
pub(crate) const MAX_CREDIT: i64 = (1 << 31) - 1;

/// A grant that would take credit past [`MAX_CREDIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CreditOverflow {
    pub(crate) credit: i64,
    pub(crate) granted: u32,
}

impl std::fmt::Display for CreditOverflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "credit overflow: a grant of {} bytes on top of {} exceeds {}",
            self.granted, self.credit, MAX_CREDIT
        )
    }
}

/// The sending side of one stream or of a connection: the credit left, and the senders
/// waiting for more. The credit is an atomic, so that a sender with credit (the common case)
/// takes no lock to check or spend it; only a sender that has to wait does.
#[derive(Debug)]
pub(crate) struct SendCredit {
    credit: AtomicI64,
    /// No more sends: the stream ended. Waiters are woken and give up.
    closed: AtomicBool,
    /// A grant has come (for a client's stream: the server accepted it).
    granted: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

/// What a sender polling for credit learns.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ready {
    /// Credit is positive: send.
    Go,
    /// The stream ended: send nothing more.
    Closed,
}

impl SendCredit {
    pub(crate) fn new(credit: i64) -> Self {
        SendCredit {
            credit: AtomicI64::new(credit),
            closed: AtomicBool::new(false),
            granted: AtomicBool::new(false),
            waiters: Mutex::new(Vec::new()),
        }
    }

    fn waiters(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check(&self) -> Option<Ready> {
        if self.closed.load(Ordering::Acquire) {
            Some(Ready::Closed)
        } else if self.credit.load(Ordering::Acquire) > 0 {
            Some(Ready::Go)
        } else {
            None
        }
    }

    /// Ready once there is credit to send with (or the stream ended); else registers the
    /// waker for the next grant.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Ready> {
        if let Some(ready) = self.check() {
            return Poll::Ready(ready);
        }
        let mut waiters = self.waiters();
        // Checked again under the lock a grant takes after adding its credit: a grant made
        // since the first check is seen here, or wakes this waker.
        if let Some(ready) = self.check() {
            return Poll::Ready(ready);
        }
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Ready once any grant has come (whatever the credit now), or the stream ended: a
    /// client ends its side only on a stream the server has accepted.
    pub(crate) fn poll_granted(&self, cx: &mut Context<'_>) -> Poll<Ready> {
        let check = || {
            if self.closed.load(Ordering::Acquire) {
                Some(Ready::Closed)
            } else if self.granted.load(Ordering::Acquire) {
                Some(Ready::Go)
            } else {
                None
            }
        };
        if let Some(ready) = check() {
            return Poll::Ready(ready);
        }
        let mut waiters = self.waiters();
        if let Some(ready) = check() {
            return Poll::Ready(ready);
        }
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Pays for a message just sent (credit may go below zero by this one message).
    pub(crate) fn spend(&self, cost: usize) {
        let cost = i64::try_from(cost).unwrap_or(i64::MAX);
        self.credit.fetch_sub(cost, Ordering::AcqRel);
    }

    /// Adds a grant and wakes the waiting senders; refuses one that would pass [`MAX_CREDIT`].
    pub(crate) fn grant(&self, granted: u32) -> Result<(), CreditOverflow> {
        let added = self
            .credit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |credit| {
                let credit = credit + i64::from(granted);
                (credit <= MAX_CREDIT).then_some(credit)
            });
        if added.is_ok() && !self.granted.swap(true, Ordering::AcqRel) {
            // The first grant also wakes whoever waits for it (`poll_granted`).
            let waiters = std::mem::take(&mut *self.waiters());
            waiters.into_iter().for_each(Waker::wake);
        }
        match added {
            Err(credit) => Err(CreditOverflow { credit, granted }),
            Ok(before) if before + i64::from(granted) <= 0 => Ok(()),
            Ok(_) => {
                let waiters = std::mem::take(&mut *self.waiters());
                waiters.into_iter().for_each(Waker::wake);
                Ok(())
            }
        }
    }

    /// Ends sending: waiting senders are woken and see [`Ready::Closed`].
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let waiters = std::mem::take(&mut *self.waiters());
        waiters.into_iter().for_each(Waker::wake);
    }

    #[cfg(test)]
    pub(crate) fn credit(&self) -> i64 {
        self.credit.load(Ordering::Acquire)
    }
}

/// The receiving side of one stream or of a connection: the credit the sender still has (as
/// the receiver counts it), the bytes buffered here, and the window the two together are
/// kept within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// What the receiver lets the sender have in flight and buffered together.
    target: i64,
    /// The sender's credit as the receiver counts it.
    credit: i64,
    /// Bytes received and not yet consumed.
    buffered: i64,
}

/// A message that arrived while the sender had no credit left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverCredit;

impl Window {
    /// A window of `target` bytes, with `initial` credit granted already (by the protocol).
    pub(crate) fn new(target: u32, initial: i64) -> Self {
        Window {
            target: i64::from(target),
            credit: initial,
            buffered: 0,
        }
    }

    /// A message of `cost` bytes arrived: refused if the sender had no credit left for it.
    pub(crate) fn receive(&mut self, cost: usize) -> Result<(), OverCredit> {
        if self.credit <= 0 {
            return Err(OverCredit);
        }
        let cost = i64::try_from(cost).unwrap_or(i64::MAX);
        self.credit = self.credit.saturating_sub(cost);
        self.buffered = self.buffered.saturating_add(cost);
        Ok(())
    }

    /// `cost` bytes left the buffer (consumed or thrown away). Returns the credit to grant
    /// now, if enough has come free to be worth a frame.
    pub(crate) fn consume(&mut self, cost: usize) -> Option<u32> {
        let cost = i64::try_from(cost).unwrap_or(i64::MAX);
        self.buffered = (self.buffered - cost).max(0);
        self.grant()
    }

    /// `cost` bytes left the buffer, with no grant made (the peer may not be sent one yet).
    pub(crate) fn release(&mut self, cost: usize) {
        let cost = i64::try_from(cost).unwrap_or(i64::MAX);
        self.buffered = (self.buffered - cost).max(0);
    }

    /// The credit to grant now: what the window has free beyond the sender's credit and the
    /// buffer, once that is at least half the window (so that grants are few). A sender that
    /// overdrew (its last message cost more than the credit it had) has the overdraft made
    /// up: it was received and has left the buffer, and a message larger than the window
    /// must not leave the sender below zero for good, with nothing buffered to grant from.
    pub(crate) fn grant(&mut self) -> Option<u32> {
        let free = self.target - self.credit - self.buffered;
        if free <= 0 || free < self.target / 2 {
            return None;
        }
        let free = u32::try_from(free.min(MAX_CREDIT)).unwrap_or(u32::MAX);
        self.credit += i64::from(free);
        Some(free)
    }

    /// Bytes received and not consumed yet.
    pub(crate) fn buffered(&self) -> i64 {
        self.buffered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_grants_back_what_is_consumed_in_grants_of_half_a_window_or_more() {
        let mut window = Window::new(1000, 0);
        assert_eq!(
            window.grant(),
            Some(1000),
            "the first grant opens the window"
        );
        assert_eq!(window.grant(), None);
        window.receive(300).unwrap();
        window.receive(300).unwrap();
        assert_eq!(
            window.consume(300),
            None,
            "300 free is under half the window"
        );
        assert_eq!(window.consume(300), Some(600));
        // Sent past the credit by one message: the next message is refused.
        window.receive(900).unwrap();
        window.receive(200).unwrap();
        assert_eq!(window.receive(1), Err(OverCredit));
        assert_eq!(window.buffered(), 1100);
        // Consuming everything grants the overdraft back too: the sender holds a window.
        assert_eq!(window.consume(1100), Some(1100));
        assert_eq!(window.grant(), None);
    }

    #[test]
    fn a_sender_that_overdrew_by_more_than_a_window_has_credit_once_its_message_is_taken() {
        let mut window = Window::new(1000, 0);
        assert_eq!(window.grant(), Some(1000));
        // One message of 5000 bytes with 1000 credit: 4000 below zero.
        window.receive(5000).unwrap();
        assert_eq!(window.consume(5000), Some(5000));
        window.receive(1000).unwrap();
        assert_eq!(window.receive(1), Err(OverCredit));
    }

    #[test]
    fn a_window_smaller_than_the_initial_credit_grants_nothing_until_consumed_below_it() {
        let mut window = Window::new(100, 1000);
        assert_eq!(window.grant(), None);
        window.receive(990).unwrap();
        assert_eq!(window.consume(990), Some(90));
    }

    #[test]
    fn send_credit_refuses_grants_past_the_maximum_and_wakes_on_grants() {
        let credit = SendCredit::new(0);
        let waker = futures_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(credit.poll_ready(&mut cx).is_pending());
        credit.grant(10).unwrap();
        assert_eq!(credit.poll_ready(&mut cx), Poll::Ready(Ready::Go));
        credit.spend(25);
        assert_eq!(credit.credit(), -15);
        assert!(credit.poll_ready(&mut cx).is_pending());
        assert_eq!(
            credit.grant(u32::MAX),
            Err(CreditOverflow {
                credit: -15,
                granted: u32::MAX
            })
        );
        credit.close();
        assert_eq!(credit.poll_ready(&mut cx), Poll::Ready(Ready::Closed));
    }

    fn futures_waker() -> Waker {
        Waker::noop().clone()
    }
}
