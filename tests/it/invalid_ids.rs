//! Hostile and malformed ids: every one is [`Error::InvalidId`] with a message saying what a
//! valid id looks like, and nothing on disk is touched. Valid-looking ids that were never
//! issued behave as absent sessions and create nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sessiondir::{Dict, Error, Expiry, SessionId};

use crate::common::{EntryState, TestStore, tree_snapshot};

const LENGTH: &str = "a session id is exactly 32 ASCII characters";
const ALPHABET: &str = "a session id uses only the characters a-z and 2-7";

/// `valid` with the character at `at` replaced by `with` (which may be several bytes).
fn replace_at(valid: &str, at: usize, with: &str) -> String {
    format!("{}{}{}", &valid[..at], with, &valid[at + 1..])
}

/// The catalogue: (what it is, the input, the reason it must be refused for).
fn catalogue(valid: &str) -> Vec<(String, String, &'static str)> {
    assert_eq!(valid.len(), 32);
    let mut c: Vec<(String, String, &'static str)> = Vec::new();
    let mut add = |what: &str, input: String, reason: &'static str| {
        c.push((what.to_string(), input, reason));
    };

    // Lengths.
    add("empty", String::new(), LENGTH);
    add("one char", "a".into(), LENGTH);
    add("31 chars", "a".repeat(31), LENGTH);
    add("33 chars", "a".repeat(33), LENGTH);
    add("valid minus last", valid[..31].to_string(), LENGTH);
    add("valid plus one", format!("{valid}a"), LENGTH);
    add("valid plus slash", format!("{valid}/"), LENGTH);
    add("valid plus newline", format!("{valid}\n"), LENGTH);
    add("leading space", format!(" {valid}"), LENGTH);
    add("10 KB", "a".repeat(10 * 1024), LENGTH);
    add("dot", ".".into(), LENGTH);
    add("dot dot", "..".into(), LENGTH);
    add(
        "temp file name of a valid id",
        format!(".{valid}.abcdefgh.tmp"),
        LENGTH,
    );

    // Path traversal and separators.
    add("../etc/passwd", "../etc/passwd".into(), LENGTH);
    let mut traversal = "../../../../../../etc/passwd".to_string();
    while traversal.len() < 32 {
        traversal.insert(0, '/');
    }
    add("traversal padded to 32", traversal, ALPHABET);
    add(
        "traversal padded with NULs",
        format!("{:\0<32}", "../../../../../../etc/passwd"),
        ALPHABET,
    );
    add("slash inside", replace_at(valid, 16, "/"), ALPHABET);
    add("slash first", replace_at(valid, 0, "/"), ALPHABET);
    add("backslash inside", replace_at(valid, 10, "\\"), ALPHABET);
    add("dot inside", replace_at(valid, 5, "."), ALPHABET);
    add("NUL inside", replace_at(valid, 20, "\0"), ALPHABET);
    add("NUL last", replace_at(valid, 31, "\0"), ALPHABET);
    add("all NUL", "\0".repeat(32), ALPHABET);
    add("%2e%2e", "%2e%2e".into(), LENGTH);
    add(
        "%2e%2e%2f padded to 32",
        format!("{:a<32}", "%2e%2e%2f%2e%2e%2f"),
        ALPHABET,
    );

    // Case and alphabet.
    let upper = valid.to_ascii_uppercase();
    assert_ne!(upper, valid, "the valid id has letters");
    add("upper-case valid id", upper, ALPHABET);
    add("one upper-case char", replace_at(valid, 3, "Q"), ALPHABET);
    add("all upper-case A", "A".repeat(32), ALPHABET);
    for digit in ['0', '1', '8', '9'] {
        add(
            &format!("digit {digit} inside"),
            replace_at(valid, 7, &digit.to_string()),
            ALPHABET,
        );
        add(
            &format!("all {digit}"),
            digit.to_string().repeat(32),
            ALPHABET,
        );
    }
    add("base32 padding =", replace_at(valid, 31, "="), ALPHABET);
    add("dash", replace_at(valid, 8, "-"), ALPHABET);
    add("underscore", replace_at(valid, 8, "_"), ALPHABET);
    add("plus", replace_at(valid, 8, "+"), ALPHABET);
    add("spaces", " ".repeat(32), ALPHABET);
    add("space inside", replace_at(valid, 12, " "), ALPHABET);
    add("tab inside", replace_at(valid, 12, "\t"), ALPHABET);
    add("newline inside", replace_at(valid, 12, "\n"), ALPHABET);
    add("DEL byte", replace_at(valid, 12, "\x7f"), ALPHABET);

    // Non-ASCII: by characters and by bytes.
    add("é", "é".into(), LENGTH);
    add("32 × é (64 bytes)", "é".repeat(32), LENGTH);
    add("16 × é (32 bytes)", "é".repeat(16), ALPHABET);
    add(
        "30 a + é (32 bytes)",
        format!("{}é", "a".repeat(30)),
        ALPHABET,
    );
    add(
        "31 a + é (33 bytes)",
        format!("{}é", "a".repeat(31)),
        LENGTH,
    );
    add("8 × emoji (32 bytes)", "😀".repeat(8), ALPHABET);
    add(
        "28 a + emoji (32 bytes)",
        format!("{}😀", "a".repeat(28)),
        ALPHABET,
    );
    add("emoji alone", "🔑".into(), LENGTH);
    add("Cyrillic а homoglyphs (32 bytes)", "а".repeat(16), ALPHABET);
    add("fullwidth letters (33 bytes)", "ａ".repeat(11), LENGTH);
    add(
        "fullwidth + ascii (32 bytes)",
        format!("{}{}", "ａ".repeat(10), "aa"),
        ALPHABET,
    );
    add(
        "combining accent (32 bytes)",
        format!("{}\u{301}", "a".repeat(30)),
        ALPHABET,
    );
    add(
        "zero-width space (32 bytes)",
        format!("{}\u{200b}", "a".repeat(29)),
        ALPHABET,
    );
    c
}

#[track_caller]
fn assert_invalid(what: &str, input: &str, reason: &'static str, result: Result<SessionId, Error>) {
    let err = match result {
        Err(e) => e,
        Ok(id) => panic!("{what}: {input:?} was accepted as {id:?}"),
    };
    let Error::InvalidId {
        input: reported,
        reason: got,
    } = &err
    else {
        panic!("{what}: expected InvalidId, got {err:?}");
    };
    assert_eq!(*got, reason, "{what}");
    let cut: String = input.chars().take(80).collect();
    assert_eq!(reported, &cut, "{what}: input cut to 80 characters");
    let msg = err.to_string();
    assert_eq!(
        msg,
        format!("invalid session id {cut:?}: {reason}"),
        "{what}"
    );
    assert!(msg.len() < 600, "{what}: message of {} bytes", msg.len());
    assert!(!err.is_gone(), "{what}");
    assert_eq!(err.session_id(), None, "{what}");
}

fn snapshot(ts: &TestStore) -> BTreeMap<PathBuf, EntryState> {
    tree_snapshot(&ts.dir)
}

#[test]
fn every_malformed_id_is_refused_and_nothing_on_disk_changes() {
    let ts = TestStore::new();
    let valid = ts.store.create(&Dict::new()).unwrap();
    let mut other = Dict::new();
    other.insert("user", "ada");
    ts.store.create(&other).unwrap();
    let before = snapshot(&ts);

    let cases = catalogue(valid.as_str());
    assert!(cases.len() >= 55, "{} cases", cases.len());
    for (what, input, reason) in &cases {
        assert_invalid(what, input, reason, SessionId::parse(input));
        assert_invalid(what, input, reason, input.parse::<SessionId>());
        assert_invalid(what, input, reason, std::str::FromStr::from_str(input));
    }
    // The 10 KB input is cut in the error, not copied whole.
    match SessionId::parse(&"a".repeat(10 * 1024)) {
        Err(Error::InvalidId { input, .. }) => assert_eq!(input.len(), 80),
        other => panic!("{other:?}"),
    }
    // Non-ASCII input is cut by characters, never inside one.
    match SessionId::parse(&"é".repeat(100)) {
        Err(Error::InvalidId { input, .. }) => assert_eq!(input, "é".repeat(80)),
        other => panic!("{other:?}"),
    }

    assert_eq!(snapshot(&ts), before, "parsing touched the store");
    // The valid id still parses and still works.
    assert_eq!(SessionId::parse(valid.as_str()).unwrap(), valid);
    assert_eq!(ts.store.load::<Dict>(&valid).unwrap(), Some(Dict::new()));
}

#[test]
fn the_catalogue_is_complete_for_single_character_substitutions() {
    // Every byte value in every position of an otherwise valid id: exactly [a-z2-7] passes.
    let ts = TestStore::new();
    let valid = ts.store.create(&Dict::new()).unwrap();
    let before = snapshot(&ts);
    for pos in [0usize, 13, 31] {
        for b in 0u8..=127 {
            let mut bytes = valid.as_str().as_bytes().to_vec();
            bytes[pos] = b;
            let s = String::from_utf8(bytes).unwrap();
            let ok = matches!(b, b'a'..=b'z' | b'2'..=b'7');
            match SessionId::parse(&s) {
                Ok(id) => {
                    assert!(ok, "byte {b:#04x} at {pos} accepted");
                    assert_eq!(id.as_str(), s);
                }
                Err(e) => {
                    assert!(!ok, "byte {b:#04x} at {pos} refused: {e}");
                    assert_invalid("substitution", &s, ALPHABET, Err(e));
                }
            }
        }
    }
    assert_eq!(snapshot(&ts), before);
}

#[test]
fn a_never_issued_id_is_absent_everywhere_and_creates_nothing() {
    let ts = TestStore::with(|b| b.lock_timeout(Duration::from_secs(5)));
    let store = &ts.store;
    let real = store.create(&Dict::new()).unwrap();
    let before = snapshot(&ts);

    let never: Vec<SessionId> = [
        "abcdefghijklmnopqrstuvwxyz234567",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "77777777777777777777777777777777",
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    ]
    .iter()
    .map(|s| SessionId::parse(s).unwrap())
    .collect();
    for id in &never {
        assert_ne!(id, &real);
        assert!(store.load::<Dict>(id).unwrap().is_none(), "{id}");
        assert!(store.snapshot::<Dict>(id).unwrap().is_none(), "{id}");
        assert!(!store.exists(id).unwrap(), "{id}");
        assert_eq!(store.info(id).unwrap(), None, "{id}");
        assert!(!store.delete(id).unwrap(), "{id}");
        for (op, result) in [
            ("checkout", store.checkout::<Dict>(id).map(drop)),
            ("try_checkout", store.try_checkout::<Dict>(id).map(drop)),
            ("touch", store.touch(id).map(drop)),
            ("cycle_id", store.cycle_id(id).map(drop)),
            ("set_expiry", store.set_expiry(id, Expiry::Never).map(drop)),
        ] {
            match result {
                Err(Error::NotFound { id: got }) => assert_eq!(&got, id, "{op}"),
                other => panic!("{op} {id}: expected NotFound, got {other:?}"),
            }
        }
        assert_eq!(
            snapshot(&ts),
            before,
            "operations on {id} changed the store"
        );
    }
    // Listing, gc and tidy do not invent it either.
    assert_eq!(
        store.ids().map(Result::unwrap).collect::<Vec<_>>(),
        vec![real]
    );
    assert_eq!(store.delete_expired().unwrap().deleted, 0);
    assert_eq!(store.tidy().unwrap(), sessiondir::TidyReport::default());
    assert_eq!(snapshot(&ts), before);
}
