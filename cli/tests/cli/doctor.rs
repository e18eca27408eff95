//! `sessiondir doctor`: the probe's verdicts, its JSON, its exit codes, and that it leaves the
//! directory as it found it. (Real network and FUSE mounts, where it must fail, are exercised
//! by `tests/sharedfs/run-all.sh`.)

use serde_json::Value as Json;

use crate::common::*;

fn checks(v: &Json) -> Vec<(String, String)> {
    v["checks"]
        .as_array()
        .expect("checks array")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                c["verdict"].as_str().expect("verdict").to_string(),
            )
        })
        .collect()
}

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_local_store_directory_passes_and_is_left_as_it_was() {
    let env = Env::new();
    let id = env.store.create(&counter(5)).unwrap();
    let before = entries(&env.dir);
    let out = sessiondir([
        "doctor",
        "--dir",
        env.dir.to_str().unwrap(),
        "--rounds",
        "6",
        "--increments",
        "5",
        "--json",
    ]);
    out.expect_code(0);
    let v: Json = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    assert_eq!(v["verdict"], "pass", "{v}");
    assert_eq!(v["shared"], false);
    assert_eq!(
        checks(&v),
        [
            ("file-system".into(), "pass".into()),
            ("lock-exclusion".into(), "pass".into()),
            ("rename-visibility".into(), "pass".into()),
            ("store".into(), "pass".into()),
        ]
    );
    assert_eq!(entries(&env.dir), before, "the scratch directory is gone");
    let n = env.store.load::<sessiondir::Dict>(&id).unwrap().unwrap();
    assert_eq!(
        n.get_i64("counter"),
        Some(5),
        "the store's own session is untouched"
    );
}

#[test]
fn a_second_path_to_the_same_mount_warns_and_passes_the_rest_in_text() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = sessiondir([
        "doctor",
        "--dir",
        real.to_str().unwrap(),
        "--other-mount",
        link.to_str().unwrap(),
        "--rounds",
        "6",
        "--increments",
        "5",
    ]);
    // A warning is not a failure.
    out.expect_code(0);
    let marked = |mark: &str, name: &str| {
        out.stdout
            .lines()
            .any(|l| l.starts_with(mark) && l.contains(name))
    };
    assert!(marked("WARN", "same-share"), "{}", out.stdout);
    assert!(out.stdout.contains("one mount"), "{}", out.stdout);
    for name in [
        "file-system",
        "lock-exclusion",
        "rename-visibility",
        "store",
    ] {
        assert!(marked("pass", name), "{name} not passed:\n{}", out.stdout);
    }
    assert!(out.stdout.contains("verdict: warn"), "{}", out.stdout);
}

#[test]
fn two_unrelated_directories_fail_same_share_with_exit_4() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = sessiondir([
        "doctor",
        "--dir",
        a.path().to_str().unwrap(),
        "--other-mount",
        b.path().to_str().unwrap(),
        "--json",
    ]);
    out.expect_code(4);
    let v: Json = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    assert_eq!(v["verdict"], "fail");
    assert_eq!(
        checks(&v),
        [
            ("file-system".into(), "pass".into()),
            ("same-share".into(), "fail".into()),
        ]
    );
    assert!(out.stderr.contains("same-share"), "{}", out.stderr);
    assert!(entries(a.path()).is_empty() && entries(b.path()).is_empty());
}

#[test]
fn a_missing_directory_exits_2_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let out = sessiondir(["doctor", "--dir", missing.to_str().unwrap()]);
    out.expect_code(2);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("no-such-dir"), "{}", out.stderr);
    assert!(!exists(&missing));
}

/// `doctor` on a path that is not a directory says which case it is and names the flag and the
/// path (it used to say `cannot statfs`).
#[test]
fn a_missing_or_plain_file_dir_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    for (args, wanted) in [
        (
            vec!["--dir", missing.to_str().unwrap()],
            "--dir {} does not exist",
        ),
        (vec!["--dir", file.to_str().unwrap()], "--dir {} is a file"),
        (
            vec![
                "--dir",
                tmp.path().to_str().unwrap(),
                "--other-mount",
                missing.to_str().unwrap(),
            ],
            "--other-mount {} does not exist",
        ),
    ] {
        let out = sessiondir(std::iter::once("doctor").chain(args.iter().copied()));
        out.expect_code(2);
        let path = args.last().unwrap();
        let wanted = wanted.replace("{}", path);
        assert!(out.stderr.contains(&wanted), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("statfs"), "{}", out.stderr);
        assert_eq!(out.stdout, "");
    }
    assert!(!exists(&missing));
}
