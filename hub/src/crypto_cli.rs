//! `hub crypto`: the operators' tool to exchange keys and check partner crypto by hand. The forms
//! are fixed (scripts rely on them); see README.md, "Crypto tool".
//!
//! Exit codes: 0 done (for `sm2-verify`: the signature is valid); 1 only for `sm2-verify` of a
//! well-formed signature that does not verify; 2 for every error (bad key, bad signature encoding,
//! unreadable file, usage). An error message names what was wrong and never echoes a key.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use codecs::crypto::secret::SecretBytes;
use codecs::crypto::sm2::{self, PrivateKey, PublicKey, Signature};
use codecs::crypto::sm4::{self, Padding};
use codecs::crypto::{parse_hex, sm3, CryptoError};

/// The default SM2 user ID (GM/T 0009); OpenSSL's own default is empty, hence `distid:` there.
pub const DEFAULT_ID: &str = "1234567812345678";

/// File names `sm2-keygen` writes into `--out`.
pub const PRIVATE_KEY_FILE: &str = "sm2.key.pem";
pub const PUBLIC_KEY_FILE: &str = "sm2.pub.pem";

#[derive(Debug, Subcommand)]
pub enum CryptoCommand {
    /// Generate an SM2 key pair: DIR/sm2.key.pem (PKCS#8, mode 0600) and DIR/sm2.pub.pem (SPKI).
    #[command(name = "sm2-keygen")]
    Sm2Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a file with SM2 (SM3 with ZA); prints the signature in hex (DER unless --raw).
    #[command(name = "sm2-sign")]
    Sm2Sign {
        /// PKCS#8 (or SEC1) PEM private key.
        #[arg(long)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_ID)]
        id: String,
        /// Print r||s (64 bytes) instead of DER.
        #[arg(long)]
        raw: bool,
        #[arg(long = "in")]
        input: PathBuf,
    },
    /// Verify an SM2 signature: exit 0 valid, 1 invalid, 2 malformed signature or key.
    #[command(name = "sm2-verify")]
    Sm2Verify {
        /// SubjectPublicKeyInfo PEM public key.
        #[arg(long = "pub")]
        public_key: PathBuf,
        #[arg(long, default_value = DEFAULT_ID)]
        id: String,
        /// The signature is r||s (64 bytes) instead of DER.
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        sig: String,
        #[arg(long = "in")]
        input: PathBuf,
    },
    /// SM3 digest of a file, in lowercase hex.
    Sm3 {
        #[arg(long = "in")]
        input: PathBuf,
    },
    /// A partner MAC over the whole file, in uppercase hex.
    Mac {
        #[arg(long, value_enum)]
        scheme: MacScheme,
        #[arg(long)]
        key: String,
        #[arg(long = "in")]
        input: PathBuf,
    },
    /// SM4 with PKCS#7 padding, file to file.
    Sm4 {
        #[arg(long, conflicts_with = "decrypt", required_unless_present = "decrypt")]
        encrypt: bool,
        #[arg(long)]
        decrypt: bool,
        #[arg(long, value_enum)]
        mode: Sm4Mode,
        #[arg(long)]
        key: String,
        /// 32 hex digits; required for cbc, refused for ecb.
        #[arg(long)]
        iv: Option<String>,
        #[arg(long = "in")]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MacScheme {
    /// Spec 01 (郴电国际): 0x00 padding, SM4-CBC zero IV, first 8 bytes of the last block.
    Cdgj,
    /// Specs 02, 06, 11: 0x80 padding, SM4-CBC zero IV, the whole last block.
    #[value(name = "iso9797-m2")]
    Iso9797M2,
    /// Spec 04: first 16 bytes of HMAC-SM3.
    #[value(name = "hmac-sm3-16")]
    HmacSm316,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Sm4Mode {
    Cbc,
    Ecb,
}

/// A failure of the tool. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} exists already; not overwritten")]
    Exists { path: PathBuf },
    /// `what` names the argument or file (`--key`, `--sig`, the key file), never its content.
    #[error("{what}: {source}")]
    Crypto { what: String, source: CryptoError },
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub fn code(&self) -> &'static str {
        match self {
            CliError::Read { .. } => "CLI_READ",
            CliError::Write { .. } => "CLI_WRITE",
            CliError::Exists { .. } => "CLI_EXISTS",
            CliError::Crypto { source, .. } => source.code(),
            CliError::Usage(_) => "CLI_USAGE",
        }
    }

    pub fn message_zh(&self) -> &'static str {
        match self {
            CliError::Read { .. } => "无法读取文件",
            CliError::Write { .. } => "无法写入文件",
            CliError::Exists { .. } => "文件已存在，拒绝覆盖",
            CliError::Crypto { source, .. } => source.message_zh(),
            CliError::Usage(_) => "参数错误",
        }
    }
}

fn crypto(what: &str) -> impl FnOnce(CryptoError) -> CliError + '_ {
    move |source| CliError::Crypto {
        what: what.to_string(),
        source,
    }
}

/// What a command produced: text for stdout, and the exit code.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub verdict: Verdict,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Done,
    /// `sm2-verify` of a well-formed signature that does not verify.
    Invalid,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Done => f.write_str("done"),
            Verdict::Invalid => f.write_str("invalid"),
        }
    }
}

/// Runs one command, printing its output or its error; the exit code scripts rely on.
pub fn run(command: CryptoCommand) -> ExitCode {
    match execute(command) {
        Ok(outcome) => {
            print!("{}", outcome.stdout);
            let _ = std::io::stdout().flush();
            match outcome.verdict {
                Verdict::Done => ExitCode::SUCCESS,
                Verdict::Invalid => ExitCode::from(1),
            }
        }
        Err(error) => {
            eprintln!("错误: {} [{}]: {error}", error.message_zh(), error.code());
            ExitCode::from(2)
        }
    }
}

/// Runs one command without printing: the CLI's logic, testable in-process.
pub fn execute(command: CryptoCommand) -> Result<Outcome, CliError> {
    let done = |stdout: String| Outcome {
        stdout,
        verdict: Verdict::Done,
    };
    match command {
        CryptoCommand::Sm2Keygen { out } => {
            let (private_path, public_path) = sm2_keygen(&out)?;
            Ok(done(format!(
                "{}\n{}\n",
                private_path.display(),
                public_path.display()
            )))
        }
        CryptoCommand::Sm2Sign {
            key,
            id,
            raw,
            input,
        } => {
            let key = load_private_key(&key)?;
            let message = read(&input)?;
            let signature = sm2::sign(&key, id.as_bytes(), &message).map_err(crypto("签名"))?;
            let encoded = if raw {
                hex::encode(signature.to_raw())
            } else {
                hex::encode(signature.to_der())
            };
            Ok(done(format!("{encoded}\n")))
        }
        CryptoCommand::Sm2Verify {
            public_key,
            id,
            raw,
            sig,
            input,
        } => {
            let public = load_public_key(&public_key)?;
            let bytes = parse_hex(sig.trim()).map_err(crypto("--sig"))?;
            let signature = if raw {
                Signature::from_raw(&bytes)
            } else {
                Signature::from_der(&bytes)
            }
            .map_err(crypto("--sig"))?;
            let message = read(&input)?;
            match sm2::verify(&public, id.as_bytes(), &message, &signature) {
                Ok(()) => Ok(done("签名有效 (valid)\n".to_string())),
                Err(CryptoError::VerifyFailed) => Ok(Outcome {
                    stdout: "签名无效 (invalid)\n".to_string(),
                    verdict: Verdict::Invalid,
                }),
                Err(other) => Err(crypto("验签")(other)),
            }
        }
        CryptoCommand::Sm3 { input } => {
            let data = read(&input)?;
            Ok(done(format!("{}\n", hex::encode(sm3::digest(&data)))))
        }
        CryptoCommand::Mac { scheme, key, input } => {
            let key = hex_key(&key, "--key")?;
            let data = read(&input)?;
            let mac = match scheme {
                MacScheme::Cdgj => {
                    let key = block_key(&key)?;
                    codecs::mac::cdgj_mac_hex(&key, &data)
                }
                MacScheme::Iso9797M2 => {
                    let key = block_key(&key)?;
                    codecs::mac::iso9797_m2_mac_hex(&key, &data)
                }
                MacScheme::HmacSm316 => {
                    if key.expose().is_empty() {
                        return Err(CliError::Usage("--key 不能为空".into()));
                    }
                    codecs::mac::hmac_sm3_16_hex(key.expose(), &data)
                }
            };
            Ok(done(format!("{mac}\n")))
        }
        CryptoCommand::Sm4 {
            encrypt,
            decrypt,
            mode,
            key,
            iv,
            input,
            out,
        } => {
            if encrypt == decrypt {
                return Err(CliError::Usage(
                    "须且只能给出 --encrypt 或 --decrypt 之一".into(),
                ));
            }
            let key = hex_key(&key, "--key")?;
            let data = read(&input)?;
            let result = match (mode, iv) {
                (Sm4Mode::Cbc, Some(iv)) => {
                    let iv = parse_hex(iv.trim()).map_err(crypto("--iv"))?;
                    if encrypt {
                        sm4::cbc_encrypt(key.expose(), &iv, &data, Padding::Pkcs7)
                    } else {
                        sm4::cbc_decrypt(key.expose(), &iv, &data, Padding::Pkcs7)
                    }
                }
                (Sm4Mode::Cbc, None) => {
                    return Err(CliError::Usage("--mode cbc 须给出 --iv".into()))
                }
                (Sm4Mode::Ecb, Some(_)) => {
                    return Err(CliError::Usage("--mode ecb 不使用 --iv".into()))
                }
                (Sm4Mode::Ecb, None) => {
                    if encrypt {
                        sm4::ecb_encrypt(key.expose(), &data, Padding::Pkcs7)
                    } else {
                        sm4::ecb_decrypt(key.expose(), &data, Padding::Pkcs7)
                    }
                }
            }
            .map_err(crypto(if encrypt { "加密" } else { "解密" }))?;
            // Decrypted output may be sensitive: owner-only, like a key.
            write_new_or_replace(&out, &result, 0o600)?;
            Ok(done(String::new()))
        }
    }
}

/// Writes DIR/sm2.key.pem (0600) and DIR/sm2.pub.pem; refuses to overwrite either.
pub fn sm2_keygen(out: &Path) -> Result<(PathBuf, PathBuf), CliError> {
    std::fs::create_dir_all(out).map_err(|source| CliError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let private_path = out.join(PRIVATE_KEY_FILE);
    let public_path = out.join(PUBLIC_KEY_FILE);
    for path in [&private_path, &public_path] {
        if path.exists() {
            return Err(CliError::Exists { path: path.clone() });
        }
    }
    let key = PrivateKey::generate().map_err(crypto("生成密钥"))?;
    let private_pem = key.to_pkcs8_pem().map_err(crypto("私钥编码"))?;
    let public_pem = key.public_key().to_spki_pem().map_err(crypto("公钥编码"))?;
    write_new(&private_path, private_pem.as_bytes(), 0o600)?;
    write_new(&public_path, public_pem.as_bytes(), 0o644)?;
    Ok((private_path, public_path))
}

/// PKCS#8 PEM as `openssl genpkey -algorithm SM2` writes it, or SEC1 "EC PRIVATE KEY".
pub fn load_private_key(path: &Path) -> Result<PrivateKey, CliError> {
    let text = zeroize::Zeroizing::new(read_text(path)?);
    let what = path.display().to_string();
    if text.contains("-----BEGIN EC PRIVATE KEY-----") {
        PrivateKey::from_sec1_pem(&text).map_err(crypto(&what))
    } else {
        PrivateKey::from_pkcs8_pem(&text).map_err(crypto(&what))
    }
}

/// SubjectPublicKeyInfo PEM as OpenSSL writes it.
pub fn load_public_key(path: &Path) -> Result<PublicKey, CliError> {
    let text = read_text(path)?;
    PublicKey::from_spki_pem(&text).map_err(crypto(&path.display().to_string()))
}

fn hex_key(text: &str, what: &str) -> Result<SecretBytes, CliError> {
    // Whitespace around a pasted key is harmless; inside it, parse_hex refuses it.
    parse_hex(text.trim())
        .map(SecretBytes::new)
        .map_err(crypto(what))
}

fn block_key(key: &SecretBytes) -> Result<zeroize::Zeroizing<[u8; 16]>, CliError> {
    let bytes: [u8; 16] = key.expose().try_into().map_err(|_| CliError::Crypto {
        what: "--key".into(),
        source: CryptoError::BadKeyLength {
            expected: 16,
            found: key.len(),
        },
    })?;
    Ok(zeroize::Zeroizing::new(bytes))
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn open_options(mode: u32) -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options
}

/// Creates `path` with `mode` from the start, so a key is never readable by others, not even
/// for a moment; fails when it exists.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    let wrap = |source| CliError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = open_options(mode)
        .create_new(true)
        .open(path)
        .map_err(wrap)?;
    file.write_all(bytes).map_err(wrap)?;
    file.sync_all().map_err(wrap)
}

fn write_new_or_replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    let wrap = |source| CliError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = open_options(mode)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(wrap)?;
    file.write_all(bytes).map_err(wrap)?;
    file.sync_all().map_err(wrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC01_KEY_HEX: &str = "0123456789abcdeffedcba9876543210";

    /// Spec 01's worked example: the 176 bytes before the MAC of the 1002 request.
    fn spec01_mac_input() -> Vec<u8> {
        let mut data = Vec::new();
        data.extend_from_slice(b"1002NSH43102000101MB00010220261203101010B2026120300000000002");
        data.extend_from_slice(&[b' '; 44]);
        data.extend_from_slice(b"4310020000000001000000030000000000022335");
        data.extend_from_slice(b"6230901000000000011");
        data.extend_from_slice(&[b' '; 13]);
        assert_eq!(data.len(), 176);
        data
    }

    fn temp_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }

    #[test]
    fn cdgj_mac_reproduces_spec_01() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = temp_file(&dir, "macinput", &spec01_mac_input());
        let outcome = execute(CryptoCommand::Mac {
            scheme: MacScheme::Cdgj,
            key: SPEC01_KEY_HEX.into(),
            input,
        })
        .expect("mac");
        assert_eq!(outcome.stdout, "10B87B1C3800640D\n");
    }

    #[test]
    fn sm3_of_abc_is_the_standard_vector() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = temp_file(&dir, "abc", b"abc");
        let outcome = execute(CryptoCommand::Sm3 { input }).expect("sm3");
        assert_eq!(
            outcome.stdout,
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0\n"
        );
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = temp_file(&dir, "data", b"x");
        let secret = "0123456789abcdeffedcba98765432";
        let error = execute(CryptoCommand::Mac {
            scheme: MacScheme::Cdgj,
            key: secret.into(),
            input: input.clone(),
        })
        .expect_err("15-byte key");
        assert_eq!(error.code(), "CRYPTO_BAD_KEY_LENGTH");
        assert!(!error.to_string().contains(secret));
        let error = execute(CryptoCommand::Mac {
            scheme: MacScheme::Iso9797M2,
            key: "0123456789abcdeffedcba987654321z".into(),
            input,
        })
        .expect_err("not hex");
        assert_eq!(error.code(), "CRYPTO_BAD_HEX");
        assert!(!error.to_string().contains("0123456789"));
    }

    #[test]
    fn sm4_cbc_needs_an_iv_and_ecb_refuses_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = temp_file(&dir, "plain", b"hello");
        let command = |mode, iv: Option<&str>| CryptoCommand::Sm4 {
            encrypt: true,
            decrypt: false,
            mode,
            key: SPEC01_KEY_HEX.into(),
            iv: iv.map(str::to_string),
            input: input.clone(),
            out: dir.path().join("out"),
        };
        let missing = execute(command(Sm4Mode::Cbc, None)).expect_err("no iv");
        assert_eq!(missing.code(), "CLI_USAGE");
        let extra = execute(command(Sm4Mode::Ecb, Some(SPEC01_KEY_HEX))).expect_err("iv on ecb");
        assert_eq!(extra.code(), "CLI_USAGE");
    }

    #[test]
    fn sm4_ecb_single_block_matches_gbt_32907() {
        // GB/T 32907 example 1 is one block without padding; with PKCS#7 the first cipher block
        // of that plaintext is still the standard's ciphertext.
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = hex::decode(SPEC01_KEY_HEX).expect("hex");
        let input = temp_file(&dir, "plain", &plain);
        let out = dir.path().join("cipher");
        execute(CryptoCommand::Sm4 {
            encrypt: true,
            decrypt: false,
            mode: Sm4Mode::Ecb,
            key: SPEC01_KEY_HEX.into(),
            iv: None,
            input,
            out: out.clone(),
        })
        .expect("encrypts");
        let cipher = std::fs::read(&out).expect("read");
        assert_eq!(cipher.len(), 32, "PKCS#7 adds a whole block when aligned");
        assert_eq!(
            hex::encode(&cipher[..16]),
            "681edf34d206965e86b3e94f536e4246"
        );
    }

    #[test]
    fn keygen_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        temp_file(&dir, PRIVATE_KEY_FILE, b"existing");
        let error = sm2_keygen(dir.path()).expect_err("exists");
        assert_eq!(error.code(), "CLI_EXISTS");
        assert_eq!(
            std::fs::read(dir.path().join(PRIVATE_KEY_FILE)).expect("read"),
            b"existing"
        );
    }
}
