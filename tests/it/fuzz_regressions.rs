//! The fuzz targets' inputs, replayed: every seed (`fuzz/seeds/<target>/`) and every input a
//! fuzz target crashed on (`fuzz/regressions/<target>/`), judged by the very checks the fuzz
//! targets make (`fuzz/src/oracle.rs`, included below).
//!
//! A decode input is written over a real session's file and read back with [`Store::info`] and
//! [`Store::inspect`]; with the `fuzzing` feature it is also read through the fuzz targets'
//! entry point, and both must give the same results. The replay runs in a child process (this
//! binary again), on a thread with Rust's default 2 MiB stack and under a 1 GiB address-space
//! limit, so a stack overflow or a runaway allocation fails this test with the child's output
//! instead of killing the whole test binary.

// Shared with the fuzz crate, which also uses the parts this test does not.
#[allow(dead_code)]
#[path = "../../fuzz/src/oracle.rs"]
mod oracle;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sessiondir::{Dict, SessionId, Store};

use crate::common::TestStore;
use oracle::{DecodeInput, Outcome, check_decode, check_id};

/// Stack of the replaying thread: what `std::thread::spawn` gives a web server's workers.
const STACK: usize = 2 << 20;
/// Address space of the replaying child: far more than any of these small inputs needs.
const ADDRESS_SPACE: u64 = 1 << 30;
/// The name of the child's test, as the harness filters it.
const CHILD: &str = "fuzz_regressions::replay_decode_inputs_in_child";

/// The seeds and the regressions of `target`, in a stable order.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files: Vec<PathBuf> = ["seeds", "regressions"]
        .iter()
        .map(|kind| fuzz.join(kind).join(target))
        .filter(|dir| dir.is_dir())
        .flat_map(|dir| fs::read_dir(&dir).expect("list a fuzz input directory"))
        .map(|entry| entry.expect("read a fuzz input directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Reads one decode input back through the real store (and the fuzz entry point) and checks
/// the results against the format.
fn replay_decode(path: &Path) {
    let data = fs::read(path).expect("read a decode input");
    let input = DecodeInput::from_fuzz_bytes(&data);

    // A real session, its file replaced by the input, read by a store with the input's maximum.
    let ts = TestStore::new();
    let id = ts.store.create(&Dict::new()).expect("create a session");
    fs::write(ts.store.session_path(&id), &input.file).expect("replace the session file");
    let reader = Store::builder(&ts.dir)
        .fan_out(4)
        .max_session_size(input.max_payload)
        .open()
        .expect("open the store again with the input's maximum");
    let there = "the session file is there";
    let store_outcome: Outcome = (
        reader.info(&id).map(|i| i.expect(there)),
        reader.inspect::<Dict>(&id).map(|s| s.expect(there)),
    );
    check_decode(&input.file, input.max_payload, &store_outcome);

    #[cfg(feature = "fuzzing")]
    {
        use oracle::info_shape;
        use std::io::Write;

        let mut file = tempfile::tempfile().expect("create a scratch file");
        file.write_all(&input.file).expect("write the scratch file");
        let entry_outcome = sessiondir::fuzzing::read_session_file(&file, input.max_payload);
        check_decode(&input.file, input.max_payload, &entry_outcome);
        assert_eq!(
            info_shape(&entry_outcome.0),
            info_shape(&store_outcome.0),
            "the fuzz entry point and Store::info disagree on {}",
            path.display()
        );
        assert_eq!(
            snapshot_shape(&entry_outcome.1),
            snapshot_shape(&store_outcome.1),
            "the fuzz entry point and Store::inspect disagree on {}",
            path.display()
        );
    }
}

/// A whole-file read without its id and path: metadata and data, or the error's shape.
#[cfg(feature = "fuzzing")]
fn snapshot_shape(snapshot: &Result<sessiondir::Snapshot<Dict>, sessiondir::Error>) -> String {
    match snapshot {
        Ok(s) => format!("{:?} {:?}", oracle::info_shape(&Ok(s.info.clone())), s.data),
        Err(e) => oracle::shape(e),
    }
}

#[test]
fn decode_inputs_replay_cleanly_in_a_child_process() {
    let expected = inputs("decode").len();
    assert!(expected > 0, "no decode seeds or regressions found");
    let exe = std::env::current_exe().expect("path of this test binary");
    let out = Command::new(exe)
        .args([
            CHILD,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("run the replaying child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the replaying child failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let done = format!("replayed {expected} decode inputs");
    assert!(
        stdout.lines().any(|l| l == done),
        "the child did not report {done:?}:\n{stdout}"
    );
}

/// The child's half of `decode_inputs_replay_cleanly_in_a_child_process` (ignored when the
/// suite runs: a stack overflow here would take the whole test binary down).
#[test]
#[ignore = "run in a child process by decode_inputs_replay_cleanly_in_a_child_process"]
fn replay_decode_inputs_in_child() {
    let limit = libc::rlimit {
        rlim_cur: ADDRESS_SPACE,
        rlim_max: ADDRESS_SPACE,
    };
    // SAFETY: setrlimit with a valid, initialised struct; lowers this process's limit only.
    let set = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    assert_eq!(set, 0, "set the child's address-space limit");
    let files = inputs("decode");
    let replayed = std::thread::Builder::new()
        .name("replay".into())
        .stack_size(STACK)
        .spawn(move || {
            for path in &files {
                println!("replaying {}", path.display());
                replay_decode(path);
            }
            files.len()
        })
        .expect("spawn the replaying thread")
        .join()
        .expect("the replaying thread panicked");
    println!("replayed {replayed} decode inputs");
}

#[test]
fn id_inputs_replay_cleanly() {
    let files = inputs("id");
    let (mut valid, mut hostile) = (0, 0);
    for path in &files {
        let data = fs::read(path).expect("read an id input");
        check_id(&data);
        // Seeds say what they are: ids made by a real store, and ids from an attacker.
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let parses = std::str::from_utf8(&data).is_ok_and(|s| SessionId::parse(s).is_ok());
        match name.as_deref() {
            Some(n) if n.starts_with("valid-") => {
                assert!(parses, "{} does not parse", path.display());
                valid += 1;
            }
            Some(n) if n.starts_with("hostile-") => {
                assert!(!parses, "{} parses", path.display());
                hostile += 1;
            }
            _ => {}
        }
    }
    assert!(
        valid > 0 && hostile > 0,
        "expected valid-* and hostile-* id seeds, found {valid} and {hostile}"
    );
}
