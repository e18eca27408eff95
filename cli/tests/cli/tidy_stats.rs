//! `sessiondir tidy` (leftovers of crashed writers) and `sessiondir stats` (exact counts).

use std::path::PathBuf;

use sessiondir::{Dict, SessionId};

use crate::common::{Env, exists};

/// Plants a writer's temporary file `.<id>.<suffix>.tmp` of `len` bytes next to the session.
fn plant_temp(env: &Env, id: &SessionId, suffix: &str, len: usize) -> PathBuf {
    let dir = env
        .store
        .session_path(id)
        .parent()
        .expect("shard dir")
        .to_path_buf();
    let path = dir.join(format!(".{id}.{suffix}.tmp"));
    std::fs::write(&path, vec![b'x'; len]).unwrap();
    path
}

/// Leaves an orphaned lock file: the session file vanishes as if a delete crashed between
/// unlinking the session file and its lock file.
#[allow(clippy::disallowed_methods)] // simulating a crash in the middle of a delete
fn orphan_lock(env: &Env) -> SessionId {
    let id = env.session(99);
    std::fs::remove_file(env.store.session_path(&id)).unwrap();
    id
}

#[test]
fn tidy_removes_stale_temp_files_and_orphan_locks_with_exact_counts() {
    let env = Env::new();
    let a = env.session(1);
    let stale = plant_temp(&env, &a, "k3j5h2", 100);
    let orphan = orphan_lock(&env);
    let held_id = env.session(2);
    let busy_temp = plant_temp(&env, &held_id, "q7w8e9", 33);
    let held = env.store.checkout::<Dict>(&held_id).unwrap();

    let out = env.run("tidy", &["--json"]);
    out.ok();
    let v = out.json_one();
    assert_eq!(v["temp_files_removed"], 1, "{v}");
    assert_eq!(v["orphan_locks_removed"], 1, "{v}");
    assert_eq!(v["skipped_busy"], 1, "{v}");
    assert_eq!(v["bytes_freed"], 100, "{v}");
    assert!(v["elapsed_ms"].is_u64(), "{v}");
    assert!(!exists(&stale));
    assert!(
        exists(&busy_temp),
        "a held session's temp file may be a live writer's"
    );
    // Sessions are untouched.
    assert_eq!(
        env.store
            .load::<Dict>(&a)
            .unwrap()
            .unwrap()
            .get_i64("counter"),
        Some(1)
    );
    assert!(env.store.info(&orphan).unwrap().is_none());
    drop(held);

    // Released: the second temp file goes; the orphan lock is gone already.
    let v = env.run("tidy", &["--json"]).ok().json_one();
    assert_eq!(v["temp_files_removed"], 1, "{v}");
    assert_eq!(v["orphan_locks_removed"], 0, "{v}");
    assert_eq!(v["skipped_busy"], 0, "{v}");
    assert_eq!(v["bytes_freed"], 33, "{v}");
    assert!(!exists(&busy_temp));

    // Nothing left: the text report.
    let out = env.run("tidy", &[]);
    out.ok();
    assert_eq!(
        out.stdout,
        "removed 0 temporary files (0 bytes), 0 orphaned lock files and 0 orphaned spare files; skipped 0 in use\n"
    );
    // The orphaned lock's id can be neither shown nor deleted.
    env.run("show", &[orphan.as_str()]).expect_code(1);
    env.run("rm", &[orphan.as_str()]).expect_code(1);
}

#[test]
fn tidy_text_report_counts() {
    let env = Env::new();
    let a = env.session(1);
    let b = env.session(2);
    plant_temp(&env, &a, "aaaa", 10);
    plant_temp(&env, &a, "bbbb", 20);
    plant_temp(&env, &b, "cccc", 5);
    orphan_lock(&env);
    orphan_lock(&env);
    let out = env.run("tidy", &[]);
    out.ok();
    assert_eq!(
        out.stdout,
        "removed 3 temporary files (35 bytes), 2 orphaned lock files and 0 orphaned spare files; skipped 0 in use\n"
    );
    assert_eq!(env.run("ls", &["--json"]).ok().json().len(), 2);
}

#[test]
fn stats_counts_are_exact() {
    let env = Env::with_fan_out(4);
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(env.session(n));
    }
    let mut big = Dict::new();
    big.insert("blob", "y".repeat(500));
    ids.push(env.store.create(&big).unwrap());
    ids.push(env.expired(1));
    ids.push(env.expired(2));
    let held_ids = [ids[0], ids[3]];
    let mut held: Vec<_> = held_ids
        .iter()
        .map(|id| env.store.checkout::<Dict>(id).unwrap())
        .collect();
    let bytes: u64 = ids.iter().map(|id| env.file_len(id)).sum();
    let mut per_shard = [0u64; 4];
    for id in &ids {
        per_shard[env.store.shard_of(id) as usize] += 1;
    }
    let (min, max) = (
        *per_shard.iter().min().unwrap(),
        *per_shard.iter().max().unwrap(),
    );

    let out = env.run("stats", &["--json"]);
    let v = out.ok().json_one();
    assert_eq!(v["sessions"], 10, "{v}");
    assert_eq!(v["bytes"], bytes, "{v}");
    assert_eq!(v["expired"], 2, "{v}");
    assert_eq!(v["checked_out"], 2, "{v}");
    assert_eq!(v["damaged"], 0, "{v}");
    assert_eq!(v["fan_out"], 4, "{v}");
    assert_eq!(v["shard_min"], min, "{v}");
    assert_eq!(v["shard_max"], max, "{v}");
    assert_eq!(v["shard_mean"], 2.5, "{v}");
    assert_eq!(v["dir"], env.store.dir().to_str().unwrap(), "{v}");

    let out = env.run("stats", &[]);
    out.ok();
    let want = [
        format!("store        {}", env.store.dir().display()),
        format!("sessions     10 ({bytes} bytes)"),
        "expired      2".to_string(),
        "checked out  2".to_string(),
        "damaged      0".to_string(),
        format!("shards       4 (sessions per shard: min {min}, mean 2.5, max {max})"),
    ];
    assert_eq!(out.lines(), want, "{}", out.stdout);

    held.clear();
    let v = env.run("stats", &["--json"]).ok().json_one();
    assert_eq!(v["checked_out"], 0, "{v}");
    assert_eq!(v["sessions"], 10, "{v}");
}

#[test]
fn stats_of_an_empty_store() {
    let env = Env::with_fan_out(16);
    let v = env.run("stats", &["--json"]).ok().json_one();
    assert_eq!(v["sessions"], 0, "{v}");
    assert_eq!(v["bytes"], 0, "{v}");
    assert_eq!(v["expired"], 0, "{v}");
    assert_eq!(v["checked_out"], 0, "{v}");
    assert_eq!(v["fan_out"], 16, "{v}");
    assert_eq!(v["shard_min"], 0, "{v}");
    assert_eq!(v["shard_max"], 0, "{v}");
    assert_eq!(v["shard_mean"], 0.0, "{v}");
}

/// A path gc or tidy will not go through (a symlink planted where the store keeps its own
/// files or directories) is reported by both, with its path, in the text and JSON output, and
/// makes both exit 2 (issue 19: gc said nothing and exited 0, tidy counted an unnamed failure
/// and printed nothing about it).
#[test]
fn gc_and_tidy_report_refused_paths_and_exit_2() {
    let env = Env::new();
    let outside = tempfile::tempdir().unwrap();
    let bait = outside.path().join("bait");
    std::fs::write(&bait, b"keep").unwrap();
    // A session whose lock file is a symlink (gc must lock it to delete it), and a lock-file
    // name planted for an id that has no session (tidy judges it as an orphaned lock).
    let held_out = env.session(1);
    let lock = env.store.lock_path(&held_out);
    #[allow(clippy::disallowed_methods)] // planting the symlink in place of the lock file
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&bait, &lock).unwrap();
    let stray = env.session(2);
    assert!(env.store.delete(&stray).unwrap());
    let stray_lock = env.store.lock_path(&stray);
    std::os::unix::fs::symlink(&bait, &stray_lock).unwrap();
    crate::common::age_past(std::time::Duration::from_millis(10));

    let gc = env.run("gc", &["--idle", "1ms"]);
    gc.expect_code(2);
    assert!(
        gc.stdout.contains(&format!("refused {}", lock.display())),
        "{gc:?}"
    );
    assert!(gc.stderr.contains("refused 1 path(s)"), "{gc:?}");
    let v = env.run("gc", &["--idle", "1ms", "--json"]);
    v.expect_code(2);
    let v = v.json_one();
    assert_eq!(v["refused"][0]["path"], lock.display().to_string(), "{v}");
    assert_eq!(v["damaged"], 0, "{v}");

    // tidy judges only lock files without a session: the stray one.
    let tidy = env.run("tidy", &[]);
    tidy.expect_code(2);
    assert!(
        tidy.stdout
            .contains(&format!("refused {}", stray_lock.display())),
        "{tidy:?}"
    );
    assert!(!tidy.stdout.contains("could not be judged"), "{tidy:?}");
    let v = env.run("tidy", &["--json"]);
    v.expect_code(2);
    let v = v.json_one();
    assert_eq!(
        v["refused"][0]["path"],
        stray_lock.display().to_string(),
        "{v}"
    );
    assert_eq!(v["refused"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["failed"], 0, "{v}");
    // Nothing was followed, nothing removed.
    assert_eq!(std::fs::read(&bait).unwrap(), b"keep");
    assert!(std::fs::symlink_metadata(&lock).unwrap().is_symlink());
    assert!(std::fs::symlink_metadata(&stray_lock).unwrap().is_symlink());
}

/// A shard directory replaced by a symlink: every command that opens the store refuses it,
/// gc and tidy alike, naming the shard, exit 2.
#[test]
fn gc_and_tidy_agree_on_a_swapped_shard() {
    let env = Env::new();
    let id = env.session(1);
    let shard = env.store.session_path(&id).parent().unwrap().to_path_buf();
    let outside = tempfile::tempdir().unwrap();
    #[allow(clippy::disallowed_methods)] // the attack: the shard moved aside
    std::fs::rename(&shard, outside.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("moved"), &shard).unwrap();
    for command in ["gc", "tidy"] {
        let out = env.run(command, &[]);
        out.expect_code(2);
        assert!(
            out.stderr.contains(&shard.display().to_string()) && out.stderr.contains("symlink"),
            "{command}: {out:?}"
        );
    }
    assert!(outside.path().join("moved").join(id.as_str()).exists());
}
