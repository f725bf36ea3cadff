//! SSCAN, HSCAN and ZSCAN: cursors over the members of one set, hash or
//! sorted set.
//!
//! Redis answers a small collection (an intset, or a listpack) in one
//! reply with cursor 0, whatever COUNT says; so does kv. A larger one is
//! walked by position, from its last item toward its first, COUNT items a
//! call (see [`walk`]): O(COUNT) a call, as Redis's table walk is, so
//! iterating a collection of n items costs O(n) in all, not O(n) a call.

use super::{int, SYNTAX};
use crate::glob;
use crate::measured::ScanTag;
use crate::protocol::Reply;

/// The arguments after the key: cursor, then MATCH and COUNT.
pub struct ScanArgs<'a> {
    pub cursor: u64,
    pattern: Option<&'a [u8]>,
    count: usize,
}

/// The cursor (parsed before the key is looked up, as Redis does).
pub fn cursor(arg: &[u8]) -> Result<u64, Reply> {
    super::keys::scan_cursor(arg).ok_or_else(|| Reply::error("ERR invalid cursor"))
}

/// MATCH and COUNT (parsed after the key is found: a missing key answers
/// an empty scan whatever its options).
pub fn options(cursor: u64, args: &[Vec<u8>]) -> Result<ScanArgs<'_>, Reply> {
    let mut scan = ScanArgs {
        cursor,
        pattern: None,
        count: 10,
    };
    for option in args.chunks(2) {
        let [name, value] = option else {
            return Err(Reply::error(SYNTAX));
        };
        match name.to_ascii_lowercase().as_slice() {
            // `*` alone is not matched at all by Redis.
            b"match" => scan.pattern = (value.as_slice() != b"*").then_some(value.as_slice()),
            b"count" => {
                scan.count = usize::try_from(int(value)?)
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| Reply::error(SYNTAX))?
            }
            _ => return Err(Reply::error(SYNTAX)),
        }
    }
    Ok(scan)
}

/// The reply of a missing key.
pub fn empty() -> Reply {
    Reply::Array(vec![Reply::bulk(b"0".to_vec()), Reply::Array(Vec::new())])
}

impl ScanArgs<'_> {
    /// All of a small collection at once (cursor 0), as Redis answers an
    /// intset or a listpack.
    pub fn all<T>(&self, items: Vec<T>, member: impl Fn(&T) -> &[u8]) -> (u64, Vec<T>) {
        (0, self.matching(items, member))
    }

    /// One page of the collection named by `tag`, of `len` items read by
    /// position through `at` (see [`walk`]), filtered by the pattern.
    pub fn walk<T>(
        &self,
        tag: ScanTag,
        len: usize,
        at: impl Fn(usize) -> Option<T>,
        member: impl Fn(&T) -> &[u8],
    ) -> (u64, Vec<T>) {
        let (next, page) = walk(self.cursor, tag, self.count, len, at);
        (next, self.matching(page, member))
    }

    fn matching<T>(&self, items: Vec<T>, member: impl Fn(&T) -> &[u8]) -> Vec<T> {
        match self.pattern {
            None => items,
            Some(pattern) => items
                .into_iter()
                .filter(|item| glob::matches(pattern, member(item)))
                .collect(),
        }
    }
}

/// A cursor's low bits carry the collection's [`ScanTag`], the bits above
/// the positions still to walk: cursors stay below 2^53 (exact in a
/// JavaScript or JSON number) for collections of up to 2^37 positions,
/// and below 2^63 (positive for clients that parse a signed 64-bit
/// integer) for any.
const TAG_BITS: u32 = 16;

/// One page of a walk over positions `0..len` of the collection named by
/// `tag`, from the last position toward the first: `count` items a call,
/// or fewer if 10 x `count` positions held no more (as Redis bounds the
/// empty buckets one SCAN call visits); `at` gives the item at a position,
/// `None` for an empty one (the ZSet's freed arena slots). The cursor is
/// the tag and how many positions at the front are still to walk (0: a new
/// walk); the next cursor is 0 once position 0 is walked. A cursor with
/// another tag (the key now holds another collection, rebuilt in another
/// order, or the cursor is garbage) starts the walk over, so members may
/// repeat, as the keyspace's SCAN starts over after a resize.
///
/// Sound for a collection whose items only ever move toward the front
/// (`IndexSet`/`IndexMap`: `swap_remove` moves the last item into the
/// hole, `shift_remove` moves the ones after it one place forward) and
/// which puts new items at the back or in empty positions (the ZSet's
/// node arena): an item present for the whole walk stays in the part still
/// to walk until it is walked, so it is returned at least once, as SCAN
/// guarantees. An item moved forward out of the walked part may come
/// twice; one added during the walk may or may not come; both as in Redis.
/// A cursor past the end (the collection shrank, or a cursor from
/// elsewhere) walks what there is.
pub fn walk<T>(
    cursor: u64,
    tag: ScanTag,
    count: usize,
    len: usize,
    at: impl Fn(usize) -> Option<T>,
) -> (u64, Vec<T>) {
    let tag = u64::from(tag.0);
    let unwalked = if cursor == 0 || cursor & tag_mask() != tag {
        len
    } else {
        usize::try_from(cursor >> TAG_BITS)
            .unwrap_or(usize::MAX)
            .min(len)
    };
    let count = count.max(1);
    let most = count.saturating_mul(10);
    let mut page = Vec::new();
    let mut pos = unwalked;
    while pos > 0 && page.len() < count && unwalked - pos < most {
        pos -= 1;
        page.extend(at(pos));
    }
    let next = if pos == 0 {
        0
    } else {
        (pos as u64) << TAG_BITS | tag
    };
    (next, page)
}

fn tag_mask() -> u64 {
    (1 << TAG_BITS) - 1
}

/// The reply: `[cursor, [items...]]`.
pub fn reply(next: u64, items: Vec<Vec<u8>>) -> Reply {
    Reply::Array(vec![
        Reply::bulk(next.to_string().into_bytes()),
        Reply::array_of_bulks(items),
    ])
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::HashSet;

    use indexmap::IndexMap;

    use super::walk;
    use crate::measured::ScanTag;

    const TAG: ScanTag = ScanTag(7);

    /// A small deterministic generator (xorshift), so a failure repeats.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn a_walk_examines_count_positions_a_call_and_returns_each_item_once() {
        let items: Vec<u32> = (0..1000).collect();
        let examined = Cell::new(0);
        let (mut cursor, mut seen, mut calls) = (0, Vec::new(), 0);
        loop {
            examined.set(0);
            let (next, page) = walk(cursor, TAG, 7, items.len(), |i| {
                examined.set(examined.get() + 1);
                items.get(i).copied()
            });
            assert!(examined.get() <= 7, "a call looked at {}", examined.get());
            seen.extend(page);
            calls += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(calls, 1000_usize.div_ceil(7));
        seen.sort_unstable();
        assert_eq!(seen, items);
    }

    #[test]
    fn a_walk_misses_nothing_present_throughout_however_items_are_removed_and_added() {
        // Between calls: swap_remove and shift_remove of random members
        // (IndexSet/IndexMap's two removals), and new members appended.
        for seed in 1..20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut items: IndexMap<u32, ()> = (0..2000).map(|i| (i, ())).collect();
            let mut removed = HashSet::new();
            let mut next_new = 2000;
            let (mut cursor, mut seen) = (0, HashSet::new());
            loop {
                let (next, page) = walk(cursor, TAG, 13, items.len(), |i| {
                    items.get_index(i).map(|(k, _)| *k)
                });
                seen.extend(page);
                cursor = next;
                if cursor == 0 {
                    break;
                }
                for _ in 0..rng.below(6) {
                    let at = rng.below(items.len());
                    let (gone, _) = if rng.below(2) == 0 {
                        items.swap_remove_index(at).unwrap()
                    } else {
                        items.shift_remove_index(at).unwrap()
                    };
                    removed.insert(gone);
                }
                for _ in 0..rng.below(6) {
                    items.insert(next_new, ());
                    next_new += 1;
                }
            }
            for member in 0..2000 {
                assert!(
                    removed.contains(&member) || seen.contains(&member),
                    "seed {seed}: {member} was present throughout and never returned"
                );
            }
        }
    }

    #[test]
    fn a_sparse_walk_visits_at_most_ten_positions_per_item_asked_for() {
        // One position in 25 holds an item (a sorted set's arena after
        // most of its members went).
        let len = 5000;
        let at = |i: usize| i.is_multiple_of(25).then_some(i);
        let examined = Cell::new(0);
        let (mut cursor, mut seen) = (0, Vec::new());
        loop {
            examined.set(0);
            let (next, page) = walk(cursor, TAG, 4, len, |i| {
                examined.set(examined.get() + 1);
                at(i)
            });
            assert!(examined.get() <= 40, "a call looked at {}", examined.get());
            assert!(page.len() <= 4);
            seen.extend(page);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..len)
                .filter(|i| i.is_multiple_of(25))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_cursor_past_the_end_walks_what_there_is() {
        let items = [1, 2, 3];
        let at = |i: usize| items.get(i).copied();
        // This collection's cursor past its end walks what there is.
        let past = 1000 << 16 | 7;
        let (next, page) = walk(past, TAG, 2, items.len(), at);
        assert_eq!(page, vec![3, 2]);
        assert_eq!(next, 1 << 16 | 7);
        let (next, page) = walk(next, TAG, 2, items.len(), at);
        assert_eq!((next, page), (0, vec![1]));
    }

    #[test]
    fn another_collection_s_cursor_starts_the_walk_over() {
        let items = [1, 2, 3];
        let at = |i: usize| items.get(i).copied();
        // One position left, but named by tag 8: this is tag 7's walk.
        let (_, page) = walk(1 << 16 | 8, TAG, 2, items.len(), at);
        assert_eq!(page, vec![3, 2]);
        // A cursor at most 2^53 for a collection of 2^37 positions.
        let (next, _) = walk(0, ScanTag(u16::MAX), 1, 1 << 37, Some);
        assert!(next < 1 << 53, "{next}");
    }
}
