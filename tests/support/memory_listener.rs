//! A custom `Listener`: the shard serves whatever streams arrive on a
//! channel, in-memory pipes for instance, with no socket anywhere.
//! `tests/memory_listener.rs` shows it at work; `tests/fairness.rs` hands
//! it streams of its own making.

use std::io;

use shardd::{Accepted, App, Config, Listener, PeerAddr, Server, ServerHandle, ShardInfo};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};

/// Hands the shard whatever streams of type `C` arrive on a channel.
pub struct MemoryListener<C = DuplexStream>(pub flume::Receiver<C>);

impl<C> Listener for MemoryListener<C>
where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
{
    type Conn = C;

    async fn accept(&mut self) -> io::Result<Option<Accepted<C>>> {
        // A closed channel means no more connections: the shard stops.
        Ok(self.0.recv_async().await.ok().map(|conn| Accepted {
            conn,
            peer: PeerAddr::Unknown,
        }))
    }
}

/// Any stream: lets one listener hand out streams of different types, boxed.
pub trait AnyStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AnyStream for T {}

/// Starts `config` serving the apps `make_app` makes on connections of type `C` sent to the
/// returned sender (one `MemoryListener` per shard, all on that channel);
/// returns the sender and the server. Dropping the sender ends the listeners.
pub fn serve_in_memory<C, A>(
    config: Config,
    make_app: impl Fn(&ShardInfo) -> A + Send + Sync + 'static,
) -> (flume::Sender<C>, ServerHandle)
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: App,
{
    let (connect, incoming) = flume::unbounded::<C>();
    let server = Server::with_listener(config, move |_shard| Ok(MemoryListener(incoming.clone())))
        .expect("a server on in-memory listeners")
        .serve(make_app)
        .expect("shards serving");
    (connect, server)
}
