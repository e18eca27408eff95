//! A live stream of what happens in a store: creations, check-ins and deletions.
//!
//! Built on `notify` (inotify), watching every
//! `sessions/<shard>/` directory. A session file appearing under its name (the rename that ends
//! every write) is a creation when its header says generation 1 and a check-in otherwise; a
//! session file disappearing (unlink, or the rename away of an id cycle) is a deletion. So an id
//! cycle shows as the deletion of the old id and a write of the new one. Temporary files and
//! foreign files are ignored. Events that the kernel dropped (queue overflow) are reported as an
//! error item, not silently lost.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use notify::event::{CreateKind, EventKind, ModifyKind, RemoveKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::handle::Store;
use super::layout::Layout;
use crate::error::Error;
use crate::format;
use crate::id::SessionId;

/// What happened to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A new session was written (generation 1).
    Created,
    /// A session was written again: a check-in, touch or expiry change.
    CheckedIn,
    /// A session file went away: deleted, garbage-collected, or moved to a new id.
    Deleted,
}

/// One change seen by [`Store::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// To which session.
    pub id: SessionId,
    /// The session's generation after a write (`None` for deletions).
    pub generation: Option<u64>,
    /// When the watcher saw it.
    pub seen: SystemTime,
}

/// A live stream of [`Change`]s; iterate it (blocking) or poll with [`Watch::next_timeout`].
/// Dropping it stops the watcher thread.
pub struct Watch {
    rx: Receiver<Result<Change, Error>>,
    _watcher: RecommendedWatcher,
}

impl Watch {
    /// The next change, waiting at most `timeout`; `None` if none came in time.
    pub fn next_timeout(&self, timeout: Duration) -> Option<Result<Change, Error>> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Iterator for Watch {
    type Item = Result<Change, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

impl Store {
    /// Starts watching the store for creations, check-ins and deletions (by any process).
    pub fn watch(&self) -> Result<Watch, Error> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let sessions = self.shared.layout.sessions_root().to_path_buf();
        let layout = self.shared.layout.clone();
        let start_err = |e: notify::Error| Error::io("watch", &sessions, std::io::Error::other(e));
        let mut watcher = notify::recommended_watcher(move |event| translate(&tx, &layout, event))
            .map_err(start_err)?;
        watcher
            .watch(&sessions, RecursiveMode::Recursive)
            .map_err(start_err)?;
        Ok(Watch {
            rx,
            _watcher: watcher,
        })
    }
}

fn translate(
    tx: &Sender<Result<Change, Error>>,
    layout: &Layout,
    event: notify::Result<notify::Event>,
) {
    let event = match event {
        Ok(event) => event,
        Err(e) => {
            let path = e.paths.first().cloned().unwrap_or_default();
            let _ = tx.send(Err(Error::io("watch", &path, io_error(e))));
            return;
        }
    };
    if event.need_rescan() {
        let path = event.paths.first().cloned().unwrap_or_default();
        let _ = tx.send(Err(Error::io(
            "watch",
            &path,
            std::io::Error::other("the kernel dropped file events; some changes were missed"),
        )));
        return;
    }
    let appeared = matches!(
        event.kind,
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) | EventKind::Create(CreateKind::File)
    );
    let vanished = matches!(
        event.kind,
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(RemoveKind::File)
    );
    if !appeared && !vanished {
        return;
    }
    for path in &event.paths {
        let Some(id) = session_id_of(path) else {
            continue;
        };
        let change = if appeared {
            // Gone again already, or unreadable: nothing reliable to report as a write.
            // Read beneath the store's root like every other read (a path outside it is no
            // session of ours).
            let Some(path) = layout.beneath(path) else {
                continue;
            };
            let Ok(Some(header)) =
                format::read_header(&path, layout.reads(), format::Activity::Honour)
            else {
                continue;
            };
            Change {
                kind: if header.generation == 1 {
                    ChangeKind::Created
                } else {
                    ChangeKind::CheckedIn
                },
                id,
                generation: Some(header.generation),
                seen: SystemTime::now(),
            }
        } else if exchanged(path, &event) {
            continue; // a check-in swapped the spare in: its arrival is the change
        } else {
            Change {
                kind: ChangeKind::Deleted,
                id,
                generation: None,
                seen: SystemTime::now(),
            }
        };
        let _ = tx.send(Ok(change));
    }
}

/// Whether a session file that moved away was swapped with its spare by a check-in (which
/// reports the moving away of the live name too) rather than deleted or moved to a new id:
/// then a file is still at its path.
fn exchanged(path: &Path, event: &notify::Event) -> bool {
    matches!(
        event.kind,
        EventKind::Modify(ModifyKind::Name(RenameMode::From))
    ) && std::fs::symlink_metadata(path).is_ok()
}

fn session_id_of(path: &Path) -> Option<SessionId> {
    SessionId::parse(path.file_name()?.to_str()?).ok()
}

/// notify's error as an `io::Error`, keeping the OS error (and its kind) when there is one,
/// e.g. `ENOSPC` for the inotify watch limit.
fn io_error(e: notify::Error) -> std::io::Error {
    match e.kind {
        notify::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}
