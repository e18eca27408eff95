//! `sessiondir torture`: a short run of the crash-and-load torture must pass its verification,
//! and the verifier must catch each kind of damage done to the store before it runs.

use std::path::Path;

use serde_json::Value as Json;
use sessiondir::{Dict, Store};

use crate::common::{Out, sessiondir};

fn torture(dir: &Path, extra: &[&str]) -> Out {
    let mut args = vec![
        "torture".to_string(),
        "--dir".into(),
        dir.display().to_string(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    sessiondir(args)
}

fn count(report: &Json, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing from {report}"))
}

#[test]
fn a_short_run_with_kills_loses_nothing_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = torture(
        tmp.path(),
        &["--workers", "4", "--seconds", "4", "--payload", "4096"],
    );
    out.ok();
    let r = out.json_one();
    assert_eq!(r["ok"], Json::Bool(true), "{r}");
    for zero in [
        "lost_updates",
        "phantom_updates",
        "corrupt",
        "still_locked",
        "resurrected",
        "leftover_temp_files",
        "unexpected_errors",
        "worker_failures",
    ] {
        assert_eq!(count(&r, zero), 0, "{zero} in {r}");
    }
    assert_eq!(r["reopen_ok"], Json::Bool(true), "{r}");
    // The run really did something and really killed workers.
    let kills = count(&r, "kills");
    assert!(kills >= 10, "only {kills} kills in 4 s: {r}");
    assert_eq!(count(&r, "incarnations"), 4 + kills, "{r}");
    assert!(count(&r, "in_flight_at_kill") <= kills, "{r}");
    let acked = count(&r, "pool_increments_acknowledged");
    assert!(acked > 100, "{r}");
    assert!(count(&r, "sessions_checked") > 3, "{r}");
    for op in [
        "pool-inc", "create", "inc", "cycle", "delete", "touch", "gc", "tidy",
    ] {
        assert!(
            r["ops_by_kind"][op].as_u64().unwrap_or(0) > 0,
            "no {op} acknowledged: {r}"
        );
    }

    // Check the verifier's own figures with the library, independently.
    let store = Store::builder(tmp.path().join("store"))
        .create_if_missing(false)
        .open()
        .unwrap();
    let pool: Vec<String> = std::fs::read_to_string(tmp.path().join("pool-ids"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut landed = 0;
    for id in store.ids() {
        let id = id.unwrap();
        match store.try_checkout::<Dict>(&id) {
            Ok(co) if pool.iter().any(|p| p == id.as_str()) => {
                landed += co
                    .data()
                    .iter()
                    .filter(|(k, _)| k.starts_with('w'))
                    .map(|(_, v)| v.as_i64().unwrap())
                    .sum::<i64>();
            }
            Ok(_) => {}
            Err(e) if e.is_gone() => {}
            Err(e) => panic!("session {} after the run: {e}", id.as_str()),
        }
    }
    assert_eq!(landed as u64, count(&r, "pool_increments_landed"), "{r}");
    assert!(
        landed as u64 >= acked,
        "{landed} landed < {acked} acknowledged"
    );
    let temps = walkdir::WalkDir::new(tmp.path().join("store"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(temps, 0);
}

/// Runs a short torture with damage done before verification: exit code 4 and `key` > 0.
fn tampered(how: &str, key: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = torture(
        tmp.path(),
        &["--workers", "2", "--seconds", "1", "--tamper", how],
    );
    out.expect_code(4);
    let r = out.json_one();
    assert_eq!(r["ok"], Json::Bool(false), "{r}");
    assert!(count(&r, key) > 0, "{key} not caught: {r}");
    assert!(
        out.stderr.contains("failed verification"),
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn the_verifier_catches_an_undone_acknowledged_increment() {
    tampered("lost", "lost_updates");
}

#[test]
fn the_verifier_catches_a_corrupt_session() {
    tampered("corrupt", "corrupt");
}

#[test]
fn the_verifier_catches_a_lock_still_held_and_a_temporary_file_left() {
    tampered("locked", "still_locked");
    tampered("locked", "leftover_temp_files");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = torture(tmp.path(), &["--kill-min-ms", "50", "--kill-max-ms", "10"]);
    out.expect_code(2);
    assert!(out.stderr.contains("--kill-min-ms 50"), "{}", out.stderr);

    std::fs::write(tmp.path().join("something"), b"x").unwrap();
    let out = torture(tmp.path(), &["--seconds", "1"]);
    out.expect_code(2);
    assert!(out.stderr.contains("is not empty"), "{}", out.stderr);
    // Nothing was created in the foreign directory.
    let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}
