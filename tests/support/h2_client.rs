//! An HTTP/2 client over a real socket (TCP or a Unix socket), on the `h2`
//! crate (the one hyper's client is built on), for the tests that combine
//! HTTP/2 with another feature: upgrade, load balancers, the PROXY
//! protocol, the access log, the listeners, reload.
//!
//! Each client owns a current-thread runtime; the connection's task runs
//! while a request is in flight. Every step has a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

/// Longest one request (or the handshake) may take.
const STEP: Duration = Duration::from_secs(10);

/// One HTTP/2 connection (prior knowledge, no TLS).
pub struct H2Client {
    runtime: tokio::runtime::Runtime,
    send: h2::client::SendRequest<Bytes>,
    /// The client's own address (TCP only): what the server logs as the peer.
    pub local_addr: Option<SocketAddr>,
}

/// A response: its status and whole body.
#[derive(Debug)]
pub struct H2Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl H2Response {
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }
}

/// Why a request got no response.
#[derive(Debug)]
pub enum H2Failure {
    /// The server's GOAWAY came before the stream was taken: RFC 9113
    /// §6.8 says it was not processed, and a client may send it again on
    /// a new connection.
    NotProcessed(String),
    /// Anything else: a reset, a broken connection, a timeout.
    Failed(String),
}

impl H2Client {
    /// Connect to `addr` and do the HTTP/2 handshake; panics if either fails.
    pub fn connect(addr: SocketAddr) -> H2Client {
        Self::try_connect(addr).unwrap_or_else(|error| panic!("HTTP/2 to {addr}: {error}"))
    }

    /// Connect to `addr` and do the HTTP/2 handshake.
    pub fn try_connect(addr: SocketAddr) -> Result<H2Client, String> {
        Self::open(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let local = tcp.local_addr()?;
            Ok((tcp, Some(local)))
        })
    }

    /// Connect to the Unix socket at `path` and do the HTTP/2 handshake.
    pub fn connect_unix(path: &Path) -> H2Client {
        let path = path.to_owned();
        Self::open(async move { Ok((tokio::net::UnixStream::connect(path).await?, None)) })
            .unwrap_or_else(|error| panic!("HTTP/2 over a Unix socket: {error}"))
    }

    fn open<T>(
        connect: impl Future<Output = std::io::Result<(T, Option<SocketAddr>)>>,
    ) -> Result<H2Client, String>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (send, local_addr) = runtime.block_on(async {
            let handshake = async {
                let (io, local_addr) = connect.await.map_err(|e| format!("connect: {e}"))?;
                let (send, connection) = h2::client::handshake(io)
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok::<_, String>((send, local_addr))
            };
            tokio::time::timeout(STEP, handshake)
                .await
                .map_err(|_| "handshake timed out".to_owned())?
        })?;
        Ok(H2Client {
            runtime,
            send,
            local_addr,
        })
    }

    /// `GET path`; panics if there is no response.
    pub fn get(&mut self, path: &str) -> H2Response {
        self.try_get(path)
            .unwrap_or_else(|failure| panic!("GET {path} over HTTP/2: {failure:?}"))
    }

    /// `GET path`, its response or why there is none.
    pub fn try_get(&mut self, path: &str) -> Result<H2Response, H2Failure> {
        self.try_request("GET", path, b"")
    }

    /// `method path` with `body`.
    pub fn try_request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<H2Response, H2Failure> {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://localhost{path}"))
            .body(())
            .unwrap();
        let send = self.send.clone();
        let body = Bytes::copy_from_slice(body);
        let exchange = async move {
            let mut send = send.ready().await.map_err(classify)?;
            let end = body.is_empty();
            let (response, mut stream) = send.send_request(request, end).map_err(classify)?;
            if !end {
                stream.send_data(body, true).map_err(classify)?;
            }
            let response = response.await.map_err(classify)?;
            let status = response.status().as_u16();
            let mut received = response.into_body();
            let mut bytes = Vec::new();
            while let Some(chunk) = received.data().await {
                let chunk = chunk.map_err(classify)?;
                let _ = received.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            Ok(H2Response {
                status,
                body: bytes,
            })
        };
        self.runtime.block_on(async {
            tokio::time::timeout(STEP, exchange)
                .await
                .unwrap_or_else(|_| Err(H2Failure::Failed("timed out".into())))
        })
    }

    /// Send `count` requests for `path` at once on this connection (each
    /// its own stream); their responses in order.
    pub fn get_many(&mut self, path: &str, count: usize) -> Vec<H2Response> {
        let send = self.send.clone();
        let uri = format!("http://localhost{path}");
        let all = async move {
            let mut pending = Vec::new();
            for _ in 0..count {
                let mut ready = send.clone().ready().await.expect("room for a stream");
                let request = http::Request::get(uri.as_str()).body(()).unwrap();
                let (response, _) = ready.send_request(request, true).expect("send");
                pending.push(response);
            }
            let mut responses = Vec::new();
            for response in pending {
                let response = response.await.expect("a response");
                let status = response.status().as_u16();
                let mut received = response.into_body();
                let mut body = Vec::new();
                while let Some(chunk) = received.data().await {
                    let chunk = chunk.expect("a body chunk");
                    let _ = received.flow_control().release_capacity(chunk.len());
                    body.extend_from_slice(&chunk);
                }
                responses.push(H2Response { status, body });
            }
            responses
        };
        self.runtime.block_on(async {
            tokio::time::timeout(STEP, all)
                .await
                .expect("the responses within the step's deadline")
        })
    }
}

impl H2Client {
    /// Open a stream for `GET path`, wait `after` (the app is running),
    /// then reset it with `CANCEL`, as a client that gave up does.
    pub fn reset_after(&mut self, path: &str, after: Duration) {
        let send = self.send.clone();
        let uri = format!("http://localhost{path}");
        self.runtime.block_on(async move {
            let mut send = send.ready().await.expect("room for a stream");
            let request = http::Request::get(uri.as_str()).body(()).unwrap();
            let (response, mut stream) = send.send_request(request, true).expect("send");
            tokio::time::sleep(after).await;
            stream.send_reset(h2::Reason::CANCEL);
            drop(response);
            // Let the RST_STREAM frame go out.
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
    }
}

/// A GOAWAY from the server that left the stream unprocessed, or any other error.
fn classify(error: h2::Error) -> H2Failure {
    if error.is_go_away() && error.is_remote() {
        H2Failure::NotProcessed(error.to_string())
    } else {
        H2Failure::Failed(error.to_string())
    }
}
