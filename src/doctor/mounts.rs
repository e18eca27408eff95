//! The file-system and same-share checks: what the mounts are, and whether they are one share.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::probe_file::{Seen, read_probe, replace};
use super::{Check, SETTLE};
use crate::fs::netfs::FileSystem;
use crate::id::SessionId;

pub(super) fn file_system_check(a: FileSystem, b: Option<FileSystem>) -> Check {
    const NAME: &str = "file-system";
    let what = |fs: FileSystem| {
        if fs.shared {
            format!("{} (may be shared with other hosts)", fs.name)
        } else {
            format!("{} (local)", fs.name)
        }
    };
    match b {
        Some(b) if b.name != a.name => Check::warn(
            NAME,
            format!(
                "the two mounts are different file systems: {} and {}",
                what(a),
                what(b)
            ),
        ),
        Some(_) => Check::pass(NAME, format!("{}, through both mounts", what(a))),
        None if a.shared => Check::warn(
            NAME,
            format!(
                "{}: a store here needs allow_network_fs and runs fenced; this probe saw one \
                 mount only, so run it again with a second mount of the same share \
                 (another host's view) to check between hosts",
                what(a)
            ),
        ),
        None => Check::pass(NAME, what(a)),
    }
}

pub(super) fn same_share(a: &Path, b: &Path) -> Check {
    const NAME: &str = "same-share";
    let file = "share-marker";
    let nonce = match SessionId::generate() {
        Ok(id) => id.to_string(),
        Err(e) => return Check::fail(NAME, e.to_string()),
    };
    if let Err(e) = replace(&a.join(file), nonce.as_bytes()) {
        return Check::fail(NAME, e.to_string());
    }
    let start = Instant::now();
    let mut stale = 0;
    let waited = loop {
        if let Ok(Seen::Content(s)) = read_probe(&b.join(file), &mut stale)
            && s == nonce.as_bytes()
        {
            break start.elapsed();
        }
        if start.elapsed() > SETTLE {
            return Check::fail(
                NAME,
                format!(
                    "a file written as {} never showed up as {} within {} s: these are not two \
                     mounts of one directory (the other checks were skipped)",
                    a.join(file).display(),
                    b.join(file).display(),
                    SETTLE.as_secs()
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let device = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    if device(a).is_some() && device(a) == device(b) {
        return Check::warn(
            NAME,
            "both paths are one mount (the same device): the checks below compare it with \
             itself, not with another host's view (a symlink or bind mount; on NFS, mount the \
             second with nosharecache to get a client cache of its own)"
                .into(),
        );
    }
    if waited < Duration::from_millis(100) {
        Check::pass(
            NAME,
            "two mounts (different devices); a file written through the first was at once \
             visible through the second"
                .into(),
        )
    } else {
        Check::warn(
            NAME,
            format!(
                "a file written through the first mount showed up through the second only \
                 after {} ms: the second mount caches directory entries",
                waited.as_millis()
            ),
        )
    }
}
