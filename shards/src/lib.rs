//! What runs inside one shardd shard.
//!
//! A shard is an OS thread pinned to one core that runs a single-threaded
//! async runtime and one task per connection. It takes its connections
//! through a [`Listener`], so the shard's server loop never knows whether they came from the main thread's acceptor
//! ([`listeners::Handoff`]), from a socket of its own
//! ([`listeners::ReusePort`]) or from an in-memory pipe in a test.
//!
//! The HTTP/1.1 codec in [`http`] is sans-IO: bytes in, requests out;
//! responses in, bytes out. It encodes any protocol-neutral
//! [`message::ResponseView`] (a [`Response`] is one), and knows nothing
//! else of the app API.
//!
//! # Glossary
//!
//! One word per concept, here and in the `shardd` crate:
//!
//! | word | meaning |
//! | --- | --- |
//! | **shard** | a thread pinned to a core, running its own server loop over its own connections |
//! | **listener** | where a shard's connections come from ([`Listener`]) |
//! | **acceptor** | the main thread's accept loop (handoff mode) |
//! | **handoff** | passing an accepted connection to a shard over its channel |
//! | **dispatch** | choosing which shard gets a connection |
//! | **admission** | limiting connections per shard; a 503 when every shard is full |
//! | **ledger** | a shard's admission count ([`runtime::AdmissionLedger`]): connections **queued** in its channel plus those **open**, reserved by the acceptor under the shard's capacity, released by the shard (which rings the acceptor if it waits for room) |
//! | **pending** | connections the acceptor accepted but no shard had room for, held oldest first (`max_pending`) |
//! | **connection** | one client's byte stream and the task serving it |
//! | **turn** | one pass of a connection's loop: answer what is buffered, write, read more |
//! | **budget** | turns a connection may take in a row before it yields to the others on its shard |
//! | **reader** | the sans-IO [`http::RequestReader`]: bytes in, requests out |
//! | **drain** | the graceful stop, and the only one: take no new connections, finish requests in flight, close idle connections (`ServerHandle::drain`, `stop`, `Drop`, `DrainTrigger` and `drain_after_upgrade` all start it) |
//! | **linger** | after a refusal, read and discard what the client still sends before closing, so it reads the response |
//! | **stats** | counters a shard shares with the main thread, read without locks (the admin port's `/metrics` renders them) |
//! | **env** | what the connections of one shard share: limits, date, buffer pool, drain, stats, access log |
//! | **slot** | a connection's place in its shard's bookkeeping (its ledger entry and its drain entry), held from spawn to end |
//! | **stream** | a response body sent in chunks as the app produces them ([`Body::Stream`]) |
//! | **upload** | a request body the app reads as it arrives ([`App::streams_body`]) |
//! | **upgrade** | a `101` response after which the app owns the raw connection ([`Upgraded`]) |
//! | **access log** | a line per answer, buffered per shard and written by a thread off the shards; dropped and counted, never waited for, when that thread is behind |
//! | **grace** | during a drain, the time an idle connection waits for a request already on its way |
//! | **binary upgrade** | SIGUSR2 to the `shardd` binary: a new process takes over the listening sockets, then the old one drains (`upgrade` alone is the HTTP `101`) |

//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `tls` | on | `listeners::TlsListener`: TLS 1.3 and 1.2 (rustls) over any listener |
//! | `router` | on | `router::Router`: routes, path parameters, extractors |
//! | `tower` | off | `tower::TowerApp`: serve a tower `Service` (an axum `Router`) |
//! | `techempower` | off | `apps::techempower`: the TechEmpower benchmark apps (needs `router`) |
//! | `fault-injection` | off | `ShardCommand::Kill`, for tests of the supervisor |

#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(unreachable_pub)]

mod access_log;
mod app;
#[cfg(feature = "techempower")]
pub mod apps;
mod body;
mod buffers;
pub mod compression;
mod connection;
mod content_stats;
#[cfg(feature = "postgres")]
pub mod database;
mod drain;
mod env;
mod file_body;
pub mod files;
pub mod http;
mod http2;
mod info;
mod interop;
mod ledger;
mod limits;
mod listener;
pub mod listeners;
pub mod message;
mod output;
mod request;
mod request_body;
mod response;
#[cfg(feature = "router")]
pub mod router;
mod shard;
mod shard_config;
mod slot;
mod stats;
#[cfg(feature = "tower")]
pub mod tower;
mod upgrade;

pub use access_log::AccessLogFormat;
pub use app::{app_fn, App, FnApp};
pub use body::{Body, BodyFrame, BodyStream, BoxError};
pub use content_stats::{
    CompressionCounters, CompressionSnapshot, FileCounters, FileOutcome, FileSnapshot,
};
pub use file_body::FileBody;
pub use http2::Http2Settings;
pub use info::ShardInfo;
pub use interop::HttpConversionError;
pub use limits::{Limits, MAX_HEADERS_CAP};
pub use listener::{Accepted, Listener, PeerAddr};
pub use request::Request;
pub use request_body::{BodyError, RequestBody};
pub use response::{HeaderText, Response};
pub use stats::{
    GoawayReason, HistogramSnapshot, Http2Counters, Http2Snapshot, ShardStatsSnapshot, TimeoutKind,
    DURATION_BOUNDS,
};
pub use upgrade::Upgraded;

/// How the `shardd` crate starts and supervises shards.
///
/// Not for apps or listener authors, and not a stable API: these are the
/// seams between the main thread (in `shardd`) and a shard (here).
pub mod runtime {
    /// The `flume` the handoff channels are made with: a `Receiver` for
    /// [`handoff_listener`] must come from this one.
    pub use flume;

    pub use crate::access_log::{AccessLogSink, BUFFER_CAPACITY, HAND_OFF_AT};
    pub use crate::ledger::{AcceptorWaker, AdmissionLedger};
    pub use crate::listeners::handoff::handoff_listener;
    pub use crate::shard::{run_shard, ShardCommand, ShardSetup};
    pub use crate::shard_config::ShardConfig;
    pub use crate::stats::ShardStats;
}
