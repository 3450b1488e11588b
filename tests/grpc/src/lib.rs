//! An example gRPC service, `greeter.Greeter` (`proto/greeter.proto`),
//! written with tonic and served on shardd's shards through the tower
//! adapter (`examples/greeter.rs`); the tests in `tests/` call it with
//! tonic's own client.
//!
//! One method of each of gRPC's kinds, an error status (an empty name is
//! `INVALID_ARGUMENT`), and a count of the calls whose handler was dropped
//! before it finished ([`Greeter::cancelled`]): a client that cancels, or a
//! deadline that passes, drops it.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// The code tonic generated from `proto/greeter.proto`.
pub mod proto {
    tonic::include_proto!("greeter");
}

use proto::greeter_server::GreeterServer;
use proto::{CountdownRequest, HelloReply, HelloRequest};

/// The service of one shard.
#[derive(Clone, Debug)]
pub struct Greeter {
    shard: u32,
    cancelled: Arc<AtomicUsize>,
}

impl Greeter {
    /// The service of shard `shard`; `cancelled` counts the handlers
    /// dropped before they finished (shared by every shard's service).
    pub fn new(shard: usize, cancelled: Arc<AtomicUsize>) -> Self {
        Greeter {
            shard: shard as u32,
            cancelled,
        }
    }

    /// The tonic server of this service, a tower `Service` to hand to
    /// `shardd::tower::serve_tower`.
    pub fn server(self) -> GreeterServer<Greeter> {
        GreeterServer::new(self)
    }

    /// How many handlers were dropped before they finished.
    pub fn cancelled(&self) -> usize {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn reply(&self, message: String) -> HelloReply {
        HelloReply {
            message,
            shard: self.shard,
        }
    }

    /// A guard held while a handler runs: dropped unfinished, it counts
    /// the call as cancelled.
    fn running(&self) -> Running {
        Running {
            cancelled: Some(self.cancelled.clone()),
        }
    }
}

/// See [`Greeter::running`].
struct Running {
    /// `None` once the handler has finished.
    cancelled: Option<Arc<AtomicUsize>>,
}

impl Running {
    fn finished(mut self) {
        self.cancelled = None;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(cancelled) = &self.cancelled {
            cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The stream of replies a streaming method answers with.
type Replies = Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send>>;

#[tonic::async_trait]
impl proto::greeter_server::Greeter for Greeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let running = self.running();
        let HelloRequest { name, delay_ms } = request.into_inner();
        if name.is_empty() {
            running.finished();
            return Err(Status::invalid_argument("name must not be empty"));
        }
        tokio::time::sleep(Duration::from_millis(delay_ms.into())).await;
        running.finished();
        Ok(Response::new(self.reply(format!("Hello, {name}!"))))
    }

    type CountdownStream = Replies;

    async fn countdown(
        &self,
        request: Request<CountdownRequest>,
    ) -> Result<Response<Replies>, Status> {
        let CountdownRequest { count, interval_ms } = request.into_inner();
        let interval = Duration::from_millis(interval_ms.into());
        let greeter = self.clone();
        // The guard lives in the stream: a stream dropped before its last
        // reply (the client went away, the deadline passed) counts.
        let state = (count, Some(self.running()));
        let replies = futures_util::stream::unfold(state, move |(left, mut running)| {
            let greeter = greeter.clone();
            async move {
                if left == 0 {
                    if let Some(running) = running.take() {
                        running.finished();
                    }
                    return None;
                }
                tokio::time::sleep(interval).await;
                let reply = greeter.reply(format!("{left}"));
                Some((Ok(reply), (left - 1, running)))
            }
        });
        Ok(Response::new(Box::pin(replies)))
    }

    async fn greet_all(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<HelloReply>, Status> {
        let running = self.running();
        let mut requests = request.into_inner();
        let mut names = Vec::new();
        while let Some(request) = requests.message().await? {
            names.push(request.name);
        }
        running.finished();
        Ok(Response::new(
            self.reply(format!("Hello, {}!", names.join(", "))),
        ))
    }

    type ChatStream = Replies;

    async fn chat(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<Replies>, Status> {
        let greeter = self.clone();
        let replies = request.into_inner().map(move |request| {
            request.map(|request| greeter.reply(format!("Hello, {}!", request.name)))
        });
        Ok(Response::new(Box::pin(replies)))
    }
}
