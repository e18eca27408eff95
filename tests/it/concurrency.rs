//! Threads and processes incrementing shared sessions through check-out/check-in: no update is
//! ever lost, so the totals add up exactly. Lock-free readers racing with writers only ever see
//! complete, internally consistent, never older snapshots.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sessiondir::{Dict, Error, SessionId, Store};

use crate::child::{
    self, Proc, ReadStats, check_counter_payload, counter_payload, field_parse, schedule,
    worker_key,
};
use crate::common::TestStore;

const REPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole batch of workers may take.
const WORK_TIMEOUT: Duration = Duration::from_secs(30);

/// One check-out/increment/check-in cycle; bumps `counter` and `key`.
fn increment(store: &Store, id: &SessionId, key: &str) {
    let mut session = store.checkout::<Dict>(id).expect("checkout");
    session.data_mut().increment("counter", 1).unwrap();
    session.data_mut().increment(key, 1).unwrap();
    session.check_in().expect("check in");
}

/// Runs `threads` threads of `per_thread` increments of `id`, thread `t` on `stores[t % len]`,
/// all starting together.
fn hammer(stores: &[Store], id: &SessionId, threads: usize, per_thread: usize) {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let store = &stores[t % stores.len()];
            let barrier = &barrier;
            s.spawn(move || {
                let key = format!("t{t}");
                barrier.wait();
                for _ in 0..per_thread {
                    increment(store, id, &key);
                }
            });
        }
    });
}

fn assert_counts(store: &Store, id: &SessionId, threads: usize, per_thread: usize) {
    let total = (threads * per_thread) as i64;
    let seen: Dict = store.load(id).unwrap().expect("session exists");
    assert_eq!(seen.get_i64("counter"), Some(total), "lost updates");
    for t in 0..threads {
        assert_eq!(
            seen.get_i64(&format!("t{t}")),
            Some(per_thread as i64),
            "thread {t}"
        );
    }
    let info = store.info(id).unwrap().unwrap();
    assert_eq!(info.generation, 1 + total as u64, "one write per check-in");
}

#[test]
fn threads_incrementing_one_session_lose_no_update() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 200;
    let ts = TestStore::new();
    let id = ts.store.create(&Dict::new()).unwrap();
    hammer(std::slice::from_ref(&ts.store), &id, THREADS, PER_THREAD);
    assert_counts(&ts.store, &id, THREADS, PER_THREAD);
    let stats = ts.store.lock_stats();
    let acquired = stats.immediate + stats.local_queue + stats.event + stats.poll;
    assert_eq!(acquired, (THREADS * PER_THREAD) as u64, "{stats:?}");
    assert_eq!((stats.timeouts, stats.busy), (0, 0), "{stats:?}");
}

#[test]
fn threads_on_two_separately_opened_stores_exclude_each_other() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 200;
    let ts = TestStore::new();
    let other = Store::open(&ts.dir).unwrap();
    let id = ts.store.create(&Dict::new()).unwrap();

    // The file lock alone excludes: a check-out through one store is seen by the other.
    let held = ts.store.checkout::<Dict>(&id).unwrap();
    assert!(matches!(
        other.try_checkout::<Dict>(&id),
        Err(Error::Busy { .. })
    ));
    held.release();
    let held = other.checkout::<Dict>(&id).unwrap();
    assert!(matches!(
        ts.store.try_checkout::<Dict>(&id),
        Err(Error::Busy { .. })
    ));
    held.release();

    let stores = [ts.store.clone(), other.clone()];
    hammer(&stores, &id, THREADS, PER_THREAD);
    assert_counts(&ts.store, &id, THREADS, PER_THREAD);
    let acquired: u64 = stores
        .iter()
        .map(|s| {
            let st = s.lock_stats();
            st.immediate + st.local_queue + st.event + st.poll
        })
        .sum();
    // Plus the two check-outs of the exclusion check above.
    assert_eq!(acquired, (THREADS * PER_THREAD) as u64 + 2);
}

/// Starts `workers` increment children on `ids`, `count` cycles each, all at once, and waits
/// for them to finish. Returns their `DONE` reports.
fn run_increment_children(
    ts: &TestStore,
    ids: &[SessionId],
    workers: usize,
    count: usize,
) -> Vec<String> {
    let id_list: Vec<String> = ids.iter().map(SessionId::to_string).collect();
    let mut children: Vec<Proc> = (0..workers)
        .map(|w| {
            Proc::start(
                "increment",
                &[
                    ("SD_DIR", ts.dir.display().to_string()),
                    ("SD_IDS", id_list.join(",")),
                    ("SD_COUNT", count.to_string()),
                    ("SD_WORKER", w.to_string()),
                ],
            )
        })
        .collect();
    for child in &mut children {
        child.wait_for("READY", REPORT_TIMEOUT);
    }
    for child in &mut children {
        child.send("go");
    }
    children
        .iter_mut()
        .map(|child| {
            let done = child.wait_for("DONE", WORK_TIMEOUT);
            child.finish(REPORT_TIMEOUT);
            done
        })
        .collect()
}

#[test]
fn processes_incrementing_one_hot_session_lose_no_update() {
    const WORKERS: usize = 4;
    const COUNT: usize = 150;
    let ts = TestStore::new();
    let id = ts.store.create(&Dict::new()).unwrap();
    let done = run_increment_children(&ts, &[id], WORKERS, COUNT);
    for d in &done {
        assert_eq!(d, &format!("DONE {COUNT} {COUNT}"));
    }

    let seen: Dict = ts.store.load(&id).unwrap().unwrap();
    assert_eq!(
        seen.get_i64("counter"),
        Some((WORKERS * COUNT) as i64),
        "lost updates: {seen:?}"
    );
    for w in 0..WORKERS {
        assert_eq!(
            seen.get_i64(&worker_key(w)),
            Some(COUNT as i64),
            "worker {w}"
        );
    }
    let info = ts.store.info(&id).unwrap().unwrap();
    assert_eq!(info.generation, 1 + (WORKERS * COUNT) as u64);
}

#[test]
fn processes_spread_over_many_sessions_lose_no_update() {
    const WORKERS: usize = 4;
    const COUNT: usize = 150;
    const SESSIONS: usize = 8;
    let ts = TestStore::new();
    let ids: Vec<SessionId> = (0..SESSIONS)
        .map(|_| ts.store.create(&Dict::new()).unwrap())
        .collect();
    // expected[s][w]: increments of session s by worker w.
    let mut expected = vec![vec![0i64; WORKERS]; SESSIONS];
    for w in 0..WORKERS {
        for i in 0..COUNT {
            expected[schedule(w, i, SESSIONS)][w] += 1;
        }
    }
    assert!(
        expected.iter().all(|row| row.iter().sum::<i64>() > 0),
        "the schedule leaves a session untouched: {expected:?}"
    );

    let done = run_increment_children(&ts, &ids, WORKERS, COUNT);
    for (w, d) in done.iter().enumerate() {
        let per_session: Vec<String> = (0..SESSIONS).map(|s| expected[s][w].to_string()).collect();
        assert_eq!(d, &format!("DONE {COUNT} {}", per_session.join(",")));
    }

    let mut total = 0;
    for (s, (id, by_worker)) in ids.iter().zip(&expected).enumerate() {
        let seen: Dict = ts.store.load(id).unwrap().unwrap();
        let want: i64 = by_worker.iter().sum();
        assert_eq!(seen.get_i64("counter"), Some(want), "session {s}: {seen:?}");
        for (w, &count) in by_worker.iter().enumerate() {
            let got = seen.get_i64(&worker_key(w)).unwrap_or(0);
            assert_eq!(got, count, "session {s}, worker {w}");
        }
        let info = ts.store.info(id).unwrap().unwrap();
        assert_eq!(info.generation, 1 + want as u64, "session {s}");
        total += want;
    }
    assert_eq!(total, (WORKERS * COUNT) as i64);
}

/// Replaces the counter payload `n` with `n + 1`; returns the new counter.
fn bump_payload(store: &Store, id: &SessionId) -> u64 {
    let mut session = store.checkout::<Vec<u64>>(id).expect("checkout");
    let n = check_counter_payload(session.data()).expect("consistent under the lock");
    *session.data_mut() = counter_payload(n + 1);
    session.check_in().expect("check in");
    n + 1
}

#[test]
fn reader_threads_see_only_complete_snapshots() {
    const WRITERS: usize = 2;
    const PER_WRITER: usize = 200;
    const READERS: usize = 3;
    let ts = TestStore::new();
    let id = ts.store.create(&counter_payload(0)).unwrap();
    let writing = AtomicBool::new(true);
    let barrier = Barrier::new(WRITERS + READERS);

    let stats: Vec<ReadStats> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..PER_WRITER {
                        bump_payload(&ts.store, &id);
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                s.spawn(|| {
                    let mut stats = ReadStats::default();
                    let mut problems = Vec::new();
                    barrier.wait();
                    loop {
                        // Read the flag first: the read after the writers stopped is the last.
                        let last_round = !writing.load(Ordering::SeqCst);
                        if let Err(p) = stats.record(ts.store.load::<Vec<u64>>(&id))
                            && problems.len() < 5
                        {
                            problems.push(p);
                        }
                        if last_round {
                            break;
                        }
                    }
                    assert!(problems.is_empty(), "{problems:?} {}", stats.summary());
                    stats
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        writing.store(false, Ordering::SeqCst);
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });

    let last = (WRITERS * PER_WRITER) as u64;
    for st in &stats {
        assert_eq!(
            (st.errors, st.inconsistent, st.regressions),
            (0, 0, 0),
            "{}",
            st.summary()
        );
        assert_eq!(st.last, Some(last), "{}", st.summary());
        assert!(st.reads > 1, "{}", st.summary());
    }
    assert_eq!(
        check_counter_payload(&ts.store.load::<Vec<u64>>(&id).unwrap().unwrap()),
        Ok(last)
    );
}

#[test]
fn reader_process_sees_only_complete_snapshots() {
    const WRITES: u64 = 300;
    let ts = TestStore::new();
    let id = ts.store.create(&counter_payload(0)).unwrap();
    let mut env = child::envs(&ts.dir, &id);
    env.push(("SD_FINAL", WRITES.to_string()));
    let mut reader = Proc::start("reader", &env);
    reader.wait_for("READY", REPORT_TIMEOUT);

    for expected in 1..=WRITES {
        assert_eq!(bump_payload(&ts.store, &id), expected);
    }
    let summary = reader.wait_for("SUMMARY", WORK_TIMEOUT);
    reader.finish(REPORT_TIMEOUT);
    let problems: Vec<String> = reader
        .reports()
        .into_iter()
        .filter(|r| r.starts_with("PROBLEM"))
        .collect();
    assert!(problems.is_empty(), "{problems:?}\n{summary}");
    for key in ["errors", "inconsistent", "regressions"] {
        assert_eq!(field_parse::<u64>(&summary, key), 0, "{key}: {summary}");
    }
    assert_eq!(field_parse::<u64>(&summary, "last"), WRITES, "{summary}");
    assert!(field_parse::<u64>(&summary, "reads") > 1, "{summary}");
    assert!(field_parse::<u64>(&summary, "distinct") >= 2, "{summary}");
}
