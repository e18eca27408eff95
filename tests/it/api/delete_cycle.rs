//! Delete and id cycling: `delete` removes both files once, `cycle_id` moves the session as
//! last written, `Checkout::cycle_id` keeps it checked out under the new id.

use sessiondir::{Dict, Expiry, Store};

use super::helpers::{assert_busy, assert_not_found, counter_dict, file_bytes, info, tick};
use crate::common::{TestStore, all_files, entry_state, lock_path_of};

#[test]
fn delete_removes_the_session_once() {
    let ts = TestStore::new();
    let store = &ts.store;
    let keep = store.create(&counter_dict(1)).unwrap();
    let id = store.create(&counter_dict(2)).unwrap();
    let lock = lock_path_of(store, &id);
    assert!(lock.is_file());

    assert!(store.delete(&id).unwrap());
    assert!(!store.delete(&id).unwrap());

    assert_eq!(store.load::<Dict>(&id).unwrap(), None);
    assert!(!store.exists(&id).unwrap());
    assert_eq!(store.info(&id).unwrap(), None);
    assert_not_found(store.checkout::<Dict>(&id), &id);
    assert_not_found(store.try_checkout::<Dict>(&id), &id);
    assert_not_found(store.touch(&id), &id);
    assert_not_found(store.cycle_id(&id), &id);
    assert_not_found(store.set_expiry(&id, Expiry::Never), &id);
    // Both of its files are gone, nothing else is.
    assert!(entry_state(&store.session_path(&id)).is_none());
    assert!(entry_state(&lock).is_none());
    let names: Vec<String> = all_files(&ts.dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(id.as_str())), "{names:?}");
    assert_eq!(store.load::<Dict>(&keep).unwrap(), Some(counter_dict(1)));

    // Deleting through a check-out.
    let co = store.checkout::<Dict>(&keep).unwrap();
    co.delete().unwrap();
    assert_eq!(store.load::<Dict>(&keep).unwrap(), None);
    assert!(!store.delete(&keep).unwrap());
    assert_eq!(store.ids().count(), 0);
    assert_eq!(all_files(&ts.dir.join("locks")).len(), 0);
}

#[test]
fn cycle_id_moves_data_and_keeps_created_time() {
    let ts = TestStore::new();
    let store = &ts.store;
    let old = store.create(&counter_dict(1)).unwrap();
    let mut co = store.checkout::<Dict>(&old).unwrap();
    co.data_mut().increment("counter", 1).unwrap();
    co.check_in().unwrap();
    let before = info(store, &old);
    let bytes_before = file_bytes(store, &old);
    tick();

    let new = store.cycle_id(&old).unwrap();
    assert_ne!(new, old);
    assert_eq!(store.load::<Dict>(&old).unwrap(), None);
    assert!(!store.exists(&old).unwrap());
    assert_eq!(store.info(&old).unwrap(), None);
    assert_not_found(store.checkout::<Dict>(&old), &old);
    assert!(entry_state(&lock_path_of(store, &old)).is_none());

    assert_eq!(store.load::<Dict>(&new).unwrap(), Some(counter_dict(2)));
    let after = info(store, &new);
    assert_eq!(after.id, new);
    assert_eq!(after.created, before.created);
    // The file moved as last written: same header and payload.
    assert_eq!(after.modified, before.modified);
    assert_eq!(after.generation, before.generation);
    assert_eq!(file_bytes(store, &new), bytes_before);
    assert!(lock_path_of(store, &new).is_file());
    assert_eq!(
        store.ids().map(Result::unwrap).collect::<Vec<_>>(),
        vec![new]
    );
    // The new id is free to check out.
    store.try_checkout::<Dict>(&new).unwrap().release();
}

#[test]
fn checkout_cycle_id_keeps_the_session_checked_out_under_the_new_id() {
    let ts = TestStore::new();
    let store = &ts.store;
    let other = Store::open(&ts.dir).unwrap();
    let old = store.create(&counter_dict(1)).unwrap();
    let mut co = store.checkout::<Dict>(&old).unwrap();
    co.data_mut().increment("counter", 10).unwrap();
    let new = co.cycle_id().unwrap();
    assert_ne!(new, old);
    assert_eq!(co.id(), &new);
    // Moved as last written: the unsaved change is not on disk yet.
    assert_eq!(store.load::<Dict>(&new).unwrap(), Some(counter_dict(1)));
    assert_eq!(store.load::<Dict>(&old).unwrap(), None);
    assert_busy(other.try_checkout::<Dict>(&new), &new);
    assert_not_found(other.try_checkout::<Dict>(&old), &old);
    co.check_in().unwrap();
    assert_eq!(store.load::<Dict>(&new).unwrap(), Some(counter_dict(11)));
    assert_eq!(info(store, &new).generation, 2);
    assert_eq!(store.load::<Dict>(&old).unwrap(), None);
    other.try_checkout::<Dict>(&new).unwrap().release();
}
