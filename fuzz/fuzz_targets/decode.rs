//! Arbitrary bytes as a session file, read by both lock-free readers of the store (the header
//! reader behind `Store::info`, and the whole-file reader and `Dict` decoder behind
//! `Store::load`/`snapshot`). Every result must be the one the format predicts, a typed error
//! at worst, and what the readers allocate must stay within the bounds of
//! `sessiondir_fuzz::check_decode_allocations`. See `sessiondir_fuzz::oracle::DecodeInput` for
//! the input's layout.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use sessiondir_fuzz::meter::Meter;
use sessiondir_fuzz::oracle::{DecodeInput, check_decode};
use sessiondir_fuzz::{Scratch, check_decode_allocations};

#[global_allocator]
static ALLOCATOR: Meter = Meter::new();

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

fuzz_target!(
    init: sessiondir_fuzz::crash::report_stack_overflows(),
    |data: &[u8]| {
        sessiondir_fuzz::crash::running(data);
        let input = DecodeInput::from_fuzz_bytes(data);
        SCRATCH.with_borrow_mut(|scratch| {
            let file = scratch.holding(&input.file);
            let (outcome, usage) = ALLOCATOR
                .measure(|| sessiondir::fuzzing::read_session_file(file, input.max_payload));
            let payload = check_decode(&input.file, input.max_payload, &outcome);
            drop(outcome);
            check_decode_allocations(&input, payload, usage);
        });
    }
);
