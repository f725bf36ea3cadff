//! The sorted-set commands' arguments and score text, exactly as Redis
//! 7.0 reads and prints them.
//!
//! Redis reads a score two ways: a score to store (ZADD, ZINCRBY,
//! WEIGHTS) must be the whole argument, not start with a blank, and not
//! overflow or underflow (`getDoubleFromObject`); a range bound (ZCOUNT,
//! ZRANGEBYSCORE...) is C's `strtod` with only NaN and trailing bytes
//! refused, so a leading blank, `1e999` (inf) and even the empty string
//! (0) pass (`zslParseRange`). Hex floats (`0x1p3`), which `strtod` also
//! reads, are refused here.
//!
//! Redis 7.0 prints a score with `%.17g` (`1.1` is `1.1000000000000001`)
//! on RESP2 and RESP3 alike; Redis 7.2 changed to the shortest text that
//! reads back the same. The oracle is 7.0, so this prints as 7.0 does.

use crate::zset::{LexItem, LexRange, ScoreRange};

/// The score text of Redis 7.0's `addReplyDouble` and `d2string`.
pub fn fmt_score(v: f64) -> Vec<u8> {
    if v.is_infinite() {
        return if v > 0.0 {
            b"inf".to_vec()
        } else {
            b"-inf".to_vec()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            b"-0".to_vec()
        } else {
            b"0".to_vec()
        };
    }
    // %.17g: 17 significant digits, fixed notation when the decimal
    // exponent is in -4..17, trailing zeros dropped.
    let sci = format!("{v:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let text = if (-4..17).contains(&exp) {
        let decimals = usize::try_from(16 - exp).unwrap_or(0);
        strip_zeros(format!("{v:.decimals$}"))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            strip_zeros(mantissa.to_owned()),
            exp.unsigned_abs()
        )
    };
    text.into_bytes()
}

fn strip_zeros(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A score to store (`getDoubleFromObject`): `None` where Redis answers
/// "not a valid float".
pub fn parse_score(arg: &[u8]) -> Option<f64> {
    let first = *arg.first()?;
    if is_c_space(first) {
        return None;
    }
    let text = std::str::from_utf8(arg).ok()?;
    let v: f64 = text.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    let digits = text.split(['e', 'E']).next().unwrap_or("");
    let literal_inf = digits.chars().any(|c| c.is_ascii_alphabetic());
    // strtod's ERANGE: an overflow to inf, or an underflow to zero.
    if v.is_infinite() && !literal_inf {
        return None;
    }
    if v == 0.0 && digits.bytes().any(|d| (b'1'..=b'9').contains(&d)) {
        return None;
    }
    Some(v)
}

/// `strtod` over the whole argument as `zslParseRange` uses it.
fn range_double(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() {
        // strtod reads nothing and stops at the terminator: 0.
        return Some(0.0);
    }
    let start = arg.iter().position(|&b| !is_c_space(b))?;
    let text = std::str::from_utf8(&arg[start..]).ok()?;
    text.parse::<f64>().ok().filter(|v| !v.is_nan())
}

pub const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
pub const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// A score range from `min` and `max` (`(` for exclusive, `-inf`, `+inf`).
pub fn score_range(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
    let bound = |arg: &[u8]| match arg.split_first() {
        Some((b'(', rest)) => range_double(rest).map(|v| (v, true)),
        _ => range_double(arg).map(|v| (v, false)),
    };
    let (min, min_exclusive) = bound(min)?;
    let (max, max_exclusive) = bound(max)?;
    Some(ScoreRange {
        min,
        max,
        min_exclusive,
        max_exclusive,
    })
}

/// A lex range from `min` and `max` (`[a`, `(a`, `-`, `+`).
pub fn lex_range(min: &[u8], max: &[u8]) -> Option<LexRange> {
    let item = |arg: &[u8]| match arg.split_first() {
        Some((b'+', [])) => Some((LexItem::Max, false)),
        Some((b'-', [])) => Some((LexItem::Min, false)),
        Some((b'(', rest)) => Some((LexItem::Value(rest.to_vec()), true)),
        Some((b'[', rest)) => Some((LexItem::Value(rest.to_vec()), false)),
        _ => None,
    };
    let (min, min_exclusive) = item(min)?;
    let (max, max_exclusive) = item(max)?;
    Some(LexRange {
        min,
        max,
        min_exclusive,
        max_exclusive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_print_as_redis_7_0_prints_them() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (1.5, "1.5"),
            (1.1, "1.1000000000000001"),
            (0.1, "0.10000000000000001"),
            (-2.5, "-2.5"),
            (-0.0, "-0"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (1.5e300, "1.5000000000000001e+300"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (123456789.125, "123456789.125"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (5e-324, "4.9406564584124654e-324"),
        ];
        for (v, want) in cases {
            assert_eq!(String::from_utf8(fmt_score(*v)).unwrap(), *want, "{v}");
        }
    }

    #[test]
    fn scores_parse_as_redis_reads_them() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        for bad in ["", " 1", "1 ", "nan", "1e999", "1e-999", "abc", "(1"] {
            assert_eq!(parse_score(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(range_double(b""), Some(0.0));
        assert_eq!(range_double(b" 2"), Some(2.0));
        assert_eq!(range_double(b"1e999"), Some(f64::INFINITY));
        assert_eq!(range_double(b" "), None);
        assert_eq!(range_double(b"nan"), None);
        let r = score_range(b"(1", b"+inf").unwrap();
        assert!(r.min_exclusive && !r.max_exclusive && r.max == f64::INFINITY);
        assert!(lex_range(b"a", b"+").is_none());
        assert!(lex_range(b"-", b"+").is_some());
        assert!(lex_range(b"--", b"+").is_none());
    }
}
