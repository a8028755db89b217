//! Exact decimal arithmetic for DynamoDB numbers (38 significant digits).

use std::cmp::Ordering;
use std::fmt;

/// An exact decimal `±digits × 10^exponent`, normalised (no leading or trailing zero digits,
/// zero is positive with no digits) so that equal numbers have equal representations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Decimal {
    negative: bool,
    /// Base-10 digits, most significant first.
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    const ZERO: Decimal = Decimal { negative: false, digits: Vec::new(), exponent: 0 };

    /// Parses DynamoDB's number syntax: `-12`, `3.25`, `.5`, `1e10`, `1E-3`.
    pub(super) fn parse(text: &str) -> Option<Decimal> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(i) => (&unsigned[..i], unsigned[i + 1..].parse::<i64>().ok()?),
            None => (unsigned, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let digits = whole
            .bytes()
            .chain(fraction.bytes())
            .map(|b| b.is_ascii_digit().then(|| b - b'0'))
            .collect::<Option<Vec<u8>>>()?;
        let exponent = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
        Some(Decimal::normalized(negative, digits, exponent))
    }

    fn normalized(negative: bool, mut digits: Vec<u8>, mut exponent: i64) -> Decimal {
        let leading_zeros = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading_zeros);
        while digits.last() == Some(&0) {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            return Decimal::ZERO;
        }
        Decimal { negative, digits, exponent }
    }

    fn signum(&self) -> i8 {
        match (self.digits.is_empty(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }

    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        // The position of the leading digit decides; then the digits, which carry no trailing
        // zeros, compare lexicographically.
        let magnitude = |d: &Decimal| d.digits.len() as i64 + d.exponent;
        magnitude(self).cmp(&magnitude(other)).then_with(|| self.digits.cmp(&other.digits))
    }

    /// The digits of `|self|` scaled to a smaller or equal exponent.
    fn digits_at(&self, exponent: i64) -> Vec<u8> {
        let zeros = usize::try_from(self.exponent - exponent).unwrap_or(0);
        let mut digits = self.digits.clone();
        digits.resize(digits.len() + zeros, 0);
        digits
    }

    pub(super) fn add(&self, other: &Decimal) -> Decimal {
        if self.signum() == 0 {
            return other.clone();
        }
        if other.signum() == 0 {
            return self.clone();
        }
        let exponent = self.exponent.min(other.exponent);
        let (a, b) = (self.digits_at(exponent), other.digits_at(exponent));
        if self.negative == other.negative {
            return Decimal::normalized(self.negative, add_digits(&a, &b), exponent);
        }
        match self.cmp_magnitude(other) {
            Ordering::Equal => Decimal::ZERO,
            Ordering::Greater => Decimal::normalized(self.negative, subtract_digits(&a, &b), exponent),
            Ordering::Less => Decimal::normalized(other.negative, subtract_digits(&b, &a), exponent),
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        self.signum().cmp(&other.signum()).then_with(|| {
            let magnitude = self.cmp_magnitude(other);
            if self.negative {
                magnitude.reverse()
            } else {
                magnitude
            }
        })
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Plain notation without an exponent (`1500`, `0.025`), which DynamoDB reads exactly.
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.digits.is_empty() {
            return f.write_str("0");
        }
        let sign = if self.negative { "-" } else { "" };
        let digits: String = self.digits.iter().map(|&d| char::from(b'0' + d)).collect();
        let whole_digits = self.digits.len() as i64 + self.exponent;
        if self.exponent >= 0 {
            let zeros = "0".repeat(usize::try_from(self.exponent).unwrap_or(0));
            write!(f, "{sign}{digits}{zeros}")
        } else if whole_digits > 0 {
            let (whole, fraction) = digits.split_at(usize::try_from(whole_digits).unwrap_or(0));
            write!(f, "{sign}{whole}.{fraction}")
        } else {
            let zeros = "0".repeat(usize::try_from(-whole_digits).unwrap_or(0));
            write!(f, "{sign}0.{zeros}{digits}")
        }
    }
}

/// The sum of two non-negative digit strings (most significant first).
fn add_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut sum = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut a, mut b) = (a.iter().rev(), b.iter().rev());
    let mut carry = 0;
    loop {
        let (x, y) = (a.next(), b.next());
        if x.is_none() && y.is_none() {
            break;
        }
        let total = x.copied().unwrap_or(0) + y.copied().unwrap_or(0) + carry;
        sum.push(total % 10);
        carry = total / 10;
    }
    if carry > 0 {
        sum.push(carry);
    }
    sum.reverse();
    sum
}

/// `larger - smaller` for digit strings with `larger >= smaller`.
fn subtract_digits(larger: &[u8], smaller: &[u8]) -> Vec<u8> {
    let mut difference = Vec::with_capacity(larger.len());
    let mut smaller = smaller.iter().rev();
    let mut borrow = 0;
    for &x in larger.iter().rev() {
        let y = smaller.next().copied().unwrap_or(0) + borrow;
        if x >= y {
            difference.push(x - y);
            borrow = 0;
        } else {
            difference.push(x + 10 - y);
            borrow = 1;
        }
    }
    difference.reverse();
    difference
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal(text: &str) -> Decimal {
        Decimal::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn decimals_parse_and_normalise() {
        assert_eq!(decimal("1.50"), decimal("1.5"));
        assert_eq!(decimal("0.000"), Decimal::ZERO);
        assert_eq!(decimal("-0"), Decimal::ZERO);
        assert_eq!(decimal("1e3"), decimal("1000"));
        assert_eq!(decimal(".5"), decimal("5E-1"));
        for bad in ["", "-", ".", "1e", "abc", "1.2.3", "+-1", "1e1.5"] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn decimals_order_numerically() {
        let ordered = ["-100", "-9.5", "-9", "-0.001", "0", "0.001", "0.01", "1", "1.05", "1.5", "9", "10", "1e2"];
        for pair in ordered.windows(2) {
            assert!(decimal(pair[0]) < decimal(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn decimals_add_exactly() {
        let sum = |a: &str, b: &str| decimal(a).add(&decimal(b)).to_string();
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("9", "1"), "10");
        assert_eq!(sum("1", "-1"), "0");
        assert_eq!(sum("-5", "3"), "-2");
        assert_eq!(sum("3", "-5"), "-2");
        assert_eq!(sum("1e3", "0.25"), "1000.25");
        assert_eq!(sum("-0.001", "0"), "-0.001");
        assert_eq!(sum("170141183460469231731687303715884105727", "1"), "170141183460469231731687303715884105728");
        assert_eq!(sum("1E-130", "1E-130"), "0.".to_owned() + &"0".repeat(129) + "2");
    }
}
