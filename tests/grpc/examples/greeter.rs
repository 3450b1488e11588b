//! A tonic gRPC service on shardd: `greeter.Greeter` (proto/greeter.proto),
//! one service per shard, served through the tower adapter over HTTP/2
//! (cleartext with prior knowledge; with `--tls-cert`/`--tls-key`, TLS with
//! ALPN h2).
//!
//! ```sh
//! cargo run -p shardd-grpc --example greeter -- --bind 127.0.0.1:50051
//! # with grpcurl (it reads the .proto, the server has no reflection):
//! grpcurl -plaintext -import-path tests/grpc/proto -proto greeter.proto \
//!     -d '{"name": "ada"}' 127.0.0.1:50051 greeter.Greeter/SayHello
//! ```
//!
//! SIGINT or SIGTERM drains: calls in flight finish, then it exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use clap::Parser;
use shardd::tower::serve_tower;
use shardd::{Config, Server, TlsConfig};
use shardd_grpc::Greeter;

/// The Greeter gRPC service on shardd.
#[derive(Debug, Parser)]
struct Args {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:50051")]
    bind: SocketAddr,
    /// Number of shards [default: one per core].
    #[arg(long, default_value_t = 0)]
    shards: usize,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = Config {
        bind: args.bind.into(),
        shards: args.shards,
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| TlsConfig::new(cert, key)),
        ..Config::default()
    };
    let cancelled = Arc::new(AtomicUsize::new(0));
    let server = Server::bind(config)?.serve(move |shard| {
        // Built on the shard: its handlers run on the shard's thread.
        let greeter = Greeter::new(shard.shard_id, cancelled.clone());
        serve_tower(tonic::service::Routes::new(greeter.server()))
    })?;
    if let Some(addr) = server.local_addr() {
        println!("greeter: gRPC on {addr} (Ctrl-C to stop)");
    }
    // SIGINT/SIGTERM: drain, then return; a second one exits at once.
    server.wait_for_shutdown()?;
    Ok(())
}
