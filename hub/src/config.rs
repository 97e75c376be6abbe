//! The hub's TOML configuration. `deploy/hub.example.toml` is an example a test loads.

use std::path::{Path, PathBuf};

use adapters::chendian::ChendianConfig;
use serde::Deserialize;

use crate::core_client::CoreConfig;
use crate::engine::EngineConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    pub hub: HubSection,
    #[serde(default)]
    pub engine: EngineConfig,
    pub core: CoreConfig,
    /// One entry per 郴电国际 BankCode.
    #[serde(default)]
    pub chendian: Vec<ChendianConfig>,
    /// One entry per instance of a fixed-length partner defined by a profile (`[[fixedlen]]`).
    #[serde(default)]
    pub fixedlen: Vec<adapters::fixedlen::FixedLenConfig>,
    /// Key references per link, the master key of session keys (`[keys]`).
    #[serde(default)]
    pub keys: crate::keys::KeysConfig,
    /// One entry per 城乡居民医保 instance (spec 03, `[[medical]]`).
    #[serde(default)]
    pub medical: Vec<crate::medical::MedicalInstanceConfig>,
    /// `[tobacco]`: 岳阳烟草 (spec 09), absent when the bank does not collect for the bureau.
    #[serde(default)]
    pub tobacco: Option<TobaccoConfig>,
    /// `[[withholding]]`: fixed-length instances whose batch withholding `hub serve` polls for
    /// (spec 02: every 10 minutes 06:00–12:00).
    #[serde(default)]
    pub withholding: Vec<crate::batch::schedule::WithholdingConfig>,
    /// `[recon_schedule]`: `hub serve` reconciles and settles the previous day itself (absent:
    /// an operator or cron runs `hub recon`).
    #[serde(default)]
    pub recon_schedule: Option<crate::recon_schedule::ReconScheduleConfig>,
    /// `[[cabletv]]`: 攸县有线电视 (spec 04), one long link per BankCode.
    #[serde(default)]
    pub cabletv: Vec<adapters::cabletv::CableTvConfig>,
}

/// `[tobacco]`: the bureau's orders are kept and paid in the hub; payments are notified to it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TobaccoConfig {
    /// The bureau's AppId and bureauCode, `430600`.
    pub bureau_code: String,
    /// Our AppId and bankCode, `YYNS0001`.
    pub bank_code: String,
    /// The bureau's base URL (its notify endpoint is `/bank/v1/payment-notify` below it).
    pub bureau_base_url: String,
    /// The bank's SM2 private key, 64 hex digits.
    pub bank_private_key_hex: String,
    /// The bureau's SM2 public key, uncompressed point in hex (`04…`).
    pub bureau_public_key_hex: String,
    /// Tobacco collection suspense account (core class I).
    pub suspense_account: String,
    /// The bureau's settlement account.
    pub settlement_account: String,
    /// `[tobacco.tls]`: HTTPS to the bureau, trusting only its CA (absent: plain HTTP, tests).
    /// Its connect default is spec 09's 5 s; the whole exchange is bounded by
    /// `notify_timeout_ms` (10 s) on every request.
    #[serde(default)]
    pub tls: Option<crate::tls::PartnerTls>,
    /// Whole notification exchange (spec: 10 s); with `tls`, its `timeout_ms` also bounds it.
    #[serde(default = "default_tobacco_notify_timeout_ms")]
    pub notify_timeout_ms: u64,
    /// Real-time pause between polls of the notification outbox.
    #[serde(default = "default_tobacco_outbox_poll_ms")]
    pub outbox_poll_interval_ms: u64,
}

fn default_tobacco_notify_timeout_ms() -> u64 {
    10_000
}

fn default_tobacco_outbox_poll_ms() -> u64 {
    1_000
}

/// The private key never shows in logs or Debug output.
impl std::fmt::Debug for TobaccoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TobaccoConfig")
            .field("bureau_code", &self.bureau_code)
            .field("bank_code", &self.bank_code)
            .field("bureau_base_url", &self.bureau_base_url)
            .field("bank_private_key_hex", &"***")
            .field("bureau_public_key_hex", &self.bureau_public_key_hex)
            .field(
                "suspense_account",
                &codecs::mask::mask_account(&self.suspense_account),
            )
            .field(
                "settlement_account",
                &codecs::mask::mask_account(&self.settlement_account),
            )
            .field("tls", &self.tls)
            .field("notify_timeout_ms", &self.notify_timeout_ms)
            .field("outbox_poll_interval_ms", &self.outbox_poll_interval_ms)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSection {
    /// sqlx URL of the journal, e.g. `sqlite://var/hub.db`.
    pub database_url: String,
    /// Channel API listener, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Where partners' and the core's daily files arrive.
    pub file_dir: PathBuf,
    /// Where reconciliation reports are written.
    pub report_dir: PathBuf,
    #[serde(default = "default_resolver_interval_ms")]
    pub resolver_interval_ms: u64,
    /// `[hub.tls]`: HTTPS on the channel listener (absent: plain HTTP).
    #[serde(default)]
    pub tls: Option<crate::tls::ListenerTls>,
    /// The admin surface on a listener of its own, e.g. `127.0.0.1:8443` (absent: served on the
    /// channel listener under `/admin`).
    #[serde(default)]
    pub admin_listen: Option<String>,
    /// `[hub.admin_tls]`: HTTPS on `admin_listen` (only with `admin_listen`).
    #[serde(default)]
    pub admin_tls: Option<crate::tls::ListenerTls>,
}

fn default_resolver_interval_ms() -> u64 {
    1_000
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration is not valid: {0}")]
    Parse(String),
    #[error("[[withholding]] {instance}: {reason}")]
    Withholding { instance: String, reason: String },
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "CONFIG_READ",
            ConfigError::Parse(_) => "CONFIG_PARSE",
            ConfigError::Withholding { .. } => "CONFIG_WITHHOLDING",
        }
    }
}

impl HubConfig {
    pub fn from_toml(text: &str) -> Result<HubConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.message().to_string()))
    }

    /// What parsing cannot check: `[recon_schedule]`'s times and `[[withholding]]`. `load`
    /// and `app::start` (for a config built in code) both run it.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(schedule) = &self.recon_schedule {
            schedule.times().map_err(ConfigError::Parse)?;
        }
        self.check_withholding()
    }

    /// Parses the file and runs [`HubConfig::check`] (`[[withholding]]` loads the profiles it
    /// names, so relative profile paths are the hub's working directory's).
    pub fn load(path: &Path) -> Result<HubConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Self::from_toml(&text)?;
        config.check()?;
        Ok(config)
    }

    /// Every `[[withholding]]` names a `[[fixedlen]]` instance whose profile runs batch
    /// withholding (spec 11's partner has none, and the hub offers none for it), and the
    /// serial codes of its line serials are 3 letters or digits, distinct across instances, so
    /// two instances' debits never share a core SeqNo of the same day.
    pub fn check_withholding(&self) -> Result<(), ConfigError> {
        let mut seen: Vec<(String, &str)> = Vec::new();
        for w in &self.withholding {
            let bad = |reason: String| ConfigError::Withholding {
                instance: w.instance.clone(),
                reason,
            };
            let Some(link) = self.fixedlen.iter().find(|f| f.instance == w.instance) else {
                return Err(bad(
                    "未配置同名的 [[fixedlen]] 实例 / no [[fixedlen]] instance of that name".into(),
                ));
            };
            let profile = link.load_profile().map_err(|e| bad(e.to_string()))?;
            if !profile.supports_batch_withholding() {
                return Err(bad(format!(
                    "协议配置{}不支持批量代扣（无批量代扣渠道或201/202报文格式） / profile {} has no batch withholding (no batch channel or 201/202 layouts)",
                    profile.name, profile.name
                )));
            }
            let code = self.batch_serial_code(&w.instance)?;
            if let Some((_, other)) = seen.iter().find(|(c, _)| *c == code) {
                return Err(bad(format!(
                    "流水号实例码{code}与{other}重复，请配置不同的serial_code / serial code {code} is also {other}'s: set serial_code"
                )));
            }
            seen.push((code, w.instance.as_str()));
        }
        Ok(())
    }

    /// The serial code of `instance`'s batch line serials: its `[[withholding]]` entry's
    /// `serial_code`, else the last 3 characters of its CompanyCode. The operator's manual run
    /// (`hub batch water-withhold`) and the poller use this one function, so both give a line
    /// the same serial.
    pub fn batch_serial_code(&self, instance: &str) -> Result<String, ConfigError> {
        let bad = |reason: &str| ConfigError::Withholding {
            instance: instance.to_string(),
            reason: reason.to_string(),
        };
        let configured = self
            .withholding
            .iter()
            .find(|w| w.instance == instance)
            .and_then(|w| w.serial_code.clone());
        let code = match configured {
            Some(code) => code,
            None => {
                let link = self
                    .fixedlen
                    .iter()
                    .find(|f| f.instance == instance)
                    .ok_or_else(|| {
                        bad("未配置同名的 [[fixedlen]] 实例 / no [[fixedlen]] instance of that name")
                    })?;
                crate::batch::run::default_serial_code(&link.company_code)
            }
        };
        if !crate::batch::run::valid_serial_code(&code) {
            return Err(bad(
                "serial_code须为3位字母或数字 / serial_code must be 3 letters or digits",
            ));
        }
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_loads() {
        let text = include_str!("../../deploy/hub.example.toml");
        let config = HubConfig::from_toml(text);
        assert!(config.is_ok(), "{config:?}");
        if let Ok(config) = config {
            assert_eq!(config.chendian.len(), 1);
            assert_eq!(config.core.answer_timeout_ms, 10_000);
            assert_eq!(config.chendian[0].answer_timeout_ms, 15_000);
            assert_eq!(config.cabletv.len(), 1);
            assert_eq!(config.cabletv[0].bank_code, "YX0001");
            assert_eq!(config.cabletv[0].money_timeout_ms, 15_000);
            assert!(config.cabletv[0].validate().is_ok());
            assert!(!format!("{config:?}").contains("0102030405060708"));
            // the key never shows in Debug output
            assert!(!format!("{config:?}").contains("0123456789abcdef"));
        }
    }

    #[test]
    fn tls_example_config_loads() {
        let text = include_str!("../../deploy/hub.tls.example.toml");
        let config = HubConfig::from_toml(text);
        assert!(config.is_ok(), "{config:?}");
        if let Ok(config) = config {
            let expected = crate::tls::ListenerTls {
                cert_file: PathBuf::from("tls/server.pem"),
                key_file: PathBuf::from("tls/server.key"),
                client_ca_file: Some(PathBuf::from("tls/ca.pem")),
                handshake_timeout_ms: 10_000,
            };
            assert_eq!(config.hub.tls, Some(expected));
            assert_eq!(config.hub.admin_listen.as_deref(), Some("127.0.0.1:9443"));
            let admin_tls = config.hub.admin_tls.as_ref();
            assert_eq!(
                admin_tls.map(|t| t.client_ca_file.clone()),
                Some(None),
                "operators' certificates are not required in the example"
            );
        }
    }

    /// The commented TLS settings of hub.example.toml are valid once uncommented.
    #[test]
    fn commented_tls_settings_of_the_example_load_when_uncommented() {
        let text = include_str!("../../deploy/hub.example.toml");
        let uncommented: Vec<String> = text
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if is_setting(rest) => rest.to_string(),
                _ => line.to_string(),
            })
            .collect();
        let config = HubConfig::from_toml(&uncommented.join("\n"));
        assert!(config.is_ok(), "{config:?}");
        if let Ok(config) = config {
            assert_eq!(config.hub.admin_listen.as_deref(), Some("127.0.0.1:8443"));
            let tls = config.hub.tls.as_ref();
            assert_eq!(
                tls.and_then(|t| t.client_ca_file.clone()),
                Some(PathBuf::from("tls/channel-ca.pem"))
            );
            assert_eq!(tls.map(|t| t.handshake_timeout_ms), Some(10_000));
            assert_eq!(
                config.hub.admin_tls.map(|t| t.key_file),
                Some(PathBuf::from("tls/admin.key"))
            );
        }
    }

    #[test]
    fn tobacco_section_loads_with_defaults_and_hides_the_private_key() {
        let text = format!(
            "{}\n[tobacco]\nbureau_code = \"430600\"\nbank_code = \"YYNS0001\"\n\
             bureau_base_url = \"https://yc.example:8443\"\n\
             bank_private_key_hex = \"3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8\"\n\
             bureau_public_key_hex = \"04aa\"\nsuspense_account = \"9003100000000009\"\n\
             settlement_account = \"9003200000000009\"\n",
            include_str!("../../deploy/hub.example.toml")
        );
        let config = HubConfig::from_toml(&text);
        assert!(config.is_ok(), "{config:?}");
        if let Ok(config) = config {
            let tobacco = config.tobacco.as_ref();
            assert_eq!(tobacco.map(|t| t.bank_code.as_str()), Some("YYNS0001"));
            // Spec 09: the whole exchange 10 s.
            assert_eq!(tobacco.map(|t| t.notify_timeout_ms), Some(10_000));
            assert_eq!(tobacco.and_then(|t| t.tls.clone()), None);
            assert!(!format!("{config:?}").contains("3945208f"));
        }
        let without = HubConfig::from_toml(include_str!("../../deploy/hub.example.toml"));
        assert!(without.is_ok_and(|c| c.tobacco.is_none()));
    }

    /// Two withholding instances whose CompanyCodes end alike would give their lines the same
    /// core SeqNo on the same day: refused until one names its own serial code.
    #[test]
    fn withholding_serial_codes_must_be_distinct_and_three_alphanumerics() {
        let base = HubConfig::from_toml(include_str!("../../deploy/hub.example.toml"));
        let Ok(mut config) = base else {
            panic!("example config loads: {base:?}");
        };
        assert!(config.check_withholding().is_ok());
        assert_eq!(
            config.batch_serial_code("water-jiahe").ok().as_deref(),
            Some("024")
        );
        let mut other = config.fixedlen[0].clone();
        other.instance = "water-other".into();
        other.company_code = "531024".into();
        config.fixedlen.push(other);
        config
            .withholding
            .push(crate::batch::schedule::WithholdingConfig {
                instance: "water-other".into(),
                dir: PathBuf::from("var/sftp/water-other"),
                check_interval_ms: 30_000,
                serial_code: None,
            });
        let clash = config.check_withholding();
        assert_eq!(clash.err().map(|e| e.code()), Some("CONFIG_WITHHOLDING"));
        config.withholding[1].serial_code = Some("X24".into());
        assert!(config.check_withholding().is_ok());
        assert_eq!(
            config.batch_serial_code("water-other").ok().as_deref(),
            Some("X24")
        );
        config.withholding[1].serial_code = Some("1|2".into());
        assert!(config.check_withholding().is_err());
        config.withholding[1].serial_code = Some("0245".into());
        assert!(config.check_withholding().is_err());
        config.withholding[1].instance = "nowhere".into();
        assert!(config.check_withholding().is_err());
    }

    /// Spec 09 "Transport": the hub's calls to the bureau connect within 5 s (the shared TLS
    /// default) and each notification exchange ends within 10 s (`notify_timeout_ms`, set on
    /// every request); an explicit setting wins and an unknown key is refused.
    #[test]
    fn tobacco_calls_default_to_the_spec_timeouts() {
        let text = format!(
            "{}\n[tobacco]\nbureau_code = \"430600\"\nbank_code = \"YYNS0001\"\n\
             bureau_base_url = \"https://yc.example:8443\"\n\
             bank_private_key_hex = \"3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8\"\n\
             bureau_public_key_hex = \"04aa\"\nsuspense_account = \"9003100000000009\"\n\
             settlement_account = \"9003200000000009\"\n[tobacco.tls]\nca_file = \"tls/yc-ca.pem\"\n",
            include_str!("../../deploy/hub.example.toml")
        );
        let config = HubConfig::from_toml(&text);
        assert!(config.is_ok(), "{config:?}");
        let tobacco = config.ok().and_then(|c| c.tobacco);
        assert_eq!(tobacco.as_ref().map(|t| t.notify_timeout_ms), Some(10_000));
        let tls = tobacco.and_then(|t| t.tls);
        assert_eq!(tls.as_ref().map(|t| t.connect_timeout_ms), Some(5_000));
        assert_eq!(tls.map(|t| t.ca_file), Some(PathBuf::from("tls/yc-ca.pem")));
        let explicit = text.replace(
            "ca_file = \"tls/yc-ca.pem\"\n",
            "ca_file = \"tls/yc-ca.pem\"\nconnect_timeout_ms = 4000\n",
        );
        let tls = HubConfig::from_toml(&explicit)
            .ok()
            .and_then(|c| c.tobacco)
            .and_then(|t| t.tls);
        assert_eq!(tls.map(|t| t.connect_timeout_ms), Some(4_000));
        let unknown = text.replace("ca_file = ", "cafile = ");
        assert!(HubConfig::from_toml(&unknown).is_err());
    }

    fn is_setting(line: &str) -> bool {
        line.starts_with("[hub.")
            || line
                .split_once(" = ")
                .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    }
}
