//! The MAC schemes of the partner specs, one function per scheme, on RustCrypto's `sm4` (see
//! DESIGN.md for why not `sm-crypto`).
//!
//! - `cdgj` (spec 01, 郴电国际): every body byte before the MAC, padded with 0x00 to a multiple of
//!   16 bytes (no padding when already a multiple), SM4-CBC with a zero IV; the first 8 bytes of
//!   the last cipher block, written as 16 uppercase hex characters.
//! - `iso9797_m2` (specs 02, 06, 11): the span the spec names, padded with 0x80 then 0x00 to a
//!   multiple of 16 (ISO/IEC 9797-1 method 2: at least one byte is always added), SM4-CBC with a zero
//!   IV; the whole last cipher block, written as 32 uppercase hex characters.
//! - `hmac_sm3_16` (spec 04): HMAC-SM3 (RFC 2104) over the body before the MAC; the first 16 bytes,
//!   written as 32 uppercase hex characters.
//! - `hmac_sm3_hex` (spec 07's `X-Signature`): the whole 32-byte HMAC-SM3 as 64 uppercase hex.
//!
//! Every `verify_*` accepts only the exact uppercase form its spec prescribes (lowercase is another
//! byte string on the wire) and compares in constant time.
//!
//! MACs are computed over the wire bytes exactly as sent or received, never over re-encoded or
//! trimmed text.

use crate::crypto::sm3;
use cipher::{generic_array::GenericArray, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit};
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

/// Specs 02, 06 and 11's MAC: ISO/IEC 9797-1 MAC algorithm 1 with padding method 2 and SM4. The
/// data is padded with 0x80 then 0x00 to a multiple of 16 (a whole block `80 00 .. 00` when it is
/// already aligned, so empty data is that block alone), encrypted with SM4-CBC under a zero IV; the
/// MAC is the whole last cipher block.
pub fn iso9797_m2_mac(key: &[u8; 16], data: &[u8]) -> [u8; 16] {
    let cipher = Sm4::new(key.into());
    let mut state = GenericArray::<u8, _>::default();
    let mut chunks = data.chunks_exact(BLOCK_BYTES);
    for chunk in &mut chunks {
        xor_into(&mut state, chunk);
        cipher.encrypt_block(&mut state);
    }
    // The remainder is shorter than a block, so the 0x80 always fits after it.
    let mut last = [0u8; BLOCK_BYTES];
    let tail = chunks.remainder().iter().chain(std::iter::once(&0x80u8));
    for (slot, byte) in last.iter_mut().zip(tail) {
        *slot = *byte;
    }
    xor_into(&mut state, &last);
    cipher.encrypt_block(&mut state);
    state.into()
}

/// Specs 02, 06 and 11's MAC as it goes on the wire: 32 uppercase hex characters.
pub fn iso9797_m2_mac_hex(key: &[u8; 16], data: &[u8]) -> String {
    hex::encode_upper(iso9797_m2_mac(key, data))
}

/// Checks the 32 MAC characters from the wire against `data` (uppercase only, constant time).
pub fn verify_iso9797_m2_mac(key: &[u8; 16], data: &[u8], mac_field: &[u8]) -> bool {
    constant_time_eq(iso9797_m2_mac_hex(key, data).as_bytes(), mac_field)
}

/// Spec 04's MAC: the first 16 bytes of HMAC-SM3 (any key length; spec 04 uses 32 bytes).
pub fn hmac_sm3_16(key: &[u8], data: &[u8]) -> [u8; 16] {
    let full = sm3::hmac(key, data);
    let mut mac = [0u8; 16];
    for (slot, byte) in mac.iter_mut().zip(full.iter()) {
        *slot = *byte;
    }
    mac
}

/// Spec 04's MAC as it goes on the wire: 32 uppercase hex characters.
pub fn hmac_sm3_16_hex(key: &[u8], data: &[u8]) -> String {
    hex::encode_upper(hmac_sm3_16(key, data))
}

/// Checks spec 04's 32 MAC characters from the wire (uppercase only, constant time).
pub fn verify_hmac_sm3_16(key: &[u8], data: &[u8], mac_field: &[u8]) -> bool {
    constant_time_eq(hmac_sm3_16_hex(key, data).as_bytes(), mac_field)
}

/// Spec 07's `X-Signature`: the whole HMAC-SM3 as 64 uppercase hex characters. The caller builds
/// `data` as the spec says (client id LF timestamp LF nonce LF body bytes exactly as sent).
pub fn hmac_sm3_hex(key: &[u8], data: &[u8]) -> String {
    hex::encode_upper(sm3::hmac(key, data))
}

/// Checks a spec 07 `X-Signature` value (uppercase only, constant time).
pub fn verify_hmac_sm3_hex(key: &[u8], data: &[u8], signature_field: &[u8]) -> bool {
    constant_time_eq(hmac_sm3_hex(key, data).as_bytes(), signature_field)
}

fn xor_into(state: &mut [u8], data: &[u8]) {
    for (slot, byte) in state.iter_mut().zip(data) {
        *slot ^= *byte;
    }
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

    // ---- the new schemes: the partner specs' worked examples, byte for byte ----

    /// A field as the fixed-length specs write it: GBK bytes, left-aligned, space-padded to
    /// `width` BYTES.
    fn field(value: &str, width: usize) -> Vec<u8> {
        let mut bytes = crate::text::encode(value, crate::text::Charset::Gbk).expect("GBK");
        assert!(bytes.len() <= width, "{value} wider than {width}");
        bytes.resize(width, b' ');
        bytes
    }

    fn concat(fields: &[Vec<u8>]) -> Vec<u8> {
        fields.concat()
    }

    fn key16(hex_text: &str) -> [u8; 16] {
        parse_key_hex(hex_text).expect("spec key")
    }

    /// Spec 02's worked example: the 201 sign request of the 新晃 instance, built field by field
    /// from the spec's tables.
    fn spec02_201_frame_before_mac() -> Vec<u8> {
        let header = concat(&[
            field("201", 3),
            field("431227", 6),
            field("080101", 6),
            field("T0801001", 8),
            field("1", 1),
            field("20261202", 8),
            field("093015", 6),
            field("HB2612020000000017", 18),
            field("", 3),
            field("", 30),
        ]);
        assert_eq!(header.len(), 89);
        let body = concat(&[
            field("0800123456", 10),
            field("张三", 40),
            field("6230901234567890123", 32),
            field("张三", 40),
            field("01", 2),
            field("431227199003150016", 20),
            field("13900001111", 11),
        ]);
        assert_eq!(body.len(), 155);
        let mut frame = b"0276".to_vec();
        frame.extend_from_slice(&header);
        frame.extend_from_slice(&body);
        assert_eq!(frame.len(), 248);
        frame
    }

    #[test]
    fn spec02_worked_example_201() {
        let key = key16("00112233445566778899AABBCCDDEEFF");
        let frame = spec02_201_frame_before_mac();
        // The spec's last input block: the final 8 bytes "00001111", then 80 00 .. 00.
        assert_eq!(
            frame.get(240..).map(hex::encode),
            Some("3030303031313131".to_string())
        );
        assert_eq!(
            iso9797_m2_mac_hex(&key, &frame),
            "AB34326DCF7230C08E799B5E5B443CE3"
        );
        assert!(verify_iso9797_m2_mac(
            &key,
            &frame,
            b"AB34326DCF7230C08E799B5E5B443CE3"
        ));
        assert!(!verify_iso9797_m2_mac(
            &key,
            &frame,
            b"ab34326dcf7230c08e799b5e5b443ce3"
        ));
        // The whole frame as the spec prints it: our bytes and then the MAC.
        let printed = "0276201431227080101T0801001120261202093015HB2612020000000017                                 0800123456张三                                    6230901234567890123             张三                                    01431227199003150016  13900001111AB34326DCF7230C08E799B5E5B443CE3";
        let mut full = frame.clone();
        full.extend_from_slice(b"AB34326DCF7230C08E799B5E5B443CE3");
        assert_eq!(
            crate::text::encode(printed, crate::text::Charset::Gbk).expect("GBK"),
            full
        );
        assert_eq!(full.len(), 280);
    }

    #[test]
    fn spec11_worked_example_302() {
        let key = key16("0F1E2D3C4B5A69788796A5B4C3D2E1F0");
        let mut frame = b"0177".to_vec();
        frame.extend_from_slice(&concat(&[
            field("302", 3),
            field("431221", 6),
            field("120301", 6),
            field("SJ000001", 8),
            field("4", 1),
            field("20261202", 8),
            field("183012", 6),
            field("ZF2612020000000031", 18),
            field("", 3),
            field("", 30),
            field("RQ2019004567", 12),
            field("000000126.40", 12),
            field("6230901100000000021", 32),
        ]));
        assert_eq!(frame.len(), 149);
        assert_eq!(
            frame.get(144..).map(hex::encode),
            Some("2020202020".to_string())
        );
        assert_eq!(
            iso9797_m2_mac_hex(&key, &frame),
            "E3076851669EF1B85B7D6C5FD4A565AC"
        );
        assert!(verify_iso9797_m2_mac(
            &key,
            &frame,
            b"E3076851669EF1B85B7D6C5FD4A565AC"
        ));
    }

    /// Spec 06's worked example: the 2001 answer of the 临湘 bureau, `|`-enclosed fixed-width
    /// fields (response header, then AcctType, Amount, SupAcctNo, SupAcctName, BuyerName,
    /// ProjectName). 宋文珅 contains the byte 0x7C as a GBK trail byte.
    fn spec06_2001_mac_input() -> Vec<u8> {
        let fields = [
            field("2001", 4),
            field("0000", 4),
            field("成功", 60),
            field("H20261202000000000321", 30),
            field("PT202612020000004567", 20),
            field("2026-12-02", 10),
            field("0", 1),
            field("58000000", 15),
            field("8201000087654321", 32),
            field("湘北安居置业有限公司预售资金监管专户", 150),
            field("宋文珅", 60),
            field("桃林湾小区二期", 128),
        ];
        let mut input = b"|".to_vec();
        for value in fields {
            input.extend_from_slice(&value);
            input.push(b'|');
        }
        input
    }

    #[test]
    fn spec06_worked_example_2001_answer() {
        let key = key16("36BC2571E49910B8EC35D60FD55A0D60");
        let input = spec06_2001_mac_input();
        assert_eq!(input.len(), 527);
        assert_eq!(
            iso9797_m2_mac_hex(&key, &input),
            "AE5489EF7292D8DD99B14C8AE708DF3A"
        );
        // The spec's hex dump of the whole 566-byte frame: "000560", our input, the MAC, "|".
        let dump = "3030303536307C323030317C303030307CB3C9B9A620202020202020202020202020202020202020202020202020202020202020202020202020202020202020\
202020202020202020202020207C4832303236313230323030303030303030303332312020202020202020207C50543230323631323032303030303030343536\
377C323032362D31322D30327C307C3538303030303030202020202020207C38323031303030303837363534333231202020202020202020202020202020207C\
CFE6B1B1B0B2BED3D6C3D2B5D3D0CFDEB9ABCBBED4A4CADBD7CABDF0BCE0B9DCD7A8BBA720202020202020202020202020202020202020202020202020202020\
20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020\
202020202020202020202020202020202020202020207CCBCECEC4AB7C2020202020202020202020202020202020202020202020202020202020202020202020\
202020202020202020202020202020202020207CCCD2C1D6CDE5D0A1C7F8B6FEC6DA202020202020202020202020202020202020202020202020202020202020\
20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020\
20202020202020202020202020202020202020207C41453534383945463732393244384444393942313443384145373038444633417C";
        let mut frame = b"000560".to_vec();
        frame.extend_from_slice(&input);
        frame.extend_from_slice(b"AE5489EF7292D8DD99B14C8AE708DF3A|");
        assert_eq!(frame.len(), 566);
        assert_eq!(hex::encode_upper(&frame), dump);
        assert!(verify_iso9797_m2_mac(
            &key,
            &input,
            b"AE5489EF7292D8DD99B14C8AE708DF3A"
        ));
    }

    #[test]
    fn spec04_worked_example_2002() {
        let key = crate::crypto::parse_hex(
            "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
        )
        .expect("spec key");
        let body = concat(&[
            field("2002", 4),
            field("0", 1),
            field("YX0001", 6),
            field("050201", 6),
            field("SJ000001", 8),
            field("SJ", 2),
            field("20261202", 8),
            field("193005", 6),
            field("YX202612021930050042", 20),
            field("", 2),
            field("", 40),
            field("YX2019000123", 12),
            field("JB0001", 6),
            field("012", 3),
            field("0000031200", 10),
            field("6230901234567890123", 32),
        ]);
        assert_eq!(body.len(), 166);
        assert_eq!(
            hmac_sm3_16_hex(&key, &body),
            "0F378AF42BBF2B8DE2704063988868DE"
        );
        assert!(verify_hmac_sm3_16(
            &key,
            &body,
            b"0F378AF42BBF2B8DE2704063988868DE"
        ));
        // The body as the spec prints it (MAC included) and its length prefix 00 00 00 C6.
        let printed = "20020YX0001050201SJ000001SJ20261202193005YX202612021930050042                                          YX2019000123JB000101200000312006230901234567890123             0F378AF42BBF2B8DE2704063988868DE";
        let mut full = body.clone();
        full.extend_from_slice(b"0F378AF42BBF2B8DE2704063988868DE");
        assert_eq!(printed.as_bytes(), &full[..]);
        assert_eq!(
            u32::try_from(full.len()).map(u32::to_be_bytes),
            Ok([0, 0, 0, 0xC6])
        );
    }

    /// Spec 07's request body, exactly the lines shown, each ending LF.
    const SPEC07_BODY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Request>
  <Head><TxCode>INV01</TxCode><ReqSerial>MBP202612020000000042</ReqSerial><ReqTime>20261202103015</ReqTime><TaxpayerId>91430321MA4T8K5Q0B</TaxpayerId><KpdCode>KP01</KpdCode></Head>
  <Body>
    <InvoiceKind>026</InvoiceKind><IssueMode>2</IssueMode>
    <BuyerName>湘潭市雨湖区青松文具店</BuyerName><BuyerTaxId>92430302MA4P6L2W1C</BuyerTaxId>
    <BuyerAddrTel></BuyerAddrTel><BuyerBankAcct></BuyerBankAcct><BuyerEmail>shop@example.com</BuyerEmail><BuyerMobile></BuyerMobile>
    <Drawer>刘佳</Drawer><Payee></Payee><Reviewer></Reviewer><Remark>柜面汇总开具</Remark>
    <TotalAmount>27.25</TotalAmount><TotalTax>1.63</TotalTax><TotalWithTax>28.88</TotalWithTax>
    <Lines>
      <Line><LineNo>1</LineNo><SrcRef>20261202:C202612020000000118</SrcRef><ItemName>*金融服务*结算手续费</ItemName><TaxCode>3060200000000000000</TaxCode><WithTax>5.00</WithTax><Amount>4.72</Amount><TaxRate>0.06</TaxRate><Tax>0.28</Tax><ZeroRateFlag></ZeroRateFlag></Line>
      <Line><LineNo>2</LineNo><SrcRef>20261202:C202612020000000128</SrcRef><ItemName>*金融服务*结算手续费</ItemName><TaxCode>3060200000000000000</TaxCode><WithTax>23.88</WithTax><Amount>22.53</Amount><TaxRate>0.06</TaxRate><Tax>1.35</Tax><ZeroRateFlag></ZeroRateFlag></Line>
    </Lines>
  </Body>
</Request>
"#;

    #[test]
    fn spec07_worked_example_x_signature() {
        let secret = crate::crypto::parse_hex(
            "53FC7FC7B2CBDA39F0688E132835CD4A515EBF7005168AA8105232E84249210B",
        )
        .expect("spec secret");
        assert_eq!(SPEC07_BODY.len(), 1342);
        let signed =
            format!("MBP01\n20261202103015\n09466e9d775b755f3d0637687fb236b5\n{SPEC07_BODY}");
        assert_eq!(signed.len(), 1396);
        let expected = "C3AF934500F483F91D49D7207458A8C090A2726CFBDB3284479E869506F261EF";
        assert_eq!(hmac_sm3_hex(&secret, signed.as_bytes()), expected);
        assert!(verify_hmac_sm3_hex(
            &secret,
            signed.as_bytes(),
            expected.as_bytes()
        ));
        assert!(!verify_hmac_sm3_hex(
            &secret,
            signed.as_bytes(),
            expected.to_lowercase().as_bytes()
        ));
    }

    #[test]
    fn iso9797_m2_padding_matches_openssl() {
        // Each expected value: the input padded by hand (80 then 00 to 16n), then
        // openssl enc -sm4-cbc -nopad -K 0123456789abcdeffedcba9876543210
        //   -iv 00000000000000000000000000000000 | tail -c 16 | xxd -p -u   (OpenSSL 3.0.19)
        // "abc" -> 616263 80 00..00 (one block)
        assert_eq!(
            iso9797_m2_mac_hex(&key(), b"abc"),
            "D0249FA9996014E6F3C50F9613B6EB5E"
        );
        // 16 bytes 00..0f -> a whole extra block 80 00..00
        let sixteen: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            iso9797_m2_mac_hex(&key(), &sixteen),
            "6001C40D2A75DA5494074C5B48A5579C"
        );
        // 15 bytes 00..0e -> 00..0e 80 (one block)
        assert_eq!(
            iso9797_m2_mac_hex(&key(), &sixteen[..15]),
            "742D351D1AA3523BAFD5832D30295F5D"
        );
        // empty -> 80 00..00
        assert_eq!(
            iso9797_m2_mac_hex(&key(), b""),
            "8C338E5A27E349BEAE39214FEDA97099"
        );
    }

    #[test]
    fn hmac_sm3_16_is_the_start_of_openssls_hmac() {
        // printf 'abc' | openssl mac -digest SM3 -macopt hexkey:0102030405060708090a0b0c0d0e0f10 HMAC
        //   = A673F5905A6F786CCCEAD2C394198D6716FE523F3C70DA9ADFDB8ABB2DA88345 (OpenSSL 3.0.19)
        let key: Vec<u8> = (1u8..=16).collect();
        assert_eq!(
            hmac_sm3_16_hex(&key, b"abc"),
            "A673F5905A6F786CCCEAD2C394198D67"
        );
        assert_eq!(
            hmac_sm3_hex(&key, b"abc"),
            "A673F5905A6F786CCCEAD2C394198D6716FE523F3C70DA9ADFDB8ABB2DA88345"
        );
    }

    /// Flips every bit of the data and every bit of the MAC field in turn: each must fail.
    fn assert_every_bit_flip_fails(
        data: &[u8],
        mac_field: &[u8],
        verify: &dyn Fn(&[u8], &[u8]) -> bool,
    ) {
        assert!(verify(data, mac_field), "the untouched message must verify");
        for index in 0..data.len() {
            for bit in 0..8 {
                let mut flipped = data.to_vec();
                if let Some(byte) = flipped.get_mut(index) {
                    *byte ^= 1 << bit;
                }
                assert!(!verify(&flipped, mac_field), "data byte {index} bit {bit}");
            }
        }
        for index in 0..mac_field.len() {
            for bit in 0..8 {
                let mut flipped = mac_field.to_vec();
                if let Some(byte) = flipped.get_mut(index) {
                    *byte ^= 1 << bit;
                }
                assert!(!verify(data, &flipped), "MAC byte {index} bit {bit}");
            }
        }
        // Truncated, extended and empty MAC fields.
        assert!(!verify(data, mac_field.get(1..).unwrap_or_default()));
        assert!(!verify(data, &[mac_field, b"0"].concat()));
        assert!(!verify(data, b""));
    }

    #[test]
    fn any_single_bit_flip_is_rejected_by_every_scheme() {
        let message = b"0121201431227080101T08010011202612020930";
        let sm4_key = key();
        assert_every_bit_flip_fails(
            message,
            cdgj_mac_hex(&sm4_key, message).as_bytes(),
            &|data, mac| verify_cdgj_mac(&sm4_key, data, mac),
        );
        assert_every_bit_flip_fails(
            message,
            iso9797_m2_mac_hex(&sm4_key, message).as_bytes(),
            &|data, mac| verify_iso9797_m2_mac(&sm4_key, data, mac),
        );
        let hmac_key: Vec<u8> = (0u8..32).collect();
        assert_every_bit_flip_fails(
            message,
            hmac_sm3_16_hex(&hmac_key, message).as_bytes(),
            &|data, mac| verify_hmac_sm3_16(&hmac_key, data, mac),
        );
        assert_every_bit_flip_fails(
            message,
            hmac_sm3_hex(&hmac_key, message).as_bytes(),
            &|data, mac| verify_hmac_sm3_hex(&hmac_key, data, mac),
        );
    }
}
