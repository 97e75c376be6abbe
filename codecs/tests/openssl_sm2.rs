//! SM2 interop with the `openssl` binary (OpenSSL 3): keys, signatures and ciphertexts made by one
//! side are read by the other. Every test prints a note and passes if `openssl` is not installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use codecs::crypto::sm2::{self, PrivateKey, PublicKey, Signature, DEFAULT_ID};

/// Spec 03 worked example: the signing string, verbatim.
const MEDICAL_SIGNING_STRING: &str = "bankCode=HHXH0001&encData=Pq4r21+LbzABbXpK7hVxyzsirUzLHnzrD38Wzz6qDCfN2ic84RgkpsDHgtuMa28vV/rOfsm/qamcqIWeOiY1hu3SMVe2jFUys5Y9FOOo4ZBbe/HbJB+jU33C2GW4mLEI4OSaV26KgRNzEf16rcOGO3dRw7AjjHSWuGCZA9g+ae+yLmOyZkAYIrG9qUR0SVqNSwbFvjXdpHjX10Af5Yi++Q==&iv=000102030405060708090a0b0c0d0e0f&reqSerial=XH202612021030150001&reqTime=20261202103015&txCode=2001&version=1.0";
/// Spec 09 worked example: the HTTP body, verbatim.
const TOBACCO_BODY: &str = "{\"bureauCode\":\"430600\",\"pushId\":\"P202612020001\",\"pushTime\":\"20261202083000\",\"orders\":[{\"orderNo\":\"YC20261202000123\",\"licenceNo\":\"430602100123\",\"retailerName\":\"岳阳楼区张三便利店\",\"amount\":1256800,\"orderDate\":\"20261202\",\"dueDate\":\"20261205\",\"itemCount\":7,\"itemsSummary\":\"卷烟7个品规，共25条\"}]}";

fn openssl_missing() -> bool {
    let missing = Command::new("openssl").arg("version").output().is_err();
    if missing {
        eprintln!("NOTE: `openssl` not found: SM2 interop test skipped");
    }
    missing
}

/// A fresh scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "codecs-openssl-sm2-{}-{}-{}",
            std::process::id(),
            name,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl")
}

fn openssl_ok(args: &[&str]) -> Vec<u8> {
    let output = openssl(args);
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// `openssl dgst -sm3 -verify` with the given ID, as the partner specs tell a partner to check.
fn openssl_verifies(public_pem: &Path, message: &Path, der_signature: &Path, id: &str) -> bool {
    let output = openssl(&[
        "dgst",
        "-sm3",
        "-verify",
        s(public_pem),
        "-sigopt",
        &format!("distid:{id}"),
        "-signature",
        s(der_signature),
        s(message),
    ]);
    let verified = String::from_utf8_lossy(&output.stdout).contains("Verified OK");
    assert_eq!(
        verified,
        output.status.success(),
        "exit status and text disagree"
    );
    verified
}

#[test]
fn openssl_key_pair_loads_in_every_form() {
    if openssl_missing() {
        return;
    }
    let dir = Scratch::new("keys");
    let key_pem = dir.path("key.pem");
    openssl_ok(&["genpkey", "-algorithm", "SM2", "-out", s(&key_pem)]);
    let public_pem = openssl_ok(&["pkey", "-in", s(&key_pem), "-pubout"]);
    // `pkey -outform DER` writes the SEC1 structure for an EC key; PKCS#8 DER needs `pkcs8 -topk8`.
    let key_der = openssl_ok(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        s(&key_pem),
        "-outform",
        "DER",
    ]);
    let public_der = openssl_ok(&["pkey", "-in", s(&key_pem), "-pubout", "-outform", "DER"]);
    // OpenSSL 3.0 labels this SEC1 structure "SM2 PRIVATE KEY".
    let sec1_pem = openssl_ok(&["ec", "-in", s(&key_pem)]);

    let key = PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&key_pem).expect("read"))
        .expect("OpenSSL PKCS#8 PEM");
    let public = PublicKey::from_spki_pem(std::str::from_utf8(&public_pem).expect("PEM text"))
        .expect("OpenSSL SPKI PEM");
    assert_eq!(key.public_key(), public);
    assert_eq!(
        PrivateKey::from_pkcs8_der(&key_der)
            .expect("PKCS#8 DER")
            .public_key(),
        public
    );
    assert_eq!(
        PublicKey::from_spki_der(&public_der).expect("SPKI DER"),
        public
    );
    let sec1 = PrivateKey::from_sec1_pem(std::str::from_utf8(&sec1_pem).expect("PEM text"))
        .expect("OpenSSL SEC1 PEM");
    assert_eq!(sec1.public_key(), public);
    // Our SPKI PEM is byte for byte what OpenSSL writes.
    assert_eq!(
        public.to_spki_pem().expect("SPKI").as_bytes(),
        &public_pem[..]
    );
}

#[test]
fn signatures_verify_both_ways() {
    if openssl_missing() {
        return;
    }
    let dir = Scratch::new("sign");
    let key_pem = dir.path("key.pem");
    openssl_ok(&["genpkey", "-algorithm", "SM2", "-out", s(&key_pem)]);
    let public_pem = dir.write(
        "pub.pem",
        &openssl_ok(&["pkey", "-in", s(&key_pem), "-pubout"]),
    );
    let key =
        PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&key_pem).expect("read")).expect("key");
    let public = key.public_key();

    let message_bytes = "缴费 2026-12-02 金额 400.00 元\n".as_bytes();
    let message = dir.write("msg.bin", message_bytes);
    let distid = format!("distid:{}", std::str::from_utf8(DEFAULT_ID).expect("ASCII"));

    // OpenSSL signs, both command forms; ours verifies.
    let by_pkeyutl = dir.path("pkeyutl.sig");
    openssl_ok(&[
        "pkeyutl",
        "-sign",
        "-rawin",
        "-digest",
        "sm3",
        "-inkey",
        s(&key_pem),
        "-in",
        s(&message),
        "-out",
        s(&by_pkeyutl),
        "-pkeyopt",
        &distid,
    ]);
    let by_dgst = dir.path("dgst.sig");
    openssl_ok(&[
        "dgst",
        "-sm3",
        "-sign",
        s(&key_pem),
        "-sigopt",
        &distid,
        "-out",
        s(&by_dgst),
        s(&message),
    ]);
    for path in [&by_pkeyutl, &by_dgst] {
        let der = std::fs::read(path).expect("signature");
        let signature = Signature::from_der(&der).expect("OpenSSL writes strict DER");
        assert_eq!(
            sm2::verify(&public, DEFAULT_ID, message_bytes, &signature),
            Ok(())
        );
        assert!(sm2::verify(&public, b"another id", message_bytes, &signature).is_err());
        assert!(sm2::verify(&public, DEFAULT_ID, b"tampered", &signature).is_err());
    }

    // Ours signs (DER); OpenSSL verifies, and refuses it under another ID or message.
    let other = dir.write("other.bin", b"other message");
    for round in 0..8 {
        let signature = sm2::sign(&key, DEFAULT_ID, message_bytes).expect("sign");
        let sig_path = dir.write(&format!("ours{round}.der"), &signature.to_der());
        assert!(openssl_verifies(
            &public_pem,
            &message,
            &sig_path,
            "1234567812345678"
        ));
        assert!(!openssl_verifies(
            &public_pem,
            &message,
            &sig_path,
            "1234567812345679"
        ));
        assert!(!openssl_verifies(
            &public_pem,
            &other,
            &sig_path,
            "1234567812345678"
        ));
    }
}

#[test]
fn our_pem_output_is_read_by_openssl() {
    if openssl_missing() {
        return;
    }
    let dir = Scratch::new("pem");
    let key = PrivateKey::generate().expect("key");
    let key_pem = dir.write("key.pem", key.to_pkcs8_pem().expect("PKCS#8").as_bytes());
    let public_pem = dir.write(
        "pub.pem",
        key.public_key().to_spki_pem().expect("SPKI").as_bytes(),
    );
    openssl_ok(&["pkey", "-in", s(&key_pem), "-noout"]);
    openssl_ok(&["pkey", "-pubin", "-in", s(&public_pem), "-noout"]);
    // OpenSSL derives the same public key from our private key file.
    let derived = openssl_ok(&["pkey", "-in", s(&key_pem), "-pubout"]);
    assert_eq!(derived, std::fs::read(&public_pem).expect("read"));
    // And signs with it something ours verifies.
    let message = dir.write("msg.bin", b"hub crypto sm2-keygen");
    let sig = dir.path("sig.der");
    openssl_ok(&[
        "dgst",
        "-sm3",
        "-sign",
        s(&key_pem),
        "-sigopt",
        "distid:1234567812345678",
        "-out",
        s(&sig),
        s(&message),
    ]);
    let signature = Signature::from_der(&std::fs::read(&sig).expect("sig")).expect("DER");
    assert_eq!(
        sm2::verify(
            &key.public_key(),
            DEFAULT_ID,
            b"hub crypto sm2-keygen",
            &signature
        ),
        Ok(())
    );
}

#[test]
fn spec_examples_verify_in_openssl_as_the_specs_say() {
    if openssl_missing() {
        return;
    }
    let dir = Scratch::new("specs");
    // Spec 09: the bureau's key, the signing string and the DER signature of the example.
    let bureau = dir.write(
        "bureau.pem",
        b"-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAEj2o1EYlb0Q/JsQbSk4MDnA/IMA+W\n\
ASEJp7BSvnhK9csEcW4XbddDRSNUfJyY6mPIu002SEgZCorjzS/UV3yHyw==\n\
-----END PUBLIC KEY-----\n",
    );
    let mut signing =
        b"POST\n/tobacco/v1/orders\n1796171400\n5f2b9c0e8a7d4e3f9b1c2d3e4f5a6b7c\n".to_vec();
    signing.extend_from_slice(TOBACCO_BODY.as_bytes());
    signing.push(b'\n');
    let signing_path = dir.write("s.bin", &signing);
    let key =
        PrivateKey::from_hex("437ecacb8de064675b05b33bd8c5cd9232a92f1c7d06f977d1f9cf1874f2b4e5")
            .expect("bureau key");
    let k: [u8; 32] =
        hex::decode("EC138E2091110B24A4DAF573F1CA9E594B8838B6BEFD914030921A3249E707F1")
            .expect("hex")
            .try_into()
            .expect("32 bytes");
    let ours = sm2::sign_with_k(&key, DEFAULT_ID, &signing, &k).expect("sign");
    let spec_der = hex::decode(
        "30450220165d9d6e9721f42e2ce8ec6f6142dceef284b0b2198ce02b537d0f77a5df7310\
         0221009c8452c04f8ed9db1529698a73078ca3dabc4d8bbef9f4f93299546a0e369719",
    )
    .expect("hex");
    assert_eq!(ours.to_der(), spec_der);
    let sig_path = dir.write("sig.der", &spec_der);
    assert!(openssl_verifies(
        &bureau,
        &signing_path,
        &sig_path,
        "1234567812345678"
    ));

    // Spec 03: r‖s converted to DER, verified with the bank's PEM.
    let bank = dir.write(
        "bank.pem",
        b"-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAE18P14OI9SaqW9xRloyxkT3VlmFqT\n\
TC6YyIvGgXWSIhvzVO71jxIoC39B1XMseVo8NeuAbxAhCuVg1qHypttqWA==\n\
-----END PUBLIC KEY-----\n",
    );
    let raw = hex::decode(
        "5b62b8489f7f5047938f599fe84fcf383eb28bc21bab2eab3d43316daa41def2\
         d945eca6e47543860c6db0887bf2a9b860e328422b43b7ddb17437ec6077c7e9",
    )
    .expect("hex");
    let medical_sig = Signature::from_raw(&raw).expect("raw");
    let medical_msg = dir.write("s.txt", MEDICAL_SIGNING_STRING.as_bytes());
    let medical_der = dir.write("medical.der", &medical_sig.to_der());
    assert!(openssl_verifies(
        &bank,
        &medical_msg,
        &medical_der,
        "1234567812345678"
    ));
}

/// OpenSSL's SM2 ciphertext: SEQUENCE { INTEGER x1, INTEGER y1, OCTET STRING C3, OCTET STRING C2 }.
fn openssl_ciphertext_to_c1c3c2(der: &[u8]) -> Vec<u8> {
    fn take(bytes: &[u8], tag: u8) -> (&[u8], &[u8]) {
        assert_eq!(bytes[0], tag, "tag");
        let (length, header) = match bytes[1] {
            n if n < 0x80 => (usize::from(n), 2),
            0x81 => (usize::from(bytes[2]), 3),
            0x82 => ((usize::from(bytes[2]) << 8) | usize::from(bytes[3]), 4),
            other => panic!("length form {other:#x}"),
        };
        (&bytes[header..header + length], &bytes[header + length..])
    }
    fn coordinate(integer: &[u8]) -> [u8; 32] {
        let trimmed: Vec<u8> = integer.iter().copied().skip_while(|&b| b == 0).collect();
        let mut out = [0u8; 32];
        out[32 - trimmed.len()..].copy_from_slice(&trimmed);
        out
    }
    let (sequence, rest) = take(der, 0x30);
    assert!(rest.is_empty());
    let (x, rest) = take(sequence, 0x02);
    let (y, rest) = take(rest, 0x02);
    let (c3, rest) = take(rest, 0x04);
    let (c2, rest) = take(rest, 0x04);
    assert!(rest.is_empty());
    [&[0x04][..], &coordinate(x), &coordinate(y), c3, c2].concat()
}

fn c1c3c2_to_openssl_ciphertext(ciphertext: &[u8]) -> Vec<u8> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
            n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }
    fn integer(value: &[u8]) -> Vec<u8> {
        let mut trimmed: Vec<u8> = value.iter().copied().skip_while(|&b| b == 0).collect();
        if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
            trimmed.insert(0, 0x00);
        }
        tlv(0x02, &trimmed)
    }
    let body = [
        integer(&ciphertext[1..33]),
        integer(&ciphertext[33..65]),
        tlv(0x04, &ciphertext[65..97]),
        tlv(0x04, &ciphertext[97..]),
    ]
    .concat();
    tlv(0x30, &body)
}

#[test]
fn encryption_interoperates_through_openssl_der_ciphertext() {
    if openssl_missing() {
        return;
    }
    let dir = Scratch::new("pke");
    let key_pem = dir.path("key.pem");
    openssl_ok(&["genpkey", "-algorithm", "SM2", "-out", s(&key_pem)]);
    let public_pem = dir.write(
        "pub.pem",
        &openssl_ok(&["pkey", "-in", s(&key_pem), "-pubout"]),
    );
    let key =
        PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&key_pem).expect("read")).expect("key");

    let plaintexts: [&[u8]; 4] = [
        b"\x00\x00\x00session key!",
        &[0u8; 16],
        "住房公积金会话密钥".as_bytes(),
        &[0xA5; 300],
    ];
    for (index, plaintext) in plaintexts.iter().enumerate() {
        // OpenSSL encrypts; ours decrypts.
        let input = dir.write(&format!("plain{index}"), plaintext);
        let openssl_ct = openssl_ok(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            s(&public_pem),
            "-in",
            s(&input),
        ]);
        let c1c3c2 = openssl_ciphertext_to_c1c3c2(&openssl_ct);
        assert_eq!(
            sm2::decrypt(&key, &c1c3c2).expect("decrypt OpenSSL's"),
            *plaintext
        );

        // Ours encrypts; OpenSSL decrypts.
        let ours = sm2::encrypt(&key.public_key(), plaintext).expect("encrypt");
        let ours_der = dir.write(
            &format!("ours{index}.der"),
            &c1c3c2_to_openssl_ciphertext(&ours),
        );
        let decrypted = openssl_ok(&[
            "pkeyutl",
            "-decrypt",
            "-inkey",
            s(&key_pem),
            "-in",
            s(&ours_der),
        ]);
        assert_eq!(decrypted, *plaintext);
    }
}
