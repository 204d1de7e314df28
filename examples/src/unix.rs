//! A server on a Unix domain socket and a client that dials it: the same service and stubs as
//! over TCP, only the address changes (`unix:///path/to.sock`).
//!
//! Run it with `cargo run -p prpc-examples --bin unix`.

/// Says hello.
#[prpc::service]
pub trait Greeter {
    /// A greeting for `name`.
    async fn greet(&self, name: String) -> String;
}

struct English;

impl Greeter for English {
    async fn greet(&self, name: String) -> String {
        format!("hello, {name}")
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A socket path of our own; a server's socket path must not exist yet.
    let dir = std::env::temp_dir().join(format!("prpc-unix-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let address = format!("unix://{}", dir.join("greeter.sock").display());

    let server = prpc::Server::builder()
        .add_service(GreeterServer::new(English))
        .bind(&address)
        .await?;
    println!("server listening on {}", server.local_addr());
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());

    let client = GreeterClient::connect(&address).await?;
    let greeting = client.greet("unix".into()).await?;
    println!("greet(\"unix\") = {greeting:?}");
    assert_eq!(greeting, "hello, unix");

    shutdown.shutdown();
    serving.await??;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
