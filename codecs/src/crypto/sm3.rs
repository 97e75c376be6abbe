//! SM3 (GB/T 32905-2016) and HMAC-SM3 (RFC 2104 with SM3, 64-byte block), on RustCrypto's `sm3`
//! and `hmac`. Both are total: every input, any key length included, has an answer.

use hmac::{Hmac, Mac};
use sm3::{Digest, Sm3};
use zeroize::Zeroize;

/// SM3's input block, which is also HMAC's key block.
const BLOCK_BYTES: usize = 64;

/// The 32-byte SM3 digest of `data`.
pub fn digest(data: &[u8]) -> [u8; 32] {
    Sm3::digest(data).into()
}

/// HMAC-SM3 (RFC 2104): a key longer than the 64-byte block is hashed first, a shorter one is padded
/// with zeros. Any key length is accepted, the empty key included.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // The key is brought to one block here, exactly as RFC 2104 does it, so the infallible
    // fixed-size constructor can be used instead of `new_from_slice`'s Result.
    let mut key_block = [0u8; BLOCK_BYTES];
    if key.len() > BLOCK_BYTES {
        let mut hashed = digest(key);
        for (slot, byte) in key_block.iter_mut().zip(hashed.iter()) {
            *slot = *byte;
        }
        hashed.zeroize();
    } else {
        for (slot, byte) in key_block.iter_mut().zip(key) {
            *slot = *byte;
        }
    }
    let mut mac = <Hmac<Sm3> as hmac::digest::KeyInit>::new(&key_block.into());
    key_block.zeroize();
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::parse_hex;
    use rand::{Rng, SeedableRng};
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn hex_of(bytes: &[u8]) -> String {
        hex::encode(bytes)
    }

    #[test]
    fn gbt_32905_examples() {
        // GB/T 32905-2016 appendix A, examples 1 and 2.
        assert_eq!(
            hex_of(&digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            hex_of(&digest("abcd".repeat(16).as_bytes())),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }

    #[test]
    fn empty_input_matches_openssl() {
        // printf '' | openssl dgst -sm3   (OpenSSL 3.0.19)
        assert_eq!(
            hex_of(&digest(b"")),
            "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"
        );
    }

    #[test]
    fn hmac_matches_openssl_constants() {
        // Each value from OpenSSL 3.0.19:
        //   printf '<data>' | openssl mac -digest SM3 -macopt hexkey:<key> HMAC
        let cases: [(&str, &[u8], &str); 4] = [
            (
                // hexkey:0102030405060708090a0b0c0d0e0f10, data "abc"
                "0102030405060708090a0b0c0d0e0f10",
                b"abc",
                "a673f5905a6f786cccead2c394198d6716fe523f3c70da9adfdb8abb2da88345",
            ),
            (
                // the empty key: -macopt hexkey: (nothing), data "abc"
                "",
                b"abc",
                "36525058ca466791502435c910517f1a7e86613d5f35ac1f18a94def0eaac81f",
            ),
            (
                // a 64-byte key (one whole block, used as is): 00..3f, data "abcd"x16
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
                 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
                b"abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd",
                "ce780a08f3002ebc20f5ae435a94a29a1862af97ce9b60fff373da1cbbeea0b1",
            ),
            (
                // an 80-byte key (longer than a block, hashed first): 00..4f, empty data
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
                 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
                 404142434445464748494a4b4c4d4e4f",
                b"",
                "9132d8fd8fc168f6ad661a2dfb82adbe55368ad02cc6af57356a9737aac9f961",
            ),
        ];
        for (key_hex, data, expected) in cases {
            let key_hex: String = key_hex.split_whitespace().collect();
            let key = parse_hex(&key_hex).expect("test key");
            assert_eq!(hex_of(&hmac(&key, data)), expected, "key {key_hex}");
        }
    }

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

    fn openssl_with_stdin(args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn openssl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        let output = child.wait_with_output().expect("openssl output");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    #[test]
    fn digest_agrees_with_openssl_on_random_inputs() {
        if !openssl_available() {
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5333_2026);
        for case in 0..50 {
            // Lengths spread over 0..300, the block edges 55/56/63/64/65 included.
            let length = match case {
                0 => 0,
                1 => 55,
                2 => 56,
                3 => 64,
                4 => 65,
                _ => rng.gen_range(0..300),
            };
            let data: Vec<u8> = (0..length).map(|_| rng.gen()).collect();
            let stdout = openssl_with_stdin(&["dgst", "-sm3", "-hex", "-r"], &data);
            let text = String::from_utf8(stdout).expect("utf-8");
            let openssl_hex = text.split_whitespace().next().expect("digest");
            assert_eq!(hex_of(&digest(&data)), openssl_hex, "length {length}");
        }
    }

    #[test]
    fn hmac_agrees_with_openssl_on_random_keys() {
        if !openssl_available() {
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x484d_4143);
        for key_length in [1usize, 16, 32, 63, 64, 65, 100] {
            let key: Vec<u8> = (0..key_length).map(|_| rng.gen()).collect();
            let data: Vec<u8> = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect();
            let key_option = format!("hexkey:{}", hex::encode(&key));
            let stdout = openssl_with_stdin(
                &["mac", "-digest", "SM3", "-macopt", &key_option, "HMAC"],
                &data,
            );
            let text = String::from_utf8(stdout).expect("utf-8");
            assert_eq!(
                hex::encode_upper(hmac(&key, &data)),
                text.trim(),
                "key length {key_length}"
            );
        }
    }
}
