//! Secret bytes (MAC keys, session keys, HMAC secrets): zeroized when dropped, never printed.

use super::{parse_hex, sm3, CryptoError};
use std::fmt;
use zeroize::Zeroizing;

/// Key material. `Debug` shows the length and a fingerprint only; there is no `Display`, so a
/// secret cannot end up in a log line or an error by accident. Every copy (`Clone`) is zeroized
/// when it is dropped.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// From hex as configuration holds it (either case, nothing else). The error never repeats
    /// the text.
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        parse_hex(text).map(Self::new)
    }

    /// The bytes, for the crypto call that needs them. Do not copy them into anything that is
    /// not zeroized.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first 8 hex digits (uppercase) of SM3 of the bytes: tells two keys apart in logs and
    /// key-exchange records without revealing them. Meant for random keys (16 bytes and up): for
    /// a short low-entropy secret such as a PIN, 32 bits of its hash would let it be guessed.
    pub fn fingerprint(&self) -> String {
        let digest = sm3::digest(&self.0);
        hex::encode_upper(digest.get(..4).unwrap_or_default())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretBytes(<{} bytes, fp {}>)",
            self.len(),
            self.fingerprint()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let secret = SecretBytes::from_hex("0123456789abcdeffedcba9876543210").expect("hex");
        let shown = format!("{secret:?} {secret:#?}");
        for fragment in ["0123", "89ab", "cdef", "3210", "[1,", "1, 35"] {
            assert!(!shown.to_lowercase().contains(fragment), "{shown}");
        }
        assert!(shown.starts_with("SecretBytes(<16 bytes, fp "), "{shown}");
        // Inside a derived Debug of a config struct too.
        #[derive(Debug)]
        #[allow(dead_code)]
        struct LinkConfig {
            mac_key: SecretBytes,
        }
        let config = format!("{:?}", LinkConfig { mac_key: secret });
        assert!(!config.contains("0123"), "{config}");
    }

    #[test]
    fn fingerprint_is_the_start_of_sm3() {
        // SM3("abc") = 66c7f0f4... (GB/T 32905 example 1).
        let secret = SecretBytes::new(b"abc".to_vec());
        assert_eq!(secret.fingerprint(), "66C7F0F4");
        assert_eq!(format!("{secret:?}"), "SecretBytes(<3 bytes, fp 66C7F0F4>)");
        // SM3 of the empty string = 1ab21d83... (openssl dgst -sm3 of nothing).
        let empty = SecretBytes::new(Vec::new());
        assert!(empty.is_empty());
        assert_eq!(empty.fingerprint(), "1AB21D83");
    }

    #[test]
    fn expose_and_clone_keep_the_bytes() {
        let secret = SecretBytes::new(vec![1, 2, 3]);
        let copy = secret.clone();
        drop(secret);
        assert_eq!(copy.expose(), &[1, 2, 3]);
        assert_eq!(copy.len(), 3);
        assert_eq!(
            SecretBytes::from_hex("zz").map(|s| s.len()),
            Err(CryptoError::BadHex(
                "non-hex character at position 0".to_string()
            ))
        );
    }
}
