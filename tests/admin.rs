//! The admin port over real sockets: `/metrics` parsed by a real Prometheus
//! text-format parser and by Prometheus' own `promtool check metrics`
//! (Debian's `prometheus` package, which scripts/test installs), `/health/live` and `/health/ready` through a drain and under
//! a full server, the `/status` page, and the admin port answering while
//! the only shard is stuck.

mod support;

use std::net::{SocketAddr, TcpStream};

use std::time::{Duration, Instant};

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use shardd::compression::CompressionSettings;
use shardd::files::{StaticSettings, WithStaticFiles};
use shardd::{app_fn, App, Config, ListenerMode, OverloadPolicy, Response, TechEmpower};
use support::{
    assert_promtool_accepts, config, poll_until, wait_until, Client, H2Client, HttpResponse,
    TestServer,
};

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

const WITHIN: Duration = Duration::from_secs(5);

/// [`config`] with the admin port on a free port.
fn admin_config(shards: usize) -> Config {
    let mut config = config(shards);
    config.admin = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config
}

fn admin_addr(server: &TestServer) -> SocketAddr {
    server.handle.admin_addr().expect("the admin port is on")
}

/// `GET path` on the admin port, on a fresh connection.
fn admin_get(server: &TestServer, path: &str) -> HttpResponse {
    let response = Client::connect(admin_addr(server)).get(path);
    assert_eq!(
        response.header("connection"),
        Some("close"),
        "{path}: {response:?}"
    );
    response
}

/// Scrape `/metrics` and parse it; panics with the text if it does not parse.
fn scrape(server: &TestServer) -> Exposition {
    let response = admin_get(server, "/metrics");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = response.body_str();
    parse_prometheus(text).unwrap_or_else(|e| panic!("/metrics does not parse: {e:?}\n{text}"))
}

/// The sum of the values of `family`'s samples whose labels include `labels`
/// (for a histogram: its count).
fn value(metrics: &Exposition, family: &str, labels: &[(&str, &str)]) -> f64 {
    let family = metrics
        .families
        .get(family)
        .unwrap_or_else(|| panic!("no family {family}"));
    family
        .iter_samples()
        .filter(|sample| {
            let set = sample.get_labelset().expect("labels");
            labels
                .iter()
                .all(|(name, want)| set.get_label_value(name) == Some(want))
        })
        .map(|sample| match &sample.value {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
            PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(s) => s.count.unwrap_or(0) as f64,
        })
        .sum()
}

/// The `shard` label values of `family`'s samples.
fn shard_labels(metrics: &Exposition, family: &str) -> Vec<String> {
    let mut shards: Vec<String> = metrics.families[family]
        .iter_samples()
        .filter_map(|s| {
            let set = s.get_labelset().ok()?;
            set.get_label_value("shard").map(str::to_owned)
        })
        .collect();
    shards.dedup();
    shards
}

#[test]
fn metrics_parse_and_count_requests_by_shard_and_status_class() {
    let server = TestServer::start(admin_config(2));
    let before = scrape(&server);
    for family in [
        "shardd_requests_total",
        "shardd_connections_open",
        "shardd_shard_up",
        "shardd_request_duration_seconds",
    ] {
        assert_eq!(
            shard_labels(&before, family),
            ["0", "1"],
            "{family}: one series per shard from the first scrape"
        );
    }
    assert_eq!(
        value(&before, "shardd_shard_up", &[]),
        2.0,
        "both shards up"
    );
    assert_eq!(value(&before, "shardd_requests_total", &[]), 0.0);

    // Five 200s and a 404 on one connection, a 400 from the codec on another.
    let mut client = server.connect();
    for _ in 0..5 {
        assert_eq!(client.get("/").status, 200);
    }
    assert_eq!(client.get("/nope").status, 404);
    let mut bad = server.connect();
    bad.send(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n");
    assert_eq!(bad.response().unwrap().status, 400);

    let metrics = poll_until(
        "the requests to show in /metrics",
        WITHIN,
        || scrape(&server),
        |m| value(m, "shardd_requests_total", &[]) >= 7.0,
    );
    assert_eq!(
        value(&metrics, "shardd_requests_total", &[("code", "2xx")]),
        5.0
    );
    assert_eq!(
        value(&metrics, "shardd_requests_total", &[("code", "4xx")]),
        2.0
    );
    assert_eq!(
        value(&metrics, "shardd_requests_total", &[("code", "5xx")]),
        0.0
    );
    assert!(value(&metrics, "shardd_request_duration_seconds", &[]) >= 6.0);
    assert_eq!(value(&metrics, "shardd_bad_requests_total", &[]), 1.0);
    assert_eq!(
        value(&metrics, "shardd_connections_accepted_total", &[]),
        2.0
    );
    assert_eq!(value(&metrics, "shardd_acceptor_accepted_total", &[]), 2.0);
    assert_eq!(
        value(
            &metrics,
            "shardd_acceptor_skipped_total",
            &[("reason", "dead")]
        ),
        0.0
    );
    assert_eq!(value(&metrics, "shardd_handler_panics_total", &[]), 0.0);
    assert_eq!(value(&metrics, "shardd_shard_restarts_total", &[]), 0.0);
    assert_eq!(value(&metrics, "shardd_timeouts_total", &[]), 0.0);
    assert_eq!(value(&metrics, "shardd_ready", &[]), 1.0);
    assert_eq!(value(&metrics, "shardd_draining", &[]), 0.0);
    assert_eq!(
        value(
            &metrics,
            "shardd_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(value(&metrics, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&metrics, "process_open_fds", &[]) >= 3.0);
    assert!(value(&metrics, "process_max_fds", &[]) >= 3.0);
    assert!(value(&metrics, "process_cpu_seconds_total", &[]) >= 0.0);
    assert!(value(&metrics, "process_start_time_seconds", &[]) > 1.5e9);

    // The histogram: cumulative buckets ending in +Inf, sum in seconds.
    let family = &metrics.families["shardd_request_duration_seconds"];
    for sample in family.iter_samples() {
        let PrometheusValue::Histogram(h) = &sample.value else {
            panic!("not a histogram: {sample:?}");
        };
        let counts: Vec<f64> = h.buckets.iter().map(|b| b.count.as_f64()).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{h:?}");
        let last = h.buckets.last().unwrap();
        assert!(last.upper_bound.is_infinite(), "{h:?}");
        assert_eq!(last.count.as_f64(), h.count.unwrap() as f64, "{h:?}");
        let sum = h.sum.as_ref().unwrap().as_f64();
        assert!(
            (0.0..1.0).contains(&sum),
            "a handful of tiny requests take well under a second: {sum}"
        );
    }

    // Every family has its help; counters are named *_total.
    let text = admin_get(&server, "/metrics").body_str().to_owned();
    for (name, family) in &metrics.families {
        assert!(!family.help.is_empty(), "{name} has no HELP");
        if family.family_type == PrometheusType::Counter {
            assert!(
                text.contains(&format!("# TYPE {name}_total counter")) || name.ends_with("_total"),
                "counter {name} is not named *_total"
            );
        }
    }
}

/// HTTP/2 on the reuseport listener, as `/metrics` counts it: three
/// connections, one stream the client reset while its handler ran, and a
/// graceful GOAWAY for each connection when it went idle.
#[test]
fn http2_on_reuseport_is_counted_in_the_metrics_as_the_clients_saw_it() {
    let mut config = admin_config(2);
    config.listener = ListenerMode::Reuseport;
    config.limits.idle_timeout = Duration::from_millis(600);
    let server = TestServer::start(config);
    let mut clients: Vec<H2Client> = (0..3).map(|_| H2Client::connect(server.addr)).collect();
    for client in &mut clients {
        let answer = client.get("/");
        assert_eq!((answer.status, answer.body_str()), (200, "ok"));
    }
    server.controls.hold();
    clients[0].reset_after("/hold", Duration::from_millis(100));
    server.controls.release();

    let metrics = scrape(&server);
    assert_eq!(value(&metrics, "shardd_http2_connections_total", &[]), 3.0);
    assert_eq!(
        value(&metrics, "shardd_http2_stream_resets_total", &[]),
        1.0
    );
    assert_eq!(value(&metrics, "shardd_http2_goaways_total", &[]), 0.0);
    assert_eq!(
        shard_labels(&metrics, "shardd_http2_goaways_total"),
        ["0", "1"]
    );

    // Idle past the timeout, every connection is told to go away.
    let goaways = |reason: &str| {
        value(
            &scrape(&server),
            "shardd_http2_goaways_total",
            &[("reason", reason)],
        )
    };
    wait_until("a GOAWAY for each idle connection", WITHIN, || {
        goaways("no_error") == 3.0
    });
    for reason in ["enhance_your_calm", "protocol_error", "other"] {
        assert_eq!(goaways(reason), 0.0, "{reason}");
    }
    // Counted with the requests: three answered, the reset one not.
    assert_eq!(value(&scrape(&server), "shardd_requests_total", &[]), 3.0);
}

#[test]
fn promtool_finds_no_problem_in_the_metrics() {
    let server = TestServer::start(admin_config(2));
    let mut client = server.connect();
    assert_eq!(client.get("/").status, 200);
    assert_promtool_accepts(admin_get(&server, "/metrics").body_str());
}

#[test]
fn ready_turns_503_the_moment_a_drain_starts_while_live_stays_200() {
    let mut config = admin_config(1);
    config.drain_timeout_ms = 5_000;
    let server = TestServer::start(config);
    assert_eq!(admin_get(&server, "/health/live").status, 200);
    let ready = admin_get(&server, "/health/ready");
    assert_eq!((ready.status, ready.body_str()), (200, "ready\n"));

    // A request in flight holds the drain open.
    server.controls.hold();
    let mut slow = server.connect();
    slow.send(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("the handler to run", WITHIN, || {
        server.controls.seen().iter().any(|t| t == "/hold")
    });
    server.handle.drain();

    let ready = admin_get(&server, "/health/ready");
    assert_eq!(
        (ready.status, ready.body_str()),
        (503, "draining\n"),
        "{ready:?}"
    );
    assert_eq!(admin_get(&server, "/health/live").status, 200);
    let metrics = scrape(&server);
    assert_eq!(value(&metrics, "shardd_draining", &[]), 1.0);
    assert_eq!(value(&metrics, "shardd_ready", &[]), 0.0);

    // The request in flight is still answered; then the server, and its admin port, stop.
    server.controls.release();
    let response = slow.response().expect("the request in flight is answered");
    assert_eq!(response.status, 200);
    assert!(response.closes(), "{response:?}");
    let admin = admin_addr(&server);
    wait_until("the admin port to close after the drain", WITHIN, || {
        TcpStream::connect(admin).is_err()
    });
}

#[test]
fn ready_is_503_while_every_shard_and_the_pending_queue_are_full() {
    let mut config = admin_config(1);
    config.admission.max_connections_per_shard = 1;
    config.admission.max_pending = 1;
    config.admission.overload = OverloadPolicy::Reject;
    let server = TestServer::start(config);

    let first = server.connect();
    server.wait_stats("the first connection open", WITHIN, |s| {
        s.open_connections() == 1
    });
    let ready = admin_get(&server, "/health/ready");
    assert_eq!(
        (ready.status, ready.body_str()),
        (200, "ready\n"),
        "the shard is full but the pending queue has room"
    );

    let mut second = server.connect();
    server.wait_stats("the second connection pending", WITHIN, |s| {
        s.acceptor.pending == 1
    });
    let ready = admin_get(&server, "/health/ready");
    assert_eq!(
        (ready.status, ready.body_str()),
        (503, "full\n"),
        "{ready:?}"
    );
    assert_eq!(admin_get(&server, "/health/live").status, 200);
    let metrics = scrape(&server);
    assert_eq!(value(&metrics, "shardd_ready", &[]), 0.0);
    assert_eq!(value(&metrics, "shardd_acceptor_pending", &[]), 1.0);
    assert_eq!(value(&metrics, "shardd_acceptor_pending_limit", &[]), 1.0);
    assert_eq!(value(&metrics, "shardd_shard_connections_limit", &[]), 1.0);

    // The first leaves, the pending one is served, and the queue has room again.
    drop(first);
    assert_eq!(second.get("/").status, 200);
    server.wait_stats("the pending queue empty", WITHIN, |s| {
        s.acceptor.pending == 0
    });
    assert_eq!(admin_get(&server, "/health/ready").status, 200);
}

#[test]
fn the_admin_port_answers_while_the_only_shard_is_stuck() {
    let mut config = admin_config(1);
    config.drain_timeout_ms = 3_000;
    let server = TestServer::start_with(config, |_| {
        app_fn(|req| {
            if req.path() == "/block" {
                // Blocks the shard's thread: nothing else on it runs meanwhile.
                std::thread::sleep(Duration::from_millis(1_500));
            }
            Response::text("ok")
        })
    });
    let mut stuck = server.connect();
    stuck.send(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n");
    server.wait_stats("the blocking request to start", WITHIN, |s| {
        s.open_connections() == 1
    });
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    assert_eq!(admin_get(&server, "/health/live").status, 200);
    let metrics = scrape(&server);
    assert_eq!(value(&metrics, "shardd_shard_up", &[]), 1.0);
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "the admin port waited for the shard: {:?}",
        started.elapsed()
    );
    assert_eq!(stuck.response().unwrap().status, 200);
}

#[test]
fn the_status_page_is_one_self_contained_html_page_over_status_json() {
    let server = TestServer::start(admin_config(2));
    let page = admin_get(&server, "/status");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.body_str().to_ascii_lowercase();
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains("status.json"));
    for external in [
        "src=\"http",
        "href=\"http",
        "src=",
        "<link",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(external), "the page loads {external:?}");
    }

    let json = admin_get(&server, "/status.json");
    assert_eq!(json.status, 200);
    assert_eq!(json.header("content-type"), Some("application/json"));
    let status: serde_json::Value = serde_json::from_str(json.body_str()).expect("JSON");
    assert_eq!(status["readiness"], "ready");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["acceptor"]["present"], true);
    let shards = status["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    assert!(shards.iter().all(|s| s["up"] == true), "{status}");
    assert!(status["process"]["resident_bytes"].as_u64().unwrap() > 0);
    assert!(status["uptime_seconds"].as_f64().unwrap() >= 0.0);

    // Rates come from the server, over up to a second, once a reading is old enough.
    let mut client = server.connect();
    assert_eq!(client.get("/").status, 200);
    let status = poll_until(
        "status.json to have rates",
        WITHIN,
        || {
            let body = admin_get(&server, "/status.json").body_str().to_owned();
            serde_json::from_str::<serde_json::Value>(&body).unwrap()
        },
        |status| !status["rates"].is_null(),
    );
    let rates = &status["rates"];
    assert_eq!(rates["requests"].as_array().unwrap().len(), 2, "{status}");
    assert!(rates["requests"][0].as_f64().unwrap() >= 0.0, "{status}");
    // p99 latency per shard over the same span: the shard that answered has one.
    let p99 = rates["p99_seconds"].as_array().unwrap();
    assert_eq!(p99.len(), 2, "{status}");
    assert!(
        p99.iter().any(|p| p.as_f64().is_some_and(|s| s > 0.0)),
        "{status}"
    );
    assert!(rates["over_seconds"].as_f64().unwrap() >= 0.25, "{status}");
    assert!(rates["cpu_cores"].as_f64().unwrap() >= 0.0, "{status}");
}

#[test]
fn the_admin_port_answers_get_and_head_on_its_paths_only() {
    let server = TestServer::start(admin_config(1));
    let addr = admin_addr(&server);

    let missing = admin_get(&server, "/nope");
    assert_eq!(missing.status, 404);
    let root = admin_get(&server, "/");
    assert_eq!(
        (root.status, root.header("location")),
        (302, Some("/status"))
    );
    let with_query = admin_get(&server, "/health/live?probe=1");
    assert_eq!(with_query.status, 200);

    let mut post = Client::connect(addr);
    post.send("POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
    let refused = post.response().unwrap();
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("allow"), Some("GET, HEAD"));

    let mut head = Client::connect(addr);
    head.send("HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = head.response_to_head().unwrap();
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
    let length: usize = response.header("content-length").unwrap().parse().unwrap();
    assert!(length > 1000, "HEAD says how long GET's body is: {length}");

    let mut garbage = Client::connect(addr);
    garbage.send("\x01\x02\x03 nonsense\r\n\r\n");
    assert_eq!(garbage.response().unwrap().status, 400);
}

#[test]
fn no_admin_port_unless_configured() {
    let server = TestServer::start(config(1));
    assert_eq!(server.handle.admin_addr(), None);
}

#[test]
fn a_busy_admin_address_fails_serve_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = config(1);
    config.admin = Some(taken.local_addr().unwrap());
    let error = match shardd::Server::bind(config)
        .unwrap()
        .serve(|_| shardd::TechEmpower)
    {
        Ok(_) => panic!("serve with a busy admin address succeeded"),
        Err(error) => error.to_string(),
    };
    let addr = taken.local_addr().unwrap().to_string();
    assert!(error.contains("admin") && error.contains(&addr), "{error}");
}

#[test]
fn static_files_and_compression_are_counted_in_the_metrics() {
    let dir = std::env::temp_dir().join(format!("shardd-admin-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    let page = "<p>a paragraph that compresses well</p>\n".repeat(100);
    std::fs::write(dir.join("page.html"), &page).unwrap();
    let mut settings = StaticSettings::new("/static", &dir);
    settings.precompressed = false; // no sibling lookups: exact cache counts
    let mounts = vec![settings];
    let server = TestServer::start_with(admin_config(1), move |_| {
        WithStaticFiles::open(&mounts, TechEmpower)
            .expect("the test's directory opens")
            .compressed(CompressionSettings::on())
    });
    let mut client = server.connect();
    let gzip = "Accept-Encoding: gzip\r\n";
    let mut get = |path: &str, fields: &str| {
        client.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{fields}\r\n"));
        client.response().expect("a response")
    };
    let first = get("/static/page.html", gzip);
    assert_eq!(first.header("content-encoding"), Some("gzip"));
    let second = get("/static/page.html", gzip);
    assert_eq!(second.body, first.body);
    let identity = get("/static/page.html", "");
    let etag = identity.header("etag").expect("an ETag").to_owned();
    assert_eq!(
        get("/static/page.html", &format!("If-None-Match: {etag}\r\n")).status,
        304
    );
    // A 304 for the gzip copy's weak tag counts as not_modified too.
    let gzip_etag = first.header("etag").expect("an ETag").to_owned();
    assert!(
        gzip_etag.starts_with("W/") && gzip_etag.ends_with("-gzip\""),
        "{gzip_etag}"
    );
    let revalidated = get(
        "/static/page.html",
        &format!("{gzip}If-None-Match: {gzip_etag}\r\n"),
    );
    assert_eq!(revalidated.status, 304);
    assert_eq!(revalidated.header("etag"), Some(gzip_etag.as_str()));
    assert_eq!(get("/static/missing.txt", "").status, 404); // the app's 404
    assert_eq!(get("/static/docs", "").status, 301);

    let metrics = scrape(&server);
    let outcome = |outcome| {
        value(
            &metrics,
            "shardd_static_responses_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(outcome("served"), 3.0);
    assert_eq!(outcome("not_modified"), 2.0);
    assert_eq!(outcome("not_found"), 1.0);
    assert_eq!(outcome("forbidden"), 0.0);
    assert_eq!(outcome("other"), 1.0);
    // page.html, missing.txt, docs opened once each; page.html then
    // came from the cache four times.
    let cache = |family| value(&metrics, family, &[]);
    assert_eq!(cache("shardd_static_open_file_cache_misses_total"), 3.0);
    assert_eq!(cache("shardd_static_open_file_cache_hits_total"), 4.0);
    let encoded = |encoding| {
        value(
            &metrics,
            "shardd_compressed_responses_total",
            &[("encoding", encoding)],
        )
    };
    assert_eq!(encoded("gzip"), 2.0);
    assert_eq!(encoded("br"), 0.0);
    assert_eq!(
        value(&metrics, "shardd_compression_input_bytes_total", &[]),
        2.0 * page.len() as f64
    );
    assert_eq!(
        value(&metrics, "shardd_compression_output_bytes_total", &[]),
        2.0 * first.body.len() as f64
    );
    assert_promtool_accepts(admin_get(&server, "/metrics").body_str());
    let _ = std::fs::remove_dir_all(&dir);
}
