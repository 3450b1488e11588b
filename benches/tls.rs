//! TLS benchmark: server CPU per request over TLS, shardd beside nginx in
//! the same run, on the same certificate.
//!
//! ```text
//! cargo bench --bench tls                       # shardd (handoff, reuseport) and nginx
//! cargo bench --bench tls -- --duration 10 --reps 3
//! ```
//!
//! Workloads (TLS 1.3, or 1.2 with `--tls 1.2`; X25519; the client's cipher
//! order; certificates checked against the test CA):
//! - `pipeline`: `--connections` long-lived TLS connections, each writing
//!   `--depth` `GET /plaintext` requests at once and reading all the
//!   responses before the next batch;
//! - `handshake`: `--handshake-clients` clients in a closed loop, each a new
//!   TCP connection + full TLS handshake (no resumption) per request, with
//!   `Connection: close`.
//!
//! The figure is the server's CPU time (utime+stime of its process tree,
//! from `/proc`) per good response, sampled around each window. Run without
//! `--bench` (as `cargo test --benches` does) it is a smoke test: short
//! windows, nginx only if it is installed.

#[path = "load/cpu.rs"]
mod cpu;
#[path = "load/servers.rs"]
mod servers;
mod support;

use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use cpu::CpuSample;
use servers::{start_server, stop_all, RunningServer, Target, SHARDD};

const HELP: &str = "\
cargo bench --bench tls -- [options]

  --duration SECS          measured window per cell [5]
  --warmup SECS            load before each window [2]
  --reps N                 repetitions, servers alternating within each [2]
  --connections N          pipeline: TLS connections (one client thread each) [32]
  --depth N                pipeline: requests per write [16]
  --handshake-clients N    handshake: concurrent clients [8]
  --shards N               shardd --shards and nginx worker_processes [2]
  --workloads LIST         pipeline,handshake [both]
  --servers LIST           shardd,shardd-reuseport,nginx [all three]
  --tls VERSION            1.3 or 1.2, what the client offers [1.3]
  --nginx PATH             the nginx binary [nginx on PATH, else /usr/sbin/nginx]
  --out DIR                tls.csv, certificates, server logs [target/bench-results/tls]
";

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n";
const REQUEST_CLOSE: &[u8] =
    b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

struct Opts {
    duration: f64,
    warmup: f64,
    reps: usize,
    connections: usize,
    depth: usize,
    handshake_clients: usize,
    shards: usize,
    workloads: Vec<String>,
    servers: Vec<String>,
    nginx: Option<PathBuf>,
    tls12: bool,
    out: PathBuf,
    smoke: bool,
}

fn parse_args() -> Result<Opts, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = !args.iter().any(|a| a == "--bench");
    let mut opts = Opts {
        duration: if smoke { 0.3 } else { 5.0 },
        warmup: if smoke { 0.2 } else { 2.0 },
        reps: if smoke { 1 } else { 2 },
        connections: if smoke { 4 } else { 32 },
        depth: 16,
        handshake_clients: if smoke { 2 } else { 8 },
        shards: 2,
        workloads: vec!["pipeline".into(), "handshake".into()],
        servers: vec!["shardd".into(), "shardd-reuseport".into(), "nginx".into()],
        nginx: None,
        tls12: false,
        out: support::target_dir().join("bench-results").join("tls"),
        smoke,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        let number = |v: String| v.parse::<f64>().map_err(|e| format!("{v}: {e}"));
        let count = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        let list = |v: String| v.split(',').map(str::to_owned).collect::<Vec<_>>();
        match arg.as_str() {
            "--bench" => {}
            "--duration" => opts.duration = number(value()?)?,
            "--warmup" => opts.warmup = number(value()?)?,
            "--reps" => opts.reps = count(value()?)?.max(1),
            "--connections" => opts.connections = count(value()?)?.max(1),
            "--depth" => opts.depth = count(value()?)?.max(1),
            "--handshake-clients" => opts.handshake_clients = count(value()?)?.max(1),
            "--shards" => opts.shards = count(value()?)?.max(1),
            "--workloads" => opts.workloads = list(value()?),
            "--servers" => opts.servers = list(value()?),
            "--nginx" => opts.nginx = Some(PathBuf::from(value()?)),
            "--tls" => match value()?.as_str() {
                "1.3" => opts.tls12 = false,
                "1.2" => opts.tls12 = true,
                other => return Err(format!("--tls {other}: 1.3 or 1.2")),
            },
            "--out" => opts.out = PathBuf::from(value()?),
            "-h" | "--help" => return Err(HELP.into()),
            other => return Err(format!("unknown option {other}\n{HELP}")),
        }
    }
    Ok(opts)
}

// ---------------------------------------------------------------------------
// Certificates: one test CA and one ECDSA P-256 leaf, for both servers.

struct Certs {
    chain: PathBuf,
    key: PathBuf,
    ca: CertificateDer<'static>,
}

fn make_certs(dir: &Path) -> Certs {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "shardd bench CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let leaf = params.signed_by(&key, &ca, &ca_key).unwrap();
    let chain = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&chain, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Certs {
        chain,
        key: key_path,
        ca: ca.der().clone(),
    }
}

/// TLS 1.3 (or 1.2), no resumption, X25519 for the key exchange (what both
/// servers then compute). P-256 is offered after it: TLS 1.2 servers must
/// see the certificate's curve in the client's list (OpenSSL refuses the
/// handshake otherwise); a TLS 1.3 client sends its key share for X25519 only.
fn client_config(ca: &CertificateDer<'static>, tls12: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut provider = aws_lc_rs::default_provider();
    provider.kx_groups = vec![aws_lc_rs::kx_group::X25519, aws_lc_rs::kx_group::SECP256R1];
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[if tls12 {
            &rustls::version::TLS12
        } else {
            &rustls::version::TLS13
        }])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

// ---------------------------------------------------------------------------
// Servers

fn nginx_binary(opts: &Opts) -> Option<PathBuf> {
    if let Some(path) = &opts.nginx {
        return Some(path.clone());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nginx"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
}

/// nginx's config: the peers' plaintext conventions, plus `ssl` on the same certificate.
fn nginx_config(certs: &Certs, out: &Path) -> PathBuf {
    let dir = out.join("nginx");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    let config = format!(
        "pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    use epoll;
    worker_connections 16384;
    multi_accept off;
}}
http {{
    access_log off;
    server_tokens off;
    sendfile off;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 10000000;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:PORT ssl reuseport backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /plaintext {{
            default_type text/plain;
            return 200 \"Hello, World!\";
        }}
        location / {{
            return 404;
        }}
    }}
}}
",
        cert = certs.chain.display(),
        key = certs.key.display(),
    );
    let path = dir.join("nginx.conf.in");
    std::fs::write(&path, config).unwrap();
    path
}

fn targets(opts: &Opts, certs: &Certs) -> Vec<Target> {
    let shardd = |label: &str, extra: &[&str]| {
        let mut argv: Vec<String> = [SHARDD, "--bind", "127.0.0.1:{port}", "--shards"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.push(opts.shards.to_string());
        argv.extend(["--tls-cert".into(), certs.chain.display().to_string()]);
        argv.extend(["--tls-key".into(), certs.key.display().to_string()]);
        argv.extend(extra.iter().map(|s| s.to_string()));
        Target {
            label: label.into(),
            argv,
        }
    };
    let mut targets = Vec::new();
    for name in &opts.servers {
        match name.as_str() {
            "shardd" => targets.push(shardd("shardd", &[])),
            "shardd-reuseport" => {
                targets.push(shardd("shardd-reuseport", &["--listener", "reuseport"]))
            }
            "nginx" => match nginx_binary(opts) {
                Some(nginx) => {
                    let template = nginx_config(certs, &opts.out);
                    // The port is only known at start: a tiny shell wrapper writes
                    // the config with it, then execs nginx (so the pid is nginx's).
                    let script = format!(
                        "sed s/PORT/$1/ {t} > {t}.$1 && exec {n} -p {d}/ -c {t}.$1 \
                         -g 'daemon off; master_process on; worker_processes {w};'",
                        t = template.display(),
                        n = nginx.display(),
                        d = opts.out.join("nginx").display(),
                        w = opts.shards,
                    );
                    targets.push(Target {
                        label: "nginx".into(),
                        argv: vec![
                            "sh".into(),
                            "-c".into(),
                            script,
                            "sh".into(),
                            "{port}".into(),
                        ],
                    });
                }
                None if opts.smoke => eprintln!("tls: nginx not found; measuring shardd only"),
                None => eprintln!(
                    "tls: nginx not found (apt-get install -y nginx, or --nginx PATH); \
                     measuring shardd only"
                ),
            },
            other => eprintln!("tls: unknown server {other}, skipped"),
        }
    }
    targets
}

// ---------------------------------------------------------------------------
// Load

/// What the client threads share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    good: AtomicU64,
    errors: AtomicU64,
}

fn connect(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(8)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(8)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Take every complete response at the start of `buf`; each must be `200`
/// with the body `Hello, World!`. Returns how many, and drops their bytes.
fn take_responses(buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut at = 0;
    let mut count = 0;
    loop {
        let rest = &buf[at..];
        let Some(head_end) = memchr_crlf2(rest) else {
            break;
        };
        let head = &rest[..head_end];
        if !head.starts_with(b"HTTP/1.1 200 ") {
            return Err(io::Error::new(ErrorKind::InvalidData, "not 200"));
        }
        let length = content_length(head)
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "no Content-Length"))?;
        let end = head_end + 4 + length;
        if rest.len() < end {
            break;
        }
        if &rest[head_end + 4..end] != b"Hello, World!" {
            return Err(io::Error::new(ErrorKind::InvalidData, "wrong body"));
        }
        at += end;
        count += 1;
    }
    buf.drain(..at);
    Ok(count)
}

fn memchr_crlf2(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// One pipelining connection: batches of `depth` requests, reconnecting after an error.
fn pipeline_client(addr: SocketAddr, config: Arc<ClientConfig>, depth: usize, shared: Arc<Shared>) {
    let batch = REQUEST.repeat(depth);
    let mut chunk = vec![0u8; 64 * 1024];
    while !shared.stop.load(Relaxed) {
        let Ok(mut stream) = connect(addr, &config) else {
            shared.errors.fetch_add(1, Relaxed);
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let mut buf = Vec::new();
        let result: io::Result<()> = (|| {
            while !shared.stop.load(Relaxed) {
                stream.write_all(&batch)?;
                stream.flush()?;
                let mut answered = 0;
                while answered < depth {
                    let n = stream.read(&mut chunk)?;
                    if n == 0 {
                        return Err(ErrorKind::UnexpectedEof.into());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    answered += take_responses(&mut buf)?;
                }
                shared.good.fetch_add(depth as u64, Relaxed);
            }
            Ok(())
        })();
        if result.is_err() && !shared.stop.load(Relaxed) {
            shared.errors.fetch_add(1, Relaxed);
        }
    }
}

/// One client of the handshake workload: a new TLS connection per request.
fn handshake_client(addr: SocketAddr, config: Arc<ClientConfig>, shared: Arc<Shared>) {
    let mut chunk = vec![0u8; 16 * 1024];
    while !shared.stop.load(Relaxed) {
        let result: io::Result<()> = (|| {
            let mut stream = connect(addr, &config)?;
            stream.write_all(REQUEST_CLOSE)?;
            stream.flush()?;
            let mut buf = Vec::new();
            // The response, then the server's close (close_notify or FIN).
            let mut good = 0;
            loop {
                match stream.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        good += take_responses(&mut buf)?;
                    }
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof && good == 1 => break,
                    Err(e) => return Err(e),
                }
            }
            if good != 1 {
                return Err(io::Error::new(ErrorKind::InvalidData, "no response"));
            }
            shared.good.fetch_add(1, Relaxed);
            Ok(())
        })();
        if result.is_err() && !shared.stop.load(Relaxed) {
            shared.errors.fetch_add(1, Relaxed);
        }
    }
}

/// One measured cell.
struct Row {
    server: String,
    workload: String,
    rep: usize,
    good: u64,
    errors: u64,
    seconds: f64,
    server_cpu: f64,
    generator_cpu: f64,
    other_cpu: f64,
}

impl Row {
    fn rps(&self) -> f64 {
        self.good as f64 / self.seconds
    }
    fn us_per_request(&self) -> f64 {
        self.server_cpu * 1e6 / self.good.max(1) as f64
    }
}

fn measure(
    opts: &Opts,
    server: &RunningServer,
    workload: &str,
    rep: usize,
    config: &Arc<ClientConfig>,
) -> Row {
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
    let shared = Arc::new(Shared::default());
    let clients: Vec<_> = match workload {
        "pipeline" => (0..opts.connections)
            .map(|_| {
                let (config, shared, depth) = (config.clone(), shared.clone(), opts.depth);
                thread::spawn(move || pipeline_client(addr, config, depth, shared))
            })
            .collect(),
        _ => (0..opts.handshake_clients)
            .map(|_| {
                let (config, shared) = (config.clone(), shared.clone());
                thread::spawn(move || handshake_client(addr, config, shared))
            })
            .collect(),
    };
    thread::sleep(Duration::from_secs_f64(opts.warmup));
    let pid = server.child.id();
    let (good0, errors0) = (shared.good.load(Relaxed), shared.errors.load(Relaxed));
    let (cpu0, started) = (CpuSample::take(pid), Instant::now());
    thread::sleep(Duration::from_secs_f64(opts.duration));
    let (cpu1, seconds) = (CpuSample::take(pid), started.elapsed().as_secs_f64());
    let (good1, errors1) = (shared.good.load(Relaxed), shared.errors.load(Relaxed));
    shared.stop.store(true, Relaxed);
    for client in clients {
        let _ = client.join();
    }
    let used = cpu1.since(&cpu0);
    Row {
        server: server.target.label.clone(),
        workload: workload.into(),
        rep,
        good: good1 - good0,
        errors: errors1 - errors0,
        seconds,
        server_cpu: used.server,
        generator_cpu: used.generator,
        other_cpu: used.other,
    }
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    support::raise_open_file_limit();
    std::fs::create_dir_all(&opts.out).unwrap();
    let certs = make_certs(&opts.out);
    let config = client_config(&certs.ca, opts.tls12);
    let mut servers = Vec::new();
    for target in targets(&opts, &certs) {
        match start_server(&target, &opts.out) {
            Ok(server) => servers.push(server),
            Err(error) => {
                eprintln!("tls: {error}");
                stop_all(&mut servers);
                return ExitCode::FAILURE;
            }
        }
    }
    for server in &servers {
        let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
        match connect(addr, &config) {
            Ok(stream) => eprintln!(
                "tls: {} negotiates {:?}, {:?}, {:?}, ALPN {:?}",
                server.target.label,
                stream.conn.protocol_version(),
                stream.conn.negotiated_cipher_suite().map(|s| s.suite()),
                stream
                    .conn
                    .negotiated_key_exchange_group()
                    .map(|g| g.name()),
                stream.conn.alpn_protocol().map(String::from_utf8_lossy),
            ),
            Err(error) => eprintln!("tls: {}: {error}", server.target.label),
        }
    }
    let mut rows = Vec::new();
    for rep in 1..=opts.reps {
        for workload in &opts.workloads {
            for server in &mut servers {
                server.note_if_exited();
                if server.dead.is_some() {
                    continue;
                }
                let row = measure(&opts, server, workload, rep, &config);
                eprintln!(
                    "tls: rep {rep} {workload:9} {:16} {:>9.0} req/s  {:>7.2} µs CPU/req  errors {}",
                    row.server,
                    row.rps(),
                    row.us_per_request(),
                    row.errors
                );
                rows.push(row);
                thread::sleep(Duration::from_millis(if opts.smoke { 50 } else { 500 }));
            }
        }
    }
    let clean = stop_all(&mut servers);
    print_report(&opts, &rows);
    let failed =
        rows.iter().any(|r| r.good == 0) || (opts.smoke && rows.iter().any(|r| r.errors > 0));
    if !clean || failed || rows.is_empty() {
        eprintln!(
            "tls: FAILED (a server did not stop cleanly, or a cell had no responses{})",
            if opts.smoke { " or errors" } else { "" }
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn print_report(opts: &Opts, rows: &[Row]) {
    let mut csv = String::from(
        "server,workload,rep,responses,errors,seconds,req_per_s,server_cpu_s,server_us_per_req,generator_cpu_s,other_cores\n",
    );
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{:.3},{:.0},{:.3},{:.3},{:.3},{:.3}",
            r.server,
            r.workload,
            r.rep,
            r.good,
            r.errors,
            r.seconds,
            r.rps(),
            r.server_cpu,
            r.us_per_request(),
            r.generator_cpu,
            r.other_cpu / r.seconds
        );
    }
    let path = opts.out.join("tls.csv");
    if let Err(e) = std::fs::write(&path, &csv) {
        eprintln!("tls: cannot write {}: {e}", path.display());
    }
    println!(
        "\nTLS {} (X25519, ECDSA P-256 certificate), {} shards / nginx workers; pipeline: {} connections x {} requests per write; handshake: {} clients, a new connection per request\n",
        if opts.tls12 { "1.2" } else { "1.3" },
        opts.shards, opts.connections, opts.depth, opts.handshake_clients
    );
    println!("| workload | server | req/s | server µs CPU/req | errors | other cores |");
    println!("|---|---|---|---|---|---|");
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in rows {
        if !keys.contains(&(r.workload.as_str(), r.server.as_str())) {
            keys.push((&r.workload, &r.server));
        }
    }
    keys.sort_by_key(|(w, _)| opts.workloads.iter().position(|x| x == w));
    for (workload, server) in keys {
        let cells: Vec<&Row> = rows
            .iter()
            .filter(|r| r.workload == workload && r.server == server)
            .collect();
        let stat = |f: &dyn Fn(&Row) -> f64| {
            let values: Vec<f64> = cells.iter().map(|r| f(r)).collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            (mean, min, max)
        };
        let (rps, rps_min, rps_max) = stat(&|r| r.rps());
        let (us, us_min, us_max) = stat(&|r| r.us_per_request());
        let (other, _, other_max) = stat(&|r| r.other_cpu / r.seconds);
        let errors: u64 = cells.iter().map(|r| r.errors).sum();
        println!(
            "| {workload} | {server} | {} ({}–{}) | {us:.2} ({us_min:.2}–{us_max:.2}) | {errors} | {other:.2} (max {other_max:.2}) |",
            rate(rps),
            rate(rps_min),
            rate(rps_max),
        );
    }
    println!(
        "\nmean (min–max) over {} reps; CSV: {}",
        opts.reps,
        path.display()
    );
}

/// Requests per second: thousands above 10,000.
fn rate(per_second: f64) -> String {
    if per_second >= 10_000.0 {
        format!("{:.0}k", per_second / 1e3)
    } else {
        format!("{per_second:.0}")
    }
}
