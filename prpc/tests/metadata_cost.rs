//! What decoded metadata costs in memory, counted by a global allocator: a frame of many empty
//! metadata pairs must cost about what its bytes cost, not tens of bytes per pair (a client
//! could otherwise turn a frame of `max_frame_size` into many times that much server memory).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use prpc::wire::{Frame, FrameCodec, Head};
use tokio_util::codec::Decoder;

/// Counts the bytes allocated (never decremented: the figure is what decoding asked for).
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)] // a global allocator can only be written with `unsafe`
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A request frame whose metadata is `pairs` empty pairs (two zero bytes each).
fn frame_of_empty_pairs(pairs: usize) -> BytesMut {
    let mut fields = vec![1, 0, 1, b's', 1, b'm', 0];
    let mut count = pairs as u64;
    loop {
        let byte = (count & 0x7f) as u8;
        count >>= 7;
        if count == 0 {
            fields.push(byte);
            break;
        }
        fields.push(byte | 0x80);
    }
    fields.resize(fields.len() + 2 * pairs, 0);
    let mut frame = BytesMut::from(&[0xB7, 1, 1, 0][..]);
    frame.extend_from_slice(&(fields.len() as u32).to_be_bytes());
    frame.extend_from_slice(&fields);
    frame
}

/// Decodes `bytes` and returns the frame with the bytes and allocations decoding took.
fn decode_counted(
    mut bytes: BytesMut,
) -> (Result<Option<Frame>, prpc::wire::WireError>, usize, usize) {
    let (before, count_before) = (
        ALLOCATED.load(Ordering::SeqCst),
        ALLOCATIONS.load(Ordering::SeqCst),
    );
    let decoded = FrameCodec::new().decode(&mut bytes);
    let allocated = ALLOCATED.load(Ordering::SeqCst) - before;
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - count_before;
    (decoded, allocated, allocations)
}

#[test]
fn the_most_metadata_a_frame_may_carry_costs_about_its_wire_bytes() {
    let mut costs = Vec::new();
    for pairs in [1, prpc::wire::MAX_METADATA_PAIRS] {
        let wire = frame_of_empty_pairs(pairs);
        let wire_len = wire.len();
        let (decoded, allocated, allocations) = decode_counted(wire);
        let frame = decoded.unwrap().unwrap();
        let Head::Request(head) = &frame.head else {
            panic!("not a request: {frame:?}");
        };
        assert_eq!(head.metadata.len(), pairs);
        assert!(
            head.metadata
                .iter()
                .all(|(key, value)| key.is_empty() && value.is_empty())
        );
        eprintln!(
            "{pairs} empty pairs, {wire_len} bytes on the wire: \
             {allocated} bytes in {allocations} allocations"
        );
        costs.push((allocated, allocations));
    }
    // The pairs stay in the frame's buffer: what decoding allocates does not grow with them.
    assert_eq!(costs[0], costs[1]);
    assert!(costs[1].0 <= 128, "{costs:?}");
}

#[test]
fn a_frame_of_more_pairs_than_the_limit_is_refused_without_allocating_for_them() {
    let wire = frame_of_empty_pairs(1 << 20);
    let (decoded, allocated, _) = decode_counted(wire);
    let error = decoded.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "metadata of 1048576 pairs exceeds the limit of {} pairs",
            prpc::wire::MAX_METADATA_PAIRS
        )
    );
    assert!(allocated <= 128, "{allocated} bytes allocated");
}
