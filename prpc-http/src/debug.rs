//! The debug page, `/debug/prpc`: not written yet (issue #12, item 4); it answers `501`
//! and points at `/metrics`, which serves the same numbers.

use prpc::server::{Handler, Router};

use crate::app::Response;

/// The debug page of one server.
pub(crate) struct DebugPage {}

impl DebugPage {
    pub(crate) fn new<H: Handler>(_router: &Router<H>) -> Self {
        DebugPage {}
    }

    pub(crate) fn response<H: Handler>(
        &self,
        _router: &Router<H>,
        _query: Option<&str>,
    ) -> Response {
        crate::app::error(
            hyper::StatusCode::NOT_IMPLEMENTED,
            prpc::Code::Unimplemented,
            "the debug page is not built yet; GET /metrics serves the same numbers",
        )
    }
}
