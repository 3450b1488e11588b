//! The TechEmpower plaintext and json test app.
//!
//! Each response is composed per request, as the benchmark's rules require:
//! the headers are encoded for every request and the json body is
//! serialized for every request; nothing is a pre-rendered byte string.

use http::StatusCode;
use serde::Serialize;

use crate::{App, Request, Response};

/// `GET /plaintext` → `Hello, World!`; `GET /json` → `{"message":"Hello, World!"}`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TechEmpower;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

impl TechEmpower {
    /// The synchronous core, shared by the async [`App`] impl and benchmarks.
    #[inline]
    pub fn respond(&self, request: &Request<'_>) -> Response {
        let readable = matches!(request.method_str(), "GET" | "HEAD");
        match request.path() {
            "/plaintext" if readable => Response::text("Hello, World!"),
            "/json" if readable => {
                let body = serde_json::to_vec(&Message {
                    message: "Hello, World!",
                })
                .unwrap_or_default();
                Response::json(body)
            }
            "/plaintext" | "/json" => Response::new(StatusCode::METHOD_NOT_ALLOWED)
                .with_header("Allow", "GET, HEAD")
                .with_header("Content-Type", "text/plain")
                .with_body("method not allowed\n"),
            _ => Response::not_found(),
        }
    }
}

impl App for TechEmpower {
    async fn call(&self, request: &Request<'_>) -> Response {
        self.respond(request)
    }
}
