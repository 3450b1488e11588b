//! The TechEmpower database tests served by the `shardd` binary on a
//! Postgres pool per shard, against a real Postgres each test starts:
//! the rules of each test, a database stopped and started under load, a
//! slow database filling the bounded queue, a drain with queries in
//! flight, and the password kept out of every log line.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::postgres::{TempPostgres, PASSWORD};
use support::process::{become_subreaper, reap, send_signal, Adopted, Process, BIN};
use support::{assert_promtool_accepts, wait_until, Client, H2Client, HttpResponse, TempConfig};

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `shardd --database-url` (through its environment variable) with an admin port.
struct Shardd {
    process: Process,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl Shardd {
    fn start(postgres: &TempPostgres, shards: &str, config: Option<&TempConfig>) -> Shardd {
        Shardd::start_with(postgres, shards, config, &[])
    }

    fn start_with(
        postgres: &TempPostgres,
        shards: &str,
        config: Option<&TempConfig>,
        extra: &[&str],
    ) -> Shardd {
        let (addr, admin) = (free_addr(), free_addr());
        let mut command = Command::new(BIN);
        command
            .args(["--bind", &addr.to_string(), "--shards", shards])
            .args(["--admin", &admin.to_string()])
            .args(["--drain-timeout-ms", "10000"])
            .env("SHARDD_DATABASE_URL", postgres.url())
            .env("RUST_LOG", "debug");
        if let Some(config) = config {
            command.args(["--config", config.path()]);
        }
        command.args(extra);
        let mut process = Process::spawn(command);
        process.wait_for_line("serving on", Duration::from_secs(10));
        let shardd = Shardd {
            process,
            addr,
            admin,
        };
        shardd.wait_ready(Duration::from_secs(10));
        shardd
    }

    fn get(&self, path: &str) -> HttpResponse {
        Client::connect(self.addr).get(path)
    }

    fn ready(&self) -> (u16, String) {
        let response = Client::connect(self.admin).get("/health/ready");
        (response.status, response.body_str().to_owned())
    }

    fn wait_ready(&self, within: Duration) {
        wait_until("/health/ready answers 200", within, || {
            self.ready().0 == 200
        });
    }

    fn metric(&self, sample: &str) -> u64 {
        let text = Client::connect(self.admin)
            .get("/metrics")
            .body_str()
            .to_owned();
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"))
    }
}

fn json(response: &HttpResponse) -> serde_json::Value {
    assert_eq!(response.status, 200, "{}", response.body_str());
    assert_eq!(response.header("content-type"), Some("application/json"));
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("{e}: {}", response.body_str()))
}

/// `(id, randomNumber)` of a world object, checked to be in range.
fn world(value: &serde_json::Value) -> (i64, i64) {
    let id = value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id: {value}"));
    let number = value["randomNumber"]
        .as_i64()
        .unwrap_or_else(|| panic!("no randomNumber: {value}"));
    assert!((1..=10_000).contains(&id), "{value}");
    assert!((1..=10_000).contains(&number), "{value}");
    assert_eq!(value.as_object().unwrap().len(), 2, "{value}");
    (id, number)
}

#[test]
fn every_database_test_answers_by_the_rules() {
    let postgres = TempPostgres::start();
    let mut shardd = Shardd::start(&postgres, "2", None);

    world(&json(&shardd.get("/db")));

    for (query, count) in [
        ("q=20", 20),
        ("q=0", 1),
        ("q=foo", 1),
        ("", 1),
        ("q=501", 500),
    ] {
        let worlds = json(&shardd.get(&format!("/queries?{query}")));
        let worlds = worlds.as_array().expect("an array");
        assert_eq!(worlds.len(), count, "/queries?{query}");
        worlds.iter().for_each(|w| {
            world(w);
        });
    }

    let page = shardd.get("/fortunes");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.body_str();
    assert!(html.starts_with("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>"), "{html}");
    assert!(html.ends_with("</table></body></html>"), "{html}");
    assert_eq!(
        html.matches("<tr><td>").count(),
        13,
        "12 rows and the added one: {html}"
    );
    assert!(html.contains("<td>0</td><td>Additional fortune added at request time.</td>"));
    assert!(!html.contains("<script>"), "messages are escaped: {html}");
    assert!(
        html.contains("フレームワークのベンチマーク"),
        "UTF-8 intact: {html}"
    );
    let messages: Vec<&str> = html
        .split("<tr><td>")
        .skip(1)
        .map(|row| row.split("</td><td>").nth(1).unwrap())
        .collect();
    let mut sorted = messages.clone();
    sorted.sort_unstable();
    assert_eq!(messages, sorted, "sorted by message");

    // /updates: the answer's numbers are what the table now holds.
    let updated = json(&shardd.get("/updates?q=20"));
    let updated = updated.as_array().unwrap();
    assert_eq!(updated.len(), 20);
    for (id, number) in updated.iter().map(world) {
        let stored = postgres.sql(&format!("SELECT randomnumber FROM world WHERE id = {id}"));
        assert_eq!(stored, number.to_string(), "world {id} after /updates");
    }

    // /cached-queries: the table's numbers (as they are after the update above).
    let cached = json(&shardd.get("/cached-queries?q=10"));
    let cached = cached.as_array().unwrap();
    assert_eq!(cached.len(), 10);
    // The shard loaded its cache on this first request, after the update.
    for (id, number) in cached.iter().map(world) {
        let stored = postgres.sql(&format!("SELECT randomnumber FROM world WHERE id = {id}"));
        assert_eq!(stored, number.to_string(), "cached world {id}");
    }

    // The same tests over HTTP/2, and plaintext beside them.
    let mut h2 = H2Client::connect(shardd.addr);
    let answer = h2.get("/queries?q=5");
    assert_eq!(answer.status, 200);
    let worlds: serde_json::Value = serde_json::from_str(answer.body_str()).unwrap();
    assert_eq!(worlds.as_array().unwrap().len(), 5);
    assert_eq!(shardd.get("/plaintext").body_str(), "Hello, World!");

    let mut client = Client::connect(shardd.addr);
    client.send("POST /db HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(client.response().unwrap().status, 405);

    assert_eq!(shardd.ready(), (200, "ready\n".to_owned()));
    assert_promtool_accepts(Client::connect(shardd.admin).get("/metrics").body_str());
    assert!(shardd.metric("shardd_database_connections{shard=\"1\"}") >= 1);
    assert!(shardd.metric("shardd_database_requests_total{outcome=\"answered\"}") >= 10);

    let lines = shardd
        .process
        .lines_so_far(Duration::from_millis(200))
        .join("\n");
    assert!(
        lines.contains("database: postgres://benchmarkdbuser@127.0.0.1:"),
        "{lines}"
    );
    assert!(
        !lines.contains(PASSWORD),
        "the password is in the log:\n{lines}"
    );

    // --check connects and prepares the app's statements: the right
    // password passes; a database without the tables and a wrong password
    // fail with Postgres' reason; no password is shown.
    let check = |url: &str| {
        Command::new(BIN)
            .args(["--check", "--bind", "127.0.0.1:0"])
            .env("SHARDD_DATABASE_URL", url)
            .output()
            .unwrap()
    };
    let output = check(&postgres.url());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("/hello_world (connected)"), "{stdout}");
    assert!(!stdout.contains(PASSWORD), "{stdout}");
    let output = check(&postgres.url().replace("/hello_world", "/postgres"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("\"world\" does not exist"), "{stderr}");
    let output = check(&postgres.url().replace(PASSWORD, "not-the-password"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
}

/// Requests from `clients` threads, each on its own keep-alive connection,
/// until `stop`; every answer is tallied by status. A request with no
/// answer fails the test.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    unavailable: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let unavailable = Arc::new(AtomicUsize::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok, unavailable) = (stop.clone(), ok.clone(), unavailable.clone());
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    while !stop.load(Ordering::Relaxed) {
                        let response = client.get("/db");
                        match response.status {
                            200 => ok.fetch_add(1, Ordering::Relaxed),
                            503 => {
                                assert_eq!(response.header("retry-after"), Some("1"));
                                unavailable.fetch_add(1, Ordering::Relaxed)
                            }
                            other => panic!("/db answered {other}: {}", response.body_str()),
                        };
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            unavailable,
            threads,
        }
    }

    fn counts(&self) -> (usize, usize) {
        (
            self.ok.load(Ordering::Relaxed),
            self.unavailable.load(Ordering::Relaxed),
        )
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("a client saw a request go unanswered");
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.unavailable.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn postgres_stopped_under_load_gives_503s_and_back_gives_200s_without_a_restart() {
    let postgres = TempPostgres::start();
    let shardd = Shardd::start(&postgres, "2", None);
    let load = Load::start(shardd.addr, 4);
    wait_until("200s under load", Duration::from_secs(10), || {
        load.counts().0 > 20
    });

    postgres.stop();
    let before = load.counts().1;
    wait_until(
        "503s while Postgres is down",
        Duration::from_secs(10),
        || load.counts().1 > before + 20,
    );
    let (status, body) = shardd.ready();
    assert_eq!((status, body.as_str()), (503, "unavailable: database\n"));
    // The /status page's reading says so too.
    let status: serde_json::Value =
        serde_json::from_str(Client::connect(shardd.admin).get("/status.json").body_str()).unwrap();
    assert_eq!(status["readiness"], "unavailable", "{status}");
    assert_eq!(
        status["unavailable"],
        serde_json::json!(["database"]),
        "{status}"
    );

    postgres.start_again();
    let ok_before = load.counts().0;
    wait_until(
        "200s again once Postgres is back (reconnect backoff is at most 5 s)",
        Duration::from_secs(15),
        || load.counts().0 > ok_before + 20,
    );
    shardd.wait_ready(Duration::from_secs(10));
    let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load.finish()));
    let Ok((ok, unavailable)) = finished else {
        let mut shardd = shardd;
        let lines = shardd
            .process
            .lines_so_far(Duration::from_millis(200))
            .join("\n");
        panic!("a request went unanswered; shardd logged:\n{lines}");
    };
    assert!(ok > 40 && unavailable > 20, "ok {ok}, 503 {unavailable}");
    assert!(shardd.metric("shardd_database_requests_total{outcome=\"unavailable\"}") > 0);
    assert!(shardd.metric("shardd_database_connect_failures_total") > 0);
}

#[test]
fn a_slow_database_fills_the_bounded_queue_then_503s_and_recovers() {
    let postgres = TempPostgres::start();
    let config = TempConfig::new(
        "slow-database",
        "[database]\nmax_waiting_per_shard = 4\nquery_timeout_ms = 2000\n",
    );
    let shardd = Shardd::start(&postgres, "1", Some(&config));
    assert_eq!(shardd.get("/db").status, 200);

    let lock = postgres.lock_world();
    // 12 requests at once on their own connections: 4 wait on the
    // database, 8 are turned away at once.
    let started = Instant::now();
    let addr = shardd.addr;
    let answers: Vec<(u16, String, Duration)> = std::thread::scope(|scope| {
        let requests: Vec<_> = (0..12)
            .map(|_| {
                scope.spawn(move || {
                    let response = Client::connect(addr).get("/db");
                    (
                        response.status,
                        response.body_str().to_owned(),
                        started.elapsed(),
                    )
                })
            })
            .collect();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(|(status, _, _)| *status == 503),
        "{answers:?}"
    );
    let (busy, waited): (Vec<_>, Vec<_>) = answers
        .iter()
        .partition(|(_, body, _)| body == "database busy\n");
    assert_eq!(busy.len(), 8, "{answers:?}");
    assert!(
        busy.iter()
            .all(|(_, _, at)| *at < Duration::from_millis(1500)),
        "turned away at once, not after the query timeout: {answers:?}"
    );
    // The first to time out on a connection closes it, and the one
    // pipelined behind it on the same connection ends with it.
    assert!(
        waited
            .iter()
            .all(|(_, body, at)| *at >= Duration::from_millis(1900)
                && (body == "database timed out\n" || body == "database unavailable\n")),
        "{answers:?}"
    );
    assert_eq!(
        shardd.metric("shardd_database_requests_total{outcome=\"busy\"}"),
        8
    );
    assert!(shardd.metric("shardd_database_requests_total{outcome=\"timed_out\"}") >= 1);

    drop(lock);
    wait_until("200 once the lock is gone", Duration::from_secs(10), || {
        shardd.get("/db").status == 200
    });
    // The timed-out queries were cancelled, not left running in Postgres.
    wait_until(
        "no query of world left waiting",
        Duration::from_secs(5),
        || {
            postgres.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                == "0"
        },
    );
}

#[test]
fn a_drain_answers_the_requests_waiting_on_the_database() {
    let postgres = TempPostgres::start();
    let mut shardd = Shardd::start(&postgres, "2", None);
    let lock = postgres.lock_world();
    let addr = shardd.addr;
    let waiting: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || Client::connect(addr).get("/queries?q=3")))
        .collect();
    wait_until(
        "4 queries waiting on the lock",
        Duration::from_secs(5),
        || {
            postgres.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                != "0"
        },
    );
    shardd.process.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    drop(lock);
    for request in waiting {
        let response = request.join().expect("an answer, not a dropped connection");
        assert_eq!(response.status, 200, "{}", response.body_str());
        assert_eq!(json(&response).as_array().unwrap().len(), 3);
    }
    let status = shardd
        .process
        .wait(Duration::from_secs(10))
        .expect("exits after the drain");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_bad_database_url_is_refused_without_showing_the_password() {
    let output = Command::new(BIN)
        .args([
            "--check",
            "--database-url",
            "postgres://bench:hunter2@db:notaport/x",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("database.url"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let output = Command::new(BIN)
        .args([
            "--check",
            "--app",
            "router",
            "--database-url",
            "postgres://a@b/c",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--app techempower"), "{stderr}");
}

/// Keep-alive clients asking for `/db` until stopped, reconnecting when
/// the server says close; every answer but a 200 is a failure, kept with why.
/// Half of them open a new connection for every request (which the new
/// process of an upgrade may accept while its pools connect).
fn database_clients(
    addr: SocketAddr,
    clients: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<(usize, Vec<String>)>> {
    (0..clients)
        .map(|n| {
            let stop = stop.clone();
            let request = if n % 2 == 0 {
                "GET /db HTTP/1.1\r\nHost: t\r\n\r\n"
            } else {
                "GET /db HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            };
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0, Vec::new());
                let mut client: Option<Client> = None;
                while !stop.load(Ordering::Relaxed) {
                    let connection = client.get_or_insert_with(|| Client::connect(addr));
                    connection.send(request);
                    match connection.response() {
                        Ok(response) if response.status == 200 => {
                            ok += 1;
                            if response.closes() {
                                client = None;
                            }
                        }
                        Ok(response) => {
                            failed.push(format!("{} {}", response.status, response.body_str()));
                            client = None;
                        }
                        Err(error) => {
                            failed.push(error.to_string());
                            client = None;
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect()
}

/// Stop `clients` and add up what they saw: answers that were 200, and why the others were not.
fn stop_clients(
    stop: &AtomicBool,
    clients: Vec<std::thread::JoinHandle<(usize, Vec<String>)>>,
) -> (usize, Vec<String>) {
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed) = (0, Vec::new());
    for client in clients {
        let (o, f) = client.join().unwrap();
        ok += o;
        failed.extend(f);
    }
    (ok, failed)
}

#[test]
fn an_upgrade_under_load_answers_every_database_request() {
    become_subreaper();
    let postgres = TempPostgres::start();
    let mut old = Shardd::start(&postgres, "2", None);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = database_clients(old.addr, 4, &stop);
    std::thread::sleep(Duration::from_millis(300));

    old.process.signal(libc::SIGUSR2);
    let line = old
        .process
        .wait_for_line("upgrade: new process", Duration::from_secs(20));
    let new_pid: u32 = line
        .split("process ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    let new = Adopted(new_pid);
    let status = old
        .process
        .wait(Duration::from_secs(20))
        .expect("the old process exits");
    assert!(status.success(), "{status:?}");
    std::thread::sleep(Duration::from_millis(300));

    let (ok, failed) = stop_clients(&stop, clients);
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        ok + failed.len()
    );
    assert!(ok > 50, "the clients kept working: {ok}");
    // The new process has its own pools, and they are up.
    assert!(old.metric("shardd_database_connections{shard=\"0\"}") >= 1);
    send_signal(new.0, libc::SIGTERM);
    assert_eq!(reap(new.0, Duration::from_secs(20)), Some(0));
}

#[test]
fn an_upgrade_whose_database_is_unreachable_is_refused_and_the_old_process_keeps_serving() {
    become_subreaper();
    let postgres = TempPostgres::start();
    let config = TempConfig::new(
        "upgrade-bad-database",
        &format!("[database]\nurl = \"{}\"\n", postgres.url()),
    );
    let (addr, admin) = (free_addr(), free_addr());
    let mut command = Command::new(BIN);
    command
        .args(["--bind", &addr.to_string(), "--shards", "2"])
        .args(["--admin", &admin.to_string(), "--config", config.path()]);
    let mut old = Process::spawn(command);
    old.wait_for_line("database: every shard connected", Duration::from_secs(10));
    let old = Shardd {
        process: old,
        addr,
        admin,
    };

    // The upgrade reads the config file anew: now it names a database that is not there.
    let wrong = postgres.url().replace("/hello_world", "/no_such_database");
    std::fs::write(
        config.path(),
        format!("[database]\nurl = \"{wrong}\"\nconnect_timeout_ms = 1000\n"),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = database_clients(addr, 4, &stop);
    let mut old = old;
    old.process.signal(libc::SIGUSR2);
    old.process
        .wait_for_line("before it was ready", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let (ok, failed) = stop_clients(&stop, clients);
    // What the new process accepted before it gave up was answered (503:
    // it never had a database), and nothing went unanswered.
    assert!(
        failed.iter().all(|why| why == "503 database unavailable\n"),
        "{failed:?}"
    );
    assert!(ok > 50, "the old process kept serving: {ok} ok, {failed:?}");
    assert_eq!(old.get("/db").status, 200);
    assert_eq!(old.ready().0, 200);
    assert!(
        old.process.wait(Duration::from_millis(100)).is_none(),
        "the old process still runs"
    );
}

#[test]
fn the_database_tests_over_tls_with_http2_and_compression() {
    let postgres = TempPostgres::start();
    let dir = std::env::temp_dir().join(format!("shardd-db-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let shardd = Shardd::start_with(
        &postgres,
        "2",
        None,
        &["--tls-cert", cert, "--tls-key", key, "--compress"],
    );
    // curl: a real TLS client, ALPN h2, asking for gzip.
    let curl = |path: &str| {
        let output = Command::new("curl")
            .args(["-sS", "-k", "--http2", "--compressed", "-D", "-"])
            .arg(format!("https://localhost:{}{path}", shardd.addr.port()))
            .args([
                "--resolve",
                &format!("localhost:{}:127.0.0.1", shardd.addr.port()),
            ])
            .output()
            .expect("run curl");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let worlds = curl("/queries?q=20");
    assert!(worlds.starts_with("HTTP/2 200"), "{worlds}");
    assert!(
        worlds.contains("content-encoding: "),
        "20 worlds are worth compressing: {worlds}"
    );
    let body = worlds.split("\r\n\r\n").nth(1).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 20);
    let page = curl("/fortunes");
    assert!(page.starts_with("HTTP/2 200"), "{page}");
    assert!(
        page.contains("Additional fortune added at request time."),
        "{page}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
