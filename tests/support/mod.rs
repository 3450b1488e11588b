//! What the integration tests share: a test server on an ephemeral port
//! ([`server`]), the one raw HTTP/1.1 client ([`client`]) over TCP, over a
//! Unix socket ([`unix_client`]) and over an in-memory pipe
//! ([`memory_pipe`]), an HTTP/2 client over TCP or a Unix socket
//! ([`h2_client`]), a raw HTTP/2 frame client for attacks ([`h2_raw`]), a
//! listener of in-memory pipes ([`memory_listener`]),
//! the one response parser ([`response`]),
//! polling with a deadline ([`wait`]), the built binary as a process
//! ([`process`]), a config file for one test ([`temp_config`]) and the
//! scheduling policies and CPU time of a process's threads ([`threads`]),
//! where HAProxy is installed ([`haproxy`]), and a real throw-away Postgres
//! with the TechEmpower data ([`postgres`]).
//!
//! Every client read and write has a timeout and every wait has a deadline,
//! so a misbehaving server makes a test fail instead of hang.

// Each test file compiles its own copy and uses a different subset.
#![allow(dead_code, unused_imports)]

pub mod browser;
mod client;
mod h2_client;
pub mod h2_raw;
mod haproxy;
mod memory_listener;
mod memory_pipe;
pub mod postgres;
pub mod process;
mod promtool;
mod response;
mod server;
mod temp_config;
mod threads;
mod unix_client;
mod wait;

pub use client::{Client, Closed, RawClient, Transport};
pub use h2_client::{H2Client, H2Failure, H2Response};
pub use haproxy::haproxy_binary;
pub use memory_listener::{serve_in_memory, AnyStream, MemoryListener};
pub use memory_pipe::{MemoryClient, MemoryPipe};
pub use postgres::{TempPostgres, WorldLock};
pub use promtool::{assert_promtool_accepts, promtool};
pub use response::{assert_valid_date, parse_response, HttpResponse};
pub use server::{bounded_config, config, echo_app, refused_and_closed, shard_of, TestServer};
pub use temp_config::TempConfig;
pub use threads::{cpu_time, scheduling_policies};
pub use unix_client::UnixClient;
pub use wait::{poll_until, wait_until};
