//! Damaged session files: every operation returns a typed error naming the path, never panics
//! and never blocks; the damaged file stays exactly as it was; other sessions are unaffected;
//! and the damaged session can still be deleted (delete takes the lock without decoding).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use sessiondir::{Corruption, Dict, Error, Expiry, FORMAT_VERSION, HEADER_LEN, SessionId, Store};

use crate::common::{
    EntryState, TestStore, compute_header_crc, entry_state, fix_header_crc, lock_path_of,
};

const DEFAULT_MAX: u64 = 1 << 20;

/// A store with a victim session (about to be damaged) and a healthy neighbour.
struct Fixture {
    ts: TestStore,
    /// The session whose file gets damaged.
    id: SessionId,
    /// Its file.
    path: PathBuf,
    /// Its file as written by the store.
    orig: Vec<u8>,
    /// Healthy sessions in the same store.
    others: Vec<SessionId>,
}

fn victim_data() -> Dict {
    let mut d = Dict::new();
    d.insert("user", "ada");
    d.insert("cart", "tea, scones, jam");
    d.insert("visits", 12i64);
    d
}

impl Fixture {
    fn new() -> Self {
        Self::in_store(TestStore::new())
    }

    fn in_store(ts: TestStore) -> Self {
        let mut healthy = Dict::new();
        healthy.insert("counter", 0i64);
        let others = vec![ts.store.create(&healthy).unwrap()];
        let id = ts.store.create(&victim_data()).unwrap();
        let path = ts.store.session_path(&id);
        let orig = fs::read(&path).unwrap();
        assert!(orig.len() > HEADER_LEN + 20);
        Fixture {
            ts,
            id,
            path,
            orig,
            others,
        }
    }

    fn store(&self) -> &Store {
        &self.ts.store
    }

    /// Replaces the victim's file with `bytes` (not through the store).
    fn write(&self, bytes: &[u8]) {
        fs::write(&self.path, bytes).unwrap();
    }

    fn remove(&self) {
        unlink(&self.path);
    }
}

/// Unlinks a store file from outside the store, as an operator or attacker would (tests
/// damage stores on purpose; the library's own unlinks all go through src/atomic.rs).
#[allow(clippy::disallowed_methods)]
fn unlink(path: &Path) {
    fs::remove_file(path).unwrap_or_else(|e| panic!("unlink {}: {e}", path.display()));
}

/// The error every reading operation on the damaged session must return.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    Corrupt(Corruption),
    Unsupported(u16),
    TooLarge {
        size: u64,
        max: u64,
    },
    UnsafePath,
    /// Any error that names the path (for cases whose exact variant is checked elsewhere).
    AnyNamingPath,
}

fn matches(e: &Error, want: &Want, path: &Path) -> bool {
    match (want, e) {
        (Want::Corrupt(kind), Error::Corrupt { path: p, kind: k }) => p == path && k == kind,
        (
            Want::Unsupported(v),
            Error::UnsupportedVersion {
                path: p,
                found,
                supported,
            },
        ) => p == path && found == v && *supported == FORMAT_VERSION,
        (
            Want::TooLarge { size, max },
            Error::TooLarge {
                path: p,
                size: s,
                max: m,
            },
        ) => p == path && s == size && m == max,
        (Want::UnsafePath, Error::UnsafePath { path: p, .. }) => p == path,
        (Want::AnyNamingPath, _) => true,
        _ => false,
    }
}

/// How the damaged session shows up apart from its reading error.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// The header alone still verifies (payload-level damage): `info` and `exists` succeed.
    header_readable: bool,
    /// A regular file: `ids()` lists it (symlinks, directories, FIFOs are not listed).
    listed: bool,
    /// `delete` removes it.
    deletable: bool,
}

const PAYLOAD_DAMAGE: Shape = Shape {
    header_readable: true,
    listed: true,
    deletable: true,
};
const HEADER_DAMAGE: Shape = Shape {
    header_readable: false,
    listed: true,
    deletable: true,
};
const NOT_LISTED: Shape = Shape {
    header_readable: false,
    listed: false,
    deletable: true,
};

#[track_caller]
fn expect_err<T>(op: &str, r: Result<T, Error>, want: &Want, path: &Path) {
    let e = match r {
        Ok(_) => panic!("{op}: succeeded on a damaged session (wanted {want:?})"),
        Err(e) => e,
    };
    assert!(matches(&e, want, path), "{op}: wanted {want:?}, got {e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "{op}: message does not name {}: {msg}",
        path.display()
    );
}

/// Runs every operation against the damaged session and checks all the promises.
fn check(f: &Fixture, want: Want, shape: Shape) {
    let store = f.store();
    let id = &f.id;
    let path = &f.path;
    let lock = lock_path_of(store, id);
    let damaged: Option<EntryState> = entry_state(path);
    assert!(
        damaged.is_some(),
        "the test did not put anything at the path"
    );

    expect_err("load", store.load::<Dict>(id), &want, path);
    expect_err("snapshot", store.snapshot::<Dict>(id), &want, path);
    expect_err("checkout", store.checkout::<Dict>(id), &want, path);
    expect_err("try_checkout", store.try_checkout::<Dict>(id), &want, path);
    expect_err("touch", store.touch(id), &want, path);
    expect_err(
        "set_expiry",
        store.set_expiry(id, Expiry::Never),
        &want,
        path,
    );
    if shape.header_readable {
        let info = store.info(id).unwrap().expect("header still readable");
        assert_eq!(info.id, *id);
        assert_eq!(info.generation, 1);
        assert!(store.exists(id).unwrap());
    } else {
        expect_err("info", store.info(id), &want, path);
        expect_err("exists", store.exists(id), &want, path);
        expect_err("cycle_id", store.cycle_id(id), &want, path);
    }
    // A failed check-out released its lock: it never blocks anyone.
    assert!(lock.is_file());

    // Listing and gc go on past it, counting header damage.
    let listed: Vec<Result<SessionId, Error>> = store.ids().collect();
    let listed: Vec<SessionId> = listed.into_iter().map(Result::unwrap).collect();
    assert_eq!(listed.contains(id), shape.listed, "ids() {listed:?}");
    assert_eq!(listed.len(), f.others.len() + usize::from(shape.listed));
    let infos: Vec<Result<sessiondir::SessionInfo, Error>> = store.sessions().collect();
    let bad: Vec<&Error> = infos.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(
        bad.len(),
        usize::from(shape.listed && !shape.header_readable),
        "sessions(): {bad:?}"
    );
    for e in bad {
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
    let report = store.delete_expired().unwrap();
    assert_eq!(report.scanned, listed.len() as u64, "{report:?}");
    assert_eq!(report.deleted, 0, "{report:?}");
    assert_eq!(
        report.damaged,
        u64::from(shape.listed && !shape.header_readable),
        "{report:?}"
    );
    assert_eq!(store.tidy().unwrap(), sessiondir::TidyReport::default());

    // The damaged file is left exactly as it was.
    assert_eq!(entry_state(path), damaged, "the damaged file was changed");

    // The other sessions are unaffected.
    for other in &f.others {
        let before: Dict = store.load(other).unwrap().expect("healthy session loads");
        let mut co = store.checkout::<Dict>(other).unwrap();
        co.data_mut().increment("counter", 1).unwrap();
        co.check_in().unwrap();
        let after: Dict = store.load(other).unwrap().unwrap();
        assert_eq!(
            after.get_i64("counter"),
            before.get_i64("counter").map(|n| n + 1)
        );
    }

    // Delete takes the lock without decoding and removes it.
    if shape.deletable {
        assert!(store.delete(id).unwrap(), "delete of the damaged session");
        assert_eq!(entry_state(path), None);
        assert_eq!(entry_state(&lock), None);
        assert_eq!(store.load::<Dict>(id).unwrap(), None);
        assert_eq!(store.info(id).unwrap(), None);
        assert!(!store.delete(id).unwrap());
        let left: Vec<SessionId> = store.ids().map(Result::unwrap).collect();
        assert_eq!(left.len(), f.others.len());
    }
}

/// Runs `f` on another thread and fails if it has not finished after `secs` seconds.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what} did not finish within {secs} s: it blocked"),
    }
}

fn payload_crc(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[52..56].try_into().unwrap())
}

fn header_crc(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[56..60].try_into().unwrap())
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Short and long files

#[test]
fn zero_byte_file() {
    let f = Fixture::new();
    f.write(b"");
    check(&f, Want::Corrupt(Corruption::Empty), HEADER_DAMAGE);
}

#[test]
fn truncated_header() {
    let f = Fixture::new();
    f.write(&f.orig[..10]);
    let want = Want::Corrupt(Corruption::Truncated {
        len: 10,
        expected: HEADER_LEN as u64,
    });
    check(&f, want, HEADER_DAMAGE);

    // Shorter than the magic.
    let f = Fixture::new();
    f.write(&f.orig[..3]);
    check(&f, Want::Corrupt(Corruption::BadMagic), HEADER_DAMAGE);

    // One byte short of a header.
    let f = Fixture::new();
    f.write(&f.orig[..HEADER_LEN - 1]);
    let want = Want::Corrupt(Corruption::Truncated {
        len: HEADER_LEN as u64 - 1,
        expected: HEADER_LEN as u64,
    });
    check(&f, want, HEADER_DAMAGE);
}

#[test]
fn truncated_payload() {
    for cut in [1usize, 5] {
        let f = Fixture::new();
        let n = f.orig.len();
        f.write(&f.orig[..n - cut]);
        let want = Want::Corrupt(Corruption::Truncated {
            len: (n - cut) as u64,
            expected: n as u64,
        });
        check(&f, want, PAYLOAD_DAMAGE);
    }
    // The header alone, no payload at all.
    let f = Fixture::new();
    f.write(&f.orig[..HEADER_LEN]);
    let want = Want::Corrupt(Corruption::Truncated {
        len: HEADER_LEN as u64,
        expected: f.orig.len() as u64,
    });
    check(&f, want, PAYLOAD_DAMAGE);
}

#[test]
fn trailing_garbage() {
    let f = Fixture::new();
    let n = f.orig.len() as u64;
    let mut bytes = f.orig.clone();
    bytes.extend_from_slice(b"GARBAGE!");
    f.write(&bytes);
    let want = Want::Corrupt(Corruption::TrailingBytes {
        len: n + 8,
        expected: n,
    });
    check(&f, want, PAYLOAD_DAMAGE);

    // A single extra zero byte is caught too.
    let f = Fixture::new();
    let mut bytes = f.orig.clone();
    bytes.push(0);
    f.write(&bytes);
    let want = Want::Corrupt(Corruption::TrailingBytes {
        len: n + 1,
        expected: n,
    });
    check(&f, want, PAYLOAD_DAMAGE);
}

#[test]
fn huge_file_is_read_only_up_to_the_limit() {
    // A valid header followed by 3 MiB: the header says the file is small, so reading stops
    // after the first 4 KiB buffer instead of reading the rest (and never more than one byte
    // past the largest allowed file).
    let f = Fixture::new();
    let mut bytes = f.orig.clone();
    bytes.resize(3 << 20, 0xab);
    f.write(&bytes);
    let first_buffer = HEADER_LEN as u64 + 4096;
    assert!(first_buffer < HEADER_LEN as u64 + DEFAULT_MAX + 1);
    let want = Want::Corrupt(Corruption::TrailingBytes {
        len: first_buffer,
        expected: f.orig.len() as u64,
    });
    check(&f, want, PAYLOAD_DAMAGE);
}

// ---------------------------------------------------------------------------------------------
// Not a session file

#[test]
fn wrong_magic() {
    let f = Fixture::new();
    let mut bytes = f.orig.clone();
    bytes[0..4].copy_from_slice(b"SDIX");
    f.write(&bytes);
    check(&f, Want::Corrupt(Corruption::BadMagic), HEADER_DAMAGE);
}

#[test]
fn random_garbage() {
    for (len, seed) in [(1usize, 1u64), (63, 2), (64, 3), (300, 4), (100_000, 5)] {
        let f = Fixture::new();
        let mut bytes = garbage(len, seed);
        bytes[0] = b'#'; // not 'S': never the magic
        f.write(&bytes);
        check(&f, Want::Corrupt(Corruption::BadMagic), HEADER_DAMAGE);
    }
}

#[test]
fn garbage_behind_a_valid_magic_and_version() {
    let f = Fixture::new();
    let mut bytes = garbage(300, 42);
    bytes[0..4].copy_from_slice(b"SDIR");
    bytes[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let computed = compute_header_crc(&bytes);
    let stored = header_crc(&bytes);
    assert_ne!(stored, computed);
    f.write(&bytes);
    check(
        &f,
        Want::Corrupt(Corruption::ChecksumMismatch { stored, computed }),
        HEADER_DAMAGE,
    );
}

// ---------------------------------------------------------------------------------------------
// Header fields

#[test]
fn future_format_version() {
    for version in [2u16, 0, u16::MAX] {
        let f = Fixture::new();
        let mut bytes = f.orig.clone();
        bytes[4..6].copy_from_slice(&version.to_le_bytes());
        fix_header_crc(&mut bytes);
        f.write(&bytes);
        let msg = f.store().load::<Dict>(&f.id).unwrap_err().to_string();
        assert!(msg.contains(&format!("format version {version}")), "{msg}");
        check(&f, Want::Unsupported(version), HEADER_DAMAGE);
    }
}

#[test]
fn unknown_header_flags() {
    for flags in [1u16, 0x8000] {
        let f = Fixture::new();
        let mut bytes = f.orig.clone();
        bytes[6..8].copy_from_slice(&flags.to_le_bytes());
        fix_header_crc(&mut bytes);
        f.write(&bytes);
        check(
            &f,
            Want::Corrupt(Corruption::UnknownFlags(flags)),
            HEADER_DAMAGE,
        );
    }
}

#[test]
fn flipped_payload_byte() {
    for (offset, mask) in [(0usize, 0x01u8), (7, 0xff), (usize::MAX, 0x80)] {
        let f = Fixture::new();
        let mut bytes = f.orig.clone();
        let at = if offset == usize::MAX {
            bytes.len() - 1
        } else {
            HEADER_LEN + offset
        };
        bytes[at] ^= mask;
        let stored = payload_crc(&bytes);
        let computed = crc32fast::hash(&bytes[HEADER_LEN..]);
        f.write(&bytes);
        check(
            &f,
            Want::Corrupt(Corruption::ChecksumMismatch { stored, computed }),
            PAYLOAD_DAMAGE,
        );
    }
}

#[test]
fn flipped_header_byte() {
    // generation, created, modified, expires, ttl, payload_len, payload_crc, header_crc.
    // Every field after the version, the checksum itself, and the reserved bytes it covers.
    for at in [8usize, 16, 24, 33, 40, 48, 52, 56, 59, 60, 63] {
        let f = Fixture::new();
        let mut bytes = f.orig.clone();
        bytes[at] ^= 0x10;
        let stored = header_crc(&bytes);
        let computed = compute_header_crc(&bytes);
        f.write(&bytes);
        check(
            &f,
            Want::Corrupt(Corruption::ChecksumMismatch { stored, computed }),
            HEADER_DAMAGE,
        );
    }
}

#[test]
fn payload_len_u32_max_with_a_valid_header_checksum() {
    let f = Fixture::new();
    let mut bytes = f.orig.clone();
    bytes[48..52].copy_from_slice(&u32::MAX.to_le_bytes());
    fix_header_crc(&mut bytes);
    f.write(&bytes);
    // The header itself is valid, so info reports the (absurd) claim without reading more.
    let info = f.store().info(&f.id).unwrap().unwrap();
    assert_eq!(info.payload_len, u32::MAX);
    let want = Want::TooLarge {
        size: u64::from(u32::MAX),
        max: DEFAULT_MAX,
    };
    check(&f, want, PAYLOAD_DAMAGE);
}

#[test]
fn payload_len_larger_than_the_file_within_the_limit() {
    let f = Fixture::new();
    let mut bytes = f.orig.clone();
    let real = (bytes.len() - HEADER_LEN) as u32;
    bytes[48..52].copy_from_slice(&(real + 1000).to_le_bytes());
    fix_header_crc(&mut bytes);
    f.write(&bytes);
    let want = Want::Corrupt(Corruption::Truncated {
        len: f.orig.len() as u64,
        expected: f.orig.len() as u64 + 1000,
    });
    check(&f, want, PAYLOAD_DAMAGE);
}

#[test]
fn session_bigger_than_max_session_size() {
    // A session written by a handle with a larger limit is TooLarge for a handle with a smaller
    // one; the file is fine and the larger handle still reads it.
    let ts = TestStore::new();
    let big: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
    let id = ts.store.create(&big).unwrap();
    let path = ts.store.session_path(&id);
    let before = entry_state(&path);
    let small = Store::builder(&ts.dir)
        .max_session_size(1000)
        .open()
        .unwrap();
    let want = Want::TooLarge {
        size: 2002,
        max: 1000,
    };
    expect_err("load", small.load::<Vec<u8>>(&id), &want, &path);
    expect_err("checkout", small.checkout::<Vec<u8>>(&id), &want, &path);
    expect_err("touch", small.touch(&id), &want, &path);
    assert_eq!(small.info(&id).unwrap().unwrap().payload_len, 2002);
    assert_eq!(entry_state(&path), before);
    assert_eq!(ts.store.load::<Vec<u8>>(&id).unwrap(), Some(big.clone()));
    assert!(small.delete(&id).unwrap());
    assert_eq!(entry_state(&path), None);

    // In a store limited to 1000 bytes, a 2002-byte session file on disk is refused the same
    // way (and still deleted).
    let donor = TestStore::new();
    let donor_id = donor.store.create(&big).unwrap();
    let bytes = fs::read(donor.store.session_path(&donor_id)).unwrap();
    let f = Fixture::in_store(TestStore::with(|b| b.max_session_size(1000)));
    f.write(&bytes);
    let want = Want::TooLarge {
        size: 2002,
        max: 1000,
    };
    check(&f, want, PAYLOAD_DAMAGE);
}

// ---------------------------------------------------------------------------------------------
// Not a regular file

#[test]
fn directory_at_the_session_path() {
    let f = Fixture::new();
    f.remove();
    fs::create_dir(&f.path).unwrap();
    fs::write(f.path.join("inside"), b"x").unwrap();
    check(
        &f,
        Want::Corrupt(Corruption::NotAFile),
        Shape {
            header_readable: false,
            listed: false,
            deletable: false,
        },
    );
    // delete refuses to remove a directory: a typed error naming the path, and the directory
    // and its contents stay.
    match f.store().delete(&f.id) {
        Err(Error::Io { op, path, .. }) => {
            assert_eq!(op, "remove");
            assert_eq!(path, f.path);
        }
        other => panic!("expected an Io error from delete, got {other:?}"),
    }
    assert_eq!(fs::read(f.path.join("inside")).unwrap(), b"x");
    // The lock was released: the healthy neighbour and the damaged id are not blocked.
    expect_err(
        "try_checkout after delete",
        f.store().try_checkout::<Dict>(&f.id),
        &Want::Corrupt(Corruption::NotAFile),
        &f.path,
    );
}

#[test]
fn symlink_to_another_valid_session_is_never_followed() {
    let f = Fixture::new();
    let mut target_data = Dict::new();
    target_data.insert("counter", 100i64);
    let target = f.store().create(&target_data).unwrap();
    let target_path = f.store().session_path(&target);
    f.remove();
    std::os::unix::fs::symlink(&target_path, &f.path).unwrap();
    let mut f = f;
    f.others.push(target);
    check(&f, Want::UnsafePath, NOT_LISTED);
    // The target was never read or written through the symlink: its counter moved only through
    // its own id, once, by the healthy-neighbour round trip in `check`.
    let now: Dict = f.store().load(&target).unwrap().unwrap();
    assert_eq!(now.get_i64("counter"), Some(101));
    assert!(target_path.is_file());
}

#[test]
fn symlink_to_etc_passwd_is_never_followed() {
    let target = Path::new("/etc/passwd");
    let before = entry_state(target);
    assert!(before.is_some(), "this test needs /etc/passwd");
    let f = Fixture::new();
    f.remove();
    std::os::unix::fs::symlink(target, &f.path).unwrap();
    check(&f, Want::UnsafePath, NOT_LISTED);
    assert_eq!(entry_state(target), before, "/etc/passwd changed");
}

#[test]
fn dangling_symlink_is_never_followed() {
    let f = Fixture::new();
    let target = f.ts.dir.parent().unwrap().join("would-be-created");
    f.remove();
    std::os::unix::fs::symlink(&target, &f.path).unwrap();
    check(&f, Want::UnsafePath, NOT_LISTED);
    assert_eq!(
        entry_state(&target),
        None,
        "the symlink's target was created"
    );
}

fn make_fifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success());
}

#[test]
fn fifo_does_not_block_and_is_refused() {
    let f = Fixture::new();
    f.remove();
    make_fifo(&f.path);
    within(20, "operations on a FIFO session path", move || {
        check(&f, Want::AnyNamingPath, NOT_LISTED);
    });
}

#[test]
fn fifo_is_reported_as_not_a_file() {
    let f = Fixture::new();
    f.remove();
    make_fifo(&f.path);
    within(20, "operations on a FIFO session path", move || {
        check(&f, Want::Corrupt(Corruption::NotAFile), NOT_LISTED);
    });
}

#[test]
fn socket_does_not_block_and_is_refused() {
    let f = Fixture::new();
    f.remove();
    let _listener = std::os::unix::net::UnixListener::bind(&f.path).unwrap();
    within(20, "operations on a socket session path", move || {
        check(&f, Want::AnyNamingPath, NOT_LISTED);
    });
}

#[test]
fn socket_is_reported_as_not_a_file() {
    let f = Fixture::new();
    f.remove();
    let _listener = std::os::unix::net::UnixListener::bind(&f.path).unwrap();
    within(20, "operations on a socket session path", move || {
        check(&f, Want::Corrupt(Corruption::NotAFile), NOT_LISTED);
    });
}

// ---------------------------------------------------------------------------------------------
// Damaged lock files

#[test]
fn lock_file_replaced_by_a_symlink_is_never_followed() {
    let target = Path::new("/etc/passwd");
    let before = entry_state(target);
    let f = Fixture::new();
    let lock = lock_path_of(f.store(), &f.id);
    unlink(&lock);
    std::os::unix::fs::symlink(target, &lock).unwrap();
    let lock_before = entry_state(&lock);

    // Lock-free reads do not need the lock file.
    assert_eq!(f.store().load::<Dict>(&f.id).unwrap(), Some(victim_data()));
    let want = Want::UnsafePath;
    expect_err("checkout", f.store().checkout::<Dict>(&f.id), &want, &lock);
    expect_err(
        "try_checkout",
        f.store().try_checkout::<Dict>(&f.id),
        &want,
        &lock,
    );
    expect_err("touch", f.store().touch(&f.id), &want, &lock);
    expect_err("cycle_id", f.store().cycle_id(&f.id), &want, &lock);
    expect_err("delete", f.store().delete(&f.id), &want, &lock);
    assert_eq!(entry_state(&lock), lock_before);
    assert_eq!(entry_state(target), before, "/etc/passwd changed");
    assert_eq!(fs::read(&f.path).unwrap(), f.orig);
    // Neighbours are unaffected.
    let other = f.others[0];
    f.store()
        .checkout::<Dict>(&other)
        .unwrap()
        .check_in()
        .unwrap();
}
