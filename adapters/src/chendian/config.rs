//! Configuration of one 郴电国际 instance (one per legal-entity bank), as the spec's Rules list it.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::spi::{mask, AdapterError};

/// The spec's connect timeout (3 s).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_000;
/// The spec's answer timeout (15 s).
pub const DEFAULT_ANSWER_TIMEOUT_MS: u64 = 15_000;
/// Upper bound of either timeout: a longer wait only holds a payment in doubt for longer.
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// An example of this configuration; a test parses it.
pub const EXAMPLE_TOML: &str = include_str!("example.toml");

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChendianConfig {
    /// BankCode assigned by the power company (AN 8, e.g. `NSH43102`).
    pub bank_code: String,
    /// The power company's host; it listens, the bank connects.
    pub host: String,
    pub port: u16,
    /// SM4 MAC key, 32 hex digits. Never logged: `Debug` masks it. Requests are MACed with it.
    pub mac_key_hex: String,
    /// The next SM4 MAC key during a key change, 32 hex digits: answers whose MAC fails with the
    /// current key are tried with this one, so the partner may switch first. Never logged.
    #[serde(default)]
    pub mac_key_next_hex: Option<String>,
    /// 代收过渡户 of this BankCode.
    pub suspense_account: String,
    /// The power company's settlement account at this bank.
    pub settlement_account: String,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_answer_timeout_ms")]
    pub answer_timeout_ms: u64,
    /// Folder the daily files are dropped into.
    #[serde(default)]
    pub file_dir: Option<PathBuf>,
}

fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}

fn default_answer_timeout_ms() -> u64 {
    DEFAULT_ANSWER_TIMEOUT_MS
}

impl fmt::Debug for ChendianConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChendianConfig")
            .field("bank_code", &self.bank_code)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("mac_key_hex", &"<hidden>")
            .field(
                "mac_key_next_hex",
                &self.mac_key_next_hex.as_ref().map(|_| "<hidden>"),
            )
            .field("suspense_account", &mask(&self.suspense_account))
            .field("settlement_account", &mask(&self.settlement_account))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("answer_timeout_ms", &self.answer_timeout_ms)
            .field("file_dir", &self.file_dir)
            .finish()
    }
}

impl ChendianConfig {
    /// Parses a TOML document holding one instance.
    pub fn from_toml(text: &str) -> Result<ChendianConfig, AdapterError> {
        toml::from_str(text).map_err(|e| AdapterError::Config {
            field: "toml",
            // The TOML error quotes the offending line, which may be the key: say where only.
            reason: match e.span() {
                Some(span) => format!("无法解析（字节 {}..{}）", span.start, span.end),
                None => "无法解析".to_string(),
            },
        })
    }

    /// Checks every field and returns the parsed MAC key.
    pub fn validate(&self) -> Result<[u8; 16], AdapterError> {
        let bad = |field: &'static str, reason: &str| AdapterError::Config {
            field,
            reason: reason.to_string(),
        };
        if self.bank_code.is_empty()
            || self.bank_code.len() > 8
            || !self.bank_code.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(bad("bank_code", "须为1至8位字母或数字"));
        }
        if self.host.trim().is_empty() {
            return Err(bad("host", "不能为空"));
        }
        if self.port == 0 {
            return Err(bad("port", "不能为0"));
        }
        for (field, account) in [
            ("suspense_account", &self.suspense_account),
            ("settlement_account", &self.settlement_account),
        ] {
            if account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(field, "须为数字账号"));
            }
        }
        for (field, timeout_ms) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("answer_timeout_ms", self.answer_timeout_ms),
        ] {
            if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
                return Err(bad(field, "须在1至600000毫秒之间"));
            }
        }
        self.next_mac_key()?;
        // The MacError text never contains the key itself, only its shape.
        codecs::mac::parse_key_hex(&self.mac_key_hex).map_err(|_| {
            AdapterError::Key(format!(
                "{} 的 mac_key_hex 须为32位十六进制",
                self.bank_code
            ))
        })
    }

    /// The parsed next MAC key, when one is configured.
    pub fn next_mac_key(&self) -> Result<Option<[u8; 16]>, AdapterError> {
        let Some(hex) = &self.mac_key_next_hex else {
            return Ok(None);
        };
        codecs::mac::parse_key_hex(hex).map(Some).map_err(|_| {
            AdapterError::Key(format!(
                "{} 的 mac_key_next_hex 须为32位十六进制",
                self.bank_code
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_validates() {
        let config = ChendianConfig::from_toml(EXAMPLE_TOML).expect("example parses");
        assert_eq!(config.bank_code, "NSH43102");
        assert_eq!(config.port, 7001);
        assert_eq!(config.connect_timeout_ms, 3000);
        assert_eq!(config.answer_timeout_ms, 15000);
        let key = config.validate().expect("example validates");
        assert_eq!(key[0], 0x01);
        assert_eq!(key[15], 0x10);
    }

    #[test]
    fn timeouts_default_to_the_spec() {
        let text = "bank_code = \"NSH43102\"\nhost = \"h\"\nport = 1\n\
                    mac_key_hex = \"0123456789abcdeffedcba9876543210\"\n\
                    suspense_account = \"1\"\nsettlement_account = \"2\"\n";
        let config = ChendianConfig::from_toml(text).expect("parses");
        assert_eq!(config.connect_timeout_ms, 3000);
        assert_eq!(config.answer_timeout_ms, 15000);
        assert_eq!(config.file_dir, None);
        assert_eq!(config.mac_key_next_hex, None);
        assert_eq!(config.next_mac_key().ok(), Some(None));
    }

    #[test]
    fn next_key_parses_and_stays_hidden() {
        let text = "bank_code = \"NSH43102\"\nhost = \"h\"\nport = 1\n\
                    mac_key_hex = \"0123456789abcdeffedcba9876543210\"\n\
                    mac_key_next_hex = \"00112233445566778899AABBCCDDEEFF\"\n\
                    suspense_account = \"1\"\nsettlement_account = \"2\"\n";
        let config = ChendianConfig::from_toml(text).expect("parses");
        let next = config.next_mac_key().expect("valid").expect("present");
        assert_eq!(next[0], 0x00);
        assert_eq!(next[1], 0x11);
        assert_eq!(next[15], 0xFF);
        let shown = format!("{config:?}");
        assert!(!shown.to_uppercase().contains("00112233"));
        let mut bad = config.clone();
        bad.mac_key_next_hex = Some("0011".into());
        let error = bad.validate().expect_err("short next key refused");
        assert_eq!(error.code(), "ADP_KEY");
        assert!(error.to_string().contains("mac_key_next_hex"));
        assert!(!error.to_string().contains("0011"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let config = ChendianConfig::from_toml(EXAMPLE_TOML).expect("example parses");
        let shown = format!("{config:?}");
        assert!(!shown.contains("0123456789abcdef"));
        assert!(!shown.contains("43102000100100000001"));
        assert!(shown.contains("NSH43102"));
    }

    #[test]
    fn bad_fields_are_refused_with_codes() {
        let mut config = ChendianConfig::from_toml(EXAMPLE_TOML).expect("example parses");
        config.mac_key_hex = "0123".into();
        assert_eq!(config.validate().err().map(|e| e.code()), Some("ADP_KEY"));
        let mut config = ChendianConfig::from_toml(EXAMPLE_TOML).expect("example parses");
        config.bank_code = "NSH431020".into();
        assert_eq!(
            config.validate().err().map(|e| e.code()),
            Some("ADP_CONFIG")
        );
        let mut config = ChendianConfig::from_toml(EXAMPLE_TOML).expect("example parses");
        config.answer_timeout_ms = 0;
        assert_eq!(
            config.validate().err().map(|e| e.code()),
            Some("ADP_CONFIG")
        );
        assert!(ChendianConfig::from_toml("bank_code = 1").is_err());
    }
}
