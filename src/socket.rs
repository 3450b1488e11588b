//! Binding the one listening socket the main thread owns.

use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};
use std::io;

/// Bind and listen on `addr` for the handoff acceptor.
///
/// `TCP_NODELAY` is set on the listening socket because Linux copies it to
/// every accepted socket, which saves a `setsockopt` per connection. The
/// socket stays blocking: the acceptor blocks in `accept4`.
pub fn bind_listener(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nodelay(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_inherit_tcp_nodelay() {
        let listener = bind_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(
            accepted.nodelay().unwrap(),
            "the acceptor relies on Linux copying TCP_NODELAY from the listener"
        );
    }
}
