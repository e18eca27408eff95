//! The chaos loop: W worker processes, one of them SIGKILLed every few milliseconds and
//! replaced by a new incarnation in its slot, until the time is up; then all are told to stop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Incarnation, TortureArgs, WORKER_DEADLINE};
use crate::Failure;

/// A running worker process.
struct WorkerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    incarnation: Incarnation,
}

impl WorkerProcess {
    fn start(
        root: &Path,
        a: &TortureArgs,
        seed: u64,
        slot: usize,
        number: u64,
    ) -> Result<Self, Failure> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("torture-worker")
            .arg("--root")
            .arg(root)
            .args(["--slot", &slot.to_string()])
            .args(["--incarnation", &number.to_string()])
            .args(["--seed", &seed.to_string()])
            .args(["--payload", &a.payload.to_string()])
            .args(["--fsync", &a.fsync.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let mut w = WorkerProcess {
            child,
            stdin,
            incarnation: Incarnation {
                slot,
                number,
                killed: false,
            },
        };
        // Started only once it journals: a kill before that would test nothing.
        let stdout = w
            .child
            .stdout
            .take()
            .ok_or_else(|| Failure::Usage("worker has no stdout".into()))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim_end() != "ready" {
            return Err(Failure::Usage(format!(
                "torture worker {slot}.{number} did not start (see its error above)"
            )));
        }
        Ok(w)
    }

    fn kill(mut self) -> Result<Incarnation, Failure> {
        self.child.kill()?; // SIGKILL
        self.child.wait()?;
        self.incarnation.killed = true;
        Ok(self.incarnation)
    }
}

/// Runs the workers for `seconds`, killing one at random every few milliseconds and starting
/// a new incarnation in its slot. Returns (kills, every incarnation, workers that failed).
pub fn run(
    root: &Path,
    a: &TortureArgs,
    seed: u64,
    seconds: Duration,
) -> Result<(u64, Vec<Incarnation>, u64), Failure> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut done = Vec::new();
    let mut next_number = vec![1u64; a.workers];
    let mut live = (0..a.workers)
        .map(|slot| WorkerProcess::start(root, a, seed, slot, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut kills = 0;
    let mut failures = 0;
    let deadline = Instant::now() + seconds;
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !a.json;
    let mut last_progress = Instant::now();
    while Instant::now() < deadline {
        let pause = rng.random_range(a.kill_min_ms..=a.kill_max_ms);
        std::thread::sleep(
            Duration::from_millis(pause).min(deadline.saturating_duration_since(Instant::now())),
        );
        // A worker that exited on its own failed (its error is on stderr).
        for slot in 0..live.len() {
            if let Ok(Some(status)) = live[slot].child.try_wait() {
                failures += 1;
                eprintln!("sessiondir: torture worker {slot} exited on its own: {status}");
                let n = next_number[slot];
                next_number[slot] += 1;
                let old = std::mem::replace(
                    &mut live[slot],
                    WorkerProcess::start(root, a, seed, slot, n)?,
                );
                done.push(old.incarnation);
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        let slot = rng.random_range(0..live.len());
        let n = next_number[slot];
        next_number[slot] += 1;
        // Kill first, then start the next incarnation: one slot's incarnations never overlap.
        let victim = live.swap_remove(slot);
        done.push(victim.kill()?);
        kills += 1;
        live.push(WorkerProcess::start(root, a, seed, slot, n)?);
        let last = live.len() - 1;
        live.swap(slot, last);
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let left = deadline.saturating_duration_since(Instant::now()).as_secs();
            eprint!("\r{kills} kills, {left} s left   ");
        }
    }
    if progress {
        eprintln!();
    }
    for mut w in live {
        drop(w.stdin.take()); // end of file: stop after the current op
        let start = Instant::now();
        loop {
            match w.child.try_wait()? {
                Some(status) if status.success() => break,
                Some(status) => {
                    failures += 1;
                    eprintln!(
                        "sessiondir: torture worker {} failed: {status}",
                        w.incarnation.slot
                    );
                    break;
                }
                None if start.elapsed() > WORKER_DEADLINE => {
                    failures += 1;
                    eprintln!(
                        "sessiondir: torture worker {} did not stop",
                        w.incarnation.slot
                    );
                    let _ = w.child.kill();
                    let _ = w.child.wait();
                    w.incarnation.killed = true;
                    break;
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        done.push(w.incarnation);
    }
    // Journal replay goes slot by slot, incarnation by incarnation.
    done.sort_by_key(|i| (i.slot, i.number));
    Ok((kills, done, failures))
}
