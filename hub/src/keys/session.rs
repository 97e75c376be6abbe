//! Session keys obtained at a partner's sign-in, kept in `session_keys` sealed under the master
//! key so that a copy of the database does not give them away.
//!
//! Seal (encrypt-then-MAC), with two keys derived from the master key by HMAC-SM3 with distinct
//! labels, so that the cipher key and the MAC key are never the same bytes:
//! `blob = IV(16, fresh from the OS) || C || HMAC-SM3(k_mac, IV || C)`,
//! `C = SM4-CBC-PKCS#7(k_enc, IV, len(link) || link || len(expiry) || expiry || key)`.
//! The link and expiry inside the plaintext are compared with the row's columns on opening, so a
//! blob moved to another link or an expiry edited in the table is refused like a tampered one.

use std::future::Future;

use chrono::NaiveDateTime;
use codecs::clock::SharedClock;
use codecs::crypto::secret::SecretBytes;
use codecs::crypto::sm4::{self, Padding};
use codecs::crypto::{sm3, CryptoError};
use rand::RngCore;
use sqlx::{Row, SqlitePool};
use zeroize::Zeroizing;

use super::KeyError;

const IV_BYTES: usize = 16;
const TAG_BYTES: usize = 32;
const ENC_LABEL: &[u8] = b"hub session-key seal v1: SM4 key";
const MAC_LABEL: &[u8] = b"hub session-key seal v1: HMAC-SM3 key";
/// The master key must carry at least as much entropy as the keys it protects.
pub const MIN_MASTER_KEY_BYTES: usize = 16;
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// A session key and what the partner said about it.
#[derive(Clone, Debug)]
pub struct SessionKey {
    pub key: SecretBytes,
    /// The partner's key id (e.g. spec 05's KeyId), when it has one.
    pub key_id: Option<String>,
    /// Hub clock time from which the key is no longer used.
    pub expires_at: NaiveDateTime,
}

/// The two keys of the seal.
#[derive(Clone)]
struct Sealer {
    enc_key: Zeroizing<Vec<u8>>,
    mac_key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<hidden>)")
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) -> Result<(), KeyError> {
    let length = u16::try_from(field.len())
        .map_err(|_| KeyError::Crypto(CryptoError::BadDataLength { found: field.len() }))?;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(field);
    Ok(())
}

fn take_field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = bytes.split_first_chunk::<2>()?;
    let length = usize::from(u16::from_be_bytes(*length));
    if rest.len() < length {
        return None;
    }
    Some(rest.split_at(length))
}

impl Sealer {
    fn new(master: &SecretBytes) -> Result<Sealer, KeyError> {
        if master.len() < MIN_MASTER_KEY_BYTES {
            return Err(KeyError::Crypto(CryptoError::BadKeyLength {
                expected: MIN_MASTER_KEY_BYTES,
                found: master.len(),
            }));
        }
        let enc = Zeroizing::new(sm3::hmac(master.expose(), ENC_LABEL));
        let mac = Zeroizing::new(sm3::hmac(master.expose(), MAC_LABEL));
        Ok(Sealer {
            enc_key: Zeroizing::new(enc.get(..16).unwrap_or_default().to_vec()),
            mac_key: Zeroizing::new(mac.to_vec()),
        })
    }

    fn seal(&self, link: &str, expires_at: &str, key: &SecretBytes) -> Result<Vec<u8>, KeyError> {
        let mut plain = Zeroizing::new(Vec::with_capacity(
            link.len() + expires_at.len() + 4 + key.len(),
        ));
        push_field(&mut plain, link.as_bytes())?;
        push_field(&mut plain, expires_at.as_bytes())?;
        plain.extend_from_slice(key.expose());
        let mut iv = [0u8; IV_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut iv)
            .map_err(|e| KeyError::Crypto(CryptoError::Random(e.to_string())))?;
        let cipher = sm4::cbc_encrypt(&self.enc_key, &iv, &plain, Padding::Pkcs7)?;
        let mut blob = Vec::with_capacity(IV_BYTES + cipher.len() + TAG_BYTES);
        blob.extend_from_slice(&iv);
        blob.extend_from_slice(&cipher);
        let tag = sm3::hmac(&self.mac_key, &blob);
        blob.extend_from_slice(&tag);
        Ok(blob)
    }

    fn open(&self, link: &str, expires_at: &str, blob: &[u8]) -> Result<SecretBytes, KeyError> {
        let refused = |reason| KeyError::SealRefused {
            link: link.to_string(),
            reason,
        };
        if blob.len() < IV_BYTES + 16 + TAG_BYTES {
            return Err(refused("too short"));
        }
        let (body, tag) = blob.split_at(blob.len() - TAG_BYTES);
        // The tag is checked before anything is decrypted: no padding oracle.
        if !constant_time_eq(&sm3::hmac(&self.mac_key, body), tag) {
            return Err(refused("tag mismatch (tampered, or another master key)"));
        }
        let (iv, cipher) = body.split_at(IV_BYTES);
        let plain = Zeroizing::new(
            sm4::cbc_decrypt(&self.enc_key, iv, cipher, Padding::Pkcs7)
                .map_err(|_| refused("bad padding"))?,
        );
        let (sealed_link, rest) = take_field(&plain).ok_or_else(|| refused("bad layout"))?;
        let (sealed_expiry, key) = take_field(rest).ok_or_else(|| refused("bad layout"))?;
        if sealed_link != link.as_bytes() {
            return Err(refused("sealed for another link"));
        }
        if sealed_expiry != expires_at.as_bytes() {
            return Err(refused("expiry differs from the sealed one"));
        }
        Ok(SecretBytes::new(key.to_vec()))
    }
}

/// Session keys of every link, sealed in the journal database.
#[derive(Debug)]
pub struct SessionKeyStore {
    pool: SqlitePool,
    clock: SharedClock,
    sealer: Sealer,
    /// One sign-in at a time: two callers finding the key expired must not both sign in (the
    /// second sign-in would invalidate the key the first one just stored at the partner).
    refresh: tokio::sync::Mutex<()>,
}

impl SessionKeyStore {
    pub fn new(
        pool: SqlitePool,
        master: &SecretBytes,
        clock: SharedClock,
    ) -> Result<SessionKeyStore, KeyError> {
        Ok(SessionKeyStore {
            pool,
            clock,
            sealer: Sealer::new(master)?,
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    /// Stores (replacing) the session key of `link`.
    pub async fn put(&self, link: &str, session: &SessionKey) -> Result<(), KeyError> {
        if session.key.is_empty() {
            return Err(KeyError::BadSessionKey {
                link: link.to_string(),
                reason: "empty key".into(),
            });
        }
        let expires_at = session.expires_at.format(TIME_FORMAT).to_string();
        let blob = self.sealer.seal(link, &expires_at, &session.key)?;
        let now = self.clock.now().format(TIME_FORMAT).to_string();
        sqlx::query(
            "INSERT INTO session_keys (link, sealed_hex, key_id, key_fp, obtained_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(link) DO UPDATE SET sealed_hex = excluded.sealed_hex,
                 key_id = excluded.key_id, key_fp = excluded.key_fp,
                 obtained_at = excluded.obtained_at, expires_at = excluded.expires_at",
        )
        .bind(link)
        .bind(hex::encode(&blob))
        .bind(&session.key_id)
        .bind(session.key.fingerprint())
        .bind(&now)
        .bind(&expires_at)
        .execute(&self.pool)
        .await?;
        tracing::info!(link, key_fp = %session.key.fingerprint(), expires_at = %expires_at, "Session key stored.");
        Ok(())
    }

    /// The session key of `link`; `None` when there is none or it has expired. A blob that does
    /// not open (tampered, wrong master key) is an error, never a key.
    pub async fn get(&self, link: &str) -> Result<Option<SessionKey>, KeyError> {
        let row =
            sqlx::query("SELECT sealed_hex, key_id, expires_at FROM session_keys WHERE link = ?")
                .bind(link)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed_hex: String = row.try_get("sealed_hex")?;
        let key_id: Option<String> = row.try_get("key_id")?;
        let expires_text: String = row.try_get("expires_at")?;
        let expires_at =
            NaiveDateTime::parse_from_str(&expires_text, TIME_FORMAT).map_err(|_| {
                KeyError::SealRefused {
                    link: link.to_string(),
                    reason: "unreadable expiry",
                }
            })?;
        let blob = hex::decode(&sealed_hex).map_err(|_| KeyError::SealRefused {
            link: link.to_string(),
            reason: "not hex",
        })?;
        let key = self.sealer.open(link, &expires_text, &blob)?;
        if self.clock.now() >= expires_at {
            return Ok(None);
        }
        Ok(Some(SessionKey {
            key,
            key_id,
            expires_at,
        }))
    }

    /// Forgets the session key of `link` (the partner rejected it).
    pub async fn invalidate(&self, link: &str) -> Result<(), KeyError> {
        sqlx::query("DELETE FROM session_keys WHERE link = ?")
            .bind(link)
            .execute(&self.pool)
            .await?;
        tracing::info!(link, "Session key invalidated.");
        Ok(())
    }

    /// The stored key while it is valid; otherwise signs in (once, even with concurrent callers),
    /// stores the new key and returns it.
    pub async fn get_or_refresh<F, Fut, E>(
        &self,
        link: &str,
        sign_in: F,
    ) -> Result<SessionKey, KeyError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<SessionKey, E>>,
        E: std::fmt::Display,
    {
        let _guard = self.refresh.lock().await;
        if let Some(session) = self.get(link).await? {
            return Ok(session);
        }
        let session = sign_in().await.map_err(|e| KeyError::SignIn {
            link: link.to_string(),
            reason: e.to_string(),
        })?;
        if session.expires_at <= self.clock.now() {
            return Err(KeyError::BadSessionKey {
                link: link.to_string(),
                reason: "expired on arrival".into(),
            });
        }
        self.put(link, &session).await?;
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use chrono::{Duration, NaiveDate};
    use codecs::clock::ManualClock;

    use super::*;
    use crate::journal::Journal;

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 3)
            .and_then(|d| d.and_hms_opt(h, m, 0))
            .expect("time")
    }

    /// Spec 05's session key: E0A6C25F6305EEFF95BBF07010580123, KeyId 26120201.
    fn spec05_session() -> SessionKey {
        SessionKey {
            key: SecretBytes::new(hex::decode("E0A6C25F6305EEFF95BBF07010580123").expect("hex")),
            key_id: Some("26120201".into()),
            expires_at: at(23, 0),
        }
    }

    fn master(byte: u8) -> SecretBytes {
        SecretBytes::new(vec![byte; 16])
    }

    async fn store(
        master_key: &SecretBytes,
    ) -> (
        tempfile::TempDir,
        Journal,
        Arc<ManualClock>,
        SessionKeyStore,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        let journal = Journal::open(&url).await.expect("journal");
        let clock = ManualClock::new(at(9, 0));
        let store =
            SessionKeyStore::new(journal.pool().clone(), master_key, clock.clone()).expect("store");
        (dir, journal, clock, store)
    }

    async fn sealed_hex(journal: &Journal, link: &str) -> String {
        sqlx::query_scalar("SELECT sealed_hex FROM session_keys WHERE link = ?")
            .bind(link)
            .fetch_one(journal.pool())
            .await
            .expect("row")
    }

    #[tokio::test]
    async fn put_get_expire_invalidate() {
        let (_dir, journal, clock, store) = store(&master(7)).await;
        assert!(store.get("HF").await.expect("get").is_none());
        store.put("HF", &spec05_session()).await.expect("put");
        let got = store.get("HF").await.expect("get").expect("present");
        assert_eq!(
            got.key.expose(),
            hex::decode("E0A6C25F6305EEFF95BBF07010580123").expect("hex")
        );
        assert_eq!(got.key_id.as_deref(), Some("26120201"));
        assert_eq!(got.expires_at, at(23, 0));
        // At rest the key is not in the clear.
        let at_rest = sealed_hex(&journal, "HF").await;
        assert!(!at_rest
            .to_uppercase()
            .contains("E0A6C25F6305EEFF95BBF07010580123"));
        // 16 IV + 48 cipher (2 + 2 + 19 + 16 = 39 bytes padded) + 32 tag.
        assert_eq!(at_rest.len(), 2 * (16 + 48 + 32));

        store.invalidate("HF").await.expect("invalidate");
        assert!(store.get("HF").await.expect("get").is_none());

        store.put("HF", &spec05_session()).await.expect("put");
        clock.advance_to(at(22, 59));
        assert!(
            store.get("HF").await.expect("get").is_some(),
            "valid until 23:00"
        );
        clock.advance_to(at(23, 0));
        assert!(
            store.get("HF").await.expect("get").is_none(),
            "expired at 23:00"
        );
    }

    #[tokio::test]
    async fn tampered_or_wrongly_keyed_blobs_are_refused() {
        let (dir, journal, clock, store) = store(&master(7)).await;
        store.put("HF", &spec05_session()).await.expect("put");
        let original = sealed_hex(&journal, "HF").await;
        let blob = hex::decode(&original).expect("hex");
        for index in [0, 20, blob.len() - 1] {
            let mut tampered = blob.clone();
            tampered[index] ^= 0x01;
            sqlx::query("UPDATE session_keys SET sealed_hex = ? WHERE link = 'HF'")
                .bind(hex::encode(&tampered))
                .execute(journal.pool())
                .await
                .expect("update");
            let error = store.get("HF").await.expect_err("tampered");
            assert_eq!(error.code(), "KEY_SEAL_REFUSED", "byte {index}");
        }
        sqlx::query("UPDATE session_keys SET sealed_hex = ? WHERE link = 'HF'")
            .bind(&original)
            .execute(journal.pool())
            .await
            .expect("restore");
        // Another master key over the same database.
        let other =
            SessionKeyStore::new(journal.pool().clone(), &master(8), clock.clone()).expect("store");
        assert_eq!(
            other.get("HF").await.err().map(|e| e.code()),
            Some("KEY_SEAL_REFUSED")
        );
        // An expiry pushed out in the table.
        sqlx::query("UPDATE session_keys SET expires_at = '2099-01-01 00:00:00' WHERE link = 'HF'")
            .execute(journal.pool())
            .await
            .expect("update");
        assert_eq!(
            store.get("HF").await.err().map(|e| e.code()),
            Some("KEY_SEAL_REFUSED")
        );
        // The blob copied to another link.
        sqlx::query(
            "INSERT INTO session_keys (link, sealed_hex, key_id, key_fp, obtained_at, expires_at)
             VALUES ('OTHER', ?, NULL, 'x', 'x', '2026-12-03 23:00:00')",
        )
        .bind(&original)
        .execute(journal.pool())
        .await
        .expect("insert");
        assert_eq!(
            store.get("OTHER").await.err().map(|e| e.code()),
            Some("KEY_SEAL_REFUSED")
        );
        drop(dir);
    }

    #[tokio::test]
    async fn a_short_master_key_is_refused() {
        let (_dir, journal, clock, _store) = store(&master(7)).await;
        let short = SecretBytes::new(vec![1; 8]);
        let error = SessionKeyStore::new(journal.pool().clone(), &short, clock).expect_err("short");
        assert_eq!(error.code(), "KEY_CRYPTO");
    }

    #[tokio::test]
    async fn get_or_refresh_signs_in_only_when_needed() {
        let (_dir, _journal, clock, store) = store(&master(7)).await;
        let calls = AtomicUsize::new(0);
        let sign_in = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(spec05_session())
        };
        let first = store.get_or_refresh("HF", sign_in).await.expect("signs in");
        assert_eq!(first.key_id.as_deref(), Some("26120201"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        store.get_or_refresh("HF", sign_in).await.expect("cached");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Rejected by the partner: invalidated, the next call signs in again.
        store.invalidate("HF").await.expect("invalidate");
        store.get_or_refresh("HF", sign_in).await.expect("signs in");
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Expired: signs in again; a key that arrives expired is refused.
        clock.advance(Duration::hours(15));
        let stale = store
            .get_or_refresh("HF", sign_in)
            .await
            .expect_err("expired on arrival");
        assert_eq!(stale.code(), "KEY_BAD_SESSION_KEY");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let failing = store
            .get_or_refresh("HF", || async {
                Err::<SessionKey, _>("E0102 会话密钥无效")
            })
            .await
            .expect_err("sign-in fails");
        assert_eq!(failing.code(), "KEY_SIGN_IN");
    }
}
