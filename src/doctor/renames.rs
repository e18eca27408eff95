//! The rename-visibility check: each replacement by rename read at once through the other mount.

use std::path::Path;

use super::Check;
use super::locks::under_lock;
use super::probe_file::{Seen, read_probe, replace};

/// The probe file's content for `round`: the round number, padded like a small session to a
/// length that changes every round (a cache serving a stale size shows).
fn round_content(round: u32) -> Vec<u8> {
    let mut content = format!("{round}\n").into_bytes();
    content.resize(1000 + (round % 61) as usize, b'.');
    content
}

fn round_of(content: &[u8]) -> Option<u32> {
    let line = content.split(|&b| b == b'\n').next()?;
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// What the rename-visibility reads saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    reads: u64,
    /// An older round's version.
    old: u64,
    /// No file at all.
    missing: u64,
    /// The right round's number, but not its exact bytes (a stale size, a torn read).
    mismatched: u64,
    /// `ESTALE` failures that a retry got past.
    stale_handles: u64,
}

impl Tally {
    fn record(&mut self, seen: Seen, want: u32) {
        self.reads += 1;
        match seen {
            Seen::Missing => self.missing += 1,
            Seen::Content(c) if c == round_content(want) => {}
            Seen::Content(c) if round_of(&c).is_some_and(|r| r < want) => self.old += 1,
            Seen::Content(_) => self.mismatched += 1,
        }
    }

    fn check(&self, rounds: u32, between: &str) -> Check {
        const NAME: &str = "rename-visibility";
        let Tally {
            reads,
            old,
            missing,
            mismatched,
            stale_handles,
        } = *self;
        let done = format!("{rounds} replacements by rename {between}");
        if old + missing + mismatched > 0 {
            return Check::fail(
                NAME,
                format!(
                    "{done}: of {reads} reads under the lock, {old} returned an older version, \
                     {missing} found no file and {mismatched} other bytes than were written, \
                     although the version was complete and its writer had released the lock: \
                     the mount caches attributes or directory entries, so a check-out would \
                     read an old session under its lock and lose updates (JuiceFS: mount with \
                     --attr-cache=0 --entry-cache=0 --dir-entry-cache=0 \
                     --negative-entry-cache=0; GlusterFS: see docs/shared-filesystems.md)"
                ),
            );
        }
        if stale_handles > 0 {
            return Check::warn(
                NAME,
                format!(
                    "{done}: all {reads} reads saw the latest version, but {stale_handles} \
                     failed first with ESTALE and were retried"
                ),
            );
        }
        Check::pass(
            NAME,
            format!("{done}: all {reads} reads saw the latest version"),
        )
    }
}

pub(super) fn rename_visibility(mounts: &[&Path; 2], rounds: u32) -> Check {
    const NAME: &str = "rename-visibility";
    let file = "visible";
    let mut tally = Tally::default();
    let outcome = (|| -> Result<(), String> {
        replace(&mounts[0].join(file), &round_content(0)).map_err(|e| e.to_string())?;
        for round in 1..=rounds {
            let (w, r) = ((round % 2) as usize, ((round + 1) % 2) as usize);
            // The writer: lock, read the current version (the one before), replace, unlock.
            let (before, stale) = under_lock(mounts[w], || {
                let mut stale = 0;
                let before = read_probe(&mounts[w].join(file), &mut stale)?;
                replace(&mounts[w].join(file), &round_content(round))?;
                Ok((before, stale))
            })?;
            tally.stale_handles += stale;
            tally.record(before, round - 1);
            // The reader, through the other mount, right after, under the lock as a
            // check-out reads.
            let (after, stale) = under_lock(mounts[r], || {
                let mut stale = 0;
                let after = read_probe(&mounts[r].join(file), &mut stale)?;
                Ok((after, stale))
            })?;
            tally.stale_handles += stale;
            tally.record(after, round);
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        return Check::fail(NAME, e);
    }
    let between = if mounts[0] == mounts[1] {
        "through one mount"
    } else {
        "alternately through each mount, each read at once through the other"
    };
    tally.check(rounds, between)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Verdict;

    #[test]
    fn stale_missing_and_resized_reads_fail_rename_visibility() {
        let mut t = Tally::default();
        t.record(Seen::Content(round_content(3)), 3);
        assert_eq!(t.check(3, "x").verdict, Verdict::Pass);
        let mut old = t.clone();
        old.record(Seen::Content(round_content(2)), 3);
        let mut missing = t.clone();
        missing.record(Seen::Missing, 3);
        // The right round number at the wrong length: a cached size.
        let mut resized = t.clone();
        let mut short = round_content(3);
        short.truncate(900);
        resized.record(Seen::Content(short), 3);
        for (bad, field) in [(old, "old"), (missing, "missing"), (resized, "mismatched")] {
            let c = bad.check(3, "x");
            assert_eq!(c.verdict, Verdict::Fail, "{field}: {c:?}");
            assert_eq!(bad.reads, 2);
        }
        let retried = Tally {
            stale_handles: 4,
            ..t
        };
        assert_eq!(retried.check(3, "x").verdict, Verdict::Warn);
    }

    #[test]
    fn round_contents_parse_back() {
        let c = round_content(17);
        assert_eq!(c.len(), 1017);
        assert_eq!(round_of(&c), Some(17));
        assert_eq!(round_of(b"x\n"), None);
        assert_ne!(round_content(1).len(), round_content(2).len());
    }
}
