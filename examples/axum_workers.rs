//! Several axum worker processes serve one counter page from one session directory.
//!
//! ```text
//! cargo run --release --example axum_workers --features axum -- \
//!     [--workers 4] [--dir /tmp/sd] [--port 3000] [--reuse-port]
//! ```
//!
//! The parent starts `--workers` copies of itself as worker processes. Worker `i` serves on
//! `127.0.0.1:<port + i>` (with `--reuse-port`, all of them share `<port>` and the kernel
//! spreads the connections):
//!
//! * `GET /` increments the visitor's counter under an exclusive check-out ([`SessionMut`]) and
//!   answers its new value: concurrent requests of one visitor, to any worker, never lose an
//!   increment;
//! * `GET /peek` answers the counter from a lock-free snapshot ([`SessionRef`]), without
//!   waiting for a writer;
//! * `GET /logout` deletes the session ([`SessionMut::delete`]) and removes the cookie.
//!
//! Each worker also runs a [`GcTask`] that deletes expired sessions every minute (sessions
//! here expire after 30 idle minutes) and logs its passes through `tracing` (no subscriber is
//! installed here, so they go nowhere).
//!
//! Try it with one cookie jar against all the workers:
//!
//! ```text
//! curl -c jar -b jar http://127.0.0.1:3000/        # 1, and the session cookie
//! for p in 3000 3001 3002 3003; do curl -b jar http://127.0.0.1:$p/ & done; wait
//! curl -b jar http://127.0.0.1:3002/peek           # 5
//! ```
//!
//! Ctrl-C stops the parent, which stops its workers. Without `--dir`, a fresh temporary
//! directory is used and removed at the end. The cookie is sent without `Secure` because
//! this serves plain HTTP; keep the default (`Secure`) behind HTTPS.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use sessiondir::axum::{GcTask, SessionLayer, SessionMut, SessionRef, SessionRejection};
use sessiondir::{Dict, Store};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("worker") => worker(&args[1..]),
        _ => parent(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum_workers: {e}");
            ExitCode::from(2)
        }
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn number(args: &[String], name: &str, default: u16) -> Result<u16> {
    match flag(args, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name} expects a number from 0 to 65535, got {v:?}").into()),
    }
}

/// Starts the workers, prints where they listen, and waits for Ctrl-C (or a worker's death).
fn parent(args: &[String]) -> Result<()> {
    let workers = number(args, "--workers", 4)?.max(1);
    let port = number(args, "--port", 3000)?;
    let reuse = args.iter().any(|a| a == "--reuse-port");
    let tmp;
    let dir: PathBuf = match flag(args, "--dir") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("sessions")
        }
    };
    Store::open(&dir)?; // create the store once, before the workers race to
    let exe = std::env::current_exe()?;
    let mut children: Vec<Child> = Vec::new();
    for i in 0..workers {
        let worker_port = if reuse {
            port
        } else {
            port.checked_add(i)
                .ok_or("--port + --workers goes past 65535")?
        };
        let mut command = Command::new(&exe);
        command
            .args(["worker", "--dir", &dir.display().to_string()])
            .args(["--port", &worker_port.to_string()])
            .stdin(Stdio::piped()); // closed when we exit: the worker's cue to stop
        if reuse {
            command.arg("--reuse-port");
        }
        children.push(command.spawn()?);
        println!("worker {i}: http://127.0.0.1:{worker_port}/  (and /peek)");
    }
    println!("sessions in {}; Ctrl-C to stop", dir.display());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = tick.tick() => {
                    if children.iter_mut().any(|c| matches!(c.try_wait(), Ok(Some(_)))) {
                        eprintln!("a worker exited; stopping");
                        break;
                    }
                }
            }
        }
    });
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    println!("stopped {workers} workers");
    Ok(())
}

/// One worker process: the three routes and the gc task, on its port, until its parent goes away.
fn worker(args: &[String]) -> Result<()> {
    let dir = flag(args, "--dir").ok_or("worker: --dir is required")?;
    let port = number(args, "--port", 3000)?;
    let reuse = args.iter().any(|a| a == "--reuse-port");
    // Stop when the parent is gone, however it went (its end of our stdin closes).
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });

    let store = Store::builder(&dir)
        .idle_expiry(Duration::from_secs(30 * 60))
        .open()?;
    let app = Router::new()
        .route("/", get(count))
        .route("/peek", get(peek))
        .route("/logout", get(logout))
        .layer(SessionLayer::<Dict>::new(store.clone()).secure(false)); // plain HTTP here

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let _gc = GcTask::spawn(store, Duration::from_secs(60)); // lives as long as the server
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?; // restart at once after Ctrl-C
        socket.set_reuseport(reuse)?; // several processes on one port: the kernel balances
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// Checked out for the whole request: increments are never lost, whichever worker serves.
async fn count(mut session: SessionMut<Dict>) -> String {
    match session.increment("counter", 1) {
        Ok(n) => format!("{n}\n"),
        Err(e) => format!("the counter is not a number: {e}\n"),
    }
}

/// Logout: deleted under this request's check-out; the response removes the cookie.
async fn logout(session: SessionMut<Dict>) -> std::result::Result<&'static str, SessionRejection> {
    Ok(match session.delete().await? {
        true => "logged out\n",
        false => "there was no session\n",
    })
}

/// A lock-free snapshot: answers at once, even while another request holds the session.
async fn peek(session: SessionRef<Dict>) -> String {
    format!("{}\n", session.get_i64("counter").unwrap_or(0))
}
