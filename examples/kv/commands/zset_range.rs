//! ZRANGE and the commands it grew out of (ZRANGEBYSCORE, ZREVRANGE,
//! ZRANGEBYLEX... and ZRANGESTORE), parsed as Redis 7.0's
//! `zrangeGenericCommand` parses them so options and errors come in the
//! same order.
//!
//! A range becomes a start rank, a direction and a count: one O(log n)
//! descent, then only the members returned. LIMIT's offset is applied to
//! the rank (Redis 7.0 steps over it member by member), so a huge offset
//! or count costs nothing.

use super::zsets::{members_reply, rank_span, store, zset_at, Span};
use super::{int, Call, SYNTAX};
use crate::protocol::Reply;
use crate::service::Kv;
use crate::zset::ZSet;

#[derive(Clone, Copy, PartialEq)]
enum By {
    Rank,
    Score,
    Lex,
}

pub fn zrange(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let storing = call.name == "zrangestore";
    let base = usize::from(storing);
    let (mut by, mut reverse) = match call.name {
        "zrangebyscore" => (Some(By::Score), Some(false)),
        "zrevrangebyscore" => (Some(By::Score), Some(true)),
        "zrangebylex" => (Some(By::Lex), Some(false)),
        "zrevrangebylex" => (Some(By::Lex), Some(true)),
        "zrevrange" => (Some(By::Rank), Some(true)),
        _ => (None, None),
    };
    let (mut with_scores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = base + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        let is = |word: &str| a[j].eq_ignore_ascii_case(word.as_bytes());
        if !storing && is("withscores") {
            with_scores = true;
        } else if is("limit") && left >= 2 {
            offset = int(&a[j + 1])?;
            limit = int(&a[j + 2])?;
            j += 2;
        } else if reverse.is_none() && is("rev") {
            reverse = Some(true);
        } else if by.is_none() && is("bylex") {
            by = Some(By::Lex);
        } else if by.is_none() && is("byscore") {
            by = Some(By::Score);
        } else {
            return Err(Reply::error(SYNTAX));
        }
        j += 1;
    }
    let by = by.unwrap_or(By::Rank);
    let reverse = reverse.unwrap_or(false);
    if limit != -1 && by == By::Rank {
        return Err(Reply::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && by == By::Lex {
        return Err(Reply::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (key, mut min, mut max) = (&a[base], &a[base + 1], &a[base + 2]);
    if reverse && by != By::Rank {
        // Given as max, min.
        std::mem::swap(&mut min, &mut max);
    }
    let span = match by {
        By::Rank => Span::Rank(int(min)?, int(max)?),
        By::Score => Span::score(min, max)?,
        By::Lex => Span::lex(min, max)?,
    };
    let Some(zset) = zset_at(kv, key, now)? else {
        return Ok(if storing {
            store(kv, &a[0], ZSet::default())
        } else {
            Reply::Array(Vec::new())
        });
    };
    let picked = pick(zset, &span, reverse, offset, limit);
    if !storing {
        return Ok(members_reply(picked, with_scores));
    }
    // For a rank range Redis sizes the destination for the result
    // (`zsetTypeCreate`): a skiplist from the start, keeping -0, when it
    // cannot be a listpack. A score or lex range's size is unknown when it
    // starts: a listpack, converted at the 129th member.
    let picked: Vec<_> = picked.collect();
    let hint = if by == By::Rank { picked.len() } else { 0 };
    let mut out = ZSet::with_size_hint(hint);
    for (member, score) in picked {
        out.insert(member.to_vec(), score);
    }
    Ok(store(kv, &a[0], out))
}

/// The members of `span` in order (descending if `reverse`), after
/// skipping `offset` and taking at most `limit` (negative: all). Score
/// and lex spans are reversed as min..max walked backwards; a rank span
/// counts its indices from the end when `reverse`.
fn pick<'a>(
    zset: &'a ZSet,
    span: &Span,
    reverse: bool,
    offset: i64,
    limit: i64,
) -> impl Iterator<Item = (&'a [u8], f64)> {
    let len = zset.len();
    let (start, count) = match span {
        Span::Rank(start, stop) => match rank_span(*start, *stop, len) {
            None => (0, 0),
            Some((first, last)) => {
                let start = if reverse { len - 1 - first } else { first };
                (start, last - first + 1)
            }
        },
        _ => match span.ranks(zset) {
            // Redis steps over a negative offset member by member, to the
            // end of the set: nothing is left.
            Some((first, last)) if offset >= 0 => {
                let skip = usize::try_from(offset).unwrap_or(usize::MAX);
                let inside = last - first + 1;
                let count = inside.saturating_sub(skip);
                let count = match usize::try_from(limit) {
                    Ok(limit) => count.min(limit),
                    Err(_) => count,
                };
                let start = if reverse {
                    last.saturating_sub(skip)
                } else {
                    first.saturating_add(skip)
                };
                (start, count)
            }
            _ => (0, 0),
        },
    };
    let members = if count == 0 {
        None
    } else {
        Some(zset.iter_from(start, reverse).take(count))
    };
    members.into_iter().flatten()
}
