//! Helpers of the integration tests: what the shared test support (`tests/support/`) offers,
//! re-exported under the names the tests use, and what only these tests need: session-file
//! header patching and lock-file paths.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sessiondir::Store;

pub use crate::support::store::TestStore;
pub use crate::support::tree::{EntryState, all_files, entry_state, temp_files, tree_snapshot};
pub use crate::support::wait::wait_until;

// ---- Header patching (api, corrupt_files) and lock files (api, faults, hostile, regressions) ----

/// Recomputes the header checksum (bytes 56..60, CRC-32 IEEE of bytes 0..56) of a session file
/// image after a test changed header fields on purpose.
pub fn fix_header_crc(file: &mut [u8]) {
    let crc = compute_header_crc(file);
    file[56..60].copy_from_slice(&crc.to_le_bytes());
}

/// The header CRC: CRC-32 of bytes 0..56 and 60..64 (docs/design.md, section 2).
pub fn compute_header_crc(file: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&file[..56]);
    h.update(&file[60..64]);
    h.finalize()
}

/// The lock file of session `id`: `<dir>/locks/<shard>/<id>`, next to its session file's shard.
pub fn lock_path_of(store: &Store, id: &sessiondir::SessionId) -> PathBuf {
    let data = store.session_path(id);
    let shard = data
        .parent()
        .and_then(Path::file_name)
        .expect("session path has a shard directory");
    store.dir().join("locks").join(shard).join(id.as_str())
}
