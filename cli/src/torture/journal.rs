//! The journal each torture worker keeps: what it is about to do and what the store
//! acknowledged, one line per event, so the verifier can tell acknowledged work (which must be
//! on disk) from work in flight when the worker was killed (which may or may not be).
//!
//! One file per worker incarnation, `<slot>.<incarnation>`, opened with `O_APPEND`; every line
//! is written with one `write(2)` of at most a few dozen bytes, so a SIGKILL leaves either the
//! whole line or none of it, except possibly the last line, which the reader ignores unless it
//! ends in a newline. Lines (fields separated by one space):
//!
//! | line | meaning |
//! |---|---|
//! | `B <op> <target>` | about to do `op` on `target` (a pool index `p3`, a session id, or `-`) |
//! | `A <op> <target> <detail>` | the store acknowledged it; `detail` as listed in [`Op`] |
//! | `E <op> <target> <message>` | an error the workload did not expect |
//!
//! The page cache survives a SIGKILL of the writer, so no sync is needed: only the machine
//! crashing could lose journal lines, and this runner kills processes, not machines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// What a worker does; the `detail` of its acknowledgement line is given for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Pool session: check out, increment this slot's counter, check in. Detail: the new value.
    PoolIncrement,
    /// Pool session: check out and drop without checking in. Detail: `-`.
    PoolAbandon,
    /// Pool session: lock-free load; the slot's counter must be at least the last acknowledged
    /// value. Detail: the value read.
    PoolRead,
    /// Create an owned session. Detail: `<new id> keep|brief`.
    Create,
    /// Owned session: check out, increment `v`, check in. Detail: the new `v`.
    Increment,
    /// Owned session: give it a new id. Detail: the new id.
    Cycle,
    /// Owned session: delete it. Detail: `-`.
    Delete,
    /// Owned session: touch it (extend a sliding expiry). Detail: `-`.
    Touch,
    /// Owned session: check out and drop without checking in. Detail: `-`.
    Abandon,
    /// An owned `brief` session expired or was collected before the op. Detail: `-`.
    Gone,
    /// A garbage-collection pass over the whole store. Detail: sessions deleted.
    Gc,
    /// A tidy pass over the whole store. Detail: `<temporary files> <lock files>` removed.
    Tidy,
}

const NAMES: [(Op, &str); 12] = [
    (Op::PoolIncrement, "pool-inc"),
    (Op::PoolAbandon, "pool-abandon"),
    (Op::PoolRead, "pool-read"),
    (Op::Create, "create"),
    (Op::Increment, "inc"),
    (Op::Cycle, "cycle"),
    (Op::Delete, "delete"),
    (Op::Touch, "touch"),
    (Op::Abandon, "abandon"),
    (Op::Gone, "gone"),
    (Op::Gc, "gc"),
    (Op::Tidy, "tidy"),
];

impl Op {
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("?", |(_, name)| name)
    }

    #[cfg(test)]
    pub fn all() -> impl Iterator<Item = Op> {
        NAMES.iter().map(|(op, _)| *op)
    }
}

impl FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NAMES
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(op, _)| *op)
            .ok_or_else(|| format!("unknown journal op {s:?}"))
    }
}

/// One parsed journal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Begin {
        op: Op,
        target: String,
    },
    Ack {
        op: Op,
        target: String,
        detail: String,
    },
    Unexpected {
        op: Op,
        target: String,
        message: String,
    },
}

/// The writing side, owned by one worker incarnation.
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    pub fn create(path: &Path) -> std::io::Result<Journal> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn begin(&mut self, op: Op, target: &str) -> std::io::Result<()> {
        self.line(&format!("B {} {target}\n", op.name()))
    }

    pub fn ack(&mut self, op: Op, target: &str, detail: &str) -> std::io::Result<()> {
        self.line(&format!("A {} {target} {detail}\n", op.name()))
    }

    pub fn unexpected(&mut self, op: Op, target: &str, message: &str) -> std::io::Result<()> {
        // One line, whatever the message holds.
        let message = message.replace('\n', " ");
        self.line(&format!("E {} {target} {message}\n", op.name()))
    }

    /// One `write(2)`: a kill leaves the whole line or none of it.
    fn line(&mut self, line: &str) -> std::io::Result<()> {
        let n = self.file.write(line.as_bytes())?;
        if n == line.len() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "short write to journal {}",
                self.path.display()
            )))
        }
    }
}

/// Reads a journal; a last line without its newline (cut by a kill) is dropped.
pub fn read(path: &Path) -> Result<Vec<Event>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read journal {}: {e}", path.display()))?;
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .map(|(n, line)| {
            parse(line).map_err(|e| format!("{}:{}: {e}: {line:?}", path.display(), n + 1))
        })
        .collect()
}

fn parse(line: &str) -> Result<Event, String> {
    let mut fields = line.splitn(4, ' ');
    let kind = fields.next().unwrap_or_default();
    let op: Op = fields.next().unwrap_or_default().parse()?;
    let target = fields.next().ok_or("missing target")?.to_string();
    let rest = fields.next().map(str::to_string);
    match (kind, rest) {
        ("B", None) => Ok(Event::Begin { op, target }),
        ("A", Some(detail)) => Ok(Event::Ack { op, target, detail }),
        ("E", Some(message)) => Ok(Event::Unexpected {
            op,
            target,
            message,
        }),
        _ => Err("malformed line".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_a_cut_last_line_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("0.0");
        let mut j = Journal::create(&path).expect("create journal");
        j.begin(Op::PoolIncrement, "p1").expect("write");
        j.ack(Op::PoolIncrement, "p1", "7").expect("write");
        j.unexpected(Op::Touch, "abc", "two\nlines").expect("write");
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"B inc xyz").expect("write cut line");
        let events = read(&path).expect("read");
        assert_eq!(
            events,
            vec![
                Event::Begin {
                    op: Op::PoolIncrement,
                    target: "p1".into()
                },
                Event::Ack {
                    op: Op::PoolIncrement,
                    target: "p1".into(),
                    detail: "7".into()
                },
                Event::Unexpected {
                    op: Op::Touch,
                    target: "abc".into(),
                    message: "two lines".into()
                },
            ]
        );
    }

    #[test]
    fn every_op_name_parses_back() {
        for op in Op::all() {
            assert_eq!(op.name().parse::<Op>(), Ok(op));
        }
        assert!("nonsense".parse::<Op>().is_err());
    }
}
