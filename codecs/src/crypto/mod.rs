//! The national-crypto layer (国密) the adapters share: SM3 and HMAC-SM3, SM4 (ECB, CBC), SM2, and
//! secrets that zeroize themselves. Pure: no I/O, no logging. The partner MAC schemes built on these
//! live in [`crate::mac`].
//!
//! Every function returns a [`CryptoError`] instead of panicking, whatever the input. An error never
//! carries key material, plaintext or the text of a hex key: it says what was wrong, not the value.
//!
//! | module | job |
//! |---|---|
//! | [`sm3`] | SM3 digest (GB/T 32905) and HMAC-SM3 (RFC 2104, 64-byte block) |
//! | [`sm4`] | SM4 (GB/T 32907) single block, ECB and CBC with PKCS#7, zero or no padding |
//! | [`sm2`] | SM2 signatures, ZA, encryption in C1C3C2, keys from PEM / DER / hex |
//! | [`secret`] | `SecretBytes`: zeroized on drop, Debug shows a fingerprint only |

pub mod secret;
pub mod sm2;
pub mod sm3;
pub mod sm4;

/// A crypto failure. Never carries key material; every variant has a stable [`CryptoError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("key is {found} bytes, {expected} expected")]
    BadKeyLength { expected: usize, found: usize },
    /// What was wrong with the hex text, never the text itself (it may be a key).
    #[error("bad hex: {0}")]
    BadHex(String),
    #[error("IV is {found} bytes, 16 expected")]
    BadIvLength { found: usize },
    /// Not a whole number of blocks where one is required.
    #[error("{found} bytes is not a multiple of the 16-byte block")]
    BadDataLength { found: usize },
    #[error("bad padding")]
    BadPadding,
    #[error("bad PEM: {0}")]
    BadPem(String),
    #[error("bad DER: {0}")]
    BadDer(String),
    /// Not on the curve, the identity, or a bad encoding.
    #[error("bad public key: {0}")]
    BadPublicKey(String),
    /// 0 or >= n.
    #[error("bad private key: {0}")]
    BadPrivateKey(String),
    /// Malformed encoding, or r or s outside [1, n-1].
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// Well-formed but does not verify.
    #[error("signature does not verify")]
    VerifyFailed,
    /// Too short, C1 not on the curve, C3 mismatch: the text says which.
    #[error("bad ciphertext: {0}")]
    BadCiphertext(String),
    /// The OS random source failed. Nothing falls back to another source.
    #[error("OS random source failed: {0}")]
    Random(String),
}

impl CryptoError {
    /// Stable code for logs, metrics and the operator table.
    pub fn code(&self) -> &'static str {
        match self {
            CryptoError::BadKeyLength { .. } => "CRYPTO_BAD_KEY_LENGTH",
            CryptoError::BadHex(_) => "CRYPTO_BAD_HEX",
            CryptoError::BadIvLength { .. } => "CRYPTO_BAD_IV_LENGTH",
            CryptoError::BadDataLength { .. } => "CRYPTO_BAD_DATA_LENGTH",
            CryptoError::BadPadding => "CRYPTO_BAD_PADDING",
            CryptoError::BadPem(_) => "CRYPTO_BAD_PEM",
            CryptoError::BadDer(_) => "CRYPTO_BAD_DER",
            CryptoError::BadPublicKey(_) => "CRYPTO_BAD_PUBLIC_KEY",
            CryptoError::BadPrivateKey(_) => "CRYPTO_BAD_PRIVATE_KEY",
            CryptoError::BadSignature(_) => "CRYPTO_BAD_SIGNATURE",
            CryptoError::VerifyFailed => "CRYPTO_VERIFY_FAILED",
            CryptoError::BadCiphertext(_) => "CRYPTO_BAD_CIPHERTEXT",
            CryptoError::Random(_) => "CRYPTO_RANDOM",
        }
    }

    /// The operator's text for this kind of error.
    pub fn message_zh(&self) -> &'static str {
        match self {
            CryptoError::BadKeyLength { .. } => "密钥长度错误",
            CryptoError::BadHex(_) => "十六进制格式错误",
            CryptoError::BadIvLength { .. } => "初始向量(IV)长度错误，须为16字节",
            CryptoError::BadDataLength { .. } => "密文长度不是分组长度(16字节)的整数倍",
            CryptoError::BadPadding => "填充格式错误",
            CryptoError::BadPem(_) => "PEM格式错误",
            CryptoError::BadDer(_) => "DER编码错误",
            CryptoError::BadPublicKey(_) => "SM2公钥无效",
            CryptoError::BadPrivateKey(_) => "SM2私钥无效",
            CryptoError::BadSignature(_) => "SM2签名格式错误",
            CryptoError::VerifyFailed => "验签失败",
            CryptoError::BadCiphertext(_) => "SM2密文无效",
            CryptoError::Random(_) => "系统随机数源故障",
        }
    }
}

/// Hex to bytes: either case, an even number of digits, nothing else (no whitespace, no `0x`).
/// The error names the first offending position, never the text: the text may be a key.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, CryptoError> {
    if let Some((position, _)) = text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(CryptoError::BadHex(format!(
            "non-hex character at position {position}"
        )));
    }
    if !text.len().is_multiple_of(2) {
        return Err(CryptoError::BadHex(format!(
            "odd number of hex digits ({})",
            text.len()
        )));
    }
    hex::decode(text).map_err(|_| CryptoError::BadHex("not hex".to_string()))
}

/// Constant-time equality: the time depends on the lengths only, never on where bytes differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_hex_accepts_both_cases() {
        assert_eq!(parse_hex("00ffAB10"), Ok(vec![0x00, 0xff, 0xab, 0x10]));
        assert_eq!(parse_hex(""), Ok(vec![]));
    }

    #[test]
    fn parse_hex_refuses_anything_else_without_echoing_it() {
        for bad in ["0", "abc", "0g", " 00", "00 ", "0x00", "００", "一二"] {
            let error = parse_hex(bad).expect_err(bad);
            assert_eq!(error.code(), "CRYPTO_BAD_HEX");
        }
        let secret = "1234567890abcdefZZ";
        let text = parse_hex(secret).expect_err("bad").to_string();
        assert!(!text.contains("1234567890"), "{text}");
        assert_eq!(
            parse_hex("abZ0"),
            Err(CryptoError::BadHex(
                "non-hex character at position 2".to_string()
            ))
        );
    }

    #[test]
    fn codes_are_stable_and_distinct() {
        let all = [
            CryptoError::BadKeyLength {
                expected: 16,
                found: 3,
            },
            CryptoError::BadHex(String::new()),
            CryptoError::BadIvLength { found: 3 },
            CryptoError::BadDataLength { found: 3 },
            CryptoError::BadPadding,
            CryptoError::BadPem(String::new()),
            CryptoError::BadDer(String::new()),
            CryptoError::BadPublicKey(String::new()),
            CryptoError::BadPrivateKey(String::new()),
            CryptoError::BadSignature(String::new()),
            CryptoError::VerifyFailed,
            CryptoError::BadCiphertext(String::new()),
            CryptoError::Random(String::new()),
        ];
        let mut codes: Vec<&str> = all.iter().map(CryptoError::code).collect();
        assert_eq!(codes[10], "CRYPTO_VERIFY_FAILED");
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(all.iter().all(|e| !e.message_zh().is_empty()));
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    /// Spec 05's worked example (HX0307 request, centre -> bank): every symmetric value it states.
    /// The document is the spec's XML with the reading breaks removed, encoded as GBK.
    #[test]
    fn spec05_worked_example_symmetric_parts() {
        let document = concat!(
            r#"<?xml version="1.0" encoding="GBK"?><message>"#,
            r#"<head><field name="TxCode">HX0307</field><field name="SendNode">C43310</field><field name="ReceiveNode">B43311</field><field name="SendDate">20261202</field>"#,
            r#"<field name="SendTime">101502</field><field name="SendSeqNo">43310261202000000124</field><field name="TxUnitNo">433100000000000</field><field name="CustNo">GJJ4331001</field>"#,
            r#"<field name="OperNo">GJJ017</field></head>"#,
            r#"<body><field name="AcctNo">6230901234567890123</field><field name="AcctName">向明秀</field><field name="CertType">01</field><field name="CertNo">433101198807150028</field></body></message>"#,
        );
        let plaintext =
            crate::text::encode(document, crate::text::Charset::Gbk).expect("GBK document");
        assert_eq!(plaintext.len(), 606);

        let session_key = parse_hex("E0A6C25F6305EEFF95BBF07010580123").expect("K");
        let km = sm3::digest(&session_key);
        assert_eq!(
            hex::encode_upper(km),
            "88EBFC5BECBB398D2346D1C3CA0F56564BFF8D668E9D9CA208F333C859E68701"
        );
        let check = sm4::ecb_encrypt(&session_key, &[0u8; 16], sm4::Padding::None).expect("ECB");
        assert_eq!(
            check.get(..8).map(hex::encode_upper),
            Some("68FE71F57B963407".to_string())
        );

        // Header: node C43310, '0' encrypted, KeyId 26120201, one 0x00.
        let mut header = b"C433100".to_vec();
        header.extend_from_slice(b"26120201");
        header.push(0);
        assert_eq!(header.len(), 16);

        let iv = parse_hex("E261BDA469FFCA40A0B5C935A3C44F4C").expect("IV");
        let ciphertext =
            sm4::cbc_encrypt(&session_key, &iv, &plaintext, sm4::Padding::Pkcs7).expect("CBC");
        assert_eq!(ciphertext.len(), 608);
        let mut tagged = header.clone();
        tagged.extend_from_slice(&iv);
        tagged.extend_from_slice(&ciphertext);
        let tag = sm3::hmac(&km, &tagged);
        assert_eq!(
            hex::encode_upper(tag),
            "BD12EBF3C1827F9C380CCBAE473BD51383EB0243BD8145A3A767AE4047293575"
        );

        // The spec's 676-byte frame: header | length 0x290 | IV | C | T.
        let frame_hex = concat!(
            "4334333331303032363132303230310000000290E261BDA469FFCA40A0B5C935A3C44F4C653ADE0D7709D614CB9FE962C085F564FCAC3D2FC829915A2035F3D8",
            "E3DEE8330665D93502DFF2F714F7D2552D0E2F76B0C4C6F653D5C778E718706E77C92DE40858B68709AC4F6CECC28591C69FAD86455A49CE26C9C030DF6A16FF",
            "FD390F0E330BE21631CE71371F487F9DCBDBAC98B5A38DD2B1822C6F96A51513408D1A3857CCBD67295CF6CA9F6A7FBAD21747386A8B875F6AA62770C3CF87F2",
            "1648F1227A3200315046FA5B67501AD6DC12F8C14E002E5E854FD2EEE1F210138BB7A2DE8ACC8E1E595687E2D60B4233186E03964BDF8244481638BEF8EFF6D7",
            "DA1F5C14CA907384F260C73CC9A230DFB7438DE016A88F744F880C45797AB5CC834E6ED00E43FBA7F2D778CA9246845CC98497EBF992620D115F4AC4546F77C9",
            "2C2B7A636FADAA7D5FFBC24DBF1AE703C89C0C4A49773D3A1B0C10F19F4BD82A9997438B14D0AD502B6309CD7DC74E6F7F1A3FB2DC581A28F590614D3A857CC7",
            "C8B5BFCADA59348F79A0363815B369A654AB741D6CEB46C22F3FB43C012664B0332746D4B6C72550D352EF9B68CCED33D80AD0AAE5429C15125AC0D8B3000753",
            "AD872573FEDE8AE8E7686875126B12CD60840AEB299F16558DCE5A38537F614D26366208B5AE6A7F658FC45E54C2DE55AC1D39BA32AFAA07FCB73B9E2CF97EA7",
            "BF5C80A340E6F76F24648A7512C8D5F5B96D1AA7F7A55C39866FC2821BF250574D9A0A16930461A8F45C6E3E0445E09C7426B95B4044576C6688B542C6239A7F",
            "E5BB735AAD8275CDB0657CA66B2EF0B214A670ECF312C345B7B32C21F171A46AFFCB8A0E80F0B48A3BC6E2DC529A09F01F284F394C7E692ECC8B447D0602D509",
            "CF0781D6BD12EBF3C1827F9C380CCBAE473BD51383EB0243BD8145A3A767AE4047293575",
        );
        let frame = parse_hex(frame_hex).expect("frame hex");
        assert_eq!(frame.len(), 676);
        let mut ours = header;
        ours.extend_from_slice(&[0x00, 0x00, 0x02, 0x90]);
        ours.extend_from_slice(&iv);
        ours.extend_from_slice(&ciphertext);
        ours.extend_from_slice(&tag);
        assert_eq!(hex::encode_upper(&ours), frame_hex);

        // And back: the receiver's side decrypts the spec's C to the document.
        let spec_ciphertext = frame.get(36..644).expect("C");
        assert_eq!(
            sm4::cbc_decrypt(&session_key, &iv, spec_ciphertext, sm4::Padding::Pkcs7),
            Ok(plaintext)
        );
    }
}
