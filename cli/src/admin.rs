//! The admin commands: ls, show, rm, gc, tidy, stats, watch.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use sessiondir::{ChangeKind, Dict, Error, GcPolicy, Observer, Refused, SessionId};

use super::output::{self, info_json, json_line, value_json};
use super::{Failure, StoreArgs, open_existing, parse_duration, parse_id};

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only sessions whose expiry time has passed.
    #[arg(long)]
    expired: bool,
    /// Only sessions not checked in or touched for longer than this (e.g. 30m, 2h).
    #[arg(long, value_parser = parse_duration)]
    idle: Option<Duration>,
}

pub fn ls(a: &LsArgs) -> Result<(), Failure> {
    let store = a.store.open()?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    if !a.store.json {
        writeln!(
            out,
            "{:<32}  {:<20}  {:<20}  {:<20}  {:>8}  held",
            "id", "created", "modified", "expires", "size"
        )?;
    }
    let mut damaged = 0u64;
    for info in store.sessions() {
        let info = match info {
            Ok(info) => info,
            Err(e) => {
                damaged += 1;
                eprintln!("sessiondir: warning: {e}");
                continue;
            }
        };
        if a.expired && !info.is_expired() {
            continue;
        }
        if a.idle.is_some_and(|d| info.idle_for() <= d) {
            continue;
        }
        let held = store.is_checked_out(&info.id)?;
        if a.store.json {
            let mut v = info_json(&info);
            v["checked_out"] = json!(held);
            json_line(&mut out, &v)?;
        } else {
            writeln!(
                out,
                "{:<32}  {:<20}  {:<20}  {:<20}  {:>8}  {}",
                info.id,
                output::time(info.created),
                output::time(info.modified),
                output::opt_time(info.expires),
                info.file_len(),
                if held { "yes" } else { "no" }
            )?;
        }
    }
    out.flush()?;
    damaged_result(damaged)
}

/// `ls`, `stats` and `gc` all finish their work over the sound sessions, then agree on the
/// outcome: exit 5 if any session file was damaged, so that a script or cron job notices.
fn damaged_result(damaged: u64) -> Result<(), Failure> {
    if damaged == 0 {
        Ok(())
    } else {
        Err(Failure::Damaged(damaged))
    }
}

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The session id.
    id: String,
}

pub fn show(a: &ShowArgs) -> Result<(), Failure> {
    let id = parse_id(&a.id)?;
    let store = a.store.open()?;
    let info = store.info(&id)?.ok_or(Error::NotFound { id })?;
    let held = store.is_checked_out(&id)?;
    // Dictionary sessions are shown in full; other types are opaque to this tool.
    let data = match store.inspect::<Dict>(&id) {
        Ok(snapshot) => snapshot.map(|s| s.data),
        Err(Error::Decode { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    if a.store.json {
        let mut v = info_json(&info);
        v["checked_out"] = json!(held);
        v["path"] = json!(store.session_path(&id));
        v["lock_path"] = json!(store.lock_path(&id));
        v["data"] = data.as_ref().map_or(serde_json::Value::Null, |d| {
            serde_json::Value::Object(
                d.iter()
                    .map(|(k, v)| (k.to_string(), value_json(v)))
                    .collect(),
            )
        });
        json_line(&mut out, &v)?;
        return Ok(());
    }
    writeln!(out, "id           {id}")?;
    writeln!(out, "path         {}", store.session_path(&id).display())?;
    writeln!(out, "lock file    {}", store.lock_path(&id).display())?;
    writeln!(out, "created      {}", output::time(info.created))?;
    writeln!(out, "modified     {}", output::time(info.modified))?;
    let expired = if info.is_expired() { " (expired)" } else { "" };
    writeln!(
        out,
        "expires      {}{expired}",
        output::opt_time(info.expires)
    )?;
    if let Some(ttl) = info.idle_ttl {
        writeln!(out, "idle ttl     {}", output::duration(ttl))?;
    }
    writeln!(out, "generation   {}", info.generation)?;
    writeln!(out, "size         {} bytes", info.file_len())?;
    writeln!(out, "checked out  {}", if held { "yes" } else { "no" })?;
    match data {
        Some(d) => {
            writeln!(out, "data         {} keys", d.len())?;
            for (k, v) in d.iter() {
                writeln!(out, "  {k:?}: {v}")?;
            }
        }
        None => writeln!(
            out,
            "data         {} bytes, not a sessiondir::Dict",
            info.payload_len
        )?,
    }
    Ok(())
}

#[derive(Args)]
pub struct RmArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// How long to wait for a holder of the session.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
    /// The session id.
    id: String,
}

pub fn rm(a: &RmArgs) -> Result<(), Failure> {
    let id = parse_id(&a.id)?;
    let builder = a.store.builder().lock_timeout(a.timeout);
    let announce = Arc::new(AnnounceWait { timeout: a.timeout });
    let store = open_existing(&a.store.dir, builder.observer(announce))?;
    if !store.delete(&id)? {
        return Err(Error::NotFound { id }.into());
    }
    let mut out = std::io::stdout().lock();
    if a.store.json {
        json_line(&mut out, &json!({ "deleted": id.as_str() }))?;
    } else {
        writeln!(out, "deleted {id}")?;
    }
    Ok(())
}

/// Tells the user, on stderr, that `rm` found the session held and waits for it (cargo's "Blocking
/// waiting for file lock"): the library announces the wait before it starts it.
struct AnnounceWait {
    timeout: Duration,
}

impl Observer for AnnounceWait {
    fn waiting(&self, id: &SessionId) {
        eprintln!(
            "sessiondir: waiting for session {id}, held by another process (giving up after {}; \
             --timeout sets it)",
            output::duration(self.timeout)
        );
    }
}

#[derive(Args)]
pub struct GcArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Delete sessions whose expiry time has passed (the default if no criterion is given).
    #[arg(long)]
    expired: bool,
    /// Delete sessions not checked in or touched for longer than this (e.g. 30m, 7d).
    #[arg(long, value_parser = parse_duration)]
    idle: Option<Duration>,
}

pub fn gc(a: &GcArgs) -> Result<(), Failure> {
    let store = a.store.open()?;
    let policy = GcPolicy {
        expired: a.expired || a.idle.is_none(),
        idle_longer_than: a.idle,
    };
    let bar = output::spinner("scanning");
    let report = store.gc_with_progress(policy, |r| {
        if let Some(bar) = &bar {
            bar.set_message(format!(
                "scanned {}, deleted {}, skipped {}",
                r.scanned, r.deleted, r.skipped_busy
            ));
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut out = std::io::stdout().lock();
    if a.store.json {
        json_line(
            &mut out,
            &json!({
                "scanned": report.scanned,
                "deleted": report.deleted,
                "skipped_busy": report.skipped_busy,
                "damaged": report.damaged,
                "refused": refused_json(&report.refused),
                "bytes_freed": report.bytes_freed,
                "forwards_removed": report.forwards_removed,
                "elapsed_ms": report.elapsed.as_millis() as u64,
            }),
        )?;
    } else {
        writeln!(
            out,
            "scanned {}, deleted {}, skipped {} checked out, {} damaged, {} bytes freed in {}; \
             removed {} expired forwarding records",
            report.scanned,
            report.deleted,
            report.skipped_busy,
            report.damaged,
            report.bytes_freed,
            output::duration(report.elapsed),
            report.forwards_removed
        )?;
        refused_lines(&mut out, &report.refused)?;
    }
    out.flush()?;
    // A refused path (exit 2) says more than damaged files (exit 5).
    refused_result(&report.refused)?;
    damaged_result(report.damaged)
}

/// The refused paths of a gc or tidy report, for `--json`.
fn refused_json(refused: &[Refused]) -> serde_json::Value {
    refused
        .iter()
        .map(|r| json!({"path": r.path, "reason": r.reason}))
        .collect()
}

/// One line per refused path, after the report's summary.
fn refused_lines(out: &mut impl Write, refused: &[Refused]) -> std::io::Result<()> {
    for r in refused {
        writeln!(out, "refused {r}")?;
    }
    Ok(())
}

/// A pass that refused a path exits 2: the store is not as it made it, and only an operator
/// can tell a mistake from an attack (README, exit codes).
fn refused_result(refused: &[Refused]) -> Result<(), Failure> {
    if refused.is_empty() {
        return Ok(());
    }
    Err(Failure::Usage(format!(
        "refused {} path(s) inside the store (listed above): never followed nor removed; \
         look at each, and remove what is not the store's",
        refused.len()
    )))
}

pub fn tidy(a: &StoreArgs) -> Result<(), Failure> {
    let store = a.open()?;
    let start = Instant::now();
    let report = store.tidy()?;
    let mut out = std::io::stdout().lock();
    if a.json {
        json_line(
            &mut out,
            &json!({
                "temp_files_removed": report.temp_files_removed,
                "orphan_locks_removed": report.orphan_locks_removed,
                "orphan_spares_removed": report.orphan_spares_removed,
                "skipped_busy": report.skipped_busy,
                "failed": report.failed,
                "refused": refused_json(&report.refused),
                "bytes_freed": report.bytes_freed,
                "elapsed_ms": start.elapsed().as_millis() as u64,
            }),
        )?;
    } else {
        writeln!(
            out,
            "removed {} temporary files ({} bytes), {} orphaned lock files and {} orphaned spare files; skipped {} in use{}",
            report.temp_files_removed,
            report.bytes_freed,
            report.orphan_locks_removed,
            report.orphan_spares_removed,
            report.skipped_busy,
            if report.failed > 0 {
                format!("; {} could not be judged or removed", report.failed)
            } else {
                String::new()
            }
        )?;
        refused_lines(&mut out, &report.refused)?;
    }
    refused_result(&report.refused)
}

pub fn stats(a: &StoreArgs) -> Result<(), Failure> {
    let store = a.open()?;
    let mut per_shard = vec![0u64; store.fan_out() as usize];
    let (mut sessions, mut bytes, mut expired, mut held, mut damaged) = (0u64, 0u64, 0, 0, 0);
    for info in store.sessions() {
        let info = match info {
            Ok(info) => info,
            Err(e) => {
                damaged += 1;
                eprintln!("sessiondir: warning: {e}");
                continue;
            }
        };
        sessions += 1;
        bytes += info.file_len();
        expired += u64::from(info.is_expired());
        held += u64::from(store.is_checked_out(&info.id)?);
        per_shard[store.shard_of(&info.id) as usize] += 1;
    }
    let min = per_shard.iter().copied().min().unwrap_or(0);
    let max = per_shard.iter().copied().max().unwrap_or(0);
    let mean = sessions as f64 / per_shard.len().max(1) as f64;
    let mut out = std::io::stdout().lock();
    if a.json {
        json_line(
            &mut out,
            &json!({
                "dir": store.dir(),
                "sessions": sessions,
                "bytes": bytes,
                "expired": expired,
                "checked_out": held,
                "damaged": damaged,
                "fan_out": store.fan_out(),
                "shard_min": min,
                "shard_max": max,
                "shard_mean": mean,
            }),
        )?;
    } else {
        writeln!(out, "store        {}", store.dir().display())?;
        writeln!(out, "sessions     {sessions} ({bytes} bytes)")?;
        writeln!(out, "expired      {expired}")?;
        writeln!(out, "checked out  {held}")?;
        writeln!(out, "damaged      {damaged}")?;
        writeln!(
            out,
            "shards       {} (sessions per shard: min {min}, mean {mean:.1}, max {max})",
            store.fan_out()
        )?;
    }
    out.flush()?;
    damaged_result(damaged)
}

#[derive(Args)]
pub struct WatchArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Stop after this many changes (default: run until interrupted).
    #[arg(long)]
    count: Option<u64>,
}

pub fn watch(a: &WatchArgs) -> Result<(), Failure> {
    let store = a.store.open()?;
    let watch = store.watch()?;
    let mut out = std::io::stdout().lock();
    let mut seen = 0u64;
    if a.count == Some(0) {
        return Ok(());
    }
    for change in watch {
        let change = match change {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sessiondir: warning: {e}");
                continue;
            }
        };
        let kind = match change.kind {
            ChangeKind::Created => "created",
            ChangeKind::CheckedIn => "checked-in",
            ChangeKind::Deleted => "deleted",
        };
        if a.store.json {
            json_line(
                &mut out,
                &json!({
                    "event": kind,
                    "id": change.id.as_str(),
                    "generation": change.generation,
                    "seen_ms": output::epoch_ms(change.seen),
                }),
            )?;
        } else {
            let generation = change
                .generation
                .map(|g| format!(" generation {g}"))
                .unwrap_or_default();
            writeln!(
                out,
                "{}  {kind:<10}  {}{generation}",
                output::time(change.seen),
                change.id
            )?;
        }
        out.flush()?;
        seen += 1;
        if a.count.is_some_and(|n| seen >= n) {
            break;
        }
    }
    Ok(())
}
