//! The throw-away Postgres the database tests run against
//! (`support::postgres::TempPostgres`): it starts with the TechEmpower data,
//! takes password logins over TCP at its `url()`, goes down and comes back
//! for outage tests, and `lock_world` makes queries of `world` wait for
//! overload tests. Needs Debian's `postgresql` (`apt-get install -y
//! postgresql`; scripts/test does); fails, never skips, without it.

mod support;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::postgres::{process_alive, server_bin_dir};
use support::TempPostgres;

/// `select 1` through `psql URL`: the password comes from the URL, over TCP.
fn select_one_over_tcp(url: &str) -> Result<String, String> {
    let output = Command::new(server_bin_dir().join("psql"))
        .args([url, "--no-psqlrc", "--tuples-only", "--no-align"])
        .args(["--command", "select 1"])
        .env_remove("PGPASSWORD")
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("run psql");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn a_temporary_postgres_serves_the_techempower_data_and_can_go_down_and_be_locked() {
    let began = Instant::now();
    let postgres = TempPostgres::start();
    let started_in = began.elapsed();

    assert_eq!(
        postgres.sql("SELECT count(*), min(id), max(id) FROM world"),
        "10000|1|10000"
    );
    assert_eq!(
        postgres.sql("SELECT count(*) FROM world WHERE randomnumber NOT BETWEEN 1 AND 10000"),
        "0"
    );
    assert_eq!(postgres.sql("SELECT count(*) FROM fortune"), "12");
    assert_eq!(
        postgres.sql("SELECT message FROM fortune WHERE id = 12"),
        "フレームワークのベンチマーク"
    );
    assert_eq!(
        postgres.sql("SELECT tableowner FROM pg_tables WHERE tablename = 'world'"),
        "benchmarkdbuser"
    );

    // The URL a server under test gets: password login over TCP.
    let url = postgres.url();
    assert!(url.ends_with(&format!("@127.0.0.1:{}/hello_world", postgres.port())));
    assert_eq!(select_one_over_tcp(&url), Ok("1".to_owned()));
    let wrong_password = url.replace("benchmarkdbpass", "wrong");
    let refused = select_one_over_tcp(&wrong_password).unwrap_err();
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );

    // Down: nothing listens on the port. Back: same port, same data.
    postgres.stop();
    let connect = TcpStream::connect(("127.0.0.1", postgres.port()));
    assert_eq!(
        connect.map_err(|e| e.kind()).err(),
        Some(ErrorKind::ConnectionRefused),
        "Postgres still listens after stop()"
    );
    postgres.start_again();
    assert_eq!(select_one_over_tcp(&url), Ok("1".to_owned()));
    assert_eq!(postgres.sql("SELECT count(*) FROM world"), "10000");

    // Locked: a query of world waits (and times out); released: it runs.
    let cpu_before = postgres.cpu_time();
    let lock = postgres.lock_world();
    let waited = Instant::now();
    let timed_out = postgres
        .try_sql("SET statement_timeout = '200ms';\nSELECT count(*) FROM world;")
        .unwrap_err();
    assert!(
        timed_out.contains("canceling statement due to statement timeout"),
        "{timed_out}"
    );
    assert!(waited.elapsed() >= Duration::from_millis(200));
    drop(lock);
    assert_eq!(
        postgres.sql("SET statement_timeout = '200ms';\nSELECT count(*) FROM world;"),
        "10000"
    );
    assert!(
        postgres.cpu_time() > cpu_before,
        "the backends' work shows in cpu_time()"
    );

    let total = began.elapsed();
    eprintln!("Postgres started in {started_in:?}; the whole test took {total:?}");
    assert!(
        total < Duration::from_secs(20),
        "the harness is too slow for every database test to use: {total:?}"
    );
}

#[test]
fn dropping_a_temporary_postgres_stops_it_and_removes_its_directory() {
    let postgres = TempPostgres::start();
    let postmaster = postgres.postmaster_pid().expect("a running postmaster");
    let port = postgres.port();
    let directory = postgres.directory().display().to_string();
    drop(postgres);
    assert!(
        !process_alive(postmaster),
        "the postmaster {postmaster} outlived its TempPostgres"
    );
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(
        !std::path::Path::new(&directory).exists(),
        "the cluster's directory {directory} is left behind"
    );
}
