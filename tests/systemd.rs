//! systemd socket activation on the built binary: the test plays systemd.
//! It makes the listening socket, starts shardd with it as descriptor 3 and
//! `LISTEN_FDS`/`LISTEN_PID` set, and listens on a `NOTIFY_SOCKET` for
//! `READY=1` and `STOPPING=1`. Like systemd, the test keeps its own copy of
//! the socket, which must still listen after shardd has stopped.

mod support;

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use support::process::{
    become_subreaper, process_gone, reap, send_signal, with_listen_fds, Adopted, NotifySocket,
    Process, BIN,
};
use support::{Client, UnixClient};

const WAIT: Duration = Duration::from_secs(10);

/// Start shardd as systemd would, with `fds` and a notification socket.
fn activate(args: &[&str], fds: &[i32], notify: &NotifySocket) -> Process {
    let mut args: Vec<&str> = args.to_vec();
    args.extend(["--shards", "2", "--no-pin", "--drain-timeout-ms", "2000"]);
    let mut command = with_listen_fds(Path::new(BIN), &args, fds);
    command.env("NOTIFY_SOCKET", &notify.path);
    Process::spawn(command)
}

#[test]
fn serves_an_inherited_tcp_socket_and_notifies_ready_and_stopping() {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let notify = NotifySocket::new("tcp");
    // The config's bind address is not used: the inherited socket is.
    let mut shardd = activate(&["--bind", "127.0.0.1:1"], &[socket.as_raw_fd()], &notify);

    assert_eq!(notify.next(WAIT), "READY=1");
    let banner = shardd.wait_for_line("serving on", WAIT);
    assert!(
        banner.contains(&format!("http://{addr} (inherited socket)")),
        "{banner}"
    );
    let mut client = Client::connect(addr);
    assert_eq!(client.get("/plaintext").body, b"Hello, World!");

    shardd.signal(libc::SIGTERM);
    assert_eq!(notify.next(WAIT), "STOPPING=1");
    let status = shardd.wait(WAIT).expect("shardd exits after SIGTERM");
    assert!(status.success(), "{status}");

    // systemd's socket still listens: shardd never shut it down.
    let _next = TcpStream::connect(addr).expect("the socket unit still listens");
    socket.set_nonblocking(true).unwrap();
    assert!(
        socket.accept().is_ok(),
        "and the connection is queued on it"
    );
}

#[test]
fn serves_an_inherited_unix_socket_and_leaves_its_file_to_systemd() {
    let path = std::env::temp_dir().join(format!("shardd-systemd-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let socket = UnixListener::bind(&path).unwrap();
    let notify = NotifySocket::new("unix");
    let mut shardd = activate(&[], &[socket.as_raw_fd()], &notify);

    assert_eq!(notify.next(WAIT), "READY=1");
    let banner = shardd.wait_for_line("serving on", WAIT);
    assert!(
        banner.contains(&format!("unix:{} (inherited socket)", path.display())),
        "{banner}"
    );
    let mut client = UnixClient::connect(&path);
    assert_eq!(client.get("/plaintext").status, 200);

    shardd.signal(libc::SIGTERM);
    assert_eq!(notify.next(WAIT), "STOPPING=1");
    assert!(shardd.wait(WAIT).expect("exits").success());
    assert!(path.exists(), "the socket file belongs to systemd");
    let _next = std::os::unix::net::UnixStream::connect(&path).expect("still listening");
    drop(socket);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn an_admin_socket_named_shardd_admin_is_served_and_left_listening() {
    let web = TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").unwrap();
    let (addr, admin_addr) = (web.local_addr().unwrap(), admin.local_addr().unwrap());
    let notify = NotifySocket::new("admin");
    let args = [
        "--admin",
        &admin_addr.to_string(),
        "--shards",
        "2",
        "--no-pin",
    ];
    let fds = [web.as_raw_fd(), admin.as_raw_fd()];
    // As a socket unit with FileDescriptorName=shardd-admin passes it.
    let mut command = with_listen_fds(Path::new(BIN), &args, &fds);
    command
        .env("NOTIFY_SOCKET", &notify.path)
        .env("LISTEN_FDNAMES", "shardd.socket:shardd-admin");
    let mut shardd = Process::spawn(command);

    assert_eq!(notify.next(WAIT), "READY=1");
    let line = shardd.wait_for_line("admin on", WAIT);
    assert!(
        line.contains(&format!("http://{admin_addr} (inherited socket)")),
        "{line}"
    );
    assert_eq!(Client::connect(admin_addr).get("/health/ready").status, 200);
    assert_eq!(Client::connect(addr).get("/plaintext").status, 200);

    shardd.signal(libc::SIGTERM);
    assert_eq!(notify.next(WAIT), "STOPPING=1");
    assert!(shardd.wait(WAIT).expect("exits").success());
    // systemd's admin socket still listens: shardd never shut it down.
    let _next = TcpStream::connect(admin_addr).expect("the admin socket unit still listens");
    admin.set_nonblocking(true).unwrap();
    assert!(admin.accept().is_ok(), "and the connection is queued on it");
}

#[test]
fn an_admin_socket_passed_alone_is_served_and_the_service_address_bound() {
    let admin = TcpListener::bind("127.0.0.1:0").unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let own = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let notify = NotifySocket::new("admin-alone");
    let args = [
        "--bind",
        &own.to_string(),
        "--admin",
        &admin_addr.to_string(),
    ];
    let mut command = with_listen_fds(Path::new(BIN), &args, &[admin.as_raw_fd()]);
    command
        .env("NOTIFY_SOCKET", &notify.path)
        .env("LISTEN_FDNAMES", "shardd-admin");
    let mut shardd = Process::spawn(command);
    assert_eq!(notify.next(WAIT), "READY=1");
    let banner = shardd.wait_for_line("serving on", WAIT);
    assert!(banner.contains(&format!("http://{own}")), "{banner}");
    assert!(!banner.contains("inherited"), "{banner}");
    assert_eq!(Client::connect(admin_addr).get("/health/live").status, 200);
    assert_eq!(Client::connect(own).get("/plaintext").status, 200);
}

#[test]
fn listen_fds_for_another_process_are_ignored() {
    // LISTEN_PID names someone else: shardd binds its own address instead.
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let own = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut command = std::process::Command::new(BIN);
    command
        .args(["--bind", &own.to_string(), "--shards", "1", "--no-pin"])
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1");
    let _ = socket;
    let mut shardd = Process::spawn(command);
    let banner = shardd.wait_for_line("serving on", WAIT);
    assert!(banner.contains(&format!("http://{own}")), "{banner}");
    assert!(!banner.contains("inherited"), "{banner}");
}

#[test]
fn unusable_inherited_descriptors_stop_start_up_with_a_reason() {
    // A socket that does not listen.
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let notify = NotifySocket::new("bad");
    let mut shardd = activate(&[], &[a.as_raw_fd()], &notify);
    let status = shardd.wait(WAIT).expect("exits");
    assert!(!status.success());
    let lines = shardd.lines_so_far(Duration::from_millis(100)).join("\n");
    assert!(lines.contains("fd 3 is not listening"), "{lines}");

    // Handoff serves one socket; two is an error naming LISTEN_FDS.
    let one = TcpListener::bind("127.0.0.1:0").unwrap();
    let two = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut shardd = activate(&[], &[one.as_raw_fd(), two.as_raw_fd()], &notify);
    let status = shardd.wait(WAIT).expect("exits");
    assert!(!status.success());
    let lines = shardd.lines_so_far(Duration::from_millis(100)).join("\n");
    assert!(
        lines.contains("LISTEN_FDS") && lines.contains("one socket"),
        "{lines}"
    );
}

#[test]
fn an_upgrade_under_systemd_reports_the_new_main_pid() {
    become_subreaper();
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let notify = NotifySocket::new("mainpid");
    let mut old = activate(&[], &[socket.as_raw_fd()], &notify);
    assert_eq!(notify.next(WAIT), "READY=1");

    old.signal(libc::SIGUSR2);
    // The new process tells the old one it is ready; the old one tells systemd.
    let message = notify.next(WAIT);
    let new_pid: u32 = message
        .strip_prefix("MAINPID=")
        .unwrap_or_else(|| panic!("expected MAINPID=, got {message:?}"))
        .parse()
        .unwrap();
    assert_ne!(new_pid, old.pid());
    let _new = Adopted(new_pid);
    let status = old.wait(WAIT).expect("the old process drains and exits");
    assert!(status.success(), "{status}");
    assert!(!process_gone(new_pid), "the new process serves");
    assert_eq!(Client::connect(addr).get("/plaintext").status, 200);

    // The old process drained silently; the new one says STOPPING=1 itself.
    send_signal(new_pid, libc::SIGTERM);
    assert_eq!(notify.next(WAIT), "STOPPING=1");
    assert_eq!(reap(new_pid, WAIT), Some(0), "the new process exits 0");
}
