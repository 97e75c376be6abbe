//! Masking of personal data (account numbers, customer numbers, ID numbers) for logs, views and
//! reports: one rule everywhere. Business records themselves (the journal, a settlement
//! instruction, a file sent to a partner) are not masked.

/// Keeps the first 4 and the last 4 characters and stars the rest (`6230***********0011`).
/// Values of 8 characters or fewer keep only their last quarter, so a short value is never shown whole.
pub fn mask_account(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let len = chars.len();
    if len == 0 {
        return String::new();
    }
    let (keep_head, keep_tail) = if len > 8 { (4, 4) } else { (0, len / 4) };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_head || i >= len - keep_tail {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// Keeps the first character of a name (`张**`).
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => format!("{first}{}", "*".repeat(chars.count())),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_first_four_and_last_four() {
        assert_eq!(mask_account("6230901000000000011"), "6230***********0011");
        assert_eq!(mask_account("9003100000000001"), "9003********0001");
        assert_eq!(mask_account("123456789"), "1234*6789");
    }

    #[test]
    fn names_keep_their_first_character() {
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn short_values_are_never_shown_whole() {
        assert_eq!(mask_account("12345678"), "******78");
        assert_eq!(mask_account("123"), "***");
        assert_eq!(mask_account(""), "");
        // Characters, not bytes: a name-like value does not panic on a char boundary.
        assert_eq!(
            mask_account("张三丰李四王五赵六钱七"),
            "张三丰李***赵六钱七"
        );
    }
}
