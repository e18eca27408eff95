//! `sessiondir ls`: the text table, JSON lines, --expired, --idle, checked-out sessions.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value as Json;
use sessiondir::{Dict, Expiry, SessionId};

use crate::common::{Env, age_past, counter, epoch_ms, json_ids, rfc3339, sorted};

/// Four sessions of different kinds: never expiring, sliding, expired, checked in once.
fn four(env: &Env) -> [SessionId; 4] {
    let never = env.session(1);
    let sliding = env
        .store
        .create_with_expiry(&counter(2), Expiry::Idle(Duration::from_secs(3600)))
        .unwrap();
    let expired = env.expired(3);
    let written = env.session(4);
    let mut c = env.store.checkout::<Dict>(&written).unwrap();
    c.data_mut().insert("name", "grace");
    c.check_in().unwrap();
    [never, sliding, expired, written]
}

#[test]
fn table_has_a_header_and_one_exact_row_per_session() {
    let env = Env::new();
    let ids = four(&env);
    let held_id = ids[1];
    let held = env.store.checkout::<Dict>(&held_id).unwrap();
    let out = env.run("ls", &[]);
    drop(held);
    out.ok();
    assert_eq!(out.stderr, "");
    let lines = out.lines();
    assert_eq!(lines.len(), 1 + ids.len(), "{}", out.stdout);
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["id", "created", "modified", "expires", "size", "held"]
    );
    let rows: HashMap<&str, Vec<&str>> = lines[1..]
        .iter()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[0], cols)
        })
        .collect();
    assert_eq!(rows.len(), ids.len(), "duplicate rows: {}", out.stdout);
    for id in &ids {
        let info = env.store.info(id).unwrap().unwrap();
        let row = rows
            .get(id.as_str())
            .unwrap_or_else(|| panic!("no row for {id}: {}", out.stdout));
        let expires = info.expires.map_or_else(|| "never".to_string(), rfc3339);
        let held = if *id == held_id { "yes" } else { "no" };
        let size = info.file_len().to_string();
        let want = [
            id.as_str(),
            &rfc3339(info.created),
            &rfc3339(info.modified),
            &expires,
            &size,
            held,
        ];
        assert_eq!(row.as_slice(), want.as_slice(), "row of {id}");
    }
    assert_eq!(rows[ids[0].as_str()][3], "never");
}

#[test]
fn json_lines_carry_every_documented_key_with_exact_values() {
    let env = Env::new();
    let ids = four(&env);
    let held_id = ids[3];
    let held = env.store.checkout::<Dict>(&held_id).unwrap();
    let out = env.run("ls", &["--json"]);
    drop(held);
    out.ok();
    let lines = out.json();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert_eq!(json_ids(&lines), sorted(&ids));
    for v in &lines {
        let obj = v.as_object().expect("a JSON object per line");
        for key in [
            "id",
            "created_ms",
            "modified_ms",
            "expires_ms",
            "generation",
            "size",
            "expired",
            "checked_out",
        ] {
            assert!(obj.contains_key(key), "key {key} missing in {v}");
        }
        let id = SessionId::parse(v["id"].as_str().unwrap()).unwrap();
        let info = env.store.info(&id).unwrap().unwrap();
        assert_eq!(v["created_ms"], epoch_ms(info.created), "{v}");
        assert_eq!(v["modified_ms"], epoch_ms(info.modified), "{v}");
        let expires = info.expires.map_or(Json::Null, |t| epoch_ms(t).into());
        assert_eq!(v["expires_ms"], expires, "{v}");
        assert_eq!(v["generation"], info.generation, "{v}");
        assert_eq!(v["size"], info.file_len(), "{v}");
        assert_eq!(v["expired"], id == ids[2], "{v}");
        assert_eq!(v["checked_out"], id == held_id, "{v}");
    }
    let by_id: HashMap<&str, &Json> = lines
        .iter()
        .map(|v| (v["id"].as_str().unwrap(), v))
        .collect();
    assert_eq!(by_id[ids[0].as_str()]["expires_ms"], Json::Null);
    assert_eq!(by_id[ids[0].as_str()]["generation"], 1);
    assert_eq!(by_id[ids[3].as_str()]["generation"], 2);
    assert_eq!(by_id[ids[1].as_str()]["idle_ttl_ms"], 3_600_000);
}

#[test]
fn expired_lists_exactly_the_expired_sessions() {
    let env = Env::new();
    let live = [env.session(1), env.session(2)];
    let expired = [env.expired(3), env.expired(4), env.expired(5)];
    let out = env.run("ls", &["--expired", "--json"]);
    out.ok();
    let lines = out.json();
    assert_eq!(json_ids(&lines), sorted(&expired));
    assert!(lines.iter().all(|v| v["expired"] == true), "{}", out.stdout);

    let text = env.run("ls", &["--expired"]);
    text.ok();
    let rows = text.lines();
    assert_eq!(rows.len(), 1 + expired.len(), "{}", text.stdout);
    for id in &live {
        assert!(!text.stdout.contains(id.as_str()), "{id} is not expired");
    }
    for id in &expired {
        assert_eq!(
            rows.iter().filter(|r| r.starts_with(id.as_str())).count(),
            1,
            "{id}"
        );
    }

    // A store without expired sessions: only the header (text) or nothing (JSON).
    let clean = Env::new();
    clean.session(1);
    let out = clean.run("ls", &["--expired", "--json"]);
    out.ok();
    assert_eq!(out.stdout, "");
    let out = clean.run("ls", &["--expired"]);
    out.ok();
    assert_eq!(out.lines().len(), 1, "{}", out.stdout);
}

#[test]
fn idle_lists_only_sessions_untouched_for_longer() {
    let env = Env::new();
    let old = [env.session(1), env.session(2), env.session(3)];
    let revived = env.session(4);
    age_past(Duration::from_secs(1));
    env.store.touch(&revived).unwrap();
    let fresh = [env.session(5), env.expired(6)];

    let out = env.run("ls", &["--idle", "1s", "--json"]);
    out.ok();
    assert_eq!(json_ids(&out.json()), sorted(&old));

    // Combined with --expired: both filters apply.
    let out = env.run("ls", &["--idle", "1s", "--expired", "--json"]);
    out.ok();
    assert_eq!(out.stdout, "");

    // A longer idle threshold than anything here lists nothing.
    let out = env.run("ls", &["--idle", "1h", "--json"]);
    out.ok();
    assert_eq!(out.stdout, "");

    // A zero threshold lists everything.
    let out = env.run("ls", &["--idle", "0s", "--json"]);
    out.ok();
    let all: Vec<SessionId> = old
        .iter()
        .chain(&fresh)
        .chain(std::iter::once(&revived))
        .copied()
        .collect();
    assert_eq!(json_ids(&out.json()), sorted(&all));

    let bad = env.run("ls", &["--idle", "soon"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("soon"), "{}", bad.stderr);
}

#[test]
fn empty_store_lists_only_the_header() {
    let env = Env::new();
    let out = env.run("ls", &[]);
    out.ok();
    assert_eq!(out.lines().len(), 1);
    let out = env.run("ls", &["--json"]);
    out.ok();
    assert_eq!(out.stdout, "");
}

#[test]
fn every_held_session_shows_as_checked_out() {
    let env = Env::new();
    let ids: Vec<SessionId> = (0..5).map(|n| env.session(n)).collect();
    let held: Vec<_> = ids[..2]
        .iter()
        .map(|id| env.store.checkout::<Dict>(id).unwrap())
        .collect();
    let out = env.run("ls", &["--json"]);
    drop(held);
    out.ok();
    let lines = out.json();
    let checked_out: BTreeSet<&str> = lines
        .iter()
        .filter(|v| v["checked_out"] == true)
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        checked_out,
        ids[..2]
            .iter()
            .map(|id| id.as_str())
            .collect::<BTreeSet<_>>()
    );
    // Released: nobody holds anything any more.
    let out = env.run("ls", &["--json"]);
    out.ok();
    assert!(out.json().iter().all(|v| v["checked_out"] == false));
}
