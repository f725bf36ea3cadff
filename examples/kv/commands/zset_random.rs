//! ZRANDMEMBER and ZSCAN: the sorted-set commands whose answers are not
//! in the set's order.
//!
//! ZRANDMEMBER picks ranks at random (O(log n) each). A negative count
//! repeats picks, so its reply grows with the count and not with the
//! set: Redis streams such a reply however large; here a count beyond
//! [`MAX_REPEATED`], or repeats of long members beyond
//! [`MAX_REPEATED_BYTES`], are refused ("ERR value is out of range") so no
//! request can allocate gigabytes.
//!
//! ZSCAN answers a small set (Redis's listpack encoding: at most 128
//! members of at most 64 bytes, see `ZSet::is_listpack`) in one reply
//! with cursor 0, in order, as Redis does; a larger one by cursor, walking
//! its node arena's slots (`ZSet::scan_slots`), COUNT members a call.

use std::collections::HashSet;

use rand::Rng;

use super::zsets::{score_reply, zset_at};
use super::{element_scan, int, Call, SYNTAX};
use crate::commands::zset_args::fmt_score;
use crate::protocol::Reply;
use crate::service::Kv;

/// The most members a negative ZRANDMEMBER count may ask for, and the
/// most bytes of members its reply may repeat.
pub const MAX_REPEATED: u64 = 1 << 20;
pub const MAX_REPEATED_BYTES: usize = 64 << 20;

pub fn zrandmember(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let Some(count) = a.get(1) else {
        let Some(zset) = zset_at(kv, &a[0], now)?.filter(|z| !z.is_empty()) else {
            return Ok(Reply::Nil);
        };
        let rank = rand::rng().random_range(0..zset.len());
        return Ok(Reply::bulk_or_nil(
            zset.at_rank(rank).map(|(m, _)| m.to_vec()),
        ));
    };
    let count = int(count)?;
    if count == i64::MIN {
        return Err(Reply::error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if a.len() > 3 || (a.len() == 3 && !a[2].eq_ignore_ascii_case(b"withscores")) {
        return Err(Reply::error(SYNTAX));
    }
    let with_scores = a.len() == 3;
    if with_scores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(Reply::error("ERR value is out of range"));
    }
    let Some(zset) = zset_at(kv, &a[0], now)?.filter(|z| !z.is_empty()) else {
        return Ok(Reply::Array(Vec::new()));
    };
    let ranks = random_ranks(zset.len(), count)?;
    let mut out = Vec::with_capacity(ranks.len() * (1 + usize::from(with_scores)));
    let mut repeated_bytes = 0usize;
    for rank in ranks {
        if let Some((member, score)) = zset.at_rank(rank) {
            if count < 0 {
                repeated_bytes = repeated_bytes.saturating_add(member.len());
                if repeated_bytes > MAX_REPEATED_BYTES {
                    return Err(Reply::error("ERR value is out of range"));
                }
            }
            out.push(Reply::Bulk(member.to_vec()));
            if with_scores {
                out.push(score_reply(score));
            }
        }
    }
    Ok(Reply::Array(out))
}

/// The ranks ZRANDMEMBER answers with for `count` over `len` members:
/// all (highest first) if a positive count covers the set, distinct picks if it
/// does not, repeated picks if it is negative.
fn random_ranks(len: usize, count: i64) -> Result<Vec<usize>, Reply> {
    let mut rng = rand::rng();
    let wanted = count.unsigned_abs();
    if count < 0 {
        if wanted > MAX_REPEATED {
            return Err(Reply::error("ERR value is out of range"));
        }
        return Ok((0..wanted).map(|_| rng.random_range(0..len)).collect());
    }
    let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
    if wanted >= len {
        // The whole set, walked from the top as Redis's `zuiNext` does.
        return Ok((0..len).rev().collect());
    }
    if wanted.saturating_mul(3) > len {
        // Most of the set: a partial shuffle of all ranks.
        let mut ranks: Vec<usize> = (0..len).collect();
        for i in 0..wanted {
            let j = rng.random_range(i..len);
            ranks.swap(i, j);
        }
        ranks.truncate(wanted);
        return Ok(ranks);
    }
    let mut seen = HashSet::with_capacity(wanted);
    let mut ranks = Vec::with_capacity(wanted);
    while ranks.len() < wanted {
        let rank = rng.random_range(0..len);
        if seen.insert(rank) {
            ranks.push(rank);
        }
    }
    Ok(ranks)
}

pub fn zscan(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let cursor = element_scan::cursor(&a[1])?;
    let Some(zset) = zset_at(kv, &a[0], now)? else {
        return Ok(element_scan::empty());
    };
    let scan = element_scan::options(cursor, &a[2..])?;
    let (next, items) = if zset.is_listpack() {
        scan.all(zset.iter().collect(), |(member, _)| member)
    } else {
        scan.walk(
            zset.scan_tag(),
            zset.scan_slots(),
            |i| zset.at_scan_slot(i),
            |(member, _)| member,
        )
    };
    let mut out = Vec::new();
    for (member, score) in items {
        out.push(Reply::Bulk(member.to_vec()));
        // As `d2string`: -0 (only a skiplist holds one) prints as -0.
        out.push(Reply::Bulk(fmt_score(score)));
    }
    Ok(Reply::Array(vec![
        Reply::bulk(next.to_string().into_bytes()),
        Reply::Array(out),
    ]))
}
