//! Key management: where each link's keys come from, which one is current, how an operator
//! promotes the next one (maker-checker), and session keys kept encrypted at rest.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | `[keys]` configuration, key references (`{ file = ".." }` / `{ env = ".." }`), errors |
//! | `keyring.rs` | `MacKeyRing`, `PublicKeyRing`: current + next, verify with current then next |
//! | `promotion.rs` | maker-checker promotion of next to current, journaled; rings resolved from it |
//! | `session.rs` | session keys from a partner's sign-in, sealed under the master key, with expiry |
//! | `cli.rs` | `hub keys request-promotion / approve / list` |
//!
//! A key value is never printed: errors name the link and the reference (`file:/etc/hub/k.hex`,
//! `env:CDGJ_MAC`), logs carry fingerprints only.

pub mod cli;
pub mod keyring;
pub mod promotion;
pub mod session;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use codecs::crypto::secret::SecretBytes;
use codecs::crypto::sm2::PublicKey;
use codecs::crypto::CryptoError;
use serde::Deserialize;

pub use keyring::{KeySlot, MacKeyRing, PublicKeyRing};
pub use promotion::{KeyStore, LinkStatus, PromotionRequest, PromotionState};
pub use session::{SessionKey, SessionKeyStore};

/// Where a key's text lives. The content is hex for symmetric keys, PEM for SM2 keys.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyRef {
    File(PathBuf),
    Env(String),
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRef::File(path) => write!(f, "file:{}", path.display()),
            KeyRef::Env(name) => write!(f, "env:{name}"),
        }
    }
}

/// What a link's keys are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKeyKind {
    /// A symmetric MAC key (hex), e.g. SM4 for the cdgj / iso9797-m2 schemes.
    Mac,
    /// The partner's SM2 public key (SubjectPublicKeyInfo PEM), to verify its signatures.
    Sm2Public,
}

/// `[keys.links.<link>]`: a link's current key and, during a key change, the next one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkKeysConfig {
    pub kind: LinkKeyKind,
    pub current: KeyRef,
    #[serde(default)]
    pub next: Option<KeyRef>,
}

/// `[keys]` of hub.toml.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// Master key (hex, at least 16 bytes) under which session keys are sealed at rest.
    #[serde(default)]
    pub master: Option<KeyRef>,
    /// One entry per link, named as the adapters name their links (e.g. `CDGJ-NSH43102`).
    #[serde(default)]
    pub links: BTreeMap<String, LinkKeysConfig>,
}

/// A key-management failure. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("link {link}: cannot read key {reference}: {reason}")]
    Unreadable {
        link: String,
        reference: String,
        reason: String,
    },
    #[error("link {link}: key {reference} is not valid: {source}")]
    BadKey {
        link: String,
        reference: String,
        source: CryptoError,
    },
    #[error("link {0} is not configured under [keys.links]")]
    UnknownLink(String),
    #[error("link {link} holds {found:?} keys, not {expected:?}")]
    WrongKind {
        link: String,
        expected: LinkKeyKind,
        found: LinkKeyKind,
    },
    #[error("link {0} has no next key to promote")]
    NoNextKey(String),
    #[error("[keys] has no master key")]
    NoMasterKey,
    #[error("link {0} has a promotion waiting for approval already")]
    PendingExists(String),
    #[error("link {0} has no promotion waiting for approval")]
    NoPending(String),
    #[error("link {link}: the checker {checker} is the maker")]
    CheckerIsMaker { link: String, checker: String },
    #[error("operator name must not be empty")]
    NoOperator,
    #[error(
        "link {link}: the request promotes {requested}, the configured next key is {configured}"
    )]
    NextKeyChanged {
        link: String,
        requested: String,
        configured: String,
    },
    #[error("sealed session key of link {link} refused: {reason}")]
    SealRefused { link: String, reason: &'static str },
    #[error("session key of link {link} is not valid: {reason}")]
    BadSessionKey { link: String, reason: String },
    #[error("sign-in of link {link} failed: {reason}")]
    SignIn { link: String, reason: String },
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl KeyError {
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::Unreadable { .. } => "KEY_UNREADABLE",
            KeyError::BadKey { .. } => "KEY_BAD",
            KeyError::UnknownLink(_) => "KEY_UNKNOWN_LINK",
            KeyError::WrongKind { .. } => "KEY_WRONG_KIND",
            KeyError::NoNextKey(_) => "KEY_NO_NEXT",
            KeyError::NoMasterKey => "KEY_NO_MASTER",
            KeyError::PendingExists(_) => "KEY_PENDING_EXISTS",
            KeyError::NoPending(_) => "KEY_NO_PENDING",
            KeyError::CheckerIsMaker { .. } => "KEY_CHECKER_IS_MAKER",
            KeyError::NoOperator => "KEY_NO_OPERATOR",
            KeyError::NextKeyChanged { .. } => "KEY_NEXT_CHANGED",
            KeyError::SealRefused { .. } => "KEY_SEAL_REFUSED",
            KeyError::BadSessionKey { .. } => "KEY_BAD_SESSION_KEY",
            KeyError::SignIn { .. } => "KEY_SIGN_IN",
            KeyError::Crypto(_) => "KEY_CRYPTO",
            KeyError::Database(_) => "KEY_DATABASE",
        }
    }

    /// The operator's text.
    pub fn message_zh(&self) -> &'static str {
        match self {
            KeyError::Unreadable { .. } => "无法读取密钥",
            KeyError::BadKey { .. } => "密钥格式无效",
            KeyError::UnknownLink(_) => "未配置该链路的密钥",
            KeyError::WrongKind { .. } => "链路密钥类型不符",
            KeyError::NoNextKey(_) => "该链路没有待启用的新密钥",
            KeyError::NoMasterKey => "未配置主密钥",
            KeyError::PendingExists(_) => "该链路已有待复核的密钥启用申请",
            KeyError::NoPending(_) => "该链路没有待复核的密钥启用申请",
            KeyError::CheckerIsMaker { .. } => "复核人不能是申请人",
            KeyError::NoOperator => "操作员姓名不能为空",
            KeyError::NextKeyChanged { .. } => "申请后配置的新密钥已变更，请重新申请",
            KeyError::SealRefused { .. } => "会话密钥密文被篡改或主密钥不符",
            KeyError::BadSessionKey { .. } => "会话密钥无效",
            KeyError::SignIn { .. } => "签到失败",
            KeyError::Crypto(_) => "密码运算失败",
            KeyError::Database(_) => "数据库错误",
        }
    }
}

/// Reads the text a reference points to. The text is a secret: it is returned zeroizing and never
/// quoted in an error.
pub fn read_reference(
    link: &str,
    reference: &KeyRef,
) -> Result<zeroize::Zeroizing<String>, KeyError> {
    let unreadable = |reason: String| KeyError::Unreadable {
        link: link.to_string(),
        reference: reference.to_string(),
        reason,
    };
    let text = match reference {
        KeyRef::File(path) => {
            std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?
        }
        KeyRef::Env(name) => match std::env::var(name) {
            Ok(value) => value,
            Err(std::env::VarError::NotPresent) => {
                return Err(unreadable("environment variable not set".into()))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(unreadable("environment variable is not UTF-8".into()))
            }
        },
    };
    Ok(zeroize::Zeroizing::new(text))
}

/// A symmetric key from a reference holding hex (surrounding whitespace, e.g. a file's final
/// newline, is ignored).
pub fn load_secret(link: &str, reference: &KeyRef) -> Result<SecretBytes, KeyError> {
    let text = read_reference(link, reference)?;
    let key = SecretBytes::from_hex(text.trim()).map_err(|source| KeyError::BadKey {
        link: link.to_string(),
        reference: reference.to_string(),
        source,
    })?;
    if key.is_empty() {
        return Err(KeyError::BadKey {
            link: link.to_string(),
            reference: reference.to_string(),
            source: CryptoError::BadKeyLength {
                expected: 16,
                found: 0,
            },
        });
    }
    Ok(key)
}

/// An SM2 public key from a reference holding SubjectPublicKeyInfo PEM.
pub fn load_public_key(link: &str, reference: &KeyRef) -> Result<PublicKey, KeyError> {
    let text = read_reference(link, reference)?;
    PublicKey::from_spki_pem(text.trim()).map_err(|source| KeyError::BadKey {
        link: link.to_string(),
        reference: reference.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_references_parse_from_toml() {
        let text = r#"
            master = { env = "HUB_MASTER_KEY" }
            [links.CDGJ-NSH43102]
            kind = "mac"
            current = { file = "/etc/hub/cdgj.hex" }
            next = { env = "CDGJ_NEXT" }
            [links.HF-XX]
            kind = "sm2-public"
            current = { file = "hf.pub.pem" }
        "#;
        let config: KeysConfig = toml::from_str(text).expect("parses");
        assert_eq!(config.master, Some(KeyRef::Env("HUB_MASTER_KEY".into())));
        let cdgj = config.links.get("CDGJ-NSH43102").expect("link");
        assert_eq!(cdgj.kind, LinkKeyKind::Mac);
        assert_eq!(cdgj.current, KeyRef::File("/etc/hub/cdgj.hex".into()));
        assert_eq!(cdgj.next, Some(KeyRef::Env("CDGJ_NEXT".into())));
        let hf = config.links.get("HF-XX").expect("link");
        assert_eq!(hf.kind, LinkKeyKind::Sm2Public);
        assert_eq!(hf.next, None);
        assert!(toml::from_str::<KeysConfig>(
            "[links.X]\nkind = \"mac\"\ncurrent = { url = \"x\" }"
        )
        .is_err());
        assert!(
            toml::from_str::<KeysConfig>("[links.X]\nkind = \"mac\"\ncurrent = \"0123\"").is_err()
        );
    }

    #[test]
    fn errors_name_the_reference_never_the_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.hex");
        std::fs::write(&path, "0123456789abcdefXXdcba9876543210\n").expect("write");
        let reference = KeyRef::File(path.clone());
        let error = load_secret("CDGJ-NSH43102", &reference).expect_err("bad hex");
        let shown = error.to_string();
        assert_eq!(error.code(), "KEY_BAD");
        assert!(shown.contains("CDGJ-NSH43102"));
        assert!(shown.contains(&format!("file:{}", path.display())));
        assert!(!shown.contains("0123456789abcdef"));
        let missing = load_secret("L", &KeyRef::Env("HUB_TEST_SURELY_UNSET_VAR_41".into()))
            .expect_err("unset");
        assert_eq!(missing.code(), "KEY_UNREADABLE");
        assert!(missing
            .to_string()
            .contains("env:HUB_TEST_SURELY_UNSET_VAR_41"));
    }

    #[test]
    fn a_hex_file_with_a_final_newline_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.hex");
        std::fs::write(&path, "0123456789ABCDEFFEDCBA9876543210\n").expect("write");
        let key = load_secret("L", &KeyRef::File(path)).expect("loads");
        assert_eq!(
            key.expose(),
            &[
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
                0x32, 0x10
            ]
        );
    }
}
