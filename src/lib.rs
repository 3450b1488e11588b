//! shardd: a sharded thread-per-core HTTP/1.1 and HTTP/2 server with connection handoff.
//!
//! The main thread owns the one listening socket: it accepts and hands each
//! connection, round-robin, over a channel to one of N shard threads, each
//! pinned to its own core. Every shard runs its own server loop and takes
//! its connections through a pluggable [`Listener`].
//!
//! This crate (`src/`) is the main thread's side: configuration, binding,
//! the acceptor and dispatcher, the supervisor that starts and restarts
//! shards, and the drain. What runs inside a shard lives in the
//! `shardd-shards` crate (`shards/`); what a user needs of it is
//! re-exported here. The words (shard, listener, handoff, drain, ...) are
//! defined in that crate's glossary.
//!
//! One way to start a server, whatever it serves, and to serve until
//! Ctrl-C (SIGINT) or SIGTERM, then drain:
//!
//! ```no_run
//! use shardd::{app_fn, Config, Response, Server};
//!
//! fn main() -> Result<(), shardd::Error> {
//!     let handle = Server::bind(Config::default())?.serve(|_shard| {
//!         app_fn(|req| match req.path() {
//!             "/" => Response::text("hello\n"),
//!             _ => Response::not_found(),
//!         })
//!     })?;
//!     // The library prints nothing itself (it logs through `log`).
//!     println!("serving on http://{} (Ctrl-C to stop)", handle.local_addr().unwrap());
//!     // Ctrl-C: requests in flight finish, then it returns; a second Ctrl-C exits at once.
//!     handle.wait_for_shutdown()?;
//!     println!("stopped");
//!     Ok(())
//! }
//! ```
//!
//! To stop on something else too, pass a future to
//! [`ServerHandle::serve_until`] (with [`shutdown_signal()`] in it, say);
//! from another thread, call [`DrainTrigger::drain`].
//!
//! The address may be a Unix socket file (`bind = "unix:/path"`, see
//! [`BindAddr`]); sockets passed by systemd, or by the shardd an upgrade
//! replaces, are served with [`Server::from_listen_fds`] (see [`systemd`]).
//! With a custom [`Listener`] (an in-memory pipe, TLS),
//! `Server::with_listener(config, |shard| make_listener(shard))?.serve(app)`.

//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `tls` | on | the `[tls]` config table, `listeners::TlsListener`, certificate reloads; without it a config with `[tls]` is refused |
//! | `router` | on | `router`: routes, path parameters, extractors |
//! | `techempower` | on | `apps::techempower`: the benchmark apps the `shardd` binary serves (needs `router`) |
//! | `tower` | off | `tower`: serve a tower `Service` (an axum `Router`); opt in next to your `axum` dependency |
//! | `fault-injection` | off | `ServerHandle::kill_shard`, for tests of the supervisor |
//!
//! The `shardd` binary needs `tls`, `router` and `techempower`. A lean
//! library: `default-features = false`, then add what you use.

#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(unreachable_pub)]

mod acceptor;
mod access_log_writer;
mod admin;
mod bind_addr;
mod config;
mod dependency;
mod dispatch;
mod drain_signal;
mod error;
mod placement;
mod rejecter;
mod sched_policy;
mod server;
mod shutdown_signal;
mod socket;
mod stats;
mod supervisor;
pub mod systemd;

pub use bind_addr::{BindAddr, UnixMode};
mod tls;

/// Old paths of the benchmark apps, kept for the binary, tests and guide.
#[cfg(feature = "techempower")]
#[doc(hidden)]
pub use apps::techempower::{techempower_router, TechEmpower};
pub use config::{
    AccessLogTarget, Admission, Config, DispatchPolicy, ListenerMode, LogFormat, Logging,
    OverloadPolicy, TlsConfig,
};
pub use dependency::Dependency;
pub use error::Error;
/// The `http` crate, whose `Method`, `StatusCode` and `Version` the API uses.
pub use http;
pub use server::{
    BoundSocket, ConnectionSource, CustomListener, DrainTrigger, Server, ServerControl,
    ServerHandle, Unwrapped, Wrapped,
};
pub use shardd_shards::compression;
#[cfg(feature = "postgres")]
pub use shardd_shards::database;
pub use shardd_shards::files;
#[cfg(feature = "router")]
pub use shardd_shards::router;
pub use shardd_shards::{
    app_fn, Accepted, AccessLogFormat, App, Body, BodyError, BodyFrame, BodyStream, BoxError,
    CompressionSnapshot, FileBody, FileOutcome, FileSnapshot, FnApp, GoawayReason, HeaderText,
    HistogramSnapshot, Http2Settings, Http2Snapshot, HttpConversionError, Limits, Listener,
    PeerAddr, Request, RequestBody, Response, ShardInfo, ShardStatsSnapshot, TimeoutKind, Upgraded,
    DURATION_BOUNDS,
};
pub use shutdown_signal::shutdown_signal;
pub use socket::DEFER_ACCEPT_SECS;
pub use stats::{AcceptorSnapshot, AccessLogSnapshot, StatsSnapshot};
pub use tls::TlsReloader;

/// Serving a tower `Service` — an axum `Router` included — on the shards
/// (feature `tower`): [`serve_tower`](tower::serve_tower) makes an [`App`]
/// of it.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use shardd::tower::serve_tower;
/// use shardd::{Config, Server};
///
/// let handle = Server::bind(Config::default())?.serve(|_shard| {
///     // Built on each shard: nothing a request touches is shared between cores.
///     serve_tower(Router::new().route("/", get(|| async { "hello\n" })))
/// })?;
/// println!("serving on http://{} (Ctrl-C to stop)", handle.local_addr().unwrap());
/// handle.wait_for_shutdown()?; // Ctrl-C or SIGTERM: drain, then return
/// # Ok::<(), shardd::Error>(())
/// ```
#[cfg(feature = "tower")]
pub mod tower {
    pub use shardd_shards::tower::{serve_tower, RequestBody, TowerApp};
}

/// Apps that ship with shardd.
#[cfg(feature = "techempower")]
pub mod apps {
    /// The TechEmpower benchmark apps the `shardd` binary serves (feature
    /// `techempower`): [`TechEmpower`](techempower::TechEmpower) matches
    /// the paths by hand, [`techempower_router`](techempower::techempower_router)
    /// serves the same tests through the router.
    pub mod techempower {
        pub use shardd_shards::apps::techempower::TechEmpower;
        pub use shardd_shards::apps::techempower_db::TechEmpowerDb;
        pub use shardd_shards::apps::techempower_routed::techempower_router;
    }
}

/// Building blocks for [`Listener`] authors: the listeners shardd ships and
/// the stream they hand out (TCP, or Unix domain), and the decorators that
/// wrap any listener (TLS, the PROXY protocol).
pub mod listeners {
    pub use shardd_shards::listeners::proxy_protocol;
    pub use shardd_shards::listeners::{
        accept_nonblocking, accept_stream, BuiltinListener, ReusePort, TcpConn,
    };
    pub use shardd_shards::listeners::{ProxyConn, ProxyProtocol, ProxyProtocolSettings};
    #[cfg(feature = "tls")]
    pub use shardd_shards::listeners::{TlsConn, TlsContext, TlsError, TlsListener};
}

/// The README and every chapter of the user guide (`docs/src/`), compiled as
/// doc tests so that no example in them goes stale: `cargo test --doc`
/// builds each Rust block (and runs those not marked `no_run`).
#[cfg(doctest)]
mod user_guide {
    macro_rules! guide {
        ($($module:ident => $file:literal),* $(,)?) => {
            $(#[doc = include_str!($file)] mod $module {})*
        };
    }
    guide! {
        readme => "../README.md",
        introduction => "../docs/src/introduction.md",
        getting_started => "../docs/src/getting-started.md",
        apps => "../docs/src/apps.md",
        axum => "../docs/src/axum.md",
        listeners => "../docs/src/listeners.md",
        http => "../docs/src/http.md",
        http2 => "../docs/src/http2.md",
        files => "../docs/src/files.md",
        compression => "../docs/src/compression.md",
        database => "../docs/src/database.md",
        configuration => "../docs/src/configuration.md",
        operating => "../docs/src/operating.md",
        deploying => "../docs/src/deploying.md",
        tuning => "../docs/src/tuning.md",
        benchmarks => "../docs/src/benchmarks.md",
        contributing => "../docs/src/contributing.md",
    }
}
