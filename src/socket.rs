//! Binding the one listening socket the main thread owns, and the
//! open-file limit every busy server needs raised.

use std::net::{SocketAddr, TcpListener};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

/// Bind and listen on `addr` for the handoff acceptor.
///
/// `TCP_NODELAY` is set on the listening socket because Linux copies it to
/// every accepted socket, which saves a `setsockopt` per connection. The
/// socket stays blocking: the acceptor blocks in `accept4`.
pub fn bind_listener(addr: SocketAddr, backlog: u32) -> Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .context("cannot create the listening socket")?;
    socket.set_reuse_address(true)?;
    socket.set_nodelay(true)?;
    socket.set_cloexec(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("cannot bind {addr}"))?;
    socket
        .listen(backlog.min(i32::MAX as u32) as i32)
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(socket.into())
}

/// Raise the soft open-file limit to the hard limit; returns (old, new).
pub fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let old = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((old, limit.rlim_cur))
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

    #[test]
    fn open_file_limit_is_raised_to_the_hard_limit() {
        let (_, now) = raise_open_file_limit().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct we pass.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(now, limit.rlim_max);
        assert_eq!(limit.rlim_cur, limit.rlim_max);
    }
}
