//! A link's current and next key. Senders use the current key only; a receiver on a link whose
//! messages carry no key id cannot know which key the partner used during a key change, so it
//! verifies with the current key, then the next, and logs which matched (by fingerprint).

use codecs::crypto::secret::SecretBytes;
use codecs::crypto::sm2::{self, PublicKey, Signature};
use codecs::crypto::CryptoError;

/// Which key of a ring verified a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySlot {
    Current,
    Next,
}

impl KeySlot {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySlot::Current => "current",
            KeySlot::Next => "next",
        }
    }
}

/// Something with a fingerprint that is safe to log.
pub trait Fingerprinted {
    fn fingerprint(&self) -> String;
}

impl Fingerprinted for SecretBytes {
    fn fingerprint(&self) -> String {
        SecretBytes::fingerprint(self)
    }
}

impl Fingerprinted for PublicKey {
    fn fingerprint(&self) -> String {
        PublicKey::fingerprint(self)
    }
}

fn log_match(link: &str, slot: KeySlot, fingerprint: &str) {
    match slot {
        KeySlot::Current => {
            tracing::debug!(
                link,
                key_slot = slot.as_str(),
                key_fp = fingerprint,
                "Verified."
            )
        }
        // Worth an operator's notice: the partner has switched and the promotion is due.
        KeySlot::Next => tracing::info!(
            link,
            key_slot = slot.as_str(),
            key_fp = fingerprint,
            "Verified with the next key: the partner has switched keys."
        ),
    }
}

/// Symmetric MAC keys of one link.
#[derive(Clone, Debug)]
pub struct MacKeyRing {
    link: String,
    current: SecretBytes,
    next: Option<SecretBytes>,
}

impl MacKeyRing {
    pub fn new(link: &str, current: SecretBytes, next: Option<SecretBytes>) -> MacKeyRing {
        MacKeyRing {
            link: link.to_string(),
            current,
            next,
        }
    }

    pub fn link(&self) -> &str {
        &self.link
    }

    /// The key senders use.
    pub fn current(&self) -> &SecretBytes {
        &self.current
    }

    pub fn next(&self) -> Option<&SecretBytes> {
        self.next.as_ref()
    }

    /// Runs `verify` (a scheme's constant-time check) with the current key, then the next;
    /// `None` when neither matches.
    pub fn verify_with<F>(&self, verify: F) -> Option<KeySlot>
    where
        F: Fn(&[u8]) -> bool,
    {
        let candidates = std::iter::once((KeySlot::Current, &self.current))
            .chain(self.next.iter().map(|key| (KeySlot::Next, key)));
        for (slot, key) in candidates {
            if verify(key.expose()) {
                log_match(&self.link, slot, &key.fingerprint());
                return Some(slot);
            }
        }
        tracing::warn!(link = %self.link, "MAC matches neither the current nor the next key.");
        None
    }
}

/// A partner's SM2 public keys on one link.
#[derive(Clone, Debug)]
pub struct PublicKeyRing {
    link: String,
    current: PublicKey,
    next: Option<PublicKey>,
}

impl PublicKeyRing {
    pub fn new(link: &str, current: PublicKey, next: Option<PublicKey>) -> PublicKeyRing {
        PublicKeyRing {
            link: link.to_string(),
            current,
            next,
        }
    }

    pub fn link(&self) -> &str {
        &self.link
    }

    pub fn current(&self) -> &PublicKey {
        &self.current
    }

    pub fn next(&self) -> Option<&PublicKey> {
        self.next.as_ref()
    }

    /// Verifies with the current key, then the next. Fails closed: the error of the last key
    /// tried when neither verifies (VerifyFailed for a well-formed signature).
    pub fn verify(
        &self,
        id: &[u8],
        message: &[u8],
        signature: &Signature,
    ) -> Result<KeySlot, CryptoError> {
        let mut last_error = CryptoError::VerifyFailed;
        let candidates = std::iter::once((KeySlot::Current, &self.current))
            .chain(self.next.iter().map(|key| (KeySlot::Next, key)));
        for (slot, key) in candidates {
            match sm2::verify(key, id, message, signature) {
                Ok(()) => {
                    log_match(&self.link, slot, &key.fingerprint());
                    return Ok(slot);
                }
                Err(error) => last_error = error,
            }
        }
        tracing::warn!(link = %self.link, "Signature verifies with neither the current nor the next key.");
        Err(last_error)
    }
}

/// The ring after the journal's promotions: when the last approved promotion names the
/// configured next key, that key is current and the configured current one stays as "next" (so
/// answers still in flight under it verify) until the configuration is edited.
pub fn apply_promotion<K: Fingerprinted>(
    current: K,
    next: Option<K>,
    promoted_fingerprint: Option<&str>,
) -> (K, Option<K>) {
    match (next, promoted_fingerprint) {
        (Some(next), Some(promoted)) if next.fingerprint() == promoted => (next, Some(current)),
        (next, _) => (current, next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretBytes {
        SecretBytes::new(vec![byte; 16])
    }

    #[test]
    fn verify_tries_current_then_next() {
        let ring = MacKeyRing::new("L", key(1), Some(key(2)));
        assert_eq!(ring.verify_with(|k| k == [1u8; 16]), Some(KeySlot::Current));
        assert_eq!(ring.verify_with(|k| k == [2u8; 16]), Some(KeySlot::Next));
        assert_eq!(ring.verify_with(|k| k == [3u8; 16]), None);
        let no_next = MacKeyRing::new("L", key(1), None);
        assert_eq!(no_next.verify_with(|k| k == [2u8; 16]), None);
        assert_eq!(ring.current().expose(), &[1u8; 16]);
    }

    #[test]
    fn verify_with_a_real_scheme_under_the_next_key() {
        // Spec 01's worked example MAC, under the spec key held as the next key.
        let spec_key: [u8; 16] = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ];
        let mut data = Vec::new();
        data.extend_from_slice(b"1002NSH43102000101MB00010220261203101010B2026120300000000002");
        data.extend_from_slice(&[b' '; 44]);
        data.extend_from_slice(b"4310020000000001000000030000000000022335");
        data.extend_from_slice(b"6230901000000000011");
        data.extend_from_slice(&[b' '; 13]);
        let ring = MacKeyRing::new(
            "CDGJ-NSH43102",
            key(9),
            Some(SecretBytes::new(spec_key.to_vec())),
        );
        let check = |k: &[u8]| {
            <[u8; 16]>::try_from(k)
                .map(|k| codecs::mac::verify_cdgj_mac(&k, &data, b"10B87B1C3800640D"))
                .unwrap_or(false)
        };
        assert_eq!(ring.verify_with(check), Some(KeySlot::Next));
    }

    #[test]
    fn promotion_swaps_only_when_the_next_key_was_promoted() {
        let next_fp = key(2).fingerprint();
        let (current, next) = apply_promotion(key(1), Some(key(2)), Some(&next_fp));
        assert_eq!(current.expose(), &[2u8; 16]);
        assert_eq!(next.map(|k| k.expose().to_vec()), Some(vec![1u8; 16]));
        // The promoted key is the configured current one already: nothing to do.
        let current_fp = key(1).fingerprint();
        let (current, next) = apply_promotion(key(1), Some(key(2)), Some(&current_fp));
        assert_eq!(current.expose(), &[1u8; 16]);
        assert_eq!(next.map(|k| k.expose().to_vec()), Some(vec![2u8; 16]));
        let (current, next) = apply_promotion(key(1), Some(key(2)), None);
        assert_eq!(current.expose(), &[1u8; 16]);
        assert!(next.is_some());
        let (current, next) = apply_promotion(key(1), None, Some(&next_fp));
        assert_eq!(current.expose(), &[1u8; 16]);
        assert!(next.is_none());
    }
}
