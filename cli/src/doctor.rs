//! `sessiondir doctor`: does this directory (and a second mount of it) give the store working
//! locks and fresh reads? Glue over [`sessiondir::doctor`].

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use sessiondir::doctor::{Doctor, Verdict};

use super::Failure;
use super::dir_kind::DirKind;
use super::output::json_line;

#[derive(Args)]
pub struct DoctorArgs {
    /// The directory to probe (it must exist; a live store's directory is fine: the probe
    /// works in a scratch directory of its own and removes it).
    #[arg(long)]
    dir: PathBuf,
    /// The same directory through a second mount of the same share (another host's view):
    /// also probe locks, renames and a store between the two.
    #[arg(long)]
    other_mount: Option<PathBuf>,
    /// Replacements by rename in the rename-visibility check.
    #[arg(long, default_value_t = 40)]
    rounds: u32,
    /// Check-ins per thread in the store check.
    #[arg(long, default_value_t = 25)]
    increments: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &DoctorArgs) -> Result<(), Failure> {
    let dirs = std::iter::once(("--dir", &a.dir))
        .chain(a.other_mount.iter().map(|o| ("--other-mount", o)));
    for (flag, dir) in dirs {
        if let Some(why) = DirKind::of(dir).not_a_directory(flag, dir) {
            return Err(Failure::Usage(why));
        }
    }
    let mut doctor = Doctor::new(&a.dir)
        .rounds(a.rounds)
        .increments(a.increments);
    if let Some(other) = &a.other_mount {
        doctor = doctor.other_mount(other);
    }
    let d = doctor.run()?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let checks: Vec<_> = d
            .checks
            .iter()
            .map(|c| json!({ "name": c.name, "verdict": c.verdict.as_str(), "detail": c.detail }))
            .collect();
        json_line(
            &mut out,
            &json!({
                "dir": d.dir,
                "other_mount": d.other,
                "file_system": d.file_system.name,
                "shared": d.file_system.shared,
                "other_file_system": d.other_file_system.map(|f| f.name),
                "checks": checks,
                "verdict": d.verdict().as_str(),
            }),
        )?;
    } else {
        write!(out, "{} ({})", d.dir.display(), d.file_system.name)?;
        if let (Some(o), Some(fs)) = (&d.other, d.other_file_system) {
            write!(out, " and {} ({})", o.display(), fs.name)?;
        }
        writeln!(out)?;
        for c in &d.checks {
            let mark = match c.verdict {
                Verdict::Pass => "pass",
                Verdict::Warn => "WARN",
                Verdict::Fail => "FAIL",
            };
            writeln!(out, "{mark}  {:<18} {}", c.name, c.detail)?;
        }
        let summary = match d.verdict() {
            Verdict::Pass => "a store can run here",
            Verdict::Warn => "a store can run here; read the warnings",
            Verdict::Fail => {
                "a store here would fail or lose updates as this is mounted \
                 (see docs/shared-filesystems.md)"
            }
        };
        writeln!(out, "verdict: {}: {summary}", d.verdict().as_str())?;
    }
    out.flush()?;
    if d.verdict() == Verdict::Fail {
        let failed: Vec<_> = d
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| c.name)
            .collect();
        return Err(Failure::Verification(format!(
            "doctor: {} failed {}",
            a.dir.display(),
            failed.join(", ")
        )));
    }
    Ok(())
}
