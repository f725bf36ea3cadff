//! ZUNION, ZINTER, ZDIFF, their *STORE forms and ZINTERCARD, as Redis
//! 7.0's `zunionInterDiffGenericCommand`: plain sets count as members of
//! score 1, WEIGHTS multiply, AGGREGATE SUM|MIN|MAX combines, and a NaN
//! from `inf * 0` or `inf + -inf` becomes 0 as in Redis.
//!
//! numkeys is checked against the arguments actually sent before anything
//! is allocated, so a huge one is a syntax error, not an allocation. The
//! inputs are read in place (no copies); the cost is the members touched.

use std::collections::HashMap;

use super::zset_args::parse_score;
use super::zsets::{members_reply, store};
use super::{int, Call, SYNTAX, WRONGTYPE};
use crate::keyspace::Value;
use crate::protocol::Reply;
use crate::service::Kv;
use crate::zset::ZSet;

pub fn handles(name: &str) -> bool {
    matches!(
        name,
        "zunion" | "zinter" | "zdiff" | "zunionstore" | "zinterstore" | "zdiffstore" | "zintercard"
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`.
    fn apply(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => *target = if value < *target { value } else { *target },
            Aggregate::Max => *target = if value > *target { value } else { *target },
        }
    }
}

/// One input: a sorted set, a plain set (scores 1), or no key.
enum Source<'a> {
    Missing,
    Set(&'a indexmap::IndexSet<Vec<u8>>),
    ZSet(&'a ZSet),
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Missing => 0,
            Source::Set(s) => s.len(),
            Source::ZSet(z) => z.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Missing => None,
            Source::Set(s) => s.contains(member).then_some(1.0),
            Source::ZSet(z) => z.score(member),
        }
    }

    fn members(&self) -> Box<dyn Iterator<Item = (&[u8], f64)> + '_> {
        match self {
            Source::Missing => Box::new(std::iter::empty()),
            Source::Set(s) => Box::new(s.iter().map(|m| (m.as_slice(), 1.0))),
            Source::ZSet(z) => Box::new(z.iter()),
        }
    }
}

pub fn run(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now, name) = (call.args, call.now, call.name);
    let storing = name.ends_with("store");
    let cardinality = name == "zintercard";
    let op = match name {
        "zunion" | "zunionstore" => Op::Union,
        "zdiff" | "zdiffstore" => Op::Diff,
        _ => Op::Inter,
    };
    let numkeys_at = usize::from(storing);
    if a.len() < numkeys_at + 2 {
        return Err(call.wrong_arity());
    }
    let numkeys = int(&a[numkeys_at])?;
    if numkeys < 1 {
        return Err(Reply::error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    let first_key = numkeys_at + 1;
    let after_keys = match usize::try_from(numkeys) {
        Ok(n) if n <= a.len() - first_key => first_key + n,
        _ => return Err(Reply::error(SYNTAX)),
    };
    let keys = &a[first_key..after_keys];
    // Types first (expiring keys on the way), as Redis looks them up
    // before reading the options.
    for key in keys {
        if let Some(value) = kv.db.get(key, now) {
            if !matches!(value, Value::ZSet(_) | Value::Set(_)) {
                return Err(Reply::error(WRONGTYPE));
            }
        }
    }
    let mut weights = vec![1.0; keys.len()];
    let (mut aggregate, mut with_scores, mut limit) = (Aggregate::Sum, false, 0usize);
    let mut j = after_keys;
    while j < a.len() {
        let remaining = a.len() - j;
        let is = |word: &str| a[j].eq_ignore_ascii_case(word.as_bytes());
        let weighted = op != Op::Diff && !cardinality;
        if weighted && remaining > keys.len() && is("weights") {
            for (w, arg) in weights.iter_mut().zip(&a[j + 1..]) {
                *w = parse_score(arg)
                    .ok_or_else(|| Reply::error("ERR weight value is not a float"))?;
            }
            j += 1 + keys.len();
        } else if weighted && remaining >= 2 && is("aggregate") {
            aggregate = match a[j + 1].to_ascii_lowercase().as_slice() {
                b"sum" => Aggregate::Sum,
                b"min" => Aggregate::Min,
                b"max" => Aggregate::Max,
                _ => return Err(Reply::error(SYNTAX)),
            };
            j += 2;
        } else if !storing && !cardinality && is("withscores") {
            with_scores = true;
            j += 1;
        } else if cardinality && remaining >= 2 && is("limit") {
            limit = usize::try_from(int(&a[j + 1]).unwrap_or(-1))
                .map_err(|_| Reply::error("ERR LIMIT can't be negative"))?;
            j += 2;
        } else {
            return Err(Reply::error(SYNTAX));
        }
    }
    let sources: Vec<Source<'_>> = keys
        .iter()
        .map(|key| match kv.db.peek(key, now) {
            Some(Value::ZSet(z)) => Source::ZSet(z),
            Some(Value::Set(s)) => Source::Set(s),
            _ => Source::Missing,
        })
        .collect();
    if cardinality {
        return Ok(Reply::Int(intersection_size(&sources, limit) as i64));
    }
    let scores = match op {
        Op::Union => union(&sources, &weights, aggregate),
        Op::Inter => intersection(&sources, &weights, aggregate),
        Op::Diff => difference(&sources),
    };
    // Redis builds the result as a skiplist (keeping -0), and converts it
    // to a listpack only to store it.
    let mut result = ZSet::skiplist();
    for (member, score) in scores {
        result.insert(member, score);
    }
    if storing {
        return Ok(store(kv, &a[0], result.into_stored()));
    }
    Ok(members_reply(result.iter(), with_scores))
}

/// The inputs' indices, smallest first (the order Redis combines them in).
fn by_size(sources: &[Source<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| sources[i].len());
    order
}

fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

fn union(sources: &[Source<'_>], weights: &[f64], aggregate: Aggregate) -> HashMap<Vec<u8>, f64> {
    let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
    for i in by_size(sources) {
        for (member, score) in sources[i].members() {
            let value = weighted(score, weights[i]);
            match acc.get_mut(member) {
                Some(target) => aggregate.apply(target, value),
                None => {
                    acc.insert(member.to_vec(), value);
                }
            }
        }
    }
    acc
}

fn intersection(
    sources: &[Source<'_>],
    weights: &[f64],
    aggregate: Aggregate,
) -> HashMap<Vec<u8>, f64> {
    let order = by_size(sources);
    let (smallest, rest) = order.split_first().expect("at least one key");
    let mut acc = HashMap::new();
    'members: for (member, score) in sources[*smallest].members() {
        let mut total = weighted(score, weights[*smallest]);
        for &i in rest {
            match sources[i].score(member) {
                Some(s) => aggregate.apply(&mut total, s * weights[i]),
                None => continue 'members,
            }
        }
        acc.insert(member.to_vec(), total);
    }
    acc
}

/// ZINTERCARD: members in every input, counting up to `limit` (0: all).
fn intersection_size(sources: &[Source<'_>], limit: usize) -> usize {
    let order = by_size(sources);
    let (smallest, rest) = order.split_first().expect("at least one key");
    let mut count = 0;
    for (member, _) in sources[*smallest].members() {
        if rest.iter().all(|&i| sources[i].score(member).is_some()) {
            count += 1;
            if count == limit {
                break;
            }
        }
    }
    count
}

/// ZDIFF: the first input's members that no other input has, with their
/// scores (WEIGHTS and AGGREGATE are not accepted).
fn difference(sources: &[Source<'_>]) -> HashMap<Vec<u8>, f64> {
    let (first, rest) = sources.split_first().expect("at least one key");
    first
        .members()
        .filter(|(m, _)| rest.iter().all(|s| s.score(m).is_none()))
        .map(|(m, s)| (m.to_vec(), s))
        .collect()
}
