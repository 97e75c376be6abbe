//! The MAC schemes of the partner specs, one function per scheme, on RustCrypto's `sm4` (see
//! DESIGN.md for why not `sm-crypto`).
//!
//! - `cdgj` (spec 01, 郴电国际): every body byte before the MAC, padded with 0x00 to a multiple of
//!   16 bytes (no padding when already a multiple), SM4-CBC with a zero IV; the first 8 bytes of
//!   the last cipher block, written as 16 uppercase hex characters.
//!
//! MACs are computed over the wire bytes exactly as sent or received, never over re-encoded or
//! trimmed text.

use cipher::{generic_array::GenericArray, BlockEncryptMut, KeyIvInit};
use sm4::Sm4;

type Sm4CbcEncryptor = cbc::Encryptor<Sm4>;

const BLOCK_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    /// The key is not 32 hex digits. The text itself is never echoed: it is a secret.
    #[error("MAC key is not 32 hex digits ({length} characters given)")]
    BadKeyHex { length: usize },
    #[error("{length} bytes is not a multiple of the {BLOCK_BYTES}-byte block")]
    NotBlockMultiple { length: usize },
}

impl MacError {
    pub fn code(&self) -> &'static str {
        match self {
            MacError::BadKeyHex { .. } => "MAC_BAD_KEY_HEX",
            MacError::NotBlockMultiple { .. } => "MAC_NOT_BLOCK_MULTIPLE",
        }
    }

    /// The operator's text for this kind of error.
    pub fn message_zh(&self) -> &'static str {
        match self {
            MacError::BadKeyHex { .. } => "MAC密钥格式错误（须为32位十六进制）",
            MacError::NotBlockMultiple { .. } => "加密数据长度不是分组长度的整数倍",
        }
    }
}

/// Parses a 16-byte key written as 32 hex digits (either case), as the configuration holds it.
pub fn parse_key_hex(hex: &str) -> Result<[u8; 16], MacError> {
    let bad = || MacError::BadKeyHex {
        length: hex.chars().count(),
    };
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut key = [0u8; 16];
    hex::decode_to_slice(hex, &mut key).map_err(|_| bad())?;
    Ok(key)
}

/// SM4-CBC without padding; `data` must be a whole number of 16-byte blocks.
pub fn sm4_cbc_encrypt_nopad(
    key: &[u8; 16],
    iv: &[u8; 16],
    data: &[u8],
) -> Result<Vec<u8>, MacError> {
    if !data.len().is_multiple_of(BLOCK_BYTES) {
        return Err(MacError::NotBlockMultiple { length: data.len() });
    }
    let mut encryptor = Sm4CbcEncryptor::new(key.into(), iv.into());
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(BLOCK_BYTES) {
        let mut block = GenericArray::clone_from_slice(chunk);
        encryptor.encrypt_block_mut(&mut block);
        out.extend_from_slice(&block);
    }
    Ok(out)
}

/// Spec 01's MAC. Empty input is MACed as one zero block: the spec's "pad to a multiple of 16"
/// leaves no block at all for it, and a MAC must still exist (no real body is empty: the header
/// alone is 104 bytes).
pub fn cdgj_mac(key: &[u8; 16], data: &[u8]) -> [u8; 8] {
    let mut encryptor = Sm4CbcEncryptor::new(key.into(), &[0u8; 16].into());
    let mut last = GenericArray::default();
    let mut chunks = data.chunks(BLOCK_BYTES).peekable();
    if chunks.peek().is_none() {
        encryptor.encrypt_block_mut(&mut last);
    }
    for chunk in chunks {
        // A short last chunk is the zero padding: the rest of the block stays 0x00.
        let mut block = GenericArray::default();
        for (slot, byte) in block.iter_mut().zip(chunk) {
            *slot = *byte;
        }
        encryptor.encrypt_block_mut(&mut block);
        last = block;
    }
    let mut mac = [0u8; 8];
    for (slot, byte) in mac.iter_mut().zip(last.iter()) {
        *slot = *byte;
    }
    mac
}

/// Spec 01's MAC as it goes on the wire: 16 uppercase hex characters.
pub fn cdgj_mac_hex(key: &[u8; 16], data: &[u8]) -> String {
    hex::encode_upper(cdgj_mac(key, data))
}

/// Checks the 16 MAC bytes from the wire against `data`. Only the exact uppercase form the spec
/// prescribes is accepted: lowercase hex is a different byte string on the wire, and accepting it
/// would make the MAC field malleable. The comparison takes the same time wherever the first
/// difference is.
pub fn verify_cdgj_mac(key: &[u8; 16], data: &[u8], mac_field: &[u8]) -> bool {
    let expected = cdgj_mac_hex(key, data);
    constant_time_eq(expected.as_bytes(), mac_field)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_KEY_HEX: &str = "0123456789abcdeffedcba9876543210";

    fn key() -> [u8; 16] {
        [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ]
    }

    #[test]
    fn key_hex_parses_strictly() {
        assert_eq!(parse_key_hex(SPEC_KEY_HEX), Ok(key()));
        assert_eq!(parse_key_hex(&SPEC_KEY_HEX.to_uppercase()), Ok(key()));
        assert_eq!(
            parse_key_hex("0123"),
            Err(MacError::BadKeyHex { length: 4 })
        );
        assert!(parse_key_hex("0123456789abcdeffedcba987654321g").is_err());
        assert!(parse_key_hex(" 123456789abcdeffedcba9876543210").is_err());
        // Multi-byte characters must not pass the length check by byte count.
        assert!(parse_key_hex("0123456789abcdeffedcba98765432一").is_err());
    }

    #[test]
    fn gbt_32907_single_block_vector() {
        // GB/T 32907-2016 appendix A: key = plaintext = 0123...3210.
        let out = sm4_cbc_encrypt_nopad(&key(), &[0u8; 16], &key());
        assert_eq!(
            out.map(hex::encode),
            Ok("681edf34d206965e86b3e94f536e4246".to_string())
        );
        assert_eq!(
            sm4_cbc_encrypt_nopad(&key(), &[0u8; 16], b"abc"),
            Err(MacError::NotBlockMultiple { length: 3 })
        );
    }

    #[test]
    fn cbc_chaining_matches_openssl() {
        // printf bytes 00..1f | openssl enc -sm4-cbc -nopad -K 0123456789abcdeffedcba9876543210
        //   -iv 000102030405060708090a0b0c0d0e0f | xxd -p -u   (OpenSSL 3.0.19)
        let data: Vec<u8> = (0u8..32).collect();
        let iv = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
        assert_eq!(
            sm4_cbc_encrypt_nopad(&key(), &iv, &data).map(hex::encode_upper),
            Ok("2677F46B09C122CC975533105BD4A22AD9EE98830E69745C9827F934A19621F8".to_string())
        );
    }

    #[test]
    fn spec01_worked_example_1002() {
        let body = format!(
            "{}{}{}{}{}{}{}",
            "1002NSH43102000101MB00010220261203101010B2026120300000000002",
            " ".repeat(44),
            "4310020000000001",
            "000000030000",
            "000000022335",
            "6230901000000000011",
            " ".repeat(13)
        );
        assert_eq!(body.len(), 176);
        assert_eq!(cdgj_mac_hex(&key(), body.as_bytes()), "10B87B1C3800640D");
        assert!(verify_cdgj_mac(
            &key(),
            body.as_bytes(),
            b"10B87B1C3800640D"
        ));
        assert!(!verify_cdgj_mac(
            &key(),
            body.as_bytes(),
            b"10b87b1c3800640d"
        ));
        assert!(!verify_cdgj_mac(
            &key(),
            body.as_bytes(),
            b"10B87B1C3800640E"
        ));
        assert!(!verify_cdgj_mac(
            &key(),
            body.as_bytes(),
            b"10B87B1C3800640"
        ));
        assert!(!verify_cdgj_mac(&key(), body.as_bytes(), b""));
    }

    #[test]
    fn spec01_1001_response_mac_with_padding() {
        // 346 bytes: 21 whole blocks and 10 bytes padded with six 0x00.
        let body = crate::layout::tests::spec01_1001_response_body();
        assert_eq!(body.len(), 346);
        assert_eq!(cdgj_mac_hex(&key(), &body), "2320B0CE729FFA80");
    }

    #[test]
    fn padding_and_empty_input_match_openssl() {
        // Each expected value: the input zero-padded to 16 bytes by hand, then
        // openssl enc -sm4-cbc -nopad -K 0123456789abcdeffedcba9876543210
        //   -iv 00000000000000000000000000000000 | tail -c 16 | xxd -p -u | head -c 16
        // (OpenSSL 3.0.19).
        assert_eq!(cdgj_mac_hex(&key(), b"abc"), "9054FCCFF72871FD");
        // No padding block is added when the input is a whole number of blocks.
        let data: Vec<u8> = (0u8..32).collect();
        assert_eq!(cdgj_mac_hex(&key(), &data), "1DC1AFACD5E2D724");
        // Empty input is one zero block, the same as 16 zero bytes.
        assert_eq!(cdgj_mac_hex(&key(), b""), "2677F46B09C122CC");
        assert_eq!(cdgj_mac_hex(&key(), &[0u8; 16]), "2677F46B09C122CC");
    }
}
