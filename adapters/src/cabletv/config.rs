//! Configuration of the one cable TV instance (`[[cabletv]]`): where the cable company listens,
//! the BankCode and its MAC key, the two accounts, and the link's timings (the spec's by default).

use std::fmt;

use serde::Deserialize;

use super::link::LinkSettings;
use crate::spi::{mask, AdapterError};

/// Upper bound of any timing: a longer wait only holds a payment in doubt for longer.
const MAX_MS: u64 = 600_000;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CableTvConfig {
    /// BankCode `YX0001` (AN 6).
    pub bank_code: String,
    /// The cable company listens, the bank connects and keeps the one link.
    pub host: String,
    pub port: u16,
    /// HMAC-SM3 key, 64 hex digits. Never logged: `Debug` hides it.
    pub mac_key_hex: String,
    /// Collection suspense account (core class I).
    pub suspense_account: String,
    /// The cable company's settlement account.
    pub settlement_account: String,
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// 2002 and 3001 (spec: 15 s).
    #[serde(default = "defaults::money_timeout_ms")]
    pub money_timeout_ms: u64,
    /// Every other request (spec: 10 s).
    #[serde(default = "defaults::other_timeout_ms")]
    pub other_timeout_ms: u64,
    /// Send 0000 after this much sending silence (spec: 30 s).
    #[serde(default = "defaults::heartbeat_idle_ms")]
    pub heartbeat_idle_ms: u64,
    /// Close the link after this much receiving silence (spec: 90 s).
    #[serde(default = "defaults::receive_idle_ms")]
    pub receive_idle_ms: u64,
    /// Reconnect delays, the last repeating (spec: 1, 2, 4, 8, 16, 30 s).
    #[serde(default = "defaults::backoff_ms")]
    pub backoff_ms: Vec<u64>,
}

mod defaults {
    pub fn connect_timeout_ms() -> u64 {
        3_000
    }
    pub fn money_timeout_ms() -> u64 {
        15_000
    }
    pub fn other_timeout_ms() -> u64 {
        10_000
    }
    pub fn heartbeat_idle_ms() -> u64 {
        30_000
    }
    pub fn receive_idle_ms() -> u64 {
        90_000
    }
    pub fn backoff_ms() -> Vec<u64> {
        vec![1_000, 2_000, 4_000, 8_000, 16_000, 30_000]
    }
}

impl fmt::Debug for CableTvConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CableTvConfig")
            .field("bank_code", &self.bank_code)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("mac_key_hex", &"***")
            .field("suspense_account", &mask(&self.suspense_account))
            .field("settlement_account", &mask(&self.settlement_account))
            .field("money_timeout_ms", &self.money_timeout_ms)
            .field("other_timeout_ms", &self.other_timeout_ms)
            .finish()
    }
}

impl CableTvConfig {
    /// Checks every field; returns the 32-byte key.
    pub fn validate(&self) -> Result<Vec<u8>, AdapterError> {
        let bad = |field: &'static str, reason: &str| AdapterError::Config {
            field,
            reason: reason.to_string(),
        };
        if self.bank_code.is_empty()
            || self.bank_code.len() > 6
            || !self.bank_code.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(bad("bank_code", "须为1至6位字母或数字"));
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
        for (field, ms) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("money_timeout_ms", self.money_timeout_ms),
            ("other_timeout_ms", self.other_timeout_ms),
            ("heartbeat_idle_ms", self.heartbeat_idle_ms),
            ("receive_idle_ms", self.receive_idle_ms),
        ] {
            if ms == 0 || ms > MAX_MS {
                return Err(bad(field, "须在1至600000毫秒之间"));
            }
        }
        if self.backoff_ms.is_empty() || self.backoff_ms.iter().any(|&ms| ms == 0 || ms > MAX_MS) {
            return Err(bad("backoff_ms", "须为1至600000毫秒的非空列表"));
        }
        let key = hex::decode(&self.mac_key_hex)
            .map_err(|_| AdapterError::Key("mac_key_hex 须为64位十六进制".into()))?;
        if key.len() != 32 {
            return Err(AdapterError::Key("mac_key_hex 须为64位十六进制".into()));
        }
        Ok(key)
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn link_settings(&self) -> LinkSettings {
        LinkSettings {
            connect_timeout_ms: self.connect_timeout_ms,
            heartbeat_idle_ms: self.heartbeat_idle_ms,
            receive_idle_ms: self.receive_idle_ms,
            money_timeout_ms: self.money_timeout_ms,
            other_timeout_ms: self.other_timeout_ms,
            backoff_ms: self.backoff_ms.clone(),
            ..LinkSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
bank_code = "YX0001"
host = "10.20.0.8"
port = 7004
mac_key_hex = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
suspense_account = "9004100000000001"
settlement_account = "9004200000000001"
"#;

    #[test]
    fn defaults_are_the_spec_timings_and_the_key_stays_hidden() {
        let config: CableTvConfig = toml::from_str(MINIMAL).unwrap();
        let key = config.validate().unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(key[31], 0x1F);
        let settings = config.link_settings();
        assert_eq!(settings.money_timeout_ms, 15_000);
        assert_eq!(settings.other_timeout_ms, 10_000);
        assert_eq!(settings.heartbeat_idle_ms, 30_000);
        assert_eq!(settings.receive_idle_ms, 90_000);
        assert_eq!(
            settings.backoff_ms,
            [1_000, 2_000, 4_000, 8_000, 16_000, 30_000]
        );
        assert_eq!(settings.max_in_flight, 32);
        assert_eq!(config.addr(), "10.20.0.8:7004");
        assert!(!format!("{config:?}").contains("0102030405"));
    }

    #[test]
    fn bad_fields_are_refused() {
        let base: CableTvConfig = toml::from_str(MINIMAL).unwrap();
        let mut short_key = base.clone();
        short_key.mac_key_hex = "0011".into();
        assert_eq!(
            short_key.validate().err().map(|e| e.code()),
            Some("ADP_KEY")
        );
        let mut long_code = base.clone();
        long_code.bank_code = "YX00001".into();
        assert!(long_code.validate().is_err());
        let mut no_backoff = base.clone();
        no_backoff.backoff_ms.clear();
        assert!(no_backoff.validate().is_err());
        let mut account = base;
        account.suspense_account = "9004-1".into();
        assert!(account.validate().is_err());
    }
}
