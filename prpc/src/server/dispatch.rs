//! From a request frame to a response frame: lookup, decoding, the handler, its deadline and
//! its panics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;
use tokio::time::Instant;

use crate::body::NO_TAIL;
use crate::compress::Compression;
use crate::compress::CompressionPolicy;
use crate::format::Format;
use crate::reflection::Reflection;
use crate::service::Request;
use crate::service::Response;
use crate::service::Service;
use crate::status::Code;
use crate::status::Status;
use crate::wire::Metadata;
use crate::wire::{
    self, Encoding, Frame, FrameRef, HeadRef, Refused, RequestFields, RequestHead, WireError,
};

/// Up to this many names (services of a server, methods of a service) are found by comparing
/// them in turn, which beats hashing the name when there are few.
const FEW_NAMES: usize = 8;

/// A lookup by name, as the name's bytes arrive off the wire.
enum Table<V> {
    Few(Vec<(Box<[u8]>, V)>),
    Many(HashMap<Box<[u8]>, V>),
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table::Few(Vec::new())
    }
}

impl<V> Table<V> {
    /// Adds `value` under `name`, replacing any value already there.
    fn insert(&mut self, name: &str, value: V) {
        let name: Box<[u8]> = name.as_bytes().into();
        match self {
            Table::Few(entries) => {
                entries.retain(|(key, _)| *key != name);
                entries.push((name, value));
                if entries.len() > FEW_NAMES {
                    *self = Table::Many(std::mem::take(entries).into_iter().collect());
                }
            }
            Table::Many(entries) => {
                entries.insert(name, value);
            }
        }
    }

    #[inline]
    fn get(&self, name: &[u8]) -> Option<&V> {
        match self {
            Table::Few(entries) => entries
                .iter()
                .find(|(key, _)| **key == *name)
                .map(|(_, value)| value),
            Table::Many(entries) => entries.get(name),
        }
    }

    /// Every value, in no particular order.
    fn values(&self) -> Box<dyn Iterator<Item = &V> + '_> {
        match self {
            Table::Few(entries) => Box::new(entries.iter().map(|(_, value)| value)),
            Table::Many(entries) => Box::new(entries.values()),
        }
    }
}

/// A registered service and its method names, shared by every call to them (a call then
/// needs no `Bytes` of the read buffer, nor a UTF-8 check, for its names).
struct Entry {
    service: Arc<dyn Service>,
    methods: Table<Method>,
}

/// A method of a registered service: its name, and its number on the server (for the stats
/// layer to find its counters by, see [`Services::slots`]).
struct Method {
    name: ByteString,
    slot: u32,
}

/// The services of one server, by name.
#[derive(Default)]
pub(super) struct Services {
    by_name: Table<Entry>,
    /// Methods numbered so far (a replaced service's numbers are not reused).
    slots: u32,
}

impl Services {
    pub(super) fn insert(&mut self, service: Arc<dyn Service>) {
        let mut methods = Table::default();
        for method in service.methods() {
            let slot = self.slots;
            self.slots += 1;
            let name = ByteString::from(method.clone());
            methods.insert(&method, Method { name, slot });
        }
        let name = service.name().to_owned();
        self.by_name.insert(&name, Entry { service, methods });
    }

    /// Every listed method by its number: `(number, service, method)`.
    pub(super) fn slots(&self) -> Vec<(u32, String, String)> {
        let mut slots = Vec::new();
        for entry in self.by_name.values() {
            let service = entry.service.name();
            for method in entry.methods.values() {
                slots.push((method.slot, service.to_owned(), method.name.to_string()));
            }
        }
        slots
    }

    /// Adds the reflection service, describing every service present (call last).
    pub(super) fn add_reflection(&mut self) {
        let reflection = Reflection::new(self.iter());
        self.insert(Arc::new(reflection));
    }

    /// Every service, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &dyn Service> {
        self.by_name.values().map(|entry| &*entry.service)
    }

    /// Every service by name, sorted by name.
    pub(super) fn named(&self) -> Vec<(String, Arc<dyn Service>)> {
        let mut named: Vec<_> = self
            .by_name
            .values()
            .map(|entry| (entry.service.name().to_owned(), entry.service.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }

    pub(super) fn get(&self, name: &str) -> Option<&Arc<dyn Service>> {
        self.by_name
            .get(name.as_bytes())
            .map(|entry| &entry.service)
    }

    /// The service and the method a request names, as their bytes came: `None` unless both
    /// are known (an unknown name, or a method its service does not list, goes the long way
    /// through [`Incoming::from_frame`]).
    pub(super) fn resolve(
        &self,
        service: &[u8],
        method: &[u8],
    ) -> Option<(&Arc<dyn Service>, ByteString, u32)> {
        let entry = self.by_name.get(service)?;
        let method = entry.methods.get(method)?;
        Some((&entry.service, method.name.clone(), method.slot))
    }
}

/// A request to run, however it was read: taken from its view (names resolved, no metadata)
/// or decoded whole. (Its fixed fields travel beside it: a refused request has them too.)
pub(super) struct Incoming<'a> {
    pub(super) service: &'a Arc<dyn Service>,
    pub(super) method: ByteString,
    pub(super) metadata: Metadata,
    pub(super) body: Bytes,
    /// The method's number, when the service lists it.
    pub(super) slot: Option<u32>,
}

impl<'a> Incoming<'a> {
    /// A request decoded whole: finds its service. `Err` is the status to answer with.
    pub(super) fn from_frame(
        services: &'a Services,
        head: RequestHead,
        body: Bytes,
    ) -> Result<Self, Status> {
        let Some(entry) = services.by_name.get(head.service.as_bytes()) else {
            return Err(Status::unimplemented(format!(
                "no service named \"{}\" on this server",
                head.service
            )));
        };
        let slot = entry
            .methods
            .get(head.method.as_bytes())
            .map(|method| method.slot);
        Ok(Incoming {
            service: &entry.service,
            method: head.method,
            metadata: head.metadata,
            body,
            slot,
        })
    }
}

/// A request ready to run: its service, the decoded request, and how to encode the reply.
pub(super) struct Prepared<'a> {
    pub(super) service: &'a Arc<dyn Service>,
    pub(super) request: Request,
    pub(super) reply: ReplyEncoding,
}

/// How a reply goes back: the request's ids, format and compression.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReplyEncoding {
    pub(super) request_id: u64,
    pub(super) attempt: u32,
    pub(super) format_id: u8,
    pub(super) compression: CompressionPolicy,
}

impl ReplyEncoding {
    /// For replies the server makes before it knows the request's compression is valid (or
    /// in place of another reply to the same call).
    pub(super) fn plain(request_id: u64, attempt: u32, encoding: Encoding) -> Self {
        ReplyEncoding {
            request_id,
            attempt,
            format_id: encoding.format_id(),
            compression: CompressionPolicy::NONE,
        }
    }

    /// Queues the reply to a call on `outbound`; a reply over the frame size limit goes as a
    /// `resource_exhausted` status instead. Returns the bytes queued now (0 when the
    /// connection is gone).
    pub(super) fn send(self, result: &Result<Response, Status>, outbound: &wire::Sender) -> usize {
        match self.with_frame(result, |frame| outbound.send(frame)) {
            Ok(queued) => queued,
            Err(Refused::Encode(WireError::FrameTooLarge { length, max })) => {
                let status = Err(too_large(length, max));
                self.uncompressed()
                    .with_frame(&status, |frame| outbound.send(frame))
                    .unwrap_or_default()
            }
            Err(Refused::Encode(error)) if error.is_limit() => {
                let status = Err(Status::new(
                    Code::ResourceExhausted,
                    format!("the reply's {error}"),
                ));
                self.uncompressed()
                    .with_frame(&status, |frame| outbound.send(frame))
                    .unwrap_or_default()
            }
            Err(_) => 0,
        }
    }

    /// The response frame for a handler's result, owned (for a reply that is stored); a
    /// reply over `max_frame_size` becomes a `resource_exhausted` status instead.
    pub(super) fn frame(self, result: &Result<Response, Status>, max_frame_size: u32) -> Frame {
        let fits = self.with_frame(result, |frame| {
            let length = frame.encoded_len();
            if length <= max_frame_size as usize {
                Ok(frame.to_frame())
            } else {
                Err(length)
            }
        });
        fits.unwrap_or_else(|length| {
            let status = Err(too_large(length as u64, max_frame_size));
            self.uncompressed()
                .with_frame(&status, |frame| frame.to_frame())
        })
    }

    /// The same reply, never compressed.
    pub(super) fn uncompressed(self) -> Self {
        ReplyEncoding {
            compression: CompressionPolicy::NONE,
            ..self
        }
    }

    /// Hands `write` the response frame for a handler's result, borrowed from it (the body
    /// compressed first when the policy says so; a body that fails to compress goes as it is).
    fn with_frame<T>(
        self,
        result: &Result<Response, Status>,
        write: impl FnOnce(FrameRef<'_>) -> T,
    ) -> T {
        let (code, message, metadata, parts) = match result {
            Ok(response) => (Code::Ok, "", &response.metadata, response.body.parts()),
            Err(status) => (
                status.code(),
                status.message(),
                status.metadata(),
                (status.details(), &NO_TAIL),
            ),
        };
        // A replayed reply goes as it was stored; any other body is compressed as the policy
        // says (a body that fails to compress goes as it is).
        let stored = result
            .as_ref()
            .ok()
            .and_then(|response| response.compressed);
        let packed = match stored {
            Some(_) => None,
            None => self.compression.apply(parts).ok().flatten(),
        };
        let (compression, (body, tail)) = match (&packed, stored) {
            (Some((compression, packed)), _) => (*compression, (packed, &NO_TAIL)),
            (None, stored) => (stored.unwrap_or(Compression::None), parts),
        };
        write(FrameRef {
            request_id: self.request_id,
            attempt: self.attempt,
            encoding: Encoding::new(self.format_id, compression.id()),
            head: HeadRef::Response {
                code: code.as_u32(),
                message,
                metadata,
            },
            body,
            tail,
        })
    }
}

/// Decodes the request's encoding and sets its deadline; `peer` is the connection's. `Err` is
/// the status to answer with.
pub(super) fn prepare<'a>(
    fields: &RequestFields,
    incoming: Incoming<'a>,
    peer: Option<SocketAddr>,
    received: Instant,
    compression_threshold: usize,
    max_body: usize,
) -> Result<Prepared<'a>, Status> {
    let Incoming {
        service,
        method,
        metadata,
        body,
        slot,
    } = incoming;
    let RequestFields {
        request_id,
        attempt,
        encoding,
        deadline,
        dedupe,
        ..
    } = *fields;
    let format = Format::from_id(encoding.format_id())?;
    let compression = Compression::from_id(encoding.compression_id())?;
    let body = match compression {
        Compression::None => body,
        other => other.decompress(&body, max_body)?,
    };
    Ok(Prepared {
        service,
        request: Request {
            method,
            format,
            compression,
            body,
            metadata,
            deadline: deadline.map(|deadline| (received + deadline).into_std()),
            timeout: deadline,
            request_id,
            attempt,
            dedupe,
            messages: None,
            peer,
            received: Some(received.into_std()),
            started: None,
            slot,
        },
        reply: ReplyEncoding {
            request_id,
            attempt,
            format_id: format.id(),
            compression: CompressionPolicy {
                compression,
                threshold: compression_threshold,
            },
        },
    })
}

/// The status that replaces a reply over `max_frame_size`. Short and bodiless, so it fits in
/// any frame size the builders allow.
pub(super) fn too_large(length: u64, max_frame_size: u32) -> Status {
    Status::new(
        Code::ResourceExhausted,
        format!("reply of {length} bytes exceeds max_frame_size {max_frame_size}"),
    )
}
