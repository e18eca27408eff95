//! Round trips: a custom struct and a `Dict` of every value type through create, load,
//! info, snapshot and check-out, the file exactly the documented header and payload; and the
//! error helpers, a wrong type a `Decode` error naming the file.

use std::collections::BTreeMap;
use std::time::SystemTime;

use sessiondir::{Dict, Error, Expiry, FORMAT_VERSION, HEADER_LEN, SessionId, Value};

use super::helpers::{Cart, cart, file_bytes, info, ms};
use crate::common::TestStore;

#[test]
fn custom_struct_round_trips_through_create_load_info() {
    let ts = TestStore::new();
    let store = &ts.store;
    let data = cart();
    let before = ms(SystemTime::now());
    let id = store.create(&data).unwrap();
    let after = ms(SystemTime::now());

    assert_eq!(store.load::<Cart>(&id).unwrap(), Some(data.clone()));
    assert!(store.exists(&id).unwrap());

    let encoded = postcard::to_stdvec(&data).unwrap();
    let i = info(store, &id);
    assert_eq!(i.id, id);
    assert_eq!(i.generation, 1);
    assert_eq!(i.payload_len as usize, encoded.len());
    assert_eq!(i.file_len(), (HEADER_LEN + encoded.len()) as u64);
    assert_eq!(i.created, i.modified);
    assert!(
        (before..=after).contains(&ms(i.created)),
        "created {:?}",
        i.created
    );
    assert_eq!(i.expires, None);
    assert_eq!(i.idle_ttl, None);
    assert_eq!(i.expiry(), Expiry::Never);
    assert!(!i.is_expired());

    // The file is exactly the documented header followed by the postcard payload.
    let bytes = file_bytes(store, &id);
    assert_eq!(bytes.len() as u64, i.file_len());
    assert_eq!(&bytes[0..4], b"SDIR");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), FORMAT_VERSION);
    assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), 0, "flags");
    assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 1);
    assert_eq!(
        u32::from_le_bytes(bytes[52..56].try_into().unwrap()),
        crc32fast::hash(&encoded)
    );
    assert_eq!(&bytes[HEADER_LEN..], encoded.as_slice());

    let snap = store.snapshot::<Cart>(&id).unwrap().unwrap();
    assert_eq!(snap.data, data);
    assert_eq!(snap.info, i);

    let co = store.checkout::<Cart>(&id).unwrap();
    assert_eq!(co.id(), &id);
    assert_eq!(co.data(), &data);
    assert_eq!(co.info(), i);
    assert_eq!(co.into_data(), data);
}

#[test]
fn dict_round_trips_every_value_type() {
    let ts = TestStore::new();
    let store = &ts.store;
    let mut d = Dict::new();
    d.insert("null", Value::Null);
    d.insert("bool", true);
    d.insert("int", -42i64);
    d.insert("float", 2.5f64);
    d.insert("text", "héllo 🌍");
    d.insert("bytes", Value::Bytes(vec![0, 1, 254, 255]));
    d.insert("list", vec![Value::Int(1), Value::Text("two".into())]);
    d.insert(
        "map",
        BTreeMap::from([("inner".to_string(), Value::Bool(false))]),
    );
    let id = store.create(&d).unwrap();
    let loaded: Dict = store.load(&id).unwrap().unwrap();
    assert_eq!(loaded, d);
    assert_eq!(loaded.len(), 8);
    assert_eq!(loaded.get_i64("int"), Some(-42));
    assert_eq!(loaded.get_str("text"), Some("héllo 🌍"));
    assert_eq!(loaded.get_bool("bool"), Some(true));
    assert_eq!(
        info(store, &id).payload_len as usize,
        postcard::to_stdvec(&d).unwrap().len()
    );

    let mut co = store.checkout::<Dict>(&id).unwrap();
    assert_eq!(co.data_mut().increment("counter", 5), Ok(5));
    co.data_mut().remove("null");
    co.check_in().unwrap();
    let loaded: Dict = store.load(&id).unwrap().unwrap();
    assert_eq!(loaded.get_i64("counter"), Some(5));
    assert!(!loaded.contains_key("null"));
    assert_eq!(loaded.len(), 8);

    // An empty Dict is a valid session too.
    let empty = store.create(&Dict::new()).unwrap();
    assert_eq!(store.load::<Dict>(&empty).unwrap(), Some(Dict::new()));
}

// ---------------------------------------------------------------------------------------------
// Error helpers

#[test]
fn error_helpers_classify_errors() {
    let ts = TestStore::new();
    let id = ts.store.create(&Dict::new()).unwrap();
    ts.store.delete(&id).unwrap();
    let e = ts.store.checkout::<Dict>(&id).unwrap_err();
    assert!(e.is_gone());
    assert_eq!(e.session_id(), Some(&id));
    assert_eq!(e.to_string(), format!("session {id} not found"));
    let e = SessionId::parse("nope").unwrap_err();
    assert!(!e.is_gone());
    assert_eq!(e.session_id(), None);
    // Decoding as the wrong type is a Decode error naming the file, not a panic.
    let id = ts.store.create(&2u8).unwrap();
    match ts.store.load::<bool>(&id) {
        Err(Error::Decode { path, .. }) => assert_eq!(path, ts.store.session_path(&id)),
        Ok(v) => panic!("decoded the byte 2 as the bool {v:?}"),
        Err(other) => panic!("expected Decode, got {other:?}"),
    }
}
