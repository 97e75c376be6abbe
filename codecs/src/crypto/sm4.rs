//! SM4 (GB/T 32907-2016) on RustCrypto's `sm4`, `ecb` and `cbc`: one block, ECB and CBC, with
//! PKCS#7, zero or no padding. Keys and IVs arrive as slices (from configuration or the wire) and a
//! wrong length is an error, never a panic.
//!
//! Padding is done here rather than by `cipher`'s padded helpers so that every failure is one of
//! our typed errors and the PKCS#7 check covers every pad byte.

use super::CryptoError;
use cipher::block_padding::NoPadding;
use cipher::{BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit};
use sm4::Sm4;

/// The SM4 block, key and CBC IV size.
pub const BLOCK_BYTES: usize = 16;

/// How the plaintext is brought to a whole number of blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// PKCS#7: always adds 1..=16 bytes, each equal to their count (a whole block when the data is
    /// already aligned). Decryption checks every pad byte and removes them.
    Pkcs7,
    /// 0x00 bytes up to a block multiple (none when aligned). Decryption strips NOTHING: zero
    /// padding cannot be told from trailing zero bytes of the data, so the caller, who knows the
    /// length from the protocol, cuts the plaintext itself.
    Zero,
    /// No padding: the data must already be a block multiple, else `BadDataLength`.
    None,
}

/// Encrypts one block. Both arguments are fixed-size, so this cannot fail.
pub fn encrypt_block(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    let cipher = Sm4::new(key.into());
    let mut out = [0u8; BLOCK_BYTES];
    cipher.encrypt_block_b2b(block.into(), (&mut out).into());
    out
}

/// SM4-ECB. Only for what a spec prescribes it for (key check values): ECB shows equal blocks.
pub fn ecb_encrypt(key: &[u8], data: &[u8], padding: Padding) -> Result<Vec<u8>, CryptoError> {
    let key = key_array(key)?;
    let mut buffer = pad(data, padding)?;
    let length = buffer.len();
    ecb::Encryptor::<Sm4>::new((&key).into())
        .encrypt_padded_mut::<NoPadding>(&mut buffer, length)
        .map_err(|_| CryptoError::BadDataLength { found: length })?;
    Ok(buffer)
}

pub fn ecb_decrypt(key: &[u8], data: &[u8], padding: Padding) -> Result<Vec<u8>, CryptoError> {
    let key = key_array(key)?;
    let mut buffer = whole_blocks(data)?;
    ecb::Decryptor::<Sm4>::new((&key).into())
        .decrypt_padded_mut::<NoPadding>(&mut buffer)
        .map_err(|_| CryptoError::BadDataLength { found: data.len() })?;
    unpad(buffer, padding)
}

/// SM4-CBC with the given 16-byte IV.
pub fn cbc_encrypt(
    key: &[u8],
    iv: &[u8],
    data: &[u8],
    padding: Padding,
) -> Result<Vec<u8>, CryptoError> {
    let key = key_array(key)?;
    let iv = iv_array(iv)?;
    let mut buffer = pad(data, padding)?;
    let length = buffer.len();
    cbc::Encryptor::<Sm4>::new((&key).into(), (&iv).into())
        .encrypt_padded_mut::<NoPadding>(&mut buffer, length)
        .map_err(|_| CryptoError::BadDataLength { found: length })?;
    Ok(buffer)
}

pub fn cbc_decrypt(
    key: &[u8],
    iv: &[u8],
    data: &[u8],
    padding: Padding,
) -> Result<Vec<u8>, CryptoError> {
    let key = key_array(key)?;
    let iv = iv_array(iv)?;
    let mut buffer = whole_blocks(data)?;
    cbc::Decryptor::<Sm4>::new((&key).into(), (&iv).into())
        .decrypt_padded_mut::<NoPadding>(&mut buffer)
        .map_err(|_| CryptoError::BadDataLength { found: data.len() })?;
    unpad(buffer, padding)
}

fn key_array(key: &[u8]) -> Result<[u8; 16], CryptoError> {
    <[u8; 16]>::try_from(key).map_err(|_| CryptoError::BadKeyLength {
        expected: BLOCK_BYTES,
        found: key.len(),
    })
}

fn iv_array(iv: &[u8]) -> Result<[u8; 16], CryptoError> {
    <[u8; 16]>::try_from(iv).map_err(|_| CryptoError::BadIvLength { found: iv.len() })
}

fn whole_blocks(data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if !data.len().is_multiple_of(BLOCK_BYTES) {
        return Err(CryptoError::BadDataLength { found: data.len() });
    }
    Ok(data.to_vec())
}

fn pad(data: &[u8], padding: Padding) -> Result<Vec<u8>, CryptoError> {
    let remainder = data.len() % BLOCK_BYTES;
    let mut buffer = Vec::with_capacity(data.len() + BLOCK_BYTES);
    buffer.extend_from_slice(data);
    match padding {
        Padding::Pkcs7 => {
            let pad_bytes = BLOCK_BYTES - remainder;
            // pad_bytes is 1..=16, so the cast cannot truncate.
            buffer.resize(data.len() + pad_bytes, pad_bytes as u8);
        }
        Padding::Zero => {
            if remainder != 0 {
                buffer.resize(data.len() + BLOCK_BYTES - remainder, 0);
            }
        }
        Padding::None => {
            if remainder != 0 {
                return Err(CryptoError::BadDataLength { found: data.len() });
            }
        }
    }
    Ok(buffer)
}

/// Removes PKCS#7 padding after checking every pad byte. The check reads the whole last block
/// whatever the pad length, so its time does not tell where the padding went wrong.
fn unpad(mut plaintext: Vec<u8>, padding: Padding) -> Result<Vec<u8>, CryptoError> {
    if padding != Padding::Pkcs7 {
        return Ok(plaintext);
    }
    let Some(&last) = plaintext.last() else {
        return Err(CryptoError::BadPadding);
    };
    let pad_bytes = usize::from(last);
    let mut bad =
        u8::from(pad_bytes == 0 || pad_bytes > BLOCK_BYTES || pad_bytes > plaintext.len());
    for (distance, byte) in plaintext.iter().rev().take(BLOCK_BYTES).enumerate() {
        let inside_pad = u8::from(distance < pad_bytes);
        bad |= inside_pad & u8::from(*byte != last);
    }
    if std::hint::black_box(bad) != 0 {
        return Err(CryptoError::BadPadding);
    }
    plaintext.truncate(plaintext.len() - pad_bytes);
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::parse_hex;
    use rand::{Rng, SeedableRng};
    use std::process::Command;

    const GBT_KEY: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32,
        0x10,
    ];

    #[test]
    fn gbt_32907_single_block() {
        // GB/T 32907-2016 appendix A.1: key = plaintext = 0123456789abcdeffedcba9876543210.
        assert_eq!(
            hex::encode(encrypt_block(&GBT_KEY, &GBT_KEY)),
            "681edf34d206965e86b3e94f536e4246"
        );
        assert_eq!(
            ecb_encrypt(&GBT_KEY, &GBT_KEY, Padding::None).map(hex::encode),
            Ok("681edf34d206965e86b3e94f536e4246".to_string())
        );
        let cipher_block = parse_hex("681edf34d206965e86b3e94f536e4246").expect("hex");
        assert_eq!(
            ecb_decrypt(&GBT_KEY, &cipher_block, Padding::None),
            Ok(GBT_KEY.to_vec())
        );
    }

    fn million_times() -> [u8; 16] {
        let mut block = GBT_KEY;
        for _ in 0..1_000_000 {
            block = encrypt_block(&GBT_KEY, &block);
        }
        block
    }

    /// GB/T 32907-2016 appendix A.2: the same block encrypted 1,000,000 times. `encrypt_block`
    /// sets up the key schedule on every call, as callers do, so this is the slow path on purpose.
    #[test]
    fn gbt_32907_million_iterations() {
        assert_eq!(
            hex::encode(million_times()),
            "595298c7c6fd271f0402f804c33d3f66"
        );
    }

    #[test]
    fn pkcs7_adds_a_whole_block_when_aligned() {
        let sixteen = [0x11u8; 16];
        let out = ecb_encrypt(&GBT_KEY, &sixteen, Padding::Pkcs7).expect("encrypt");
        assert_eq!(out.len(), 32);
        // The second block is the encryption of sixteen 0x10 bytes alone.
        let pad_block = encrypt_block(&GBT_KEY, &[0x10; 16]);
        assert_eq!(out.get(16..), Some(&pad_block[..]));
        assert_eq!(
            ecb_decrypt(&GBT_KEY, &out, Padding::Pkcs7),
            Ok(sixteen.to_vec())
        );
        // Empty input is one whole pad block.
        assert_eq!(
            ecb_encrypt(&GBT_KEY, b"", Padding::Pkcs7),
            Ok(pad_block.to_vec())
        );
        assert_eq!(
            ecb_decrypt(&GBT_KEY, &pad_block, Padding::Pkcs7),
            Ok(vec![])
        );
    }

    #[test]
    fn zero_padding_adds_nothing_when_aligned_and_strips_nothing() {
        let out = cbc_encrypt(&GBT_KEY, &[0u8; 16], b"abc", Padding::Zero).expect("encrypt");
        assert_eq!(out.len(), 16);
        let mut expected = b"abc".to_vec();
        expected.resize(16, 0);
        assert_eq!(
            cbc_decrypt(&GBT_KEY, &[0u8; 16], &out, Padding::Zero),
            Ok(expected)
        );
        assert_eq!(
            cbc_encrypt(&GBT_KEY, &[0u8; 16], &[7u8; 32], Padding::Zero).map(|v| v.len()),
            Ok(32)
        );
        assert_eq!(
            cbc_encrypt(&GBT_KEY, &[0u8; 16], b"", Padding::Zero),
            Ok(vec![])
        );
    }

    #[test]
    fn cbc_matches_openssl_constant() {
        // printf 'abc' | openssl enc -sm4-cbc -K 0123456789abcdeffedcba9876543210
        //   -iv 000102030405060708090a0b0c0d0e0f | xxd -p   (OpenSSL 3.0.19, PKCS#7)
        let iv: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            cbc_encrypt(&GBT_KEY, &iv, b"abc", Padding::Pkcs7).map(hex::encode),
            Ok("4301693c448c7da7cff13f84690f7dea".to_string())
        );
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let iv = [0u8; 16];
        for key_length in [0usize, 15, 17, 32] {
            let key = vec![1u8; key_length];
            let expected = Err(CryptoError::BadKeyLength {
                expected: 16,
                found: key_length,
            });
            assert_eq!(ecb_encrypt(&key, b"x", Padding::Pkcs7), expected);
            assert_eq!(ecb_decrypt(&key, &[0u8; 16], Padding::Pkcs7), expected);
            assert_eq!(cbc_encrypt(&key, &iv, b"x", Padding::Pkcs7), expected);
            assert_eq!(cbc_decrypt(&key, &iv, &[0u8; 16], Padding::Pkcs7), expected);
        }
        for iv_length in [0usize, 8, 15, 17] {
            let iv = vec![0u8; iv_length];
            let expected = Err(CryptoError::BadIvLength { found: iv_length });
            assert_eq!(cbc_encrypt(&GBT_KEY, &iv, b"x", Padding::Pkcs7), expected);
            assert_eq!(
                cbc_decrypt(&GBT_KEY, &iv, &[0u8; 16], Padding::Pkcs7),
                expected
            );
        }
        for data_length in [1usize, 15, 17, 31] {
            let data = vec![0u8; data_length];
            let expected = Err(CryptoError::BadDataLength { found: data_length });
            for padding in [Padding::Pkcs7, Padding::Zero, Padding::None] {
                assert_eq!(ecb_decrypt(&GBT_KEY, &data, padding), expected);
                assert_eq!(cbc_decrypt(&GBT_KEY, &iv, &data, padding), expected);
            }
            assert_eq!(ecb_encrypt(&GBT_KEY, &data, Padding::None), expected);
            assert_eq!(cbc_encrypt(&GBT_KEY, &iv, &data, Padding::None), expected);
        }
        // Empty ciphertext: a whole number of blocks, but no PKCS#7 pad byte to read.
        assert_eq!(
            cbc_decrypt(&GBT_KEY, &iv, b"", Padding::Pkcs7),
            Err(CryptoError::BadPadding)
        );
        assert_eq!(cbc_decrypt(&GBT_KEY, &iv, b"", Padding::None), Ok(vec![]));
    }

    /// Encrypts a hand-built last block with no padding, then decrypts it as PKCS#7.
    fn decrypt_as_pkcs7(plain_block: [u8; 16]) -> Result<Vec<u8>, CryptoError> {
        let cipher_block = encrypt_block(&GBT_KEY, &plain_block);
        ecb_decrypt(&GBT_KEY, &cipher_block, Padding::Pkcs7)
    }

    #[test]
    fn every_wrong_pad_byte_is_refused() {
        // Good: "abcdefghij" then six 0x06.
        let mut good = [0x06u8; 16];
        good[..10].copy_from_slice(b"abcdefghij");
        assert_eq!(decrypt_as_pkcs7(good), Ok(b"abcdefghij".to_vec()));
        // Each of the five pad bytes before the last one, changed in turn.
        for position in 10..15 {
            let mut bad = good;
            bad[position] = 0x05;
            assert_eq!(
                decrypt_as_pkcs7(bad),
                Err(CryptoError::BadPadding),
                "{position}"
            );
        }
        // Pad 0 and pad 17 (and anything above 16) are never valid.
        for last in [0x00u8, 0x11, 0x20, 0xff] {
            let mut bad = [last; 16];
            bad[0] = b'a';
            assert_eq!(
                decrypt_as_pkcs7(bad),
                Err(CryptoError::BadPadding),
                "{last}"
            );
        }
        // A whole pad block with one wrong byte anywhere in it.
        for position in 0..15 {
            let mut bad = [0x10u8; 16];
            bad[position] = 0x0f;
            assert_eq!(
                decrypt_as_pkcs7(bad),
                Err(CryptoError::BadPadding),
                "{position}"
            );
        }
        assert_eq!(decrypt_as_pkcs7([0x10; 16]), Ok(vec![]));
    }

    #[test]
    fn random_round_trips_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x534d_3421);
        for _ in 0..200 {
            let data: Vec<u8> = (0..rng.gen_range(0..70)).map(|_| rng.gen()).collect();
            let iv: [u8; 16] = rng.gen();
            let out = cbc_encrypt(&GBT_KEY, &iv, &data, Padding::Pkcs7).expect("encrypt");
            assert_eq!(
                cbc_decrypt(&GBT_KEY, &iv, &out, Padding::Pkcs7),
                Ok(data.clone())
            );
            // Garbage of any length decrypts to a value or a typed error.
            let garbage: Vec<u8> = (0..rng.gen_range(0..70)).map(|_| rng.gen()).collect();
            let _ = cbc_decrypt(&GBT_KEY, &iv, &garbage, Padding::Pkcs7);
            let _ = ecb_decrypt(&GBT_KEY, &garbage, Padding::Pkcs7);
        }
    }

    // ---- interop with the openssl binary (skipped with a note only where it is missing) ----

    fn openssl_available() -> bool {
        let found = Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            println!("NOTE: openssl is not on PATH; interop test skipped (CI has it)");
        }
        found
    }

    /// Runs `openssl enc` over a temporary input file and returns its output file's bytes.
    fn openssl_enc(args: &[&str], input: &[u8]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!(
            "codecs-sm4-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let in_path = dir.join("in.bin");
        let out_path = dir.join("out.bin");
        std::fs::write(&in_path, input).expect("write input");
        let output = Command::new("openssl")
            .arg("enc")
            .args(args)
            .arg("-in")
            .arg(&in_path)
            .arg("-out")
            .arg(&out_path)
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl enc {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result = std::fs::read(&out_path).expect("read output");
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    #[test]
    fn openssl_decrypts_ours_and_we_decrypt_openssls() {
        if !openssl_available() {
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x0e55_1234);
        for length in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 257] {
            let key: [u8; 16] = rng.gen();
            let iv: [u8; 16] = rng.gen();
            let data: Vec<u8> = (0..length).map(|_| rng.gen()).collect();
            let key_hex = hex::encode(key);
            let iv_hex = hex::encode(iv);

            // CBC, PKCS#7, both directions.
            let ours = cbc_encrypt(&key, &iv, &data, Padding::Pkcs7).expect("encrypt");
            let cbc_args = ["-sm4-cbc", "-K", key_hex.as_str(), "-iv", iv_hex.as_str()];
            let mut decrypt_args = vec!["-d"];
            decrypt_args.extend_from_slice(&cbc_args);
            assert_eq!(openssl_enc(&decrypt_args, &ours), data, "cbc -d {length}");
            let theirs = openssl_enc(&cbc_args, &data);
            assert_eq!(theirs, ours, "cbc {length}");
            assert_eq!(
                cbc_decrypt(&key, &iv, &theirs, Padding::Pkcs7),
                Ok(data.clone())
            );

            // ECB, PKCS#7, both directions.
            let ours = ecb_encrypt(&key, &data, Padding::Pkcs7).expect("encrypt");
            let ecb_args = ["-sm4-ecb", "-K", key_hex.as_str()];
            let mut decrypt_args = vec!["-d"];
            decrypt_args.extend_from_slice(&ecb_args);
            assert_eq!(openssl_enc(&decrypt_args, &ours), data, "ecb -d {length}");
            let theirs = openssl_enc(&ecb_args, &data);
            assert_eq!(ecb_decrypt(&key, &theirs, Padding::Pkcs7), Ok(data.clone()));

            // No padding, whole blocks only.
            if length % 16 == 0 {
                let ours = cbc_encrypt(&key, &iv, &data, Padding::None).expect("encrypt");
                let mut nopad_args = cbc_args.to_vec();
                nopad_args.push("-nopad");
                assert_eq!(openssl_enc(&nopad_args, &data), ours, "nopad {length}");
            }
        }
    }
}
