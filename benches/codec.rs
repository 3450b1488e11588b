//! Micro-benchmarks of the sans-IO HTTP/1.1 codec on the TechEmpower
//! plaintext path, in nanoseconds (criterion):
//!
//! - `decode_head/techempower`: parse the request wrk sends in TFB's plaintext
//!   test (`decode_head`, header spans into a reused `Vec`).
//! - `encode_response/plaintext`: encode the plaintext response (`Date`,
//!   `Server`, `Content-Length`, body) into a reused output buffer.
//! - `turn/plaintext`: one request → response turn as the connection loop
//!   does it, through the production `RequestReader`: the read lands in the
//!   reader's buffer (a copy standing in for the socket read), the reader
//!   decodes, then build the `Request`, `TechEmpower::respond`, encode.
//! - `turn/plaintext_x16`: 16 pipelined requests arriving in one read (one
//!   TFB pipelined batch); the reported time is for all 16.
//! - `turn/json`: the json test's turn (serializes a body per request).
//!
//! `cargo bench --bench codec` (criterion options after `--`, e.g.
//! `-- turn` to filter). A summary table of the medians is printed at the end.

mod support;

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, Throughput};
use shardd_shards::apps::techempower::TechEmpower;
use shardd_shards::http::{
    decode_head, encode_response, Awaiting, DateCache, Decoded, EncodeOptions, ReadBuffers,
    RequestReader, Version,
};
use shardd_shards::{Limits, PeerAddr, Request, Response};

/// The request TechEmpower's wrk sends in the plaintext test.
const TFB_REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\n\
Host: tfb-server:8080\r\n\
Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n\
Connection: keep-alive\r\n\r\n";

const JSON_REQUEST: &[u8] = b"GET /json HTTP/1.1\r\n\
Host: tfb-server:8080\r\n\
Accept: application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n\
Connection: keep-alive\r\n\r\n";

/// Everything the connection loop keeps across requests.
struct Turn {
    limits: Limits,
    reader: RequestReader,
    input: ReadBuffers,
    out: Vec<u8>,
    date: [u8; 29],
    peer: PeerAddr,
    app: TechEmpower,
}

impl Turn {
    fn new() -> Self {
        Turn {
            limits: Limits::default(),
            reader: RequestReader::default(),
            // The capacities the shard's buffer pool hands a connection.
            input: ReadBuffers {
                bytes: Vec::with_capacity(8 * 1024),
                spans: Vec::with_capacity(16),
                body: Vec::new(),
                ..ReadBuffers::default()
            },
            out: Vec::with_capacity(8 * 1024),
            date: DateCache::new().get(),
            peer: PeerAddr::Unknown,
            app: TechEmpower,
        }
    }

    /// One turn of the connection loop: `received` is what one read
    /// returned; answer every request the reader can decode into
    /// `self.out`, until it waits for the next one. Returns the number answered.
    fn run(&mut self, received: &[u8]) -> usize {
        self.reader.feed(&mut self.input, received);
        let mut answered = 0;
        loop {
            let parts = match self.reader.decode(&mut self.input, &self.limits) {
                Decoded::Request(parts) => parts,
                Decoded::Incomplete(Awaiting::Request) => break,
                other => panic!("benchmark request did not decode: {other:?}"),
            };
            let (keep_alive, version) = (parts.keep_alive, parts.version);
            let request = Request::from_parts(parts, &self.peer);
            let response = self.app.respond(&request);
            let options = EncodeOptions {
                date: &self.date,
                head_only: request.is_head(),
                close: !keep_alive,
                keep_alive_1_0: version == Version::Http10 && keep_alive,
                http11: version == Version::Http11,
            };
            encode_response(&response, &options, &mut self.out);
            answered += 1;
        }
        answered
    }
}

fn codec(c: &mut Criterion) {
    let limits = Limits::default();

    let mut group = c.benchmark_group("decode_head");
    group.throughput(Throughput::Elements(1));
    let mut spans = Vec::with_capacity(16);
    group.bench_function("techempower", |b| {
        b.iter(|| {
            let head = decode_head(black_box(TFB_REQUEST), &limits, &mut spans);
            black_box(head.expect("decodes").expect("complete"))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("encode_response");
    group.throughput(Throughput::Elements(1));
    let date = DateCache::new().get();
    let options = EncodeOptions {
        date: &date,
        head_only: false,
        close: false,
        keep_alive_1_0: false,
        http11: true,
    };
    let mut out = Vec::with_capacity(8 * 1024);
    group.bench_function("plaintext", |b| {
        b.iter(|| {
            out.clear();
            // Built per request, as TechEmpower's rules require.
            let response = Response::text(black_box("Hello, World!"));
            encode_response(&response, &options, &mut out);
            black_box(out.len())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("turn");
    let mut turn = Turn::new();
    // Sanity: the turn produces the real response.
    assert_eq!(turn.run(TFB_REQUEST), 1);
    let text = String::from_utf8_lossy(&turn.out).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\nHello, World!"),
        "unexpected response: {text:?}"
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function("plaintext", |b| {
        b.iter(|| {
            turn.out.clear();
            black_box(turn.run(black_box(TFB_REQUEST)))
        })
    });
    let batch = TFB_REQUEST.repeat(16);
    assert_eq!(turn.run(&batch), 16);
    group.throughput(Throughput::Elements(16));
    group.bench_function("plaintext_x16", |b| {
        b.iter(|| {
            turn.out.clear();
            black_box(turn.run(black_box(&batch)))
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("json", |b| {
        b.iter(|| {
            turn.out.clear();
            black_box(turn.run(black_box(JSON_REQUEST)))
        })
    });
    group.finish();
}

/// The `point_estimate` of `key` ("mean", "median", …) in criterion's estimates.json.
fn estimate(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\":"))?;
    let rest = &json[at..];
    let at = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let rest = &rest[at..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

/// Print one line per benchmark from the estimates criterion wrote in this
/// run (older files, from benchmarks filtered out this time, are skipped).
fn summary(dir: &std::path::Path, since: SystemTime) {
    let benches: [(&str, &str, u32); 5] = [
        ("decode_head", "techempower", 1),
        ("encode_response", "plaintext", 1),
        ("turn", "plaintext", 1),
        ("turn", "plaintext_x16", 16),
        ("turn", "json", 1),
    ];
    let mut lines = Vec::new();
    for (group, name, per) in benches {
        let path = dir.join(group).join(name).join("new/estimates.json");
        let fresh = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= since);
        let Ok(json) = std::fs::read_to_string(&path) else {
            continue;
        };
        if !fresh {
            continue;
        }
        let (Some(median), Some(mean)) = (estimate(&json, "median"), estimate(&json, "mean"))
        else {
            continue;
        };
        lines.push(format!(
            "{:<32} {:>12.1} {:>12.1} {:>14.1}",
            format!("{group}/{name}"),
            median,
            mean,
            median / f64::from(per)
        ));
    }
    if lines.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<32} {:>12} {:>12} {:>14}",
        "benchmark", "median ns", "mean ns", "ns / request"
    );
    for line in lines {
        println!("{line}");
    }
}

fn main() {
    let dir = support::target_dir().join("criterion");
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .output_directory(&dir)
        .configure_from_args();
    // Only a real run (`cargo bench`) writes fresh estimates; `cargo test
    // --benches` runs each routine once.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let started = SystemTime::now();
    codec(&mut criterion);
    criterion.final_summary();
    if benchmarking {
        summary(&dir, started);
    }
}
