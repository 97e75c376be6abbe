//! The resident ID number (GB 11643) check the hub makes before any call, and the masking the
//! spec prescribes for mobile and online banking (and for every log line).

use chrono::NaiveDate;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARACTERS: &[u8; 11] = b"10X98765432";

/// Why an ID number is refused before any call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("证件号码须为18位（15位旧号码不受理），实为{0}位")]
    Length(usize),
    #[error("证件号码前17位须为数字，末位为数字或X")]
    Characters,
    #[error("证件号码中的出生日期无效")]
    BirthDate,
    #[error("证件号码校验位错误")]
    CheckDigit,
}

impl IdNumberError {
    pub fn code(&self) -> &'static str {
        match self {
            IdNumberError::Length(_) => "MED_ID_LENGTH",
            IdNumberError::Characters => "MED_ID_CHARACTERS",
            IdNumberError::BirthDate => "MED_ID_BIRTH_DATE",
            IdNumberError::CheckDigit => "MED_ID_CHECK_DIGIT",
        }
    }
}

/// A checked 18-character ID number, final `x` upper-cased.
#[derive(Clone, PartialEq, Eq)]
pub struct IdNumber(String);

impl IdNumber {
    /// Upper-cases a final `x`, then checks length, characters, the birth date (19000101 to
    /// `today`) and the check character.
    pub fn parse(text: &str, today: NaiveDate) -> Result<IdNumber, IdNumberError> {
        let count = text.chars().count();
        if count != 18 {
            return Err(IdNumberError::Length(count));
        }
        let normalized = IdNumber::canonical(text);
        let bytes = normalized.as_bytes();
        let (body, last) = match (bytes.get(..17), bytes.get(17)) {
            (Some(body), Some(last)) if bytes.len() == 18 => (body, *last),
            _ => return Err(IdNumberError::Characters),
        };
        if !body.iter().all(u8::is_ascii_digit) || !(last.is_ascii_digit() || last == b'X') {
            return Err(IdNumberError::Characters);
        }
        let birth = normalized
            .get(6..14)
            .and_then(codecs::clock::parse_yyyymmdd)
            .ok_or(IdNumberError::BirthDate)?;
        let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).ok_or(IdNumberError::BirthDate)?;
        if birth < earliest || birth > today {
            return Err(IdNumberError::BirthDate);
        }
        let sum: u32 = body
            .iter()
            .zip(WEIGHTS)
            .map(|(digit, weight)| u32::from(digit - b'0') * weight)
            .sum();
        let expected = CHECK_CHARACTERS.get((sum % 11) as usize).copied();
        if expected != Some(last) {
            return Err(IdNumberError::CheckDigit);
        }
        Ok(IdNumber(normalized))
    }

    /// The one spelling GB 11643 writes: a final `x` upper-cased, nothing else touched (an
    /// unchecked text stays unchecked).
    pub fn canonical(text: &str) -> String {
        match text.strip_suffix('x') {
            Some(head) => format!("{head}X"),
            None => text.to_string(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdNumber({})", mask_id_number(&self.0))
    }
}

/// `4312**********0016`: first 4 and last 4 characters.
pub fn mask_id_number(text: &str) -> String {
    mask_keep(text, 4, 4)
}

/// Every character but the last as `*`: `张三` → `*三`.
pub fn mask_name(text: &str) -> String {
    let count = text.chars().count();
    text.chars()
        .enumerate()
        .map(|(i, c)| if i + 1 == count { c } else { '*' })
        .collect()
}

/// First 3 and last 4: `138****5678`.
pub fn mask_phone(text: &str) -> String {
    mask_keep(text, 3, 4)
}

/// The first 6 characters then `****`.
pub fn mask_address(text: &str) -> String {
    let head: String = text.chars().take(6).collect();
    format!("{head}****")
}

fn mask_keep(text: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < head || i >= chars.len() - tail {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// The typed name compared with the insurer's (spaces trimmed, as the spec says).
pub fn names_match(typed: &str, insurer: &str) -> bool {
    typed.trim() == insurer.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")
    }

    #[test]
    fn valid_numbers_pass() {
        // Σ dᵢwᵢ = 248, 248 mod 11 = 6 → '6' (worked by hand from the weights).
        assert_eq!(
            IdNumber::parse("431227199003150016", today()).map(|i| i.0),
            Ok("431227199003150016".to_string())
        );
        // Σ = 167, 167 mod 11 = 2 → 'X'; a lower-case x is upper-cased first.
        assert_eq!(
            IdNumber::parse("11010519491231002x", today()).map(|i| i.0),
            Ok("11010519491231002X".to_string())
        );
    }

    #[test]
    fn invalid_numbers_are_refused_with_a_reason() {
        let cases = [
            ("431227199003150017", IdNumberError::CheckDigit),
            ("43122719900315001", IdNumberError::Length(17)),
            ("431227900315001", IdNumberError::Length(15)),
            ("4312271990031500160", IdNumberError::Length(19)),
            ("43122719900315001A", IdNumberError::Characters),
            ("4312271990031500１6", IdNumberError::Characters),
            ("431227199002300016", IdNumberError::BirthDate),
            ("431227189912310016", IdNumberError::BirthDate),
            ("431227202712010016", IdNumberError::BirthDate),
        ];
        for (text, expected) in cases {
            assert_eq!(IdNumber::parse(text, today()), Err(expected), "{text}");
        }
    }

    #[test]
    fn masks_follow_the_spec() {
        assert_eq!(mask_id_number("431227199003150016"), "4312**********0016");
        assert_eq!(mask_name("张三"), "*三");
        assert_eq!(mask_name("欧阳娜娜"), "***娜");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_address("湖南省怀化市新晃县城关镇"), "湖南省怀化市****");
        assert_eq!(
            format!("{:?}", IdNumber::parse("431227199003150016", today())),
            "Ok(IdNumber(4312**********0016))"
        );
    }

    #[test]
    fn names_compare_with_spaces_trimmed() {
        assert!(names_match(" 张三 ", "张三"));
        assert!(!names_match("张 三", "张三"));
    }
}
