//! Typed access to the aggregate values (lists, sets, hashes) that the
//! list, set and hash commands share, and the COUNT of the pop family.
//!
//! Redis looks a key up once and then checks its type: a key of another
//! type answers WRONGTYPE, a missing one is "empty" (or is created by the
//! commands that add). These helpers are that step, generic over the value
//! type so each command file does not repeat the match on `Value`.

use super::{int, WRONGTYPE};
use crate::keyspace::{Db, Value};
pub use crate::measured::{Hash, List, Set};
use crate::protocol::Reply;

/// A value type a key can hold.
pub trait Aggregate: Default {
    fn of(value: &mut Value) -> Option<&mut Self>;
    fn of_ref(value: &Value) -> Option<&Self>;
    fn into_value(self) -> Value;
}

macro_rules! aggregate {
    ($type:ty, $variant:ident) => {
        impl Aggregate for $type {
            fn of(value: &mut Value) -> Option<&mut Self> {
                match value {
                    Value::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn of_ref(value: &Value) -> Option<&Self> {
                match value {
                    Value::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn into_value(self) -> Value {
                Value::$variant(self)
            }
        }
    };
}

aggregate!(List, List);
aggregate!(Set, Set);
aggregate!(Hash, Hash);

pub fn wrong_type() -> Reply {
    Reply::error(WRONGTYPE)
}

/// The value at `key` if it is live: `None` if missing, WRONGTYPE if it
/// holds another type.
pub fn get<'a, T: Aggregate>(
    db: &'a mut Db,
    key: &[u8],
    now: i64,
) -> Result<Option<&'a mut T>, Reply> {
    match db.get_mut(key, now) {
        None => Ok(None),
        Some(value) => T::of(value).map(Some).ok_or_else(wrong_type),
    }
}

/// The value at `key`, created empty if missing (the caller adds to it
/// at once: an aggregate is never left empty).
pub fn get_or_create<'a, T: Aggregate>(
    db: &'a mut Db,
    key: &[u8],
    now: i64,
) -> Result<&'a mut T, Reply> {
    if !db.exists(key, now) {
        db.set(key, T::default().into_value(), false);
    }
    db.get_mut(key, now).and_then(T::of).ok_or_else(wrong_type)
}

/// Several keys read at once (SINTER, SUNION...): each is expired first if
/// due, then borrowed together. Any key of another type is WRONGTYPE, even
/// after a missing one (Redis checks them all before answering).
pub fn get_many<'a, T: Aggregate>(
    db: &'a mut Db,
    keys: &[Vec<u8>],
    now: i64,
) -> Result<Vec<Option<&'a T>>, Reply> {
    for key in keys {
        db.exists(key, now);
    }
    let db: &'a Db = db;
    keys.iter()
        .map(|key| match db.peek(key, now) {
            None => Ok(None),
            Some(value) => T::of_ref(value).map(Some).ok_or_else(wrong_type),
        })
        .collect()
}

/// The optional COUNT of LPOP/RPOP/SPOP/ZPOPMIN (argument 1).
pub fn pop_count(args: &[Vec<u8>]) -> Result<Option<usize>, Reply> {
    match args.get(1) {
        None => Ok(None),
        Some(n) => {
            // Redis gives this text for a non-integer too.
            let positive = || Reply::error("ERR value is out of range, must be positive");
            let n = int(n).map_err(|_| positive())?;
            usize::try_from(n).map(Some).map_err(|_| positive())
        }
    }
}

/// Redis's `getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)`: the
/// counts of SRANDMEMBER and HRANDFIELD, whose negation must not overflow.
pub fn signed_count(arg: &[u8]) -> Result<i64, Reply> {
    match int(arg)? {
        i64::MIN => Err(Reply::error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        )),
        n => Ok(n),
    }
}
