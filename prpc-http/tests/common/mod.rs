//! What the admin page tests share.

use tokio::net::TcpListener;

/// Attaches `server` to prpc-http with an admin listener of its own on a loopback port, serves
/// it in the background and returns the admin listener's address (`host:port`).
pub async fn serve_with_admin(server: prpc::Server) -> String {
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap().to_string();
    let server = prpc_http::Http::new()
        .admin_listener(admin)
        .attach(server)
        .await
        .unwrap();
    tokio::spawn(server.serve());
    admin_addr
}
