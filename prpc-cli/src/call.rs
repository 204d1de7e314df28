//! `prpc call` and `prpc health`: one call, its answer on stdout.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use prpc::health::ServingStatus;
use prpc::reflection::{self, MethodDescription};
use prpc::{Call, CallOptions, Channel as _, Code, Error, Format};

use crate::exit::{self, Failure};
use crate::input::{self, Arguments};
use crate::inspect::print;
use crate::signature;
use crate::target::{Connect, Remote, Target};
use crate::transcode::{self, AsJson};

/// `prpc call`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct CallArgs {
    /// Where the server is.
    addr: Target,
    /// The method, as SERVICE/METHOD (`math.Arith/add`).
    #[arg(value_name = "SERVICE/METHOD", value_parser = input::method)]
    method: (String, String),
    /// The arguments: a JSON object of the method's arguments by name, `-` for stdin or
    /// `@FILE`. Left out, they are read from stdin when it is not a terminal, else `{}`.
    #[arg(value_name = "JSON")]
    arguments: Option<String>,
    /// The arguments, as JSON, `@FILE` or `-` (instead of the positional JSON).
    #[arg(
        short = 'd',
        long,
        value_name = "JSON|@FILE|-",
        conflicts_with = "arguments"
    )]
    data: Option<String>,
    /// Metadata sent with the call, `key:value`; repeat for more.
    #[arg(short = 'H', long = "header", value_name = "KEY:VALUE", value_parser = input::header)]
    headers: Vec<(String, String)>,
}

/// Calls the method in JSON and prints the reply: indented on a terminal, one line in a
/// pipe. A server built without JSON is called again in MessagePack (see [`transcode`]).
pub(crate) async fn call(connect: &Connect, args: CallArgs) -> Result<ExitCode, Failure> {
    let CallArgs {
        addr,
        method: (service, method),
        arguments,
        data,
        headers,
    } = args;
    let arguments = Arguments::from_flags(arguments, data).read()?;
    let remote = connect.channel(&addr).await?;
    let options = headers.into_iter().fold(
        CallOptions::new().timeout(connect.timeout()),
        |options, (key, value)| options.metadata(key, Bytes::from(value)),
    );
    let send = |format: Format, body: Bytes| {
        let call = Call::new(service.as_str(), method.as_str(), format, body)
            .with_options(options.clone());
        remote.channel.call(call)
    };
    let reply = match send(Format::Json, input::encode(&arguments, Format::Json)?).await {
        Ok(reply) => Ok(reply),
        Err(error) if transcode::json_not_built_in(&error) => {
            let described = described(&remote, &service, &method).await;
            // `read` made sure the arguments are an object.
            let (empty, object) = (serde_json::Map::new(), arguments.as_object());
            let arguments = transcode::arguments(object.unwrap_or(&empty), described.as_ref())
                .map_err(Failure::input)?;
            send(Format::MsgPack, input::encode(&arguments, Format::MsgPack)?).await
        }
        Err(error) => Err(error),
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => return Err(failed(&remote, &service, &method, &error).await),
    };
    let AsJson(value) = reply.format.decode(&reply.body).map_err(|error| {
        Failure::status(
            Code::Internal,
            format!(
                "{service}/{method} at {}: the reply does not decode: {error}",
                remote.target
            ),
        )
    })?;
    let text = if std::io::stdout().is_terminal() {
        serde_json::to_string_pretty(&value)
    } else {
        serde_json::to_string(&value)
    };
    print(&(text.unwrap_or_default() + "\n"))
}

/// The failure of a call, with what helps most: an application error's value, or for
/// arguments the server could not take, the method's signature.
async fn failed(remote: &Remote, service: &str, method: &str, error: &Error) -> Failure {
    let name = format!("{service}/{method}");
    let failure = Failure::call(&remote.target, Some(&name), error);
    match error.status() {
        Some(status) if status.code() == Code::Application && !status.details().is_empty() => {
            // The details are in the call's format: JSON, or MessagePack after a fallback.
            let details = [Format::Json, Format::MsgPack]
                .into_iter()
                .find_map(|format| format.decode::<AsJson>(status.details()).ok())
                .map_or_else(
                    || format!("{} bytes", status.details().len()),
                    |AsJson(value)| value.to_string(),
                );
            failure.with_note(&format!(" (error value: {details})"))
        }
        Some(status) if status.code() == Code::InvalidArgument => {
            match described(remote, service, method).await {
                Some(described) => failure.with_note(&format!(
                    " (the method is {})",
                    signature::signature(&described)
                )),
                None => failure,
            }
        }
        None if matches!(error, Error::Timeout { .. }) => {
            let probe =
                tokio::time::timeout(PROBE_TIMEOUT, prpc::health::check(&remote.channel, ""));
            match probe.await {
                Err(_) => {
                    failure.with_note(" (it answered no health check either: is it a prpc server?)")
                }
                Ok(_) => failure,
            }
        }
        _ => failure,
    }
}

/// How long a call that timed out waits for a health check, to tell a slow method from a
/// server that does not speak prpc.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The method's description, if the server gives one.
async fn described(remote: &Remote, service: &str, method: &str) -> Option<MethodDescription> {
    reflection::describe_services(&remote.channel)
        .await
        .ok()?
        .into_iter()
        .find(|described| described.name == service)?
        .methods
        .into_iter()
        .find(|described| described.name == method)
}

/// Prints `SERVING` (exit 0) or `NOT_SERVING` (exit 3) for the server (`service` empty) or one
/// of its services.
pub(crate) async fn health(remote: &Remote, service: &str) -> Result<ExitCode, Failure> {
    match prpc::health::check(&remote.channel, service).await {
        Ok(status) => {
            print(&format!("{status}\n"))?;
            Ok(match status {
                ServingStatus::Serving => ExitCode::SUCCESS,
                _ => ExitCode::from(exit::NOT_SERVING),
            })
        }
        Err(error) => {
            let method = format!("{}/{}", prpc::health::SERVICE, prpc::health::CHECK);
            Err(Failure::call(&remote.target, Some(&method), &error))
        }
    }
}
