//! Configuration of one instance of a fixed-length partner: where it is, its CompanyCode, its key
//! and accounts. The protocol itself is the profile's; this is what differs per instance.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::profile::{Operation, Profile, MAX_ANSWER_TIMEOUT_MS};
use crate::spi::{mask, AdapterError};

/// Specs 02/11: connect 3 s.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_000;

/// An example instance (spec 02's 新晃); a test parses it.
pub const EXAMPLE_TOML: &str = r#"
instance = "water-xinhuang"
profile_builtin = "water"
company_code = "431227"
host = "10.20.30.40"
port = 9102
mac_key_hex = "00112233445566778899AABBCCDDEEFF"
suspense_account = "43122700100100000001"
settlement_account = "43122700100100000099"
connect_timeout_ms = 3000
"#;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedLenConfig {
    /// The instance name (`water-jiahe`).
    pub instance: String,
    /// A built-in profile (`water`); exactly one of this and `profile_file`.
    #[serde(default)]
    pub profile_builtin: Option<String>,
    /// A profile file loaded at run time (`deploy/partners/<name>.toml`).
    #[serde(default)]
    pub profile_file: Option<PathBuf>,
    /// The CompanyCode the partner assigned; also the core Purpose of every posting.
    pub company_code: String,
    /// The partner listens, the bank connects.
    pub host: String,
    pub port: u16,
    /// SM4 MAC key, 32 hex digits. Never logged: `Debug` hides it.
    pub mac_key_hex: String,
    /// 代收过渡户 of this instance.
    pub suspense_account: String,
    /// The partner's settlement account at this bank.
    pub settlement_account: String,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Overrides every trade's answer timeout (the demo runs short ones).
    #[serde(default)]
    pub answer_timeout_ms: Option<u64>,
    /// Overrides per operation (`query`, `pay`, `prepay`, `reverse`, `status`); wins over
    /// `answer_timeout_ms`.
    #[serde(default)]
    pub answer_timeouts_ms: BTreeMap<String, u64>,
    /// Folder the daily files are dropped into.
    #[serde(default)]
    pub file_dir: Option<PathBuf>,
}

fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}

impl fmt::Debug for FixedLenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedLenConfig")
            .field("instance", &self.instance)
            .field("profile_builtin", &self.profile_builtin)
            .field("profile_file", &self.profile_file)
            .field("company_code", &self.company_code)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("mac_key_hex", &"<hidden>")
            .field("suspense_account", &mask(&self.suspense_account))
            .field("settlement_account", &mask(&self.settlement_account))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("answer_timeout_ms", &self.answer_timeout_ms)
            .field("answer_timeouts_ms", &self.answer_timeouts_ms)
            .field("file_dir", &self.file_dir)
            .finish()
    }
}

impl FixedLenConfig {
    /// Parses one instance's TOML.
    pub fn from_toml(text: &str) -> Result<FixedLenConfig, AdapterError> {
        toml::from_str(text).map_err(|e| AdapterError::Config {
            field: "toml",
            // The TOML error may quote the key's line: say where only.
            reason: match e.span() {
                Some(span) => format!("无法解析（字节 {}..{}）", span.start, span.end),
                None => "无法解析".to_string(),
            },
        })
    }

    /// Loads the profile this instance names.
    pub fn load_profile(&self) -> Result<Profile, AdapterError> {
        match (&self.profile_builtin, &self.profile_file) {
            (Some(name), None) => Profile::builtin(name),
            (None, Some(path)) => Profile::load(path),
            _ => Err(AdapterError::Config {
                field: "profile_builtin",
                reason: "须且只须配置profile_builtin与profile_file之一".into(),
            }),
        }
    }

    /// Checks every field against the profile and returns the MAC key.
    pub fn validate(&self, profile: &Profile) -> Result<[u8; 16], AdapterError> {
        let bad = |field: &'static str, reason: &str| AdapterError::Config {
            field,
            reason: reason.to_string(),
        };
        if self.instance.trim().is_empty() {
            return Err(bad("instance", "不能为空"));
        }
        let width = profile
            .header_layout()
            .ok()
            .and_then(|layout| {
                layout.items.iter().find_map(|item| match item {
                    codecs::layout::Item::Field(field)
                        if field.name == profile.header.company_code =>
                    {
                        Some(field.len)
                    }
                    _ => None,
                })
            })
            .unwrap_or(0);
        if self.company_code.len() != width
            || !self.company_code.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(bad("company_code", "长度或字符与协议不符"));
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
        let mut timeouts = vec![("connect_timeout_ms", self.connect_timeout_ms)];
        if let Some(timeout_ms) = self.answer_timeout_ms {
            timeouts.push(("answer_timeout_ms", timeout_ms));
        }
        for (name, timeout_ms) in &self.answer_timeouts_ms {
            if !Operation::ALL.iter().any(|op| op.name() == name) {
                return Err(bad(
                    "answer_timeouts_ms",
                    "键须为query/pay/prepay/reverse/status",
                ));
            }
            timeouts.push(("answer_timeouts_ms", *timeout_ms));
        }
        for (field, timeout_ms) in timeouts {
            if timeout_ms == 0 || timeout_ms > MAX_ANSWER_TIMEOUT_MS {
                return Err(bad(field, "须在1至600000毫秒之间"));
            }
        }
        codecs::mac::parse_key_hex(&self.mac_key_hex)
            .map_err(|e| AdapterError::Key(e.message_zh().to_string()))
    }

    /// The answer timeout of one operation: per-operation override, then the global override,
    /// then the profile's.
    pub fn answer_timeout_ms(&self, operation: Operation, profile_ms: u64) -> u64 {
        self.answer_timeouts_ms
            .get(operation.name())
            .copied()
            .or(self.answer_timeout_ms)
            .unwrap_or(profile_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_validates_against_the_water_profile() {
        let config = FixedLenConfig::from_toml(EXAMPLE_TOML).expect("example parses");
        let profile = config.load_profile().expect("profile");
        let key = config.validate(&profile).expect("valid");
        assert_eq!(key[0], 0x00);
        assert_eq!(key[15], 0xFF);
        assert_eq!(config.answer_timeout_ms(Operation::Pay, 20_000), 20_000);
    }

    #[test]
    fn debug_hides_the_key_and_masks_accounts() {
        let config = FixedLenConfig::from_toml(EXAMPLE_TOML).expect("example parses");
        let text = format!("{config:?}");
        assert!(!text.contains("00112233445566778899AABBCCDDEEFF"), "{text}");
        assert!(!text.contains("43122700100100000001"), "{text}");
        assert!(text.contains("4312************0001"), "{text}");
    }

    #[test]
    fn bad_instances_are_refused() {
        let profile = Profile::builtin("water").expect("water");
        let base = FixedLenConfig::from_toml(EXAMPLE_TOML).expect("example parses");
        let mut wrong_code = base.clone();
        wrong_code.company_code = "43122".into();
        assert_eq!(
            wrong_code.validate(&profile).err().map(|e| e.code()),
            Some("ADP_CONFIG")
        );
        let mut bad_key = base.clone();
        bad_key.mac_key_hex = "0011".into();
        assert_eq!(
            bad_key.validate(&profile).err().map(|e| e.code()),
            Some("ADP_KEY")
        );
        let mut both = base.clone();
        both.profile_file = Some("x.toml".into());
        assert!(both.load_profile().is_err());
        let mut overrides = base;
        overrides.answer_timeout_ms = Some(200);
        overrides.answer_timeouts_ms.insert("pay".into(), 300);
        assert_eq!(overrides.answer_timeout_ms(Operation::Pay, 20_000), 300);
        assert_eq!(overrides.answer_timeout_ms(Operation::Query, 10_000), 200);
        overrides.answer_timeouts_ms.insert("payment".into(), 300);
        assert!(overrides.validate(&profile).is_err());
    }
}
