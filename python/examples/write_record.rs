//! Writes two sessions from Rust for the cross-language test (`tests/test_cross_language.py`):
//! a web-framework record (a `Dict` of JSON texts, as the tower-sessions and actix-session
//! adapters write it) and a session of native `Dict` values (not a record). Prints both ids.
//!
//! `cargo run --manifest-path python/Cargo.toml --example write_record -- <store dir>`

use sessiondir::{Dict, Store, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .ok_or("usage: write_record <store dir>")?;
    let store = Store::open(dir)?;
    let mut record = Dict::new();
    for (key, value) in [
        ("user", serde_json::json!("ferris")),
        ("visits", serde_json::json!(3)),
        ("cart", serde_json::json!([{"sku": "tea", "qty": 2}])),
        ("big", serde_json::json!(u64::MAX)),
    ] {
        record.insert(key, Value::Text(serde_json::to_string(&value)?));
    }
    let mut native = Dict::new();
    native.insert("counter", 3i64);
    println!("{}", store.create(&record)?);
    println!("{}", store.create(&native)?);
    Ok(())
}
