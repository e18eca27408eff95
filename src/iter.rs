//! Iterating over a store's sessions, streaming, in constant memory.
//!
//! A `walkdir` walk of `sessions/*/` that never follows symlinks and yields only names that
//! parse as session ids (temporary files and anything foreign are skipped). Nothing is
//! collected: memory does not grow with the number of sessions. Sessions created or deleted
//! during the walk may or may not be seen, as with any directory listing.

use std::path::Path;

use crate::error::Error;
use crate::id::SessionId;
use crate::info::SessionInfo;
use crate::layout::Layout;
use crate::store::Store;

/// Iterator over the ids of all sessions on disk (expired ones included). See [`Store::ids`].
pub struct SessionIds {
    walk: walkdir::IntoIter,
    layout: Layout,
}

impl SessionIds {
    pub(crate) fn new(layout: &Layout) -> Self {
        SessionIds {
            layout: layout.clone(),
            walk: walkdir::WalkDir::new(layout.sessions_root())
                .min_depth(2)
                .max_depth(2)
                .follow_links(false)
                // Not even sessions/ itself: replaced by a symlink after open, it would list
                // (and gc would delete) files outside the store.
                .follow_root_links(false)
                .into_iter(),
        }
    }
}

impl Iterator for SessionIds {
    type Item = Result<SessionId, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.walk.next()? {
                Ok(entry) => entry,
                Err(e) => {
                    let path = e.path().map(Path::to_path_buf).unwrap_or_default();
                    let source = e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("walk failed"));
                    return Some(Err(Error::io("list", &path, source)));
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| SessionId::parse(n).ok())
            else {
                continue;
            };
            // A file in the wrong shard is not reachable by its id: not a session of ours.
            let shard = entry.path().parent().and_then(Path::file_name);
            if shard.and_then(|s| s.to_str())
                == Some(self.layout.shard_name(self.layout.shard_of(&id)).as_str())
            {
                return Some(Ok(id));
            }
        }
    }
}

impl Store {
    /// All session ids on disk, expired ones included, streaming in constant memory.
    pub fn ids(&self) -> SessionIds {
        SessionIds::new(&self.shared.layout)
    }

    /// Every session's header, streaming (expired ones included; see
    /// [`SessionInfo::is_expired`]). A damaged file yields an error naming it and the walk
    /// goes on.
    pub fn sessions(&self) -> impl Iterator<Item = Result<SessionInfo, Error>> + '_ {
        self.ids().filter_map(move |id| match id {
            Ok(id) => self.info(&id).transpose(),
            Err(e) => Some(Err(e)),
        })
    }
}
