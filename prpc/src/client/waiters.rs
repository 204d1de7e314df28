//! The calls of one connection that wait for their replies: one mutex over a slab of slots,
//! with an index from request id and attempt to slot for the reader. A call holds its slot's key, so
//! polling it and letting it go cost no hashing; a reply costs one lookup by id, under the
//! same lock that stores it and takes the caller's waker (no channel, no allocation per call).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use slab::Slab;

use crate::call::Reply;
use crate::error::Error;
use crate::format::Format;
use crate::id::IdHashBuilder;

/// A waiting call's place; only [`Waiters`] makes them, and each is given back exactly once:
/// spent when [`Waiters::poll`] hands over the outcome, or by [`Waiters::remove`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    key: usize,
}

/// The waiting calls of a connection.
#[derive(Default)]
pub(super) struct Waiters {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    slots: Slab<Slot>,
    /// Slots still waiting, by request id and attempt: attempts of one call may be waiting
    /// at once on one connection (a resend by hand), and each reply names its attempt.
    by_id: HashMap<CallId, usize, IdHashBuilder>,
}

/// What the reader hands a waiting call: its reply, or why there is none.
pub(super) type Outcome = Result<Reply, Error>;

/// A request id and an attempt: what a reply is addressed to.
pub(super) type CallId = (u64, u32);

enum Slot {
    /// No reply yet: whom to wake when it comes, and the format the call was sent in (a reply
    /// whose own format id is unknown keeps it).
    Waiting {
        id: CallId,
        format: Format,
        waker: Option<Waker>,
    },
    /// The reply (or why there is none), until the caller polls for it.
    Done(Outcome),
}

/// How a waiting call left, for [`Waiters::remove`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Left {
    /// Before its reply came: the server may still be running it.
    Waiting,
    /// After its reply came (or the connection closed).
    Answered,
}

impl Waiters {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes a slot for the attempt sent under `id`, with the waker to wake when its reply
    /// comes if the caller has it at hand (else its first poll gives it). An attempt already
    /// waiting under the same id (a caller resending a call under an attempt number in use)
    /// fails with [`Error::Cancelled`]: the reply cannot tell the two apart.
    pub(super) fn insert(&self, id: CallId, format: Format, waker: Option<Waker>) -> Ticket {
        let (ticket, displaced) = {
            let mut inner = self.lock();
            let key = inner.slots.insert(Slot::Waiting { id, format, waker });
            let displaced = inner
                .by_id
                .insert(id, key)
                .and_then(|old| Self::settle(&mut inner.slots[old], Err(Error::Cancelled)));
            (Ticket { key }, displaced)
        };
        if let Some(waker) = displaced {
            waker.wake();
        }
        ticket
    }

    /// Marks a waiting slot done with `outcome`; returns the waker to wake.
    fn settle(slot: &mut Slot, outcome: Outcome) -> Option<Waker> {
        let Slot::Waiting { waker, .. } = slot else {
            unreachable!("only waiting slots are indexed");
        };
        let waker = waker.take();
        *slot = Slot::Done(outcome);
        waker
    }

    /// The call's outcome once it has come, which spends the ticket (the slot is given back
    /// with it: `ticket` becomes `None`); else registers the caller's waker.
    pub(super) fn poll(&self, ticket: &mut Option<Ticket>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let Some(Ticket { key }) = *ticket else {
            panic!("a call's outcome was polled after it was taken");
        };
        let mut inner = self.lock();
        if let Slot::Waiting { waker, .. } = &mut inner.slots[key] {
            match waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        let Slot::Done(outcome) = inner.slots.remove(key) else {
            unreachable!("a slot is waiting or done");
        };
        *ticket = None;
        Poll::Ready(outcome)
    }

    /// Gives the slot back. Returns whether the call was still waiting for its reply.
    pub(super) fn remove(&self, ticket: Ticket) -> Left {
        let mut inner = self.lock();
        match inner.slots.remove(ticket.key) {
            Slot::Waiting { id, .. } => {
                inner.by_id.remove(&id);
                Left::Waiting
            }
            Slot::Done(_) => Left::Answered,
        }
    }

    /// Completes the attempt waiting under `id` with what `outcome` makes of the format it
    /// was sent in (keep that cheap: it runs under the lock). Returns false when no attempt
    /// waits (it gave up before the reply came).
    pub(super) fn complete(&self, id: CallId, outcome: impl FnOnce(Format) -> Outcome) -> bool {
        let waker = {
            let mut inner = self.lock();
            let Some(key) = inner.by_id.remove(&id) else {
                return false;
            };
            let slot = &mut inner.slots[key];
            let Slot::Waiting { format, .. } = slot else {
                unreachable!("only waiting slots are indexed");
            };
            let outcome = outcome(*format);
            Self::settle(slot, outcome)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Fails every waiting call with `reason`.
    pub(super) fn fail_all(&self, reason: &Error) {
        let wakers: Vec<Waker> = {
            let mut inner = self.lock();
            let Inner { slots, by_id } = &mut *inner;
            by_id
                .drain()
                .filter_map(|(_, key)| Self::settle(&mut slots[key], Err(reason.clone())))
                .collect()
        };
        for waker in wakers {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use bytes::Bytes;

    use super::*;
    use crate::call::Reply;
    use crate::error::Closed;
    use crate::wire::Metadata;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting_waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    fn reply(body: &'static str, format: Format) -> Outcome {
        Ok(Reply {
            body: Bytes::from_static(body.as_bytes()),
            format,
            metadata: Metadata::new(),
            messages: None,
        })
    }

    #[test]
    fn each_reply_reaches_its_own_call_and_wakes_it_once() {
        let waiters = Waiters::default();
        let (first_count, first_waker) = counting_waker();
        let (second_count, second_waker) = counting_waker();
        let mut first = Some(waiters.insert((10, 0), Format::Json, None));
        let mut second = Some(waiters.insert((20, 0), Format::Raw, None));
        let mut first_cx = Context::from_waker(&first_waker);
        let mut second_cx = Context::from_waker(&second_waker);
        assert!(waiters.poll(&mut first, &mut first_cx).is_pending());
        assert!(waiters.poll(&mut second, &mut second_cx).is_pending());

        // The reply to the second call, in the format it was sent in.
        assert!(waiters.complete((20, 0), |format| reply("two", format)));
        assert_eq!(second_count.0.load(Ordering::SeqCst), 1);
        assert_eq!(first_count.0.load(Ordering::SeqCst), 0);
        let Poll::Ready(Ok(got)) = waiters.poll(&mut second, &mut second_cx) else {
            panic!("the second call has its reply");
        };
        assert_eq!((&got.body[..], got.format), (&b"two"[..], Format::Raw));
        assert!(second.is_none(), "the ticket is spent with the reply");

        // A second reply under the same id finds nobody; the first call still waits.
        assert!(!waiters.complete((20, 0), |format| reply("again", format)));
        assert!(waiters.poll(&mut first, &mut first_cx).is_pending());
        assert!(waiters.complete((10, 0), |format| reply("one", format)));
        assert_eq!(first_count.0.load(Ordering::SeqCst), 1);
        let Poll::Ready(Ok(got)) = waiters.poll(&mut first, &mut first_cx) else {
            panic!("the first call has its reply");
        };
        assert_eq!((&got.body[..], got.format), (&b"one"[..], Format::Json));
        assert!(waiters.lock().slots.is_empty() && waiters.lock().by_id.is_empty());
    }

    #[test]
    fn a_waker_given_with_the_slot_is_woken_without_a_poll() {
        let waiters = Waiters::default();
        let (count, waker) = counting_waker();
        let mut ticket = Some(waiters.insert((3, 0), Format::Json, Some(waker.clone())));
        assert!(waiters.complete((3, 0), |format| reply("early", format)));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        let Poll::Ready(Ok(got)) = waiters.poll(&mut ticket, &mut Context::from_waker(&waker))
        else {
            panic!("the call has its reply");
        };
        assert_eq!(&got.body[..], b"early");
    }

    #[test]
    fn attempts_of_one_call_wait_side_by_side_and_a_reused_attempt_number_cancels() {
        let waiters = Waiters::default();
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut first = Some(waiters.insert((5, 0), Format::Json, None));
        let mut second = Some(waiters.insert((5, 1), Format::Json, None));
        assert!(waiters.poll(&mut first, &mut cx).is_pending());
        assert!(waiters.complete((5, 1), |format| reply("second", format)));
        assert!(waiters.complete((5, 0), |format| reply("first", format)));
        for (ticket, body) in [(&mut first, "first"), (&mut second, "second")] {
            let Poll::Ready(Ok(got)) = waiters.poll(ticket, &mut cx) else {
                panic!("attempt {body} has its reply");
            };
            assert_eq!(&got.body[..], body.as_bytes());
        }
        // The same attempt sent twice: the reply cannot say which it answers.
        let mut old = Some(waiters.insert((6, 0), Format::Json, None));
        let mut new = Some(waiters.insert((6, 0), Format::Json, None));
        assert!(matches!(
            waiters.poll(&mut old, &mut cx),
            Poll::Ready(Err(Error::Cancelled))
        ));
        assert!(waiters.complete((6, 0), |format| reply("new", format)));
        assert!(matches!(
            waiters.poll(&mut new, &mut cx),
            Poll::Ready(Ok(_))
        ));
        assert!(waiters.lock().slots.is_empty() && waiters.lock().by_id.is_empty());
    }

    #[test]
    fn a_call_that_leaves_before_its_reply_is_forgotten() {
        let waiters = Waiters::default();
        let ticket = waiters.insert((7, 0), Format::Json, None);
        assert_eq!(waiters.remove(ticket), Left::Waiting);
        assert!(!waiters.complete((7, 0), |format| reply("late", format)));
        assert!(waiters.lock().slots.is_empty() && waiters.lock().by_id.is_empty());
    }

    #[test]
    fn the_latest_waker_is_the_one_woken() {
        let waiters = Waiters::default();
        let mut ticket = Some(waiters.insert((1, 0), Format::Json, None));
        let (old_count, old_waker) = counting_waker();
        let (new_count, new_waker) = counting_waker();
        assert!(
            waiters
                .poll(&mut ticket, &mut Context::from_waker(&old_waker))
                .is_pending()
        );
        assert!(
            waiters
                .poll(&mut ticket, &mut Context::from_waker(&new_waker))
                .is_pending()
        );
        waiters.complete((1, 0), |format| reply("x", format));
        assert_eq!(old_count.0.load(Ordering::SeqCst), 0);
        assert_eq!(new_count.0.load(Ordering::SeqCst), 1);
        // Answered, not yet taken: giving the ticket back drops the reply.
        assert_eq!(waiters.remove(ticket.unwrap()), Left::Answered);
        assert!(waiters.lock().slots.is_empty());
    }

    #[test]
    fn closing_fails_every_waiting_call_and_wakes_it() {
        let waiters = Waiters::default();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut tickets: Vec<Option<Ticket>> = (0..5)
            .map(|id| Some(waiters.insert((id, 0), Format::Json, None)))
            .collect();
        for ticket in &mut tickets {
            assert!(waiters.poll(ticket, &mut cx).is_pending());
        }
        // One call already answered keeps its reply.
        waiters.complete((0, 0), |format| reply("kept", format));
        waiters.fail_all(&Error::closed(Closed::Eof));
        assert_eq!(count.0.load(Ordering::SeqCst), 5);
        for (id, mut ticket) in tickets.into_iter().enumerate() {
            match waiters.poll(&mut ticket, &mut cx) {
                Poll::Ready(Ok(reply)) => assert_eq!((id, &reply.body[..]), (0, &b"kept"[..])),
                Poll::Ready(Err(Error::Closed {
                    reason: Closed::Eof,
                    ..
                })) => assert_ne!(id, 0),
                other => panic!("call {id}: {other:?}"),
            }
            assert!(ticket.is_none());
        }
        assert!(waiters.lock().slots.is_empty() && waiters.lock().by_id.is_empty());
    }
}
