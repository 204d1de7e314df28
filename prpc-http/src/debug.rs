//! The debug page, `/debug/prpc`: what a server is doing now, for a person. Services and
//! methods with their calls, errors by code, calls in flight and latency; the open
//! connections; the server's registrations; the balanced clients (clusters) of the process
//! with their breakers and discovery; the idempotency store; and charts of calls/s and p99
//! over the last five minutes.
//!
//! It is one server-rendered HTML page with inline SVG and no script, refreshing itself every
//! few seconds; `?format=text`, or an `Accept` that leaves out `text/html` (as curl's `*/*`
//! does), gets the same tables as plain text. `/metrics` serves the same numbers to
//! Prometheus.
//!
//! The counters only count up, so the charts need a history: [`history`] keeps it, fed by a
//! sampler task that lives as long as the page (its [`DebugPage`] cancels it when dropped).

mod display;
mod history;
mod html;
mod text;
mod view;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::StatusCode;
use hyper::header::{self, HeaderValue};
use prpc::server::{Handler, Router};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::reply::Response;
use history::History;

/// The debug page of one server, and the history of its charts.
pub(crate) struct DebugPage {
    history: Arc<Mutex<History>>,
    /// Stops the sampler when the page goes.
    _sampler: DropGuard,
}

/// How the page is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Html,
    Text,
}

impl Form {
    /// `?format=text` or `?format=html` if given; else HTML unless the request's `Accept`
    /// leaves it out (as `curl`'s `*/*` does: a terminal reads text better).
    fn asked(query: Option<&str>, accept: Option<&HeaderValue>) -> Form {
        let format = query
            .into_iter()
            .flat_map(|query| query.split('&'))
            .find_map(|pair| pair.strip_prefix("format="));
        match format {
            Some("text") => return Form::Text,
            Some("html") => return Form::Html,
            _ => {}
        }
        match accept.map(|accept| accept.to_str().unwrap_or("")) {
            Some(accept) if !accept.to_ascii_lowercase().contains("text/html") => Form::Text,
            _ => Form::Html,
        }
    }
}

impl DebugPage {
    /// The page of `router`'s server; starts the sampler of its charts (on the current tokio
    /// runtime; without one the charts stay empty).
    pub(crate) fn new<H: Handler>(router: &Router<H>) -> Self {
        let history = Arc::new(Mutex::new(History::default()));
        let stop = CancellationToken::new();
        history::spawn_sampler(router.clone(), history.clone(), stop.clone());
        DebugPage {
            history,
            _sampler: stop.drop_guard(),
        }
    }

    /// The page, in the form `query` or else the request's `Accept` header asks for.
    pub(crate) fn response<H: Handler>(
        &self,
        router: &Router<H>,
        query: Option<&str>,
        accept: Option<&HeaderValue>,
    ) -> Response {
        let page = self.page(router);
        let (body, content_type) = match Form::asked(query, accept) {
            Form::Html => (html::render(&page), "text/html; charset=utf-8"),
            Form::Text => (text::render(&page), "text/plain; charset=utf-8"),
        };
        let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::VARY, HeaderValue::from_static("accept"));
        response
    }

    /// Reads everything the page shows.
    fn page<H: Handler>(&self, router: &Router<H>) -> view::Page {
        let stats = router.stats();
        let charts = self
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .charts(Instant::now(), &stats);
        let reporter = router.health();
        let health = std::iter::once(String::new())
            .chain(router.services().into_iter().map(|service| service.name))
            .map(|service| {
                let status = reporter.status(&service);
                (service, status)
            })
            .collect();
        let registrations = router.registrations();
        let clusters = prpc::cluster::clusters();
        view::page(&view::Inputs {
            stats: &stats,
            charts: &charts,
            health,
            registrations: &registrations,
            clusters: &clusters,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_form_follows_the_query_then_accept() {
        let html = HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8");
        let any = HeaderValue::from_static("*/*");
        assert_eq!(Form::asked(None, None), Form::Html);
        assert_eq!(Form::asked(None, Some(&html)), Form::Html);
        assert_eq!(Form::asked(None, Some(&any)), Form::Text);
        assert_eq!(Form::asked(Some("format=text"), Some(&html)), Form::Text);
        assert_eq!(Form::asked(Some("x=1&format=html"), Some(&any)), Form::Html);
    }

    #[tokio::test]
    async fn the_sampler_stops_with_the_page() {
        let router = prpc::Server::builder().build();
        let page = DebugPage::new(&router);
        let history = Arc::downgrade(&page.history);
        // The sampler takes its first reading at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(page);
        // The sampler holds the history (and the router) until it stops.
        for _ in 0..100 {
            if history.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the sampler outlived its page");
    }
}
