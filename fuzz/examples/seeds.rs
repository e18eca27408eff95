//! Writes the seed corpus of the fuzz targets into `fuzz/seeds/`: session files made by a real
//! store, plus hand-made edge cases. Run by hand when the format changes, and check the
//! (small) result in:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```

use std::fs;
use std::path::Path;
use std::time::Duration;

use sessiondir::{Dict, HEADER_LEN, Store, Value};
use sessiondir_fuzz::oracle::DecodeInput;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let decode = seeds.join("decode");
    let id = seeds.join("id");
    for dir in [&decode, &id] {
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        fs::create_dir_all(dir)?;
    }

    let tmp = tempfile::tempdir()?;
    let store = Store::builder(tmp.path().join("store"))
        .idle_expiry(Duration::from_secs(3600))
        .open()?;
    let mut sessions: Vec<(&str, Dict)> = Vec::new();
    sessions.push(("empty", Dict::new()));

    let mut typical = Dict::new();
    typical.insert("user", "ada");
    typical.insert("visits", 12i64);
    typical.insert("admin", false);
    typical.insert("score", 2.5f64);
    typical.insert("avatar", Value::Bytes(vec![0, 1, 2, 255]));
    typical.insert("note", Value::Null);
    sessions.push(("typical", typical));

    let mut nested = Dict::new();
    let inner: std::collections::BTreeMap<String, Value> = [(
        "a".to_string(),
        Value::List(vec![Value::Int(-1), Value::List(vec![])]),
    )]
    .into();
    nested.insert(
        "cart",
        Value::List(vec![Value::Map(inner), Value::Text("tea".into())]),
    );
    sessions.push(("nested", nested));

    // Over the first 4 KiB read: the reader sizes its second read from the header.
    let mut large = Dict::new();
    large.insert(
        "blob",
        Value::Bytes((0..6000u32).map(|i| i as u8).collect()),
    );
    sessions.push(("large", large));

    for (name, data) in &sessions {
        let sid = store.create(data)?;
        // A few check-ins: the generation and times are not the creation values.
        for _ in 0..2 {
            let session = store.checkout::<Dict>(&sid)?;
            session.check_in().map_err(|e| e.into_parts().0)?;
        }
        let file = fs::read(store.session_path(&sid))?;
        fs::write(
            decode.join(format!("{name}.repair")),
            DecodeInput::to_fuzz_bytes_repairing(&file),
        )?;
        fs::write(
            decode.join(format!("{name}.raw")),
            DecodeInput::to_fuzz_bytes_raw(&file),
        )?;
        fs::write(id.join(format!("valid-{name}")), sid.as_str())?;
    }

    // Edge cases of the framing, taken as they are (control byte 0: default maximum).
    let typical = fs::read(store.session_path(&store.create(&sessions[1].1)?))?;
    let mut edge: Vec<(&str, Vec<u8>)> = vec![
        ("empty-file", vec![]),
        ("magic-only", b"SDIR".to_vec()),
        ("header-only", typical[..HEADER_LEN].to_vec()),
        ("truncated", typical[..typical.len() - 1].to_vec()),
        ("trailing", [typical.as_slice(), b"x"].concat()),
    ];
    let mut version2 = typical.clone();
    version2[4] = 2;
    edge.push(("version-2", version2));
    for (name, file) in &edge {
        fs::write(
            decode.join(format!("{name}.raw")),
            DecodeInput::to_fuzz_bytes_raw(file),
        )?;
    }
    // Repaired edge cases: flags set, and a payload over the smallest maximum (100 bytes).
    let mut flagged = vec![DecodeInput::FIX_HEADER_CRC];
    flagged.extend_from_slice(&typical);
    flagged[1 + 6] = 1;
    fs::write(decode.join("flags.repair"), flagged)?;
    let mut over = vec![2 | DecodeInput::FIX_LEN | DecodeInput::FIX_PAYLOAD_CRC];
    over[0] |= DecodeInput::FIX_HEADER_CRC;
    over.extend_from_slice(&typical);
    over.extend_from_slice(&[0; 100]);
    fs::write(decode.join("over-max.repair"), over)?;

    // Hostile ids from cookies.
    let hostile: [(&str, &[u8]); 8] = [
        ("empty", b""),
        ("traversal", b"../../etc/passwd"),
        ("dot-dot-padded", b"..aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("slash", b"aaaaaaaaaaaaaaa/aaaaaaaaaaaaaaaa"),
        ("nul", b"aaaaaaaaaaaaaaaa\0aaaaaaaaaaaaaaa"),
        ("upper", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ("too-long", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("non-ascii", "éééééééééééééééé".as_bytes()),
    ];
    for (name, bytes) in hostile {
        fs::write(id.join(format!("hostile-{name}")), bytes)?;
    }
    println!(
        "wrote {} decode seeds and {} id seeds under {}",
        fs::read_dir(&decode)?.count(),
        fs::read_dir(&id)?.count(),
        seeds.display()
    );
    Ok(())
}
