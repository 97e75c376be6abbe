//! Maker-checker promotion of a link's next key to current. One operator requests it, a second
//! approves; both steps are rows of `key_promotions`. The rings are resolved from the configuration
//! plus the last approved promotion, so an approval takes effect without editing the config.

use chrono::NaiveDateTime;
use codecs::clock::SharedClock;
use sqlx::{Row, SqlitePool};

use super::keyring::{apply_promotion, Fingerprinted, MacKeyRing, PublicKeyRing};
use super::{load_public_key, load_secret, KeyError, KeysConfig, LinkKeyKind, LinkKeysConfig};
use codecs::crypto::secret::SecretBytes;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromotionState {
    Pending,
    Approved,
}

impl PromotionState {
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionState::Pending => "PENDING",
            PromotionState::Approved => "APPROVED",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromotionRequest {
    pub id: i64,
    pub link: String,
    pub next_fingerprint: String,
    pub maker: String,
    pub checker: Option<String>,
    pub requested_at: String,
    pub decided_at: Option<String>,
    pub state: PromotionState,
}

/// What `hub keys list` shows of one link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    pub link: String,
    pub kind: LinkKeyKind,
    pub current_fingerprint: String,
    pub next_fingerprint: Option<String>,
    pub pending: Option<PromotionRequest>,
}

fn ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn row_to_request(row: &sqlx::sqlite::SqliteRow) -> Result<PromotionRequest, KeyError> {
    let state: String = row.try_get("state")?;
    Ok(PromotionRequest {
        id: row.try_get("id")?,
        link: row.try_get("link")?,
        next_fingerprint: row.try_get("next_fingerprint")?,
        maker: row.try_get("maker")?,
        checker: row.try_get("checker")?,
        requested_at: row.try_get("requested_at")?,
        decided_at: row.try_get("decided_at")?,
        state: if state == "APPROVED" {
            PromotionState::Approved
        } else {
            PromotionState::Pending
        },
    })
}

fn operator(name: &str) -> Result<String, KeyError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(KeyError::NoOperator);
    }
    Ok(name.to_string())
}

/// The key configuration, the journal's promotions and the clock, together.
#[derive(Clone, Debug)]
pub struct KeyStore {
    config: KeysConfig,
    pool: SqlitePool,
    clock: SharedClock,
}

impl KeyStore {
    pub fn new(config: KeysConfig, pool: SqlitePool, clock: SharedClock) -> KeyStore {
        KeyStore {
            config,
            pool,
            clock,
        }
    }

    pub fn config(&self) -> &KeysConfig {
        &self.config
    }

    fn link(&self, link: &str) -> Result<&LinkKeysConfig, KeyError> {
        self.config
            .links
            .get(link)
            .ok_or_else(|| KeyError::UnknownLink(link.to_string()))
    }

    fn expect_kind(link: &str, config: &LinkKeysConfig, kind: LinkKeyKind) -> Result<(), KeyError> {
        if config.kind != kind {
            return Err(KeyError::WrongKind {
                link: link.to_string(),
                expected: kind,
                found: config.kind,
            });
        }
        Ok(())
    }

    /// The master key of sealed session keys.
    pub fn master_key(&self) -> Result<SecretBytes, KeyError> {
        let reference = self.config.master.as_ref().ok_or(KeyError::NoMasterKey)?;
        load_secret("master", reference)
    }

    /// The MAC keys of `link`, promotions applied.
    pub async fn mac_ring(&self, link: &str) -> Result<MacKeyRing, KeyError> {
        let config = self.link(link)?;
        Self::expect_kind(link, config, LinkKeyKind::Mac)?;
        let current = load_secret(link, &config.current)?;
        let next = config
            .next
            .as_ref()
            .map(|reference| load_secret(link, reference))
            .transpose()?;
        let promoted = self.promoted_fingerprint(link).await?;
        let (current, next) = apply_promotion(current, next, promoted.as_deref());
        Ok(MacKeyRing::new(link, current, next))
    }

    /// The partner's SM2 public keys on `link`, promotions applied.
    pub async fn public_key_ring(&self, link: &str) -> Result<PublicKeyRing, KeyError> {
        let config = self.link(link)?;
        Self::expect_kind(link, config, LinkKeyKind::Sm2Public)?;
        let current = load_public_key(link, &config.current)?;
        let next = config
            .next
            .as_ref()
            .map(|reference| load_public_key(link, reference))
            .transpose()?;
        let promoted = self.promoted_fingerprint(link).await?;
        let (current, next) = apply_promotion(current, next, promoted.as_deref());
        Ok(PublicKeyRing::new(link, current, next))
    }

    /// (current, next) fingerprints as senders and receivers see them now.
    pub async fn fingerprints(&self, link: &str) -> Result<(String, Option<String>), KeyError> {
        let config = self.link(link)?;
        Ok(match config.kind {
            LinkKeyKind::Mac => {
                let ring = self.mac_ring(link).await?;
                (
                    ring.current().fingerprint(),
                    ring.next().map(Fingerprinted::fingerprint),
                )
            }
            LinkKeyKind::Sm2Public => {
                let ring = self.public_key_ring(link).await?;
                (
                    ring.current().fingerprint(),
                    ring.next().map(Fingerprinted::fingerprint),
                )
            }
        })
    }

    async fn promoted_fingerprint(&self, link: &str) -> Result<Option<String>, KeyError> {
        Ok(sqlx::query_scalar(
            "SELECT next_fingerprint FROM key_promotions WHERE link = ? AND state = 'APPROVED'
             ORDER BY decided_at DESC, id DESC LIMIT 1",
        )
        .bind(link)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The maker's request that `link`'s next key become current.
    pub async fn request_promotion(
        &self,
        link: &str,
        maker: &str,
    ) -> Result<PromotionRequest, KeyError> {
        let maker = operator(maker)?;
        let (_, next) = self.fingerprints(link).await?;
        let next = next.ok_or_else(|| KeyError::NoNextKey(link.to_string()))?;
        let now = ts(self.clock.now());
        let inserted = sqlx::query(
            "INSERT INTO key_promotions (link, next_fingerprint, maker, requested_at, state)
             VALUES (?, ?, ?, ?, 'PENDING')",
        )
        .bind(link)
        .bind(&next)
        .bind(&maker)
        .bind(&now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {}
            // The partial unique index allows one pending request per link.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(KeyError::PendingExists(link.to_string()))
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(link, key_fp = %next, maker = %maker, "Key promotion requested.");
        self.pending(link)
            .await?
            .ok_or_else(|| KeyError::NoPending(link.to_string()))
    }

    /// The checker's approval. Refused when the checker is the maker, or when the configured next
    /// key is no longer the one the maker asked for.
    pub async fn approve(&self, link: &str, checker: &str) -> Result<PromotionRequest, KeyError> {
        let checker = operator(checker)?;
        let request = self
            .pending(link)
            .await?
            .ok_or_else(|| KeyError::NoPending(link.to_string()))?;
        if request.maker.to_lowercase() == checker.to_lowercase() {
            return Err(KeyError::CheckerIsMaker {
                link: link.to_string(),
                checker,
            });
        }
        let (_, next) = self.fingerprints(link).await?;
        if next.as_deref() != Some(request.next_fingerprint.as_str()) {
            return Err(KeyError::NextKeyChanged {
                link: link.to_string(),
                requested: request.next_fingerprint,
                configured: next.unwrap_or_else(|| "-".into()),
            });
        }
        let now = ts(self.clock.now());
        // Compare-and-set on the pending row: two checkers racing approve it once.
        let updated = sqlx::query(
            "UPDATE key_promotions SET state = 'APPROVED', checker = ?, decided_at = ?
             WHERE id = ? AND state = 'PENDING' AND lower(maker) <> lower(?)",
        )
        .bind(&checker)
        .bind(&now)
        .bind(request.id)
        .bind(&checker)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(KeyError::NoPending(link.to_string()));
        }
        tracing::info!(
            link,
            key_fp = %request.next_fingerprint,
            maker = %request.maker,
            checker = %checker,
            "Key promotion approved: the promoted key is current."
        );
        Ok(PromotionRequest {
            checker: Some(checker),
            decided_at: Some(now),
            state: PromotionState::Approved,
            ..request
        })
    }

    /// The request of `link` waiting for approval.
    pub async fn pending(&self, link: &str) -> Result<Option<PromotionRequest>, KeyError> {
        let row = sqlx::query("SELECT * FROM key_promotions WHERE link = ? AND state = 'PENDING'")
            .bind(link)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_request).transpose()
    }

    /// Every promotion of `link`, oldest first.
    pub async fn history(&self, link: &str) -> Result<Vec<PromotionRequest>, KeyError> {
        let rows = sqlx::query("SELECT * FROM key_promotions WHERE link = ? ORDER BY id")
            .bind(link)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_request).collect()
    }

    /// Every configured link with its fingerprints and pending request.
    pub async fn list(&self) -> Result<Vec<LinkStatus>, KeyError> {
        let mut out = Vec::with_capacity(self.config.links.len());
        for (link, config) in &self.config.links {
            let (current_fingerprint, next_fingerprint) = self.fingerprints(link).await?;
            out.push(LinkStatus {
                link: link.clone(),
                kind: config.kind,
                current_fingerprint,
                next_fingerprint,
                pending: self.pending(link).await?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use codecs::clock::ManualClock;

    use super::*;
    use crate::journal::Journal;
    use crate::keys::{KeyRef, LinkKeysConfig};

    const CURRENT_HEX: &str = "0123456789abcdeffedcba9876543210";
    const NEXT_HEX: &str = "00112233445566778899aabbccddeeff";

    struct Fixture {
        _dir: tempfile::TempDir,
        store: KeyStore,
        next_path: std::path::PathBuf,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let current_path = dir.path().join("current.hex");
        let next_path = dir.path().join("next.hex");
        std::fs::write(&current_path, format!("{CURRENT_HEX}\n")).expect("write");
        std::fs::write(&next_path, NEXT_HEX).expect("write");
        let mut config = KeysConfig::default();
        config.links.insert(
            "CDGJ-NSH43102".into(),
            LinkKeysConfig {
                kind: LinkKeyKind::Mac,
                current: KeyRef::File(current_path),
                next: Some(KeyRef::File(next_path.clone())),
            },
        );
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        let journal = Journal::open(&url).await.expect("journal");
        let start = NaiveDate::from_ymd_opt(2026, 12, 3)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .expect("time");
        let clock = ManualClock::new(start);
        Fixture {
            store: KeyStore::new(config, journal.pool().clone(), clock),
            _dir: dir,
            next_path,
        }
    }

    fn bytes(hex_text: &str) -> Vec<u8> {
        hex::decode(hex_text).expect("hex")
    }

    #[tokio::test]
    async fn maker_checker_promotion_switches_the_sender_key() {
        let f = fixture().await;
        let link = "CDGJ-NSH43102";
        let ring = f.store.mac_ring(link).await.expect("ring");
        assert_eq!(ring.current().expose(), bytes(CURRENT_HEX).as_slice());

        let request = f
            .store
            .request_promotion(link, "张三")
            .await
            .expect("request");
        assert_eq!(request.state, PromotionState::Pending);
        assert_eq!(
            request.next_fingerprint,
            SecretBytes::new(bytes(NEXT_HEX)).fingerprint()
        );
        // Requested but not approved: senders still use the current key.
        let ring = f.store.mac_ring(link).await.expect("ring");
        assert_eq!(ring.current().expose(), bytes(CURRENT_HEX).as_slice());
        assert!(matches!(
            f.store.request_promotion(link, "王五").await,
            Err(KeyError::PendingExists(_))
        ));

        let refused = f
            .store
            .approve(link, " 张三 ")
            .await
            .expect_err("own approval");
        assert_eq!(refused.code(), "KEY_CHECKER_IS_MAKER");
        assert!(f.store.pending(link).await.expect("pending").is_some());

        let approved = f.store.approve(link, "李四").await.expect("approve");
        assert_eq!(approved.state, PromotionState::Approved);
        assert_eq!(approved.checker.as_deref(), Some("李四"));
        assert_eq!(approved.decided_at.as_deref(), Some("2026-12-03 09:00:00"));

        let ring = f.store.mac_ring(link).await.expect("ring");
        assert_eq!(ring.current().expose(), bytes(NEXT_HEX).as_slice());
        assert_eq!(
            ring.next().map(|k| k.expose().to_vec()),
            Some(bytes(CURRENT_HEX))
        );
        assert!(f.store.pending(link).await.expect("pending").is_none());
        let history = f.store.history(link).await.expect("history");
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].maker, "张三");
        assert_eq!(history[0].checker.as_deref(), Some("李四"));

        let listed = f.store.list().await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(
            listed[0].current_fingerprint,
            SecretBytes::new(bytes(NEXT_HEX)).fingerprint()
        );
        assert!(listed[0].pending.is_none());
    }

    #[tokio::test]
    async fn approval_is_refused_when_the_next_key_changed_since_the_request() {
        let f = fixture().await;
        let link = "CDGJ-NSH43102";
        f.store
            .request_promotion(link, "maker")
            .await
            .expect("request");
        std::fs::write(&f.next_path, "ffeeddccbbaa99887766554433221100").expect("write");
        let error = f.store.approve(link, "checker").await.expect_err("changed");
        assert_eq!(error.code(), "KEY_NEXT_CHANGED");
        let ring = f.store.mac_ring(link).await.expect("ring");
        assert_eq!(ring.current().expose(), bytes(CURRENT_HEX).as_slice());
    }

    #[tokio::test]
    async fn unknown_links_and_empty_names_are_refused() {
        let f = fixture().await;
        assert_eq!(
            f.store
                .request_promotion("NOPE", "m")
                .await
                .err()
                .map(|e| e.code()),
            Some("KEY_UNKNOWN_LINK")
        );
        assert_eq!(
            f.store
                .request_promotion("CDGJ-NSH43102", "  ")
                .await
                .err()
                .map(|e| e.code()),
            Some("KEY_NO_OPERATOR")
        );
        assert_eq!(
            f.store
                .approve("CDGJ-NSH43102", "c")
                .await
                .err()
                .map(|e| e.code()),
            Some("KEY_NO_PENDING")
        );
        assert_eq!(
            f.store
                .public_key_ring("CDGJ-NSH43102")
                .await
                .err()
                .map(|e| e.code()),
            Some("KEY_WRONG_KIND")
        );
    }
}
