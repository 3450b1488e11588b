//! The binary's logger: `tracing-subscriber` on stderr, filtered by
//! `RUST_LOG` (default `info`), as text or as one JSON object per line.
//!
//! The library logs through the `log` facade; those records are bridged
//! into `tracing` (`tracing-log`), so one subscriber formats everything.

use std::fmt;
use std::io::IsTerminal;

use serde_json::Value;
use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

use shardd::LogFormat;

/// Install the logger; call once, before anything logs.
pub(crate) fn init(format: LogFormat) {
    let mut filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    // rustls warns once per handshake about a client that sends an IP
    // address as its server name (wrk, some health checkers): thousands of
    // lines a second under load for a harmless quirk. Its errors still
    // show; RUST_LOG=rustls=warn brings the warnings back.
    if std::env::var("RUST_LOG").map_or(true, |spec| !spec.contains("rustls")) {
        if let Ok(quiet) = "rustls=error".parse() {
            filter = filter.add_directive(quiet);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` also installs the `log` bridge; it fails only if a logger
    // is already installed, and then that one is kept.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_thread_names(true)
            .try_init(),
        LogFormat::Json => builder.event_format(JsonLines).try_init(),
    };
}

/// One flat JSON object per event:
/// `{"timestamp":"…Z","level":"INFO","target":"shardd::server","thread":"acceptor","message":"…"}`,
/// then any other fields of the event. (`tracing-subscriber`'s own JSON
/// format repeats the `log.*` fields of bridged records; this one does not.)
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut fields = vec![
            ("timestamp", Value::from(timestamp)),
            ("level", meta.level().as_str().into()),
            ("target", meta.target().into()),
        ];
        if let Some(thread) = std::thread::current().name() {
            fields.push(("thread", thread.into()));
        }
        event.record(&mut Fields(&mut fields));
        // In this order (a serde_json map would sort the keys).
        writer.write_char('{')?;
        for (at, (name, value)) in fields.iter().enumerate() {
            let separator = if at == 0 { "" } else { "," };
            write!(writer, "{separator}{}:{value}", Value::from(*name))?;
        }
        writer.write_str("}\n")
    }
}

/// Collects an event's fields, less the `log.*` metadata of bridged records.
struct Fields<'a>(&'a mut Vec<(&'static str, Value)>);

impl Fields<'_> {
    fn insert(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if !name.starts_with("log.") {
            self.0.push((name.trim_start_matches("r#"), value));
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, format!("{value:?}").into());
    }
}
