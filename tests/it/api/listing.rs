//! Listing: `ids()` and `sessions()` list every session once, and nothing planted among them.

use std::collections::HashSet;
use std::fs;

use sessiondir::SessionId;

use super::helpers::counter_dict;
use crate::common::TestStore;

#[test]
fn ids_and_sessions_list_every_session_once_and_nothing_else() {
    let ts = TestStore::new();
    let store = &ts.store;
    assert_eq!(store.fan_out(), 4);
    let created: HashSet<SessionId> = (0..500i64)
        .map(|i| store.create(&counter_dict(i)).unwrap())
        .collect();
    assert_eq!(created.len(), 500);

    // Plant things that are not sessions, in every shard and around the tree.
    let sessions = ts.dir.join("sessions");
    let some_id = *created.iter().next().unwrap();
    for shard in fs::read_dir(&sessions).unwrap() {
        let shard = shard.unwrap().path();
        let first_here = fs::read_dir(&shard)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .next()
            .expect("every shard has sessions");
        fs::write(shard.join(format!(".{first_here}.a1b2c3d4.tmp")), b"tmp").unwrap();
        fs::write(shard.join("README"), b"foreign").unwrap();
        fs::write(shard.join(".hidden"), b"foreign").unwrap();
        fs::write(shard.join(first_here.to_ascii_uppercase()), b"foreign").unwrap();
        fs::write(shard.join(&first_here[..31]), b"foreign").unwrap();
        fs::write(shard.join(format!("{first_here}.bak")), b"foreign").unwrap();
        // A directory and a symlink with valid-id names are not session files either.
        fs::create_dir(shard.join("abcdefghijklmnopqrstuvwxyz234567")).unwrap();
        std::os::unix::fs::symlink(
            store.session_path(&some_id),
            shard.join("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
        )
        .unwrap();
    }
    fs::write(
        sessions.join("cccccccccccccccccccccccccccccccc"),
        b"not in a shard",
    )
    .unwrap();
    fs::write(
        ts.dir.join("dddddddddddddddddddddddddddddddd"),
        b"not in sessions",
    )
    .unwrap();

    let listed: Vec<SessionId> = store.ids().map(Result::unwrap).collect();
    assert_eq!(listed.len(), 500, "each session exactly once");
    assert_eq!(listed.iter().copied().collect::<HashSet<_>>(), created);

    let infos: Vec<_> = store.sessions().map(Result::unwrap).collect();
    assert_eq!(infos.len(), 500);
    assert_eq!(infos.iter().map(|i| i.id).collect::<HashSet<_>>(), created);
    assert!(
        infos
            .iter()
            .all(|i| i.generation == 1 && i.expires.is_none())
    );
    // Every shard is used and every listed session lives where session_path says.
    let mut shards = HashSet::new();
    for id in &listed {
        let path = store.session_path(id);
        assert!(path.is_file());
        shards.insert(path.parent().unwrap().to_path_buf());
    }
    assert_eq!(shards.len(), 4);
}
