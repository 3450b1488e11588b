//! The TechEmpower plaintext and json tests served through the
//! [`Router`]: the same responses as [`TechEmpower`](super::techempower::TechEmpower),
//! so the two measure what routing costs.

use serde::Serialize;

use crate::router::{get, Json, Router};
use crate::Response;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// `GET /plaintext` → `Hello, World!`; `GET /json` → `{"message":"Hello, World!"}`;
/// `405` with `Allow: GET, HEAD` for another method, `404` elsewhere.
pub fn techempower_router() -> Router {
    Router::new()
        .route("/plaintext", get(async |_| Response::text("Hello, World!")))
        .route(
            "/json",
            get(async |_| {
                Json(Message {
                    message: "Hello, World!",
                })
            }),
        )
}
