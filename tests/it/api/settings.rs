//! Permissions and store settings: modes 0700/0600, the fan-out fixed at creation, shared
//! directories refused unless allowed, every durability level end to end.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use sessiondir::{Dict, Durability, Error, Expiry, Store, TidyReport};

use super::helpers::{counter_dict, info, mode_of, whole_ms_from_now};
use crate::common::{TestStore, all_files, lock_path_of, tree_snapshot};

#[test]
fn directories_are_0700_and_files_0600() {
    // The process umask (usually 022) can only remove bits; 0700/0600 have none it removes
    // unless the umask masks the owner, which no sane test environment does.
    let ts = TestStore::new();
    let store = &ts.store;
    let id = store.create(&counter_dict(1)).unwrap();
    store.checkout::<Dict>(&id).unwrap().check_in().unwrap();
    let touched = store.create(&counter_dict(2)).unwrap();
    store.touch(&touched).unwrap();
    let cycled = store
        .cycle_id(&store.create(&counter_dict(3)).unwrap())
        .unwrap();

    assert_eq!(mode_of(&ts.dir), 0o700, "store root");
    let mut dirs = 0;
    let mut files = 0;
    for entry in walkdir::WalkDir::new(&ts.dir).min_depth(1) {
        let entry = entry.unwrap();
        let mode = mode_of(entry.path());
        if entry.file_type().is_dir() {
            dirs += 1;
            assert_eq!(mode, 0o700, "{}", entry.path().display());
        } else {
            files += 1;
            assert!(entry.file_type().is_file());
            assert_eq!(mode, 0o600, "{}", entry.path().display());
        }
    }
    // sessions/, locks/, 4 shards each; marker + 3 sessions + 3 lock files + the spares of
    // the two sessions written since their creation (the checked-in and the touched one) +
    // the forwarding record the cycle left under the old id.
    assert_eq!(dirs, 2 + 8);
    assert_eq!(files, 1 + 3 + 3 + 2 + 1);
    for written in [id, touched] {
        let spare = store
            .session_path(&written)
            .with_file_name(format!(".{written}.spare"));
        assert_eq!(mode_of(&spare), 0o600, "{}", spare.display());
    }
    for id in [id, touched, cycled] {
        assert_eq!(mode_of(&store.session_path(&id)), 0o600);
        assert_eq!(mode_of(&lock_path_of(store, &id)), 0o600);
    }
    assert_eq!(mode_of(&ts.dir.join("sessiondir.store")), 0o600);
}

#[test]
fn fan_out_is_fixed_at_creation() {
    let ts = TestStore::new();
    let id = ts.store.create(&counter_dict(5)).unwrap();
    let before = tree_snapshot(&ts.dir);

    match Store::builder(&ts.dir).fan_out(8).open() {
        Err(Error::Config { path, reason }) => {
            assert_eq!(path, ts.dir.join("sessiondir.store"));
            assert!(reason.contains('4') && reason.contains('8'), "{reason}");
        }
        other => panic!("expected Config, got {other:?}"),
    }
    assert_eq!(
        tree_snapshot(&ts.dir),
        before,
        "a refused open changed the store"
    );

    // No fan-out asked: the stored one is adopted, and sessions are found where they are.
    let adopted = Store::open(&ts.dir).unwrap();
    assert_eq!(adopted.fan_out(), 4);
    assert_eq!(adopted.session_path(&id), ts.store.session_path(&id));
    assert_eq!(adopted.load::<Dict>(&id).unwrap(), Some(counter_dict(5)));
    assert_eq!(
        Store::builder(&ts.dir).fan_out(4).open().unwrap().fan_out(),
        4
    );

    // Out of range fan-outs are refused.
    let tmp = tempfile::tempdir().unwrap();
    for bad in [0, 4097] {
        let dir = tmp.path().join(format!("bad{bad}"));
        match Store::builder(&dir).fan_out(bad).open() {
            Err(Error::Config { reason, .. }) => assert!(reason.contains("fan-out"), "{reason}"),
            other => panic!("fan-out {bad}: expected Config, got {other:?}"),
        }
    }
    // The default fan-out is 256, and it sticks.
    let dir = tmp.path().join("default");
    assert_eq!(Store::open(&dir).unwrap().fan_out(), 256);
    assert_eq!(Store::open(&dir).unwrap().fan_out(), 256);
    assert!(matches!(
        Store::builder(&dir).fan_out(4).open(),
        Err(Error::Config { .. })
    ));
}

#[test]
fn a_directory_others_can_write_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("shared");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
    let before = tree_snapshot(&root);
    match Store::open(&root) {
        Err(e @ Error::UnsafePath { .. }) => {
            let Error::UnsafePath { path, .. } = &e else {
                unreachable!()
            };
            assert_eq!(path, &root);
            assert!(e.to_string().contains(&root.display().to_string()), "{e}");
        }
        other => panic!("expected UnsafePath, got {other:?}"),
    }
    assert_eq!(
        tree_snapshot(&root),
        before,
        "a refused open wrote something"
    );

    // Group-writable is refused too (the default file mode gives the group nothing).
    fs::set_permissions(&root, fs::Permissions::from_mode(0o770)).unwrap();
    assert!(matches!(
        Store::open(&root),
        Err(Error::UnsafePath { path, .. }) if path == root
    ));

    fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
    let store = Store::builder(&root)
        .fan_out(2)
        .allow_shared_dir(true)
        .open()
        .unwrap();
    let id = store.create(&counter_dict(1)).unwrap();
    assert_eq!(store.load::<Dict>(&id).unwrap(), Some(counter_dict(1)));

    // An existing store whose shard directory became world-writable is refused too.
    let ts = TestStore::new();
    let shard = ts.dir.join("locks").join("2");
    assert!(shard.is_dir());
    fs::set_permissions(&shard, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(
        Store::open(&ts.dir),
        Err(Error::UnsafePath { path, .. }) if path == shard
    ));

    // A file mode that lets everyone read sessions is a configuration error.
    let dir = tmp.path().join("readable");
    match Store::builder(&dir).file_mode(0o644).open() {
        Err(Error::Config { reason, .. }) => assert!(reason.contains("644"), "{reason}"),
        other => panic!("expected Config, got {other:?}"),
    }
    assert!(!dir.exists());
}

#[test]
fn every_durability_level_works_end_to_end() {
    for level in [
        Durability::None,
        Durability::FileData,
        Durability::FileAndDirectory,
    ] {
        let ts = TestStore::with(|b| b.durability(level));
        let store = &ts.store;
        let id = store.create(&counter_dict(0)).unwrap();
        let mut co = store.checkout::<Dict>(&id).unwrap();
        co.data_mut().increment("counter", 1).unwrap();
        co.save().unwrap();
        co.data_mut().increment("counter", 1).unwrap();
        co.check_in().unwrap();
        assert_eq!(store.touch(&id).unwrap().generation, 4, "{level:?}");
        store
            .set_expiry(&id, Expiry::Idle(Duration::from_secs(60)))
            .unwrap();
        let new = store.cycle_id(&id).unwrap();
        let d: Dict = store.load(&new).unwrap().unwrap();
        assert_eq!(d.get_i64("counter"), Some(2), "{level:?}");
        assert_eq!(info(store, &new).generation, 5, "{level:?}");
        assert_eq!(store.load::<Dict>(&id).unwrap(), None);

        let gone = store
            .create_with_expiry(&Dict::new(), Expiry::At(whole_ms_from_now(-1000)))
            .unwrap();
        let report = store.delete_expired().unwrap();
        assert_eq!((report.scanned, report.deleted), (2, 1), "{level:?}");
        assert_eq!(store.info(&gone).unwrap(), None);

        assert!(store.delete(&new).unwrap(), "{level:?}");
        assert!(!store.delete(&new).unwrap(), "{level:?}");
        assert_eq!(store.ids().count(), 0);
        assert_eq!(store.tidy().unwrap(), TidyReport::default());
        // Left: the marker, and the cycle's forwarding record (valid for a minute, then
        // removed by `delete_expired_forwards`).
        let forward = store.session_path(&id).with_file_name(format!(".{id}.fwd"));
        let mut left = vec![ts.dir.join("sessiondir.store"), forward];
        left.sort();
        let mut found = all_files(&ts.dir);
        found.sort();
        assert_eq!(found, left, "{level:?}");
    }
}
