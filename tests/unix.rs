//! Serving on a Unix domain socket (`bind = "unix:/path"`): the acceptor
//! hands Unix connections off as it does TCP ones; the socket file gets its
//! mode, a stale one is replaced, a live one is an error, and the file is
//! removed when the server stops. HTTP/2 with prior knowledge works on it
//! as on TCP (curl and the `h2` crate's client).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use shardd::{app_fn, BindAddr, Config, Error, Response, Server, ServerHandle};
use support::{config, H2Client, UnixClient};

/// A socket path in the temp dir, unique to this test; removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        let path =
            std::env::temp_dir().join(format!("shardd-unix-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn unix_config(path: &TempPath) -> Config {
    Config {
        bind: BindAddr::Unix(path.0.clone()),
        ..config(2)
    }
}

/// Serves `/peer` (who the server says the client is) and `/plaintext`.
fn start(config: Config) -> ServerHandle {
    Server::bind(config)
        .expect("bind the unix socket")
        .serve(|_shard| {
            app_fn(|req| match req.path() {
                "/peer" => Response::text(req.peer().to_string()),
                "/peer-debug" => Response::text(format!("{:?}", req.peer())),
                "/plaintext" => Response::text("Hello, World!"),
                _ => Response::not_found(),
            })
        })
        .expect("serve")
}

#[test]
fn serves_keep_alive_and_pipelined_requests_over_a_unix_socket() {
    let path = TempPath::new("serve");
    let server = start(unix_config(&path));
    assert_eq!(server.listen_addr(), Some(&BindAddr::Unix(path.0.clone())));
    assert_eq!(server.local_addr(), None, "no TCP address");

    let mut client = UnixClient::connect(&path.0);
    for _ in 0..3 {
        let response = client.get("/plaintext");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"Hello, World!");
        assert!(!response.closes(), "keep-alive over a Unix socket");
    }
    client.send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.response().unwrap().status, 200);
    assert_eq!(client.response().unwrap().status, 404);

    // Both shards get Unix connections.
    let clients: Vec<UnixClient> = (0..4).map(|_| UnixClient::connect(&path.0)).collect();
    for mut client in clients {
        assert_eq!(client.get("/plaintext").status, 200);
    }
    let stats = server.stats();
    assert!(
        stats.shards.iter().all(|shard| shard.accepted >= 1),
        "{stats:?}"
    );
}

#[test]
fn http2_with_prior_knowledge_over_a_unix_socket() {
    let path = TempPath::new("http2");
    let server = start(unix_config(&path));
    let socket = path.0.to_str().unwrap();
    let output = std::process::Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--http2-prior-knowledge"])
        .args(["--unix-socket", socket, "http://localhost/plaintext"])
        .output()
        .expect("curl is installed (scripts/test installs it)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.ends_with("Hello, World!"), "{text}");

    // Many streams on one connection, and the peer as HTTP/1.1 shows it.
    let mut client = H2Client::connect_unix(&path.0);
    let answers = client.get_many("/plaintext", 20);
    assert!(
        answers
            .iter()
            .all(|answer| (answer.status, answer.body_str()) == (200, "Hello, World!")),
        "{answers:?}"
    );
    assert_eq!(client.get("/peer").body_str(), "unix:");
    let stats = server.stats();
    let http2: u64 = stats
        .shards
        .iter()
        .map(|shard| shard.http2.connections)
        .sum();
    assert_eq!(http2, 2, "{stats:?}");
}

#[test]
fn peer_shows_as_a_unix_peer() {
    let path = TempPath::new("peer");
    let server = start(unix_config(&path));

    let mut unnamed = UnixClient::connect(&path.0);
    assert_eq!(unnamed.get("/peer").body_str(), "unix:");
    assert_eq!(unnamed.get("/peer-debug").body_str(), "Unix(None)");

    // A client socket bound to a path of its own shows that path.
    let own = TempPath::new("peer-client");
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&socket2::SockAddr::unix(&own.0).unwrap())
        .unwrap();
    socket
        .connect(&socket2::SockAddr::unix(&path.0).unwrap())
        .unwrap();
    let mut named = UnixClient::from_stream(UnixStream::from(std::os::fd::OwnedFd::from(socket)));
    assert_eq!(
        named.get("/peer").body_str(),
        format!("unix:{}", own.0.display())
    );
    server.stop();
}

#[test]
fn socket_file_gets_its_mode_and_is_removed_on_stop() {
    let path = TempPath::new("mode");
    let mut config = unix_config(&path);
    config.unix_mode = Some("0600".parse().unwrap());
    let server = start(config);
    let mode = std::fs::metadata(&path.0).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    assert_eq!(UnixClient::connect(&path.0).get("/plaintext").status, 200);
    server.stop();
    assert!(!path.0.exists(), "the socket file is removed on stop");
}

#[test]
fn stale_socket_file_is_replaced() {
    let path = TempPath::new("stale");
    // A process that died left its socket file behind: nobody listens on it.
    drop(UnixListener::bind(&path.0).unwrap());
    assert!(path.0.exists());
    assert!(UnixStream::connect(&path.0).is_err(), "stale: refused");

    let server = start(unix_config(&path));
    assert_eq!(UnixClient::connect(&path.0).get("/plaintext").status, 200);
    server.stop();
    assert!(!path.0.exists());
}

#[test]
fn live_socket_file_is_an_error_and_left_alone() {
    let path = TempPath::new("live");
    let live = UnixListener::bind(&path.0).unwrap();

    let error = match Server::bind(unix_config(&path)) {
        Err(error) => error,
        Ok(_) => panic!("bound over a live socket"),
    };
    assert!(
        matches!(&error, Error::UnixSocketInUse { path: p } if *p == path.0),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&path.0.display().to_string()), "{message}");
    assert!(message.contains("another process"), "{message}");

    // The other process's socket still works: the probe's connection is
    // queued on it, and a new one is too.
    live.set_nonblocking(true).unwrap();
    assert!(live.accept().is_ok(), "the probe reached the live listener");
    let _client = UnixStream::connect(&path.0).expect("the live socket still listens");
}

#[test]
fn a_path_that_is_not_a_socket_is_an_error() {
    let path = TempPath::new("regular");
    std::fs::write(&path.0, b"precious").unwrap();
    let error = Server::bind(unix_config(&path)).err().expect("refused");
    // The message names the file; its source says why.
    assert!(
        error.to_string().contains(&path.0.display().to_string()),
        "{error}"
    );
    let cause = std::error::Error::source(&error)
        .expect("a cause")
        .to_string();
    assert!(cause.contains("not a socket"), "{cause}");
    assert_eq!(std::fs::read(&path.0).unwrap(), b"precious");
}

#[test]
fn reuseport_with_a_unix_address_is_refused() {
    let path = TempPath::new("reuseport");
    let config = Config {
        listener: shardd::ListenerMode::Reuseport,
        ..unix_config(&path)
    };
    let error = Server::bind(config).err().expect("refused");
    assert!(error.to_string().contains("reuseport"), "{error}");
    assert!(!path.0.exists(), "nothing was bound");
}

#[test]
fn overload_answers_503_over_a_unix_socket() {
    let path = TempPath::new("overload");
    let mut config = unix_config(&path);
    config.shards = 1;
    config.admission.max_connections_per_shard = 1;
    config.admission.max_pending = 0;
    let server = start(config);

    let mut first = UnixClient::connect(&path.0);
    assert_eq!(first.get("/plaintext").status, 200);
    let mut second = UnixClient::connect(&path.0);
    second.send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = second.response().expect("the rejecter answers");
    assert_eq!(response.status, 503);
    assert!(response.header("Retry-After").is_some(), "{response:?}");
    assert!(second.closes_within(Duration::from_secs(3)));
    assert!(server.stats().acceptor.rejected >= 1);
}
