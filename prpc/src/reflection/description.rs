//! What reflection tells of a server: its services, their methods, and each method's
//! arguments and reply as [`Shape`]s. Plain data, below both the services that describe
//! themselves and the reflection service that answers with it.

use serde::{Deserialize, Serialize};

use super::shape::{Describe, Field, Shape};

/// One service a server has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// The name calls address.
    pub name: String,
    /// Its methods' wire names.
    #[serde(serialize_with = "crate::reflection::seq")]
    pub methods: Vec<String>,
}

/// One service a server has, with what it takes to call each of its methods: an item of
/// [`DESCRIBE_SERVICES`](super::DESCRIBE_SERVICES)' reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServiceDescription {
    /// The name calls address.
    pub name: String,
    /// Its methods, as [`Service::describe`](crate::Service::describe) lists them (empty for
    /// a service that describes nothing, such as a hand-written one).
    #[serde(serialize_with = "crate::reflection::seq")]
    pub methods: Vec<MethodDescription>,
}

/// What it takes to call one method, and what it answers.
///
/// `#[prpc::service]` generates these; a hand-written [`Service`](crate::Service) builds them with
/// [`new`](MethodDescription::new) and the methods after it.
///
/// ```
/// use prpc::reflection::{MethodDescription, Shape};
///
/// let add = MethodDescription::new("add")
///     .argument("a", Shape::Integer)
///     .argument("b", Shape::Integer)
///     .returns(Shape::Integer)
///     .idempotent(true);
/// assert_eq!(add.arguments[1].name, "b");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MethodDescription {
    /// The method's wire name.
    pub name: String,
    /// Its arguments in order. For a serde service each is a field of the request body's
    /// object; a protobuf service's one argument, `request`, is the body itself. A stream
    /// argument is marked [`stream`](Argument::stream) and is not in the body.
    #[serde(serialize_with = "crate::reflection::seq")]
    pub arguments: Vec<Argument>,
    /// The reply's shape; for a method that streams its reply, each item's.
    pub returns: Shape,
    /// The shape of the method's typed application error (the details of a status with code
    /// `application`), if it has one; for a streamed reply, the error an item may be.
    pub error: Option<Shape>,
    /// Which side streams, for a streaming method.
    pub streaming: Option<StreamDirection>,
    /// Whether the method is safe to run more than once (`#[prpc(idempotent)]`), so clients
    /// retry it by default.
    pub idempotent: bool,
}

impl MethodDescription {
    /// A unary method `name` without arguments, replying `null`, with no typed error, not
    /// idempotent.
    pub fn new(name: impl Into<String>) -> Self {
        MethodDescription {
            name: name.into(),
            arguments: Vec::new(),
            returns: Shape::Null,
            error: None,
            streaming: None,
            idempotent: false,
        }
    }

    /// Adds an argument that travels in the request's body.
    #[must_use]
    pub fn argument(mut self, name: impl Into<String>, shape: Shape) -> Self {
        self.arguments.push(Argument {
            name: name.into(),
            shape,
            stream: false,
        });
        self
    }

    /// Adds the argument the client streams, items of `items`' shape.
    #[must_use]
    pub fn stream_argument(mut self, name: impl Into<String>, items: Shape) -> Self {
        self.arguments.push(Argument {
            name: name.into(),
            shape: items,
            stream: true,
        });
        self
    }

    /// Sets the reply's shape (each item's, for a streamed reply).
    #[must_use]
    pub fn returns(mut self, shape: Shape) -> Self {
        self.returns = shape;
        self
    }

    /// Sets the typed application error's shape.
    #[must_use]
    pub fn error(mut self, shape: Shape) -> Self {
        self.error = Some(shape);
        self
    }

    /// Sets which side streams.
    #[must_use]
    pub fn streaming(mut self, direction: StreamDirection) -> Self {
        self.streaming = Some(direction);
        self
    }

    /// Sets whether the method is idempotent.
    #[must_use]
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }
}

/// One argument of a method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Argument {
    /// Its name: the key of its field in the request body's object.
    pub name: String,
    /// Its value's shape; for the stream argument, each item's.
    pub shape: Shape,
    /// Whether this is the stream the client sends after the request (a client or
    /// bidirectional stream), rather than a field of the body.
    pub stream: bool,
}

/// Which side of a streaming method sends a stream of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StreamDirection {
    /// The client streams its argument; the server answers once.
    Client,
    /// The server streams its reply.
    Server,
    /// Both stream.
    Bidi,
}

impl Describe for ServiceInfo {
    fn shape() -> Shape {
        Shape::object(
            "ServiceInfo",
            vec![
                Field::new("name", Shape::String),
                Field::new("methods", Shape::array(Shape::String)),
            ],
        )
    }
}
