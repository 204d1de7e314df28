//! The built-in call every server answers: which services it has, with which methods.
//!
//! The service is named [`SERVICE`] and its one method [`LIST_SERVICES`]; it answers in the
//! format it was asked in (JSON or MessagePack) with a list of [`ServiceInfo`].
//!
//! ```no_run
//! # async fn demo(client: prpc::Client) -> prpc::Result<()> {
//! for service in prpc::reflection::list_services(&client).await? {
//!     println!("{}: {}", service.name, service.methods.join(", "));
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::channel::Channel;
use crate::error::Error;
use crate::format::Format;
use crate::service::Request;
use crate::service::Response;
use crate::service::Service;
use crate::service::ServiceFuture;
use crate::status::Status;

/// Wire name of the reflection service.
pub const SERVICE: &str = "prpc.Reflection";
/// Its method listing services.
pub const LIST_SERVICES: &str = "list_services";

/// One service a server has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// The name calls address.
    pub name: String,
    /// Its methods' wire names.
    pub methods: Vec<String>,
}

/// Asks the server behind `channel` for its services (sorted by name, the reflection service
/// included).
pub async fn list_services<C: Channel>(channel: &C) -> Result<Vec<ServiceInfo>, Error> {
    let format = match channel.default_options().format {
        Some(Format::Json) => Format::Json,
        _ => Format::MsgPack,
    };
    let body = format.encode(&())?;
    let reply = channel
        .call(Call::new(SERVICE, LIST_SERVICES, format, body))
        .await?;
    Ok(reply.format.decode(&reply.body)?)
}

/// The reflection service of one server, made when the server is bound.
pub(crate) struct Reflection {
    services: Arc<[ServiceInfo]>,
}

impl Reflection {
    pub(crate) fn new<'a>(services: impl Iterator<Item = &'a dyn Service>) -> Self {
        Reflection {
            services: describe(services.filter(|service| service.name() != SERVICE), true).into(),
        }
    }
}

/// `services` as reflection lists them (with the reflection service itself when `with_self`),
/// sorted by name.
pub(crate) fn describe<'a>(
    services: impl Iterator<Item = &'a dyn Service>,
    with_self: bool,
) -> Vec<ServiceInfo> {
    let mut infos: Vec<ServiceInfo> = services
        .map(|service| ServiceInfo {
            name: service.name().to_owned(),
            methods: service.methods(),
        })
        .chain(with_self.then(|| ServiceInfo {
            name: SERVICE.to_owned(),
            methods: vec![LIST_SERVICES.to_owned()],
        }))
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    infos
}

impl Service for Reflection {
    fn name(&self) -> &str {
        SERVICE
    }

    fn methods(&self) -> Vec<String> {
        vec![LIST_SERVICES.to_owned()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        let services = self.services.clone();
        Box::pin(async move {
            if &*request.method != LIST_SERVICES {
                return Err(Status::unimplemented(format!(
                    "no method \"{}\" on service \"{SERVICE}\"",
                    request.method
                )));
            }
            let body: Bytes = request.format.encode(&*services)?;
            Ok(Response::new(body))
        })
    }
}
