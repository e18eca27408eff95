//! Lock-free reading of session files: never follows a symlink, never blocks on a FIFO, never
//! allocates more than the maximum session size, and retries a stale (NFS) handle once.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::BorrowedFd;
use std::path::Path;

use super::{Frame, HEADER_LEN, Header, parse_frame};
use crate::error::{Corruption, Error};

/// Opens a session file for reading: no symlink is followed and a FIFO cannot block the
/// reader (`O_NONBLOCK`). `Ok(None)`: the file does not exist.
pub(crate) fn open_for_read(path: &Path) -> Result<Option<File>, Error> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    crate::fs::open::open_existing(&mut options, libc::O_NONBLOCK, path, "open")
}

/// Refines a decoding error for a file that is not a regular file (a FIFO reads as empty).
/// Only called on the error path, so the common read costs no `fstat`.
fn not_a_file_or(file: &File, path: &Path, error: Error) -> Error {
    match file.metadata() {
        Ok(m) if !m.is_file() => Error::corrupt(path, Corruption::NotAFile),
        _ => error,
    }
}

/// Reads and verifies a whole session file. `Ok(None)`: the file does not exist.
///
/// Reads at most `HEADER_LEN + max_payload + 1` bytes, so a huge or lying file cannot make it
/// allocate more than the configured maximum.
pub(crate) fn read_frame(path: &Path, max_payload: u64) -> Result<Option<Frame>, Error> {
    // On NFS-like file systems a check-in elsewhere can turn our handle stale mid-read.
    crate::fs::netfs::retry_stale(|| {
        let Some(file) = open_for_read(path)? else {
            return Ok(None);
        };
        read_frame_from(&file, path, max_payload).map(Some)
    })
}

pub(crate) fn read_frame_from(file: &File, path: &Path, max_payload: u64) -> Result<Frame, Error> {
    // One read covers small sessions (plus one more to see the end of the file).
    let mut bytes = vec![0u8; HEADER_LEN + 4096];
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

/// Reads and verifies only the header. `Ok(None)`: the file does not exist.
pub(crate) fn read_header(path: &Path) -> Result<Option<Header>, Error> {
    crate::fs::netfs::retry_stale(|| {
        let Some(file) = open_for_read(path)? else {
            return Ok(None);
        };
        read_header_from(&file, path).map(Some)
    })
}

/// [`read_header`] of the session file `name` in the open shard directory `dir`, opened
/// relative to it (see [`crate::fs::open::open_in_dir`]); `path` names it in errors.
pub(crate) fn read_header_in(
    dir: BorrowedFd<'_>,
    name: &str,
    path: &Path,
    noatime: &mut bool,
) -> Result<Option<Header>, Error> {
    crate::fs::netfs::retry_stale(|| {
        let Some(file) = crate::fs::open::open_in_dir(dir, name, path, noatime)? else {
            return Ok(None);
        };
        read_header_from(&file, path).map(Some)
    })
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
        let frame = read_frame_from(file, path, max_payload)?;
        Ok(Snapshot {
            data: frame.decode(path)?,
            info: SessionInfo::from_header(placeholder, &frame.header),
        })
    };

    let path = Path::new("fuzz-input");
    (info(path), snapshot(path))
}
