//! Kubernetes resource quantities (`10Gi`, `500m`, `1e3`): parsed to compare and to check sizes.
//! k8s-openapi keeps them as strings; the grammar is upstream's `resource.Quantity`.

use std::cmp::Ordering;

/// A quantity as an exact fraction: `numerator / 10^scale`. Exact, so `1Gi` and `1073741824`
/// compare equal and `0.1` never rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    numerator: i128,
    scale: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("is empty")]
    Empty,
    #[error(
        "is not a quantity: expected a number with an optional suffix (Ki, Mi, Gi, Ti, Pi, Ei, m, k, M, G, T, P, E) or exponent (e3), like 10Gi or 500m"
    )]
    Syntax,
}

/// What a quantity's suffix does to its number.
enum Suffix {
    /// A binary multiple (`Ki` .. `Ei`).
    Multiply(i128),
    /// Moves the decimal point: positive scales down (`m`, `u`, `n`), negative up (`k` .. `E`,
    /// and exponents).
    Scale(i64),
    /// An exponent past any number the API keeps: capped, as upstream does.
    Huge,
    /// An exponent so small the value is 0.
    Tiny,
}

impl Suffix {
    fn of(suffix: &str) -> Result<Suffix, QuantityError> {
        Ok(match suffix {
            "" => Suffix::Scale(0),
            "Ki" => Suffix::Multiply(1 << 10),
            "Mi" => Suffix::Multiply(1 << 20),
            "Gi" => Suffix::Multiply(1 << 30),
            "Ti" => Suffix::Multiply(1 << 40),
            "Pi" => Suffix::Multiply(1 << 50),
            "Ei" => Suffix::Multiply(1 << 60),
            "n" => Suffix::Scale(9),
            "u" => Suffix::Scale(6),
            "m" => Suffix::Scale(3),
            "k" => Suffix::Scale(-3),
            "M" => Suffix::Scale(-6),
            "G" => Suffix::Scale(-9),
            "T" => Suffix::Scale(-12),
            "P" => Suffix::Scale(-15),
            "E" => Suffix::Scale(-18),
            exp if exp.starts_with(['e', 'E']) => {
                let e: i64 = exp[1..].parse().map_err(|_| QuantityError::Syntax)?;
                match e {
                    e if e > 30 => Suffix::Huge,
                    e if e < -30 => Suffix::Tiny,
                    e => Suffix::Scale(-e),
                }
            }
            _ => return Err(QuantityError::Syntax),
        })
    }
}

impl Quantity {
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(QuantityError::Empty);
        }
        let (sign, rest) = match s.as_bytes()[0] {
            b'+' => (1, &s[1..]),
            b'-' => (-1, &s[1..]),
            _ => (1, s),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(num_end);
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(QuantityError::Syntax);
        }
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Ok(Quantity::capped(sign));
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| QuantityError::Syntax)?
        };
        let mut scale = frac_part.len() as i64;
        let mut multiplier: i128 = 1;
        match Suffix::of(suffix)? {
            Suffix::Multiply(m) => multiplier = m,
            Suffix::Scale(delta) => scale += delta,
            Suffix::Huge => return Ok(Quantity::capped(sign)),
            Suffix::Tiny => {
                return Ok(Quantity {
                    numerator: 0,
                    scale: 0,
                });
            }
        }
        let Some(mut numerator) = mantissa.checked_mul(multiplier) else {
            return Ok(Quantity::capped(sign));
        };
        while scale < 0 {
            let Some(n) = numerator.checked_mul(10) else {
                return Ok(Quantity::capped(sign));
            };
            numerator = n;
            scale += 1;
        }
        let q = Quantity {
            numerator: sign * numerator,
            scale: scale as u32,
        };
        if q.integer_part().abs() > i64::MAX as i128 {
            return Ok(Quantity::capped(sign));
        }
        Ok(q)
    }

    /// Upstream caps quantities at 2^63-1 in magnitude rather than refusing them.
    fn capped(sign: i128) -> Quantity {
        Quantity {
            numerator: sign * i64::MAX as i128,
            scale: 0,
        }
    }

    fn integer_part(&self) -> i128 {
        self.numerator / 10i128.pow(self.scale.min(38))
    }

    /// The value as a float (approximate): for sums and messages, never for comparisons.
    pub fn as_f64(&self) -> f64 {
        self.numerator as f64 / 10f64.powi(self.scale.min(38) as i32)
    }

    pub fn is_positive(&self) -> bool {
        self.numerator > 0
    }

    pub fn is_negative(&self) -> bool {
        self.numerator < 0
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        // Bring both to the larger scale; scales are at most ~40 and numerators below 2^63 * 10^40
        // would overflow, so compare through i128 with saturation as a fallback.
        let scale = self.scale.max(other.scale);
        let widen = |q: &Quantity| {
            10i128
                .checked_pow(scale - q.scale)
                .and_then(|m| q.numerator.checked_mul(m))
        };
        match (widen(self), widen(other)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => (self.numerator.signum(), self.integer_part())
                .cmp(&(other.numerator.signum(), other.integer_part())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_kubernetes_accepts() {
        for ok in [
            "1", "10Gi", "500m", "1.5", ".5", "1e3", "1E3", "+2k", "-1", "0", "100Ti", "8Ei",
        ] {
            assert!(Quantity::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Gi", "10GB", "1.2.3", "ten", "10 Gi", "1e", "1.5.Gi"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
        let max = Quantity::parse("9223372036854775807").unwrap();
        assert_eq!(
            Quantity::parse("1e100"),
            Ok(max),
            "capped, as upstream does"
        );
        assert_eq!(Quantity::parse("16Ei"), Ok(max));
        assert_eq!(
            Quantity::parse("99999999999999999999999999999999999"),
            Ok(max)
        );
    }

    #[test]
    fn compares_across_suffixes() {
        let q = |s| Quantity::parse(s).unwrap();
        assert_eq!(q("1Gi").cmp(&q("1073741824")), Ordering::Equal);
        assert_eq!(q("1Ki").cmp(&q("1k")), Ordering::Greater);
        assert_eq!(q("500m").cmp(&q("0.5")), Ordering::Equal);
        assert_eq!(q("1").cmp(&q("999m")), Ordering::Greater);
        assert!(!q("0Gi").is_positive());
        assert!(q("-1").is_negative());
    }
}
