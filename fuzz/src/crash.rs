//! Makes a stack overflow in a fuzz target a crash that is reported, with its input saved.
//!
//! Without a sanitizer runtime nothing gives the fuzzing thread an alternate signal stack, so
//! the SIGSEGV of a stack overflow cannot run any handler: the process just dies and the input
//! is lost. libFuzzer's own crash report cannot be relied on either: it allocates, and the
//! overflow may have struck inside `malloc` with its lock held (seen here: the report hung).
//!
//! [`report_stack_overflows`] gives the thread an alternate stack and a SIGSEGV handler on it
//! that only makes async-signal-safe calls: it writes the input being run (recorded by
//! [`running`]) to `<artifact_prefix>crash-stack-overflow`, says so on stderr, and exits
//! with status 77, as libFuzzer does for a crash.

use std::ffi::CString;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::SeqCst};

/// Bytes of the alternate signal stack.
const ALT_STACK: usize = 256 << 10;
/// The file the crashing input is written to, under libFuzzer's `-artifact_prefix`.
const ARTIFACT: &str = "crash-stack-overflow";

static INPUT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static INPUT_LEN: AtomicUsize = AtomicUsize::new(0);
static ARTIFACT_PATH: OnceLock<CString> = OnceLock::new();

/// Records the input about to be run, for the handler to save.
pub fn running(data: &[u8]) {
    INPUT_LEN.store(0, SeqCst);
    INPUT.store(data.as_ptr().cast_mut(), SeqCst);
    INPUT_LEN.store(data.len(), SeqCst);
}

/// Installs the alternate stack and the handler for the calling thread. Call it from the fuzz
/// target's `init` block; libFuzzer installs its handlers after that block, keeps `SA_ONSTACK`
/// and calls this handler first.
pub fn report_stack_overflows() {
    let prefix = std::env::args()
        .find_map(|a| a.strip_prefix("-artifact_prefix=").map(str::to_owned))
        .unwrap_or_default();
    let path = CString::new(format!("{prefix}{ARTIFACT}")).expect("no NUL in the artifact path");
    ARTIFACT_PATH.get_or_init(|| path);
    // SAFETY: a fresh anonymous mapping, never unmapped (it serves the process's lifetime).
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            ALT_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(stack, libc::MAP_FAILED, "map the alternate signal stack");
    let alt = libc::stack_t {
        ss_sp: stack,
        ss_flags: 0,
        ss_size: ALT_STACK,
    };
    // SAFETY: `alt` describes the mapping above; `action` is fully initialised below.
    unsafe {
        assert_eq!(
            libc::sigaltstack(&alt, std::ptr::null_mut()),
            0,
            "sigaltstack"
        );
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_segv as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()),
            0,
            "sigaction"
        );
    }
}

fn say(message: &[u8]) {
    // SAFETY: write(2) is async-signal-safe; the buffer is valid.
    unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
}

extern "C" fn on_segv(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    say(b"\n==fuzz target: SIGSEGV (a stack overflow, most likely)\n");
    let data = INPUT.load(SeqCst);
    let len = INPUT_LEN.load(SeqCst);
    if let Some(path) = ARTIFACT_PATH.get()
        && !data.is_null()
    {
        // SAFETY: only async-signal-safe calls; `data`/`len` describe the input libFuzzer is
        // running, which stays alive until the run returns (it never does).
        unsafe {
            let fd = libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                0o644,
            );
            if fd >= 0 {
                let mut done = 0;
                while done < len {
                    let n = libc::write(fd, data.add(done).cast(), len - done);
                    if n <= 0 {
                        break;
                    }
                    done += n as usize;
                }
                libc::close(fd);
                say(b"==the input is saved in ");
                say(path.as_bytes());
                say(b"\n");
            }
        }
    }
    say(b"SUMMARY: fuzz target: stack overflow\n");
    // SAFETY: _exit(2) is async-signal-safe.
    unsafe { libc::_exit(77) };
}
