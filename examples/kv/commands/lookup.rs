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
const SLOTS: usize = 512;

/// The longest command name (`zremrangebyscore`); a longer name is no
/// command, and every name fits one `u128`.
const MAX_NAME: usize = 16;

/// One slot: a name packed lowercase into a `u128` (zero-padded, so its
/// length is kept too: `get` and `get\0` pack alike), and its command.
#[derive(Clone, Copy)]
struct Slot {
    packed: u128,
    len: u8,
    command: u16,
}

const EMPTY: u16 = u16::MAX;

/// The command `name` names (any case), or `None` for an unknown command.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    let packed = pack(name)?;
    let index = index();
    let mut slot = hash(packed, name.len());
    loop {
        let entry = index[slot];
        if entry.command == EMPTY {
            return None;
        }
        if entry.packed == packed && usize::from(entry.len) == name.len() {
            return Some(&COMMANDS[usize::from(entry.command)]);
        }
        slot = (slot + 1) & (SLOTS - 1);
    }
}

/// `name` lowercased (ASCII only: other bytes are kept, so they never
/// match a command) into one word; `None` if it is too long for any.
fn pack(name: &[u8]) -> Option<u128> {
    let mut buf = [0u8; MAX_NAME];
    buf.get_mut(..name.len())?.copy_from_slice(name);
    buf.make_ascii_lowercase();
    Some(u128::from_le_bytes(buf))
}

/// The index of [`COMMANDS`] by packed lowercase name, built on first use.
fn index() -> &'static [Slot; SLOTS] {
    static INDEX: OnceLock<Box<[Slot; SLOTS]>> = OnceLock::new();
    INDEX.get_or_init(|| {
        assert!(COMMANDS.len() * 2 <= SLOTS, "grow SLOTS with the table");
        let empty = Slot {
            packed: 0,
            len: 0,
            command: EMPTY,
        };
        let mut index = Box::new([empty; SLOTS]);
        for (i, spec) in COMMANDS.iter().enumerate() {
            let name = spec.name.as_bytes();
            assert!(!name.is_empty() && name == name.to_ascii_lowercase());
            let packed = pack(name).expect("command names fit MAX_NAME");
            let mut slot = hash(packed, name.len());
            while index[slot].command != EMPTY {
                slot = (slot + 1) & (SLOTS - 1);
            }
            index[slot] = Slot {
                packed,
                len: name.len() as u8,
                command: i as u16,
            };
        }
        index
    })
}

/// FxHash's multiply over the packed name, top bits as the slot. The names
/// in the index are the table's own, fixed at build time: a client cannot
/// add keys to it, so a fast hash is safe.
fn hash(packed: u128, len: usize) -> usize {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let folded = (packed as u64) ^ ((packed >> 64) as u64).rotate_left(29) ^ len as u64;
    (folded.wrapping_mul(SEED) >> (64 - SLOTS.trailing_zeros())) as usize
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
            &[b'a'; 17],
            b"zremrangebyscorex",
            &[b'x'; 10_000],
            b"GET ",
        ] {
            assert!(lookup(name).is_none(), "{name:?}");
        }
        // Non-ASCII bytes are not folded onto ASCII ones.
        assert!(lookup("GEТ".as_bytes()).is_none()); // Cyrillic Т
    }
}
