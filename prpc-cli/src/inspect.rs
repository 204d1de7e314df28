//! `prpc list` and `prpc describe`: what a server has, from its reflection service.

use std::io::Write;
use std::process::ExitCode;

use prpc::Code;
use prpc::reflection::{self, MethodDescription, ServiceDescription};

use crate::exit::Failure;
use crate::signature;
use crate::target::Remote;

/// Prints each service and, indented below it, its methods.
pub(crate) async fn list(remote: &Remote) -> Result<ExitCode, Failure> {
    let services = reflection::list_services(&remote.channel)
        .await
        .map_err(|error| Failure::call(&remote.target, Some(LIST), &error))?;
    let mut out = String::new();
    for service in services {
        out.push_str(&service.name);
        out.push('\n');
        for method in service.methods {
            out.push_str("  ");
            out.push_str(&method);
            out.push('\n');
        }
    }
    print(&out)
}

/// Prints the signatures of every method of every service, of one service, or of one
/// `SERVICE/METHOD`, with the types they use.
pub(crate) async fn describe(remote: &Remote, what: Option<&str>) -> Result<ExitCode, Failure> {
    let services = match reflection::describe_services(&remote.channel).await {
        Ok(services) => with_names(remote, services).await?,
        // A server from before the reflection described arguments: names only.
        Err(error) if error.code() == Code::Unimplemented => names_only(remote).await?,
        Err(error) => return Err(Failure::call(&remote.target, Some(DESCRIBE), &error)),
    };
    let (service_name, method_name) = match what {
        Some(what) => match what.rsplit_once('/') {
            Some((service, method)) => (Some(service), Some(method)),
            None => (Some(what), None),
        },
        None => (None, None),
    };
    let chosen: Vec<&Described> = services
        .iter()
        .filter(|service| service_name.is_none_or(|name| service.name == name))
        .collect();
    let Some(name) = service_name.filter(|_| chosen.is_empty()) else {
        return print(&render(&chosen, method_name, remote)?);
    };
    let known: Vec<&str> = services
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    Err(Failure::status(
        Code::Unimplemented,
        format!(
            "{} has no service \"{name}\" (it has {})",
            remote.target,
            known.join(", ")
        ),
    ))
}

/// Wire name of the reflection call `list` makes, for messages.
const LIST: &str = "prpc.Reflection/list_services";
/// Wire name of the reflection call `describe` makes, for messages.
const DESCRIBE: &str = "prpc.Reflection/describe_services";

/// One service as `describe` shows it.
struct Described {
    name: String,
    methods: Vec<MethodDescription>,
    /// Whether the server described the methods' arguments, or only named them.
    signatures: bool,
}

impl From<ServiceDescription> for Described {
    fn from(service: ServiceDescription) -> Self {
        Described {
            name: service.name,
            methods: service.methods,
            signatures: true,
        }
    }
}

/// The described services; a service that describes none of its methods (a hand-written
/// one) is shown with the method names `list_services` gives.
async fn with_names(
    remote: &Remote,
    services: Vec<ServiceDescription>,
) -> Result<Vec<Described>, Failure> {
    if services.iter().all(|service| !service.methods.is_empty()) {
        return Ok(services.into_iter().map(Described::from).collect());
    }
    let names = names_only(remote).await?;
    Ok(services
        .into_iter()
        .map(
            |service| match names.iter().find(|named| named.name == service.name) {
                Some(named) if service.methods.is_empty() => Described {
                    name: service.name,
                    methods: named.methods.clone(),
                    signatures: false,
                },
                _ => Described::from(service),
            },
        )
        .collect())
}

/// The services with their method names and nothing else, from `list_services`.
async fn names_only(remote: &Remote) -> Result<Vec<Described>, Failure> {
    let services = reflection::list_services(&remote.channel)
        .await
        .map_err(|error| Failure::call(&remote.target, Some(LIST), &error))?;
    Ok(services
        .into_iter()
        .map(|service| Described {
            name: service.name,
            methods: service
                .methods
                .into_iter()
                .map(MethodDescription::new)
                .collect(),
            signatures: false,
        })
        .collect())
}

/// The text `describe` prints for these services (and only `method` of them, if given).
fn render(
    services: &[&Described],
    method: Option<&str>,
    remote: &Remote,
) -> Result<String, Failure> {
    let mut out = String::new();
    for service in services {
        let methods: Vec<_> = service
            .methods
            .iter()
            .filter(|described| method.is_none_or(|name| described.name == name))
            .collect();
        if let (Some(name), true) = (method, methods.is_empty()) {
            let known: Vec<&str> = service.methods.iter().map(|m| m.name.as_str()).collect();
            return Err(Failure::status(
                Code::Unimplemented,
                format!(
                    "{} has no method \"{name}\" on {} (it has {})",
                    remote.target,
                    service.name,
                    known.join(", ")
                ),
            ));
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&service.name);
        out.push('\n');
        for described in &methods {
            out.push_str("  ");
            if service.signatures {
                out.push_str(&signature::signature(described));
            } else {
                // The server names its methods but does not describe them.
                out.push_str(&described.name);
                out.push_str("(...)");
            }
            out.push('\n');
        }
        let types = signature::definitions(methods.iter().copied());
        if !types.is_empty() {
            out.push('\n');
        }
        for definition in types {
            out.push_str("  ");
            out.push_str(&definition);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error worth a message.
pub(crate) fn print(text: &str) -> Result<ExitCode, Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(error) => Err(Failure::input(format!("writing to stdout: {error}"))),
    }
}
