//! The deployment kit in `config/` agrees with itself and with the binary.
//! (`config/nginx/shardd-upstream.conf` is run for real by
//! `tests/load_balancer.rs`.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_shardd");
const KUBERNETES: &str = include_str!("../config/kubernetes/shardd.yaml");

/// Flags the kit uses before the binary has them (the admin port is being
/// added on another branch); each is allowed to be missing from `--help`.
const COMING: &[&str] = &["--admin"];

/// The value after `key:` on the first line that starts with it (indentation aside).
fn yaml_value<'a>(yaml: &'a str, key: &str) -> &'a str {
    yaml.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("shardd.yaml has no {key}"))
        .trim()
}

/// The lines indented under the first `key:` line.
fn yaml_block(yaml: &str, key: &str) -> String {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut lines = yaml
        .lines()
        .skip_while(|line| line.trim() != format!("{key}:"));
    let head = lines
        .next()
        .unwrap_or_else(|| panic!("shardd.yaml has no {key}"));
    lines
        .take_while(|line| indent(line) > indent(head))
        .map(|line| format!("{}\n", line.trim()))
        .collect()
}

/// The container's arguments: the `- --flag=value` lines.
fn container_args(yaml: &str) -> Vec<&str> {
    yaml.lines()
        .filter_map(|line| line.trim().strip_prefix("- --"))
        .map(|arg| &arg[..arg.find(' ').unwrap_or(arg.len())])
        .collect()
}

#[test]
fn kubernetes_grace_period_outlasts_the_pre_stop_sleep_and_the_drain() {
    let grace: u64 = yaml_value(KUBERNETES, "terminationGracePeriodSeconds")
        .parse()
        .expect("terminationGracePeriodSeconds is a number");
    let drain_ms: u64 = container_args(KUBERNETES)
        .iter()
        .find_map(|arg| arg.strip_prefix("drain-timeout-ms="))
        .expect("the container sets --drain-timeout-ms")
        .parse()
        .expect("--drain-timeout-ms is a number");
    let pre_stop = yaml_value(KUBERNETES, "command");
    let sleep: u64 = pre_stop
        .strip_prefix("[\"sleep\", \"")
        .and_then(|rest| rest.strip_suffix("\"]"))
        .unwrap_or_else(|| panic!("preStop is [\"sleep\", \"N\"], not {pre_stop}"))
        .parse()
        .expect("the preStop sleep is a number of seconds");
    assert!(
        grace * 1000 > sleep * 1000 + drain_ms,
        "terminationGracePeriodSeconds {grace} must exceed the preStop sleep ({sleep} s) \
         plus drain_timeout_ms ({drain_ms}), or Kubernetes kills a draining shardd"
    );
}

#[test]
fn kubernetes_probes_ask_the_admin_port() {
    let admin = container_args(KUBERNETES)
        .into_iter()
        .find_map(|arg| arg.strip_prefix("admin="))
        .expect("the container sets --admin");
    let port = admin.rsplit(':').next().unwrap();
    let lines: Vec<&str> = KUBERNETES.lines().map(str::trim).collect();
    let named_admin = format!("containerPort: {port}");
    assert!(
        lines
            .windows(2)
            .any(|pair| pair[0] == "- name: admin" && pair[1] == named_admin),
        "a container port named admin is {port}"
    );
    for (probe, path) in [
        ("readinessProbe", "/health/ready"),
        ("livenessProbe", "/health/live"),
    ] {
        let probe_text = yaml_block(KUBERNETES, probe);
        assert!(
            probe_text.contains(&format!("path: {path}\n")) && probe_text.contains("port: admin\n"),
            "{probe} asks {path} on the admin port: {probe_text}"
        );
    }
}

#[test]
fn kubernetes_args_are_flags_the_binary_knows() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for arg in container_args(KUBERNETES) {
        let flag = format!("--{}", &arg[..arg.find('=').unwrap_or(arg.len())]);
        assert!(
            help.contains(&format!("{flag} "))
                || help.contains(&format!("{flag}\n"))
                || COMING.contains(&flag.as_str()),
            "shardd --help does not list {flag}, used in config/kubernetes/shardd.yaml"
        );
    }
}
