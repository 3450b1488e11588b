//! A page and its assets through the static-file service in a real
//! browser: headless Chromium loads `index.html` from a running server,
//! which pulls a stylesheet, a script (sent from its gzip sibling, as the
//! browser accepts gzip), an image and a JSON file the script fetches; the
//! script writes what it saw into the page, and the DOM Chromium leaves
//! must show that each arrived and was used.
//!
//! Chromium must be installed (`apt-get install -y chromium`; the README's
//! test command does it). Without it this test fails; it does not skip.
//! `CHROMIUM=/path` picks another binary.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use shardd::files::{StaticSettings, WithStaticFiles};
use shardd::TechEmpower;
use support::browser::{chromium_binary, dump_dom};
use support::{config, TestServer};

/// A 1×1 PNG.
const PIXEL: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

const INDEX: &str = r#"<!doctype html>
<html><head><title>assets</title>
<link rel="stylesheet" href="style/site.css">
<script defer src="app.js"></script>
</head><body>
<h1 id="title">assets</h1>
<img id="pixel" src="img/pixel.png">
<div id="result">not run</div>
</body></html>
"#;

const SCRIPT: &str = r#"
window.addEventListener('load', async () => {
  const colour = getComputedStyle(document.getElementById('title')).color;
  const pixel = document.getElementById('pixel').naturalWidth;
  let json = 'failed';
  try { json = (await (await fetch('data/hello.json')).json()).greeting; } catch (e) { json = 'error ' + e; }
  document.getElementById('result').textContent =
    `script=ran colour=${colour} pixel=${pixel} json=${json}`;
});
"#;

#[test]
fn a_browser_loads_a_page_with_its_stylesheet_script_image_and_data() {
    let chromium = chromium_binary();
    let root = std::env::temp_dir().join(format!("shardd-static-browser-{}", std::process::id()));
    let www = root.join("www");
    for dir in ["style", "img", "data"] {
        fs::create_dir_all(www.join(dir)).unwrap();
    }
    fs::write(www.join("index.html"), INDEX).unwrap();
    fs::write(
        www.join("style/site.css"),
        "#title { color: rgb(0, 128, 128); }\n",
    )
    .unwrap();
    fs::write(www.join("app.js"), SCRIPT).unwrap();
    gzip_beside(&www.join("app.js"));
    // The plain script is replaced by one that says so: only the gzip
    // sibling runs the real script, so the page shows it was chosen.
    fs::write(
        www.join("app.js"),
        "document.title = 'plain script served';\n",
    )
    .unwrap();
    fs::write(www.join("img/pixel.png"), PIXEL).unwrap();
    fs::write(
        www.join("data/hello.json"),
        r#"{"greeting":"hi from shardd"}"#,
    )
    .unwrap();

    let settings = vec![StaticSettings::new("/site", &www)];
    let server = TestServer::start_with(config(1), move |_| {
        WithStaticFiles::open(&settings, TechEmpower).expect("the test's directory opens")
    });
    let dom = dump_dom(&chromium, &format!("http://{}/site/", server.addr), 3_000);
    let _ = fs::remove_dir_all(&root);

    let result = dom
        .split("id=\"result\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no result element in\n{dom}"));
    assert_eq!(
        result, "script=ran colour=rgb(0, 128, 128) pixel=1 json=hi from shardd",
        "the page's script reports what arrived\n{dom}"
    );
    let requests = server.stats().shards[0].requests;
    assert!(
        requests >= 5,
        "page, stylesheet, script, image, data: {requests} requests"
    );
}

/// `gzip -k FILE`: FILE.gz beside it.
fn gzip_beside(file: &Path) {
    let status = Command::new("gzip").arg("-k").arg(file).status();
    assert!(
        status.expect("gzip runs").success(),
        "gzip -k {}",
        file.display()
    );
}
