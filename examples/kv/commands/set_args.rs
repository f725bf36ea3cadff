//! The options of SET and GETEX (`NX|XX`, `GET`, `EX|PX|EXAT|PXAT`,
//! `KEEPTTL`, `PERSIST`), read as Redis 7's
//! `parseExtendedStringArgumentsOrReply` reads them: every option is
//! checked against the ones already seen (a conflict, a repeat that
//! conflicts, or an unknown word is `ERR syntax error`), and the expire
//! time is parsed only after all options were accepted
//! (`getExpireMillisecondsOrReply`), so `SET k v EX x NX XX` is a syntax
//! error, not a bad integer.

use super::{int, Call, SYNTAX};
use crate::protocol::Reply;

/// Which command's options are being read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum For {
    Set,
    GetEx,
}

/// The expire option given, with its unparsed argument.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Expire {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// SET's or GETEX's options.
#[derive(Default)]
pub struct Options<'a> {
    pub nx: bool,
    pub xx: bool,
    pub get: bool,
    pub keep_ttl: bool,
    pub persist: bool,
    pub expire: Option<(Expire, &'a [u8])>,
}

/// Reads the options in `args` (after the key, and the value for SET).
pub fn parse<'a>(args: &'a [Vec<u8>], command: For) -> Result<Options<'a>, Reply> {
    let mut o = Options::default();
    let set = command == For::Set;
    let mut i = 0;
    while i < args.len() {
        let opt = args[i].to_ascii_lowercase();
        let next = args.get(i + 1);
        let has_expire =
            |o: &Options<'_>, except: Expire| o.expire.is_some_and(|(kind, _)| kind != except);
        match opt.as_slice() {
            b"nx" if set && !o.xx => o.nx = true,
            b"xx" if set && !o.nx => o.xx = true,
            b"get" if set => o.get = true,
            b"keepttl" if set && !o.persist && o.expire.is_none() => o.keep_ttl = true,
            b"persist" if !set && !o.keep_ttl && o.expire.is_none() => o.persist = true,
            b"ex" | b"px" | b"exat" | b"pxat" if !o.keep_ttl && !o.persist && next.is_some() => {
                let kind = match opt.as_slice() {
                    b"ex" => Expire::Ex,
                    b"px" => Expire::Px,
                    b"exat" => Expire::ExAt,
                    _ => Expire::PxAt,
                };
                // Redis lets an option repeat itself (the last one wins),
                // but not follow another expire option.
                if has_expire(&o, kind) {
                    return Err(Reply::error(SYNTAX));
                }
                o.expire = next.map(|value| (kind, value.as_slice()));
                i += 1;
            }
            _ => return Err(Reply::error(SYNTAX)),
        }
        i += 1;
    }
    Ok(o)
}

/// The expire time as Unix milliseconds, refused as Redis refuses it
/// (`ERR invalid expire time in '<command>' command`): not positive,
/// overflowing in milliseconds, or overflowing once `now` is added.
pub fn expire_at(call: &Call<'_>, kind: Expire, arg: &[u8]) -> Result<i64, Reply> {
    let n = int(arg)?;
    let invalid = || {
        Reply::error(format!(
            "ERR invalid expire time in '{}' command",
            call.name
        ))
    };
    if n <= 0 {
        return Err(invalid());
    }
    let ms = match kind {
        Expire::Ex | Expire::ExAt => n.checked_mul(1000).ok_or_else(invalid)?,
        Expire::Px | Expire::PxAt => n,
    };
    match kind {
        Expire::Ex | Expire::Px => ms
            .checked_add(call.now)
            .filter(|at| *at > 0)
            .ok_or_else(invalid),
        Expire::ExAt | Expire::PxAt => Ok(ms),
    }
}
