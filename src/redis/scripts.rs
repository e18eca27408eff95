//! The server-side scripts: every step that must check the lease and change data at once.
//!
//! Keys of session `ID` under prefix `P` (the `{ID}` hash tag puts them in one hash slot):
//!
//! * `P{ID}` — a hash: `frame`, the session exactly as a session file holds it (64-byte
//!   header and postcard payload, see `docs/design.md`), `fence`, the fencing number of
//!   the latest check-out, and for a sliding session kept alive by reads `active`, the Unix
//!   ms of the last read recorded as activity ([`READ`]). The hash carries the server-side TTL
//!   that implements expiry.
//! * `P{ID}:lock` — the lease: the string `"<fence>:<token>"`, with a `PX` time to live.
//!   `<token>` is 128 random bits drawn by the holder; `<fence>` is `fence` as incremented
//!   by the check-out that took the lease.
//! * `P{ID}:released` — not a key: the pub/sub channel a release publishes on, so that
//!   waiters wake at once (they poll as a fallback; a lease that runs out publishes nothing).
//! * `P{ID}:fwd` — the forwarding record `CYCLE` leaves when it moves session `ID` to a new
//!   id: a string holding the same 64 bytes as the directory store's `.<ID>.fwd` file
//!   (`crate::format::forward`: the new id, when it was cycled, when the record expires), with
//!   a `PX` time to live of the record's lifetime (60 s), so the server removes it and no gc
//!   is needed. Read with a plain `GET` (no script: one key, nothing to check at once);
//!   `SCAN … TYPE hash` never lists it.
//!
//! Every script that writes, releases, extends or deletes first compares the lease with the
//! caller's `"<fence>:<token>"`, and check-in also compares the hash's `fence`; so a holder
//! whose lease ran out (a stalled process, a long GC pause) can never overwrite, delete or
//! release what the next holder does. Replies are arrays whose first element is a status.

use std::sync::LazyLock;

use redis::Script;

/// Check-out attempt. KEYS: data, lock. ARGV: token, lease ms.
/// Reply: `{0}` no session; `{1, pttl}` held by someone (pttl of the lease, ms, or -1);
/// `{2, fence, frame}` taken. A held session does not expire under its holder: the data's TTL
/// is raised to at least the lease's (never lowered; a session without TTL keeps none).
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local pttl = redis.call('PTTL', KEYS[2])
if pttl ~= -2 then return {1, pttl} end
local fence = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('SET', KEYS[2], fence .. ':' .. ARGV[1], 'PX', ARGV[2])
local dttl = redis.call('PTTL', KEYS[1])
if dttl >= 0 and dttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {2, fence, redis.call('HGET', KEYS[1], 'frame')}
",
    )
});

/// Check-in or save. KEYS: data, lock. ARGV: lease ("fence:token"), fence, frame,
/// expiry mode ("px" relative ms, "pxat" absolute Unix ms, "persist"), expiry value,
/// release ("1" or "0"), channel.
/// Reply: `{1}` written; `{0, lease or false}` the lease is not ours (nothing written);
/// `{0, false, fence}` the hash has another fence (nothing written).
pub(crate) static CHECK_IN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local lease = redis.call('GET', KEYS[2])
if lease ~= ARGV[1] then return {0, lease} end
local fence = redis.call('HGET', KEYS[1], 'fence')
if fence and fence ~= ARGV[2] then return {0, false, fence} end
redis.call('HSET', KEYS[1], 'frame', ARGV[3], 'fence', ARGV[2])
if ARGV[4] == 'px' then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
elseif ARGV[4] == 'pxat' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[5])
else
  redis.call('PERSIST', KEYS[1])
end
if ARGV[6] == '1' then
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[7], '')
end
return {1}
",
    )
});

/// Release without writing. KEYS: lock. ARGV: lease, channel. Reply: 1 released, 0 not ours.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], '')
return 1
",
    )
});

/// Lease extension. KEYS: lock, data. ARGV: lease, lease ms. Reply: `{1}` extended,
/// `{0, lease or false}` not ours. The data's TTL is raised with the lease, as at `ACQUIRE`.
pub(crate) static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local lease = redis.call('GET', KEYS[1])
if lease ~= ARGV[1] then return {0, lease} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local dttl = redis.call('PTTL', KEYS[2])
if dttl >= 0 and dttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return {1}
",
    )
});

/// Delete by the holder. KEYS: data, lock. ARGV: lease, channel.
/// Reply: `{1, existed}` deleted and released; `{0, lease or false}` not ours.
pub(crate) static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local lease = redis.call('GET', KEYS[2])
if lease ~= ARGV[1] then return {0, lease} end
local existed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], '')
return {1, existed}
",
    )
});

/// Move a held session to a new id, keeping it held, and leave the forwarding record under
/// the old id in the same step. KEYS: old data, old lock, new data, new lock, old forwarding
/// record. ARGV: old lease, old channel, new token, record (64 bytes), record lifetime ms.
/// Reply: `{2, fence}` moved (new lease `"<fence>:<new token>"` with the old lease's time
/// left; the record set with `PX` lifetime); `{1}` the new id is taken (nothing changed);
/// `{3}` the session is gone (released, no record); `{0, lease or false}` not ours.
pub(crate) static CYCLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local lease = redis.call('GET', KEYS[2])
if lease ~= ARGV[1] then return {0, lease} end
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then return {1} end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[2], '')
  return {3}
end
local pttl = redis.call('PTTL', KEYS[2])
if pttl < 1 then pttl = 1 end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('SET', KEYS[5], ARGV[4], 'PX', ARGV[5])
local fence = redis.call('HINCRBY', KEYS[3], 'fence', 1)
redis.call('SET', KEYS[4], fence .. ':' .. ARGV[3], 'PX', pttl)
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], '')
return {2, fence}
",
    )
});

/// Create, never overwriting. KEYS: data, lock. ARGV: frame, expiry mode, expiry value (as
/// for `CHECK_IN`). Reply: 1 created, 0 the id is taken (a session, or a lease of one).
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'frame', ARGV[1], 'fence', 0)
if ARGV[2] == 'px' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
elseif ARGV[2] == 'pxat' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return 1
",
    )
});

/// A lock-free read that keeps a sliding session alive. KEYS: data. ARGV: now (Unix ms, the
/// reader's clock, like the header's times), record ("1": a visitor's read, "0": an admin's),
/// what ("f" the frame, "h" its 64-byte header only).
/// Reply: `{0}` no session; `{1, frame or header, active}` with `active` the recorded
/// activity (Unix ms, 0 for none) after this read. With record "1", a session with an idle
/// lifetime (header `ttl_ms` > 0) that has not expired and whose last activity (header
/// `modified_ms`, or `active` if later) is at least a quarter lifetime old gets `active` =
/// now and its TTL raised to its lifetime (never lowered: a lease may hold it higher). The
/// same rule as `Header::wants_activity` after `Header::note_activity`, in Lua (exact in
/// doubles below 2^53 ms).
pub(crate) static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'frame', 'active')
local frame = v[1]
if not frame then return {0} end
local active = tonumber(v[2]) or 0
if ARGV[2] == '1' and string.len(frame) >= 64 then
  local function u64(at)
    local n = 0
    for i = at + 8, at + 1, -1 do n = n * 256 + string.byte(frame, i) end
    return n
  end
  local modified, expires, ttl = u64(24), u64(32), u64(40)
  local now = tonumber(ARGV[1])
  local last = modified
  if active > modified then
    last = active
    expires = math.max(expires, active + ttl)
  end
  if ttl > 0 and now < expires and now - last >= math.max(math.floor(ttl / 4), 1) then
    redis.call('HSET', KEYS[1], 'active', ARGV[1])
    local pttl = redis.call('PTTL', KEYS[1])
    if pttl >= 0 and pttl < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
    active = now
  end
end
if ARGV[3] == 'h' then frame = string.sub(frame, 1, 64) end
return {1, frame, active}
",
    )
});
