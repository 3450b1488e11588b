//! What runs inside one shardd shard.
//!
//! A shard is an OS thread pinned to one core that runs a single-threaded
//! async runtime and one task per connection. It takes its connections
//! through a [`Listener`] — the Rust counterpart of Racket's `tcp^`
//! signature — so the server loop in [`shard`] never knows whether they came
//! from the main thread's acceptor ([`listeners::Handoff`]), from a socket of
//! its own ([`listeners::ReusePort`]) or from an in-memory pipe in a test.
//!
//! The HTTP/1.1 codec in [`http`] is sans-IO: bytes in, requests out;
//! responses in, bytes out.

pub mod app;
pub mod apps;
pub mod buffers;
pub mod connection;
pub mod context;
pub mod drain;
pub mod http;
pub mod limits;
pub mod listener;
pub mod listeners;
pub mod room;
pub mod shard;
pub mod stats;

pub use app::{app_fn, App, Body, Request, Response};
pub use context::ShardContext;
pub use limits::Limits;
pub use listener::{Accepted, Listener, PeerAddr};
pub use room::RoomSignal;
pub use stats::{ShardStats, ShardStatsSnapshot};
