//! INCRBYFLOAT's arithmetic as redis-server does it on x86-64: C's
//! `long double` (the x87 80-bit format, a 64-bit significand), parsed by
//! `strtold`, added once, printed with `%.17Lf` and trailing zeros cut.
//! An `f64` sum prints differently (`0.1 + 0.2`, `1000.1`, `1e20 + 0.1`),
//! so the format is emulated exactly in software: values are kept as
//! `m * 2^e` with a 64-bit `m`, and each step (decimal to binary, the sum,
//! binary to decimal) is computed exactly with small big integers and
//! rounded once, to nearest with ties to even, as the hardware and glibc
//! round.
//!
//! Cost: the big integers are as long as the numbers' exponents (at most
//! about 33 000 bits, for an argument near the format's limits), and the
//! inputs are at most 5 KB (Redis's `MAX_LONG_DOUBLE_CHARS`).
//!
//! Not followed: subnormal results (below 2^-16382) keep 64 bits of
//! precision where the hardware keeps fewer; they print as 0 either way.

use std::cmp::Ordering;

/// Redis's limit on a long double argument (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;
/// The largest finite value is just below 2^16384.
const MAX_EXP: i64 = 16384;
/// Values below 2^-16446 round to zero (the smallest subnormal is 2^-16445).
const MIN_EXP: i64 = -16446;

/// A finite long double: `(-1)^neg * m * 2^e`, or an infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ld {
    Finite { neg: bool, m: u64, e: i64 },
    Inf { neg: bool },
}

/// A string as Redis's `string2ld` reads it: `None` if it is not a valid
/// float (empty, too long, a leading blank, trailing bytes, NaN, or out of
/// range by overflow or underflow to zero). A NUL anywhere is invalid:
/// `strtold` stops there, and Redis 7.0 then finds it did not read all
/// `slen` bytes.
pub fn parse(s: &[u8]) -> Option<Ld> {
    if s.is_empty() || s.len() >= MAX_CHARS || s.contains(&0) {
        return None;
    }
    let (neg, body) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == b"inf" || lower == b"infinity" {
        return Some(Ld::Inf { neg });
    }
    let ld = if let Some(hex) = lower.strip_prefix(b"0x") {
        parse_hex(neg, hex)?
    } else {
        parse_decimal(neg, &lower)?
    };
    match ld {
        Ld::Finite { m: 0, .. } if !is_zero_literal(&lower) => None,
        Ld::Inf { .. } => None,
        ld => Some(ld),
    }
}

/// Whether a parsed zero was written as zero (not an underflow).
fn is_zero_literal(s: &[u8]) -> bool {
    let mantissa = s
        .split(|b| *b == b'e' || *b == b'p')
        .next()
        .unwrap_or_default();
    mantissa.iter().all(|b| matches!(b, b'0' | b'.' | b'x'))
}

/// Digits with an optional point; `None` if there is no digit at all.
fn digits_and_point(s: &[u8], radix: u32) -> Option<(Big, i64, &[u8])> {
    let mut n = Big::zero();
    let (mut any, mut after_point, mut point) = (false, 0i64, false);
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'.' && !point {
            point = true;
        } else if let Some(d) = (c as char).to_digit(radix) {
            any = true;
            // Leading zeros cost nothing; the digits count is bounded by
            // the input's length.
            n.mul_small(radix);
            n.add_small(d);
            if point {
                after_point += 1;
            }
        } else {
            break;
        }
        i += 1;
    }
    any.then_some((n, after_point, &s[i..]))
}

/// An exponent `[+-]digits`, saturated far beyond any finite result.
fn exponent(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |v, d| {
        v.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    let v = v.min(1 << 40);
    Some(if neg { -v } else { v })
}

fn parse_decimal(neg: bool, s: &[u8]) -> Option<Ld> {
    let (digits, after_point, rest) = digits_and_point(s, 10)?;
    let exp10 = match rest {
        [] => 0,
        [b'e', e @ ..] => exponent(e)?,
        _ => return None,
    };
    let exp10 = exp10 - after_point;
    if digits.is_zero() {
        return Some(Ld::Finite { neg, m: 0, e: 0 });
    }
    // Decide the hopeless cases before building a power of ten:
    // 10^4933 > max, 10^-4952 < half the smallest subnormal.
    let magnitude = digits.decimal_len() as i64 + exp10;
    if magnitude > 4934 {
        return Some(Ld::Inf { neg });
    }
    if magnitude < -4952 {
        return Some(Ld::Finite { neg, m: 0, e: 0 });
    }
    if exp10 >= 0 {
        let mut n = digits;
        n.mul_pow10(exp10 as u32);
        return Some(round(neg, n, 0, false));
    }
    let mut p = Big::one();
    p.mul_pow10((-exp10) as u32);
    // q = floor(digits * 2^k / p) with 66 to 68 bits (k may be negative:
    // then p is scaled instead), then rounded with the remainder as the
    // sticky bit. The division takes one step per quotient bit.
    let k = 66 + p.bits() as i64 - digits.bits() as i64;
    let (q, rem) = if k >= 0 {
        digits.shl(k as usize).div_rem(&p)
    } else {
        digits.div_rem(&p.shl((-k) as usize))
    };
    Some(round(neg, q, -k, !rem.is_zero()))
}

fn parse_hex(neg: bool, s: &[u8]) -> Option<Ld> {
    let (digits, after_point, rest) = digits_and_point(s, 16)?;
    let exp2 = match rest {
        [] => 0,
        [b'p', e @ ..] => exponent(e)?,
        _ => return None,
    };
    if digits.is_zero() {
        return Some(Ld::Finite { neg, m: 0, e: 0 });
    }
    Some(round(neg, digits, exp2 - 4 * after_point, false))
}

/// `(-1)^neg * n * 2^e` (plus a sticky bit below `n`) rounded to 64 bits.
fn round(neg: bool, n: Big, e: i64, sticky: bool) -> Ld {
    let bits = n.bits();
    if bits == 0 {
        return Ld::Finite { neg, m: 0, e: 0 };
    }
    let (m, e) = if bits <= 64 {
        (n.low_u64(), e)
    } else {
        let shift = bits - 64;
        let mut m = n.shr(shift).low_u64();
        let half = n.bit(shift - 1);
        let below = sticky || n.any_below(shift - 1);
        if half && (below || m & 1 == 1) {
            m = m.wrapping_add(1);
            if m == 0 {
                // Carried out of 64 bits: 2^64 = 2^63 * 2.
                return finish(neg, 1 << 63, e + shift as i64 + 1);
            }
        }
        (m, e + shift as i64)
    };
    finish(neg, m, e)
}

fn finish(neg: bool, m: u64, e: i64) -> Ld {
    let top = e + 63 - i64::from(m.leading_zeros());
    if top >= MAX_EXP {
        Ld::Inf { neg }
    } else if top < MIN_EXP {
        Ld::Finite { neg, m: 0, e: 0 }
    } else {
        Ld::Finite { neg, m, e }
    }
}

/// `a + b` rounded once; `None` if it is infinite or NaN.
pub fn add(a: Ld, b: Ld) -> Option<Ld> {
    let (
        Ld::Finite {
            neg: na,
            m: ma,
            e: ea,
        },
        Ld::Finite {
            neg: nb,
            m: mb,
            e: eb,
        },
    ) = (a, b)
    else {
        return None;
    };
    if ma == 0 && mb == 0 {
        return Some(Ld::Finite {
            neg: na && nb,
            m: 0,
            e: 0,
        });
    }
    if ma == 0 {
        return Some(b);
    }
    if mb == 0 {
        return Some(a);
    }
    let e = ea.min(eb);
    let x = Big::from_u64(ma).shl((ea - e) as usize);
    let y = Big::from_u64(mb).shl((eb - e) as usize);
    let (neg, n) = if na == nb {
        (na, x.add(&y))
    } else {
        match x.cmp(&y) {
            Ordering::Equal => {
                return Some(Ld::Finite {
                    neg: false,
                    m: 0,
                    e: 0,
                })
            }
            Ordering::Greater => (na, x.sub(&y)),
            Ordering::Less => (nb, y.sub(&x)),
        }
    };
    match round(neg, n, e, false) {
        Ld::Inf { .. } => None,
        ld => Some(ld),
    }
}

/// `%.17Lf` with the trailing zeros (and a bare point) cut, and `-0` as
/// `0`: Redis's `ld2string(..., LD_STR_HUMAN)`.
pub fn format(ld: Ld) -> Vec<u8> {
    let Ld::Finite { neg, m, e } = ld else {
        return b"inf".to_vec();
    };
    let n = Big::from_u64(m);
    let (int_part, frac_digits) = if e >= 0 {
        (n.shl(e as usize), Big::zero())
    } else {
        let shift = (-e) as usize;
        let int_part = n.shr(shift);
        let frac = n.sub(&int_part.shl(shift));
        // frac / 2^shift * 10^17, rounded to nearest, ties to even.
        let mut scaled = frac;
        scaled.mul_pow10(17);
        let q = scaled.shr(shift);
        let rem = scaled.sub(&q.shl(shift));
        let half = Big::one().shl(shift - 1);
        let up = match rem.cmp(&half) {
            Ordering::Greater => true,
            Ordering::Equal => q.low_u64() & 1 == 1,
            Ordering::Less => false,
        };
        let mut q = q;
        if up {
            q.add_small(1);
        }
        let mut limit = Big::one();
        limit.mul_pow10(17);
        if q.cmp(&limit) == Ordering::Less {
            (int_part, q)
        } else {
            let mut int_part = int_part;
            int_part.add_small(1);
            (int_part, q.sub(&limit))
        }
    };
    let mut out = Vec::new();
    if neg {
        out.push(b'-');
    }
    out.extend_from_slice(&int_part.to_decimal());
    let frac = frac_digits.to_decimal();
    let mut frac_text = vec![b'0'; 17 - frac.len().min(17)];
    frac_text.extend_from_slice(&frac);
    while frac_text.last() == Some(&b'0') {
        frac_text.pop();
    }
    if !frac_text.is_empty() {
        out.push(b'.');
        out.extend_from_slice(&frac_text);
    }
    if out == b"-0" {
        out = b"0".to_vec();
    }
    out
}

/// A non-negative big integer, little-endian 32-bit limbs, no top zeros.
#[derive(Clone, Debug)]
struct Big(Vec<u32>);

impl Big {
    fn zero() -> Big {
        Big(Vec::new())
    }

    fn one() -> Big {
        Big(vec![1])
    }

    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
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

    /// Whether any of the bits below `i` is set.
    fn any_below(&self, i: usize) -> bool {
        let (limbs, rest) = (i / 32, i % 32);
        self.0.iter().take(limbs).any(|l| *l != 0)
            || (rest > 0
                && self
                    .0
                    .get(limbs)
                    .is_some_and(|l| l & ((1 << rest) - 1) != 0))
    }

    fn low_u64(&self) -> u64 {
        let limb = |i: usize| u64::from(self.0.get(i).copied().unwrap_or(0));
        limb(0) | limb(1) << 32
    }

    fn mul_small(&mut self, k: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(k) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn add_small(&mut self, k: u32) {
        let mut carry = u64::from(k);
        for limb in &mut self.0 {
            if carry == 0 {
                return;
            }
            let v = u64::from(*limb) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow10(&mut self, mut n: u32) {
        while n >= 9 {
            self.mul_small(1_000_000_000);
            n -= 9;
        }
        self.mul_small(10u32.pow(n));
    }

    fn shl(&self, bits: usize) -> Big {
        if self.is_zero() {
            return Big::zero();
        }
        let (limbs, rest) = (bits / 32, bits % 32);
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for &limb in &self.0 {
            if rest == 0 {
                out.push(limb);
            } else {
                out.push(limb << rest | carry);
                carry = limb >> (32 - rest);
            }
        }
        if carry != 0 {
            out.push(carry);
        }
        Big(out)
    }

    fn shr(&self, bits: usize) -> Big {
        let (limbs, rest) = (bits / 32, bits % 32);
        let src = self.0.get(limbs..).unwrap_or_default();
        let mut out: Vec<u32> = (0..src.len())
            .map(|i| {
                let low = src[i] >> rest;
                let high = match (rest, src.get(i + 1)) {
                    (0, _) | (_, None) => 0,
                    (_, Some(next)) => next << (32 - rest),
                };
                low | high
            })
            .collect();
        while out.last() == Some(&0) {
            out.pop();
        }
        Big(out)
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    fn add(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(other.0.len()) {
            let v = u64::from(self.0.get(i).copied().unwrap_or(0))
                + u64::from(other.0.get(i).copied().unwrap_or(0))
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        if carry != 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    /// `self - other`, for `self >= other`.
    fn sub(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut v =
                i64::from(self.0[i]) - i64::from(other.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            out.push(v as u32);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    /// Quotient and remainder, bit by bit (the quotients here have at
    /// most 68 bits).
    fn div_rem(&self, d: &Big) -> (Big, Big) {
        let mut rem = self.clone();
        let mut q = Big::zero();
        if self.bits() < d.bits() {
            return (q, rem);
        }
        for i in (0..=self.bits() - d.bits()).rev() {
            let shifted = d.shl(i);
            if rem.cmp(&shifted) != Ordering::Less {
                rem = rem.sub(&shifted);
                q = q.add(&Big::one().shl(i));
            }
        }
        (q, rem)
    }

    fn div_small(&mut self, k: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.0.iter_mut().rev() {
            let v = rem << 32 | u64::from(*limb);
            *limb = (v / u64::from(k)) as u32;
            rem = v % u64::from(k);
        }
        self.trim();
        rem as u32
    }

    fn decimal_len(&self) -> usize {
        self.to_decimal().len()
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
        let mut out = chunks.pop().map_or_else(String::new, |c| c.to_string());
        for c in chunks.iter().rev() {
            out.push_str(&format!("{c:09}"));
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        let x = parse(a.as_bytes()).expect("a");
        let y = parse(b.as_bytes()).expect("b");
        String::from_utf8(format(add(x, y).expect("finite"))).unwrap()
    }

    #[test]
    fn sums_print_as_redis_prints_them() {
        // Known redis-server 7.0 answers (x86-64).
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("0", "3"), "3");
        assert_eq!(sum("5.0e3", "2.0e2"), "5200");
        assert_eq!(sum("-1", "1"), "0");
        assert_eq!(sum("0", "-0.000000000000000000001"), "0");
        assert_eq!(
            sum("0", "1e43"),
            "9999999999999999999741184793924429452148736"
        );
        assert_eq!(sum("0", "0x1p-1"), "0.5");
        // A long mantissa with a small exponent: the quotient stays short.
        let long = format!("{}e-1", "12345678901234567890".repeat(200));
        let x = parse(long.as_bytes()).expect("finite");
        assert!(format(x).starts_with(b"123456789012345678"));
    }

    #[test]
    fn invalid_and_out_of_range_inputs_are_refused() {
        for bad in [
            "", " 1", "1 ", "abc", "1e", "1e+", ".", "nan", "-nan", "1e5000", "1e-5000", "0x",
            "--1",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
        // Redis 7.0's string2ld wants all the bytes read: a NUL (where
        // strtold stops) anywhere makes the value invalid.
        for bad in [&b"\0"[..], b"1\0", b"1\x002", b"\0\0\x001.5", b"1.5\0x"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        for good in [
            "inf",
            "-Infinity",
            "0",
            "-0.0",
            ".5",
            "5.",
            "+1",
            "1e-4930",
            "0x1.8p1",
        ] {
            assert!(parse(good.as_bytes()).is_some(), "{good:?}");
        }
        assert_eq!(add(parse(b"inf").unwrap(), parse(b"1").unwrap()), None);
        let huge = parse(b"1.1e4932").unwrap();
        assert_eq!(add(huge, huge), None);
    }
}
