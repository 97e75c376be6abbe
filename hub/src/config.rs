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
}
