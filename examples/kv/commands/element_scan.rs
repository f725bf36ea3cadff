//! SSCAN and HSCAN: cursors over the members of one set or hash.
//!
//! Redis answers a small collection (an intset, or a listpack hash) in one
//! reply with cursor 0, whatever COUNT says; so does kv, and also for any
//! collection no larger than COUNT (Redis's table walk finishes in one call
//! then too). A larger one is walked in the order of a fixed hash of each
//! member: the cursor is the hash to resume from, so a member present for
//! the whole iteration is returned at least once, however the collection
//! changes in between (as SCAN guarantees). Members sharing a hash are
//! never split across replies. Each call costs O(members): a selection,
//! not a sort.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use super::{int, SYNTAX};
use crate::glob;
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
    /// One page of `items` (named by `member`): the next cursor and the
    /// items whose member matches the pattern. `small`: answer all at once.
    pub fn page<T>(
        &self,
        items: Vec<T>,
        member: impl Fn(&T) -> &[u8],
        small: bool,
    ) -> (u64, Vec<T>) {
        let (next, page) = if small || items.len() <= self.count {
            (0, items)
        } else {
            self.select(items, &member)
        };
        let page = match self.pattern {
            None => page,
            Some(pattern) => page
                .into_iter()
                .filter(|item| glob::matches(pattern, member(item)))
                .collect(),
        };
        (next, page)
    }

    fn select<T>(&self, items: Vec<T>, member: &impl Fn(&T) -> &[u8]) -> (u64, Vec<T>) {
        let order = BuildHasherDefault::<DefaultHasher>::default();
        let mut hashed: Vec<(u64, T)> = items
            .into_iter()
            .map(|item| (order.hash_one(member(&item)), item))
            .filter(|(h, _)| *h >= self.cursor)
            .collect();
        if hashed.len() <= self.count {
            return (0, hashed.into_iter().map(|(_, item)| item).collect());
        }
        // The `count` lowest hashes (and any that tie with the last one);
        // the next page starts at the lowest hash left.
        hashed.select_nth_unstable_by_key(self.count - 1, |(h, _)| *h);
        let boundary = hashed[self.count - 1].0;
        let (page, rest): (Vec<_>, Vec<_>) = hashed.into_iter().partition(|(h, _)| *h <= boundary);
        let next = rest.iter().map(|(h, _)| *h).min().unwrap_or(0);
        (next, page.into_iter().map(|(_, item)| item).collect())
    }
}

/// The reply: `[cursor, [items...]]`.
pub fn reply(next: u64, items: Vec<Vec<u8>>) -> Reply {
    Reply::Array(vec![
        Reply::bulk(next.to_string().into_bytes()),
        Reply::array_of_bulks(items),
    ])
}
