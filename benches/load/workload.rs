//! The workloads: their names on the command line and the request batch
//! each writes (TechEmpower plaintext requests).

/// The `Accept` header TechEmpower's toolset sends (as in ../shared/peers/bench.sh).
const TFB_ACCEPT: &str =
    "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// TechEmpower plaintext: `depth` requests per write, keep-alive.
    Pipeline,
    /// One request at a time per connection, keep-alive.
    KeepAlive,
    /// A new connection per request, `Connection: close`.
    Churn,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Pipeline => "pipeline",
            Workload::KeepAlive => "keepalive",
            Workload::Churn => "churn",
        }
    }

    pub fn parse(name: &str) -> Result<Workload, String> {
        match name {
            "pipeline" | "pipelined" => Ok(Workload::Pipeline),
            "keepalive" | "keep-alive" => Ok(Workload::KeepAlive),
            "churn" | "close" => Ok(Workload::Churn),
            _ => Err(format!(
                "unknown workload {name:?} (pipeline, keepalive, churn)"
            )),
        }
    }

    /// The bytes written per batch, and the requests they hold: `depth`
    /// requests for the pipeline, one otherwise.
    pub fn request_batch(self, port: u16, path: &str, depth: usize) -> (Vec<u8>, usize) {
        let connection = if self == Workload::Churn {
            "close"
        } else {
            "keep-alive"
        };
        let one = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {TFB_ACCEPT}\r\nConnection: {connection}\r\n\r\n"
        );
        let n = if self == Workload::Pipeline { depth } else { 1 };
        (one.repeat(n).into_bytes(), n)
    }
}
