//! The admin port's `/status` page in a real browser: headless Chromium
//! loads it from a running server with traffic on both shards (three
//! requests on shard 0 for each on shard 1), runs its script for a few
//! polls of `status.json` (virtual time), and the DOM it leaves must hold
//! a requests/s line and a p99 line per shard, the share bars with the
//! imbalance flagged, and a rate in every row of the table.
//!
//! Chromium must be installed (`apt-get install -y chromium`; `.ci/run`
//! does it). Without it this test fails; it does not skip. `CHROMIUM=/path`
//! picks another binary.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::browser::{chromium_binary, dump_dom};
use support::{config, shard_of, Client, TestServer};

/// Virtual time the page runs for: about this many polls, a second apart.
const VIRTUAL_TIME_MS: u32 = 6_000;
/// The traffic stops after this long in any case.
const TRAFFIC_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn the_status_page_draws_each_shards_rate_and_latency_and_flags_the_imbalance() {
    let chromium = chromium_binary();
    let mut config = config(2);
    config.admin = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = TestServer::start(config);
    let admin = server.handle.admin_addr().expect("the admin port is on");

    let traffic = Traffic::start(&server);
    let dom = dump_dom(
        &chromium,
        &format!("http://{admin}/status"),
        VIRTUAL_TIME_MS,
    );
    let served = traffic.stop();
    assert!(served.iter().all(|&n| n > 0), "traffic: {served:?}");

    for chart in ["rate-chart", "p99-chart"] {
        let svg = element_with_id(&dom, chart);
        for shard in 0..2 {
            let points = polyline_points(svg, shard)
                .unwrap_or_else(|| panic!("{chart}: no line for shard {shard}\n{svg}"));
            assert!(
                points.len() >= 2,
                "{chart}: shard {shard}'s line has {} points: a few polls should have drawn more\n{svg}",
                points.len()
            );
            // y grows downwards; the baseline (0) is the largest y of a gridline.
            let highest = points.iter().map(|&(_, y)| y).fold(f64::MAX, f64::min);
            assert!(
                highest < baseline(svg),
                "{chart}: shard {shard}'s line stays at 0\n{svg}"
            );
        }
    }

    // Shard 0 served about three times what shard 1 did: flagged.
    let imbalance = element_with_id(&dom, "imbalance-total");
    assert!(
        imbalance.contains("class=\"alert\"") && imbalance.contains('×'),
        "the imbalance is not flagged: {imbalance}"
    );
    let share = element_with_id(&dom, "share-total");
    assert!(share.contains("0: ") && share.contains("1: "), "{share}");

    let rate_cells: Vec<&str> = dom.split("<td class=\"rate\">").skip(1).collect();
    assert_eq!(rate_cells.len(), 3, "a rate per shard and a total\n{dom}");
    for cell in rate_cells {
        let text = &cell[..cell.find("</td>").unwrap()];
        assert!(
            text.chars().any(|c| c.is_ascii_digit()) && text != "0",
            "a requests/s cell reads {text:?}"
        );
    }
}

/// Chromium: `$CHROMIUM`, else `chromium` or `chromium-browser` on `PATH`.
/// From `id="..."` to the end of that element (the next closing tag of its name).
fn element_with_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id}\n{dom}"));
    let start = dom[..at].rfind('<').unwrap();
    let name: String = dom[start + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let end = dom[start..].find(&format!("</{name}>")).unwrap();
    &dom[start..start + end]
}

/// The points of the `<polyline>` drawn for `shard`.
fn polyline_points(svg: &str, shard: usize) -> Option<Vec<(f64, f64)>> {
    let tag = svg
        .split("<polyline")
        .skip(1)
        .map(|rest| &rest[..rest.find('>').unwrap()])
        .find(|tag| tag.contains(&format!("data-shard=\"{shard}\"")))?;
    let points = attribute(tag, "points")?;
    Some(
        points
            .split_whitespace()
            .map(|pair| {
                let (x, y) = pair.split_once(',').expect("x,y");
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect(),
    )
}

/// The largest y of the chart's gridlines: where 0 is.
fn baseline(svg: &str) -> f64 {
    svg.split("<line")
        .skip(1)
        .filter_map(|rest| attribute(&rest[..rest.find('>').unwrap()], "y1"))
        .map(|y| y.parse::<f64>().unwrap())
        .fold(f64::MIN, f64::max)
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')?;
    Some(&tag[start..start + end])
}

/// Requests on two keep-alive connections, one on each shard: three on
/// shard 0's for each on shard 1's, until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<[u64; 2]>,
}

impl Traffic {
    fn start(server: &TestServer) -> Traffic {
        let mut by_shard: [Option<Client>; 2] = [None, None];
        while by_shard.iter().any(Option::is_none) {
            let mut client = server.connect();
            let shard = shard_of(&mut client);
            by_shard[shard].get_or_insert(client);
        }
        let [Some(mut busy), Some(mut quiet)] = by_shard else {
            unreachable!()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            let until = Instant::now() + TRAFFIC_LIMIT;
            let mut served = [0; 2];
            while !stopping.load(SeqCst) && Instant::now() < until {
                for _ in 0..3 {
                    assert_eq!(busy.get("/").status, 200);
                    served[0] += 1;
                }
                assert_eq!(quiet.get("/").status, 200);
                served[1] += 1;
            }
            served
        });
        Traffic { stop, thread }
    }

    /// Stop; the requests served on each shard.
    fn stop(self) -> [u64; 2] {
        self.stop.store(true, SeqCst);
        self.thread.join().expect("the traffic thread")
    }
}
