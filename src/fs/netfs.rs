//! Network and FUSE file systems: telling them apart from local ones, and living with their
//! stale handles and leftover names.
//!
//! A store on NFS, SMB, CephFS, JuiceFS, GlusterFS or any FUSE mount is shared by several
//! hosts, and whether `flock` excludes across them, and whether a file renamed on one host is
//! what another reads right after, depends on the file system and its mount options (see
//! `docs/shared-filesystems.md`). So [`Store::open`](crate::Store::open) refuses such a
//! directory unless the application opts in with
//! [`allow_network_fs`](crate::StoreBuilder::allow_network_fs), and an opted-in store turns
//! fencing on (design §13).

use std::path::Path;

use crate::error::Error;

/// What a directory's file system is, as far as locking and caching are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSystem {
    /// The file system's name as Linux knows it (`ext4`, `tmpfs`, `nfs`, `fuse`, ...), or
    /// `"unknown"`.
    pub name: &'static str,
    /// Whether it may be shared with other hosts (network file systems and every FUSE mount,
    /// which may forward to anything): locks and caches are then the mount's business.
    pub shared: bool,
}

/// `statfs(2)` magic numbers (`linux/magic.h`) and what they mean here.
const KNOWN: &[(u64, &str, bool)] = &[
    (0xEF53, "ext4", false),
    (0x5846_5342, "xfs", false),
    (0x9123_683E, "btrfs", false),
    (0x0102_1994, "tmpfs", false),
    (0x2FC1_2FC1, "zfs", false),
    (0xF2F5_2010, "f2fs", false),
    (0x794C_7630, "overlayfs", false),
    (0x6969, "nfs", true),
    (0x517B, "smb", true),
    (0xFF53_4D42, "cifs", true),
    (0xFE53_4D42, "smb2", true),
    (0x6573_5546, "fuse", true),
    (0x00C3_6400, "ceph", true),
    (0x0102_1997, "9p", true),
    (0x7461_636F, "ocfs2", true),
    (0x0116_1970, "gfs2", true),
    (0x0BD0_0BD0, "lustre", true),
    (0x5346_414F, "afs", true),
    (0x6B41_4653, "afs", true),
    (0x7375_7245, "coda", true),
    (0x4750_4653, "gpfs", true),
    (0x2003_0528, "orangefs", true),
];

/// The file system `dir` is on (`statfs(2)`).
pub fn file_system(dir: &Path) -> Result<FileSystem, Error> {
    let stat = rustix::fs::statfs(dir).map_err(|e| Error::io("statfs", dir, e.into()))?;
    // f_type is signed on some targets: compare its low 32 bits, as `stat -f` does.
    let magic = (stat.f_type as u64) & 0xFFFF_FFFF;
    Ok(KNOWN.iter().find(|(m, _, _)| *m == magic).map_or(
        FileSystem {
            name: "unknown",
            shared: false,
        },
        |&(_, name, shared)| FileSystem { name, shared },
    ))
}

/// Names network file systems create for files deleted while open (`.nfsXXXX`, NFS's
/// "silly rename") and FUSE for the same (`.fuse_hiddenXXXX`): never ours, never touched.
pub(crate) fn is_placeholder_name(name: &str) -> bool {
    name.starts_with(".nfs") || name.starts_with(".fuse_hidden")
}

/// How many times an operation that failed with `ESTALE` is tried in all.
const STALE_ATTEMPTS: u32 = 4;

/// Runs `op` again when it fails with `ESTALE`: on NFS-like file systems a file handle goes
/// stale when another host replaced the file (our check-ins do, by rename), and looking the
/// path up again finds the new file.
pub(crate) fn retry_stale<T>(op: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    retry_stale_counted(op, &mut 0)
}

/// [`retry_stale`], adding the number of retries made to `retries` (for `doctor`).
pub(crate) fn retry_stale_counted<T>(
    mut op: impl FnMut() -> Result<T, Error>,
    retries: &mut u64,
) -> Result<T, Error> {
    let mut attempt = 1;
    loop {
        match op() {
            Err(e) if attempt < STALE_ATTEMPTS && is_stale(&e) => {
                attempt += 1;
                *retries += 1;
            }
            other => return other,
        }
    }
}

pub(crate) fn is_stale(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.raw_os_error() == Some(libc::ESTALE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_test_directories_are_not_shared() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fs = file_system(dir.path()).expect("statfs");
        assert!(!fs.shared, "{fs:?}");
    }

    #[test]
    fn stale_handles_are_retried_a_bounded_number_of_times() {
        let stale = || {
            Error::io(
                "read",
                Path::new("/x"),
                std::io::Error::from_raw_os_error(libc::ESTALE),
            )
        };
        let mut calls = 0;
        let r: Result<(), Error> = retry_stale(|| {
            calls += 1;
            Err(stale())
        });
        assert!(r.is_err());
        assert_eq!(calls, STALE_ATTEMPTS);
        let mut calls = 0;
        let r = retry_stale(|| {
            calls += 1;
            if calls < 3 { Err(stale()) } else { Ok(calls) }
        });
        assert_eq!(r.expect("third attempt succeeds"), 3);
        let (mut calls, mut retries) = (0, 0);
        let r = retry_stale_counted(
            || {
                calls += 1;
                if calls < 3 { Err(stale()) } else { Ok(calls) }
            },
            &mut retries,
        );
        assert_eq!((r.expect("third attempt"), retries), (3, 2));
        let mut calls = 0;
        let r: Result<(), Error> = retry_stale(|| {
            calls += 1;
            Err(Error::io(
                "read",
                Path::new("/x"),
                std::io::ErrorKind::NotFound.into(),
            ))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1, "other errors are not retried");
    }

    #[test]
    fn nfs_and_fuse_placeholders_are_recognised() {
        assert!(is_placeholder_name(".nfs0000000001a2b3c400000001"));
        assert!(is_placeholder_name(".fuse_hidden0000000b00000001"));
        assert!(!is_placeholder_name(
            ".abcdefghijklmnopqrstuvwxyz234567.Xy12.tmp"
        ));
    }
}
