//! Redis's glob patterns for KEYS (and later SCAN MATCH): `*`, `?`,
//! `[abc]`, `[^a-z]`, and `\` to escape.

pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| matches(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && matches(rest, &text[1..]),
        Some((b'[', rest)) => {
            let Some((&c, text_rest)) = text.split_first() else {
                return false;
            };
            let (negate, mut class) = match rest.split_first() {
                Some((b'^', r)) => (true, r),
                _ => (false, rest),
            };
            let mut hit = false;
            loop {
                match class {
                    [] => return false, // unterminated class matches nothing
                    [b']', after @ ..] => {
                        class = after;
                        break;
                    }
                    [b'\\', x, after @ ..] => {
                        hit |= *x == c;
                        class = after;
                    }
                    [lo, b'-', hi, after @ ..] if *hi != b']' => {
                        let (lo, hi) = if lo <= hi { (*lo, *hi) } else { (*hi, *lo) };
                        hit |= (lo..=hi).contains(&c);
                        class = after;
                    }
                    [x, after @ ..] => {
                        hit |= *x == c;
                        class = after;
                    }
                }
            }
            hit != negate && matches(class, text_rest)
        }
        Some((b'\\', [x, rest @ ..])) => text.first() == Some(x) && matches(rest, &text[1..]),
        Some((p, rest)) => text.first() == Some(p) && matches(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_glob_semantics() {
        assert!(matches(b"*", b""));
        assert!(matches(b"h?llo", b"hello"));
        assert!(matches(b"h*llo", b"heeeello"));
        assert!(matches(b"h[ae]llo", b"hallo"));
        assert!(!matches(b"h[^e]llo", b"hello"));
        assert!(matches(b"h[a-b]llo", b"hbllo"));
        assert!(matches(b"user:\\*", b"user:*"));
        assert!(!matches(b"user:\\*", b"user:1"));
        assert!(!matches(b"a*b", b"acd"));
    }
}
