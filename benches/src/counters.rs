//! Process CPU time and per-socket TCP counters: what the report's cost-per-call figures are
//! made of.
//!
//! CPU time is `getrusage(RUSAGE_SELF)`, user + system, of every thread of the process. Bytes
//! on the wire come from the kernel's `TCP_INFO` of each client socket: `tcpi_bytes_sent` and
//! `tcpi_bytes_received` count TCP payload (every framework's framing, headers and control
//! frames included; IP and TCP headers not), and `tcpi_segs_out`/`tcpi_segs_in` count
//! segments, pure ACKs included. On loopback each segment adds 52 bytes of IPv4 + TCP headers
//! (with timestamps) to the payload.

// Two libc calls with no safe wrapper in std; each is a plain out-parameter call.
#![allow(unsafe_code)]

use std::io;
use std::mem::MaybeUninit;
use std::ops::{Add, Sub};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// CPU time (user + system) the process has used so far, across all its threads.
pub fn process_cpu_time() -> Duration {
    let mut usage = MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is valid for writes of one `rusage`, which getrusage fills on success.
    let result = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(result, 0, "getrusage: {}", io::Error::last_os_error());
    // SAFETY: getrusage succeeded, so the struct is initialised (it was zeroed before anyway).
    let usage = unsafe { usage.assume_init() };
    let time = |value: libc::timeval| {
        Duration::new(value.tv_sec as u64, 0) + Duration::from_micros(value.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A socket's traffic so far, from `TCP_INFO`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketCounters {
    /// TCP payload bytes sent (`tcpi_bytes_sent`; `tcpi_bytes_acked` on kernels before 4.19).
    pub bytes_sent: u64,
    /// TCP payload bytes received (`tcpi_bytes_received`).
    pub bytes_received: u64,
    /// Segments sent, pure ACKs included (`tcpi_segs_out`).
    pub segments_out: u64,
    /// Segments received, pure ACKs included (`tcpi_segs_in`).
    pub segments_in: u64,
}

impl SocketCounters {
    /// Reads the counters of a TCP socket.
    pub fn read(socket: BorrowedFd<'_>) -> io::Result<SocketCounters> {
        // Room for `struct tcp_info` as of Linux 6.x (248 bytes); the kernel fills what it has
        // and says how much.
        let mut info = [0u8; 320];
        let mut length = info.len() as libc::socklen_t;
        // SAFETY: `info` is valid for writes of `length` bytes and `length` is a valid
        // in/out length; the kernel writes at most `length` bytes.
        let result = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut length,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        let info = &info[..(length as usize).min(info.len())];
        // Offsets of the fields in `struct tcp_info` (linux/tcp.h).
        let u64_at = |offset: usize| {
            info.get(offset..offset + 8)
                .map(|bytes| u64::from_ne_bytes(bytes.try_into().expect("eight bytes")))
        };
        let u32_at = |offset: usize| {
            info.get(offset..offset + 4)
                .map(|bytes| u64::from(u32::from_ne_bytes(bytes.try_into().expect("four bytes"))))
        };
        const BYTES_ACKED: usize = 120;
        const BYTES_RECEIVED: usize = 128;
        const SEGS_OUT: usize = 136;
        const SEGS_IN: usize = 140;
        const BYTES_SENT: usize = 200;
        let missing = || io::Error::other("TCP_INFO lacks byte counters (Linux 4.6 or later)");
        Ok(SocketCounters {
            bytes_sent: u64_at(BYTES_SENT)
                .or_else(|| u64_at(BYTES_ACKED))
                .ok_or_else(missing)?,
            bytes_received: u64_at(BYTES_RECEIVED).ok_or_else(missing)?,
            segments_out: u32_at(SEGS_OUT).ok_or_else(missing)?,
            segments_in: u32_at(SEGS_IN).ok_or_else(missing)?,
        })
    }

    /// The counters of several sockets, summed.
    pub fn read_all(sockets: &[OwnedFd]) -> SocketCounters {
        sockets
            .iter()
            .map(|socket| SocketCounters::read(socket.as_fd()).expect("TCP_INFO"))
            .fold(SocketCounters::default(), |sum, counters| sum + counters)
    }

    /// Payload bytes both ways.
    pub fn bytes(&self) -> u64 {
        self.bytes_sent + self.bytes_received
    }

    /// Segments both ways.
    pub fn segments(&self) -> u64 {
        self.segments_out + self.segments_in
    }
}

impl Add for SocketCounters {
    type Output = SocketCounters;

    fn add(self, other: SocketCounters) -> SocketCounters {
        SocketCounters {
            bytes_sent: self.bytes_sent + other.bytes_sent,
            bytes_received: self.bytes_received + other.bytes_received,
            segments_out: self.segments_out + other.segments_out,
            segments_in: self.segments_in + other.segments_in,
        }
    }
}

impl Sub for SocketCounters {
    type Output = SocketCounters;

    fn sub(self, earlier: SocketCounters) -> SocketCounters {
        SocketCounters {
            bytes_sent: self.bytes_sent.wrapping_sub(earlier.bytes_sent),
            bytes_received: self.bytes_received.wrapping_sub(earlier.bytes_received),
            // The segment counters are 32-bit in the kernel and may wrap.
            segments_out: (self.segments_out.wrapping_sub(earlier.segments_out)) & 0xffff_ffff,
            segments_in: (self.segments_in.wrapping_sub(earlier.segments_in)) & 0xffff_ffff,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = process_cpu_time();
        let mut sum = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(50) {
            sum = sum.wrapping_add(std::hint::black_box(sum) ^ 0x9e37_79b9);
        }
        std::hint::black_box(sum);
        assert!(process_cpu_time() > before);
    }

    #[test]
    fn socket_counters_count_payload() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let before = SocketCounters::read(client.as_fd()).unwrap();
        client.write_all(&[7; 1000]).unwrap();
        let mut received = [0; 1000];
        server.read_exact(&mut received).unwrap();
        server.write_all(&received[..10]).unwrap();
        client.read_exact(&mut received[..10]).unwrap();
        let delta = SocketCounters::read(client.as_fd()).unwrap() - before;
        assert_eq!(delta.bytes_sent, 1000);
        assert_eq!(delta.bytes_received, 10);
        assert!(delta.segments_out >= 1 && delta.segments_in >= 1);
    }
}
