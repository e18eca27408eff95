//! `sessiondir show`: a session's header and data, in text and JSON; bad and unknown ids.

use serde_json::json;
use sessiondir::{Dict, SessionId, Value};

use crate::common::{Env, epoch_ms, rfc3339};

/// A valid id that no store here ever handed out (ids are random 160-bit values).
const UNKNOWN: &str = "abcdefghijklmnopqrstuvwxyz234567";

fn profile() -> Dict {
    let mut d = Dict::new();
    d.insert("counter", 42i64);
    d.insert("name", "ada lovelace");
    d.insert("admin", true);
    d.insert("blob", Value::Bytes(vec![0xde, 0xad]));
    d
}

#[test]
fn text_shows_header_and_every_key() {
    let env = Env::new();
    let id = env.store.create(&profile()).unwrap();
    let info = env.store.info(&id).unwrap().unwrap();
    let out = env.run("show", &[id.as_str()]);
    out.ok();
    assert_eq!(out.stderr, "");
    let path = env.store.session_path(&id);
    let want = [
        format!("id           {id}"),
        format!("path         {}", path.display()),
        format!("lock file    {}", env.store.lock_path(&id).display()),
        format!("created      {}", rfc3339(info.created)),
        format!("modified     {}", rfc3339(info.modified)),
        "expires      never".to_string(),
        "generation   1".to_string(),
        format!("size         {} bytes", info.file_len()),
        "checked out  no".to_string(),
        "data         4 keys".to_string(),
        "  \"admin\": true".to_string(),
        "  \"blob\": <2 bytes>".to_string(),
        "  \"counter\": 42".to_string(),
        "  \"name\": \"ada lovelace\"".to_string(),
    ];
    assert_eq!(out.lines(), want, "{}", out.stdout);
}

#[test]
fn text_marks_held_and_expired_sessions() {
    let env = Env::new();
    let id = env.expired(7);
    // An expired session cannot be checked out; hold a live one instead, then expire it
    // while holding it.
    let live = env.session(8);
    let mut held = env.store.checkout::<Dict>(&live).unwrap();
    held.set_expiry(sessiondir::Expiry::At(crate::common::an_hour_ago()));
    held.save().unwrap();
    let out = env.run("show", &[live.as_str()]);
    drop(held);
    out.ok();
    assert!(out.lines().contains(&"checked out  yes"), "{}", out.stdout);
    assert!(out.lines().contains(&"generation   2"), "{}", out.stdout);
    let expires = env.store.info(&live).unwrap().unwrap().expires.unwrap();
    let line = format!("expires      {} (expired)", rfc3339(expires));
    assert!(out.lines().contains(&line.as_str()), "{}", out.stdout);

    let out = env.run("show", &[id.as_str()]);
    out.ok();
    assert!(out.lines().contains(&"checked out  no"), "{}", out.stdout);
    assert!(out.stdout.contains("(expired)"), "{}", out.stdout);
    assert!(out.lines().contains(&"  \"counter\": 7"), "{}", out.stdout);
}

#[test]
fn json_has_header_path_and_data() {
    let env = Env::new();
    let id = env.store.create(&profile()).unwrap();
    let info = env.store.info(&id).unwrap().unwrap();
    let out = env.run("show", &["--json", id.as_str()]);
    out.ok();
    let v = out.json_one();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(
        v["path"],
        env.store.session_path(&id).to_str().expect("UTF-8 path")
    );
    // The lock file an operator would look for with fuser or lsof.
    let lock = env.store.lock_path(&id);
    assert!(lock.is_file(), "{}", lock.display());
    assert_eq!(v["lock_path"], lock.to_str().expect("UTF-8 path"));
    assert_eq!(v["created_ms"], epoch_ms(info.created));
    assert_eq!(v["modified_ms"], epoch_ms(info.modified));
    assert_eq!(v["expires_ms"], serde_json::Value::Null);
    assert_eq!(v["generation"], 1);
    assert_eq!(v["size"], info.file_len());
    assert_eq!(v["expired"], false);
    assert_eq!(v["checked_out"], false);
    assert_eq!(
        v["data"],
        json!({
            "counter": 42,
            "name": "ada lovelace",
            "admin": true,
            "blob": { "bytes": "dead" },
        })
    );

    let held = env.store.checkout::<Dict>(&id).unwrap();
    let out = env.run("show", &["--json", id.as_str()]);
    drop(held);
    out.ok();
    assert_eq!(out.json_one()["checked_out"], true);
}

#[test]
fn non_dict_sessions_are_shown_as_opaque() {
    let env = Env::new();
    let id = env.store.create(&(7u32, "hello".to_string())).unwrap();
    let info = env.store.info(&id).unwrap().unwrap();
    let out = env.run("show", &[id.as_str()]);
    out.ok();
    let line = format!(
        "data         {} bytes, not a sessiondir::Dict",
        info.payload_len
    );
    assert!(
        out.lines().contains(&line.as_str()),
        "missing {line:?} in\n{}",
        out.stdout
    );
    assert!(out.lines().contains(&"generation   1"), "{}", out.stdout);

    let out = env.run("show", &["--json", id.as_str()]);
    out.ok();
    let v = out.json_one();
    assert_eq!(v["data"], serde_json::Value::Null);
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["size"], info.file_len());
}

#[test]
fn unknown_and_deleted_ids_exit_1_naming_the_id() {
    let env = Env::new();
    for args in [vec![UNKNOWN], vec!["--json", UNKNOWN]] {
        let out = env.run("show", &args);
        out.expect_code(1);
        assert_eq!(out.stdout, "");
        assert!(out.stderr.contains(UNKNOWN), "{}", out.stderr);
        assert!(out.stderr.contains("not found"), "{}", out.stderr);
    }
    let id = env.session(1);
    assert!(env.store.delete(&id).unwrap());
    let out = env.run("show", &[id.as_str()]);
    out.expect_code(1);
    assert!(out.stderr.contains(id.as_str()), "{}", out.stderr);
}

#[test]
fn bad_ids_exit_2_quoting_the_input() {
    let env = Env::new();
    let upper = UNKNOWN.to_uppercase();
    let long = format!("{UNKNOWN}a");
    for bad in [
        "../etc/passwd",
        "",
        upper.as_str(),
        long.as_str(),
        "abcdefghijklmnopqrstuvwxyz23456/",
    ] {
        for cmd in ["show", "rm"] {
            let out = env.run(cmd, &[bad]);
            out.expect_code(2);
            assert_eq!(out.stdout, "", "{cmd} {bad:?}");
            let quoted = format!("{bad:?}");
            assert!(
                out.stderr.contains(&quoted),
                "{cmd}: stderr does not quote {quoted}: {}",
                out.stderr
            );
            assert!(out.stderr.contains("invalid session id"), "{}", out.stderr);
        }
    }
    // Nothing was created next to the store by the hostile paths.
    assert!(!env.tmp.path().join("etc").exists());
    assert!(SessionId::parse(&upper).is_err());
}
