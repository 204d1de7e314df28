//! The W3C Trace Context `traceparent` header: parsed from a caller's metadata, formatted into
//! a call's (<https://www.w3.org/TR/trace-context/#traceparent-header>).
//!
//! The header is network input, so parsing is strict where the spec is: lowercase hex only,
//! exact field widths, no all-zero ids, version `ff` refused. A later version is read by the
//! spec's rule for versions it does not know (its first four fields, then the end or a dash)
//! and sent on as version `00`, the only one this code writes.

use std::fmt;

use bytes::Bytes;

/// The length of a version-`00` header: `00-` + 32 hex + `-` + 16 hex + `-` + 2 hex.
const LENGTH: usize = 55;

/// A trace's position as a call carries it: which trace, which span the receiver's span is a
/// child of, and the trace's flags (W3C Trace Context `traceparent`).
///
/// Inside a handler served under [`TraceLayer`](super::TraceLayer), [`current`](super::current)
/// returns the handler's own: its `parent_id` is the id of the handler's server span, the
/// parent of every call the handler makes.
///
/// ```
/// use prpc::trace::TraceContext;
///
/// let header = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let context = TraceContext::parse(header).unwrap();
/// assert_eq!(context.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
/// assert_eq!(context.parent_id, 0x00f067aa0ba902b7);
/// assert!(context.is_sampled());
/// assert_eq!(&context.to_header()[..], &header[..]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace, the same in every span of it across processes (never zero).
    pub trace_id: u128,
    /// The id of the span the receiver's span is a child of (never zero).
    pub parent_id: u64,
    /// The trace flags; bit `0x01` is [`SAMPLED`](TraceContext::SAMPLED).
    pub flags: u8,
}

impl TraceContext {
    /// The flag saying the caller may have recorded its span.
    ///
    /// ```
    /// use prpc::trace::TraceContext;
    ///
    /// let context = TraceContext { trace_id: 1, parent_id: 2, flags: TraceContext::SAMPLED };
    /// assert!(context.is_sampled());
    /// ```
    pub const SAMPLED: u8 = 0x01;

    /// A new trace, sampled, with random ids (from `fastrand`: unique enough to tell traces
    /// apart, not secret).
    ///
    /// ```
    /// let root = prpc::trace::TraceContext::new_root();
    /// assert!(root.trace_id != 0 && root.parent_id != 0 && root.is_sampled());
    /// ```
    pub fn new_root() -> Self {
        TraceContext {
            trace_id: fastrand::u128(1..),
            parent_id: new_span_id(),
            flags: Self::SAMPLED,
        }
    }

    /// The context of a span that is a child of this one's parent: the same trace and flags,
    /// a new random span id (what a span sends to the calls it makes).
    ///
    /// ```
    /// let parent = prpc::trace::TraceContext::new_root();
    /// let child = parent.child();
    /// assert_eq!(child.trace_id, parent.trace_id);
    /// assert_ne!(child.parent_id, parent.parent_id);
    /// ```
    #[must_use]
    pub fn child(&self) -> Self {
        TraceContext {
            parent_id: new_span_id(),
            ..*self
        }
    }

    /// Whether the [`SAMPLED`](TraceContext::SAMPLED) flag is set.
    ///
    /// ```
    /// let header = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    /// assert!(!prpc::trace::TraceContext::parse(header).unwrap().is_sampled());
    /// ```
    pub fn is_sampled(&self) -> bool {
        self.flags & Self::SAMPLED != 0
    }

    /// Parses a `traceparent` header value, or `None` if it is not one this code may use.
    ///
    /// Version `00` must be exactly 55 bytes; a later version at least that, followed by the
    /// end or `-`. Hex is lowercase; trace and parent ids must not be all zeros; version `ff`
    /// is invalid. A header refused here starts a new trace where it arrived.
    ///
    /// ```
    /// use prpc::trace::TraceContext;
    ///
    /// assert!(TraceContext::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_some());
    /// // Uppercase, an all-zero trace id, version ff:
    /// assert!(TraceContext::parse(b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_none());
    /// assert!(TraceContext::parse(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
    /// assert!(TraceContext::parse(b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
    /// ```
    pub fn parse(header: &[u8]) -> Option<Self> {
        let head = header.get(..LENGTH)?;
        let version = hex(&head[0..2])? as u8;
        match version {
            0xff => return None,
            0x00 if header.len() != LENGTH => return None,
            // A later version may carry more fields after a dash.
            _ if header.len() > LENGTH && header[LENGTH] != b'-' => return None,
            _ => {}
        }
        if head[2] != b'-' || head[35] != b'-' || head[52] != b'-' {
            return None;
        }
        let trace_id = hex(&head[3..35])?;
        let parent_id = hex(&head[36..52])? as u64;
        let flags = hex(&head[53..55])? as u8;
        if trace_id == 0 || parent_id == 0 {
            return None;
        }
        Some(TraceContext {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The `traceparent` value for this context, version `00`, lowercase.
    ///
    /// ```
    /// use prpc::trace::TraceContext;
    ///
    /// let context = TraceContext { trace_id: 1, parent_id: 2, flags: 1 };
    /// assert_eq!(
    ///     &context.to_header()[..],
    ///     b"00-00000000000000000000000000000001-0000000000000002-01"
    /// );
    /// ```
    pub fn to_header(&self) -> Bytes {
        Bytes::copy_from_slice(&self.encode())
    }

    /// The header's bytes, on the stack.
    fn encode(&self) -> [u8; LENGTH] {
        let mut header = [b'-'; LENGTH];
        header[0] = b'0';
        header[1] = b'0';
        put_hex(&mut header[3..35], self.trace_id);
        put_hex(&mut header[36..52], u128::from(self.parent_id));
        put_hex(&mut header[53..55], u128::from(self.flags));
        header
    }
}

/// The header's text, as [`to_header`](TraceContext::to_header) makes it.
///
/// ```
/// let context = prpc::trace::TraceContext { trace_id: 0xab, parent_id: 0xcd, flags: 0 };
/// assert_eq!(context.to_string(), "00-000000000000000000000000000000ab-00000000000000cd-00");
/// ```
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = self.encode();
        // Only ASCII digits, letters and dashes were written.
        f.write_str(std::str::from_utf8(&header).map_err(|_| fmt::Error)?)
    }
}

/// A new span id: random, never zero.
pub(super) fn new_span_id() -> u64 {
    fastrand::u64(1..)
}

/// The value of lowercase hex digits (at most 32 of them), or `None` for any other byte.
fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |value, &digit| {
        let nibble = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u128::from(nibble))
    })
}

/// Writes `value`'s low `out.len()` nibbles as lowercase hex, most significant first.
fn put_hex(out: &mut [u8], value: u128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut value = value;
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// An id as fixed-width lowercase hex in a span's fields (formatted only when a subscriber
/// records it).
pub(super) struct Hex<T>(pub(super) T);

impl fmt::Display for Hex<u128> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Display for Hex<u64> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl<T> fmt::Debug for Hex<T>
where
    Hex<T>: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The spec's example.
    const EXAMPLE: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specs_examples_parse() {
        let sampled = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(
            sampled,
            TraceContext {
                trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                parent_id: 0x00f0_67aa_0ba9_02b7,
                flags: 0x01,
            }
        );
        let unsampled =
            TraceContext::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .unwrap();
        assert!(!unsampled.is_sampled());
        assert_eq!(
            &unsampled.to_header()[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
        assert_eq!(sampled.to_string().as_bytes(), EXAMPLE);
    }

    #[test]
    fn malformed_headers_are_refused() {
        let cases: &[&[u8]] = &[
            b"",
            b"00",
            // One byte short, one byte long.
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
            // Uppercase in each field.
            b"0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            // All-zero ids.
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // Version ff, even when the rest is well formed.
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // Wrong separators, field widths off by one.
            b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-701",
            // Not hex, whitespace, a sign.
            b"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            b" 0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // A later version too short, or longer without a dash after the flags.
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ];
        for case in cases {
            assert_eq!(
                TraceContext::parse(case),
                None,
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields_and_sent_as_00() {
        for header in [
            &b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..],
            b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds",
        ] {
            let context = TraceContext::parse(header).unwrap();
            assert_eq!(&context.to_header()[..], EXAMPLE);
        }
    }

    fn lowercase_hex(length: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[0-9a-f]{{{length}}}")).unwrap()
    }

    proptest! {
        #[test]
        fn a_header_formats_back_to_its_own_bytes(
            trace_id in lowercase_hex(32),
            parent_id in lowercase_hex(16),
            flags in lowercase_hex(2),
        ) {
            let header = format!("00-{trace_id}-{parent_id}-{flags}");
            match TraceContext::parse(header.as_bytes()) {
                Some(context) => {
                    prop_assert_eq!(&context.to_header()[..], header.as_bytes());
                    prop_assert_eq!(TraceContext::parse(&context.to_header()), Some(context));
                }
                None => prop_assert!(
                    trace_id.bytes().all(|b| b == b'0') || parent_id.bytes().all(|b| b == b'0')
                ),
            }
        }

        #[test]
        fn any_context_round_trips(trace_id in 1u128.., parent_id in 1u64.., flags: u8) {
            let context = TraceContext { trace_id, parent_id, flags };
            prop_assert_eq!(TraceContext::parse(&context.to_header()), Some(context));
        }
    }
}
