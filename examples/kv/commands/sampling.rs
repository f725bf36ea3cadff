//! Random positions for SPOP, SRANDMEMBER and HRANDFIELD (sets and hashes
//! are indexed, so a position is a member in O(1)), and the bound on
//! replies whose size a client's count decides.
//!
//! A negative count asks for |count| members with repeats: the reply, not
//! the data, grows with the count. Redis builds such a reply whatever its
//! size (normal clients have no output limit by default; a count near
//! -LONG_MAX makes it run out of memory). kv refuses a count whose reply
//! could not fit in the client output buffer limit, before building any of
//! it, so the memory such a request takes is bounded by that limit.

use rand::Rng;

use crate::protocol::Reply;

/// `count` distinct random positions below `len` (`count <= len`). For a
/// count small against `len`, random draws with the repeats skipped
/// (O(count) expected, as Redis's SRANDMEMBER does); otherwise a partial
/// Fisher-Yates shuffle of all positions (O(len)).
pub fn distinct(len: usize, count: usize) -> Vec<usize> {
    let mut rng = rand::rng();
    let count = count.min(len);
    if count.saturating_mul(3) < len {
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let i = rng.random_range(0..len);
            if seen.insert(i) {
                out.push(i);
            }
        }
        return out;
    }
    let mut positions: Vec<usize> = (0..len).collect();
    for i in 0..count {
        let j = rng.random_range(i..len);
        positions.swap(i, j);
    }
    positions.truncate(count);
    positions
}

/// `count` random positions below `len` (`len > 0`), repeats allowed.
pub fn with_repeats(len: usize, count: usize) -> Vec<usize> {
    let mut rng = rand::rng();
    (0..count).map(|_| rng.random_range(0..len)).collect()
}

/// One random position below `len` (`len > 0`).
pub fn one(len: usize) -> usize {
    rand::rng().random_range(0..len)
}

/// Refuses a reply of `items` elements holding `payload` bytes in all
/// when building it would take more than `limit` bytes (the client output
/// buffer limit, which its encoding would exceed anyway). Called once with
/// the count alone, before picking, and again with the picked members'
/// sizes, before copying them.
pub fn check_fits(items: u64, payload: u64, limit: usize) -> Result<usize, Reply> {
    let per_item = std::mem::size_of::<Reply>() as u64;
    let bytes = items.saturating_mul(per_item).saturating_add(payload);
    match usize::try_from(items) {
        Ok(n) if bytes <= limit as u64 => Ok(n),
        _ => Err(Reply::error(
            "ERR reply would exceed the client output buffer limit",
        )),
    }
}
