//! `sessiondir gc`: deletes exactly the expired (default) or idle sessions, never held ones, and
//! the expired forwarding records logins left.

use std::ffi::OsStr;
use std::fs::{File, FileTimes};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use sessiondir::{Dict, Expiry, SessionId};

use crate::common::{Env, age_past, an_hour_ago, counter, exists, run_to_end, sorted};

#[test]
fn default_gc_deletes_exactly_the_expired_sessions() {
    let env = Env::new();
    let live = vec![
        env.session(1),
        env.session(2),
        env.store
            .create_with_expiry(&counter(3), Expiry::Idle(Duration::from_secs(3600)))
            .unwrap(),
    ];
    let expired = vec![env.expired(4), env.expired(5), env.expired(6)];
    let bytes: u64 = expired.iter().map(|id| env.file_len(id)).sum();

    let out = env.run("gc", &["--json"]);
    out.ok();
    let v = out.json_one();
    assert_eq!(v["scanned"], 6, "{v}");
    assert_eq!(v["deleted"], 3, "{v}");
    assert_eq!(v["skipped_busy"], 0, "{v}");
    assert_eq!(v["damaged"], 0, "{v}");
    assert_eq!(v["bytes_freed"], bytes, "{v}");
    assert!(bytes > 0);
    assert!(v["elapsed_ms"].is_u64(), "{v}");

    let all: Vec<SessionId> = live.iter().chain(&expired).copied().collect();
    assert_eq!(sorted(&env.on_disk(&all)), sorted(&live));

    // Nothing left to collect; the text report says so.
    let out = env.run("gc", &[]);
    out.ok();
    assert!(
        out.stdout.starts_with(
            "scanned 3, deleted 0, skipped 0 checked out, 0 damaged, 0 bytes freed in "
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn idle_gc_deletes_sessions_untouched_for_longer() {
    let env = Env::new();
    let old = [env.session(1), env.session(2)];
    let revived = env.session(3);
    age_past(Duration::from_secs(1));
    env.store.touch(&revived).unwrap();
    let fresh = env.session(4);
    // Expired but recently written: --idle alone must not delete it.
    let fresh_expired = env.expired(5);
    let old_bytes: u64 = old.iter().map(|id| env.file_len(id)).sum();

    let out = env.run("gc", &["--idle", "1s", "--json"]);
    out.ok();
    let v = out.json_one();
    assert_eq!(v["scanned"], 5, "{v}");
    assert_eq!(v["deleted"], 2, "{v}");
    assert_eq!(v["skipped_busy"], 0, "{v}");
    assert_eq!(v["bytes_freed"], old_bytes, "{v}");
    let all = [old[0], old[1], revived, fresh, fresh_expired];
    assert_eq!(
        sorted(&env.on_disk(&all)),
        sorted(&[revived, fresh, fresh_expired])
    );

    // --expired together with --idle: the expired one goes too.
    let out = env.run("gc", &["--expired", "--idle", "1s", "--json"]);
    out.ok();
    let v = out.json_one();
    assert_eq!(v["scanned"], 3, "{v}");
    assert_eq!(v["deleted"], 1, "{v}");
    assert_eq!(sorted(&env.on_disk(&all)), sorted(&[revived, fresh]));
}

#[test]
fn held_expired_session_is_skipped_as_busy() {
    let env = Env::new();
    let expired = vec![env.expired(1), env.expired(2)];
    let live = env.session(3);
    // Expire a session while holding it: checkout, change the expiry, save (keeps the lock).
    let held_id = env.session(4);
    let mut held = env.store.checkout::<Dict>(&held_id).unwrap();
    held.set_expiry(Expiry::At(an_hour_ago()));
    held.save().unwrap();
    assert!(env.store.info(&held_id).unwrap().unwrap().is_expired());
    let bytes: u64 = expired.iter().map(|id| env.file_len(id)).sum();

    let out = env.run("gc", &["--json"]);
    let v = out.ok().json_one();
    assert_eq!(v["scanned"], 4, "{v}");
    assert_eq!(v["deleted"], 2, "{v}");
    assert_eq!(v["skipped_busy"], 1, "{v}");
    assert_eq!(v["damaged"], 0, "{v}");
    assert_eq!(v["bytes_freed"], bytes, "{v}");
    assert!(env.store.info(&held_id).unwrap().is_some());
    assert!(env.store.info(&live).unwrap().is_some());
    assert!(env.on_disk(&expired).is_empty());

    // Released, the next pass collects it.
    drop(held);
    let held_bytes = env.file_len(&held_id);
    let v = env.run("gc", &["--json"]).ok().json_one();
    assert_eq!(v["deleted"], 1, "{v}");
    assert_eq!(v["skipped_busy"], 0, "{v}");
    assert_eq!(v["bytes_freed"], held_bytes, "{v}");
    assert!(env.store.info(&held_id).unwrap().is_none());
    assert!(env.store.info(&live).unwrap().is_some());
}

#[test]
fn gc_keeps_data_of_survivors_intact() {
    let env = Env::new();
    let keep: Vec<SessionId> = (0..5).map(|n| env.session(n)).collect();
    for n in 0..5 {
        env.expired(100 + n);
    }
    let v = env.run("gc", &["--expired", "--json"]).ok().json_one();
    assert_eq!(v["deleted"], 5, "{v}");
    for (n, id) in keep.iter().enumerate() {
        let d: Dict = env.store.load(id).unwrap().unwrap();
        assert_eq!(d.get_i64("counter"), Some(n as i64));
    }
}

/// Sets `path`'s access time a day before its modification time and returns it: a read
/// through the page cache then moves it on any mount but `noatime` (`relatime` included).
fn set_atime_a_day_early(path: &Path) -> SystemTime {
    let file = File::open(path).expect("open to set times");
    let modified = file.metadata().expect("stat").modified().expect("mtime");
    let atime = modified - Duration::from_secs(86_400);
    file.set_times(FileTimes::new().set_accessed(atime))
        .expect("set atime");
    atime
}

fn atime(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .expect("stat")
        .accessed()
        .expect("atime")
}

#[test]
fn gc_and_listings_leave_access_times_alone() {
    // gc, ls and stats read every session's header. A read with the access time on would
    // turn each into an inode write (with relatime, the first read after every check-in):
    // a million writes per pass. The walk opens headers with O_NOATIME.
    let env = Env::new();
    // Precondition: this mount records access times at all (else nothing can be shown).
    let control = env.tmp.path().join("control");
    std::fs::write(&control, b"x").unwrap();
    let before = set_atime_a_day_early(&control);
    std::fs::read(&control).unwrap();
    if atime(&control) == before {
        eprintln!(
            "skipped: {} does not record access times",
            control.display()
        );
        return;
    }

    let live: Vec<SessionId> = (0..8).map(|n| env.session(n)).collect();
    let expired = env.expired(9);
    let times: Vec<(PathBuf, SystemTime)> = live
        .iter()
        .map(|id| {
            let path = env.store.session_path(id);
            let t = set_atime_a_day_early(&path);
            (path, t)
        })
        .collect();

    assert_eq!(env.run("ls", &["--json"]).ok().json().len(), 9);
    env.run("stats", &["--json"]).ok();
    let v = env.run("gc", &["--idle", "1h", "--json"]).ok().json_one();
    assert_eq!(
        (v["scanned"].clone(), v["deleted"].clone()),
        (9.into(), 0.into())
    );
    let v = env.run("gc", &["--json"]).ok().json_one();
    assert_eq!(
        (v["scanned"].clone(), v["deleted"].clone()),
        (9.into(), 1.into())
    );
    assert_eq!(env.on_disk(&[expired]), []);

    for (path, t) in &times {
        assert_eq!(atime(path), *t, "access time of {} moved", path.display());
    }
}

#[test]
fn an_admin_without_cap_fowner_walks_sessions_owned_by_another_user() {
    // O_NOATIME is refused (EPERM) to a process that neither owns the file nor has
    // CAP_FOWNER: here, root without CAP_FOWNER reading session files owned by `nobody`
    // (root can still read them: CAP_DAC_OVERRIDE). The walk must fall back to a plain open
    // instead of reporting every session as damaged.
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root (to own files as another user)");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: no setpriv (util-linux) to drop CAP_FOWNER");
        return;
    }
    let env = Env::new();
    let live: Vec<SessionId> = (0..3).map(|n| env.session(n)).collect();
    let expired = [env.expired(3), env.expired(4)];
    for id in live.iter().chain(&expired) {
        std::os::unix::fs::chown(env.store.session_path(id), Some(65534), Some(65534))
            .expect("chown");
    }
    let without_fowner = |args: &[&OsStr]| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--inh-caps=-fowner", "--bounding-set=-fowner", "--"])
            .args(args);
        run_to_end(cmd)
    };
    // Preconditions: setpriv runs here, and the capability is really gone (setting another
    // user's file times needs it).
    without_fowner(&["true".as_ref()]).ok();
    let probe = env.store.session_path(&live[0]);
    let touch = [
        "touch".as_ref(),
        "-a".as_ref(),
        "-d".as_ref(),
        "@0".as_ref(),
    ];
    let touched = without_fowner(&[&touch[..], &[probe.as_os_str()]].concat());
    assert!(
        touched.code != Some(0) && touched.stderr.contains("Operation not permitted"),
        "touch without CAP_FOWNER: {touched:?}"
    );

    let bin: &OsStr = env!("CARGO_BIN_EXE_sessiondir").as_ref();
    let dir = env.dir.as_os_str();
    let ls = without_fowner(&[bin, "ls".as_ref(), "--dir".as_ref(), dir, "--json".as_ref()]);
    assert_eq!(ls.ok().json().len(), 5, "{}", ls.stderr);
    let gc = without_fowner(&[bin, "gc".as_ref(), "--dir".as_ref(), dir, "--json".as_ref()]);
    let v = gc.ok().json_one();
    assert_eq!(v["scanned"], 5, "{v}");
    assert_eq!(v["deleted"], 2, "{v}");
    assert_eq!(v["damaged"], 0, "{v}");
    let all: Vec<SessionId> = live.iter().chain(&expired).copied().collect();
    assert_eq!(sorted(&env.on_disk(&all)), sorted(&live));
}

/// CRC-32 (IEEE), as the forwarding record's last 4 bytes hold it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Where the cycle of `old` left its forwarding record (design §3.6).
fn forward_path(env: &Env, old: &SessionId) -> PathBuf {
    let dir = env.store.session_path(old);
    dir.parent()
        .expect("a shard directory")
        .join(format!(".{old}.fwd"))
}

#[test]
fn gc_removes_expired_forwarding_records_and_counts_them() {
    let env = Env::new();
    // A login a minute ago and one just now: each leaves a record under the old id.
    let (stale, fresh) = (env.session(1), env.session(2));
    let (stale_to, fresh_to) = (
        env.store.cycle_id(&stale).unwrap(),
        env.store.cycle_id(&fresh).unwrap(),
    );
    let (stale_path, fresh_path) = (forward_path(&env, &stale), forward_path(&env, &fresh));
    // Age the first record past its lifetime: cycled and expired long ago, checksum redone.
    let mut bytes = std::fs::read(&stale_path).unwrap();
    assert_eq!((bytes.len(), &bytes[..4]), (64, b"SDFW".as_slice()));
    bytes[8..16].copy_from_slice(&1_000u64.to_le_bytes());
    bytes[16..24].copy_from_slice(&2u64.to_le_bytes());
    let crc = crc32(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&stale_path, &bytes).unwrap();
    assert_eq!(env.store.forwarded(&stale).unwrap(), None, "expired");
    assert!(env.store.forwarded(&fresh).unwrap().is_some());

    let v = env.run("gc", &["--json"]).ok().json_one();
    assert_eq!(v["forwards_removed"], 1, "{v}");
    assert_eq!(v["scanned"], 2, "records are no sessions: {v}");
    assert_eq!(v["deleted"], 0, "{v}");
    assert_eq!(v["damaged"], 0, "{v}");
    assert!(!exists(&stale_path), "the expired record is still there");
    assert!(exists(&fresh_path), "a live record was removed");
    assert_eq!(
        env.store.forwarded(&fresh).unwrap().map(|f| f.to),
        Some(fresh_to)
    );
    assert_eq!(env.on_disk(&[stale_to, fresh_to]).len(), 2);

    // The text report says it too (and a damaged record goes the same way).
    std::fs::write(&fresh_path, b"SDFW garbage").unwrap();
    let out = env.run("gc", &[]);
    out.ok();
    assert!(
        out.stdout
            .trim_end()
            .ends_with("; removed 1 expired forwarding records"),
        "{}",
        out.stdout
    );
    assert!(!exists(&fresh_path));
}
