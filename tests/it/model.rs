//! Random operation sequences applied to a real store and to an in-memory model; after every
//! operation the two must agree on presence, data, generation, expiry and error variants.
//!
//! The model maps a *handle* (the index of an id in the order ids were issued, including ids
//! that were later deleted or cycled away) to the session's data, generation and whether it
//! has expired. Every operation goes through one of two handles on the store: the same
//! `Store` or a second one opened separately on the same directory.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::sample::Index;
use sessiondir::{Checkout, Error, Expiry, SessionId, Store};

use crate::common::{TestStore, all_files, temp_files};

type Data = Vec<u8>;

#[derive(Debug, Clone)]
enum Op {
    Create(Data),
    CreateExpired(Data),
    Load(Index),
    Info(Index),
    Exists(Index),
    /// checkout, replace the data, check in.
    Modify(Index, Data),
    /// checkout, replace with the first, save, replace with the second, release unsaved.
    SaveThenRelease(Index, Data, Data),
    /// checkout and release without writing.
    Release(Index),
    /// checkout, then delete through the check-out.
    CheckoutDelete(Index),
    Delete(Index),
    CycleId(Index),
    /// checkout, cycle the id, replace the data, check in under the new id.
    CheckoutCycle(Index, Data),
    Touch(Index),
    SetExpiryNever(Index),
    SetExpiryPast(Index),
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    data: Data,
    generation: u64,
    expired: bool,
}

/// Why an operation on a handle must fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    NotFound,
    Expired,
}

#[derive(Default)]
struct Model {
    ids: Vec<SessionId>,
    live: HashMap<usize, Entry>,
}

impl Model {
    fn add(&mut self, id: SessionId, entry: Entry) -> usize {
        assert!(!self.ids.contains(&id), "id {id} issued twice");
        self.ids.push(id);
        self.live.insert(self.ids.len() - 1, entry);
        self.ids.len() - 1
    }

    /// What a live-session operation (checkout, touch, cycle, set_expiry) must see.
    fn state(&self, h: usize) -> Result<&Entry, Gone> {
        match self.live.get(&h) {
            None => Err(Gone::NotFound),
            Some(e) if e.expired => Err(Gone::Expired),
            Some(e) => Ok(e),
        }
    }

    fn loadable(&self, h: usize) -> Option<&Data> {
        self.state(h).ok().map(|e| &e.data)
    }
}

#[track_caller]
fn gone(e: Error, id: &SessionId) -> Gone {
    match e {
        Error::NotFound { id: got } if got == *id => Gone::NotFound,
        Error::Expired { id: got } if got == *id => Gone::Expired,
        other => panic!("unexpected error for {id}: {other:?}"),
    }
}

fn past() -> Expiry {
    Expiry::At(SystemTime::now() - Duration::from_secs(60))
}

fn long_ago() -> Expiry {
    Expiry::At(UNIX_EPOCH + Duration::from_secs(1))
}

/// Applies `op` to the store (through `store`) and to the model, comparing as it goes.
fn apply(store: &Store, model: &mut Model, op: &Op) {
    let pick = |i: &Index| -> Option<(usize, SessionId)> {
        (!model.ids.is_empty()).then(|| {
            let h = i.index(model.ids.len());
            (h, model.ids[h])
        })
    };
    match op {
        Op::Create(data) => {
            let id = store.create(data).unwrap();
            model.add(id, entry(data, false));
        }
        Op::CreateExpired(data) => {
            let id = store.create_with_expiry(data, past()).unwrap();
            model.add(id, entry(data, true));
        }
        Op::Load(i) => {
            let Some((h, id)) = pick(i) else { return };
            assert_eq!(store.load::<Data>(&id).unwrap().as_ref(), model.loadable(h));
        }
        Op::Info(i) => {
            let Some((h, id)) = pick(i) else { return };
            check_info(store, model, h, id);
        }
        Op::Exists(i) => {
            let Some((h, id)) = pick(i) else { return };
            assert_eq!(store.exists(&id).unwrap(), model.state(h).is_ok());
        }
        Op::Modify(i, data) => {
            let Some((h, id)) = pick(i) else { return };
            match (store.checkout::<Data>(&id), model.state(h)) {
                (Ok(mut co), Ok(e)) => {
                    assert_eq!(co.data(), &e.data);
                    assert_eq!(co.info().generation, e.generation);
                    *co.data_mut() = data.clone();
                    co.check_in().unwrap();
                    let e = model.live.get_mut(&h).unwrap();
                    e.data = data.clone();
                    e.generation += 1;
                }
                (Err(err), Err(want)) => assert_eq!(gone(err, &id), want),
                (got, want) => panic!("checkout {id}: got {got:?}, model says {want:?}"),
            }
        }
        Op::SaveThenRelease(i, saved, unsaved) => {
            let Some((h, id)) = pick(i) else { return };
            match (store.checkout::<Data>(&id), model.state(h)) {
                (Ok(mut co), Ok(e)) => {
                    assert_eq!(co.data(), &e.data);
                    *co.data_mut() = saved.clone();
                    co.save().unwrap();
                    assert_eq!(co.info().generation, e.generation + 1);
                    *co.data_mut() = unsaved.clone();
                    co.release();
                    let e = model.live.get_mut(&h).unwrap();
                    e.data = saved.clone();
                    e.generation += 1;
                }
                (Err(err), Err(want)) => assert_eq!(gone(err, &id), want),
                (got, want) => panic!("checkout {id}: got {got:?}, model says {want:?}"),
            }
        }
        Op::Release(i) => {
            let Some((h, id)) = pick(i) else { return };
            match (try_checkout_unheld(store, &id), model.state(h)) {
                (Ok(co), Ok(e)) => {
                    assert_eq!(co.data(), &e.data);
                    assert_eq!(co.info().generation, e.generation);
                    co.release();
                }
                (Err(err), Err(want)) => assert_eq!(gone(err, &id), want),
                (got, want) => panic!("try_checkout {id}: got {got:?}, model says {want:?}"),
            }
        }
        Op::CheckoutDelete(i) => {
            let Some((h, id)) = pick(i) else { return };
            match (store.checkout::<Data>(&id), model.state(h)) {
                (Ok(co), Ok(e)) => {
                    assert_eq!(co.data(), &e.data);
                    co.delete().unwrap();
                    model.live.remove(&h);
                }
                (Err(err), Err(want)) => assert_eq!(gone(err, &id), want),
                (got, want) => panic!("checkout {id}: got {got:?}, model says {want:?}"),
            }
        }
        Op::Delete(i) => {
            let Some((h, id)) = pick(i) else { return };
            // Delete works on expired sessions too.
            assert_eq!(store.delete(&id).unwrap(), model.live.remove(&h).is_some());
        }
        Op::CycleId(i) => {
            let Some((h, id)) = pick(i) else { return };
            match (store.cycle_id(&id), model.state(h)) {
                (Ok(new), Ok(_)) => {
                    assert_ne!(new, id);
                    let e = model.live.remove(&h).unwrap();
                    model.add(new, e);
                }
                (Err(err), Err(want)) => assert_eq!(gone(err, &id), want),
                (got, want) => panic!("cycle_id {id}: got {got:?}, model says {want:?}"),
            }
        }
        Op::CheckoutCycle(i, data) => {
            let Some((h, id)) = pick(i) else { return };
            match (store.checkout::<Data>(&id), model.state(h)) {
                (Ok(mut co), Ok(_)) => {
                    let new = co.cycle_id().unwrap();
                    assert_ne!(new, id);
                    assert_eq!(co.id(), &new);
                    *co.data_mut() = data.clone();
                    co.check_in().unwrap();
                    let mut e = model.live.remove(&h).unwrap();
                    e.data = data.clone();
                    e.generation += 1;
                    model.add(new, e);
                }
                (Err(err), Err(want)) => assert_eq!(gone(err, &id), want),
                (got, want) => panic!("checkout {id}: got {got:?}, model says {want:?}"),
            }
        }
        Op::Touch(i) => header_op(store, model, i, "touch", |s, id| s.touch(id), None),
        Op::SetExpiryNever(i) => header_op(
            store,
            model,
            i,
            "set_expiry(Never)",
            |s, id| s.set_expiry(id, Expiry::Never),
            Some(false),
        ),
        Op::SetExpiryPast(i) => header_op(
            store,
            model,
            i,
            "set_expiry(At(past))",
            |s, id| s.set_expiry(id, long_ago()),
            Some(true),
        ),
    }
}

fn entry(data: &Data, expired: bool) -> Entry {
    Entry {
        data: data.clone(),
        generation: 1,
        expired,
    }
}

/// touch / set_expiry: header rewrites of a live session; `expired_after` is the new expiry
/// state (`None`: unchanged).
fn header_op(
    store: &Store,
    model: &mut Model,
    i: &Index,
    what: &str,
    f: impl FnOnce(&Store, &SessionId) -> Result<sessiondir::SessionInfo, Error>,
    expired_after: Option<bool>,
) {
    if model.ids.is_empty() {
        return;
    }
    let h = i.index(model.ids.len());
    let id = model.ids[h];
    match (f(store, &id), model.state(h)) {
        (Ok(info), Ok(e)) => {
            assert_eq!(info.id, id);
            assert_eq!(info.generation, e.generation + 1, "{what}");
            let e = model.live.get_mut(&h).unwrap();
            e.generation += 1;
            if let Some(expired) = expired_after {
                e.expired = expired;
            }
            assert_eq!(info.is_expired(), e.expired, "{what}");
        }
        (Err(err), Err(want)) => assert_eq!(gone(err, &id), want, "{what}"),
        (got, want) => panic!("{what} {id}: got {got:?}, model says {want:?}"),
    }
}

fn check_info(store: &Store, model: &Model, h: usize, id: SessionId) {
    let got = store
        .info(&id)
        .unwrap()
        .map(|i| (i.id, i.generation, i.is_expired(), i.payload_len as usize));
    let want = model.live.get(&h).map(|e| {
        let len = postcard::to_stdvec(&e.data).unwrap().len();
        (id, e.generation, e.expired, len)
    });
    assert_eq!(got, want, "info of handle {h}");
}

/// Whole-store agreement: every handle's header, the listing, the lock files, no temp files.
fn check_all(store: &Store, model: &Model, dir: &std::path::Path) {
    for (h, id) in model.ids.iter().enumerate() {
        check_info(store, model, h, *id);
    }
    let want: HashSet<SessionId> = model.live.keys().map(|h| model.ids[*h]).collect();
    let listed: Vec<SessionId> = store.ids().map(Result::unwrap).collect();
    assert_eq!(listed.len(), want.len(), "ids() lists each session once");
    assert_eq!(listed.into_iter().collect::<HashSet<_>>(), want);
    let locks: HashSet<String> = all_files(&dir.join("locks"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let want_locks: HashSet<String> = want.iter().map(|id| id.to_string()).collect();
    assert_eq!(locks, want_locks, "one lock file per existing session");
    assert_eq!(temp_files(dir), Vec::<std::path::PathBuf>::new());
}

fn data() -> impl Strategy<Value = Data> {
    prop::collection::vec(any::<u8>(), 0..12)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => data().prop_map(Op::Create),
        1 => data().prop_map(Op::CreateExpired),
        3 => any::<Index>().prop_map(Op::Load),
        1 => any::<Index>().prop_map(Op::Info),
        2 => any::<Index>().prop_map(Op::Exists),
        4 => (any::<Index>(), data()).prop_map(|(i, d)| Op::Modify(i, d)),
        1 => (any::<Index>(), data(), data()).prop_map(|(i, a, b)| Op::SaveThenRelease(i, a, b)),
        2 => any::<Index>().prop_map(Op::Release),
        1 => any::<Index>().prop_map(Op::CheckoutDelete),
        2 => any::<Index>().prop_map(Op::Delete),
        2 => any::<Index>().prop_map(Op::CycleId),
        1 => (any::<Index>(), data()).prop_map(|(i, d)| Op::CheckoutCycle(i, d)),
        2 => any::<Index>().prop_map(Op::Touch),
        1 => any::<Index>().prop_map(Op::SetExpiryNever),
        1 => any::<Index>().prop_map(Op::SetExpiryPast),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_agrees_with_the_model(ops in prop::collection::vec((op(), any::<bool>()), 1..40)) {
        let ts = TestStore::new();
        let second = Store::open(&ts.dir).unwrap();
        let handles = [&ts.store, &second];
        let mut model = Model::default();
        for (op, use_second) in &ops {
            apply(handles[usize::from(*use_second)], &mut model, op);
            check_all(&ts.store, &model, &ts.dir);
        }
        for (h, id) in model.ids.iter().enumerate() {
            let loaded = second.load::<Data>(id).unwrap();
            prop_assert_eq!(loaded.as_ref(), model.loadable(h));
        }
    }
}

/// `try_checkout` of a session nobody holds. Other tests of this binary spawn child processes,
/// and a child holds a copy of every descriptor from its fork to its exec: a lock released in
/// that instant is still held by the copy (design §9), so `Busy` is retried for a bounded time.
/// A `Busy` that lasts is still a failure.
fn try_checkout_unheld(store: &Store, id: &SessionId) -> Result<Checkout<Data>, Error> {
    let start = std::time::Instant::now();
    loop {
        match store.try_checkout::<Data>(id) {
            Err(Error::Busy { .. }) if start.elapsed() < Duration::from_secs(2) => {
                std::thread::yield_now();
            }
            other => return other,
        }
    }
}
