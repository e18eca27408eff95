//! `sessiondir bench`: the harness contract (one verified JSON line per run) in every mode.
//! No timing assertions: only the verification figures and the shape of the output.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sessiondir::{Dict, Store};

use crate::common::{Out, sessiondir};

/// Keys every JSON line of the harness contract carries.
const CONTRACT: [&str; 12] = [
    "system",
    "ops_per_s",
    "p50_us",
    "p99_us",
    "p999_us",
    "max_us",
    "lost_updates",
    "corrupt",
    "errors",
    "leftover_files",
    "counter_sum",
    "expected_sum",
];

/// A temporary directory with an empty `sessions` directory for the bench.
struct BenchDir {
    tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl BenchDir {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sessions");
        std::fs::create_dir(&dir).unwrap();
        BenchDir { tmp, dir }
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut all: Vec<OsString> = vec!["bench".into(), "--dir".into(), self.dir.clone().into()];
        all.extend(args.iter().map(OsString::from));
        sessiondir(all)
    }

    /// The counters of the sessions the bench left in its store, read with the library.
    fn counters(&self) -> Vec<i64> {
        let store = Store::builder(&self.dir)
            .create_if_missing(false)
            .open()
            .unwrap();
        let mut v: Vec<i64> = store
            .ids()
            .map(|id| {
                let d: Dict = store.load(&id.unwrap()).unwrap().expect("session exists");
                d.get_i64("counter").expect("a counter")
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// What is left in the directory besides the store itself.
    fn extras(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !["sessiondir.store", "sessions", "locks"].contains(&n.as_str()))
            .collect();
        names.sort();
        names
    }
}

/// Checks one summary (the store's or the floor's): every figure present, verification clean.
#[track_caller]
fn assert_verified(v: &Json, system: &str, counter_sum: u64) {
    for key in CONTRACT {
        assert!(v.get(key).is_some(), "key {key} missing in {v}");
    }
    assert_eq!(v["system"], system, "{v}");
    assert_eq!(v["lost_updates"], 0, "{v}");
    assert_eq!(v["corrupt"], 0, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["leftover_files"], 0, "{v}");
    assert_eq!(v["counter_sum"], counter_sum, "{v}");
    assert_eq!(v["expected_sum"], counter_sum, "{v}");
    let ops_per_s = v["ops_per_s"].as_f64().expect("ops_per_s is a number");
    assert!(ops_per_s > 0.0, "{v}");
    let pct = |k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("{k} is an integer: {v}"))
    };
    assert!(
        pct("p50_us") <= pct("p99_us")
            && pct("p99_us") <= pct("p999_us")
            && pct("p999_us") <= pct("max_us"),
        "percentiles out of order: {v}"
    );
}

/// The single JSON line of a bench run that must succeed.
#[track_caller]
fn one_line(out: &Out) -> Json {
    out.ok();
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    out.json_one()
}

#[test]
fn contract_spread_processes() {
    let b = BenchDir::new();
    let out = b.run(&[
        "--workers",
        "2",
        "--ops",
        "200",
        "--sessions",
        "5",
        "--mode",
        "spread",
        "--hold-us",
        "0",
        "--payload",
        "64",
        "--fsync",
        "0",
        "--json",
    ]);
    let v = one_line(&out);
    assert_verified(&v, "sessiondir", 400);
    assert_eq!(v["workers"], 2, "{v}");
    assert_eq!(v["ops"], 200, "{v}");
    assert_eq!(v["sessions"], 5, "{v}");
    assert_eq!(v["mode"], "spread", "{v}");
    assert_eq!(v["payload"], 64, "{v}");
    assert_eq!(v["fsync"], 0, "{v}");
    assert_eq!(v["threads"], false, "{v}");
    assert_eq!(v["rounds"], 1, "{v}");
    assert!(v.get("baseline").is_none(), "{v}");
    // Independently: the store holds 5 sessions whose counters add up to the ops done.
    let counters = b.counters();
    assert_eq!(counters.len(), 5);
    assert_eq!(counters.iter().sum::<i64>(), 400);
    assert_eq!(b.extras(), Vec::<String>::new());
}

#[test]
fn contract_hot_with_fsync() {
    let b = BenchDir::new();
    let out = b.run(&[
        "--workers",
        "2",
        "--ops",
        "40",
        "--sessions",
        "3",
        "--mode",
        "hot",
        "--hold-us",
        "50",
        "--payload",
        "16",
        "--fsync",
        "1",
        "--json",
    ]);
    let v = one_line(&out);
    assert_verified(&v, "sessiondir", 80);
    assert_eq!(v["mode"], "hot", "{v}");
    assert_eq!(v["fsync"], 1, "{v}");
    assert_eq!(v["hold_us"], 50, "{v}");
    // Hot: every op went to one session.
    assert_eq!(b.counters(), [0, 0, 80]);
    assert_eq!(b.extras(), Vec::<String>::new());
}

#[test]
fn contract_threads() {
    let b = BenchDir::new();
    let out = b.run(&[
        "--threads",
        "--workers",
        "3",
        "--ops",
        "100",
        "--sessions",
        "4",
        "--mode",
        "spread",
        "--hold-us",
        "0",
        "--payload",
        "32",
        "--fsync",
        "0",
        "--json",
    ]);
    let v = one_line(&out);
    assert_verified(&v, "sessiondir", 300);
    assert_eq!(v["threads"], true, "{v}");
    assert_eq!(v["workers"], 3, "{v}");
    assert_eq!(b.counters().iter().sum::<i64>(), 300);
}

#[test]
fn contract_zipf() {
    let b = BenchDir::new();
    let out = b.run(&[
        "--workers",
        "2",
        "--ops",
        "150",
        "--sessions",
        "10",
        "--mode",
        "zipf",
        "--hold-us",
        "0",
        "--payload",
        "8",
        "--fsync",
        "0",
        "--json",
    ]);
    let v = one_line(&out);
    assert_verified(&v, "sessiondir", 300);
    assert_eq!(v["mode"], "zipf", "{v}");
    let counters = b.counters();
    assert_eq!(counters.len(), 10);
    assert_eq!(counters.iter().sum::<i64>(), 300);
}

#[test]
fn contract_baseline_rounds() {
    let b = BenchDir::new();
    let out = b.run(&[
        "--baseline",
        "--rounds",
        "2",
        "--workers",
        "2",
        "--ops",
        "50",
        "--sessions",
        "3",
        "--mode",
        "spread",
        "--hold-us",
        "0",
        "--payload",
        "64",
        "--fsync",
        "0",
        "--json",
    ]);
    let v = one_line(&out);
    // Two rounds of 2 workers x 50 ops, on each system.
    assert_verified(&v, "sessiondir", 200);
    assert_eq!(v["rounds"], 2, "{v}");
    let base = v
        .get("baseline")
        .unwrap_or_else(|| panic!("no baseline in {v}"));
    assert!(base.is_object(), "{v}");
    assert_verified(base, "floor", 200);
    let ratio = v["ratio"]
        .as_f64()
        .unwrap_or_else(|| panic!("no ratio in {v}"));
    assert!(ratio > 0.0 && ratio.is_finite(), "{v}");
    // The second floor, the in-place write, ran the same ops and counted them all.
    let in_place = v
        .get("in_place")
        .unwrap_or_else(|| panic!("no in_place in {v}"));
    assert_verified(in_place, "in-place", 200);
    let ratio = v["in_place_ratio"]
        .as_f64()
        .unwrap_or_else(|| panic!("no in_place_ratio in {v}"));
    assert!(ratio > 0.0 && ratio.is_finite(), "{v}");
    // The floors' files and the bench's bookkeeping are cleaned up.
    assert_eq!(b.extras(), Vec::<String>::new());
    assert_eq!(b.counters().iter().sum::<i64>(), 200);
}

/// `bench --ladder 1,2` on two sessions, 30 spread ops per worker, with `extra` flags.
fn ladder_1_2(b: &BenchDir, extra: &[&str]) -> Out {
    let mut args = vec![
        "--ladder",
        "1,2",
        "--ops",
        "30",
        "--sessions",
        "2",
        "--mode",
        "spread",
        "--payload",
        "8",
    ];
    args.extend(extra);
    b.run(&args)
}

#[test]
fn ladder_writes_one_line_per_step_and_an_svg_chart() {
    let b = BenchDir::new();
    let svg = b.tmp.path().join("out.svg");
    let out = ladder_1_2(&b, &["--json", "--plot", svg.to_str().unwrap()]);
    out.ok();
    let lines = out.json();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert_eq!(lines[0]["workers"], 1);
    assert_eq!(lines[1]["workers"], 2);
    // The store is shared by the steps: the counters accumulate (30, then 30 + 60).
    assert_verified(&lines[0], "sessiondir", 30);
    assert_verified(&lines[1], "sessiondir", 90);
    let chart = std::fs::read_to_string(&svg).expect("the chart was written");
    assert!(chart.contains("<svg"), "{chart}");
    assert!(chart.contains("</svg>"));
    assert_eq!(b.counters().iter().sum::<i64>(), 90);
}

#[test]
fn non_empty_dir_is_refused() {
    let b = BenchDir::new();
    std::fs::write(b.dir.join("precious.txt"), "keep me").unwrap();
    let out = b.run(&["--workers", "1", "--ops", "5", "--sessions", "1", "--json"]);
    out.expect_code(2);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("not empty"), "{}", out.stderr);
    assert!(
        out.stderr.contains(b.dir.to_str().unwrap()),
        "{}",
        out.stderr
    );
    assert_eq!(b.extras(), ["precious.txt"]);
    assert_eq!(
        std::fs::read_to_string(b.dir.join("precious.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn bad_bench_arguments_exit_2() {
    let b = BenchDir::new();
    for args in [
        &["--workers", "0", "--ops", "5", "--sessions", "1"][..],
        &["--workers", "1", "--ops", "0", "--sessions", "1"][..],
        &["--workers", "1", "--ops", "5", "--sessions", "0"][..],
        &["--workers", "1", "--ops", "5", "--fsync", "2"][..],
        &["--workers", "1", "--ops", "5", "--mode", "lukewarm"][..],
        &["--ops", "5", "--plot", "x.svg"][..],
        &["--ladder", "1,0", "--ops", "5"][..],
    ] {
        let out = b.run(args);
        out.expect_code(2);
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    // Nothing was prepared by the refused runs.
    assert_eq!(std::fs::read_dir(&b.dir).unwrap().count(), 0);
    assert!(!Path::new("x.svg").exists());
}

#[test]
fn human_report_says_verified_ok() {
    let b = BenchDir::new();
    let out = b.run(&[
        "--workers",
        "2",
        "--ops",
        "20",
        "--sessions",
        "2",
        "--mode",
        "spread",
        "--payload",
        "8",
    ]);
    out.ok();
    assert!(
        out.stdout.contains(
            "verified sessiondir: counters 40 of 40 expected, 0 lost, 0 corrupt, 0 failed ops, 0 leftover files - ok"
        ),
        "{}",
        out.stdout
    );
}

/// `--other-mount`: odd workers go through a second path to the same directory (here a
/// symlink; on a shared file system, another mount), and the run still verifies exactly.
#[test]
fn workers_split_across_a_second_path_to_the_directory_add_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sessions");
    std::fs::create_dir(&dir).unwrap();
    let link = tmp.path().join("other-mount");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let out = sessiondir([
        "bench",
        "--dir",
        dir.to_str().unwrap(),
        "--other-mount",
        link.to_str().unwrap(),
        "--workers",
        "4",
        "--ops",
        "40",
        "--sessions",
        "2",
        "--mode",
        "hot",
        "--json",
    ]);
    out.ok();
    let v = one_line(&out);
    assert_verified(&v, "sessiondir", 160);
    // Without --dir there is nothing for the second mount to be a view of.
    sessiondir(["bench", "--other-mount", link.to_str().unwrap()]).expect_code(2);
    // The odd workers really go through the second path: a store there that is not a view of
    // --dir (it lacks the bench's sessions) makes them fail, naming it.
    let dir2 = tmp.path().join("sessions-2");
    std::fs::create_dir(&dir2).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    sessiondir::Store::open(&elsewhere).expect("a store of its own");
    let out = sessiondir([
        "bench",
        "--dir",
        dir2.to_str().unwrap(),
        "--other-mount",
        elsewhere.to_str().unwrap(),
        "--workers",
        "2",
        "--ops",
        "5",
        "--json",
    ]);
    out.expect_code(2);
    assert!(
        out.stderr.contains(elsewhere.to_str().unwrap()),
        "{}",
        out.stderr
    );
}

/// A `--ladder` step that is not a worker count: the error names the flag, the bad value and
/// what the flag takes (not Rust's "invalid digit found in string").
#[test]
fn a_bad_ladder_step_names_the_flag_the_value_and_what_it_takes() {
    let b = BenchDir::new();
    for bad in ["1,x", "1,0", "2,-1"] {
        let out = b.run(&["--ladder", bad, "--ops", "5"]);
        out.expect_code(2);
        let value = bad.rsplit(',').next().unwrap();
        for wanted in [
            "--ladder".to_string(),
            format!("'{value}'"),
            "whole numbers of at least 1".to_string(),
        ] {
            assert!(out.stderr.contains(&wanted), "{bad}: {}", out.stderr);
        }
        assert!(!out.stderr.contains("invalid digit"), "{}", out.stderr);
    }
    assert_eq!(std::fs::read_dir(&b.dir).unwrap().count(), 0);
}

/// The text of every `<text>` element of an SVG with `text-anchor="middle"` and `dy="0.76em"`:
/// the x-axis tick labels (and the captions) as plotters writes them.
fn centred_texts(svg: &str) -> Vec<String> {
    svg.split("<text ")
        .skip(1)
        .filter(|t| t.contains(r#"dy="0.76em" text-anchor="middle""#))
        .filter_map(|t| {
            Some(
                t.split_once('>')?
                    .1
                    .split_once("</text>")?
                    .0
                    .trim()
                    .to_owned(),
            )
        })
        .collect()
}

/// With `--ladder`, each step's "verified" line counts that step's ops (1 × 30, then 2 × 30),
/// with the running total beside it; the chart's x ticks are whole worker counts and its title
/// carries the run's settings.
#[test]
fn ladder_report_counts_each_step_and_the_chart_ticks_whole_workers_under_the_settings() {
    let b = BenchDir::new();
    let svg = b.tmp.path().join("chart.svg");
    let out = ladder_1_2(&b, &["--plot", svg.to_str().unwrap()]);
    out.ok();
    let verified: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("verified"))
        .collect();
    assert_eq!(
        verified,
        [
            "  verified sessiondir: counters 30 of 30 expected, 0 lost, 0 corrupt, 0 failed ops, 0 leftover files - ok",
            "  verified sessiondir: counters 60 of 60 expected (90 of 90 since the first step), 0 lost, 0 corrupt, 0 failed ops, 0 leftover files - ok",
        ],
        "{}",
        out.stdout
    );
    let chart = std::fs::read_to_string(&svg).expect("the chart was written");
    let texts = centred_texts(&chart);
    assert!(
        texts.iter().any(|t| t
            == "sessiondir bench --ladder 1,2: processes x 30 ops, spread over 2 sessions; \
                hold 0 us, payload 8 B, fsync off, 1 round(s)"),
        "no title with the settings among {texts:?}"
    );
    let ticks: Vec<&str> = texts
        .iter()
        .map(String::as_str)
        .filter(|t| t.parse::<f64>().is_ok())
        .collect();
    // Two charts, each ticked at 0, 1, 2, 3 workers.
    assert_eq!(ticks, ["0", "1", "2", "3", "0", "1", "2", "3"], "{texts:?}");
}

/// `text` with every number replaced by `#` and runs of spaces collapsed: the labels alone.
fn labels_of(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let mut out = String::new();
            let mut in_number = false;
            for c in line.chars() {
                let digit = c.is_ascii_digit() || (in_number && c == '.');
                if digit && !in_number {
                    out.push('#');
                } else if !digit {
                    out.push(c);
                }
                in_number = digit;
            }
            out.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// README's sample output of `cargo run --release -- bench --baseline` has the labels of the
/// real output, line by line (the numbers are the recorded run's).
#[test]
fn readme_sample_output_has_the_real_reports_labels() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read README.md");
    let after = readme
        .split_once("cargo run --release -- bench --baseline\n```\n\n```text\n")
        .expect("README shows the bench command, then its output in a text block")
        .1;
    let sample = after.split_once("```").expect("the block ends").0;
    let b = BenchDir::new();
    let out = b.run(&["--baseline", "--ops", "40", "--sessions", "4"]);
    out.ok();
    assert_eq!(labels_of(sample), labels_of(&out.stdout), "{}", out.stdout);
}
