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
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "CONFIG_READ",
            ConfigError::Parse(_) => "CONFIG_PARSE",
        }
    }
}

impl HubConfig {
    pub fn from_toml(text: &str) -> Result<HubConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.message().to_string()))
    }

    pub fn load(path: &Path) -> Result<HubConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
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

    fn is_setting(line: &str) -> bool {
        line.starts_with("[hub.")
            || line
                .split_once(" = ")
                .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    }
}
