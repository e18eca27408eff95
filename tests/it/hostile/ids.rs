//! Hostile ids that `invalid_ids` does not have yet.

use super::*;

// ---------------------------------------------------------------------------------------------
// Ids: cases invalid_ids.rs does not have
// ---------------------------------------------------------------------------------------------

const BAD_LENGTH: &str = "a session id is exactly 32 ASCII characters";
const BAD_ALPHABET: &str = "a session id uses only the characters a-z and 2-7";

/// `(what, input, reason)` for inputs invalid_ids.rs does not try. Every one that is 32 bytes
/// long is refused for its alphabet: the length check cannot be what saves us.
fn more_malformed_ids(valid: &str) -> Vec<(&'static str, String, &'static str)> {
    assert_eq!(valid.len(), 32);
    let head = |n: usize| valid[..n].to_string();
    let pad = |s: &str| format!("{s:a<32}");
    let letter = valid
        .find(|c: char| c.is_ascii_lowercase())
        .expect("a valid id has a letter");
    let mixed: String = valid
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    let first_upper = format!(
        "{}{}{}",
        &valid[..letter],
        valid[letter..=letter].to_ascii_uppercase(),
        &valid[letter + 1..]
    );
    let percent_all: String = valid.bytes().map(|b| format!("%{b:02x}")).collect();
    vec![
        // Lengths around an otherwise valid id.
        ("valid + NUL (33 bytes)", format!("{valid}\0"), BAD_LENGTH),
        ("valid + CR (33 bytes)", format!("{valid}\r"), BAD_LENGTH),
        ("valid twice (64 bytes)", valid.repeat(2), BAD_LENGTH),
        (
            "percent-encoded valid id (96 bytes)",
            percent_all,
            BAD_LENGTH,
        ),
        // Percent-encoding is never decoded.
        (
            "%2F upper-case traversal",
            pad("..%2F..%2F..%2Fetc%2Fpasswd"),
            BAD_ALPHABET,
        ),
        ("%00 at the end", format!("{}%00", head(29)), BAD_ALPHABET),
        (
            "double-encoded %252e%252e%252f",
            pad("%252e%252e%252f"),
            BAD_ALPHABET,
        ),
        (
            "overlong UTF-8 %c0%ae",
            pad("%c0%ae%c0%ae%c0%af"),
            BAD_ALPHABET,
        ),
        (
            "%61 (decodes to a valid id)",
            format!("%61{}", &valid[1..30]),
            BAD_ALPHABET,
        ),
        // Backslashes and other path syntax.
        (
            "backslash traversal",
            pad("..\\..\\..\\windows\\win.ini"),
            BAD_ALPHABET,
        ),
        ("all backslashes", "\\".repeat(32), BAD_ALPHABET),
        (
            "backslash first",
            format!("\\{}", &valid[1..]),
            BAD_ALPHABET,
        ),
        ("UNC prefix", pad("\\\\server\\share\\"), BAD_ALPHABET),
        (
            "absolute path",
            format!("{:/<32}", "/etc/passwd"),
            BAD_ALPHABET,
        ),
        ("home directory", format!("~{}", &valid[1..]), BAD_ALPHABET),
        (
            "dot first (hidden file)",
            format!(".{}", &valid[1..]),
            BAD_ALPHABET,
        ),
        (
            "colon (stream / drive)",
            format!("{}:", head(31)),
            BAD_ALPHABET,
        ),
        // Whitespace that keeps the byte length at 32.
        ("trailing space", format!("{} ", head(31)), BAD_ALPHABET),
        ("trailing CR", format!("{}\r", head(31)), BAD_ALPHABET),
        ("vertical tab", format!("{}\x0b", head(31)), BAD_ALPHABET),
        ("form feed", format!("{}\x0c", head(31)), BAD_ALPHABET),
        (
            "no-break space (2 bytes)",
            format!("{}\u{a0}", head(30)),
            BAD_ALPHABET,
        ),
        (
            "ideographic space (3 bytes)",
            format!("{}\u{3000}", head(29)),
            BAD_ALPHABET,
        ),
        (
            "line separator (3 bytes)",
            format!("{}\u{2028}", head(29)),
            BAD_ALPHABET,
        ),
        (
            "byte-order mark first (3 bytes)",
            format!("\u{feff}{}", head(29)),
            BAD_ALPHABET,
        ),
        // Case: the alphabet is lower case only.
        ("alternating case", mixed, BAD_ALPHABET),
        ("first letter upper-case", first_upper, BAD_ALPHABET),
        // Homoglyphs and case-folding traps, 32 bytes each.
        (
            "Cyrillic е (2 bytes)",
            format!("{}е", head(30)),
            BAD_ALPHABET,
        ),
        ("Greek ο (2 bytes)", format!("{}ο", head(30)), BAD_ALPHABET),
        (
            "Kelvin sign K (3 bytes)",
            format!("{}\u{212a}", head(29)),
            BAD_ALPHABET,
        ),
        ("long s ſ (2 bytes)", format!("{}ſ", head(30)), BAD_ALPHABET),
        (
            "dotless ı (2 bytes)",
            format!("{}ı", head(30)),
            BAD_ALPHABET,
        ),
        (
            "superscript ² (2 bytes)",
            format!("{}²", head(30)),
            BAD_ALPHABET,
        ),
        (
            "fullwidth digit ２ (3 bytes)",
            format!("{}２", head(29)),
            BAD_ALPHABET,
        ),
        (
            "mathematical bold 𝐚 (4 bytes)",
            format!("{}𝐚", head(28)),
            BAD_ALPHABET,
        ),
        // Control characters.
        ("escape", format!("{}\x1b", head(31)), BAD_ALPHABET),
        ("bell", format!("\x07{}", &valid[1..]), BAD_ALPHABET),
    ]
}

#[test]
fn more_malformed_ids_are_refused_and_touch_nothing() {
    let ts = TestStore::new();
    let valid = ts.store.create(&Dict::new()).expect("create");
    let before = tree_snapshot(&ts.dir);
    let cases = more_malformed_ids(valid.as_str());
    assert_eq!(cases.len(), 37);
    for (what, input, reason) in &cases {
        match SessionId::parse(input) {
            Err(Error::InvalidId {
                input: got,
                reason: why,
            }) => {
                assert_eq!(why, *reason, "{what}");
                let cut: String = input.chars().take(80).collect();
                assert_eq!(got, cut, "{what}");
            }
            other => panic!("{what}: {input:?} gave {other:?}"),
        }
    }
    // Exactly 32 characters of the alphabet are accepted, whatever they are.
    for ok in [
        valid.as_str().to_string(),
        "abcdefghijklmnopqrstuvwxyz234567".into(),
        "2".repeat(32),
        "7".repeat(32),
        "z".repeat(32),
    ] {
        let id = SessionId::parse(&ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(id.as_str(), ok);
    }
    assert_eq!(tree_snapshot(&ts.dir), before, "parsing touched the store");
}

#[test]
fn never_issued_ids_in_every_shard_are_not_found_and_create_nothing() {
    // invalid_ids.rs runs the main operations on four never-issued ids; this one puts one in
    // every shard (so every shard directory is looked into) and adds the operations it does
    // not run: inspect, is_checked_out, the lock statistics, listing and a reopen.
    let ts = TestStore::with(|b| b.lock_timeout(Duration::from_secs(2)));
    let store = &ts.store;
    let real = store.create(&dict("who", "real")).expect("create");
    let mut per_shard: BTreeMap<u32, SessionId> = BTreeMap::new();
    // The shard comes from the first four characters: vary the fourth.
    for c in "abcdefghijklmnopqrstuvwxyz234567".chars() {
        let id = SessionId::parse(&format!("qqq{c}{}", "q".repeat(28))).expect("valid");
        if id != real {
            per_shard.entry(store.shard_of(&id)).or_insert(id);
        }
    }
    assert_eq!(per_shard.len(), 4, "one never-issued id per shard");
    let before = tree_snapshot(&ts.dir);
    let stats = store.lock_stats();
    for id in per_shard.values() {
        let not_found = |op: &str, r: Result<(), Error>| match r {
            Err(Error::NotFound { id: got }) => assert_eq!(&got, id, "{op}"),
            other => panic!("{op} {id}: expected NotFound, got {other:?}"),
        };
        assert!(store.load::<Dict>(id).expect("load").is_none());
        assert!(store.snapshot::<Dict>(id).expect("snapshot").is_none());
        assert!(store.inspect::<Dict>(id).expect("inspect").is_none());
        assert!(!store.exists(id).expect("exists"));
        assert_eq!(store.info(id).expect("info"), None);
        assert!(!store.is_checked_out(id).expect("is_checked_out"));
        assert!(!store.delete(id).expect("delete"));
        not_found("checkout", store.checkout::<Dict>(id).map(drop));
        not_found("try_checkout", store.try_checkout::<Dict>(id).map(drop));
        not_found("touch", store.touch(id).map(drop));
        not_found("set_expiry", store.set_expiry(id, Expiry::Never).map(drop));
        not_found("cycle_id", store.cycle_id(id).map(drop));
        assert_eq!(tree_snapshot(&ts.dir), before, "operations on {id} wrote");
    }
    // No lock was taken for any of them (the answer came before any lock).
    assert_eq!(store.lock_stats(), stats);
    let ids: Vec<SessionId> = store.ids().map(|r| r.expect("listing")).collect();
    assert_eq!(ids, vec![real]);
    let reopened = Store::open(&ts.dir).expect("reopen");
    assert!(
        reopened
            .load::<Dict>(&per_shard[&0])
            .expect("load")
            .is_none()
    );
    assert_eq!(tree_snapshot(&ts.dir), before);
}
