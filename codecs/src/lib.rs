//! Pure codecs of the integration hub. Nothing here does I/O.
//!
//! | module | job |
//! |---|---|
//! | [`money`] | `Money`: integer fen, exact conversions to and from each protocol's form |
//! | [`text`] | strict GBK / GB18030 encoding and decoding, byte-width helpers |
//! | [`layout`] | fixed-length records driven by layout tables (N / AN / C fields, repeated groups) |
//! | [`frame`] | length-prefixed frames (N ASCII digits) as a tokio-util `Decoder`/`Encoder` |
//! | [`xml`] | GBK XML documents (the core banking gateway's `<Service>`) |
//! | [`mac`] | the MAC schemes of the partner specs, one function per scheme |
//! | [`mask`] | masking of personal data, one rule for logs, views and reports |
//! | [`delimited`] | `|`-separated daily-file lines, split after decoding |
//! | [`clock`] | the one injectable clock every component reads time from |
//! | [`crypto`] | 国密: SM3 / HMAC-SM3, SM4 (ECB, CBC), SM2, zeroizing `SecretBytes` |
pub mod clock;
pub mod crypto;
pub mod delimited;
pub mod frame;
pub mod layout;
pub mod mac;
pub mod mask;
pub mod money;
pub mod text;
pub mod xml;

pub use money::Money;
