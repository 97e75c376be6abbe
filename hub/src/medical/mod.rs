//! `[[medical]]`: 城乡居民医保 instances (spec 03) as engine partners. The adapter and its rules
//! are in `adapters::medical`; this file turns an instance's configuration into a [`PartnerLink`].

use std::sync::Arc;
use std::time::Duration;

use adapters::medical::{MedicalClient, MedicalConfig, MedicalPartner};
use adapters::spi::AdapterError;
use codecs::clock::SharedClock;
use serde::Deserialize;

use crate::app::StartError;
use crate::engine::PartnerLink;

/// One insurer instance: the adapter's settings plus the accounts money moves through.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MedicalInstanceConfig {
    /// `medins-xinhuang`.
    pub instance: String,
    /// `https://<host>:<port>/cxjm/bank/api`.
    pub url: String,
    /// 机构编码, `HHXH0001`.
    pub bank_code: String,
    /// SM4 data key, 32 hex digits.
    pub data_key_hex: String,
    /// The bank's SM2 private key, 64 hex digits.
    pub bank_private_key_hex: String,
    /// The insurer's SM2 public key, `04‖x‖y` in hex.
    pub insurer_public_key_hex: String,
    /// Collection suspense account (core class I).
    pub suspense_account: String,
    /// The fund's revenue account (医保基金收入户), the settlement target.
    pub settlement_account: String,
    /// Whole exchange of 2001 and 2002 (spec: 30 s).
    #[serde(default = "default_money_timeout_ms")]
    pub money_timeout_ms: u64,
    /// Whole exchange of 1001, 2003, 3001, 9001 (spec: 15 s).
    #[serde(default = "default_query_timeout_ms")]
    pub query_timeout_ms: u64,
    /// `[medical.tls]`: the insurer's CA (spec: its certificate is checked, no client certificate).
    #[serde(default)]
    pub tls: Option<crate::tls::PartnerTls>,
    /// Tests and the demo only: an `http://` URL without `tls`.
    #[serde(default)]
    pub allow_plain_http: bool,
}

fn default_money_timeout_ms() -> u64 {
    30_000
}

fn default_query_timeout_ms() -> u64 {
    15_000
}

/// Keys never show in logs or Debug output.
impl std::fmt::Debug for MedicalInstanceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MedicalInstanceConfig")
            .field("instance", &self.instance)
            .field("url", &self.url)
            .field("bank_code", &self.bank_code)
            .field("keys", &"<redacted>")
            .field(
                "suspense_account",
                &codecs::mask::mask_account(&self.suspense_account),
            )
            .field(
                "settlement_account",
                &codecs::mask::mask_account(&self.settlement_account),
            )
            .field("money_timeout_ms", &self.money_timeout_ms)
            .field("query_timeout_ms", &self.query_timeout_ms)
            .field("tls", &self.tls)
            .field("allow_plain_http", &self.allow_plain_http)
            .finish()
    }
}

impl MedicalInstanceConfig {
    pub fn client_config(&self) -> MedicalConfig {
        MedicalConfig {
            instance: self.instance.clone(),
            url: self.url.clone(),
            bank_code: self.bank_code.clone(),
            data_key_hex: self.data_key_hex.clone(),
            bank_private_key_hex: self.bank_private_key_hex.clone(),
            insurer_public_key_hex: self.insurer_public_key_hex.clone(),
            money_timeout_ms: self.money_timeout_ms,
            query_timeout_ms: self.query_timeout_ms,
            allow_plain_http: self.allow_plain_http && self.tls.is_none(),
        }
    }
}

/// The engine's link to one insurer instance; `clock` stamps every reqTime.
pub fn link(c: &MedicalInstanceConfig, clock: SharedClock) -> Result<PartnerLink, StartError> {
    let partner = MedicalPartner::new(client(c, clock.clone())?, clock);
    Ok(PartnerLink {
        purpose: adapters::medical::partner::PURPOSE.to_string(),
        adapter: Arc::new(partner),
        suspense_account: c.suspense_account.clone(),
        settlement_account: c.settlement_account.clone(),
    })
}

/// A client of one insurer instance (the engine's partner and the history desk each hold one).
pub fn client(c: &MedicalInstanceConfig, clock: SharedClock) -> Result<MedicalClient, StartError> {
    let config_error = |reason: String| {
        StartError::Adapter(AdapterError::Config {
            field: "medical",
            reason: format!("{}: {reason}", c.instance),
        })
    };
    let http = match &c.tls {
        Some(tls) => crate::tls::https_client(tls)?,
        // Spec: connect 5 s; each exchange sets its own whole-request timeout.
        None => reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| config_error(e.to_string()))?,
    };
    MedicalClient::new(c.client_config(), http, clock).map_err(|e| config_error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = r#"
instance = "medins-xinhuang"
url = "https://127.0.0.1:9301/cxjm/bank/api"
bank_code = "HHXH0001"
data_key_hex = "0123456789ABCDEFFEDCBA9876543210"
bank_private_key_hex = "f8e04a199a4cd697add020760c8a7f2e21496aa6c0ec3e201e98dafc0a96e520"
insurer_public_key_hex = "04d7c3f5e0e23d49aa96f71465a32c644f7565985a934c2e98c88bc6817592221bf354eef58f12280b7f41d5732c795a3c35eb806f10210ae560d6a1f2a6db6a58"
suspense_account = "9003100000000301"
settlement_account = "9003200000000301"
"#;

    #[test]
    fn a_block_reads_with_the_spec_timeouts_and_hides_its_keys() {
        let c: MedicalInstanceConfig = toml::from_str(BLOCK).expect("parses");
        assert_eq!(c.money_timeout_ms, 30_000);
        assert_eq!(c.query_timeout_ms, 15_000);
        assert!(!c.client_config().allow_plain_http);
        let shown = format!("{c:?}");
        assert!(!shown.contains("f8e04a19"), "{shown}");
        assert!(!shown.contains("0123456789ABCDEF"), "{shown}");
        let unknown = format!("{BLOCK}colour = \"red\"\n");
        assert!(toml::from_str::<MedicalInstanceConfig>(&unknown).is_err());
    }

    /// The commented block of deploy/hub.example.toml is a valid `[[medical]]` once uncommented.
    #[test]
    fn the_example_block_loads_when_uncommented() {
        #[derive(Deserialize)]
        struct Only {
            medical: Vec<MedicalInstanceConfig>,
        }
        let text = include_str!("../../../deploy/hub.example.toml");
        let block: Vec<&str> = text
            .lines()
            .skip_while(|line| *line != "#[[medical]]")
            .map_while(|line| line.strip_prefix('#'))
            .collect();
        let only: Only = toml::from_str(&block.join("\n")).expect("the block parses");
        let c = only.medical.first().expect("one instance");
        assert_eq!(c.instance, "medins-xinhuang");
        assert_eq!(c.bank_code, "HHXH0001");
        assert!(c.tls.is_some());
    }

    #[test]
    fn an_http_url_is_refused_unless_allowed() {
        let c: MedicalInstanceConfig =
            toml::from_str(&BLOCK.replace("https://", "http://")).expect("parses");
        let clock: SharedClock = Arc::new(codecs::clock::SystemClock);
        assert!(link(&c, clock).is_err());
    }
}
