//! `hub crypto` run as operators run it, checked against OpenSSL 3 and the specs' worked examples.
//! Tests that need the `openssl` binary skip (with a note) where it is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HUB: &str = env!("CARGO_BIN_EXE_hub");
const SPEC01_KEY_HEX: &str = "0123456789abcdeffedcba9876543210";

fn hub(args: &[&str]) -> Output {
    Command::new(HUB)
        .arg("crypto")
        .args(args)
        .output()
        .expect("hub runs")
}

fn openssl(args: &[&str]) -> Option<Output> {
    match Command::new("openssl").args(args).output() {
        Ok(output) => Some(output),
        Err(_) => {
            eprintln!("openssl not found: interop check skipped");
            None
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Spec 01's worked example: the 176 bytes before the MAC, hand-typed from the spec.
fn spec01_mac_input() -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(b"1002NSH43102000101MB00010220261203101010B2026120300000000002");
    data.extend_from_slice(&[b' '; 44]);
    data.extend_from_slice(b"4310020000000001");
    data.extend_from_slice(b"000000030000");
    data.extend_from_slice(b"000000022335");
    data.extend_from_slice(b"6230901000000000011");
    data.extend_from_slice(&[b' '; 13]);
    assert_eq!(data.len(), 176);
    data
}

/// Spec 11's worked example: the first 149 bytes of the 302 frame.
fn spec11_mac_input() -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(b"0177302431221120301SJ000001420261202183012ZF2612020000000031");
    data.extend_from_slice(&[b' '; 33]);
    data.extend_from_slice(b"RQ2019004567000000126.406230901100000000021");
    data.extend_from_slice(&[b' '; 13]);
    assert_eq!(data.len(), 149);
    data
}

#[test]
fn mac_cdgj_reproduces_spec_01() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write(dir.path(), "macinput", &spec01_mac_input());
    let output = hub(&[
        "mac",
        "--scheme",
        "cdgj",
        "--key",
        SPEC01_KEY_HEX,
        "--in",
        s(&input),
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "10B87B1C3800640D");
}

#[test]
fn mac_iso9797_m2_reproduces_spec_11() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write(dir.path(), "macinput", &spec11_mac_input());
    let output = hub(&[
        "mac",
        "--scheme",
        "iso9797-m2",
        "--key",
        "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
        "--in",
        s(&input),
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "E3076851669EF1B85B7D6C5FD4A565AC");
}

#[test]
fn mac_hmac_sm3_16_is_the_first_half_of_openssl_hmac() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write(
        dir.path(),
        "data",
        b"The quick brown fox jumps over the lazy dog",
    );
    let output = hub(&[
        "mac",
        "--scheme",
        "hmac-sm3-16",
        "--key",
        SPEC01_KEY_HEX,
        "--in",
        s(&input),
    ]);
    assert!(output.status.success(), "{output:?}");
    let ours = stdout(&output);
    assert_eq!(ours.len(), 32);
    assert_eq!(ours, ours.to_uppercase());
    let Some(reference) = openssl(&[
        "mac",
        "-digest",
        "SM3",
        "-macopt",
        &format!("hexkey:{SPEC01_KEY_HEX}"),
        "-in",
        s(&input),
        "HMAC",
    ]) else {
        return;
    };
    assert!(reference.status.success(), "{reference:?}");
    let full = stdout(&reference).to_uppercase();
    assert_eq!(full.len(), 64);
    assert_eq!(ours, full[..32]);
}

#[test]
fn bad_key_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write(dir.path(), "data", b"x");
    let secret = "0123456789abcdeffedcba98765432";
    let output = hub(&[
        "mac",
        "--scheme",
        "cdgj",
        "--key",
        secret,
        "--in",
        s(&input),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CRYPTO_BAD_KEY_LENGTH"), "{stderr}");
    assert!(stderr.contains("密钥长度错误"), "{stderr}");
    assert!(!stderr.contains(secret));
    assert!(!stderr.contains("panicked"));
}

#[test]
fn sm3_matches_the_standard_and_openssl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let abc = write(dir.path(), "abc", b"abc");
    let output = hub(&["sm3", "--in", s(&abc)]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );
    for length in [0usize, 1, 55, 56, 63, 64, 65, 1000] {
        let data: Vec<u8> = (0..length).map(|i| (i * 31 % 251) as u8).collect();
        let input = write(dir.path(), &format!("d{length}"), &data);
        let ours = stdout(&hub(&["sm3", "--in", s(&input)]));
        let Some(reference) = openssl(&["dgst", "-sm3", "-r", s(&input)]) else {
            return;
        };
        let theirs = stdout(&reference);
        let theirs = theirs.split_whitespace().next().unwrap_or_default();
        assert_eq!(ours, theirs, "length {length}");
    }
}

#[test]
fn sm4_cbc_interoperates_with_openssl_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iv = "00112233445566778899aabbccddeeff";
    let plain = write(
        dir.path(),
        "plain",
        b"\x00\x00leading zeros and 16-byte-aligned!!",
    );
    let ours = dir.path().join("ours.bin");
    let output = hub(&[
        "sm4",
        "--encrypt",
        "--mode",
        "cbc",
        "--key",
        SPEC01_KEY_HEX,
        "--iv",
        iv,
        "--in",
        s(&plain),
        "--out",
        s(&ours),
    ]);
    assert!(output.status.success(), "{output:?}");
    let back = dir.path().join("back");
    let Some(decrypted) = openssl(&[
        "enc",
        "-d",
        "-sm4-cbc",
        "-K",
        SPEC01_KEY_HEX,
        "-iv",
        iv,
        "-in",
        s(&ours),
        "-out",
        s(&back),
    ]) else {
        return;
    };
    assert!(decrypted.status.success(), "{decrypted:?}");
    assert_eq!(
        std::fs::read(&back).expect("read"),
        std::fs::read(&plain).expect("read")
    );

    let theirs = dir.path().join("theirs.bin");
    let encrypted = openssl(&[
        "enc",
        "-sm4-cbc",
        "-K",
        SPEC01_KEY_HEX,
        "-iv",
        iv,
        "-in",
        s(&plain),
        "-out",
        s(&theirs),
    ])
    .expect("openssl");
    assert!(encrypted.status.success(), "{encrypted:?}");
    assert_eq!(
        std::fs::read(&theirs).expect("read"),
        std::fs::read(&ours).expect("read")
    );
    let again = dir.path().join("again");
    let output = hub(&[
        "sm4",
        "--decrypt",
        "--mode",
        "cbc",
        "--key",
        SPEC01_KEY_HEX,
        "--iv",
        iv,
        "--in",
        s(&theirs),
        "--out",
        s(&again),
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        std::fs::read(&again).expect("read"),
        std::fs::read(&plain).expect("read")
    );

    // ECB against OpenSSL too.
    let ecb = dir.path().join("ecb.bin");
    let output = hub(&[
        "sm4",
        "--encrypt",
        "--mode",
        "ecb",
        "--key",
        SPEC01_KEY_HEX,
        "--in",
        s(&plain),
        "--out",
        s(&ecb),
    ]);
    assert!(output.status.success(), "{output:?}");
    let ecb_theirs = dir.path().join("ecb_theirs.bin");
    let encrypted = openssl(&[
        "enc",
        "-sm4-ecb",
        "-K",
        SPEC01_KEY_HEX,
        "-in",
        s(&plain),
        "-out",
        s(&ecb_theirs),
    ])
    .expect("openssl");
    assert!(encrypted.status.success(), "{encrypted:?}");
    assert_eq!(
        std::fs::read(&ecb).expect("read"),
        std::fs::read(&ecb_theirs).expect("read")
    );

    // A wrong key gives bad padding (exit 2), never garbage output or a panic.
    let wrong = dir.path().join("wrong");
    let output = hub(&[
        "sm4",
        "--decrypt",
        "--mode",
        "cbc",
        "--key",
        "ffffffffffffffffffffffffffffffff",
        "--iv",
        iv,
        "--in",
        s(&ours),
        "--out",
        s(&wrong),
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn sm2_keys_signatures_and_exit_codes_interoperate_with_openssl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let output = hub(&["sm2-keygen", "--out", s(&keys)]);
    assert!(output.status.success(), "{output:?}");
    let private = keys.join("sm2.key.pem");
    let public = keys.join("sm2.pub.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Not overwritten by a second run.
    let before = std::fs::read(&private).expect("read");
    let output = hub(&["sm2-keygen", "--out", s(&keys)]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(std::fs::read(&private).expect("read"), before);

    let message = write(
        dir.path(),
        "msg",
        b"<?xml version=\"1.0\" encoding=\"GBK\"?><a>\xd5\xc5\xc8\xfd</a>",
    );

    let Some(check) = openssl(&["pkey", "-in", s(&private), "-noout"]) else {
        return;
    };
    assert!(check.status.success(), "{check:?}");
    let check = openssl(&["pkey", "-pubin", "-in", s(&public), "-noout"]).expect("openssl");
    assert!(check.status.success(), "{check:?}");

    // hub signs, OpenSSL verifies.
    let output = hub(&["sm2-sign", "--key", s(&private), "--in", s(&message)]);
    assert!(output.status.success(), "{output:?}");
    let der = hex::decode(stdout(&output)).expect("hex");
    let sig_path = write(dir.path(), "sig.der", &der);
    let verified = openssl(&[
        "dgst",
        "-sm3",
        "-verify",
        s(&public),
        "-sigopt",
        "distid:1234567812345678",
        "-signature",
        s(&sig_path),
        s(&message),
    ])
    .expect("openssl");
    assert!(verified.status.success(), "{verified:?}");

    // OpenSSL signs (its own key), hub verifies: 0 valid, 1 after one flipped bit of the message.
    let their_key = dir.path().join("their.key.pem");
    let their_pub = dir.path().join("their.pub.pem");
    assert!(
        openssl(&["genpkey", "-algorithm", "SM2", "-out", s(&their_key)])
            .expect("openssl")
            .status
            .success()
    );
    assert!(openssl(&[
        "pkey",
        "-in",
        s(&their_key),
        "-pubout",
        "-out",
        s(&their_pub)
    ])
    .expect("openssl")
    .status
    .success());
    let their_sig = dir.path().join("their.sig");
    let signed = openssl(&[
        "dgst",
        "-sm3",
        "-sign",
        s(&their_key),
        "-sigopt",
        "distid:1234567812345678",
        "-out",
        s(&their_sig),
        s(&message),
    ])
    .expect("openssl");
    assert!(signed.status.success(), "{signed:?}");
    let sig_hex = hex::encode(std::fs::read(&their_sig).expect("read"));
    let output = hub(&[
        "sm2-verify",
        "--pub",
        s(&their_pub),
        "--sig",
        &sig_hex,
        "--in",
        s(&message),
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(stdout(&output).contains("valid"));

    let mut tampered = std::fs::read(&message).expect("read");
    tampered[0] ^= 0x01;
    let tampered = write(dir.path(), "tampered", &tampered);
    let output = hub(&[
        "sm2-verify",
        "--pub",
        s(&their_pub),
        "--sig",
        &sig_hex,
        "--in",
        s(&tampered),
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stdout(&output).contains("invalid"));

    // Another ID: a valid signature under 1234567812345678 is invalid under ALICE123@YAHOO.COM.
    let output = hub(&[
        "sm2-verify",
        "--pub",
        s(&their_pub),
        "--id",
        "ALICE123@YAHOO.COM",
        "--sig",
        &sig_hex,
        "--in",
        s(&message),
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");

    // --raw: 64 bytes r||s round-trips through sign and verify.
    let output = hub(&[
        "sm2-sign",
        "--key",
        s(&private),
        "--raw",
        "--in",
        s(&message),
    ]);
    assert!(output.status.success(), "{output:?}");
    let raw = stdout(&output);
    assert_eq!(raw.len(), 128);
    let output = hub(&[
        "sm2-verify",
        "--pub",
        s(&public),
        "--raw",
        "--sig",
        &raw,
        "--in",
        s(&message),
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");

    // Malformed signature (r = 0) and malformed key: exit 2 with the reason.
    let zero_r = format!("{}{}", "0".repeat(64), &raw[64..]);
    let output = hub(&[
        "sm2-verify",
        "--pub",
        s(&public),
        "--raw",
        "--sig",
        &zero_r,
        "--in",
        s(&message),
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("CRYPTO_BAD_SIGNATURE"));
    let output = hub(&[
        "sm2-verify",
        "--pub",
        s(&message),
        "--sig",
        &sig_hex,
        "--in",
        s(&message),
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let output = hub(&[
        "sm2-verify",
        "--pub",
        s(&public),
        "--sig",
        "zz",
        "--in",
        s(&message),
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

fn hub_keys(args: &[&str]) -> Output {
    Command::new(HUB)
        .arg("keys")
        .args(args)
        .output()
        .expect("hub runs")
}

#[test]
fn keys_maker_checker_promotion_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let current = write(
        dir.path(),
        "current.hex",
        b"0123456789abcdeffedcba9876543210\n",
    );
    let next = write(
        dir.path(),
        "next.hex",
        b"00112233445566778899aabbccddeeff\n",
    );
    let config = format!(
        "[hub]\ndatabase_url = \"sqlite://{db}\"\nlisten = \"127.0.0.1:0\"\nfile_dir = \"{d}\"\nreport_dir = \"{d}\"\n\
         [core]\nhost = \"127.0.0.1\"\nport = 9001\nconnect_timeout_ms = 3000\nanswer_timeout_ms = 10000\n\
         branch_id = \"000101\"\nteller_id = \"MBP001\"\n\
         [keys.links.CDGJ-NSH43102]\nkind = \"mac\"\ncurrent = {{ file = \"{current}\" }}\nnext = {{ file = \"{next}\" }}\n",
        db = dir.path().join("hub.db").display(),
        d = dir.path().display(),
        current = current.display(),
        next = next.display(),
    );
    let config = write(dir.path(), "hub.toml", config.as_bytes());
    let config = s(&config);

    let listed = hub_keys(&["list", "--config", config]);
    assert!(listed.status.success(), "{listed:?}");
    let text = stdout(&listed);
    assert!(text.contains("CDGJ-NSH43102"), "{text}");
    assert!(!text.contains("0123456789abcdef"), "{text}");
    assert!(!text.contains("pending"), "{text}");

    let request = hub_keys(&[
        "request-promotion",
        "--config",
        config,
        "--link",
        "CDGJ-NSH43102",
        "--maker",
        "zhangsan",
    ]);
    assert!(request.status.success(), "{request:?}");
    let own = hub_keys(&[
        "approve",
        "--config",
        config,
        "--link",
        "CDGJ-NSH43102",
        "--checker",
        "zhangsan",
    ]);
    assert_eq!(own.status.code(), Some(2), "{own:?}");
    assert!(String::from_utf8_lossy(&own.stderr).contains("KEY_CHECKER_IS_MAKER"));
    let listed = stdout(&hub_keys(&["list", "--config", config]));
    assert!(
        listed.contains("pending") && listed.contains("zhangsan"),
        "{listed}"
    );

    let approve = hub_keys(&[
        "approve",
        "--config",
        config,
        "--link",
        "CDGJ-NSH43102",
        "--checker",
        "lisi",
    ]);
    assert!(approve.status.success(), "{approve:?}");
    // The first line of `list` shows the promoted key as current and the old one as next.
    let after = stdout(&hub_keys(&["list", "--config", config]));
    let before_line = text.lines().next().unwrap_or_default().to_string();
    let after_line = after.lines().next().unwrap_or_default().to_string();
    let field = |line: &str, name: &str| {
        line.split('\t')
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(field(&after_line, "current="), field(&before_line, "next="));
    assert_eq!(field(&after_line, "next="), field(&before_line, "current="));
    assert!(!after.contains("pending"), "{after}");
}
