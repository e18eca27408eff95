//! Reading session files: never follows a symlink, never blocks on a FIFO, never allocates
//! more than the maximum session size, and retries a stale (NFS) handle once.
//!
//! Two kinds of reader exist. A *holder* of the session's lock reads the live file plainly:
//! nobody else writes the session meanwhile. A *lock-free* reader ([`read_frame`],
//! [`read_header`], [`read_header_in`]) may open the live file just before a check-in swaps it
//! with the spare (`crate::fs::atomic::exchange_in`), and then hold the spare, which the next
//! check-in overwrites in place. So a lock-free read is a *committed read*:
//!
//! 1. open the path;
//! 2. pin the file shared, without waiting (`crate::fs::pin`); a writer holding it means it is
//!    a spare being overwritten: go back to 1;
//! 3. `fstat` it (its inode, and its size: one `read` then gets it all), read and verify it;
//! 4. check that the inode read is the one at the path now (`lstat`): if not,
//!    what was read is a spare (an older version, or one whose writer died before its swap):
//!    go back to 1; if nothing is at the path, the session is gone.
//!
//! While the pin is held no writer changes the file, and at step 4 it was live: what was read
//! is the version checked in at that moment, complete. Nobody waits: a retry happens only
//! because a check-in made progress meanwhile.
//!
//! # Activity of sliding sessions
//!
//! A session with an idle lifetime ([`Expiry::Idle`](crate::Expiry::Idle)) also lives from its
//! last *read*: a reader that finds its last activity at least a quarter lifetime old
//! ([`Activity::Record`]) sets the file's modification time to now with `futimens` on the
//! descriptor it already has open, and every reader ([`Activity::Honour`] too) counts that time
//! as the session's last activity (`Header::note_activity`) if it carries the mark readers
//! give the times they set ([`ACTIVITY_MARK_NS`]). The header is not rewritten and
//! nobody waits. A committed read gets the time from the `fstat` it makes anyway, so reading a
//! fresh session costs no extra system call; a plain read asks for it (`fstat`) only when the
//! header alone says the session is a quarter lifetime old. Recording can fail (a read-only
//! mount, a file of another owner): the read does not; the session then slides only with
//! writes.

use std::fs::{File, Metadata};
use std::io::{ErrorKind, Read};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::header::now_ms;
use super::{Frame, HEADER_LEN, Header, parse_frame};
use crate::error::{Corruption, Error};
use crate::fs::beneath::StorePath;

/// Opens a session file for reading: no symlink is followed and a FIFO cannot block the
/// reader (`O_NONBLOCK`). `Ok(None)`: the file does not exist.
pub(crate) fn open_for_read(path: &StorePath) -> Result<Option<File>, Error> {
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK;
    crate::fs::open::open_existing(path, flags, "open")
}

/// Refines a decoding error for a file that is not a regular file (a FIFO reads as empty).
/// Only called on the error path, so the common read costs no `fstat`.
fn not_a_file_or(file: &File, path: &Path, error: Error) -> Error {
    match file.metadata() {
        Ok(m) if !m.is_file() => Error::corrupt(path, Corruption::NotAFile),
        _ => error,
    }
}

/// How a lock-free reader reads (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reads {
    /// Committed reads: pin, read, check the inode is live. Needed wherever a writer may swap
    /// spares, i.e. on every local file system.
    Pinned,
    /// Plain reads, for stores on network and FUSE file systems, where check-ins always rename
    /// a new file (no spare is ever overwritten) and a `flock` may cost a round trip.
    Plain,
}

/// What a read does with a sliding session's activity time (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activity {
    /// Count it (info, exists, gc, admin reads).
    Honour,
    /// Count it, and record this read as activity if the last one is a quarter lifetime old
    /// (a visitor's read: `load`, `snapshot`, `mark_active`).
    Record,
}

/// The nanoseconds, within its millisecond, of every modification time a reader records. A
/// file time that does not carry it was set by something else (the check-in's own write, a
/// copy, a planted file) and is no activity: the chance that a write's time carries it is one
/// in a million, and then it only counts as an activity at the time of that write. On a file
/// system that keeps coarser times (whole seconds) no time carries it: reads record nothing
/// there and sessions slide with writes only.
const ACTIVITY_MARK_NS: u64 = 424_242;

/// The activity a reader recorded in `meta`'s modification time, in Unix milliseconds; `None`
/// if the time was not set by a reader (see [`ACTIVITY_MARK_NS`]).
fn recorded_activity_ms(meta: &Metadata) -> Option<u64> {
    let secs = u64::try_from(meta.mtime()).ok()?;
    let nanos = u64::try_from(meta.mtime_nsec()).ok()?;
    (nanos % 1_000_000 == ACTIVITY_MARK_NS)
        .then(|| secs.saturating_mul(1000).saturating_add(nanos / 1_000_000))
}

/// Notes (and with [`Activity::Record`] records) the activity of the sliding session `file`
/// whose verified header is `header`; `meta`: the file's metadata if the read has it already.
/// Never fails: a time that cannot be read or set leaves the header as it is.
fn settle(header: &mut Header, file: &File, meta: Option<&Metadata>, activity: Activity) {
    if header.ttl_ms == 0 {
        return;
    }
    let now = now_ms();
    let recorded = match meta {
        Some(meta) => recorded_activity_ms(meta),
        // A fresh header needs no look at the file's time: a recorded activity could only
        // move its expiry by less than the throttle, and this read would record none.
        None if now.saturating_sub(header.modified_ms)
            < super::header::activity_throttle_ms(header.ttl_ms) =>
        {
            None
        }
        None => file.metadata().ok().and_then(|m| recorded_activity_ms(&m)),
    };
    if let Some(recorded) = recorded {
        header.note_activity(recorded, now);
    }
    if activity == Activity::Record && header.wants_activity(now) && record(file, now) {
        header.note_activity(now, now);
    }
}

/// Sets `file`'s modification time to `now_ms` (its access time untouched). `false`: the file
/// system or the file's owner does not allow it (design §3.7: the read goes on).
fn record(file: &File, now_ms: u64) -> bool {
    use rustix::fs::{Timespec, Timestamps, UTIME_OMIT};
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: i64::try_from(now_ms / 1000).unwrap_or(i64::MAX),
            // Below 1e9, so it fits every `tv_nsec` type.
            tv_nsec: ((now_ms % 1000) * 1_000_000 + ACTIVITY_MARK_NS) as _,
        },
    };
    rustix::fs::futimens(file, &times).is_ok()
}

/// A held session's header with its recorded activity noted (module docs), for expiry
/// decisions under the lock only: never for fencing, which compares headers as written. Costs
/// one `lstat` of `path`, and only for a sliding session whose header is a quarter lifetime old.
pub(crate) fn with_activity(header: &Header, path: &Path) -> Header {
    let mut noted = *header;
    let now = now_ms();
    if header.ttl_ms != 0
        && now.saturating_sub(header.modified_ms)
            >= super::header::activity_throttle_ms(header.ttl_ms)
        && let Some(active) = std::fs::symlink_metadata(path)
            .ok()
            .and_then(|meta| recorded_activity_ms(&meta))
    {
        noted.note_activity(active, now);
    }
    noted
}

/// How many times a lock-free read looks again at a path whose file kept being swapped under
/// it; every look again means a check-in completed meanwhile.
const MAX_LOOKS: u32 = 1000;

/// Where the inode a lock-free reader read stands now.
enum Standing {
    /// It is the file at the path: what was read is live.
    Live,
    /// Another file is at the path: what was read is a spare.
    Replaced,
    /// Nothing is at the path: the session is gone.
    Gone,
}

/// A committed read (module docs): `open` opens the path, `at_path` stats what the path names
/// now, `read` reads the open file, given its metadata when known (it is under a pin: the
/// `fstat` that identifies the inode comes before the read and spares it the read that finds
/// the end of the file). `Ok(None)`: nothing at the path.
fn read_committed<R>(
    reads: Reads,
    path: &Path,
    open: impl Fn() -> Result<Option<File>, Error>,
    at_path: impl Fn() -> std::io::Result<(u64, u64)>,
    read: impl Fn(&File, Option<&Metadata>) -> Result<R, Error>,
) -> Result<Option<R>, Error> {
    for _ in 0..MAX_LOOKS {
        let Some(file) = open()? else {
            return Ok(None);
        };
        if reads == Reads::Plain {
            return read(&file, None).map(Some);
        }
        if !crate::fs::pin::try_shared(&file, path)? {
            continue; // a writer is filling it: a spare now
        }
        // Pinned: neither content nor size changes until the pin is dropped.
        let ours = file.metadata().map_err(|e| Error::io("inspect", path, e))?;
        let result = read(&file, Some(&ours));
        let standing = match at_path() {
            Ok((dev, ino)) if (dev, ino) == (ours.dev(), ours.ino()) => Standing::Live,
            Ok(_) => Standing::Replaced,
            Err(e) if e.kind() == ErrorKind::NotFound => Standing::Gone,
            Err(e) => return Err(Error::io("inspect", path, e)),
        };
        match standing {
            Standing::Live => return result.map(Some),
            Standing::Replaced => continue,
            Standing::Gone => return Ok(None),
        }
    }
    Err(Error::io(
        "read",
        path,
        std::io::Error::other(format!(
            "the session file was swapped {MAX_LOOKS} times while being read"
        )),
    ))
}

/// Reads and verifies a whole session file, lock-free: a committed read (module docs).
/// `Ok(None)`: the file does not exist.
///
/// Reads at most `HEADER_LEN + max_payload + 1` bytes, so a huge or lying file cannot make it
/// allocate more than the configured maximum.
///
/// A sliding session's header comes back with its recorded activity noted, and with
/// [`Activity::Record`] this read recorded as activity when due (module docs).
pub(crate) fn read_frame(
    path: &StorePath,
    max_payload: u64,
    reads: Reads,
    activity: Activity,
) -> Result<Option<Frame>, Error> {
    read_at_path(path, reads, |file, meta| {
        let mut frame = read_frame_from(file, path, max_payload, meta.map(Metadata::len))?;
        settle(&mut frame.header, file, meta, activity);
        Ok(frame)
    })
}

/// A committed read of `path` (module docs) with `read`, retrying a stale (NFS) handle: on
/// NFS-like file systems a check-in elsewhere can turn our handle stale mid-read.
fn read_at_path<R>(
    path: &StorePath,
    reads: Reads,
    read: impl Fn(&File, Option<&Metadata>) -> Result<R, Error>,
) -> Result<Option<R>, Error> {
    crate::fs::netfs::retry_stale(|| {
        read_committed(
            reads,
            path,
            || open_for_read(path),
            || path.identity(),
            &read,
        )
    })
}

/// A plain read of `path` with `read`, under the session's lock (no writer can be at work
/// on it), retrying a stale (NFS) handle.
fn read_held<R>(
    path: &StorePath,
    read: impl Fn(&File) -> Result<R, Error>,
) -> Result<Option<R>, Error> {
    crate::fs::netfs::retry_stale(|| {
        let Some(file) = open_for_read(path)? else {
            return Ok(None);
        };
        read(&file).map(Some)
    })
}

/// Reads and verifies a whole session file under its lock (no writer can be at work on it).
/// `Ok(None)`: the file does not exist.
pub(crate) fn read_frame_held(path: &StorePath, max_payload: u64) -> Result<Option<Frame>, Error> {
    read_held(path, |file| read_frame_from(file, path, max_payload, None))
}

/// Reads and verifies a whole session file from an open file. `size`: the file's length, if
/// known and fixed (pinned); a file that fits the first buffer is then read with one `read` of
/// exactly its size.
pub(crate) fn read_frame_from(
    file: &File,
    path: &Path,
    max_payload: u64,
    size: Option<u64>,
) -> Result<Frame, Error> {
    const FIRST: usize = HEADER_LEN + 4096;
    if let Some(len) = size.and_then(|n| usize::try_from(n).ok())
        && len <= FIRST
    {
        let mut bytes = vec![0u8; len];
        let filled = read_full(file, path, &mut bytes)?;
        bytes.truncate(filled);
        return parse(file, path, bytes, max_payload);
    }
    // One read covers small sessions (plus one more to see the end of the file).
    let mut bytes = vec![0u8; FIRST];
    let mut filled = read_full(file, path, &mut bytes)?;
    if filled == bytes.len() {
        // Larger than the first buffer: size it from the header, exactly, plus one byte to
        // notice trailing data. Never more than the configured maximum allows.
        let payload = Header::decode(path, &bytes[..HEADER_LEN]).map_or(0, |h| h.payload_len);
        let want = HEADER_LEN as u64 + u64::from(payload).min(max_payload) + 1;
        if let Ok(want) = usize::try_from(want)
            && want > bytes.len()
        {
            bytes.resize(want, 0);
            filled += read_full(file, path, &mut bytes[filled..])?;
        }
    }
    bytes.truncate(filled);
    parse(file, path, bytes, max_payload)
}

fn parse(file: &File, path: &Path, bytes: Vec<u8>, max_payload: u64) -> Result<Frame, Error> {
    parse_frame(path, bytes, max_payload).map_err(|e| match e {
        Error::Corrupt { .. } => not_a_file_or(file, path, e),
        e => e,
    })
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(mut file: &File, path: &Path, buf: &mut [u8]) -> Result<usize, Error> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                return Err(Error::corrupt(path, Corruption::NotAFile));
            }
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
    Ok(filled)
}

/// Reads and verifies only the header, lock-free: a committed read (module docs), a sliding
/// session's activity noted (and recorded, with [`Activity::Record`]).
/// `Ok(None)`: the file does not exist.
pub(crate) fn read_header(
    path: &StorePath,
    reads: Reads,
    activity: Activity,
) -> Result<Option<Header>, Error> {
    read_at_path(path, reads, |file, meta| {
        let mut header = read_header_from(file, path)?;
        settle(&mut header, file, meta, activity);
        Ok(header)
    })
}

/// Reads and verifies only the header under the session's lock. `Ok(None)`: no file.
pub(crate) fn read_header_held(path: &StorePath) -> Result<Option<Header>, Error> {
    read_held(path, |file| read_header_from(file, path))
}

/// [`read_header`] of the session file `name` in the open shard directory `dir`, opened and
/// checked relative to it (see [`crate::fs::open::open_in_dir`]); `path` names it in errors.
pub(crate) fn read_header_in(
    dir: BorrowedFd<'_>,
    name: &str,
    path: &Path,
    noatime: &mut bool,
    reads: Reads,
) -> Result<Option<Header>, Error> {
    let flag = std::cell::Cell::new(*noatime);
    let result = crate::fs::netfs::retry_stale(|| {
        read_committed(
            reads,
            path,
            || {
                let mut asked = flag.get();
                let opened = crate::fs::open::open_in_dir(dir, name, path, &mut asked);
                flag.set(asked);
                opened
            },
            || {
                rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| (st.st_dev, st.st_ino))
                    .map_err(std::io::Error::from)
            },
            |file, meta| {
                let mut header = read_header_from(file, path)?;
                settle(&mut header, file, meta, Activity::Honour);
                Ok(header)
            },
        )
    });
    *noatime = flag.get();
    result
}

/// Reads and verifies the header of an open file, from its current offset.
fn read_header_from(file: &File, path: &Path) -> Result<Header, Error> {
    let mut buf = [0u8; HEADER_LEN];
    let filled = read_full(file, path, &mut buf)?;
    Header::decode(path, &buf[..filled]).map_err(|e| not_a_file_or(file, path, e))
}

/// Both lock-free readers run on one open file, for the fuzz targets in `fuzz/` and their
/// regression test; see [`crate::fuzzing`]. Not a stable API.
///
/// The first result is what [`Store::info`](crate::Store::info) (and gc, and the watcher) makes
/// of the file: its header alone. The second is what [`Store::inspect`](crate::Store::inspect)
/// makes of it: the whole file, verified, then the payload decoded as a [`Dict`](crate::Dict).
/// Both read from offset 0, through the same functions the store calls once it has opened the
/// file; the id in the results is a fixed placeholder.
#[cfg(feature = "fuzzing")]
pub fn read_session_file(
    file: &File,
    max_payload: u64,
) -> (
    Result<crate::SessionInfo, Error>,
    Result<crate::Snapshot<crate::Dict>, Error>,
) {
    use std::io::{Seek, SeekFrom};

    use crate::{Dict, SessionId, SessionInfo, Snapshot};

    // Each reader starts at offset 0, as on a freshly opened file.
    fn rewind(mut file: &File, path: &Path) -> Result<(), Error> {
        file.seek(SeekFrom::Start(0))
            .map(drop)
            .map_err(|e| Error::io("seek", path, e))
    }
    // The results carry a fixed id: the file is not at any session's path.
    let placeholder = SessionId::from_bytes([0; 20]);
    let info = |path: &Path| -> Result<SessionInfo, Error> {
        rewind(file, path)?;
        let header = read_header_from(file, path)?;
        Ok(SessionInfo::from_header(placeholder, &header))
    };
    let snapshot = |path: &Path| -> Result<Snapshot<Dict>, Error> {
        rewind(file, path)?;
        let frame = read_frame_from(file, path, max_payload, None)?;
        Ok(Snapshot {
            data: frame.decode(path)?,
            info: SessionInfo::from_header(placeholder, &frame.header),
        })
    };

    let path = Path::new("fuzz-input");
    (info(path), snapshot(path))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::format::encode;
    use crate::fs::beneath::Root;
    use crate::settings::Expiry;

    /// A valid session file at `path` holding `n`, at generation `generation`.
    fn write_version(path: &Path, n: u64, generation: u64) {
        let header = Header {
            generation,
            ..Header::new(Expiry::Never, 1)
        };
        let (bytes, _) = encode(path, header, &n, 1 << 20).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn read_n(path: &StorePath, open: impl Fn() -> Result<Option<File>, Error>) -> Option<u64> {
        read_committed(
            Reads::Pinned,
            path,
            open,
            || path.identity(),
            |file, meta| read_frame_from(file, path, 1 << 20, meta.map(Metadata::len)),
        )
        .unwrap()
        .map(|frame| frame.decode::<u64>(path).unwrap())
    }

    /// A reader that opened the live file just before a check-in swapped it out holds the
    /// spare; here a writer then filled that spare with a version and died before swapping
    /// it in. The committed read must not return it: it looks again and gets the live one.
    #[test]
    fn a_spare_opened_before_a_swap_is_never_returned() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let live = Root::join(&root, "live");
        let spare = Root::join(&root, ".live.spare");
        write_version(&live, 2, 2);
        write_version(&spare, 3, 3); // never checked in
        let looks = Cell::new(0);
        let got = read_n(&live, || {
            looks.set(looks.get() + 1);
            // The first open is the stale one: the inode now at the spare's name.
            open_for_read(if looks.get() == 1 { &spare } else { &live })
        });
        assert_eq!(got, Some(2));
        assert_eq!(looks.get(), 2, "the stale open was not looked past");
    }

    /// A file a writer holds pinned exclusively is a spare being overwritten: the reader does
    /// not read it (nor wait for it) but opens the path again.
    #[test]
    fn a_file_pinned_by_a_writer_is_skipped_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let live = Root::join(&root, "live");
        let spare = Root::join(&root, ".live.spare");
        write_version(&live, 5, 5);
        write_version(&spare, 6, 6);
        let writer = File::options().read(true).write(true).open(&spare).unwrap();
        assert!(crate::fs::pin::try_exclusive(&writer, &spare).unwrap());
        let looks = Cell::new(0);
        let got = read_n(&live, || {
            looks.set(looks.get() + 1);
            open_for_read(if looks.get() == 1 { &spare } else { &live })
        });
        assert_eq!(got, Some(5));
        assert_eq!(looks.get(), 2);
    }

    /// A reader that finds nothing at the path after its read reports the session gone, even
    /// if the inode it read held a valid version.
    #[test]
    fn a_file_no_longer_at_the_path_reads_as_gone() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let live = Root::join(&root, "live");
        let elsewhere = Root::join(&root, "elsewhere");
        write_version(&elsewhere, 7, 7);
        assert_eq!(read_n(&live, || open_for_read(&elsewhere)), None);
    }
}
