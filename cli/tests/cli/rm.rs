//! `sessiondir rm`: deletes, reports a missing session, waits for (and times out on) a holder.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sessiondir::Dict;

use crate::common::{ChildGuard, Env, command, sessiondir};

#[test]
fn rm_deletes_and_a_second_rm_exits_1() {
    let env = Env::new();
    let id = env.session(1);
    let other = env.session(2);
    let out = env.run("rm", &[id.as_str()]);
    out.ok();
    assert_eq!(out.stdout, format!("deleted {id}\n"));
    assert_eq!(out.stderr, "");
    assert_eq!(env.store.load::<Dict>(&id).unwrap(), None);
    assert!(env.store.info(&id).unwrap().is_none());
    assert!(!env.store.session_path(&id).exists());
    // The neighbour is untouched.
    assert_eq!(
        env.store
            .load::<Dict>(&other)
            .unwrap()
            .unwrap()
            .get_i64("counter"),
        Some(2)
    );

    let again = env.run("rm", &[id.as_str()]);
    again.expect_code(1);
    assert_eq!(again.stdout, "");
    assert!(again.stderr.contains(id.as_str()), "{}", again.stderr);
    assert!(again.stderr.contains("not found"), "{}", again.stderr);
}

#[test]
fn rm_json_names_the_deleted_id_and_works_on_expired_sessions() {
    let env = Env::new();
    let id = env.expired(1);
    let out = env.run("rm", &["--json", id.as_str()]);
    out.ok();
    assert_eq!(
        out.json_one(),
        serde_json::json!({ "deleted": id.as_str() })
    );
    assert!(env.store.info(&id).unwrap().is_none());
}

#[test]
fn rm_of_a_held_session_times_out_with_exit_3_and_keeps_it() {
    let env = Env::new();
    let id = env.session(5);
    let held = env.store.checkout::<Dict>(&id).unwrap();
    let out = env.run("rm", &["--timeout", "200ms", id.as_str()]);
    out.expect_code(3);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains(id.as_str()), "{}", out.stderr);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    assert!(env.store.exists(&id).unwrap());
    // The holder is unaffected: its check-in still lands.
    let mut held = held;
    held.data_mut().increment("counter", 1).unwrap();
    held.check_in().unwrap();
    assert_eq!(
        env.store
            .load::<Dict>(&id)
            .unwrap()
            .unwrap()
            .get_i64("counter"),
        Some(6)
    );
    // Released, the same command succeeds.
    env.run("rm", &["--timeout", "200ms", id.as_str()]).ok();
    assert!(env.store.info(&id).unwrap().is_none());
}

#[test]
fn rm_waits_for_a_holder_that_releases() {
    let env = Env::new();
    let id = env.session(5);
    let held = env.store.checkout::<Dict>(&id).unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(held);
    });
    let out = env.run("rm", &["--timeout", "30s", id.as_str()]);
    releaser.join().unwrap();
    out.ok();
    assert_eq!(out.stdout, format!("deleted {id}\n"));
    assert!(env.store.info(&id).unwrap().is_none());
}

/// `rm` of a held session says on stderr that it waits and for what (cargo's "Blocking waiting
/// for file lock"), then deletes once the holder lets go; an `rm` that does not wait says
/// nothing (`rm_deletes_and_a_second_rm_exits_1`).
#[test]
fn rm_announces_that_it_waits_for_a_holder() {
    let env = Env::new();
    let id = env.session(5);
    let held = env.store.checkout::<Dict>(&id).unwrap();
    let mut cmd = command();
    cmd.args(["rm", "--timeout", "60s", "--dir"])
        .arg(&env.dir)
        .arg(id.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildGuard(cmd.spawn().unwrap());
    let stderr = child.0.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("rm announced nothing on stderr while the session was held");
    assert_eq!(
        line,
        format!(
            "sessiondir: waiting for session {id}, held by another process (giving up after 1m; \
             --timeout sets it)"
        )
    );
    // It waits: the session is still there while held.
    assert!(env.store.exists(&id).unwrap());
    drop(held);
    let status = child
        .wait_timeout(Duration::from_secs(30))
        .expect("rm did not finish after the holder released");
    assert_eq!(status.code(), Some(0));
    let mut stdout = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(stdout, format!("deleted {id}\n"));
    assert!(env.store.info(&id).unwrap().is_none());
    // Nothing else was said.
    assert_eq!(lines.recv_timeout(Duration::from_secs(5)).ok(), None);
}

#[test]
fn rm_rejects_a_bad_timeout() {
    let env = Env::new();
    let id = env.session(1);
    let out = env.run("rm", &["--timeout", "forever", id.as_str()]);
    out.expect_code(2);
    assert!(out.stderr.contains("forever"), "{}", out.stderr);
    assert!(env.store.exists(&id).unwrap());
}

/// A bindfs FUSE mount of `src` at `mnt`, unmounted when dropped (also when the test fails).
struct Bindfs {
    mnt: PathBuf,
}

impl Bindfs {
    fn mount(src: &Path, mnt: &Path) -> Self {
        std::fs::create_dir_all(mnt).unwrap();
        let status = Command::new("bindfs")
            .arg(src)
            .arg(mnt)
            .status()
            .expect("run bindfs (packages bindfs and fuse3; scripts/test installs them)");
        assert!(status.success(), "bindfs {src:?} {mnt:?}: {status}");
        Bindfs {
            mnt: mnt.to_path_buf(),
        }
    }
}

impl Drop for Bindfs {
    fn drop(&mut self) {
        let unmounted = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

/// `rm` honours `--allow-network-fs` like every other admin command (it used to build its own
/// store builder and drop the flag): on a FUSE mount it refuses without the flag and deletes
/// with it.
#[test]
fn rm_on_a_fuse_mount_needs_allow_network_fs_and_then_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let store = sessiondir::Store::open(src.join("store")).unwrap();
    let id = store.create(&Dict::new()).unwrap();
    let mount = Bindfs::mount(&src, &tmp.path().join("mnt"));
    let dir = mount.mnt.join("store");
    let dir = dir.to_str().unwrap();

    let refused = sessiondir(["rm", id.as_str(), "--dir", dir]);
    refused.expect_code(2);
    assert!(refused.stderr.contains("fuse"), "{}", refused.stderr);
    assert!(store.exists(&id).unwrap(), "refused, so nothing deleted");

    let deleted = sessiondir(["rm", id.as_str(), "--dir", dir, "--allow-network-fs"]);
    deleted.ok();
    assert_eq!(deleted.stdout, format!("deleted {id}\n"));
    assert!(!store.exists(&id).unwrap());
    assert!(!store.session_path(&id).exists());
}
