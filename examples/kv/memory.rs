//! What kv's data costs in bytes: the estimate `maxmemory` compares
//! against and INFO's `used_memory` reports.
//!
//! Redis counts every byte its allocator hands out. kv counts its dataset
//! by a formula instead, kept per database as a running total by the
//! keyspace (`keyspace.rs` applies it on every insert, overwrite, edit,
//! removal, expiry and flush; SWAPDB and MOVE carry it with the data), so
//! reading it never scans:
//!
//! * each key: its table slot (the key and entry structs, inline, plus
//!   the table's control byte), its bytes if too long to be inline;
//! * a string: its bytes and the two reference counts of the shared block
//!   (an edited string: its vector's capacity; 0 for a short value held
//!   inline). A block shared by two keys (COPY) or by a reply still queued
//!   counts once per key and not for the reply: an estimate that errs high
//!   for COPY, as Redis's own (it really copies) does not;
//! * a list, set, hash or sorted set: per element a fixed overhead for the
//!   structures that hold it (below), plus the bytes of the elements
//!   (`measured.rs` and `zset.rs` keep that total as elements come and go);
//! * a key with a TTL: its entry in the deadline index, key copied.
//!
//! Not counted: client buffers, the pub/sub and WATCH indexes, allocator
//! rounding and fragmentation, and the slack of tables between resizes (up
//! to 1/8 of the slots are always empty). INFO reports the process's
//! resident size next to the estimate (`used_memory_rss`), so the gap is
//! visible.

use std::mem::size_of;

use crate::blob::Blob;
use crate::key::Key;
use crate::keyspace::{Entry, Value};

/// A key's slot in the table: the key, the entry, one control byte.
pub const SLOT: usize = size_of::<(Key, Entry)>() + 1;
/// A list item: its `Vec` in the deque, and an allocator header.
pub const LIST_ITEM: usize = size_of::<Vec<u8>>() + 8;
/// A set member: the index map's entry (hash + `Vec`), its index slot
/// (8 bytes and a control byte), an allocator header.
pub const SET_MEMBER: usize = 8 + size_of::<Vec<u8>>() + 9 + 8;
/// A hash field: entry (hash + two `Vec`s), index slot, two headers.
pub const HASH_FIELD: usize = 8 + 2 * size_of::<Vec<u8>>() + 9 + 16;
/// A sorted-set member: the score map's slot (`Vec` + f64 + control), the
/// skip-list node (member `Vec`, score, back link, links `Vec`), about 1.33
/// links of 16 bytes, and three allocator headers. The member's bytes
/// are held twice (map and node).
pub const ZSET_MEMBER: usize = (24 + 8 + 1) + (24 + 8 + 8 + 24) + 22 + 24;
/// A TTL: `(deadline, key)` in the ordered index (and its share of a
/// B-tree node); the key bytes are copied.
pub const DEADLINE: usize = size_of::<(i64, Vec<u8>)>() + 8;

/// The bytes one key costs: see the module doc.
pub fn entry_bytes(key: &[u8], entry: &Entry) -> usize {
    let key_heap = if key.len() > crate::key::Short::MAX {
        key.len()
    } else {
        0
    };
    let ttl = if entry.expires_at.is_some() {
        DEADLINE + key.len()
    } else {
        0
    };
    SLOT + key_heap + value_bytes(&entry.value) + ttl
}

/// The bytes a value holds outside its slot.
pub fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Str(Blob::Inline(_)) => 0,
        // The bytes and the two reference counts in front of them.
        Value::Str(Blob::Heap(bytes)) => bytes.len() + 2 * size_of::<usize>(),
        Value::Str(Blob::Raw(bytes)) => bytes.capacity(),
        Value::List(l) => l.len() * LIST_ITEM + l.payload(),
        Value::Set(s) => s.len() * SET_MEMBER + s.payload(),
        Value::Hash(h) => h.len() * HASH_FIELD + h.payload(),
        // The set itself is boxed (see `Value::ZSet`).
        Value::ZSet(z) => size_of::<crate::zset::ZSet>() + z.len() * ZSET_MEMBER + 2 * z.payload(),
    }
}

/// Bytes as Redis's `bytesToHuman` writes them (`1.50M`, `1023B`).
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    let units = [
        (1u64 << 50, 'P'),
        (1 << 40, 'T'),
        (1 << 30, 'G'),
        (1 << 20, 'M'),
        (1 << 10, 'K'),
    ];
    for (size, unit) in units {
        if bytes >= size {
            return format!("{:.2}{unit}", b / size as f64);
        }
    }
    format!("{bytes}B")
}

/// The process's resident set size in bytes (Linux), for INFO only.
pub fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_read_as_redis_writes_them() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1024), "1.00K");
        assert_eq!(human(3 << 19), "1.50M");
        assert_eq!(human(100 << 20), "100.00M");
        assert_eq!(human(1 << 30), "1.00G");
    }

    #[test]
    fn rss_is_read() {
        assert!(rss().is_some_and(|b| b > 0));
    }
}
