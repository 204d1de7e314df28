//! `/debug/prpc` in a real browser: headless Chromium (scripts/test installs the `chromium`
//! package) loads the page of a server under load, and the test reads what it rendered. A
//! screenshot is written for people to look at: to `docs/debug-page.png` with
//! `PRPC_WRITE_SCREENSHOT=1`, else to a temporary directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use prpc::Status;
use prpc::cluster::Cluster;
use prpc::discovery::{Endpoint, StaticDiscover};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[prpc::service(name = "shop.Inventory")]
pub trait Inventory {
    async fn stock(&self, item: String) -> u32;
    async fn reserve(&self, item: String, count: u32) -> Result<u32, prpc::Status>;
}

struct Shelf;

impl Inventory for Shelf {
    async fn stock(&self, item: String) -> u32 {
        item.len() as u32
    }

    async fn reserve(&self, item: String, count: u32) -> Result<u32, Status> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if item == "missing" {
            return Err(Status::new(prpc::Code::NotFound, "no such item"));
        }
        Ok(count)
    }
}

/// The browser's command: Debian names it `chromium`.
fn chromium() -> &'static str {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|output| output.status.success())
        })
        .expect("chromium runs (scripts/test installs the chromium package)")
}

/// Runs headless Chromium on `url` with `args`; what it printed on stdout.
async fn headless(url: String, args: Vec<String>, profile: PathBuf) -> String {
    tokio::task::spawn_blocking(move || {
        let output = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(url)
            .output()
            .expect("chromium starts");
        assert!(
            output.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    })
    .await
    .unwrap()
}

/// The text of every table row of `dom`, cell by cell.
fn rows(dom: &str) -> Vec<Vec<String>> {
    dom.split("<tr>")
        .skip(1)
        .map(|row| {
            let row = row.split("</tr>").next().unwrap_or("");
            row.split("</td>")
                .filter(|cell| cell.contains("<td"))
                .map(text_of)
                .collect()
        })
        .collect()
}

/// `html` without its tags, its entities decoded (the few the page writes).
fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}

async fn get(addr: &str, path: &str) -> (String, String) {
    get_accepting(addr, path, None).await
}

/// GET `path`, with an `Accept` header if given; the head and the body.
async fn get_accepting(addr: &str, path: &str, accept: Option<&str>) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let accept = accept.map_or(String::new(), |accept| format!("accept: {accept}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n{accept}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_the_page_of_a_server_under_load() {
    let server = prpc::Server::builder()
        .add_service(InventoryServer::new(Shelf))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let admin_addr = common::serve_with_admin(server).await;
    let page_url = format!("http://{admin_addr}/debug/prpc");

    // Load: a client on a connection whose port the page must show, calling both methods
    // (one call in ten fails) until its time is up.
    let stream = TcpStream::connect(addr.to_string().trim_start_matches("tcp://"))
        .await
        .unwrap();
    let peer = format!("tcp://{}", stream.local_addr().unwrap());
    let client = InventoryClient::new(prpc::Client::builder().from_stream(stream));
    let load = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(30);
        let mut round = 0u64;
        while Instant::now() < until {
            round += 1;
            client.stock("apples".to_owned()).await.unwrap();
            let item = if round % 10 == 0 { "missing" } else { "pears" };
            let _ = client.reserve(item.to_owned(), 2).await;
        }
    });
    // A balanced client in the process: the page shows its endpoint and breaker.
    let discovery = StaticDiscover::new([Endpoint::new(addr.clone()).unwrap()]);
    let cluster = Cluster::builder().build(&discovery, "shop.Inventory");
    let balanced = InventoryClient::new(cluster.clone());
    for _ in 0..5 {
        balanced.stock("plums".to_owned()).await.unwrap();
    }
    // A few sampler intervals (2 s each): the charts have lines.
    tokio::time::sleep(Duration::from_millis(8_500)).await;

    let profile = tempfile::tempdir().unwrap();
    let dom = headless(
        page_url.clone(),
        vec!["--dump-dom".to_owned()],
        profile.path().join("dom"),
    )
    .await;
    let text = text_of(&dom);
    let rows = rows(&dom);
    let row = |first: &str, second: &str| {
        rows.iter()
            .find(|cells| cells.len() > 2 && cells[0] == first && cells[1] == second)
            .unwrap_or_else(|| panic!("no row {first} {second} in {rows:#?}"))
            .clone()
    };
    assert!(dom.contains("http-equiv=\"refresh\""), "{dom}");
    assert!(dom.contains("<polyline"), "the charts have lines: {dom}");
    // Methods: calls, errors by code, p50 and p99.
    let stock = row("shop.Inventory", "stock");
    assert!(stock[2].parse::<u64>().unwrap() > 0, "{stock:?}");
    assert!(stock[7].ends_with('s'), "a p99: {stock:?}");
    let reserve = row("shop.Inventory", "reserve");
    assert!(
        reserve[3].parse::<u64>().unwrap() > 0,
        "errors: {reserve:?}"
    );
    assert!(reserve[4].contains("not_found"), "{reserve:?}");
    assert!(reserve[6].ends_with("ms"), "a 1 ms sleep: {reserve:?}");
    // The load's connection.
    let connection = rows
        .iter()
        .find(|cells| cells.first() == Some(&peer))
        .unwrap_or_else(|| panic!("no connection from {peer}: {text}"));
    assert!(connection[2].parse::<u64>().unwrap() > 0, "{connection:?}");
    // The cluster: its endpoint, connected, breaker closed.
    assert!(text.contains("Client of shop.Inventory"), "{text}");
    let endpoint = rows
        .iter()
        .find(|cells| cells.first() == Some(&addr.to_string()))
        .unwrap_or_else(|| panic!("no endpoint {addr}: {rows:#?}"));
    assert_eq!(endpoint[3], "connected", "{endpoint:?}");
    assert_eq!(endpoint[6], "closed", "{endpoint:?}");
    assert!(text.contains("static, version 1, 1 endpoint"), "{text}");
    assert!(text.contains("Idempotency store"), "{text}");

    // A screenshot for people (not compared).
    let screenshot = if std::env::var_os("PRPC_WRITE_SCREENSHOT").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/debug-page.png")
    } else {
        profile.path().join("debug-page.png")
    };
    headless(
        page_url,
        vec![
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,1800".to_owned(),
        ],
        profile.path().join("shot"),
    )
    .await;
    let size = std::fs::metadata(&screenshot).unwrap().len();
    assert!(size > 0, "{}", screenshot.display());

    // The same page as text, for curl.
    let (head, plain) = get(&admin_addr, "/debug/prpc?format=text").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain"), "{head}");
    if std::env::var_os("PRPC_PRINT_DEBUG_PAGE").is_some() {
        println!("{plain}");
    }
    let line = plain
        .lines()
        .find(|line| line.starts_with("shop.Inventory  stock") || line.contains(" stock "))
        .unwrap_or_else(|| panic!("no stock line: {plain}"));
    assert!(line.contains("shop.Inventory"), "{plain}");
    assert!(plain.contains(&peer), "{plain}");
    assert!(plain.contains("== Client of shop.Inventory =="), "{plain}");
    assert!(!plain.contains('<'), "no markup: {plain}");

    // Without `?format`, the Accept header chooses: curl's `*/*` reads text, a browser's HTML.
    let (head, curl) = get_accepting(&admin_addr, "/debug/prpc", Some("*/*")).await;
    assert!(head.contains("text/plain"), "{head}");
    assert!(curl.contains("== Client of shop.Inventory =="), "{curl}");
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let (head, html) = get_accepting(&admin_addr, "/debug/prpc", Some(browser)).await;
    assert!(head.contains("text/html"), "{head}");
    assert!(html.contains("<table"), "{html}");

    load.abort();
    drop(cluster);
}
