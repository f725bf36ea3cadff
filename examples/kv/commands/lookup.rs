//! The command a request names, found once per request.
//!
//! Redis looks a command up once (`lookupCommand`, a dict keyed
//! case-insensitively) and keeps the result on the client for the rest of
//! the request. kv does the same: the request path lowercases the name
//! once, finds its [`Spec`] here, and passes the spec's `&'static str`
//! name on, so nothing later lowercases, validates UTF-8 or scans the
//! command table again. (Before this, the name was lowercased three times
//! per request and the table scanned linearly at queuing and WATCH.)

use std::sync::OnceLock;

use crate::command_table::{Spec, COMMANDS};

/// Slots in the open-addressing index: a power of two, at least twice the
/// number of commands so that probe runs stay short.
const SLOTS: usize = 1024;

/// Command names are at most this long (`zremrangebyscore` is 16, the
/// longest Redis has is under 32); a longer name is no command.
const MAX_NAME: usize = 32;

/// The command `name` names (any case), or `None` for an unknown command.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    let mut buf = [0u8; MAX_NAME];
    let lower = buf.get_mut(..name.len())?;
    for (l, b) in lower.iter_mut().zip(name) {
        *l = b.to_ascii_lowercase();
    }
    let index = index();
    let mut slot = hash(lower) as usize & (SLOTS - 1);
    loop {
        match index[slot] {
            u16::MAX => return None,
            i => {
                let spec = &COMMANDS[usize::from(i)];
                if spec.name.as_bytes() == lower {
                    return Some(spec);
                }
            }
        }
        slot = (slot + 1) & (SLOTS - 1);
    }
}

/// The index of [`COMMANDS`] by lowercase name (`u16::MAX`: empty slot),
/// built on first use.
fn index() -> &'static [u16; SLOTS] {
    static INDEX: OnceLock<Box<[u16; SLOTS]>> = OnceLock::new();
    INDEX.get_or_init(|| {
        assert!(COMMANDS.len() * 2 <= SLOTS, "grow SLOTS with the table");
        let mut index = Box::new([u16::MAX; SLOTS]);
        for (i, spec) in COMMANDS.iter().enumerate() {
            assert!(spec.name.len() <= MAX_NAME && !spec.name.is_empty());
            let mut slot = hash(spec.name.as_bytes()) as usize & (SLOTS - 1);
            while index[slot] != u16::MAX {
                slot = (slot + 1) & (SLOTS - 1);
            }
            index[slot] = i as u16;
        }
        index
    })
}

/// FxHash's mixing over the name's bytes, eight at a time. The names are
/// the table's own (fixed at build time): a client cannot add keys to this
/// index, so a fast hash is safe.
fn hash(name: &[u8]) -> u64 {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut h = name.len() as u64;
    for chunk in name.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(SEED);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_found_in_any_case() {
        for spec in COMMANDS {
            let name = spec.name.as_bytes();
            assert!(std::ptr::eq(lookup(name).unwrap(), spec), "{}", spec.name);
            let upper = name.to_ascii_uppercase();
            assert!(std::ptr::eq(lookup(&upper).unwrap(), spec));
            let mixed: Vec<u8> = name
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    if i % 2 == 0 {
                        b.to_ascii_uppercase()
                    } else {
                        *b
                    }
                })
                .collect();
            assert!(std::ptr::eq(lookup(&mixed).unwrap(), spec));
        }
    }

    #[test]
    fn what_is_no_command_is_not_found() {
        for name in [
            &b""[..],
            b"ge",
            b"gett",
            b"get\0",
            b"g\xc3\xa9t",
            b"\xff\xfe",
            &[b'a'; 33],
            &[b'x'; 10_000],
            b"GET ",
        ] {
            assert!(lookup(name).is_none(), "{name:?}");
        }
        // Non-ASCII bytes are not folded onto ASCII ones.
        assert!(lookup("GEТ".as_bytes()).is_none()); // Cyrillic Т
    }
}
