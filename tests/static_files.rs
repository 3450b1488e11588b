//! Static files over real sockets: curl with ranges, conditionals and
//! HTTP/2; raw requests for the traversal table (curl would tidy the
//! paths first); 200 slow readers of a 100 MiB file with flat memory.

mod support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shardd::compression::CompressionSettings;
use shardd::files::{StaticSettings, WithStaticFiles};
use shardd::App;
use shardd::TechEmpower;
use support::process::{Process, BIN};
use support::{config, Client, TestServer};

/// A directory tree for one test: `www/` (served) beside `secret.txt` (not).
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Tree {
        let base =
            std::env::temp_dir().join(format!("shardd-static-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("www/docs")).unwrap();
        fs::create_dir_all(base.join("www/empty")).unwrap();
        fs::write(base.join("secret.txt"), "TOP SECRET\n").unwrap();
        fs::write(base.join("www/index.html"), "<h1>home</h1>\n").unwrap();
        fs::write(base.join("www/docs/index.html"), "<h1>docs</h1>\n").unwrap();
        fs::write(base.join("www/app.js"), "console.log('plain')\n").unwrap();
        fs::write(base.join("www/app.js.gz"), "GZIP BYTES").unwrap();
        fs::write(base.join("www/app.js.br"), "BROTLI BYTES").unwrap();
        let numbers: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(base.join("www/numbers.bin"), numbers).unwrap();
        symlink("../secret.txt", base.join("www/leak")).unwrap();
        symlink(base.join("secret.txt"), base.join("www/leak-absolute")).unwrap();
        symlink("docs/index.html", base.join("www/inside")).unwrap();
        Tree { base }
    }

    fn www(&self) -> PathBuf {
        self.base.join("www")
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// The TechEmpower app with `settings` mounted in front, one shard.
fn serve(settings: Vec<StaticSettings>) -> TestServer {
    TestServer::start_with(config(1), move |_| {
        WithStaticFiles::open(&settings, TechEmpower).expect("the test's directory opens")
    })
}

/// `curl -sS -i --max-time 10 ARGS URL`: head and body as text.
fn curl(args: &[&str], url: &str) -> String {
    let output = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl ({e}): install curl to run these tests"));
    assert!(
        output.status.success(),
        "curl {args:?} {url} failed: {output:?}"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn status_of(text: &str) -> u16 {
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn field<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let head = text.split("\r\n\r\n").next().unwrap();
    head.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn body(text: &str) -> &str {
    text.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

#[test]
fn get_head_ranges_and_conditionals_with_curl() {
    let tree = Tree::new("curl");
    let mut settings = StaticSettings::new("/static", tree.www());
    settings.cache_control = Some("public, max-age=60".to_owned());
    let server = serve(vec![settings]);
    let url = |path: &str| format!("http://{}{path}", server.addr);

    let whole = curl(&[], &url("/static/app.js"));
    assert_eq!(status_of(&whole), 200);
    assert_eq!(body(&whole), "console.log('plain')\n");
    assert_eq!(
        field(&whole, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(field(&whole, "accept-ranges"), Some("bytes"));
    assert_eq!(field(&whole, "cache-control"), Some("public, max-age=60"));
    assert_eq!(field(&whole, "vary"), Some("Accept-Encoding"));
    let etag = field(&whole, "etag").expect("an ETag").to_owned();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    let modified = field(&whole, "last-modified")
        .expect("Last-Modified")
        .to_owned();

    // HEAD: the fields of a GET, the length, no body.
    let head = curl(&["-I"], &url("/static/numbers.bin"));
    assert_eq!(status_of(&head), 200);
    assert_eq!(field(&head, "content-length"), Some("100000"));
    assert_eq!(body(&head), "");

    // A range: 206, Content-Range, those bytes (a file large enough for sendfile).
    let range = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-r", "70000-70009", "-D", "-"])
        .arg(url("/static/numbers.bin"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&range.stdout);
    assert_eq!(status_of(&text), 206, "{text}");
    assert_eq!(
        field(&text, "content-range"),
        Some("bytes 70000-70009/100000")
    );
    let bytes = &range.stdout[range.stdout.len() - 10..];
    let expected: Vec<u8> = (70000..70010u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(bytes, &expected[..]);
    // The last 5 bytes, and a range past the end.
    assert_eq!(
        field(
            &curl(&["-r", "-5"], &url("/static/numbers.bin")),
            "content-range"
        ),
        Some("bytes 99995-99999/100000")
    );
    let past = curl(&["-r", "200000-"], &url("/static/numbers.bin"));
    assert_eq!(status_of(&past), 416);
    assert_eq!(field(&past, "content-range"), Some("bytes */100000"));

    // If-Range that no longer holds: the whole file.
    let stale = curl(
        &["-r", "0-9", "-H", "If-Range: \"stale\""],
        &url("/static/app.js"),
    );
    assert_eq!(status_of(&stale), 200);
    let fresh = curl(
        &["-r", "0-6", "-H", &format!("If-Range: {etag}")],
        &url("/static/app.js"),
    );
    assert_eq!((status_of(&fresh), body(&fresh)), (206, "console"));

    // Conditionals: 304 with the validators, 412.
    let not_modified = curl(
        &["-H", &format!("If-None-Match: {etag}")],
        &url("/static/app.js"),
    );
    assert_eq!(status_of(&not_modified), 304);
    assert_eq!(field(&not_modified, "etag"), Some(etag.as_str()));
    assert_eq!(body(&not_modified), "");
    let since = curl(&["-z", &modified], &url("/static/app.js"));
    assert_eq!(status_of(&since), 304);
    let changed = curl(
        &["-z", "Sat, 01 Jan 2000 00:00:00 GMT"],
        &url("/static/app.js"),
    );
    assert_eq!(status_of(&changed), 200);
    let if_match = curl(&["-H", "If-Match: \"other\""], &url("/static/app.js"));
    assert_eq!(status_of(&if_match), 412);
    let matching = curl(
        &["-H", &format!("If-Match: {etag}")],
        &url("/static/app.js"),
    );
    assert_eq!(status_of(&matching), 200);
    let unmodified = curl(
        &["-H", "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT"],
        &url("/static/app.js"),
    );
    assert_eq!(status_of(&unmodified), 412);

    // Index files; a directory without its slash is redirected; none is listed.
    assert_eq!(body(&curl(&[], &url("/static/"))), "<h1>home</h1>\n");
    assert_eq!(body(&curl(&[], &url("/static/docs/"))), "<h1>docs</h1>\n");
    let moved = curl(&[], &url("/static/docs"));
    assert_eq!(status_of(&moved), 301);
    assert_eq!(field(&moved, "location"), Some("/static/docs/"));
    assert_eq!(status_of(&curl(&[], &url("/static/empty/"))), 404);
    assert_eq!(status_of(&curl(&[], &url("/static/missing.txt"))), 404);
    // Files take only GET and HEAD: a POST goes to the app behind the
    // mount (here, the TechEmpower app's 404), not to a 405 from files.
    let post = curl(&["-X", "POST"], &url("/static/app.js"));
    assert_eq!(status_of(&post), 404);
    assert_eq!(field(&post, "allow"), None);

    // The app behind the mount still answers.
    assert_eq!(body(&curl(&[], &url("/plaintext"))), "Hello, World!");
}

#[test]
fn precompressed_siblings_follow_accept_encoding() {
    let tree = Tree::new("precompressed");
    let server = serve(vec![StaticSettings::new("/", tree.www())]);
    let url = format!("http://{}/app.js", server.addr);
    for (accept, coding, text) in [
        ("gzip, deflate, br, zstd", Some("br"), "BROTLI BYTES"),
        ("gzip, br;q=0.5", Some("gzip"), "GZIP BYTES"),
        ("zstd", None, "console.log('plain')\n"),
        ("br;q=0, gzip;q=0", None, "console.log('plain')\n"),
        ("identity", None, "console.log('plain')\n"),
    ] {
        let answer = curl(&["-H", &format!("Accept-Encoding: {accept}")], &url);
        assert_eq!(field(&answer, "content-encoding"), coding, "{accept}");
        assert_eq!(body(&answer), text, "{accept}");
        assert_eq!(
            field(&answer, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(field(&answer, "vary"), Some("Accept-Encoding"));
    }
    // Each coding has its own validator.
    let plain = curl(&[], &url);
    let gzip = curl(&["-H", "Accept-Encoding: gzip"], &url);
    assert_ne!(field(&plain, "etag"), field(&gzip, "etag"));
    // A real gzip sibling, decoded by curl --compressed to the original.
    let css = tree.www().join("site.css");
    fs::write(&css, "body { color: teal }\n".repeat(50)).unwrap();
    let gzip = Command::new("gzip").arg("-k").arg(&css).status();
    assert!(gzip.expect("gzip runs").success());
    let css_url = format!("http://{}/site.css", server.addr);
    let compressed = curl(&["--compressed"], &css_url);
    assert_eq!(field(&compressed, "content-encoding"), Some("gzip"));
    assert_eq!(body(&compressed), "body { color: teal }\n".repeat(50));
    let gz_len = fs::metadata(tree.www().join("site.css.gz"))
        .unwrap()
        .len()
        .to_string();
    assert_eq!(field(&compressed, "content-length"), Some(gz_len.as_str()));
}

#[test]
fn http2_gets_whole_files_and_ranges() {
    let tree = Tree::new("h2");
    let server = serve(vec![StaticSettings::new("/", tree.www())]);
    let url = format!("http://{}/numbers.bin", server.addr);
    let output = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "--http2-prior-knowledge",
            "-o",
            "-",
        ])
        .arg(&url)
        .output()
        .expect("curl runs");
    assert!(output.status.success());
    assert_eq!(
        output.stdout,
        fs::read(tree.www().join("numbers.bin")).unwrap()
    );
    let range = curl(&["--http2-prior-knowledge", "-r", "10-14"], &url);
    assert!(range.starts_with("HTTP/2 206"), "{range}");
    assert_eq!(field(&range, "content-range"), Some("bytes 10-14/100000"));
    let head = curl(&["--http2-prior-knowledge", "-I"], &url);
    assert_eq!(field(&head, "content-length"), Some("100000"));
}

/// Requests that try to reach `secret.txt` (beside the served directory)
/// or to list a directory: none gets a file, and no answer shows a path
/// of the server.
#[test]
fn no_path_leaves_the_root() {
    let tree = Tree::new("traversal");
    let server = serve(vec![StaticSettings::new("/", tree.www())]);
    let table: &[(&str, u16)] = &[
        ("/../secret.txt", 400),
        ("/docs/../../secret.txt", 400),
        ("/%2e%2e/secret.txt", 400),
        ("/%2E%2E/secret.txt", 400),
        ("/.%2e/secret.txt", 400),
        ("/docs%2f..%2f..%2fsecret.txt", 400),
        ("/..%5csecret.txt", 400),
        ("/..\\secret.txt", 400),
        ("/docs/%00index.html", 400),
        ("/index.html%00.txt", 400),
        ("/%c0%ae%c0%ae/secret.txt", 400),
        ("/%25%32%65%25%32%65/secret.txt", 404), // decoded once: a literal "%2e%2e"
        ("//etc/passwd", 404),
        ("/etc/passwd", 404),
        ("/leak", 404),          // a relative symlink out of the root
        ("/leak-absolute", 404), // an absolute one
        ("/empty/", 404),        // no listing
        ("/./index.html", 400),
    ];
    let secret_dir = tree.base.display().to_string();
    for (path, status) in table {
        let mut client = Client::connect(server.addr);
        client.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        let response = client.response().expect("an answer");
        let text = response.body_str();
        assert_eq!(response.status, *status, "{path}: {text}");
        assert!(!text.contains("SECRET"), "{path} leaked the file");
        assert!(
            !text.contains(&secret_dir) && !text.contains("/tmp"),
            "{path} showed a path: {text}"
        );
    }
    // A symlink that stays inside is followed.
    let mut client = Client::connect(server.addr);
    assert_eq!(client.get("/inside").body_str(), "<h1>docs</h1>\n");
}

#[test]
fn symlinks_out_of_the_root_only_when_allowed() {
    let tree = Tree::new("follow");
    let mut settings = StaticSettings::new("/", tree.www());
    settings.follow_symlinks = true;
    let server = serve(vec![settings]);
    let mut client = Client::connect(server.addr);
    assert_eq!(client.get("/leak").body_str(), "TOP SECRET\n");
    // `..` stays refused: only links may lead out.
    let mut client = Client::connect(server.addr);
    client.send("GET /../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.response().unwrap().status, 400);
}

#[test]
fn behind_compression_a_precompressed_file_is_not_compressed_again_and_the_app_is() {
    let tree = Tree::new("compressed");
    let settings = vec![StaticSettings::new("/static", tree.www())];
    let server = TestServer::start_with(config(1), move |_| {
        WithStaticFiles::open(&settings, TechEmpower)
            .expect("the test's directory opens")
            .compressed(CompressionSettings {
                min_size: 0,
                ..CompressionSettings::on()
            })
    });
    // The gzip sibling goes out as it is on disk: one Content-Encoding.
    let url = format!("http://{}/static/app.js", server.addr);
    let answer = curl(&["-H", "Accept-Encoding: gzip"], &url);
    assert_eq!(field(&answer, "content-encoding"), Some("gzip"));
    assert_eq!(body(&answer), "GZIP BYTES");
    assert_eq!(
        answer.matches("content-encoding").count() + answer.matches("Content-Encoding").count(),
        1
    );
    // A range of a file is never compressed.
    let url = format!("http://{}/static/numbers.bin", server.addr);
    let range = curl(&["-H", "Accept-Encoding: gzip", "-r", "0-9"], &url);
    assert_eq!(status_of(&range), 206);
    assert_eq!(field(&range, "content-encoding"), None);
    // The app's own answers are compressed.
    let url = format!("http://{}/json", server.addr);
    let json = curl(&["--compressed", "-H", "Accept-Encoding: gzip"], &url);
    assert_eq!(field(&json, "content-encoding"), Some("gzip"));
    assert_eq!(body(&json), r#"{"message":"Hello, World!"}"#);
}

#[test]
fn a_mount_at_the_root_serves_files_beside_the_app_and_the_longest_prefix_wins() {
    let tree = Tree::new("root-mount");
    let docs = tree.www().join("docs");
    // Given root first: `/docs` must still win for its paths.
    let settings = vec![
        StaticSettings::new("/", tree.www()),
        StaticSettings::new("/docs", docs),
    ];
    let server = serve(settings);
    let home = curl(&[], &format!("http://{}/", server.addr));
    assert_eq!(body(&home), "<h1>home</h1>\n");
    let docs = curl(&[], &format!("http://{}/docs/", server.addr));
    assert_eq!(body(&docs), "<h1>docs</h1>\n");
    // No such file: the app's routes answer.
    let plaintext = curl(&[], &format!("http://{}/plaintext", server.addr));
    assert_eq!(
        (status_of(&plaintext), body(&plaintext)),
        (200, "Hello, World!")
    );
    // A POST is not for files: the app answers it (here, 404 from the app).
    let post = curl(
        &["-X", "POST"],
        &format!("http://{}/index.html", server.addr),
    );
    assert_eq!(status_of(&post), 404);
    assert_eq!(field(&post, "allow"), None, "not the file service's 405");
}

#[test]
fn a_mount_without_a_directory_or_mounted_twice_is_refused() {
    let missing_dir = shardd::Config::from_toml("[[static]]\nprefix = \"/x\"\n")
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(missing_dir.contains("dir is missing"), "{missing_dir}");
    let twice = shardd::Config::from_toml(
        "[[static]]\nprefix = \"/a\"\ndir = \"/tmp\"\n[[static]]\nprefix = \"/a/\"\ndir = \"/var\"\n",
    )
    .unwrap()
    .validate()
    .unwrap_err()
    .to_string();
    assert!(twice.contains("mounted twice"), "{twice}");
}

/// Run `program` as the unprivileged user `nobody` when the test runs as
/// root (root reads every file, so a mode-000 file would be served);
/// as it is otherwise.
fn as_unprivileged(program: &Path) -> Command {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Command::new(program);
    }
    let setpriv = Path::new("/usr/bin/setpriv");
    assert!(
        setpriv.exists(),
        "tests run as root need setpriv (util-linux) to start shardd as nobody"
    );
    let mut command = Command::new(setpriv);
    // 65534 is nobody, and nogroup (or nobody), on every common distribution.
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(program);
    command
}

/// The built binary at a path `nobody` can run: itself when reachable,
/// else a copy in `dir` (a target directory under a private home).
fn binary_for_nobody(dir: &Path) -> PathBuf {
    let reachable = as_unprivileged(Path::new("/bin/sh"))
        .args(["-c", "test -x \"$0\"", BIN])
        .status()
        .expect("run sh as nobody");
    if reachable.success() {
        return PathBuf::from(BIN);
    }
    let copy = dir.join("shardd");
    fs::copy(BIN, &copy).expect("copy the binary for nobody");
    copy
}

#[test]
fn an_unreadable_file_is_403_without_a_path_and_its_readable_sibling_is_served() {
    let tree = Tree::new("unreadable");
    let locked = tree.www().join("locked.txt");
    fs::write(&locked, "LOCKED CONTENT\n").unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    // A directory whose index cannot be read: 403 too, not "no index".
    fs::create_dir(tree.www().join("private")).unwrap();
    let index = tree.www().join("private/index.html");
    fs::write(&index, "PRIVATE INDEX\n").unwrap();
    fs::set_permissions(&index, fs::Permissions::from_mode(0o000)).unwrap();
    // The tree is root's when run as root: nobody must be able to read it.
    for dir in [tree.base.clone(), tree.www()] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let program = binary_for_nobody(&tree.base);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mount = format!("/={}", tree.www().display());
    let mut command = as_unprivileged(&program);
    command.args([
        "--bind",
        &addr.to_string(),
        "--shards",
        "1",
        "--static",
        &mount,
    ]);
    let mut shardd = Process::spawn(command);
    shardd.wait_for_line("serving on", Duration::from_secs(10));

    let forbidden = curl(&[], &format!("http://{addr}/locked.txt"));
    assert_eq!(status_of(&forbidden), 403, "{forbidden}");
    let text = body(&forbidden);
    assert!(!text.contains("LOCKED"), "the file leaked: {text}");
    assert!(
        !text.contains(&tree.base.display().to_string()) && !text.contains("/tmp"),
        "the 403 showed a path: {text}"
    );
    let private = curl(&[], &format!("http://{addr}/private/"));
    assert_eq!(status_of(&private), 403, "{private}");
    assert!(!body(&private).contains("PRIVATE"));
    let readable = curl(&[], &format!("http://{addr}/app.js"));
    assert_eq!(
        (status_of(&readable), body(&readable)),
        (200, "console.log('plain')\n")
    );
}

#[test]
fn dotfiles_are_hidden_unless_the_mount_serves_them_and_well_known_always_is() {
    let tree = Tree::new("dotfiles");
    let www = tree.www();
    fs::write(www.join(".env"), "API_KEY=hunter2\n").unwrap();
    fs::create_dir_all(www.join(".git")).unwrap();
    fs::write(www.join(".git/config"), "[core]\n").unwrap();
    fs::write(www.join("docs/.htpasswd"), "admin:x\n").unwrap();
    fs::create_dir_all(www.join(".well-known")).unwrap();
    fs::write(www.join(".well-known/security.txt"), "Contact: a@b\n").unwrap();
    let hidden = ["/.env", "/.git/config", "/docs/.htpasswd", "/%2eenv"];

    let server = serve(vec![StaticSettings::new("/", www.clone())]);
    let get = |server: &TestServer, path: &str| {
        let mut client = Client::connect(server.addr);
        client.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        let response = client.response().expect("an answer");
        (response.status, response.body_str().to_owned())
    };
    // Exactly what a missing file gets: the app's answer to a miss.
    let miss = get(&server, "/no-such-file");
    assert_eq!(miss.0, 404);
    for path in hidden {
        assert_eq!(get(&server, path), miss, "{path}");
    }
    assert_eq!(
        get(&server, "/.well-known/security.txt"),
        (200, "Contact: a@b\n".to_owned())
    );

    let mut settings = StaticSettings::new("/", www.clone());
    settings.dotfiles = true;
    let server = serve(vec![settings]);
    assert_eq!(get(&server, "/.env"), (200, "API_KEY=hunter2\n".to_owned()));
    assert_eq!(
        get(&server, "/docs/.htpasswd"),
        (200, "admin:x\n".to_owned())
    );

    // The config file's key.
    let config =
        shardd::Config::from_toml("[[static]]\ndir = \"/srv\"\ndotfiles = true\n").unwrap();
    assert!(config.static_files[0].dotfiles);
    let config = shardd::Config::from_toml("[[static]]\ndir = \"/srv\"\n").unwrap();
    assert!(!config.static_files[0].dotfiles, "hidden by default");
}

#[test]
fn text_files_say_they_are_utf8_and_javascript_is_text_javascript() {
    let tree = Tree::new("charset");
    let www = tree.www();
    for name in [
        "page.html",
        "site.css",
        "notes.txt",
        "module.mjs",
        "README.md",
        "t.csv",
    ] {
        fs::write(www.join(name), "héllo\n").unwrap();
    }
    fs::write(www.join("data.json"), "{}").unwrap();
    fs::write(www.join("logo.svg"), "<svg/>").unwrap();
    let server = serve(vec![StaticSettings::new("/", www)]);
    for (path, expected) in [
        ("/page.html", "text/html; charset=utf-8"),
        ("/site.css", "text/css; charset=utf-8"),
        ("/notes.txt", "text/plain; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/module.mjs", "text/javascript; charset=utf-8"),
        ("/README.md", "text/markdown; charset=utf-8"),
        ("/t.csv", "text/csv; charset=utf-8"),
        ("/data.json", "application/json"),
        ("/logo.svg", "image/svg+xml"),
        ("/numbers.bin", "application/octet-stream"),
    ] {
        let answer = curl(
            &["-o", "/dev/null", "-D", "-"],
            &format!("http://{}{path}", server.addr),
        );
        assert_eq!(field(&answer, "content-type"), Some(expected), "{path}");
    }
}

#[test]
fn a_client_refusing_the_file_as_it_is_gets_a_sibling_or_406() {
    let tree = Tree::new("not-acceptable");
    let server = serve(vec![StaticSettings::new("/", tree.www())]);
    let url = |path: &str| format!("http://{}{path}", server.addr);
    // app.js has .gz and .br siblings: one of them answers.
    let sibling = curl(
        &["-H", "Accept-Encoding: gzip, identity;q=0"],
        &url("/app.js"),
    );
    assert_eq!(
        (status_of(&sibling), field(&sibling, "content-encoding")),
        (200, Some("gzip"))
    );
    // numbers.bin has none: nothing the client accepts exists.
    for refusal in ["identity;q=0", "*;q=0", "gzip, identity;q=0", "br, *;q=0"] {
        let answer = curl(
            &["-H", &format!("Accept-Encoding: {refusal}")],
            &url("/numbers.bin"),
        );
        assert_eq!(status_of(&answer), 406, "{refusal}: {answer}");
        assert_eq!(field(&answer, "vary"), Some("Accept-Encoding"));
        assert_eq!(field(&answer, "content-encoding"), None);
        // The reason names what the file service can send, not codings
        // the client may have asked for.
        assert!(
            body(&answer).contains("sent as it is or from a precompressed copy"),
            "{answer}"
        );
    }
    // Nor does app.js have a zstd one.
    let zstd_only = curl(&["-H", "Accept-Encoding: zstd, *;q=0"], &url("/app.js"));
    assert_eq!(status_of(&zstd_only), 406);
    // Identity named again, or no field at all: the file as it is.
    let plain = curl(
        &["-H", "Accept-Encoding: *;q=0, identity"],
        &url("/numbers.bin"),
    );
    assert_eq!(status_of(&plain), 200);
    assert_eq!(status_of(&curl(&[], &url("/numbers.bin"))), 200);
}

/// Over plain TCP a file goes out with `sendfile(2)`; over HTTP/2 its
/// frames are written from chunks read, so the count does not move.
#[test]
fn plain_tcp_sends_files_with_sendfile_and_http2_does_not() {
    let tree = Tree::new("sendfile");
    let server = serve(vec![StaticSettings::new("/", tree.www())]);
    let sendfile_bodies = || server.stats().shards[0].sendfile_bodies;
    let url = format!("http://{}/numbers.bin", server.addr);
    let whole = curl(&["-o", "/dev/null", "-D", "-"], &url);
    assert_eq!(status_of(&whole), 200);
    assert_eq!(sendfile_bodies(), 1);
    let h2 = curl(
        &["--http2-prior-knowledge", "-o", "/dev/null", "-D", "-"],
        &url,
    );
    assert!(h2.starts_with("HTTP/2 200"), "{h2}");
    assert_eq!(sendfile_bodies(), 1, "HTTP/2 reads the file in chunks");
}

/// `text` gzip-decoded, or a clear failure.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a valid gzip body");
    out
}

#[test]
fn files_without_a_precompressed_sibling_are_compressed_on_the_fly() {
    let tree = Tree::new("on-the-fly");
    // ~640 KiB of text (streamed through the encoder, chunk by chunk) and
    // 2 KiB (read whole): both compressible, neither with a sibling.
    let big: String = (0..20_000)
        .map(|i| format!("line {i} of a large stylesheet\n"))
        .collect::<String>();
    fs::write(tree.www().join("big.css"), &big).unwrap();
    let small = "p { margin: 0 }\n".repeat(128);
    fs::write(tree.www().join("small.txt"), &small).unwrap();
    let settings = vec![StaticSettings::new("/static", tree.www())];
    let server = TestServer::start_with(config(1), move |_| {
        WithStaticFiles::open(&settings, TechEmpower)
            .expect("the test's directory opens")
            .compressed(CompressionSettings::on())
    });
    let big_url = format!("http://{}/static/big.css", server.addr);
    let gzip = ["--compressed", "-H", "Accept-Encoding: gzip"];

    // curl decodes the big file to its bytes; it came chunked, with a
    // weak ETag that names the coding.
    let answer = curl(&gzip, &big_url);
    assert_eq!(status_of(&answer), 200);
    assert_eq!(field(&answer, "content-encoding"), Some("gzip"));
    assert_eq!(field(&answer, "content-length"), None);
    assert_eq!(field(&answer, "transfer-encoding"), Some("chunked"));
    assert_eq!(field(&answer, "vary"), Some("Accept-Encoding"));
    assert_eq!(field(&answer, "accept-ranges"), None);
    assert!(
        body(&answer) == big,
        "the decoded body differs from the file"
    );
    let etag = field(&answer, "etag").expect("an ETag").to_owned();
    assert!(
        etag.starts_with("W/\"") && etag.ends_with("-gzip\""),
        "{etag}"
    );
    let identity = curl(&[], &big_url);
    assert_eq!(field(&identity, "content-encoding"), None);
    let identity_len = big.len().to_string();
    assert_eq!(
        field(&identity, "content-length"),
        Some(identity_len.as_str())
    );
    assert_ne!(field(&identity, "etag"), Some(etag.as_str()));

    // The compressed tag revalidates: 304, with the tag.
    let revalidated = curl(
        &[
            "-H",
            "Accept-Encoding: gzip",
            "-H",
            &format!("If-None-Match: {etag}"),
        ],
        &big_url,
    );
    assert_eq!(status_of(&revalidated), 304);
    assert_eq!(field(&revalidated, "etag"), Some(etag.as_str()));

    // HEAD: the same header fields as GET.
    let head = curl(&["-I", "-H", "Accept-Encoding: gzip"], &big_url);
    for name in [
        "content-encoding",
        "content-length",
        "etag",
        "vary",
        "content-type",
    ] {
        assert_eq!(field(&head, name), field(&answer, name), "{name}");
    }

    // A range is of the file as it is.
    let range = curl(&["-H", "Accept-Encoding: gzip", "-r", "0-9"], &big_url);
    assert_eq!(status_of(&range), 206);
    assert_eq!(field(&range, "content-encoding"), None);
    assert_eq!(body(&range), &big[..10]);

    // Raw: the chunked body on the wire is gzip of the file.
    let mut client = Client::connect(server.addr);
    client.send("GET /static/big.css HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
    let raw = client.response().expect("a response");
    assert_eq!(raw.header("content-encoding"), Some("gzip"));
    assert!(raw.body.len() < big.len() / 4, "{} bytes", raw.body.len());
    assert!(gunzip(&raw.body) == big.as_bytes());
    // The small file: read whole, so it keeps a Content-Length.
    client.send("GET /static/small.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
    let raw = client.response().expect("a response");
    assert_eq!(raw.header("content-encoding"), Some("gzip"));
    assert_eq!(
        raw.header("content-length"),
        Some(raw.body.len().to_string().as_str())
    );
    assert_eq!(gunzip(&raw.body), small.as_bytes());

    // HTTP/2: the same file, decoded by curl, in each coding it offers.
    for coding in ["gzip", "br", "zstd"] {
        let http2 = curl(
            &[
                "--http2-prior-knowledge",
                "--compressed",
                "-H",
                &format!("Accept-Encoding: {coding}"),
            ],
            &big_url,
        );
        assert_eq!(status_of(&http2), 200);
        assert_eq!(field(&http2, "content-encoding"), Some(coding));
        assert!(body(&http2) == big, "{coding}: the decoded body differs");
    }
    let head = curl(
        &[
            "--http2-prior-knowledge",
            "-I",
            "-H",
            "Accept-Encoding: gzip",
        ],
        &big_url,
    );
    assert_eq!(field(&head, "content-encoding"), Some("gzip"));
    assert_eq!(field(&head, "etag"), Some(etag.as_str()));
    assert_eq!(field(&head, "content-length"), None);
}

/// Over TLS a file is read in chunks (no `sendfile`): what arrives is the
/// file, whole and in ranges, over HTTP/1.1 and HTTP/2 (ALPN), through
/// curl, a real TLS client.
#[test]
fn files_over_tls_arrive_whole_and_in_ranges_over_http1_and_http2() {
    let tree = Tree::new("tls");
    // Several of the 64 KiB chunks TLS bodies are read in, and a ragged end.
    let big: Vec<u8> = (0..3_000_017u32).map(|i| (i % 253) as u8).collect();
    fs::write(tree.www().join("big.bin"), &big).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (tree.base.join("cert.pem"), tree.base.join("key.pem"));
    fs::write(&cert, made.cert.pem()).unwrap();
    fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mount = format!("/={}", tree.www().display());
    let mut command = Command::new(BIN);
    command
        .args([
            "--bind",
            &addr.to_string(),
            "--shards",
            "1",
            "--static",
            &mount,
        ])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key);
    let mut shardd = Process::spawn(command);
    shardd.wait_for_line("serving on", Duration::from_secs(10));
    let url = format!("https://localhost:{}/big.bin", addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    let fetch = |args: &[&str]| {
        let output = Command::new("curl")
            .args(["-sS", "-k", "--max-time", "20", "--resolve", &resolve])
            .args(args)
            .arg(&url)
            .output()
            .expect("run curl");
        assert!(output.status.success(), "curl {args:?}: {output:?}");
        output.stdout
    };
    for protocol in ["--http1.1", "--http2"] {
        assert!(fetch(&[protocol]) == big, "{protocol}: the whole file");
        let part = fetch(&[protocol, "-r", "70000-199999"]);
        assert!(
            part == big[70_000..200_000],
            "{protocol}: a range across chunks"
        );
    }
}
