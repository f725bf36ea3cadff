//! HINCRBYFLOAT's arithmetic: Redis computes it in C's `long double`
//! (x87 80-bit extended precision on x86-64: a 64-bit significand) and
//! prints it with `%.17Lf`, trailing zeros trimmed. An `f64` gives other
//! digits (0.1 + 0.2 is "0.3" in Redis), so this emulates the type: values
//! are `mantissa * 2^exponent`, parsed as `strtold` does (correctly
//! rounded, decimal or hex, `inf`), added and rounded to nearest-even at 64
//! bits, and printed exactly, with small big-integer arithmetic. The cost
//! is bounded by the argument's length (at most 5119 bytes, Redis's limit)
//! and the type's range (about 10^±4951).

use std::cmp::Ordering;

/// The smallest exponent of a (denormal) long double: 2^-16445.
const MIN_EXP: i64 = -16445;
/// Values of 2^16384 and more overflow to infinity.
const MAX_BITS: i64 = 16384;
/// Redis's `MAX_LONG_DOUBLE_CHARS`: longer arguments are not floats.
const MAX_CHARS: usize = 5 * 1024;

/// A long double: `(-1)^negative * mantissa * 2^exponent`, or infinity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LongDouble {
    negative: bool,
    mantissa: u64,
    exponent: i64,
    infinite: bool,
}

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble {
        negative: false,
        mantissa: 0,
        exponent: 0,
        infinite: false,
    };

    pub fn is_finite(&self) -> bool {
        !self.infinite
    }

    fn infinity(negative: bool) -> Self {
        LongDouble {
            negative,
            mantissa: 0,
            exponent: 0,
            infinite: true,
        }
    }

    /// `self + other`, rounded to nearest-even as the FPU does.
    pub fn add(self, other: LongDouble) -> LongDouble {
        if self.infinite || other.infinite {
            // inf + -inf is NaN: reported as not finite either way.
            return if self.infinite { self } else { other };
        }
        let base = self.exponent.min(other.exponent);
        let a = Big::from(self.mantissa).shl((self.exponent - base) as usize);
        let b = Big::from(other.mantissa).shl((other.exponent - base) as usize);
        let (negative, sum) = if self.negative == other.negative {
            (self.negative, a.add(&b))
        } else {
            match a.cmp(&b) {
                Ordering::Less => (other.negative, b.sub(&a)),
                _ => (self.negative, a.sub(&b)),
            }
        };
        round(negative, sum, base, false)
    }

    /// `%.17Lf` with trailing zeros (and a trailing point) removed, and
    /// "-0" as "0": Redis's `ld2string(..., LD_STR_HUMAN)`.
    pub fn to_human(self) -> Vec<u8> {
        if self.infinite {
            return if self.negative {
                b"-inf".to_vec()
            } else {
                b"inf".to_vec()
            };
        }
        let mut digits = if self.exponent >= 0 {
            let mut d = Big::from(self.mantissa)
                .shl(self.exponent as usize)
                .to_decimal();
            d.extend_from_slice(b".");
            d
        } else {
            let shift = (-self.exponent) as usize;
            let scaled = Big::from(self.mantissa).mul_pow10(17);
            let mut q = scaled.shr(shift);
            let half = scaled.bit(shift - 1);
            if half && (scaled.any_below(shift - 1) || q.bit(0)) {
                q = q.add(&Big::from(1));
            }
            let mut d = q.to_decimal();
            while d.len() < 18 {
                d.insert(0, b'0');
            }
            d.insert(d.len() - 17, b'.');
            d
        };
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if digits.last() == Some(&b'.') {
            digits.pop();
        }
        if self.negative && digits != b"0" {
            digits.insert(0, b'-');
        }
        digits
    }
}

/// Parses as Redis's `string2ld`: `strtold` must consume everything (up
/// to a NUL byte, where C's string ends), no leading blank, no NaN, and no
/// overflow or underflow to zero.
pub fn parse(arg: &[u8]) -> Option<LongDouble> {
    if arg.is_empty() || arg.len() >= MAX_CHARS {
        return None;
    }
    let text = arg.split(|b| *b == 0).next().unwrap_or(&[]);
    if text.is_empty() {
        // strtold converts nothing and stops at the NUL: 0.
        return Some(LongDouble::ZERO);
    }
    let (negative, body) = match text[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    if lower == b"inf" || lower == b"infinity" {
        return Some(LongDouble::infinity(negative));
    }
    let (mantissa, exponent, binary) = if lower.starts_with(b"0x") {
        hex_parts(&lower[2..])?
    } else {
        decimal_parts(&lower)?
    };
    if mantissa.is_zero() {
        return Some(LongDouble {
            negative,
            ..LongDouble::ZERO
        });
    }
    let value = if binary {
        round(negative, mantissa, exponent, false)
    } else {
        from_decimal(negative, mantissa, exponent)?
    };
    // strtold's ERANGE: Redis refuses an overflow and an underflow to 0.
    (value.is_finite() && value.mantissa != 0).then_some(value)
}

/// `digits[.digits][e[+-]digits]`: the digits as an integer and the
/// decimal exponent to apply.
fn decimal_parts(s: &[u8]) -> Option<(Big, i64, bool)> {
    let mut big = Big::from(0);
    let (mut exponent, mut seen, mut i, mut point) = (0i64, false, 0, false);
    while i < s.len() {
        match s[i] {
            b'0'..=b'9' => {
                big = big.mul_small(10).add(&Big::from(u64::from(s[i] - b'0')));
                seen = true;
                if point {
                    exponent -= 1;
                }
            }
            b'.' if !point => point = true,
            _ => break,
        }
        i += 1;
    }
    if !seen {
        return None;
    }
    if i < s.len() {
        if s[i] != b'e' {
            return None;
        }
        exponent = exponent.saturating_add(exponent_digits(&s[i + 1..])?);
    }
    Some((big, exponent, false))
}

/// `hexdigits[.hexdigits][p[+-]digits]`: the digits and a binary exponent.
fn hex_parts(s: &[u8]) -> Option<(Big, i64, bool)> {
    let mut big = Big::from(0);
    let (mut exponent, mut seen, mut i, mut point) = (0i64, false, 0, false);
    while i < s.len() {
        match (s[i] as char).to_digit(16) {
            Some(d) => {
                big = big.mul_small(16).add(&Big::from(u64::from(d)));
                seen = true;
                if point {
                    exponent -= 4;
                }
            }
            None if s[i] == b'.' && !point => point = true,
            None => break,
        }
        i += 1;
    }
    if !seen {
        return None;
    }
    if i < s.len() {
        if s[i] != b'p' {
            return None;
        }
        exponent = exponent.saturating_add(exponent_digits(&s[i + 1..])?);
    }
    Some((big, exponent, true))
}

/// An exponent's `[+-]digits` (all of the rest), saturated far beyond the
/// type's range.
fn exponent_digits(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for d in digits {
        v = (v * 10 + i64::from(d - b'0')).min(1_000_000);
    }
    Some(if negative { -v } else { v })
}

/// `digits * 10^exponent`, correctly rounded.
fn from_decimal(negative: bool, digits: Big, exponent: i64) -> Option<LongDouble> {
    // The value is below 10^(magnitude) and at least 10^(magnitude - 1).
    let magnitude = digits.to_decimal().len() as i64 + exponent;
    if magnitude > 4934 {
        return Some(LongDouble::infinity(negative));
    }
    if magnitude < -4952 {
        return Some(LongDouble {
            negative,
            ..LongDouble::ZERO
        });
    }
    if exponent >= 0 {
        return Some(round(
            negative,
            digits.mul_pow10(exponent as usize),
            0,
            false,
        ));
    }
    // digits / 10^k = digits / 5^k * 2^-k: divide enough bits by 5^k.
    let k = (-exponent) as usize;
    let five_bits = k * 7 / 3 + 1;
    let extra = (five_bits + 70).saturating_sub(digits.bits());
    let mut quotient = digits.shl(extra);
    let mut inexact = false;
    let mut left = k;
    while left > 0 {
        let step = left.min(13);
        inexact |= quotient.div_small(5u32.pow(step as u32)) != 0;
        left -= step;
    }
    Some(round(
        negative,
        quotient,
        -(k as i64) - extra as i64,
        inexact,
    ))
}

/// `value * 2^exponent` (plus a little more if `inexact`), rounded to a
/// 64-bit mantissa, nearest-even, with the type's denormals and overflow.
fn round(negative: bool, value: Big, exponent: i64, inexact: bool) -> LongDouble {
    // A sticky bit below everything keeps "a little more" in the rounding.
    let (value, exponent) = if inexact {
        (value.shl(1).add(&Big::from(1)), exponent - 1)
    } else {
        (value, exponent)
    };
    let bits = value.bits() as i64;
    if bits == 0 {
        return LongDouble {
            negative,
            ..LongDouble::ZERO
        };
    }
    let shift = (bits - 64).max(MIN_EXP - exponent);
    let (mantissa, exponent) = if shift <= 0 {
        (value.low_u64(), exponent)
    } else {
        let shift = shift as usize;
        let mut q = value.shr(shift);
        if value.bit(shift - 1) && (value.any_below(shift - 1) || q.bit(0)) {
            q = q.add(&Big::from(1));
        }
        q.mantissa_with_carry(exponent + shift as i64)
    };
    let top = 64 - i64::from(mantissa.leading_zeros());
    if mantissa != 0 && top + exponent > MAX_BITS {
        return LongDouble::infinity(negative);
    }
    LongDouble {
        negative,
        mantissa,
        exponent,
        infinite: false,
    }
}

/// A non-negative big integer, little-endian 32-bit limbs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big(Vec<u32>);

impl From<u64> for Big {
    fn from(v: u64) -> Self {
        Big(vec![v as u32, (v >> 32) as u32]).trimmed()
    }
}

impl Big {
    fn trimmed(mut self) -> Self {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        self
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bits(&self) -> usize {
        self.0
            .last()
            .map_or(0, |top| self.0.len() * 32 - top.leading_zeros() as usize)
    }

    fn bit(&self, i: usize) -> bool {
        self.0
            .get(i / 32)
            .is_some_and(|limb| limb >> (i % 32) & 1 == 1)
    }

    /// Whether any bit below `i` is set.
    fn any_below(&self, i: usize) -> bool {
        let (whole, part) = (i / 32, i % 32);
        self.0.iter().take(whole).any(|l| *l != 0)
            || (part > 0
                && self
                    .0
                    .get(whole)
                    .is_some_and(|l| l & ((1 << part) - 1) != 0))
    }

    /// The low 64 bits (the caller knows the value fits).
    fn low_u64(&self) -> u64 {
        let limb = |i: usize| u64::from(self.0.get(i).copied().unwrap_or(0));
        limb(0) | limb(1) << 32
    }

    /// The mantissa after rounding, which may have carried to 2^64: then
    /// half of it with the exponent one higher.
    fn mantissa_with_carry(&self, exponent: i64) -> (u64, i64) {
        if self.bits() > 64 {
            (self.shr(1).low_u64(), exponent + 1)
        } else {
            (self.low_u64(), exponent)
        }
    }

    fn shl(&self, n: usize) -> Big {
        if self.is_zero() {
            return self.clone();
        }
        let (whole, part) = (n / 32, n % 32);
        let mut out = vec![0u32; whole];
        let mut carry = 0u32;
        for &limb in &self.0 {
            if part == 0 {
                out.push(limb);
            } else {
                out.push(limb << part | carry);
                carry = limb >> (32 - part);
            }
        }
        out.push(carry);
        Big(out).trimmed()
    }

    fn shr(&self, n: usize) -> Big {
        let (whole, part) = (n / 32, n % 32);
        let limbs = self.0.get(whole..).unwrap_or(&[]);
        let mut out = Vec::with_capacity(limbs.len());
        for (i, &limb) in limbs.iter().enumerate() {
            let high = limbs.get(i + 1).copied().unwrap_or(0);
            out.push(if part == 0 {
                limb
            } else {
                limb >> part | high << (32 - part)
            });
        }
        Big(out).trimmed()
    }

    fn add(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(other.0.len()) {
            let sum = u64::from(self.0.get(i).copied().unwrap_or(0))
                + u64::from(other.0.get(i).copied().unwrap_or(0))
                + carry;
            out.push(sum as u32);
            carry = sum >> 32;
        }
        out.push(carry as u32);
        Big(out).trimmed()
    }

    /// `self - other`, for `self >= other`.
    fn sub(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for (i, &limb) in self.0.iter().enumerate() {
            let mut d = i64::from(limb) - i64::from(other.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(d < 0);
            if d < 0 {
                d += 1 << 32;
            }
            out.push(d as u32);
        }
        Big(out).trimmed()
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    fn mul_small(&self, m: u32) -> Big {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        let mut carry = 0u64;
        for &limb in &self.0 {
            let p = u64::from(limb) * u64::from(m) + carry;
            out.push(p as u32);
            carry = p >> 32;
        }
        out.push(carry as u32);
        Big(out).trimmed()
    }

    fn mul_pow10(&self, mut n: usize) -> Big {
        let mut out = self.clone();
        while n > 0 {
            let step = n.min(9);
            out = out.mul_small(10u32.pow(step as u32));
            n -= step;
        }
        out
    }

    /// Divides in place; returns the remainder.
    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.0.iter_mut().rev() {
            let cur = rem << 32 | u64::from(*limb);
            *limb = (cur / u64::from(d)) as u32;
            rem = cur % u64::from(d);
        }
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        rem as u32
    }

    fn to_decimal(&self) -> Vec<u8> {
        if self.is_zero() {
            return b"0".to_vec();
        }
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut out = chunks.pop().map_or(String::new(), |c| c.to_string());
        for c in chunks.iter().rev() {
            out.push_str(&format!("{c:09}"));
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> String {
        let sum = parse(a.as_bytes())
            .unwrap()
            .add(parse(b.as_bytes()).unwrap());
        String::from_utf8(sum.to_human()).unwrap()
    }

    #[test]
    fn sums_print_as_redis_long_doubles_do() {
        assert_eq!(incr("0.1", "0.2"), "0.3");
        assert_eq!(incr("10.5", "0.1"), "10.6");
        assert_eq!(incr("1", "-1"), "0");
        assert_eq!(incr("-0.0", "0"), "0");
        assert_eq!(incr("5.0e3", "2.0e2"), "5200");
        assert_eq!(incr("0x10", "1"), "17");
        assert_eq!(incr("1e-30", "0"), "0");
        assert_eq!(incr("-1e-30", "0"), "0");
        assert_eq!(incr("3", "1.5"), "4.5");
    }

    #[test]
    fn parsing_follows_string2ld() {
        for bad in [
            "", " 1", "1 ", "abc", "1e", "0x", "nan", "1e99999", "1e-99999", ".",
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        for good in ["1.", ".5", "+1", "-1e10", "inf", "-Infinity", "0", "1\0x"] {
            assert!(parse(good.as_bytes()).is_some(), "{good:?}");
        }
    }
}
