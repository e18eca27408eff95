//! Errors common to every admin command (a missing or foreign --dir) and a reader that closes
//! the pipe early.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Duration;

use crate::common::{ChildGuard, Env, command, exists, sessiondir};

const SOME_ID: &str = "abcdefghijklmnopqrstuvwxyz234567";

fn admin_commands() -> Vec<Vec<&'static str>> {
    vec![
        vec!["ls"],
        vec!["ls", "--json"],
        vec!["show", SOME_ID],
        vec!["rm", SOME_ID],
        vec!["gc"],
        vec!["tidy"],
        vec!["stats", "--json"],
        vec!["watch", "--count", "1"],
    ]
}

/// Runs the admin command `args` (its name first) with `--dir dir`.
fn admin_on(args: &[&str], dir: &std::path::Path) -> crate::common::Out {
    let mut all: Vec<std::ffi::OsString> = vec![args[0].into(), "--dir".into()];
    all.push(dir.into());
    all.extend(args[1..].iter().map(Into::into));
    sessiondir(&all)
}

#[test]
fn missing_dir_exits_2_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no").join("such-store");
    for args in admin_commands() {
        let out = admin_on(&args, &missing);
        out.expect_code(2);
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(
            out.stderr.contains(missing.to_str().unwrap()),
            "{args:?}: stderr does not name the path: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("no sessiondir store"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!exists(&missing), "{args:?} created the store");
        assert!(!exists(&tmp.path().join("no")), "{args:?} created a parent");
    }
}

#[test]
fn a_directory_that_is_not_a_store_exits_2_and_stays_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plain");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "hello").unwrap();
    for args in admin_commands() {
        let out = admin_on(&args, &dir);
        out.expect_code(2);
        assert!(out.stderr.contains(dir.to_str().unwrap()), "{}", out.stderr);
        assert!(out.stderr.contains("no sessiondir store"), "{}", out.stderr);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["notes.txt"], "{args:?} wrote into the directory");
    }
}

/// A `--dir` with no store says which of the usual cases it is: no such path, a file, an empty
/// directory, a directory of other files.
#[test]
fn no_store_errors_say_which_case_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("typo");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "hello").unwrap();
    for (dir, why) in [
        (&missing, "it does not exist"),
        (&file, "it is a file, not a directory"),
        (
            &empty,
            "it is an empty directory (sessiondir.store is missing",
        ),
        (&foreign, "it is a directory of other files, not a store"),
    ] {
        for args in admin_commands() {
            let out = admin_on(&args, dir);
            out.expect_code(2);
            let wanted = format!("no sessiondir store at --dir {}: {why}", dir.display());
            assert!(out.stderr.contains(&wanted), "{args:?}: {}", out.stderr);
        }
    }
    assert!(!exists(&missing), "nothing was created");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    let out = sessiondir(["ls"]);
    out.expect_code(2);
    assert!(out.stderr.contains("--dir"), "{}", out.stderr);
    let out = sessiondir(["frobnicate"]);
    out.expect_code(2);
    let out = env.run("show", &[]);
    out.expect_code(2);
    let out = env.run("gc", &["--idle", "a while"]);
    out.expect_code(2);
    assert!(out.stderr.contains("a while"), "{}", out.stderr);
}

/// Runs `ls <extra>` on `env`, reads one line and closes the pipe; returns (exit code, stderr).
fn ls_into_closed_pipe(env: &Env, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = command();
    cmd.arg("ls")
        .arg("--dir")
        .arg(&env.dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildGuard(cmd.spawn().unwrap());
    let mut stderr = child.0.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut first = String::new();
    {
        let mut reader = BufReader::new(child.0.stdout.take().unwrap());
        reader.read_line(&mut first).unwrap();
    } // the read end is closed here
    let status = child
        .wait_timeout(Duration::from_secs(60))
        .expect("ls did not exit after its reader went away");
    (status.code(), first, err_reader.join().unwrap())
}

#[test]
fn closed_stdout_pipe_is_not_an_error() {
    let env = Env::with_fan_out(16);
    let filler = sessiondir::Dict::new();
    for _ in 0..2000 {
        env.store.create(&filler).unwrap();
    }
    for extra in [&[][..], &["--json"][..]] {
        let (code, first, stderr) = ls_into_closed_pipe(&env, extra);
        assert_eq!(code, Some(0), "ls {extra:?}: stderr: {stderr}");
        assert!(!stderr.contains("panicked"), "ls {extra:?}: {stderr}");
        assert_eq!(stderr, "", "ls {extra:?}");
        assert!(!first.is_empty());
        if extra.is_empty() {
            assert!(first.starts_with("id "), "{first:?}");
        } else {
            let v: serde_json::Value = serde_json::from_str(&first).unwrap();
            assert!(v["id"].is_string(), "{first:?}");
        }
    }
}

#[test]
fn damaged_session_files_are_reported_and_do_not_hide_the_others() {
    let env = Env::new();
    let good = env.session(1);
    let bad = env.session(2);
    let bad_path = env.store.session_path(&bad);
    std::fs::write(&bad_path, b"not a session file at all, just garbage bytes").unwrap();
    let path_text = bad_path.to_str().unwrap();

    // ls, stats and gc agree: each finishes over the sound sessions, reports the damaged file
    // and exits 5 (done, but damage found).
    let damaged = "sessiondir: warning: 1 damaged session file(s) found and left in place";

    // ls lists the good one and warns about the bad one naming its path.
    let out = env.run("ls", &["--json"]);
    out.expect_code(5);
    let lines = out.json();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert_eq!(lines[0]["id"], good.as_str());
    assert!(out.stderr.contains(path_text), "{}", out.stderr);
    assert!(out.stderr.contains(damaged), "{}", out.stderr);

    // show of the damaged one: exit 2 naming the path; the good one still shows.
    let out = env.run("show", &[bad.as_str()]);
    out.expect_code(2);
    assert!(out.stderr.contains(path_text), "{}", out.stderr);
    env.run("show", &[good.as_str()]).ok();

    // stats counts it as damaged, not as a session.
    let out = env.run("stats", &["--json"]);
    let v = out.expect_code(5).json_one();
    assert_eq!(v["sessions"], 1, "{v}");
    assert_eq!(v["damaged"], 1, "{v}");
    assert_eq!(v["bytes"], env.file_len(&good), "{v}");
    assert!(out.stderr.contains(path_text), "{}", out.stderr);
    assert!(out.stderr.contains(damaged), "{}", out.stderr);

    // gc leaves it in place and counts it.
    let out = env.run("gc", &["--json"]);
    let v = out.expect_code(5).json_one();
    assert_eq!(v["scanned"], 2, "{v}");
    assert_eq!(v["damaged"], 1, "{v}");
    assert_eq!(v["deleted"], 0, "{v}");
    assert!(out.stderr.contains(damaged), "{}", out.stderr);
    assert!(bad_path.exists());

    // rm deletes a damaged session all the same.
    env.run("rm", &[bad.as_str()]).ok();
    assert!(!bad_path.exists());
    env.run("ls", &[]).ok();
}

#[test]
fn missing_relative_dir_is_named_and_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let out = command()
        .current_dir(tmp.path())
        .args(["stats", "--dir", "rel/store"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("rel/store"), "{stderr}");
    assert!(stderr.contains("no sessiondir store"), "{stderr}");
    assert!(!exists(&tmp.path().join("rel")));
}
