//! Redis's glob patterns for KEYS and SCAN MATCH: `*`, `?`, `[abc]`,
//! `[^a-z]`, and `\` to escape, with the answers of Redis 7's
//! `stringmatchlen` (util.c) byte for byte, its quirks included.
//!
//! The cost is bounded whatever the pattern: no recursion (constant stack),
//! a run of `*` is one step, a class is resolved once per pattern into a
//! 256-bit set ([`Glob`]), and at most `O(pattern * text)` work, because
//! only the last `*` is ever retried. That is exactly what Redis computes
//! since CVE-2022-36021: once the part after a `*` has failed at every
//! later position, an earlier `*` taking more bytes cannot help (it would
//! only move the same attempts further right), so Redis gives up
//! (`skipLongerMatches`).
//!
//! The quirks kept, so that KEYS and SCAN answer as redis-server does:
//! * an empty text matches only the empty pattern, so `*` does not match
//!   the empty key (KEYS and SCAN treat the pattern `*` alone as "every
//!   key" before asking, as Redis does);
//! * Redis gives up beyond [`MAX_NESTING`] `*` runs: a pattern whose 1001st
//!   run is reached matches only if that run ends the pattern;
//! * an unterminated class (`[abc`) is a class that ends the pattern, `[`
//!   alone matches nothing and `[^` matches any byte;
//! * a range takes the byte after `-` even when it is `]` (`[a-]` is the
//!   range `]`..`a`, and the class goes on), and compares bytes as signed
//!   (C `char` on x86), so `[a-\xff]` is the range `\xff`..`a`;
//! * `\` escapes the next byte; a trailing `\` is a literal backslash.

/// Redis's limit on nested `*` runs (`nesting > 1000` in util.c).
pub const MAX_NESTING: usize = 1000;

/// Whether `text` matches the glob `pattern`, as Redis's `stringmatchlen`
/// answers (case-sensitive). To match many texts, make a [`Glob`] once.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    Glob::new(pattern).matches(text)
}

/// A pattern with its classes resolved once, for matching many texts
/// (KEYS, SCAN MATCH, a PSUBSCRIBE pattern at every PUBLISH): a class costs one bit test per byte compared, not a
/// walk of the class, so `*[` + 100,000 bytes + `]b` against a long key is
/// linear in the key, where a walk per byte was quadratic.
#[derive(Debug)]
pub struct Glob {
    pattern: Box<[u8]>,
    /// Every class the matcher can meet: the index of its `[`, the bytes it
    /// accepts, and the index after it; in pattern order.
    classes: Vec<Class>,
}

#[derive(Debug)]
struct Class {
    at: usize,
    accepts: [u64; 4],
    end: usize,
}

impl Glob {
    /// Resolves the classes of `pattern`: `O(pattern)`, plus at most 256
    /// per range.
    pub fn new(pattern: &[u8]) -> Self {
        let mut classes = Vec::new();
        // Walks the elements as the matcher steps through them, so a `[`
        // inside a class or after `\` is not taken for a class.
        let mut p = 0;
        while p < pattern.len() {
            p = match pattern[p] {
                b'[' => {
                    let (accepts, end) = class(pattern, p);
                    classes.push(Class {
                        at: p,
                        accepts,
                        end,
                    });
                    end
                }
                b'\\' if p + 1 < pattern.len() => p + 2,
                _ => p + 1,
            };
        }
        Self {
            pattern: pattern.into(),
            classes,
        }
    }

    /// Whether `text` matches, as Redis's `stringmatchlen` answers.
    pub fn matches(&self, text: &[u8]) -> bool {
        let pattern = &*self.pattern;
        if text.is_empty() {
            return pattern.is_empty();
        }
        let (mut p, mut s) = (0, 0);
        // The last `*` run met: where the pattern resumes after it, and where in
        // the text that attempt started.
        let mut star: Option<(usize, usize)> = None;
        // `*` runs met on the way to `p`; each is one level of Redis's recursion.
        let mut nesting = 0;
        loop {
            // Invariant: `s < text.len()`.
            let advanced = match pattern.get(p) {
                None => false,
                Some(b'*') => {
                    while pattern.get(p + 1) == Some(&b'*') {
                        p += 1;
                    }
                    if p + 1 == pattern.len() {
                        return true;
                    }
                    nesting += 1;
                    if nesting > MAX_NESTING {
                        return false;
                    }
                    p += 1;
                    star = Some((p, s));
                    continue;
                }
                Some(&c) => match self.element(p, c, text[s]) {
                    Some(next) => {
                        p = next;
                        s += 1;
                        true
                    }
                    None => false,
                },
            };
            if advanced {
                if s < text.len() {
                    continue;
                }
                // The text is used up: only `*`s may be left.
                while pattern.get(p) == Some(&b'*') {
                    p += 1;
                }
                if p == pattern.len() {
                    return true;
                }
            }
            // No match from here: the last `*` takes one byte more, if a byte
            // would be left for the rest of the pattern.
            let Some((after, start)) = star else {
                return false;
            };
            if start + 1 == text.len() {
                return false;
            }
            // No `*` was met after this one (it would be the last), so
            // `nesting` is still this run's.
            star = Some((after, start + 1));
            p = after;
            s = start + 1;
        }
    }

    /// Matches the one-byte element at `pattern[p]` (`c`, not `*`) against
    /// `byte`: the index after the element, or `None` if it does not match.
    fn element(&self, p: usize, c: u8, byte: u8) -> Option<usize> {
        let pattern = &*self.pattern;
        match c {
            b'?' => Some(p + 1),
            b'[' => {
                let (accepts, end) = match self.classes.binary_search_by_key(&p, |c| c.at) {
                    Ok(i) => (self.classes[i].accepts, self.classes[i].end),
                    // Not reached (the matcher steps as `new` walked), but
                    // answer right rather than panic if it were.
                    Err(_) => class(pattern, p),
                };
                (accepts[usize::from(byte >> 6)] & (1 << (byte & 63)) != 0).then_some(end)
            }
            b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte).then_some(p + 2),
            _ => (c == byte).then_some(p + 1),
        }
    }
}

/// The class at `pattern[p] == b'['`: the bytes it accepts (a bit each),
/// and the index after it. Walks the class exactly as Redis does (see the
/// module comment for the unterminated and `-]` cases).
fn class(pattern: &[u8], p: usize) -> ([u64; 4], usize) {
    let mut set = [0u64; 4];
    let mut add = |b: u8| set[usize::from(b >> 6)] |= 1 << (b & 63);
    let mut i = p + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let end = loop {
        let left = pattern.len() - i;
        if left >= 2 && pattern[i] == b'\\' {
            i += 1;
            add(pattern[i]);
        } else if left >= 1 && pattern[i] == b']' {
            break i + 1;
        } else if left == 0 {
            // Unterminated: the class is the rest of the pattern.
            break pattern.len();
        } else if left >= 3 && pattern[i + 1] == b'-' {
            // Signed, as C's `char` on x86.
            let (a, b) = (pattern[i] as i8, pattern[i + 2] as i8);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            for v in lo..=hi {
                add(v as u8);
            }
            i += 2;
        } else {
            add(pattern[i]);
        }
        i += 1;
    };
    if negate {
        for word in &mut set {
            *word = !*word;
        }
    }
    (set, end)
}

#[cfg(test)]
mod tests {
    use super::{matches, MAX_NESTING};

    #[test]
    fn redis_glob_semantics() {
        assert!(matches(b"h?llo", b"hello"));
        assert!(matches(b"h*llo", b"heeeello"));
        assert!(matches(b"h*llo", b"hllo"));
        assert!(matches(b"h[ae]llo", b"hallo"));
        assert!(!matches(b"h[ae]llo", b"hillo"));
        assert!(!matches(b"h[^e]llo", b"hello"));
        assert!(matches(b"h[^e]llo", b"hallo"));
        assert!(matches(b"h[a-b]llo", b"hbllo"));
        assert!(matches(b"h[b-a]llo", b"hallo"));
        assert!(!matches(b"h[a-b]llo", b"hcllo"));
        assert!(matches(b"user:\\*", b"user:*"));
        assert!(!matches(b"user:\\*", b"user:1"));
        assert!(!matches(b"a*b", b"acd"));
        assert!(matches(b"a*b*", b"axbx"));
        assert!(matches(b"*b", b"aab"));
        assert!(!matches(b"*b", b"aba"));
        assert!(matches(b"a**", b"a"));
        assert!(!matches(b"a*?", b"a"));
        assert!(matches(b"", b""));
        assert!(!matches(b"", b"a"));
        assert!(!matches(b"a", b""));
    }

    #[test]
    fn redis_quirks() {
        // The empty text matches only the empty pattern (KEYS `*` asks no one).
        assert!(!matches(b"*", b""));
        assert!(matches(b"*", b"x"));
        // Unterminated classes end the pattern; `[` alone matches nothing.
        assert!(matches(b"[abc", b"b"));
        assert!(!matches(b"[abc", b"bx"));
        assert!(!matches(b"[", b"["));
        assert!(matches(b"[^", b"q"));
        // A pattern left over when the text ends matches only if all `*`.
        assert!(!matches(b"x[", b"x"));
        // `[]` is an empty class, `]` right after it a literal.
        assert!(!matches(b"[]]", b"]"));
        // A range runs to the byte after `-`, even `]`: `[a-]x` is the class
        // `]`..`a` plus `x`, unterminated.
        assert!(matches(b"[a-]x", b"^"));
        assert!(matches(b"[a-]x", b"x"));
        assert!(!matches(b"[a-]x", b"b"));
        // Escapes inside a class; a trailing `\` is a literal.
        assert!(matches(b"[\\]]", b"]"));
        assert!(matches(b"[\\", b"\\"));
        assert!(matches(b"a\\", b"a\\"));
        assert!(matches(b"\\?", b"?"));
        assert!(!matches(b"\\?", b"x"));
        // Ranges compare C's signed chars.
        assert!(matches(b"[a-\xff]", b"\xff"));
        assert!(matches(b"[a-\xff]", b"A"));
        assert!(!matches(b"[a-\xff]", b"b"));
        assert!(!matches(b"[a-\xff]", b"\x80"));
    }

    #[test]
    fn nesting_limit_is_redis_s() {
        let text = b"ab".repeat(MAX_NESTING + 5);
        let runs = |n: usize| b"a*".repeat(n);
        // 1000 runs then a tail: matched as usual.
        let mut p = runs(MAX_NESTING);
        p.extend_from_slice(b"b");
        assert!(matches(&p, &text));
        // A 1001st run that ends the pattern still matches.
        assert!(matches(&runs(MAX_NESTING + 1), &text));
        // A 1001st run with more after it: Redis gives up.
        let mut p = runs(MAX_NESTING + 1);
        p.extend_from_slice(b"b");
        assert!(!matches(&p, &text));
        // A run of stars is one level, however long.
        let mut p = vec![b'*'; 300_000];
        p.push(b'x');
        assert!(matches(&p, b"abcx"));
        assert!(!matches(&p, b"abcy"));
    }

    #[test]
    fn stars_in_classes_and_escapes_are_not_runs() {
        let mut p = b"[*]\\*".repeat(MAX_NESTING + 1);
        p.extend_from_slice(b"*b*c");
        let mut text = b"**".repeat(MAX_NESTING + 1);
        text.extend_from_slice(b"xbc");
        assert!(matches(&p, &text));
    }

    /// A long class after a `*`: resolved once, each byte compared is one
    /// bit test (walking the class per byte was 10^10 steps here).
    #[test]
    fn a_long_class_costs_a_bit_test_per_byte() {
        let mut p = b"*[".to_vec();
        p.extend(std::iter::repeat_n(b'a', 100_000));
        p.extend_from_slice(b"]b");
        let text = vec![b'a'; 100_000];
        assert!(!matches(&p, &text));
        let mut hit = text.clone();
        hit.push(b'b');
        assert!(matches(&p, &hit));
    }

    #[test]
    fn hostile_patterns_are_fast() {
        let mut p = b"*a".repeat(30);
        p.extend_from_slice(b"*b");
        assert!(!matches(&p, &[b'a'; 40]));
        let p = b"*a".repeat(100_000);
        assert!(!matches(&p, &[b'a'; 40]));
    }
}

#[cfg(test)]
mod properties {
    use super::matches;
    use proptest::prelude::*;

    /// Redis's `stringmatchlen` as plain recursion, one element at a time,
    /// without `skipLongerMatches` or the nesting limit (exponential, so
    /// only for short inputs): the definition the fast matcher must agree
    /// with.
    fn reference(p: &[u8], s: &[u8]) -> bool {
        if s.is_empty() {
            return p.is_empty();
        }
        let Some((&c, _)) = p.split_first() else {
            return false;
        };
        if c == b'*' {
            let rest = p
                .iter()
                .position(|&b| b != b'*')
                .map_or(&p[p.len()..], |i| &p[i..]);
            if rest.is_empty() {
                return true;
            }
            // Every non-empty suffix of `s`.
            return (0..s.len()).any(|skip| reference(rest, &s[skip..]));
        }
        let (hit, len) = match c {
            b'?' => (true, 1),
            b'\\' if p.len() >= 2 => (p[1] == s[0], 2),
            b'[' => reference_class(p, s[0]),
            _ => (c == s[0], 1),
        };
        if !hit {
            return false;
        }
        let (rest, s) = (&p[len..], &s[1..]);
        if s.is_empty() {
            rest.iter().all(|&b| b == b'*')
        } else {
            reference(rest, s)
        }
    }

    /// Redis's class loop, transcribed: `(matched, bytes of pattern used)`.
    fn reference_class(p: &[u8], c: u8) -> (bool, usize) {
        let mut rest = &p[1..];
        let negate = rest.first() == Some(&b'^');
        if negate {
            rest = &rest[1..];
        }
        let mut hit = false;
        loop {
            match rest {
                [b'\\', x, tail @ ..] => {
                    hit |= *x == c;
                    rest = tail;
                }
                [b']', ..] => return (hit != negate, p.len() - rest.len() + 1),
                [] => return (hit != negate, p.len()),
                [a, b'-', b, tail @ ..] => {
                    let (a, b, c) = (*a as i8, *b as i8, c as i8);
                    hit |= a.min(b) <= c && c <= a.max(b);
                    rest = tail;
                }
                [x, tail @ ..] => {
                    hit |= *x == c;
                    rest = tail;
                }
            }
        }
    }

    /// Bytes that mean something to the matcher, plus a few plain ones.
    fn pattern_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            3 => Just(b'*'),
            2 => Just(b'?'),
            2 => Just(b'['),
            2 => Just(b']'),
            2 => Just(b'^'),
            2 => Just(b'-'),
            2 => Just(b'\\'),
            6 => prop::sample::select(b"abc\x80\xff".to_vec()),
        ]
    }

    fn text_byte() -> impl Strategy<Value = u8> {
        prop::sample::select(b"abc*?[]^-\\\x80\xff".to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn agrees_with_the_reference(
            pattern in prop::collection::vec(pattern_byte(), 0..12),
            text in prop::collection::vec(text_byte(), 0..10),
        ) {
            prop_assert_eq!(matches(&pattern, &text), reference(&pattern, &text));
        }

        /// Text built to match the pattern's literal skeleton, so that
        /// matches (not only misses) are exercised often.
        #[test]
        fn agrees_on_near_matches(
            pattern in prop::collection::vec(pattern_byte(), 1..12),
            noise in prop::collection::vec(text_byte(), 0..4),
            at in any::<prop::sample::Index>(),
        ) {
            let mut text: Vec<u8> = pattern.iter().copied().filter(|&b| b != b'*').collect();
            let at = at.index(text.len() + 1);
            text.splice(at..at, noise);
            prop_assert_eq!(matches(&pattern, &text), reference(&pattern, &text));
        }
    }
}
