//! The timeout argument of the blocking commands, read as Redis 7.0.15's
//! `getTimeoutFromObjectOrReply` does: seconds as a C `long double`
//! (`strtold`: decimal, hexadecimal, `inf`; no spaces, no NaN, at most
//! 5119 bytes), times 1000, rounded up to whole milliseconds; 0 waits
//! forever. A product at or beyond 2^63 ms (`inf`, `1e17`) becomes
//! `LLONG_MIN` in C and so "negative".
//!
//! The value is computed in `f64` where Redis has 80-bit `long double`:
//! the two can round differently within a fraction of a millisecond
//! (Redis waits forever on `-0.001`, which rounds to -0.99999... there, and
//! answers "negative" here), and `f64` overflows or underflows sooner, so
//! the decimal exponent decides instead what `strtold` would reject.

use std::time::Duration;

use crate::protocol::Reply;

/// `long double` limits as decimal exponents (`LDBL_MAX` ~ 1.19e4932,
/// the smallest subnormal ~ 3.6e-4951).
const LDBL_MAX_EXP10: i64 = 4932;
const LDBL_MIN_EXP10: i64 = -4951;
/// Redis's buffer for `string2ld` (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;

/// The wait: `None` for forever (a timeout of 0).
pub fn parse(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let not_float = || Reply::error("ERR timeout is not a float or out of range");
    let negative = || Reply::error("ERR timeout is negative");
    let seconds = long_double(arg).ok_or_else(not_float)?;
    let ms = seconds * 1000.0;
    // 2^63: the first value C's conversion to `long long` cannot hold.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if !ms.is_finite() || !(-TWO_63..TWO_63).contains(&ms) {
        return Err(negative());
    }
    let ms = ms.ceil();
    if ms < 0.0 {
        return Err(negative());
    }
    // Whole milliseconds below 2^63: the cast is exact.
    let ms = ms as u64;
    Ok((ms > 0).then(|| Duration::from_millis(ms)))
}

/// `arg` as `strtold` reads a whole string, approximated in `f64`: values
/// beyond `f64` but within `long double` come back infinite, tiny ones as
/// the smallest `f64` of their sign. `None` where Redis's `string2ld`
/// fails.
fn long_double(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || arg.len() >= MAX_CHARS {
        return None;
    }
    let text = std::str::from_utf8(arg).ok()?;
    let (negative, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let sign = if negative { -1.0 } else { 1.0 };
    // Bytes, not `str` slicing: `body` may hold multibyte characters.
    if body.len() > 2 && body.as_bytes()[..2].eq_ignore_ascii_case(b"0x") {
        return hex(&body[2..]).map(|v| sign * v);
    }
    // Rust's grammar is strtold's for decimals, `inf`, `infinity` and
    // `nan` (no spaces, no hex), so it decides what is a number.
    let value: f64 = body.parse().ok()?;
    if value.is_nan() || body.starts_with(['+', '-']) {
        return None;
    }
    let literal_infinity = body.as_bytes()[0].is_ascii_alphabetic();
    if literal_infinity {
        return Some(sign * value);
    }
    match exponent10(body) {
        // All digits zero.
        None => Some(sign * 0.0),
        Some(e) if !(LDBL_MIN_EXP10..=LDBL_MAX_EXP10).contains(&e) => None,
        Some(_) if value == 0.0 => Some(sign * f64::from_bits(1)),
        Some(_) => Some(sign * value),
    }
}

/// The decimal exponent of the first nonzero digit of a decimal number
/// (already known valid), or `None` if every digit is zero.
fn exponent10(body: &str) -> Option<i64> {
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i64>().unwrap_or(i64::MAX)),
        None => (body, 0),
    };
    let point = mantissa.find('.').unwrap_or(mantissa.len());
    let first = mantissa.bytes().position(|b| (b'1'..=b'9').contains(&b))?;
    let position = if first < point {
        (point - first - 1) as i64
    } else {
        -((first - point) as i64)
    };
    Some(position.saturating_add(exp))
}

/// A hexadecimal float after its `0x`: digits, an optional fraction and an
/// optional binary exponent (`p`).
fn hex(body: &str) -> Option<f64> {
    let (mantissa, exp) = match body.find(['p', 'P']) {
        Some(i) => {
            let e = &body[i + 1..];
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Saturates: any exponent this large overflows or underflows.
            (
                &body[..i],
                e.parse::<i64>().unwrap_or(if e.starts_with('-') {
                    -100_000
                } else {
                    100_000
                }),
            )
        }
        None => (body, 0),
    };
    let (int_part, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value = 0.0f64;
    for c in int_part.chars().chain(frac.chars()) {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let exp = exp.clamp(-100_000, 100_000) - 4 * frac.len().min(100_000) as i64;
    Some(value * 2f64.powi(exp.clamp(-2000, 2000) as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(arg: &str) -> Result<Option<u128>, String> {
        parse(arg.as_bytes())
            .map(|d| d.map(|d| d.as_millis()))
            .map_err(|e| match e {
                Reply::Error(e) => e,
                _ => unreachable!(),
            })
    }

    #[test]
    fn timeouts_read_as_redis_7_0_reads_them() {
        // Each answer checked against redis-server 7.0.15.
        let not_float = Err("ERR timeout is not a float or out of range".to_string());
        let negative = Err("ERR timeout is negative".to_string());
        assert_eq!(ms("0"), Ok(None));
        assert_eq!(ms("-0"), Ok(None));
        assert_eq!(ms("1"), Ok(Some(1000)));
        assert_eq!(ms("+1"), Ok(Some(1000)));
        assert_eq!(ms(".5"), Ok(Some(500)));
        assert_eq!(ms("1."), Ok(Some(1000)));
        assert_eq!(ms("1e-5"), Ok(Some(1)), "rounded up");
        assert_eq!(ms("1e-300"), Ok(Some(1)));
        assert_eq!(ms("-0.0001"), Ok(None), "rounds up to 0: forever");
        assert_eq!(ms("0x10"), Ok(Some(16_000)));
        assert_eq!(ms("0x1p-20"), Ok(Some(1)));
        assert_eq!(ms("-0.0011"), negative);
        assert_eq!(ms("-1"), negative);
        assert_eq!(ms("inf"), negative);
        assert_eq!(ms("-inf"), negative);
        assert_eq!(ms("infinity"), negative);
        assert_eq!(ms("1e17"), negative);
        assert_eq!(ms("9223372036854776"), negative);
        assert_eq!(ms("1e400"), negative);
        assert_eq!(ms("1e4931"), negative);
        // (Redis also waits on 9223372036854775, 2^63 ms less a little:
        // exact in a long double, it rounds up to 2^63 in an f64.)
        assert_eq!(ms("9223372036854"), Ok(Some(9_223_372_036_854_000)));
        assert_eq!(ms("1e5000"), not_float);
        assert_eq!(ms("-1e5000"), not_float);
        assert_eq!(ms("nan"), not_float);
        assert_eq!(ms(" 1"), not_float);
        assert_eq!(ms("1 "), not_float);
        assert_eq!(ms(""), not_float);
        assert_eq!(ms("0.5e"), not_float);
        assert_eq!(ms("x"), not_float);
        assert_eq!(ms("--1"), not_float);
        assert_eq!(ms(&"1".repeat(MAX_CHARS)), not_float);
        for hostile in ["0é", "é", "0xé", "1eé", "0x1pé", "0x1.é", "\u{0}", "1\u{0}"] {
            assert_eq!(ms(hostile), not_float, "{hostile:?}");
        }
        assert!(parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn no_input_panics() {
        // Short strings over the characters that matter, from a fixed LCG.
        let alphabet = b"0123456789xXpPeE.+-infINFa\xc3\xa9 \x00";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let len = (state >> 60) as usize;
            let mut arg = Vec::with_capacity(len);
            for i in 0..len {
                let pick = (state >> (i * 4 % 56)) as usize % alphabet.len();
                arg.push(alphabet[pick]);
            }
            let _ = parse(&arg);
        }
    }
}
