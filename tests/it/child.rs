//! Child processes: this very test binary, re-run with `SESSIONDIR_CHILD=<role>` so that it
//! runs only [`entry`], which plays the role through the public API, as a web server's worker
//! process would.
//!
//! Children talk to their parent through stdout lines carrying [`MARK`] (`READY`, `ACQUIRED`,
//! `RESULT Deleted ...`) and take commands (`go`, `release`, `checkin`, ...) from stdin lines.
//! A child whose stdin reaches end of file (its parent is gone) exits at once, and no child
//! lives longer than [`MAX_LIFETIME`], so a crashed or killed test run leaves no process behind.
//!
//! The parent side is [`Proc`]: it collects the reports, waits for them with timeouts, SIGKILLs
//! and reaps, and kills and reaps its child on drop, so no child outlives a test, even a
//! failing one.

use std::fmt::Write as _;
use std::io::{BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use sessiondir::{Acquisition, Dict, Error, Observer, SessionId, Store};

use crate::{common, support};

/// The environment variable naming the role a child process plays.
pub const ROLE_VAR: &str = "SESSIONDIR_CHILD";
/// Prefix of every report line a child writes to stdout (libtest may print its own text on
/// the same line, before it).
const MARK: &str = "@@sessiondir-child@@ ";
/// A child exits after this long, whatever happens to its parent.
const MAX_LIFETIME: Duration = Duration::from_secs(60);
/// How long a child waits for a command before giving up.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Child side.
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "entry point for child processes, run by the tests themselves"]
fn entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let commands = start_guards();
    match role.as_str() {
        "increment" => increment(&commands),
        "hold" => hold(&commands),
        "waiter" => waiter(),
        "reader" => reader(&commands),
        "big_writer" => big_writer(),
        "fsize_writer" => fsize_writer(&commands),
        "nonce_writer" => nonce_writer(),
        "no_exchange" => no_exchange(),
        "no_noreplace" => no_noreplace(),
        "no_openat2" => no_openat2(&commands),
        other => panic!("unknown child role {other:?}"),
    }
}

/// Writes one report line for the parent.
fn report(message: &str) {
    let mut out = std::io::stdout().lock();
    // A write error means the parent is gone; the stdin guard ends us soon.
    let _ = writeln!(out, "{MARK}{message}");
    let _ = out.flush();
}

/// Starts the watchdog (exit after [`MAX_LIFETIME`]) and the stdin reader (commands; exit on
/// end of file, i.e. when the parent is gone).
fn start_guards() -> Receiver<String> {
    support::child::exit_after(MAX_LIFETIME, "child");
    support::child::stdin_commands()
}

fn next_command(commands: &Receiver<String>) -> String {
    match commands.recv_timeout(COMMAND_TIMEOUT) {
        Ok(c) => c,
        Err(e) => panic!("child: no command from the parent: {e}"),
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child: environment variable {name} not set"))
}

fn env_parse<T: FromStr>(name: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    let text = env(name);
    text.parse()
        .unwrap_or_else(|e| panic!("child: {name}={text:?} does not parse: {e:?}"))
}

fn env_opt<T: FromStr>(name: &str) -> Option<T>
where
    T::Err: std::fmt::Debug,
{
    std::env::var(name).ok().map(|_| env_parse(name))
}

fn env_id() -> SessionId {
    SessionId::parse(&env("SD_ID")).expect("SD_ID is a session id")
}

/// Reports `WAITING <id>` when a check-out starts waiting.
struct Reporter;

impl Observer for Reporter {
    fn waiting(&self, id: &SessionId) {
        report(&format!("WAITING {id}"));
    }

    fn events_unavailable(&self, error: &Error) {
        report(&format!("EVENTS_UNAVAILABLE {error}"));
    }
}

/// Opens the store named by `SD_DIR` with the settings the environment asks for.
fn open_store(observe: bool) -> Store {
    let mut builder = Store::builder(env("SD_DIR"));
    if let Some(ms) = env_opt::<u64>("SD_LOCK_TIMEOUT_MS") {
        builder = builder.lock_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = env_opt::<u64>("SD_POLL_DELAY_MS") {
        builder = builder.poll_delay(Duration::from_millis(ms));
    }
    if let Some(bytes) = env_opt::<u64>("SD_MAX_SIZE") {
        builder = builder.max_session_size(bytes);
    }
    if let Some(on) = env_opt::<u8>("SD_REUSE_INODES") {
        builder = builder.reuse_inodes(on != 0);
    }
    if observe {
        builder = builder.observer(Arc::new(Reporter));
    }
    builder.open().expect("child: open store")
}

/// `increment`: waits for `go`, then does `SD_COUNT` check-out/increment/check-in cycles on
/// the sessions of `SD_IDS`, picking each by [`schedule`]; bumps `counter` and `w<worker>`.
fn increment(commands: &Receiver<String>) {
    let store = open_store(false);
    let ids: Vec<SessionId> = env("SD_IDS")
        .split(',')
        .map(|s| SessionId::parse(s).expect("SD_IDS holds session ids"))
        .collect();
    let count: usize = env_parse("SD_COUNT");
    let worker: usize = env_parse("SD_WORKER");
    let key = worker_key(worker);
    report("READY");
    assert_eq!(next_command(commands), "go");
    let mut done = vec![0u64; ids.len()];
    for i in 0..count {
        let s = schedule(worker, i, ids.len());
        let mut session = store.checkout::<Dict>(&ids[s]).expect("child: checkout");
        session.data_mut().increment("counter", 1).expect("counter");
        session.data_mut().increment(&key, 1).expect("worker key");
        session.check_in().expect("child: check in");
        done[s] += 1;
    }
    let per_session: Vec<String> = done.iter().map(u64::to_string).collect();
    report(&format!("DONE {count} {}", per_session.join(",")));
}

/// `hold`: if `SD_VALUE` is set, first checks in `value = SD_VALUE`; then checks the session
/// out, changes it in memory only (`uncommitted = true`), reports `ACQUIRED`, and holds it
/// until a command: `release`, `checkin` (drops `uncommitted`, sets `checked_in_by_holder`),
/// or `delete`. Killing it is the other way out.
fn hold(commands: &Receiver<String>) {
    let store = open_store(true);
    let id = env_id();
    if let Ok(value) = std::env::var("SD_VALUE") {
        let mut session = store.checkout::<Dict>(&id).expect("child: checkout");
        session.data_mut().insert("value", value);
        session.check_in().expect("child: check in");
    }
    let mut session = match store.checkout::<Dict>(&id) {
        Ok(s) => s,
        Err(e) => {
            report(&format!("ERROR {} {e}", variant(&e)));
            panic!("child: hold: checkout failed: {e:?}");
        }
    };
    session.data_mut().insert("uncommitted", true);
    report("ACQUIRED");
    match next_command(commands).as_str() {
        "release" => {
            session.release();
            report("RELEASED");
        }
        "checkin" => {
            session.data_mut().remove("uncommitted");
            session.data_mut().insert("checked_in_by_holder", true);
            session.check_in().expect("child: check in");
            report("CHECKED_IN");
        }
        "delete" => {
            session.delete().expect("child: delete");
            report("DELETED");
        }
        other => panic!("child: hold: unknown command {other:?}"),
    }
}

/// `waiter`: checks the session out once (lock timeout `SD_LOCK_TIMEOUT_MS`) and reports
/// `RESULT <Ok or error variant> ...`; on success releases at once.
fn waiter() {
    let store = open_store(true);
    let id = env_id();
    let start = Instant::now();
    match store.checkout::<Dict>(&id) {
        Ok(session) => {
            let Acquisition { by, waited } = *session.acquisition();
            let value = session.data().get_str("value").unwrap_or("-").to_owned();
            let uncommitted = session.data().contains_key("uncommitted");
            report(&format!(
                "RESULT Ok id={} by={by:?} waited_ms={} value={value} uncommitted={uncommitted}",
                session.id(),
                waited.as_millis()
            ));
            session.release();
        }
        Err(e) => {
            let error_id = match &e {
                Error::NotFound { id } | Error::Deleted { id } | Error::LockTimeout { id, .. } => {
                    id.to_string()
                }
                _ => "-".to_owned(),
            };
            report(&format!(
                "RESULT {} id={error_id} elapsed_ms={} error={e}",
                variant(&e),
                start.elapsed().as_millis()
            ));
        }
    }
}

/// `reader`: loads the session (a [`counter_payload`]) in a tight loop, without locks, until
/// it has seen the counter reach `SD_FINAL` (or `stop` arrives, or 30 s pass), checking every
/// snapshot; reports `READY` after its first good read, `PROBLEM ...` for the first few bad
/// reads, then `SUMMARY ...`.
fn reader(commands: &Receiver<String>) {
    let store = open_store(false);
    let id = env_id();
    let last_expected: u64 = env_parse("SD_FINAL");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stats = ReadStats::default();
    let mut problems = 0;
    let mut ready = false;
    while stats.last != Some(last_expected) && Instant::now() < deadline {
        if let Err(problem) = stats.record(store.load::<Vec<u64>>(&id)) {
            problems += 1;
            if problems <= 5 {
                report(&format!("PROBLEM {problem}"));
            }
        } else if !ready {
            ready = true;
            report("READY");
        }
        if commands.try_recv().as_deref() == Ok("stop") {
            break;
        }
    }
    report(&format!("SUMMARY {}", stats.summary()));
}

/// What a lock-free reader saw.
#[derive(Debug, Default)]
pub struct ReadStats {
    /// Loads done.
    pub reads: u64,
    /// Loads that failed or found no session.
    pub errors: u64,
    /// Snapshots that were not internally consistent.
    pub inconsistent: u64,
    /// Snapshots older than one seen before.
    pub regressions: u64,
    /// Distinct counter values seen.
    pub distinct: u64,
    /// The last counter value seen.
    pub last: Option<u64>,
}

impl ReadStats {
    /// Records one load; `Err` describes what was wrong with it.
    pub fn record(&mut self, loaded: Result<Option<Vec<u64>>, Error>) -> Result<(), String> {
        self.reads += 1;
        let v = match loaded {
            Ok(Some(v)) => v,
            Ok(None) => {
                self.errors += 1;
                return Err("load found no session".to_owned());
            }
            Err(e) => {
                self.errors += 1;
                return Err(format!("load failed: {e:?}"));
            }
        };
        let n = match check_counter_payload(&v) {
            Ok(n) => n,
            Err(problem) => {
                self.inconsistent += 1;
                return Err(problem);
            }
        };
        if let Some(last) = self.last {
            if n < last {
                self.regressions += 1;
                return Err(format!("counter went back from {last} to {n}"));
            }
            if n == last {
                return Ok(());
            }
        }
        self.distinct += 1;
        self.last = Some(n);
        Ok(())
    }

    /// `key=value` pairs, as the `SUMMARY` line carries them.
    pub fn summary(&self) -> String {
        format!(
            "reads={} errors={} inconsistent={} regressions={} distinct={} last={}",
            self.reads,
            self.errors,
            self.inconsistent,
            self.regressions,
            self.distinct,
            self.last.map_or_else(|| "-".to_owned(), |n| n.to_string())
        )
    }
}

/// `big_writer`: checks out the [`Blob`] session `SD_ID` and checks in `SD_SIZE` bytes of
/// [`blob_pattern(i)`](blob_pattern) for i = 1, 2, ... until killed, reporting `WROTE i` after
/// each check-in.
fn big_writer() {
    let store = open_store(false);
    let id = env_id();
    let size: usize = env_parse("SD_SIZE");
    report("STARTED");
    for i in 1u64.. {
        let mut session = store.checkout::<Blob>(&id).expect("child: checkout");
        let blob = session.data_mut();
        blob.0.clear();
        blob.0.resize(size, blob_pattern(i));
        session.check_in().expect("child: check in");
        report(&format!("WROTE {i}"));
    }
}

/// `nonce_writer` (spares): checks out the [`Blob`] session `SD_ID` again and again; reports
/// `BASE <nonce>` of the version it read, `WRITING <nonce>` before checking in `SD_SIZE` bytes
/// of a fresh nonce repeated ([`nonce_blob`]), and `WROTE <nonce>` once the check-in returned.
fn nonce_writer() {
    let store = open_store(false);
    let id = env_id();
    let size: usize = env_parse("SD_SIZE");
    report("STARTED");
    for i in 0u64.. {
        let mut session = store.checkout::<Blob>(&id).expect("child: checkout");
        let base = nonce_of(session.data()).expect("child: the checked-out version is uniform");
        report(&format!("BASE {base:016x}"));
        let nonce = u64::from(std::process::id()) << 32 | i;
        *session.data_mut() = nonce_blob(nonce, size);
        report(&format!("WRITING {nonce:016x}"));
        session.check_in().expect("child: check in");
        report(&format!("WROTE {nonce:016x}"));
    }
}

/// `size` bytes of `nonce` (little-endian) repeated: a version that names itself, and whose
/// every 8 bytes must agree if it is not torn.
pub fn nonce_blob(nonce: u64, size: usize) -> Blob {
    let mut bytes = nonce.to_le_bytes().repeat(size.div_ceil(8));
    bytes.truncate(size);
    Blob(bytes)
}

/// The nonce a [`nonce_blob`] repeats, or `None` if its 8-byte chunks disagree (torn).
pub fn nonce_of(blob: &Blob) -> Option<u64> {
    let mut chunks = blob.0.chunks_exact(8);
    let first = u64::from_le_bytes(chunks.next()?.try_into().ok()?);
    chunks.all(|c| c == first.to_le_bytes()).then_some(first)
}

/// `no_exchange` (spares): makes `renameat2(..., RENAME_EXCHANGE)` fail with `EINVAL` for this
/// process, as on a file system without the exchange (seccomp; checked on two scratch files in
/// `SD_SCRATCH`, reported as `FILTERED`), then checks the [`Blob`] session `SD_ID` in
/// `SD_COUNT` times with nonces 1, 2, ... of `SD_SIZE` bytes. Around each check-in it holds
/// the live file open and asserts the check-in never wrote into it (it was renamed over, not
/// reused), that no spare file is left, and that the session reads back the new version;
/// reports `CHECKED <n>` after each.
fn no_exchange() {
    refuse_rename_flags(rustix::fs::RenameFlags::EXCHANGE);

    let store = open_store(false);
    let id = env_id();
    let size: usize = env_parse("SD_SIZE");
    let live = store.session_path(&id);
    let spare = live.with_file_name(format!(".{id}.spare"));
    for n in 1..=env_parse::<u64>("SD_COUNT") {
        let before = std::fs::read(&live).expect("child: read the live file");
        let old = std::fs::File::open(&live).expect("child: open the live file");
        let mut session = store.checkout::<Blob>(&id).expect("child: checkout");
        *session.data_mut() = nonce_blob(n, size);
        session.check_in().expect("child: check in");
        let mut after = Vec::new();
        (&old)
            .read_to_end(&mut after)
            .expect("child: read the old inode");
        assert_eq!(
            after, before,
            "child: check-in {n} wrote into the old inode"
        );
        assert!(
            std::fs::symlink_metadata(&spare).is_err(),
            "child: check-in {n} left a spare file"
        );
        let loaded = store.load::<Blob>(&id).expect("child: load");
        assert_eq!(
            loaded.as_ref().and_then(nonce_of),
            Some(n),
            "child: check-in {n}"
        );
        report(&format!("CHECKED {n}"));
    }
}

/// Makes `renameat2` with any of `flags` fail with `EINVAL` for this process (a seccomp filter,
/// below), checks that it does on two scratch files in `SD_SCRATCH`, and reports `FILTERED`.
fn refuse_rename_flags(flags: rustix::fs::RenameFlags) {
    install_rename_filter(flags.bits());
    let scratch = std::path::PathBuf::from(env("SD_SCRATCH"));
    let (a, b) = (scratch.join("a"), scratch.join("b"));
    std::fs::write(&a, b"a").expect("child: scratch file");
    std::fs::write(&b, b"b").expect("child: scratch file");
    #[allow(clippy::disallowed_methods)] // checking that the filter refuses the flags
    let refused = rustix::fs::renameat_with(rustix::fs::CWD, &a, rustix::fs::CWD, &b, flags);
    assert_eq!(
        refused,
        Err(rustix::io::Errno::INVAL),
        "child: the filter is not in force"
    );
    report("FILTERED");
}

/// Installs a seccomp filter on every thread of this process: `renameat2` with any of `flags`
/// returns `EINVAL`; every other call is allowed.
fn install_rename_filter(flags: u32) {
    install_refusal(libc::SYS_renameat2, Some(flags), libc::EINVAL);
}

/// Makes `openat2` fail with `ENOSYS` for this process, as on a kernel before 5.6 (a seccomp
/// filter on every thread; every other call is allowed).
fn refuse_openat2() {
    install_refusal(libc::SYS_openat2, None, libc::ENOSYS);
}

/// Installs a seccomp filter on every thread of this process: the system call `nr` (if
/// `flags` is given: only when its fifth argument has any of those bits, as renameat2's flags)
/// returns `errno`; every other call is allowed.
fn install_refusal(nr: libc::c_long, flags: Option<u32>, errno: i32) {
    // struct seccomp_data: nr at 0, arch at 4, instruction pointer at 8, args at 16; the low
    // 32 bits of args[4] at 48 on a little-endian machine.
    const ARG4_LOW: u32 = 48;
    let nr = u32::try_from(nr).expect("syscall number");
    let refuse = libc::SECCOMP_RET_ERRNO | u32::try_from(errno).expect("errno");
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let mut program = vec![bpf(load, 0, 0, SECCOMP_NR)];
    match flags {
        Some(flags) => program.extend([
            bpf(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 3, nr),
            bpf(load, 0, 0, ARG4_LOW),
            bpf(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, 0, 1, flags),
        ]),
        None => program.push(bpf(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, nr)),
    }
    program.extend([
        bpf(libc::BPF_RET | libc::BPF_K, 0, 0, refuse),
        bpf(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]);
    install_seccomp(&mut program);
}

/// The offset of the syscall number in `struct seccomp_data`.
const SECCOMP_NR: u32 = 0;

fn bpf(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: u16::try_from(code).expect("BPF opcode"),
        jt,
        jf,
        k,
    }
}

/// Installs the seccomp filter `program` on every thread of this process.
fn install_seccomp(program: &mut [libc::sock_filter]) {
    let fprog = libc::sock_fprog {
        len: u16::try_from(program.len()).expect("program length"),
        filter: program.as_mut_ptr(),
    };
    // SAFETY: plain prctl/seccomp calls; `fprog` points at `program`, which outlives them (the
    // kernel copies the program).
    let installed = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_TSYNC,
                &raw const fprog,
            ) == 0
    };
    assert!(
        installed,
        "child: cannot install the seccomp filter: {}",
        std::io::Error::last_os_error()
    );
}

/// `no_openat2` (hostile): makes `openat2` fail with `ENOSYS` (checked, reported as
/// `FILTERED`), opens the store `SD_DIR`, checks the session `SD_ID` out and in (reported as
/// `WORKS`), then waits for the command `go` (the parent replaces the session's shard
/// directory by a symlink meanwhile) and reports `OUTCOME <op> <ok|variant>` for a load, a
/// check-out, a create and a delete of it.
fn no_openat2(commands: &Receiver<String>) {
    refuse_openat2();
    let probe = rustix::fs::openat2(
        rustix::fs::CWD,
        ".",
        rustix::fs::OFlags::PATH,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::BENEATH,
    );
    assert_eq!(
        probe.err(),
        Some(rustix::io::Errno::NOSYS),
        "child: no filter"
    );
    report("FILTERED");
    let store = open_store(false);
    let id = env_id();
    let mut session = store.checkout::<Blob>(&id).expect("child: checkout");
    *session.data_mut() = nonce_blob(2, 64);
    session.check_in().expect("child: check in");
    report("WORKS");
    assert_eq!(next_command(commands), "go");
    let outcome = |op: &str, r: Result<(), Error>| {
        let word = match r {
            Ok(()) => "ok".to_string(),
            Err(Error::UnsafePath { .. }) => "UnsafePath".to_string(),
            Err(e) => format!("{e:?}"),
        };
        report(&format!("OUTCOME {op} {word}"));
    };
    outcome("load", store.load::<Blob>(&id).map(drop));
    outcome("checkout", store.checkout::<Blob>(&id).map(drop));
    outcome("create", store.create(&nonce_blob(3, 64)).map(drop));
    outcome("delete", store.delete(&id).map(drop));
}

/// `no_noreplace` (spares): makes `renameat2(..., RENAME_NOREPLACE)` fail with `EINVAL` for
/// this process, as GlusterFS and bindfs do (see [`refuse_rename_flags`]), then creates a new store in `SD_DIR` (its marker is written
/// without clobbering) and `SD_COUNT` sessions in it, each checked out and in once; reports
/// `CREATED <n>` after each and `ID <id>` for the last.
fn no_noreplace() {
    refuse_rename_flags(rustix::fs::RenameFlags::NOREPLACE);

    let store = Store::open(env("SD_DIR")).expect("child: create the store");
    let mut last = None;
    for n in 1..=env_parse::<u64>("SD_COUNT") {
        let id = store.create(&nonce_blob(n, 64)).expect("child: create");
        let mut session = store.checkout::<Blob>(&id).expect("child: checkout");
        *session.data_mut() = nonce_blob(n + 1000, 64);
        session.check_in().expect("child: check in");
        report(&format!("CREATED {n}"));
        last = Some(id);
    }
    if let Some(id) = last {
        report(&format!("ID {id}"));
    }
}

/// `fsize_writer` (faults): checks out the [`Blob`] session `SD_ID`, fills it with `SD_SIZE`
/// bytes of [`blob_pattern(2)`](blob_pattern), limits its own file size to `SD_FSIZE` bytes
/// (`RLIMIT_FSIZE`, SIGXFSZ ignored, so a write past the limit fails with `EFBIG` instead of
/// killing the process) and checks in, then creates a session of the same size. Reports
/// `CHECKIN_FAILED <error fields>` and `CHECKIN_MESSAGE <text>`, then `CREATE_FAILED ...` and
/// `CREATE_MESSAGE ...` (`<WORD>_FAILED variant=none` if it succeeded), holding the handed-back
/// guard.
/// On `retry`: lifts the limit, checks that guard in again and reports `RETRIED`.
fn fsize_writer(commands: &Receiver<String>) {
    fn describe(word: &str, e: Option<&Error>) {
        let Some(e) = e else {
            report(&format!("{word}_FAILED variant=none"));
            return;
        };
        let fields = match e {
            Error::Io { op, path, source } => format!(
                "op={} kind={:?} path={}",
                op.replace(' ', "_"),
                source.kind(),
                path.display()
            ),
            _ => String::new(),
        };
        report(&format!("{word}_FAILED variant={} {fields}", variant(e)));
        report(&format!("{word}_MESSAGE {e}"));
    }
    let store = open_store(false);
    let id = env_id();
    let size: usize = env_parse("SD_SIZE");
    let mut session = store.checkout::<Blob>(&id).expect("child: checkout");
    let new = Blob(vec![blob_pattern(2); size]);
    *session.data_mut() = new.clone();
    set_file_size_limit(env_parse("SD_FSIZE"));
    let session = match session.check_in() {
        Ok(()) => return describe("CHECKIN", None),
        Err(e) => {
            describe("CHECKIN", Some(e.error()));
            e.into_checkout()
        }
    };
    assert_eq!(
        session.data(),
        &new,
        "child: the handed-back guard lost its data"
    );
    describe("CREATE", store.create(&new).err().as_ref());
    assert_eq!(next_command(commands), "retry");
    set_file_size_limit(libc::RLIM_INFINITY);
    session
        .check_in()
        .expect("child: check in after the limit was lifted");
    report("RETRIED");
}

/// Sets this process's soft `RLIMIT_FSIZE` (the hard limit stays unlimited, so it can be lifted
/// again) and ignores SIGXFSZ, so that a write past the limit fails with `EFBIG`.
fn set_file_size_limit(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: signal(2) and setrlimit(2) take plain values and a pointer to a live local; they
    // touch no memory of ours. Ignoring SIGXFSZ installs no handler code.
    let (signal, set) = unsafe {
        (
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN),
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit),
        )
    };
    assert_ne!(signal, libc::SIG_ERR, "child: cannot ignore SIGXFSZ");
    assert_eq!(set, 0, "child: setrlimit(RLIMIT_FSIZE, {bytes}) failed");
}

// ---------------------------------------------------------------------------------------------
// Shared between parents and children.
// ---------------------------------------------------------------------------------------------

/// Which of `sessions` sessions worker `worker` increments at step `i` (deterministic, so the
/// parent knows the exact expected counts; uneven on purpose).
pub fn schedule(worker: usize, i: usize, sessions: usize) -> usize {
    let mut x = ((worker as u64) << 32 | i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x % sessions as u64) as usize
}

/// The per-worker key the `increment` role bumps.
pub fn worker_key(worker: usize) -> String {
    format!("w{worker}")
}

/// A self-verifying payload: `len` depends on `n`, and every element is `n`.
pub fn counter_payload(n: u64) -> Vec<u64> {
    vec![n; 16 + (n % 37) as usize * 8]
}

/// Checks a [`counter_payload`] and returns its counter.
pub fn check_counter_payload(v: &[u64]) -> Result<u64, String> {
    let Some(&n) = v.first() else {
        return Err("empty payload".to_owned());
    };
    if v.len() != counter_payload(n).len() {
        return Err(format!("counter {n} with length {}", v.len()));
    }
    if let Some(bad) = v.iter().find(|&&x| x != n) {
        return Err(format!("counter {n} mixed with {bad}"));
    }
    Ok(n)
}

/// The byte the `big_writer` role fills its `i`-th check-in with (never 0: 0 is the initial
/// content).
pub fn blob_pattern(i: u64) -> u8 {
    (i % 251) as u8 + 1
}

/// A byte string that (de)serializes as one byte string, not as a sequence of small integers,
/// so that encoding megabytes is a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BlobVisitor;
        impl<'de> Visitor<'de> for BlobVisitor {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
                let mut v = Vec::new();
                while let Some(b) = seq.next_element()? {
                    v.push(b);
                }
                Ok(Blob(v))
            }
        }
        deserializer.deserialize_byte_buf(BlobVisitor)
    }
}

/// The name of an error's variant, as children report it.
pub fn variant(e: &Error) -> &'static str {
    match e {
        Error::InvalidId { .. } => "InvalidId",
        Error::NotFound { .. } => "NotFound",
        Error::Expired { .. } => "Expired",
        Error::Deleted { .. } => "Deleted",
        Error::Busy { .. } => "Busy",
        Error::LockTimeout { .. } => "LockTimeout",
        Error::Corrupt { .. } => "Corrupt",
        Error::UnsupportedVersion { .. } => "UnsupportedVersion",
        Error::TooLarge { .. } => "TooLarge",
        Error::Encode { .. } => "Encode",
        Error::Decode { .. } => "Decode",
        Error::UnsafePath { .. } => "UnsafePath",
        Error::Config { .. } => "Config",
        Error::Io { .. } => "Io",
        Error::Random { .. } => "Random",
        _ => "Other",
    }
}

/// The value of `key=value` in a report line.
pub fn field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// Like [`field`], parsed; panics with the line if missing or malformed.
pub fn field_parse<T: FromStr>(message: &str, key: &str) -> T {
    field(message, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("report {message:?} has no valid {key}="))
}

// ---------------------------------------------------------------------------------------------
// Parent side.
// ---------------------------------------------------------------------------------------------

/// Starts this test binary as a child process playing `role`, with `envs` set and stdin,
/// stdout and stderr piped. Prefer [`Proc::start`], which also reaps the child.
pub fn spawn(role: &str, envs: &[(&str, String)]) -> Child {
    let mut command = support::child::rerun_this_binary("child::entry");
    command
        .env(ROLE_VAR, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in envs {
        command.env(name, value);
    }
    command.spawn().expect("spawn child process")
}

/// The usual environment for a child working on session `id` of the store at `dir`.
pub fn envs(dir: &Path, id: &SessionId) -> Vec<(&'static str, String)> {
    vec![
        ("SD_DIR", dir.display().to_string()),
        ("SD_ID", id.to_string()),
    ]
}

/// A running child process, killed (SIGKILL) and reaped on drop if still running.
pub struct Proc {
    role: String,
    child: Child,
    stdin: Option<ChildStdin>,
    reports: Arc<Mutex<Vec<String>>>,
    output: Arc<Mutex<String>>,
    pipes: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Proc {
    /// Starts a child playing `role` (see [`spawn`]).
    pub fn start(role: &str, envs: &[(&str, String)]) -> Proc {
        let mut child = spawn(role, envs);
        let reports = Arc::new(Mutex::new(Vec::new()));
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut pipes = Vec::new();
        {
            let reports = Arc::clone(&reports);
            let output = Arc::clone(&output);
            pipes.push(support::child::read_reports(
                stdout,
                MARK,
                move |report| locked(&reports).push(report),
                move |line| {
                    let mut out = locked(&output);
                    let _ = writeln!(out, "stdout: {line}");
                },
            ));
        }
        {
            let output = Arc::clone(&output);
            pipes.push(std::thread::spawn(move || {
                let mut text = String::new();
                let _ = BufReader::new(stderr).read_to_string(&mut text);
                let mut out = locked(&output);
                for line in text.lines() {
                    let _ = writeln!(out, "stderr: {line}");
                }
            }));
        }
        Proc {
            role: role.to_owned(),
            stdin: child.stdin.take(),
            child,
            reports,
            output,
            pipes,
            status: None,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child reported so far, in order.
    pub fn reports(&self) -> Vec<String> {
        locked(&self.reports).clone()
    }

    /// The first report whose first word is `word`.
    pub fn find(&self, word: &str) -> Option<String> {
        locked(&self.reports)
            .iter()
            .find(|r| r.split_whitespace().next() == Some(word))
            .cloned()
    }

    /// Reports, exit status and output of the child, for failure messages.
    pub fn diagnostics(&self) -> String {
        format!(
            "child role {:?} (pid {}), status {:?}\nreports: {:#?}\n{}",
            self.role,
            self.child.id(),
            self.status,
            self.reports(),
            locked(&self.output)
        )
    }

    /// Sends a command line to the child's stdin.
    pub fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("child stdin is open");
        if let Err(e) = writeln!(stdin, "{command}").and_then(|()| stdin.flush()) {
            panic!(
                "cannot send {command:?} to the child: {e}\n{}",
                self.diagnostics()
            );
        }
    }

    /// The exit status if the child has exited (reaping it, and collecting all its output).
    pub fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(status) = self.child.try_wait().expect("try_wait on child")
        {
            self.status = Some(status);
            self.join_pipes();
        }
        self.status
    }

    fn join_pipes(&mut self) {
        for pipe in self.pipes.drain(..) {
            let _ = pipe.join();
        }
    }

    /// Waits up to `timeout` for a report whose first word is `word` and returns it. Fails at
    /// once, with the child's output, if the child exits without making it.
    pub fn wait_for(&mut self, word: &str, timeout: Duration) -> String {
        let what = format!("child {:?} to report {word}", self.role);
        let mut found = None;
        let waited = catch_unwind(AssertUnwindSafe(|| {
            common::wait_until(timeout, &what, || {
                found = self.find(word);
                found.is_some() || self.poll_exit().is_some()
            });
        }));
        if waited.is_err() {
            panic!("timed out waiting for {what}\n{}", self.diagnostics());
        }
        found = found.or_else(|| self.find(word));
        found.unwrap_or_else(|| {
            panic!(
                "child exited without reporting {word}\n{}",
                self.diagnostics()
            )
        })
    }

    /// SIGKILLs the child and reaps it; asserts that it was still running (died of SIGKILL).
    pub fn kill(&mut self) {
        assert!(
            self.status.is_none(),
            "child already exited before the kill\n{}",
            self.diagnostics()
        );
        self.child.kill().expect("SIGKILL the child");
        let status = self.child.wait().expect("reap the child");
        self.status = Some(status);
        self.join_pipes();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "child should have died of SIGKILL\n{}",
            self.diagnostics()
        );
    }

    /// Waits up to `timeout` for the child to exit and asserts that it succeeded.
    pub fn finish(&mut self, timeout: Duration) {
        let what = format!("child {:?} to exit", self.role);
        let waited = catch_unwind(AssertUnwindSafe(|| {
            common::wait_until(timeout, &what, || self.poll_exit().is_some());
        }));
        if waited.is_err() {
            panic!("timed out waiting for {what}\n{}", self.diagnostics());
        }
        assert!(
            self.status.is_some_and(|s| s.success()),
            "child failed\n{}",
            self.diagnostics()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        self.stdin = None;
        self.join_pipes();
    }
}
