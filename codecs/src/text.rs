//! Strict GBK / GB18030 text. Encoding never emits `&#NNNN;` for a character the charset lacks and
//! decoding never emits U+FFFD: both are errors. Widths are bytes of the encoded text.

use encoding_rs::{Encoding, GB18030, GBK};
use serde::{Deserialize, Serialize};

/// Which Chinese charset a partner speaks. GBK is CP936 as WHATWG defines it (€ = 0x80).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Charset {
    #[default]
    Gbk,
    Gb18030,
}

impl Charset {
    fn encoding(self) -> &'static Encoding {
        match self {
            Charset::Gbk => GBK,
            Charset::Gb18030 => GB18030,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("character {ch:?} at char {index} has no {charset:?} form")]
    Unmappable {
        ch: char,
        index: usize,
        charset: Charset,
    },
    #[error("bytes {bytes} at offset {offset} are not valid {charset:?}")]
    Malformed {
        offset: usize,
        bytes: String,
        charset: Charset,
    },
}

/// Encodes `text`, refusing any character the charset cannot represent.
pub fn encode(text: &str, charset: Charset) -> Result<Vec<u8>, TextError> {
    let mut encoder = charset.encoding().new_encoder();
    let mut out = Vec::with_capacity(text.len() * 2);
    let mut consumed = 0usize;
    loop {
        let need = encoder
            .max_buffer_length_from_utf8_without_replacement(text.len() - consumed)
            .unwrap_or(text.len() * 4 + 16);
        let start = out.len();
        out.resize(start + need, 0);
        let (result, read, written) = encoder.encode_from_utf8_without_replacement(
            &text[consumed..],
            &mut out[start..],
            true,
        );
        out.truncate(start + written);
        consumed += read;
        match result {
            encoding_rs::EncoderResult::InputEmpty => return Ok(out),
            encoding_rs::EncoderResult::OutputFull => continue,
            encoding_rs::EncoderResult::Unmappable(ch) => {
                let index = text[..consumed].chars().count().saturating_sub(1);
                return Err(TextError::Unmappable { ch, index, charset });
            }
        }
    }
}

/// Decodes `bytes` whole, refusing malformed sequences, a half character at the end, and any
/// sequence that is not the charset's canonical form. The last matters for GBK: encoding_rs decodes
/// GBK with the GB18030 decoder, which also accepts four-byte sequences that CP936 does not have;
/// re-encoding and comparing refuses them, as the specs require.
pub fn decode(bytes: &[u8], charset: Charset) -> Result<String, TextError> {
    let decoded = decode_lenient(bytes, charset)?;
    match encode(&decoded, charset) {
        Ok(reencoded) if reencoded == bytes => Ok(decoded),
        _ => Err(first_non_canonical(bytes, &decoded, charset)),
    }
}

/// Finds the first character whose bytes are not its canonical encoding, for the error. The
/// bytes shown are the (at most four) bytes of that character as found.
fn first_non_canonical(bytes: &[u8], decoded: &str, charset: Charset) -> TextError {
    let mut offset = 0usize;
    for ch in decoded.chars() {
        let mut buf = [0u8; 4];
        if let Ok(canonical) = encode(ch.encode_utf8(&mut buf), charset) {
            if bytes.get(offset..offset + canonical.len()) == Some(canonical.as_slice()) {
                offset += canonical.len();
                continue;
            }
        }
        break;
    }
    let end = (offset + 4).min(bytes.len());
    TextError::Malformed {
        offset,
        bytes: hex::encode_upper(bytes.get(offset..end).unwrap_or(&[])),
        charset,
    }
}

fn decode_lenient(bytes: &[u8], charset: Charset) -> Result<String, TextError> {
    let mut decoder = charset.encoding().new_decoder_without_bom_handling();
    let mut out = String::with_capacity(bytes.len() * 3 / 2 + 4);
    let need = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .unwrap_or(bytes.len() * 3 + 16);
    out.reserve(need);
    let (result, read) = decoder.decode_to_string_without_replacement(bytes, &mut out, true);
    match result {
        encoding_rs::DecoderResult::InputEmpty => Ok(out),
        encoding_rs::DecoderResult::OutputFull => Err(TextError::Malformed {
            offset: read,
            bytes: hex::encode_upper(&bytes[read.min(bytes.len())..]),
            charset,
        }),
        encoding_rs::DecoderResult::Malformed(bad, extra) => {
            let end = read.saturating_sub(extra as usize);
            let start = end.saturating_sub(bad as usize);
            Err(TextError::Malformed {
                offset: start,
                bytes: hex::encode_upper(&bytes[start..end.max(start)]),
                charset,
            })
        }
    }
}

/// Number of bytes `text` takes in `charset`.
pub fn byte_len(text: &str, charset: Charset) -> Result<usize, TextError> {
    encode(text, charset).map(|b| b.len())
}

/// The longest prefix of `text` whose encoding fits `max_bytes`, never cutting a character.
/// For the few places a spec allows truncation (display text such as RspMsg).
pub fn truncate_to_bytes(
    text: &str,
    max_bytes: usize,
    charset: Charset,
) -> Result<String, TextError> {
    let mut used = 0usize;
    let mut out = String::new();
    for ch in text.chars() {
        let mut buf = [0u8; 4];
        let width = encode(ch.encode_utf8(&mut buf), charset)?.len();
        if used + width > max_bytes {
            break;
        }
        used += width;
        out.push(ch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_bytes_match_the_code_chart() {
        assert_eq!(
            encode("张三", Charset::Gbk),
            Ok(vec![0xD5, 0xC5, 0xC8, 0xFD])
        );
        assert_eq!(
            encode("成功", Charset::Gbk),
            Ok(vec![0xB3, 0xC9, 0xB9, 0xA6])
        );
        assert_eq!(encode("€", Charset::Gbk), Ok(vec![0x80]));
        assert_eq!(encode("€", Charset::Gb18030), Ok(vec![0xA2, 0xE3]));
        assert_eq!(
            decode(&[0xD5, 0xC5, 0xC8, 0xFD], Charset::Gbk).as_deref(),
            Ok("张三")
        );
    }

    #[test]
    fn unmappable_characters_are_errors_not_entities() {
        assert!(matches!(
            encode("a𠀀", Charset::Gbk),
            Err(TextError::Unmappable { index: 1, .. })
        ));
        assert!(encode("•", Charset::Gbk).is_err());
        assert!(encode("𠀀", Charset::Gb18030).is_ok());
    }

    #[test]
    fn gb18030_four_byte_sequences_are_not_gbk() {
        // 0x81 0x30 0x81 0x30 is U+0080 in GB18030; CP936 has no four-byte sequences.
        assert!(matches!(
            decode(&[0x41, 0x81, 0x30, 0x81, 0x30], Charset::Gbk),
            Err(TextError::Malformed { offset: 1, .. })
        ));
        assert_eq!(
            decode(&[0x81, 0x30, 0x81, 0x30], Charset::Gb18030).as_deref(),
            Ok("\u{80}")
        );
        // € is A2E3 only in GB18030; GBK writes 0x80.
        assert!(decode(&[0xA2, 0xE3], Charset::Gbk).is_err());
        assert_eq!(decode(&[0x80], Charset::Gbk).as_deref(), Ok("€"));
    }

    #[test]
    fn half_characters_are_errors_not_replacement() {
        assert!(matches!(
            decode(&[0x41, 0xD5], Charset::Gbk),
            Err(TextError::Malformed { offset: 1, .. })
        ));
        assert!(decode(&[0xFF, 0x41], Charset::Gbk).is_err());
    }

    #[test]
    fn truncation_never_cuts_a_character() {
        assert_eq!(
            truncate_to_bytes("张三李四", 5, Charset::Gbk).as_deref(),
            Ok("张三")
        );
        assert_eq!(
            truncate_to_bytes("a张三", 4, Charset::Gbk).as_deref(),
            Ok("a张")
        );
        assert_eq!(byte_len("郴州市北湖区人民路1号", Charset::Gbk), Ok(21));
    }
}
