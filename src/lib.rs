//! shardd: a sharded thread-per-core HTTP/1.1 server with connection handoff.
//!
//! The main thread owns the one listening socket: it accepts and hands each
//! connection, round-robin, over a channel to one of N shard threads, each
//! pinned to its own core. Every shard runs its own server loop and takes
//! its connections through a pluggable [`Listener`].
//!
//! This crate (`src/`) is the main thread's side: configuration, binding,
//! the acceptor and dispatcher, the supervisor that starts and restarts
//! shards, signals and shutdown. What runs inside a shard lives in the
//! `shardd-shards` crate (`shards/`) and is re-exported here.
//!
//! ```no_run
//! use shardd::{Config, Server, Response, app_fn};
//!
//! let server = Server::bind(Config::default())?;
//! let handle = server.spawn(|_shard| app_fn(|req| match req.path() {
//!     "/" => Response::text("hello\n"),
//!     _ => Response::not_found(),
//! }))?;
//! println!("serving on {:?}", handle.local_addr());
//! # Ok::<(), anyhow::Error>(())
//! ```

mod acceptor;
pub mod cli;
pub mod config;
mod dispatch;
mod rejecter;
mod server;
pub mod shutdown;
pub mod signals;
pub mod socket;
pub mod stats;
mod supervisor;

pub use config::{Config, DispatchPolicy, ListenerMode, OverloadPolicy};
pub use server::{Server, ServerHandle};
pub use shardd_shards::apps::techempower::TechEmpower;
pub use shardd_shards::http::Version;
pub use shardd_shards::listeners::{Handoff, HandoffConn, ReusePort, TcpConn};
pub use shardd_shards::{
    app_fn, Accepted, App, Body, Limits, Listener, PeerAddr, Request, Response, ShardInfo,
    ShardStatsSnapshot,
};
pub use shutdown::Shutdown;
pub use stats::{AcceptorSnapshot, StatsSnapshot};

/// The `shardd-shards` crate, for what is not re-exported above.
pub use shardd_shards as shards;
