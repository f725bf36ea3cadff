//! The state of one table entry whose value can be handed to an IO thread.
//!
//! The value is owned by exactly one place at a time: the table (`Home`) or a
//! job in flight (`Away`). What happens to it while it is away (output to
//! queue, a close to apply, readiness seen) is recorded in the `Away` record
//! and given back, in order, when the value comes home. There is no shared
//! object and no per-entry lock: the compiler enforces single ownership.

/// `Home(value)` or `Away(record)`. `R` is whatever the owner must remember
/// while the value is away.
#[derive(Debug)]
pub enum Slot<T, R> {
    /// The value is in the table; only the table's owner touches it.
    Home(T),
    /// The value is on an IO thread; `R` collects what happened meanwhile.
    Away(R),
}

/// The value was not away when it was given back: a protocol violation by the
/// caller (two jobs for one value), reported instead of overwriting.
#[derive(Debug, PartialEq, Eq)]
pub struct NotAway;

impl<T, R: Default> Slot<T, R> {
    /// Takes the value out to hand it away, leaving an empty `Away` record.
    /// `None` if it is already away (nothing is taken twice).
    pub fn take(&mut self) -> Option<T> {
        match std::mem::replace(self, Slot::Away(R::default())) {
            Slot::Home(value) => Some(value),
            away @ Slot::Away(_) => {
                *self = away;
                None
            }
        }
    }

    /// Puts the value back and returns what was recorded while it was away.
    /// `Err` (and the value back) if the slot was not away.
    pub fn restore(&mut self, value: T) -> Result<R, (NotAway, T)> {
        match self {
            Slot::Away(_) => match std::mem::replace(self, Slot::Home(value)) {
                Slot::Away(record) => Ok(record),
                Slot::Home(_) => unreachable!("matched Away above"),
            },
            Slot::Home(_) => Err((NotAway, value)),
        }
    }

    /// The value, if it is home.
    pub fn home_mut(&mut self) -> Option<&mut T> {
        match self {
            Slot::Home(value) => Some(value),
            Slot::Away(_) => None,
        }
    }

    /// The away record, if the value is away.
    pub fn away_mut(&mut self) -> Option<&mut R> {
        match self {
            Slot::Away(record) => Some(record),
            Slot::Home(_) => None,
        }
    }

    /// Whether the value is home.
    pub fn is_home(&self) -> bool {
        matches!(self, Slot::Home(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_then_restore_returns_the_record_made_while_away() {
        let mut slot: Slot<&str, Vec<u32>> = Slot::Home("conn");
        let conn = slot.take().expect("home");
        assert!(slot.take().is_none(), "a value away cannot be taken twice");
        slot.away_mut().unwrap().push(7);
        let record = slot.restore(conn).expect("was away");
        assert_eq!(record, vec![7]);
        assert!(slot.is_home());
    }

    #[test]
    fn restoring_a_home_slot_is_refused_and_gives_the_value_back() {
        let mut slot: Slot<u8, ()> = Slot::Home(1);
        assert_eq!(slot.restore(2), Err((NotAway, 2)));
        assert_eq!(slot.home_mut(), Some(&mut 1));
    }
}
