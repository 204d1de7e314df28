//! The raw baseline of the stream benchmarks (`benches/stream.sh`): `raw_echo`'s framing
//! (`prpc_benches::raw_frames`: a 12-byte header, then the body) and no framework, no flow
//! control, no multiplexing: the practical ceiling for a stream on one connection. Same
//! command line and report as `prpc_stream`, scenarios `server-stream` (one stream) and
//! `client-stream`; `mixed` needs unary calls, which this program does not have.
//!
//! ```text
//! raw_stream server [ADDR] [--runtime current|multi]
//! raw_stream client ADDR --scenario server-stream|client-stream [--size BYTES] ...
//! ```
//!
//! A frame with id [`STREAM`] (body: the message size, u32 big-endian) starts the server
//! sending frames of that size with the same id without end; the client's task reads the
//! socket and takes each frame as a message. Frames with id [`UPLOAD`] are counted by the
//! server. A frame with id [`STATS`] asks for `prpc_benches::streams::ServerStats`; the client
//! asks on a second connection of its own, so that the measured one carries the stream alone.
//!
//! Senders write as prpc's outbox does: small frames encoded into one buffer until it holds
//! 64 KiB, then one write; a large frame as one vectored write of its header and its body.

use bytes::{Buf, Bytes, BytesMut};
use prpc_benches::driver;
use prpc_benches::options::{self, Role};
use prpc_benches::raw_frames::{
    HEADER, READ_CHUNK, put_frame, put_header, reserve_for_next, take_frame,
};
use prpc_benches::streams::{
    self, Receiver, STATS_LENGTH, Scenario, ServerStats, StreamCaller, StreamOptions,
    record_received,
};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Opens the server stream (client to server), and each of its messages (server to client).
const STREAM: u64 = 1;
/// A message of the client's stream.
const UPLOAD: u64 = 2;
/// Asks for the server's counters, and answers them.
const STATS: u64 = u64::MAX;
/// Bytes encoded before a write (prpc's outbox writes once it holds 64 KiB).
const FULL_BATCH: usize = 64 * 1024;

/// What a connection's writer sends.
enum Command {
    /// This frame, again and again, from now on.
    Repeat { id: u64, body: Bytes },
    /// This frame, once.
    Frame { id: u64, body: Bytes },
}

/// A connection's writer: sends each `Frame` command, and the `Repeat` frame between them as
/// fast as the socket takes it.
async fn write_loop(mut write: OwnedWriteHalf, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut repeat: Option<(u64, Bytes)> = None;
    let mut buffer = BytesMut::with_capacity(FULL_BATCH + READ_CHUNK);
    loop {
        let command = if repeat.is_some() {
            match commands.try_recv() {
                Ok(command) => Some(command),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        } else {
            match commands.recv().await {
                Some(command) => Some(command),
                None => return,
            }
        };
        match command {
            Some(Command::Repeat { id, body }) => repeat = Some((id, body)),
            Some(Command::Frame { id, body }) => put_frame(&mut buffer, id, &body),
            None => {}
        }
        let written = match &repeat {
            Some((id, body)) if body.len() >= FULL_BATCH => {
                put_header(&mut buffer, *id, body.len());
                let mut frame = Buf::chain(&buffer[..], &body[..]);
                write.write_all_buf(&mut frame).await
            }
            Some((id, body)) => {
                while buffer.len() < FULL_BATCH {
                    put_frame(&mut buffer, *id, body);
                }
                write.write_all(&buffer).await
            }
            None => write.write_all(&buffer).await,
        };
        if written.is_err() {
            return;
        }
        buffer.clear();
    }
}

fn main() {
    let options = StreamOptions::from_args();
    match options.common.role {
        Role::Server => options.common.runtime.run(serve(options)),
        Role::Client => options.common.runtime.run(drive(options)),
    }
}

async fn serve(options: StreamOptions) {
    let listener = TcpListener::bind(&options.common.addr).await.expect("bind");
    options::announce(listener.local_addr().expect("local address"));
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        tokio::spawn(async move {
            let _ = serve_connection(stream).await;
        });
    }
}

async fn serve_connection(stream: TcpStream) -> std::io::Result<()> {
    let (mut read, write) = stream.into_split();
    let (commands, queued) = mpsc::unbounded_channel();
    tokio::spawn(write_loop(write, queued));
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    loop {
        reserve_for_next(&mut input);
        if read.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
        while let Some((id, body)) = take_frame(&mut input) {
            let command = match id {
                UPLOAD => {
                    record_received(body.len());
                    continue;
                }
                STREAM => {
                    let size = body[..]
                        .try_into()
                        .map(u32::from_be_bytes)
                        .expect("a u32 size");
                    Command::Repeat {
                        id: STREAM,
                        body: Bytes::from(vec![0x5a; size as usize]),
                    }
                }
                STATS => Command::Frame {
                    id: STATS,
                    body: Bytes::copy_from_slice(&ServerStats::now().encode()),
                },
                _ => continue,
            };
            if commands.send(command).is_err() {
                return Ok(());
            }
        }
    }
}

/// The measured connection, and a second one for `stats`.
#[derive(Clone)]
struct RawCaller {
    commands: mpsc::UnboundedSender<Command>,
    /// The measured connection's read half, until a server stream takes it.
    read: Arc<Mutex<Option<OwnedReadHalf>>>,
    control: Arc<tokio::sync::Mutex<TcpStream>>,
}

/// The one server stream: its task reads the socket itself.
struct RawReceiver {
    read: OwnedReadHalf,
    input: BytesMut,
}

impl Receiver for RawReceiver {
    async fn next(&mut self) -> usize {
        loop {
            if let Some((_, message)) = take_frame(&mut self.input) {
                return message.freeze().len();
            }
            reserve_for_next(&mut self.input);
            let read = self.read.read_buf(&mut self.input).await;
            assert!(read.expect("read the stream") > 0, "server stream ended");
        }
    }
}

impl StreamCaller for RawCaller {
    type Receiver = RawReceiver;

    async fn server_stream(&self, size: usize) -> RawReceiver {
        let size = u32::try_from(size).expect("message size under 4 GiB");
        let read = self
            .read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("raw_stream carries one server stream");
        let body = Bytes::copy_from_slice(&size.to_be_bytes());
        let opened = self.commands.send(Command::Frame { id: STREAM, body });
        opened.unwrap_or_else(|_| panic!("writer stopped"));
        RawReceiver {
            read,
            input: BytesMut::with_capacity(READ_CHUNK),
        }
    }

    async fn start_upload(&self, chunk: Bytes) {
        let started = self.commands.send(Command::Repeat {
            id: UPLOAD,
            body: chunk,
        });
        started.unwrap_or_else(|_| panic!("writer stopped"));
    }

    async fn stats(&self) -> ServerStats {
        let mut control = self.control.lock().await;
        let mut request = BytesMut::new();
        put_frame(&mut request, STATS, &[]);
        control.write_all(&request).await.expect("stats request");
        let mut reply = [0; HEADER + STATS_LENGTH];
        control.read_exact(&mut reply).await.expect("stats reply");
        ServerStats::decode(&reply[HEADER..])
    }
}

async fn drive(options: StreamOptions) {
    match options.scenario {
        Scenario::Mixed => panic!("raw_stream has no unary calls for scenario mixed"),
        Scenario::ServerStream => assert_eq!(options.streams, 1, "raw_stream has one stream"),
        Scenario::ClientStream => {}
    }
    let (stream, socket) = driver::connect(&options.common.addr).await;
    let (control, _) = driver::connect(&options.common.addr).await;
    let (read, write) = stream.into_split();
    let (commands, queued) = mpsc::unbounded_channel();
    tokio::spawn(write_loop(write, queued));
    let caller = RawCaller {
        commands,
        read: Arc::new(Mutex::new(Some(read))),
        control: Arc::new(tokio::sync::Mutex::new(control)),
    };
    streams::drive(&options, caller, socket).await;
}
