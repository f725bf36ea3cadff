//! The numbered databases (`databases`, 16 by default) and the commands
//! that address them: SELECT, SWAPDB, MOVE, FLUSHDB, FLUSHALL, DBSIZE.
//!
//! Commands work on `kv.db`, "the database of the running command". The
//! others wait in `Dbs`; before each command the service mounts the
//! client's database into `kv.db` (two moves of a small struct, and none at
//! all while clients stay on one database), so no command handler needs to
//! know which database it runs in.

use crate::commands::Call;
use crate::keyspace::Db;
use crate::protocol::Reply;
use crate::service::Kv;

/// The databases that are not mounted in `kv.db`.
#[derive(Debug)]
pub struct Dbs {
    /// One per database; the slot of the mounted one holds an empty
    /// placeholder while it is mounted.
    slots: Vec<Db>,
    mounted: usize,
}

impl Dbs {
    /// `count` databases (at least 1); database 0 starts mounted.
    pub fn new(count: usize) -> Self {
        Self {
            slots: (0..count.max(1)).map(|_| Db::default()).collect(),
            mounted: 0,
        }
    }

    pub fn count(&self) -> usize {
        self.slots.len()
    }
}

impl Kv {
    /// Makes database `index` (< count) the one commands see as `kv.db`.
    pub fn mount(&mut self, index: usize) {
        if index != self.dbs.mounted {
            std::mem::swap(&mut self.db, &mut self.dbs.slots[self.dbs.mounted]);
            std::mem::swap(&mut self.db, &mut self.dbs.slots[index]);
            self.db.share_clock(&self.dbs.slots[self.dbs.mounted]);
            self.dbs.mounted = index;
        }
    }

    /// Database `index`, wherever it is. One that is not mounted gets the
    /// running command's LRU clock, for the keys it writes (MOVE, COPY).
    pub fn db_at(&mut self, index: usize) -> &mut Db {
        if index == self.dbs.mounted {
            &mut self.db
        } else {
            let db = &mut self.dbs.slots[index];
            db.share_clock(&self.db);
            db
        }
    }

    /// Database `index` for reading.
    pub fn db_ref(&self, index: usize) -> &Db {
        if index == self.dbs.mounted {
            &self.db
        } else {
            &self.dbs.slots[index]
        }
    }

    pub fn db_count(&self) -> usize {
        self.dbs.count()
    }
}

/// Parses a database index argument as Redis does: `Err(None)` if it is
/// not an integer, `Err(Some(reply))` if it is out of range.
fn parse_index(kv: &Kv, arg: &[u8]) -> Result<usize, Option<Reply>> {
    let n = c_int(arg).map_err(|not_int| not_int.then(|| Reply::error(NOT_C_INT)))?;
    in_range(kv, n).ok_or_else(|| Some(Reply::error("ERR DB index is out of range")))
}

const NOT_C_INT: &str = "ERR value is out of range, value must between -2147483648 and 2147483647";

/// An index argument read as a C int, as Redis reads it first: `Err(false)`
/// if it is not an integer, `Err(true)` if it does not fit an int.
fn c_int(arg: &[u8]) -> Result<i64, bool> {
    let n = crate::commands::int(arg).map_err(|_| false)?;
    i32::try_from(n).map_err(|_| true)?;
    Ok(n)
}

/// `n` as an index of one of the databases.
fn in_range(kv: &Kv, n: i64) -> Option<usize> {
    (0..kv.db_count() as i64).contains(&n).then_some(n as usize)
}

/// A database index argument, or Redis's error reply.
pub fn index(kv: &Kv, arg: &[u8]) -> Result<usize, Reply> {
    parse_index(kv, arg)
        .map_err(|e| e.unwrap_or_else(|| Reply::error(crate::commands::NOT_INTEGER)))
}

/// Swaps databases `x` and `y` (their data; watches and blocked clients
/// stay with the index).
fn swap(kv: &mut Kv, x: usize, y: usize, now: i64) -> Reply {
    if x != y {
        crate::multi::touch_db(kv, x);
        crate::multi::touch_db(kv, y);
        let mounted = kv.dbs.mounted;
        std::mem::swap(&mut kv.db, &mut kv.dbs.slots[mounted]);
        kv.dbs.slots.swap(x, y);
        // Watches belong to the index, not to the data.
        let wx = std::mem::take(&mut kv.dbs.slots[x].watched);
        let wy = std::mem::replace(&mut kv.dbs.slots[y].watched, wx);
        kv.dbs.slots[x].watched = wy;
        // So are the clients blocked on keys.
        let bx = std::mem::take(&mut kv.dbs.slots[x].blocked);
        let by = std::mem::replace(&mut kv.dbs.slots[y].blocked, bx);
        kv.dbs.slots[x].blocked = by;
        std::mem::swap(&mut kv.db, &mut kv.dbs.slots[mounted]);
        crate::multi::touch_db(kv, x);
        crate::multi::touch_db(kv, y);
        crate::blocking::signal_db(kv, x, now);
        crate::blocking::signal_db(kv, y, now);
    }
    Reply::Ok
}

/// `FLUSHDB`/`FLUSHALL`'s optional `ASYNC|SYNC` (both free everything at
/// once here: the keyspace lives on one thread).
fn flush_mode(call: &Call<'_>) -> Result<(), Reply> {
    match call.args {
        [] => Ok(()),
        [mode] if mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync") => {
            Ok(())
        }
        [_] => Err(Reply::error(crate::commands::SYNTAX)),
        _ => Err(call.wrong_arity()),
    }
}

/// Runs SELECT, SWAPDB, MOVE, FLUSHDB, FLUSHALL or DBSIZE for a client on
/// database `current`; returns the reply and the client's new database.
pub fn run(kv: &mut Kv, call: &Call<'_>, current: usize) -> (Reply, usize) {
    let a = call.args;
    let reply = match call.name {
        "select" if a.len() == 1 => match index(kv, &a[0]) {
            Ok(i) => return (Reply::Ok, i),
            Err(e) => e,
        },
        // Redis reads both as C ints (either failing is "invalid first
        // (second) DB index", not an integer or too large alike), then
        // checks the range.
        "swapdb" if a.len() == 2 => match (c_int(&a[0]), c_int(&a[1])) {
            (Err(_), _) => Reply::error("ERR invalid first DB index"),
            (_, Err(_)) => Reply::error("ERR invalid second DB index"),
            (Ok(x), Ok(y)) => match (in_range(kv, x), in_range(kv, y)) {
                (Some(x), Some(y)) => swap(kv, x, y, call.now),
                _ => Reply::error("ERR DB index is out of range"),
            },
        },
        "move" if a.len() == 2 => match index(kv, &a[1]) {
            Ok(dst) if dst == current => {
                Reply::error("ERR source and destination objects are the same")
            }
            Ok(dst) => {
                let key = &a[0];
                let live_in_dst = kv.db_at(dst).exists(key, call.now);
                if live_in_dst || !kv.db.exists(key, call.now) {
                    Reply::Int(0)
                } else {
                    let at = kv.db.expiry(key, call.now).flatten();
                    let value = kv.db.remove(key).expect("checked live");
                    let target = kv.db_at(dst);
                    target.set(key, value, false);
                    if at.is_some() {
                        target.set_expiry(key, at, call.now);
                    }
                    crate::multi::touch_key(kv, dst, key);
                    Reply::Int(1)
                }
            }
            Err(e) => e,
        },
        "flushdb" => match flush_mode(call) {
            Ok(()) => {
                crate::multi::touch_db(kv, current);
                kv.db.clear();
                Reply::Ok
            }
            Err(e) => e,
        },
        "flushall" => match flush_mode(call) {
            Ok(()) => {
                for i in 0..kv.db_count() {
                    crate::multi::touch_db(kv, i);
                    kv.db_at(i).clear();
                }
                Reply::Ok
            }
            Err(e) => e,
        },
        "dbsize" if a.is_empty() => Reply::Int(kv.db.len() as i64),
        _ => call.wrong_arity(),
    };
    (reply, current)
}
