//! Money as integer fen. Never a float: each protocol's form is converted here, exactly, and
//! anything that is not exactly representable (a third decimal, a sign, overflow) is an error.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount in fen (分, 1/100 yuan). Signed so that net positions and debit balances of internal
/// accounts can be expressed; protocol forms that forbid a sign refuse negative values.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

/// Why an amount could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount {0:?} is not a yuan figure with exactly two decimals")]
    BadYuan(String),
    #[error("amount {0:?} is not an unsigned fen figure")]
    BadFen(String),
    #[error("amount {0:?} overflows")]
    Overflow(String),
    #[error("amount {0} fen is negative where no sign is allowed")]
    Negative(i64),
    #[error("amount {fen} fen does not fit {width} digits")]
    TooWide { fen: i64, width: usize },
}

impl Money {
    pub const ZERO: Money = Money(0);
    /// 13 integer digits of yuan plus two decimals: the widest figure any spec allows.
    pub const MAX_FEN: i64 = 999_999_999_999_999;

    pub const fn from_fen(fen: i64) -> Money {
        Money(fen)
    }

    pub const fn fen(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Parses yuan with exactly two decimals and no sign (`1234.50`), as the core gateway and the
    /// daily files write it. At most 13 integer digits.
    pub fn parse_yuan(text: &str) -> Result<Money, MoneyError> {
        Self::parse_yuan_inner(text, false)
    }

    /// Like [`Money::parse_yuan`] but a leading `-` is allowed (balances of internal accounts).
    pub fn parse_signed_yuan(text: &str) -> Result<Money, MoneyError> {
        Self::parse_yuan_inner(text, true)
    }

    fn parse_yuan_inner(text: &str, signed: bool) -> Result<Money, MoneyError> {
        let bad = || MoneyError::BadYuan(text.to_string());
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) if signed => (true, rest),
            Some(_) => return Err(bad()),
            None => (false, text),
        };
        let (int_part, dec_part) = digits.split_once('.').ok_or_else(bad)?;
        if int_part.is_empty()
            || int_part.len() > 13
            || dec_part.len() != 2
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !dec_part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let int: i64 = int_part.parse().map_err(|_| bad())?;
        let dec: i64 = dec_part.parse().map_err(|_| bad())?;
        let fen = int
            .checked_mul(100)
            .and_then(|v| v.checked_add(dec))
            .ok_or_else(|| MoneyError::Overflow(text.to_string()))?;
        Ok(Money(if negative { -fen } else { fen }))
    }

    /// Writes yuan with exactly two decimals (`1234.50`, `-0.05`).
    pub fn to_yuan(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// Parses an unsigned, all-digit fen field (`000000022335`).
    pub fn parse_fen_digits(text: &str) -> Result<Money, MoneyError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::BadFen(text.to_string()));
        }
        text.parse::<i64>()
            .map(Money)
            .map_err(|_| MoneyError::Overflow(text.to_string()))
    }

    /// Writes an unsigned fen figure zero-padded to `width` digits.
    pub fn to_fen_digits(self, width: usize) -> Result<String, MoneyError> {
        if self.0 < 0 {
            return Err(MoneyError::Negative(self.0));
        }
        let text = format!("{:0width$}", self.0, width = width);
        if text.len() > width {
            return Err(MoneyError::TooWide { fen: self.0, width });
        }
        Ok(text)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_yuan())
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        Money(iter.map(|m| m.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_round_trips_exactly() {
        assert_eq!(Money::parse_yuan("1234.50"), Ok(Money::from_fen(123450)));
        assert_eq!(Money::parse_yuan("0.01"), Ok(Money::from_fen(1)));
        assert_eq!(Money::from_fen(123450).to_yuan(), "1234.50");
        assert_eq!(Money::from_fen(5).to_yuan(), "0.05");
        assert_eq!(Money::from_fen(-5).to_yuan(), "-0.05");
        assert_eq!(
            Money::parse_signed_yuan("-12.30"),
            Ok(Money::from_fen(-1230))
        );
    }

    #[test]
    fn yuan_refuses_inexact_forms() {
        for bad in [
            "1.234",
            "1.2",
            "1",
            ".50",
            "-1.00",
            "+1.00",
            "1,000.00",
            "1 .00",
            "",
            "12345678901234.00",
            "1e3.00",
        ] {
            assert!(Money::parse_yuan(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn fen_digits_are_zero_padded_and_bounded() {
        assert_eq!(
            Money::from_fen(22335).to_fen_digits(12).as_deref(),
            Ok("000000022335")
        );
        assert_eq!(
            Money::parse_fen_digits("000000022335"),
            Ok(Money::from_fen(22335))
        );
        assert!(Money::from_fen(1000).to_fen_digits(3).is_err());
        assert!(Money::from_fen(-1).to_fen_digits(12).is_err());
        assert!(Money::parse_fen_digits("00001 ").is_err());
        assert!(Money::parse_fen_digits("-1").is_err());
    }
}
