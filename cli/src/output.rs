//! Rendering for humans and for machines: times, sizes, JSON lines, progress spinners.

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value as Json, json};

use sessiondir::{SessionInfo, Value};

/// RFC 3339 UTC, to the second.
pub fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

pub fn opt_time(t: Option<SystemTime>) -> String {
    t.map_or_else(|| "never".to_string(), time)
}

/// Milliseconds since the Unix epoch, for JSON.
pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
    ))
    .to_string()
}

/// A session's header as JSON (times in milliseconds since the Unix epoch).
pub fn info_json(info: &SessionInfo) -> Json {
    json!({
        "id": info.id.as_str(),
        "created_ms": epoch_ms(info.created),
        "modified_ms": epoch_ms(info.modified),
        "expires_ms": info.expires.map(epoch_ms),
        "idle_ttl_ms": info.idle_ttl.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        "generation": info.generation,
        "size": info.file_len(),
        "expired": info.is_expired(),
    })
}

/// A dictionary value as JSON; bytes become `{"bytes": "<hex>"}`.
pub fn value_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::Text(s) => json!(s),
        Value::Bytes(b) => {
            json!({ "bytes": b.iter().map(|x| format!("{x:02x}")).collect::<String>() })
        }
        Value::List(items) => Json::Array(items.iter().map(value_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), value_json(v))).collect()),
        // `Value` is non-exhaustive only in spirit; keep the match total for new variants.
        #[allow(unreachable_patterns)]
        _ => Json::Null,
    }
}

/// Writes one JSON value on its own line.
pub fn json_line(out: &mut impl Write, v: &Json) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")
}

/// A spinner on stderr when it is a terminal; `None` otherwise (pipes and CI stay clean).
pub fn spinner(message: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}
