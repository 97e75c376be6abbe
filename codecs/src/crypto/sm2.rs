//! SM2 (GB/T 32918): signatures with a distinguishing ID (part 2) and public-key encryption
//! (part 4) on the recommended curve, keys in the forms OpenSSL writes.
//!
//! Curve arithmetic, key parsing and the PEM/DER key formats come from RustCrypto's `sm2` 0.13
//! (pinned). That line has no public-key encryption and its signer takes the ID as `&str` only, so
//! the two algorithms are written here as the standard states them, on the crate's own
//! `ProjectivePoint` / `Scalar` types: no curve math is hand-rolled.
//!
//! Every function returns a typed [`CryptoError`] on bad input; none panics.

use core::fmt;

use sm2::elliptic_curve::group::Group;
use sm2::elliptic_curve::ops::Reduce;
use sm2::elliptic_curve::point::AffineCoordinates;
use sm2::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use sm2::elliptic_curve::PrimeField;
use sm2::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use sm2::{AffinePoint, EncodedPoint, FieldBytes, ProjectivePoint, Scalar, U256};
use sm3::{Digest, Sm3};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::{constant_time_eq, parse_hex, CryptoError};

/// The default distinguishing ID of GM/T 0009 (ENTL 0x0080), used by every partner spec.
pub const DEFAULT_ID: &[u8] = b"1234567812345678";

/// A PEM text holding key material: wiped from memory when dropped.
pub type SecretString = zeroize::Zeroizing<String>;

/// Group order n, big-endian (GB/T 32918.5 recommended curve).
const ORDER_BYTES: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x72, 0x03, 0xDF, 0x6B, 0x21, 0xC6, 0x05, 0x2B, 0x53, 0xBB, 0xF4, 0x09, 0x39, 0xD5, 0x41, 0x23,
];

/// Curve coefficient a, big-endian: Z_A hashes it, and the crate does not export it.
const CURVE_A: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFC,
];

/// Curve coefficient b, big-endian.
const CURVE_B: [u8; 32] = [
    0x28, 0xE9, 0xFA, 0x9E, 0x9D, 0x9F, 0x5E, 0x34, 0x4D, 0x5A, 0x9E, 0x4B, 0xCF, 0x65, 0x09, 0xA7,
    0xF3, 0x97, 0x89, 0xF5, 0x15, 0xAB, 0x8F, 0x92, 0xDD, 0xBC, 0xBD, 0x41, 0x4D, 0x94, 0x0E, 0x93,
];

/// Uncompressed point: 0x04 ‖ x ‖ y.
const POINT_BYTES: usize = 65;
const C3_BYTES: usize = 32;
/// Longest ID whose bit length fits ENTL's 16 bits.
const MAX_ID_BYTES: usize = 8191;
/// SM2 encryption wraps keys and short secrets; a bound keeps a hostile length from costing
/// unbounded memory and hashing.
pub const MAX_PLAINTEXT_BYTES: usize = 1 << 20;
/// Fresh random nonces are rejected with probability about 2^-32 each; this many in a row means
/// the random source is broken.
const MAX_NONCE_ATTEMPTS: usize = 16;

// ---------------------------------------------------------------------------------------------
// Keys

/// An SM2 private key d in [1, n-2]. Zeroized on drop (the crate's `SecretKey` does it); Debug
/// shows only the public key's fingerprint.
#[derive(Clone)]
pub struct PrivateKey {
    secret: sm2::SecretKey,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey(<hidden>, public fp {})",
            self.public.fingerprint()
        )
    }
}

impl PrivateKey {
    /// A fresh key from the OS random source; `Random` if that source fails.
    pub fn generate() -> Result<PrivateKey, CryptoError> {
        for _ in 0..MAX_NONCE_ATTEMPTS {
            let mut bytes = Zeroizing::new([0u8; 32]);
            fill_random(bytes.as_mut())?;
            if let Ok(key) = PrivateKey::from_bytes(&bytes[..]) {
                return Ok(key);
            }
        }
        Err(CryptoError::Random(
            "随机数源连续产生无效私钥 (random source keeps producing out-of-range keys)".into(),
        ))
    }

    /// A PKCS#8 "PRIVATE KEY" PEM, as `openssl genpkey -algorithm SM2` writes it.
    pub fn from_pkcs8_pem(pem: &str) -> Result<PrivateKey, CryptoError> {
        let secret = sm2::SecretKey::from_pkcs8_pem(pem)
            .map_err(|e| CryptoError::BadPem(format!("PKCS#8 SM2 private key: {e}")))?;
        PrivateKey::from_secret(secret)
    }

    /// A PKCS#8 PrivateKeyInfo in DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, CryptoError> {
        let secret = sm2::SecretKey::from_pkcs8_der(der)
            .map_err(|e| CryptoError::BadDer(format!("PKCS#8 SM2 private key: {e}")))?;
        PrivateKey::from_secret(secret)
    }

    /// A SEC1 "EC PRIVATE KEY" PEM. OpenSSL 3's `openssl ec` labels the same structure
    /// "SM2 PRIVATE KEY" for an SM2 key; both labels are read.
    pub fn from_sec1_pem(pem: &str) -> Result<PrivateKey, CryptoError> {
        let relabelled = Zeroizing::new(
            pem.replace(
                "-----BEGIN SM2 PRIVATE KEY-----",
                "-----BEGIN EC PRIVATE KEY-----",
            )
            .replace(
                "-----END SM2 PRIVATE KEY-----",
                "-----END EC PRIVATE KEY-----",
            ),
        );
        let secret = sm2::SecretKey::from_sec1_pem(&relabelled)
            .map_err(|e| CryptoError::BadPem(format!("SEC1 SM2 private key: {e}")))?;
        PrivateKey::from_secret(secret)
    }

    /// The scalar d as 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<PrivateKey, CryptoError> {
        let bytes = Zeroizing::new(parse_hex(hex)?);
        PrivateKey::from_bytes(&bytes)
    }

    /// The scalar d as 32 big-endian bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<PrivateKey, CryptoError> {
        // The crate accepts shorter slices and left-pads them; a key of the wrong length is an
        // error here.
        if bytes.len() != 32 {
            return Err(CryptoError::BadKeyLength {
                expected: 32,
                found: bytes.len(),
            });
        }
        let secret = sm2::SecretKey::from_slice(bytes).map_err(|_| {
            CryptoError::BadPrivateKey("私钥须在 [1, n-2] 内 (d must be in [1, n-2])".into())
        })?;
        PrivateKey::from_secret(secret)
    }

    /// The private key as PKCS#8 PEM (LF line ends), readable by `openssl pkey`.
    pub fn to_pkcs8_pem(&self) -> Result<SecretString, CryptoError> {
        self.secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| CryptoError::BadPem(format!("cannot encode PKCS#8: {e}")))
    }

    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    fn from_secret(secret: sm2::SecretKey) -> Result<PrivateKey, CryptoError> {
        // d = n-1 passes the crate's [1, n-1] check but makes (1+d) non-invertible: signing with
        // it is impossible (GB/T 32918.1 keeps d in [1, n-2]).
        let d = *secret.to_nonzero_scalar();
        if bool::from((d + Scalar::ONE).is_zero()) {
            return Err(CryptoError::BadPrivateKey(
                "私钥须在 [1, n-2] 内 (d must be in [1, n-2])".into(),
            ));
        }
        let public = PublicKey {
            point: secret.public_key(),
        };
        Ok(PrivateKey { secret, public })
    }

    fn scalar(&self) -> Scalar {
        *self.secret.to_nonzero_scalar()
    }
}

/// An SM2 public key: a point on the curve, never the identity.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    point: sm2::PublicKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(fp {})", self.fingerprint())
    }
}

impl PublicKey {
    /// A SubjectPublicKeyInfo "PUBLIC KEY" PEM as OpenSSL writes it.
    pub fn from_spki_pem(pem: &str) -> Result<PublicKey, CryptoError> {
        sm2::PublicKey::from_public_key_pem(pem)
            .map(|point| PublicKey { point })
            .map_err(|e| CryptoError::BadPem(format!("SPKI SM2 public key: {e}")))
    }

    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, CryptoError> {
        sm2::PublicKey::from_public_key_der(der)
            .map(|point| PublicKey { point })
            .map_err(|e| CryptoError::BadDer(format!("SPKI SM2 public key: {e}")))
    }

    /// `04‖x‖y` (130 hex digits) or `x‖y` (128).
    pub fn from_hex(hex: &str) -> Result<PublicKey, CryptoError> {
        let bytes = parse_hex(hex)?;
        match bytes.len() {
            POINT_BYTES => PublicKey::from_sec1_bytes(&bytes),
            64 => {
                let mut full = Vec::with_capacity(POINT_BYTES);
                full.push(0x04);
                full.extend_from_slice(&bytes);
                PublicKey::from_sec1_bytes(&full)
            }
            found => Err(CryptoError::BadKeyLength {
                expected: POINT_BYTES,
                found,
            }),
        }
    }

    /// A SEC1 point (uncompressed `04‖x‖y` or compressed `02/03‖x`); must lie on the curve.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<PublicKey, CryptoError> {
        sm2::PublicKey::from_sec1_bytes(bytes)
            .map(|point| PublicKey { point })
            .map_err(|_| {
                CryptoError::BadPublicKey(
                    "公钥不是曲线上的有效点 (not a valid point on the SM2 curve)".into(),
                )
            })
    }

    pub fn to_spki_pem(&self) -> Result<String, CryptoError> {
        self.point
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| CryptoError::BadPem(format!("cannot encode SPKI: {e}")))
    }

    /// `04‖x‖y`.
    pub fn to_uncompressed(&self) -> [u8; 65] {
        encode_point(self.point.as_affine())
    }

    /// First 8 hex digits (upper case) of SM3 of the uncompressed point: safe to log.
    pub fn fingerprint(&self) -> String {
        let digest = Sm3::digest(self.to_uncompressed());
        hex::encode_upper(digest.get(..4).unwrap_or_default())
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures

/// An SM2 signature (r, s), both in [1, n-1] by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    r: [u8; 32],
    s: [u8; 32],
}

impl Signature {
    /// Exactly 64 bytes r‖s, each big-endian.
    pub fn from_raw(bytes: &[u8]) -> Result<Signature, CryptoError> {
        let (r, s) = match (bytes.len(), bytes.get(..32), bytes.get(32..)) {
            (64, Some(r), Some(s)) => (r, s),
            (found, _, _) => {
                return Err(CryptoError::BadSignature(format!(
                    "签名须为 64 字节 r‖s (raw signature must be 64 bytes, found {found})"
                )))
            }
        };
        Signature::from_parts(to_array(r), to_array(s))
    }

    /// Strict DER `SEQUENCE { INTEGER r, INTEGER s }`: minimal lengths and integers, no
    /// negative values, nothing after the sequence.
    pub fn from_der(bytes: &[u8]) -> Result<Signature, CryptoError> {
        let content = der_take(bytes, 0x30)
            .and_then(|(content, rest)| {
                if rest.is_empty() {
                    Ok(content)
                } else {
                    Err("bytes after the SEQUENCE")
                }
            })
            .map_err(bad_der_signature)?;
        let (r, rest) = der_integer(content).map_err(bad_der_signature)?;
        let (s, rest) = der_integer(rest).map_err(bad_der_signature)?;
        if !rest.is_empty() {
            return Err(bad_der_signature("bytes after INTEGER s"));
        }
        Signature::from_parts(r, s)
    }

    pub fn to_raw(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.r);
        out[32..].copy_from_slice(&self.s);
        out
    }

    pub fn to_der(&self) -> Vec<u8> {
        let r = der_encode_integer(&self.r);
        let s = der_encode_integer(&self.s);
        // At most 2 × 35 content bytes: the short length form always fits.
        let mut out = Vec::with_capacity(2 + r.len() + s.len());
        out.push(0x30);
        out.push((r.len() + s.len()) as u8);
        out.extend_from_slice(&r);
        out.extend_from_slice(&s);
        out
    }

    pub fn r(&self) -> [u8; 32] {
        self.r
    }

    pub fn s(&self) -> [u8; 32] {
        self.s
    }

    fn from_parts(r: [u8; 32], s: [u8; 32]) -> Result<Signature, CryptoError> {
        if !in_scalar_range(&r) {
            return Err(CryptoError::BadSignature(
                "r 须在 [1, n-1] 内 (r out of [1, n-1])".into(),
            ));
        }
        if !in_scalar_range(&s) {
            return Err(CryptoError::BadSignature(
                "s 须在 [1, n-1] 内 (s out of [1, n-1])".into(),
            ));
        }
        Ok(Signature { r, s })
    }
}

/// Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A), GB/T 32918.2 § 5.5.
pub fn za(id: &[u8], public: &PublicKey) -> Result<[u8; 32], CryptoError> {
    if id.len() > MAX_ID_BYTES {
        // ENTL is 16 bits of bit length.
        return Err(CryptoError::BadDataLength { found: id.len() });
    }
    let entl_bits = (id.len() * 8) as u16;
    let generator = encode_point(&AffinePoint::GENERATOR);
    let public = public.to_uncompressed();
    let mut hasher = Sm3::new();
    hasher.update(entl_bits.to_be_bytes());
    hasher.update(id);
    hasher.update(CURVE_A);
    hasher.update(CURVE_B);
    hasher.update(generator.get(1..).unwrap_or_default());
    hasher.update(public.get(1..).unwrap_or_default());
    Ok(hasher.finalize().into())
}

/// Signs with a fresh ephemeral k from the OS random source (`Random` if it fails; there is no
/// fallback).
pub fn sign(key: &PrivateKey, id: &[u8], message: &[u8]) -> Result<Signature, CryptoError> {
    let e = message_scalar(id, &key.public, message)?;
    for _ in 0..MAX_NONCE_ATTEMPTS {
        let k = random_nonzero_scalar()?;
        if let Ok(signature) = sign_with_scalar(key, &e, &k) {
            return Ok(signature);
        }
    }
    Err(CryptoError::Random(
        "随机数源连续产生不可用的 k (random source keeps producing unusable k)".into(),
    ))
}

/// Signs with a caller-chosen ephemeral k. ONLY for reproducing published examples in tests:
/// a k that is ever reused or predictable reveals the private key.
pub fn sign_with_k(
    key: &PrivateKey,
    id: &[u8],
    message: &[u8],
    k: &[u8; 32],
) -> Result<Signature, CryptoError> {
    let e = message_scalar(id, &key.public, message)?;
    let k = scalar_from_bytes(k).ok_or_else(|| {
        CryptoError::BadPrivateKey("临时密钥 k 须在 [1, n-1] 内 (k must be in [1, n-1])".into())
    })?;
    sign_with_scalar(key, &e, &k)
}

/// Ok only for a valid signature of `message` under `public` and `id`; every other case is an
/// error (fails closed).
pub fn verify(
    public: &PublicKey,
    id: &[u8],
    message: &[u8],
    signature: &Signature,
) -> Result<(), CryptoError> {
    // B1, B2: r, s in [1, n-1] (a `Signature` can only be built that way; checked again because
    // verification must not depend on how the value was made).
    let r = scalar_from_bytes(&signature.r).ok_or(CryptoError::VerifyFailed)?;
    let s = scalar_from_bytes(&signature.s).ok_or(CryptoError::VerifyFailed)?;
    let e = message_scalar(id, public, message)?;
    // B5: t = (r + s) mod n, t ≠ 0.
    let t = r + s;
    if bool::from(t.is_zero()) {
        return Err(CryptoError::VerifyFailed);
    }
    // B6: (x1', y1') = [s]G + [t]P_A.
    let point =
        ProjectivePoint::GENERATOR * s + ProjectivePoint::from(*public.point.as_affine()) * t;
    if bool::from(point.is_identity()) {
        return Err(CryptoError::VerifyFailed);
    }
    // B7: R = (e + x1') mod n must equal r.
    let x1 = <Scalar as Reduce<U256>>::reduce_bytes(&point.to_affine().x());
    if bool::from((e + x1).ct_eq(&r)) {
        Ok(())
    } else {
        Err(CryptoError::VerifyFailed)
    }
}

// ---------------------------------------------------------------------------------------------
// Encryption

/// SM2 encryption (GB/T 32918.4) with a fresh k from the OS random source; output C1‖C3‖C2 with
/// C1 = 04‖x1‖y1.
pub fn encrypt(public: &PublicKey, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    check_plaintext(plaintext)?;
    for _ in 0..MAX_NONCE_ATTEMPTS {
        let k = random_nonzero_scalar()?;
        if let Some(ciphertext) = encrypt_with_scalar(public, plaintext, &k) {
            return Ok(ciphertext);
        }
    }
    Err(CryptoError::Random(
        "随机数源连续产生不可用的 k (random source keeps producing unusable k)".into(),
    ))
}

/// SM2 encryption with a caller-chosen k. ONLY for reproducing published examples in tests.
pub fn encrypt_with_k(
    public: &PublicKey,
    plaintext: &[u8],
    k: &[u8; 32],
) -> Result<Vec<u8>, CryptoError> {
    check_plaintext(plaintext)?;
    let k = scalar_from_bytes(k).ok_or_else(|| {
        CryptoError::BadPrivateKey("临时密钥 k 须在 [1, n-1] 内 (k must be in [1, n-1])".into())
    })?;
    encrypt_with_scalar(public, plaintext, &k).ok_or_else(|| {
        CryptoError::BadCiphertext(
            "此 k 的 KDF 输出全零 (KDF output is all zero for this k)".into(),
        )
    })
}

/// Decrypts C1‖C3‖C2: refuses a C1 off the curve, an all-zero KDF output and a C3 that does not
/// match (compared in constant time). The plaintext keeps its leading zero bytes.
pub fn decrypt(key: &PrivateKey, ciphertext_c1c3c2: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (c1, c3, c2) = split_c1c3c2(ciphertext_c1c3c2)?;
    let c1_point = decode_c1(c1)?;
    // h = 1 for the recommended curve, so [h]C1 is C1 itself and is not the identity.
    let shared = (ProjectivePoint::from(c1_point) * key.scalar()).to_affine();
    let shared_bytes = Zeroizing::new(encode_point(&shared));
    let (x2, y2) = coordinates(&shared_bytes);
    let mut plaintext = Zeroizing::new(kdf(x2, y2, c2.len()));
    if plaintext.iter().all(|&b| b == 0) {
        return Err(CryptoError::BadCiphertext(
            "KDF 输出全零 (KDF output is all zero)".into(),
        ));
    }
    for (t, c) in plaintext.iter_mut().zip(c2) {
        *t ^= c;
    }
    let mut hasher = Sm3::new();
    hasher.update(x2);
    hasher.update(&plaintext[..]);
    hasher.update(y2);
    let u = hasher.finalize();
    if !constant_time_eq(u.as_slice(), c3) {
        return Err(CryptoError::BadCiphertext(
            "C3 校验失败 (C3 does not match)".into(),
        ));
    }
    Ok(core::mem::take(&mut *plaintext))
}

/// C1‖C3‖C2 (GB/T 32918.4-2016 order) to C1‖C2‖C3 (the 2010 draft's order).
pub fn c1c3c2_to_c1c2c3(ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (c1, c3, c2) = split_c1c3c2(ciphertext)?;
    Ok([c1, c2, c3].concat())
}

/// C1‖C2‖C3 to C1‖C3‖C2.
pub fn c1c2c3_to_c1c3c2(ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    check_ciphertext_shape(ciphertext)?;
    let c2_end = ciphertext.len() - C3_BYTES;
    match (
        ciphertext.get(..POINT_BYTES),
        ciphertext.get(POINT_BYTES..c2_end),
        ciphertext.get(c2_end..),
    ) {
        (Some(c1), Some(c2), Some(c3)) => Ok([c1, c3, c2].concat()),
        _ => Err(too_short(ciphertext.len())),
    }
}

// ---------------------------------------------------------------------------------------------
// Internals

fn fill_random(buffer: &mut [u8]) -> Result<(), CryptoError> {
    use rand_core::RngCore;
    rand_core::OsRng.try_fill_bytes(buffer).map_err(|e| {
        CryptoError::Random(format!(
            "操作系统随机数源失败 (OS random source failed: {e})"
        ))
    })
}

fn random_nonzero_scalar() -> Result<Scalar, CryptoError> {
    for _ in 0..MAX_NONCE_ATTEMPTS {
        let mut bytes = Zeroizing::new([0u8; 32]);
        fill_random(bytes.as_mut())?;
        if let Some(k) = scalar_from_bytes(&bytes) {
            return Ok(k);
        }
    }
    Err(CryptoError::Random(
        "随机数源连续产生超出范围的值 (random source keeps producing out-of-range values)".into(),
    ))
}

/// The scalar for 32 big-endian bytes in [1, n-1]; None otherwise.
fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<Scalar> {
    let scalar: Option<Scalar> = Scalar::from_repr(FieldBytes::from(*bytes)).into();
    scalar.filter(|s| !bool::from(s.is_zero()))
}

fn in_scalar_range(bytes: &[u8; 32]) -> bool {
    // Fixed-width big-endian arrays compare as the integers they hold.
    bytes.iter().any(|&b| b != 0) && *bytes < ORDER_BYTES
}

/// e = SM3(Z_A ‖ M) as a scalar.
fn message_scalar(id: &[u8], public: &PublicKey, message: &[u8]) -> Result<Scalar, CryptoError> {
    let z = za(id, public)?;
    let mut hasher = Sm3::new();
    hasher.update(z);
    hasher.update(message);
    Ok(<Scalar as Reduce<U256>>::reduce_bytes(&hasher.finalize()))
}

/// GB/T 32918.2 § 6.1 steps A4–A7 for a given k. An error means this k is unusable.
fn sign_with_scalar(key: &PrivateKey, e: &Scalar, k: &Scalar) -> Result<Signature, CryptoError> {
    let d = key.scalar();
    let kg = (ProjectivePoint::GENERATOR * k).to_affine();
    let x1 = <Scalar as Reduce<U256>>::reduce_bytes(&kg.x());
    let r = *e + x1;
    if bool::from(r.is_zero()) || bool::from((r + k).is_zero()) {
        return Err(CryptoError::BadSignature(
            "此 k 使 r = 0 或 r + k = n (r = 0 or r + k = n for this k)".into(),
        ));
    }
    let inverse: Option<Scalar> = (Scalar::ONE + d).invert().into();
    let inverse = inverse.ok_or_else(|| {
        CryptoError::BadPrivateKey("私钥须在 [1, n-2] 内 (d must be in [1, n-2])".into())
    })?;
    let s = inverse * (*k - r * d);
    if bool::from(s.is_zero()) {
        return Err(CryptoError::BadSignature(
            "此 k 使 s = 0 (s = 0 for this k)".into(),
        ));
    }
    Ok(Signature {
        r: r.to_repr().into(),
        s: s.to_repr().into(),
    })
}

fn check_plaintext(plaintext: &[u8]) -> Result<(), CryptoError> {
    // An empty message has an empty KDF output, which decryption must refuse; so never make one.
    if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(CryptoError::BadDataLength {
            found: plaintext.len(),
        });
    }
    Ok(())
}

/// GB/T 32918.4 § 6.1 A1–A8 for a given k; None when t is all zero (choose another k).
fn encrypt_with_scalar(public: &PublicKey, plaintext: &[u8], k: &Scalar) -> Option<Vec<u8>> {
    let c1 = encode_point(&(ProjectivePoint::GENERATOR * k).to_affine());
    // h = 1: S = [h]P_B is P_B, never the identity for a parsed public key.
    let shared = (ProjectivePoint::from(*public.point.as_affine()) * k).to_affine();
    let shared_bytes = Zeroizing::new(encode_point(&shared));
    let (x2, y2) = coordinates(&shared_bytes);
    let mut c2 = kdf(x2, y2, plaintext.len());
    if c2.iter().all(|&b| b == 0) {
        c2.zeroize();
        return None;
    }
    for (t, m) in c2.iter_mut().zip(plaintext) {
        *t ^= m;
    }
    let mut hasher = Sm3::new();
    hasher.update(x2);
    hasher.update(plaintext);
    hasher.update(y2);
    let c3 = hasher.finalize();
    let mut out = Vec::with_capacity(POINT_BYTES + C3_BYTES + c2.len());
    out.extend_from_slice(&c1);
    out.extend_from_slice(&c3);
    out.extend_from_slice(&c2);
    Some(out)
}

/// KDF of GB/T 32918.4 § 5.4.3: SM3(x2 ‖ y2 ‖ ct) for ct = 1, 2, …, truncated to `length` bytes.
fn kdf(x2: &[u8], y2: &[u8], length: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(length + 32);
    let mut counter: u32 = 1;
    while out.len() < length {
        let mut hasher = Sm3::new();
        hasher.update(x2);
        hasher.update(y2);
        hasher.update(counter.to_be_bytes());
        out.extend_from_slice(&hasher.finalize());
        counter = counter.wrapping_add(1);
    }
    out.truncate(length);
    out
}

fn encode_point(point: &AffinePoint) -> [u8; 65] {
    let encoded = point.to_encoded_point(false);
    let mut out = [0u8; 65];
    // Only the identity encodes shorter, and no caller passes it (keys and C1 are checked).
    if let Some(bytes) = encoded.as_bytes().get(..POINT_BYTES) {
        out.copy_from_slice(bytes);
    }
    out
}

fn coordinates(point: &[u8; 65]) -> (&[u8], &[u8]) {
    (&point[1..33], &point[33..])
}

fn to_array(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if bytes.len() == 32 {
        out.copy_from_slice(bytes);
    }
    out
}

fn too_short(found: usize) -> CryptoError {
    CryptoError::BadCiphertext(format!(
        "密文过短 (ciphertext too short: {found} bytes, need at least {})",
        POINT_BYTES + C3_BYTES + 1
    ))
}

fn check_ciphertext_shape(ciphertext: &[u8]) -> Result<(), CryptoError> {
    if ciphertext.len() <= POINT_BYTES + C3_BYTES {
        return Err(too_short(ciphertext.len()));
    }
    if ciphertext.first() != Some(&0x04) {
        return Err(CryptoError::BadCiphertext(
            "C1 须为未压缩点 04‖x‖y (C1 must be an uncompressed point)".into(),
        ));
    }
    if ciphertext.len() - POINT_BYTES - C3_BYTES > MAX_PLAINTEXT_BYTES {
        return Err(CryptoError::BadCiphertext(format!(
            "密文过长 (ciphertext longer than {MAX_PLAINTEXT_BYTES} plaintext bytes)"
        )));
    }
    Ok(())
}

/// (C1, C3, C2) of a C1‖C3‖C2 ciphertext.
type Sections<'a> = (&'a [u8], &'a [u8], &'a [u8]);

fn split_c1c3c2(ciphertext: &[u8]) -> Result<Sections<'_>, CryptoError> {
    check_ciphertext_shape(ciphertext)?;
    match (
        ciphertext.get(..POINT_BYTES),
        ciphertext.get(POINT_BYTES..POINT_BYTES + C3_BYTES),
        ciphertext.get(POINT_BYTES + C3_BYTES..),
    ) {
        (Some(c1), Some(c3), Some(c2)) => Ok((c1, c3, c2)),
        _ => Err(too_short(ciphertext.len())),
    }
}

fn decode_c1(c1: &[u8]) -> Result<AffinePoint, CryptoError> {
    let not_on_curve =
        || CryptoError::BadCiphertext("C1 不在曲线上 (C1 is not on the curve)".into());
    let encoded = EncodedPoint::from_bytes(c1).map_err(|_| not_on_curve())?;
    let point: Option<AffinePoint> = AffinePoint::from_encoded_point(&encoded).into();
    point
        .filter(|p| !bool::from(ProjectivePoint::from(*p).is_identity()))
        .ok_or_else(not_on_curve)
}

fn bad_der_signature(what: &str) -> CryptoError {
    CryptoError::BadSignature(format!("签名 DER 编码错误 (bad DER signature: {what})"))
}

/// One DER TLV with the given tag and a short-form length (a signature never needs more):
/// (content, rest).
fn der_take(bytes: &[u8], tag: u8) -> Result<(&[u8], &[u8]), &'static str> {
    match bytes {
        [] => Err("empty"),
        [t, ..] if *t != tag => Err("unexpected tag"),
        [_] => Err("missing length"),
        [_, length, rest @ ..] => {
            if *length >= 0x80 {
                // Long form is never minimal for content under 128 bytes, and a signature's is.
                return Err("long-form length");
            }
            let length = usize::from(*length);
            match (rest.get(..length), rest.get(length..)) {
                (Some(content), Some(rest)) => Ok((content, rest)),
                _ => Err("length beyond the input"),
            }
        }
    }
}

/// A positive minimal DER INTEGER of at most 256 bits, left-padded to 32 bytes.
fn der_integer(bytes: &[u8]) -> Result<([u8; 32], &[u8]), &'static str> {
    let (content, rest) = der_take(bytes, 0x02)?;
    let magnitude = match content {
        [] => return Err("empty INTEGER"),
        [first, ..] if *first & 0x80 != 0 => return Err("negative INTEGER"),
        [0x00, second, ..] if *second & 0x80 == 0 => return Err("non-minimal INTEGER"),
        [0x00, tail @ ..] if !tail.is_empty() => tail,
        _ => content,
    };
    if magnitude.len() > 32 {
        return Err("INTEGER longer than 256 bits");
    }
    let mut out = [0u8; 32];
    let start = 32 - magnitude.len();
    out[start..].copy_from_slice(magnitude);
    Ok((out, rest))
}

fn der_encode_integer(value: &[u8; 32]) -> Vec<u8> {
    let first_nonzero = value.iter().position(|&b| b != 0).unwrap_or(31);
    let magnitude = &value[first_nonzero..];
    let pad = magnitude.first().is_some_and(|&b| b & 0x80 != 0);
    let length = magnitude.len() + usize::from(pad);
    let mut out = Vec::with_capacity(2 + length);
    out.push(0x02);
    out.push(length as u8);
    if pad {
        out.push(0x00);
    }
    out.extend_from_slice(magnitude);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine as _;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn unhex(text: &str) -> Vec<u8> {
        parse_hex(text).expect("test vector is hex")
    }

    fn unhex32(text: &str) -> [u8; 32] {
        unhex(text).try_into().expect("test vector is 32 bytes")
    }

    fn sm3(parts: &[&[u8]]) -> Vec<u8> {
        let mut hasher = Sm3::new();
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize().to_vec()
    }

    /// Hand-built DER of two 32-byte integers: 0x00 before a value whose top bit is set,
    /// leading zero bytes dropped (none of the examples has any).
    fn hand_der(r: &[u8; 32], s: &[u8; 32]) -> Vec<u8> {
        let int = |v: &[u8; 32]| {
            let mut out = vec![0x02];
            if v[0] & 0x80 != 0 {
                out.extend_from_slice(&[33, 0x00]);
            } else {
                out.push(32);
            }
            out.extend_from_slice(v);
            out
        };
        let (r, s) = (int(r), int(s));
        let mut out = vec![0x30, (r.len() + s.len()) as u8];
        out.extend(r);
        out.extend(s);
        out
    }

    // GB/T 32918.5-2017 Annex A (= GM/T 0003.5-2012 A.2) examples on the recommended curve; the
    // same values are in OpenSSL's test/sm2_internal_test.c (sm2_sig_test, sm2_crypt_test).
    const GBT_D: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
    const GBT_XA: &str = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020";
    const GBT_YA: &str = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
    const GBT_K: &str = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21";
    const GBT_ZA: &str = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3";
    const GBT_E: &str = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640";
    const GBT_R: &str = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
    const GBT_S: &str = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";
    const GBT_C1: &str = "0404EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73\
                          E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0";
    const GBT_C3: &str = "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766";
    const GBT_C2: &str = "21886CA989CA9C7D58087307CA93092D651EFA";

    fn gbt_key() -> PrivateKey {
        PrivateKey::from_hex(GBT_D).expect("example key")
    }

    #[test]
    fn gbt_32918_5_signature_example_byte_for_byte() {
        let key = gbt_key();
        let public = key.public_key();
        let mut expected_public = vec![0x04];
        expected_public.extend(unhex(GBT_XA));
        expected_public.extend(unhex(GBT_YA));
        assert_eq!(public.to_uncompressed().to_vec(), expected_public);

        let z = za(DEFAULT_ID, &public).expect("za");
        assert_eq!(z.to_vec(), unhex(GBT_ZA));
        assert_eq!(sm3(&[&z, b"message digest"]), unhex(GBT_E));

        let signature =
            sign_with_k(&key, DEFAULT_ID, b"message digest", &unhex32(GBT_K)).expect("sign");
        assert_eq!(signature.r(), unhex32(GBT_R));
        assert_eq!(signature.s(), unhex32(GBT_S));

        let published = Signature::from_raw(&[unhex(GBT_R), unhex(GBT_S)].concat()).expect("raw");
        assert_eq!(
            verify(&public, DEFAULT_ID, b"message digest", &published),
            Ok(())
        );
        assert_eq!(
            verify(&public, DEFAULT_ID, b"message digesT", &published),
            Err(CryptoError::VerifyFailed)
        );
    }

    #[test]
    fn gbt_32918_5_encryption_example_byte_for_byte() {
        let key = gbt_key();
        let ciphertext = encrypt_with_k(&key.public_key(), b"encryption standard", &unhex32(GBT_K))
            .expect("encrypt");
        let expected = [unhex(GBT_C1), unhex(GBT_C3), unhex(GBT_C2)].concat();
        assert_eq!(ciphertext, expected);
        assert_eq!(
            decrypt(&key, &expected).expect("decrypt"),
            b"encryption standard"
        );
    }

    #[test]
    fn c1c3c2_and_c1c2c3_convert_both_ways() {
        let c1c3c2 = [unhex(GBT_C1), unhex(GBT_C3), unhex(GBT_C2)].concat();
        let c1c2c3 = [unhex(GBT_C1), unhex(GBT_C2), unhex(GBT_C3)].concat();
        assert_eq!(c1c3c2_to_c1c2c3(&c1c3c2).expect("to c1c2c3"), c1c2c3);
        assert_eq!(c1c2c3_to_c1c3c2(&c1c2c3).expect("to c1c3c2"), c1c3c2);
        assert!(c1c3c2_to_c1c2c3(&c1c3c2[..97]).is_err());
        assert!(c1c2c3_to_c1c3c2(&[]).is_err());
        let mut compressed_c1 = c1c2c3.clone();
        compressed_c1[0] = 0x02;
        assert!(c1c2c3_to_c1c3c2(&compressed_c1).is_err());
    }

    // --- Partner specs' worked examples -------------------------------------------------------

    #[test]
    fn spec_03_medical_insurance_signature() {
        let key = PrivateKey::from_hex(
            "f8e04a199a4cd697add020760c8a7f2e21496aa6c0ec3e201e98dafc0a96e520",
        )
        .expect("bank key");
        let public = PublicKey::from_hex(
            "04d7c3f5e0e23d49aa96f71465a32c644f7565985a934c2e98c88bc6817592221b\
             f354eef58f12280b7f41d5732c795a3c35eb806f10210ae560d6a1f2a6db6a58",
        )
        .expect("bank public key");
        assert_eq!(key.public_key(), public);
        let pem = "-----BEGIN PUBLIC KEY-----\n\
                   MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAE18P14OI9SaqW9xRloyxkT3VlmFqT\n\
                   TC6YyIvGgXWSIhvzVO71jxIoC39B1XMseVo8NeuAbxAhCuVg1qHypttqWA==\n\
                   -----END PUBLIC KEY-----\n";
        assert_eq!(PublicKey::from_spki_pem(pem).expect("spec PEM"), public);

        let message = MEDICAL_SIGNING_STRING.as_bytes();
        assert_eq!(message.len(), 356);
        let k = unhex32("ACA23B1A6E91CBA5CA98A85F91618D66EF4D1C84B01A5EB8BFA77A8E6588B790");
        let signature = sign_with_k(&key, DEFAULT_ID, message, &k).expect("sign");
        let expected = "5b62b8489f7f5047938f599fe84fcf383eb28bc21bab2eab3d43316daa41def2\
                        d945eca6e47543860c6db0887bf2a9b860e328422b43b7ddb17437ec6077c7e9";
        assert_eq!(hex::encode(signature.to_raw()), expected);
        let received = Signature::from_raw(&unhex(&expected.to_uppercase())).expect("raw");
        assert_eq!(verify(&public, DEFAULT_ID, message, &received), Ok(()));
    }

    #[test]
    fn spec_05_housing_fund_handkey() {
        let centre = PrivateKey::from_hex(
            "586E5F3AE608658C73FC714BB5EB43A52188BB092B3DC5506FBA93C251D71DE9",
        )
        .expect("centre key");
        let public = PublicKey::from_hex(
            "0486B2D0EBC10CE9CE9E95AAF92E494ABE984860993B2E43092CC2A036A52B7160\
             25F5D3B54010E273E59C5B2E16805ED0D2D3501302B9E8178ECA62BAF307B16B",
        )
        .expect("centre public key");
        assert_eq!(centre.public_key(), public);
        let session_key = unhex("E0A6C25F6305EEFF95BBF07010580123");
        let k = unhex32("1C4D36BFF36027BB3B9626716D583F6E42AA5935BB863B72ED51B1D648A148B3");
        let hand_key = hex::encode_upper(encrypt_with_k(&public, &session_key, &k).expect("wrap"));
        let expected = "040411F42A70CE10A62E3079B524666F2B09F30AF65EAEDE2E3FEAB06FDF429063\
                        38F3BC5CFD343A5A9D5F0DDFC7761E5FCEE931F6C7B603A6A986A63B66E6EA78\
                        62B3011F839F1DC7924CA24327EFB169EB067641400361609ABBBA038E79BECB\
                        9AF7C0E3C2CD376FD29606546837DA1E";
        assert_eq!(expected.len(), 226);
        assert_eq!(hand_key, expected);
        assert_eq!(
            decrypt(&centre, &unhex(expected)).expect("unwrap"),
            session_key
        );
    }

    #[test]
    fn spec_08_treasury_stamp() {
        let key = PrivateKey::from_hex(
            "9989588C2B3809139AD4942DE50D9CB9B42BFBCFD27FBF3B8D40882D0BDEC9F9",
        )
        .expect("zqz key");
        let public = PublicKey::from_hex(
            "041CF3C85C8242AD81E80BE88FA0C247CBFCBD5EACE6A9027CB7AD6CE76AFAB1E0\
             4E7A40FEE7680F311FCACE19A41FF45F96644EA41333E1C1AC29A9FE5C788EC1",
        )
        .expect("zqz public key");
        assert_eq!(key.public_key(), public);
        let receipt =
            crate::text::encode(&TREASURY_RECEIPT_LINES.concat(), crate::text::Charset::Gbk)
                .expect("receipt is GBK");
        assert_eq!(receipt.len(), 1725);

        let z = za(DEFAULT_ID, &public).expect("za");
        assert_eq!(
            z.to_vec(),
            unhex("4130BB6BB8F1864E8BB562380C6244A42355B32D11199DCE642CC6B5DC0A19BB")
        );
        assert_eq!(
            sm3(&[&z, &receipt]),
            unhex("EB03DF4E5876C44173FBD9840FAF550AA364CD1CA832A7CD775BC45C7A3C667C")
        );
        let k = unhex32("D81B0B41397CAC6D049F75F84AD09906A3CFC6791394A670DF37B399703AD730");
        let signature = sign_with_k(&key, DEFAULT_ID, &receipt, &k).expect("sign");
        let r = unhex32("04DF0CDDE584823C04068A35BCF3A1831820567782467BE20F3F47A814BF6886");
        let s = unhex32("9C1CF1B4BA41C66547F7CC2E0EDD927BE94FB043C7167640739E275338BF5B6A");
        assert_eq!((signature.r(), signature.s()), (r, s));
        let stamp = "MEUCIATfDN3lhII8BAaKNbzzoYMYIFZ3gkZ74g8/R6gUv2iGAiEAnBzxtLpBxmVH98wuDt2Se+lPsEPHFnZAc54nUzi/W2o=";
        assert_eq!(signature.to_der(), hand_der(&r, &s));
        assert_eq!(BASE64.encode(signature.to_der()), stamp);
        let received = Signature::from_der(&BASE64.decode(stamp).expect("base64")).expect("der");
        assert_eq!(verify(&public, DEFAULT_ID, &receipt, &received), Ok(()));
    }

    fn tobacco_signing_string() -> Vec<u8> {
        let mut message =
            b"POST\n/tobacco/v1/orders\n1796171400\n5f2b9c0e8a7d4e3f9b1c2d3e4f5a6b7c\n".to_vec();
        message.extend_from_slice(TOBACCO_BODY.as_bytes());
        message.push(b'\n');
        message
    }

    pub(crate) const TOBACCO_DER_HEX: &str =
        "30450220165d9d6e9721f42e2ce8ec6f6142dceef284b0b2198ce02b537d0f77a5df7310\
         0221009c8452c04f8ed9db1529698a73078ca3dabc4d8bbef9f4f93299546a0e369719";

    #[test]
    fn spec_09_tobacco_der_signature() {
        let key = PrivateKey::from_hex(
            "437ecacb8de064675b05b33bd8c5cd9232a92f1c7d06f977d1f9cf1874f2b4e5",
        )
        .expect("bureau key");
        let public = PublicKey::from_hex(
            "048f6a3511895bd10fc9b106d29383039c0fc8300f96012109a7b052be784af5cb\
             04716e176dd7434523547c9c98ea63c8bb4d364848190a8ae3cd2fd4577c87cb",
        )
        .expect("bureau public key");
        assert_eq!(key.public_key(), public);
        let pem = "-----BEGIN PUBLIC KEY-----\n\
                   MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAEj2o1EYlb0Q/JsQbSk4MDnA/IMA+W\n\
                   ASEJp7BSvnhK9csEcW4XbddDRSNUfJyY6mPIu002SEgZCorjzS/UV3yHyw==\n\
                   -----END PUBLIC KEY-----\n";
        assert_eq!(PublicKey::from_spki_pem(pem).expect("spec PEM"), public);

        let message = tobacco_signing_string();
        assert_eq!(TOBACCO_BODY.len(), 310);
        assert_eq!(message.len(), 379);
        assert_eq!(
            sm3(&[&message]),
            unhex("780a540ffb650d50b71e08d55a762df36d8947c27e4318d9f076be00acab6ab9")
        );
        let k = unhex32("EC138E2091110B24A4DAF573F1CA9E594B8838B6BEFD914030921A3249E707F1");
        let signature = sign_with_k(&key, DEFAULT_ID, &message, &k).expect("sign");
        let der = signature.to_der();
        assert_eq!(der.len(), 71);
        assert_eq!(hex::encode(&der), TOBACCO_DER_HEX);
        assert_eq!(
            BASE64.encode(&der),
            "MEUCIBZdnW6XIfQuLOjsb2FC3O7yhLCyGYzgK1N9D3el33MQAiEAnIRSwE+O2dsVKWmKcweMo9q8TYu++fT5MplUag42lxk="
        );
        let received = Signature::from_der(&unhex(TOBACCO_DER_HEX)).expect("strict DER");
        assert_eq!(received, signature);
        assert_eq!(verify(&public, DEFAULT_ID, &message, &received), Ok(()));
    }

    #[test]
    fn spec_10_bidding_raw_signature() {
        let key = PrivateKey::from_hex(
            "D466F9336EE42EBC53BA2032198358277D3F6B6ECD326E5F5F45836D123CECCD",
        )
        .expect("bank key");
        let public = PublicKey::from_hex(
            "04CEC9EF6ABD11CCC94A4DE8DA72541F4171320FDD59C3EBCAFFFA1C07ABEE36E2\
             27A2B3CE21E0A7C446DEC7AA7C2361BC0044612EDB48CE7AE0546613C58F1B30",
        )
        .expect("bank public key");
        assert_eq!(key.public_key(), public);
        let body: String = BIDDING_BODY_LINES
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(body.len(), 604);
        // Fields joined by LF; the body ends with its own LF and nothing follows it.
        let message = format!(
            "RESPONSE\n/bid/v1/P004\nBANKYZ01\n20260402101502\nb0e71993bfd8f33c1bac33a49e4bc37b\n{body}"
        );
        assert_eq!(message.len(), 683);
        let k = unhex32("D7D4F5AC4314F81C4E52D02121D6409B7C2FE0DFF46B7984592552694AA91792");
        let signature = sign_with_k(&key, DEFAULT_ID, message.as_bytes(), &k).expect("sign");
        assert_eq!(
            signature.r(),
            unhex32("B27C034E79E467205F26C25C2B304E844420C953C0869160CF37055D4AB823C1")
        );
        assert_eq!(
            signature.s(),
            unhex32("9E7CF269D29F85010078EC7204172BA55CBB74FF6360BA2B58CB85DE56B5A66F")
        );
        let x_sign = "snwDTnnkZyBfJsJcKzBOhEQgyVPAhpFgzzcFXUq4I8GefPJp0p+FAQB47HIEFyulXLt0/2NguitYy4XeVrWmbw==";
        assert_eq!(BASE64.encode(signature.to_raw()), x_sign);
        let received = Signature::from_raw(&BASE64.decode(x_sign).expect("base64")).expect("raw");
        assert_eq!(
            verify(&public, DEFAULT_ID, message.as_bytes(), &received),
            Ok(())
        );
    }

    // --- Negative cases -------------------------------------------------------------------------

    const ORDER_HEX: &str = "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123";
    const ORDER_MINUS_1_HEX: &str =
        "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54122";

    #[test]
    fn tampered_c3_and_c2_are_refused() {
        let key = gbt_key();
        let good = [unhex(GBT_C1), unhex(GBT_C3), unhex(GBT_C2)].concat();
        for index in 65..good.len() {
            let mut bad = good.clone();
            bad[index] ^= 0x01;
            let error = decrypt(&key, &bad).expect_err("tampered");
            assert_eq!(
                error,
                CryptoError::BadCiphertext("C3 校验失败 (C3 does not match)".into())
            );
        }
    }

    #[test]
    fn c1_off_the_curve_is_refused() {
        let key = gbt_key();
        let mut bad = [unhex(GBT_C1), unhex(GBT_C3), unhex(GBT_C2)].concat();
        bad[64] ^= 0x01; // last byte of y1
        assert_eq!(
            decrypt(&key, &bad),
            Err(CryptoError::BadCiphertext(
                "C1 不在曲线上 (C1 is not on the curve)".into()
            ))
        );
        bad[64] ^= 0x01;
        bad[0] = 0x03;
        assert_eq!(
            decrypt(&key, &bad).map_err(|e| e.code()),
            Err("CRYPTO_BAD_CIPHERTEXT")
        );
    }

    #[test]
    fn leading_zero_bytes_survive_a_round_trip() {
        let key = PrivateKey::generate().expect("key");
        for plaintext in [
            vec![0u8; 1],
            vec![0u8; 33],
            [vec![0, 0, 0], b"key".to_vec()].concat(),
        ] {
            let ciphertext = encrypt(&key.public_key(), &plaintext).expect("encrypt");
            assert_eq!(ciphertext.len(), 97 + plaintext.len());
            assert_eq!(decrypt(&key, &ciphertext).expect("decrypt"), plaintext);
        }
    }

    #[test]
    fn garbage_and_short_ciphertexts_are_errors() {
        let key = gbt_key();
        for length in [0usize, 1, 64, 65, 96, 97] {
            let mut garbage = vec![0x04; length];
            garbage
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= i as u8);
            assert_eq!(
                decrypt(&key, &garbage).map_err(|e| e.code()),
                Err("CRYPTO_BAD_CIPHERTEXT")
            );
        }
        assert_eq!(
            encrypt(&key.public_key(), b""),
            Err(CryptoError::BadDataLength { found: 0 })
        );
    }

    #[test]
    fn bad_private_keys_are_errors() {
        for hex_key in [
            "00".repeat(32),
            ORDER_HEX.to_string(),
            ORDER_MINUS_1_HEX.to_string(),
            "FF".repeat(32),
        ] {
            assert_eq!(
                PrivateKey::from_hex(&hex_key).map_err(|e| e.code()).err(),
                Some("CRYPTO_BAD_PRIVATE_KEY"),
                "{hex_key}"
            );
        }
        assert_eq!(
            PrivateKey::from_hex(&GBT_D[2..]).err(),
            Some(CryptoError::BadKeyLength {
                expected: 32,
                found: 31
            })
        );
        assert_eq!(
            PrivateKey::from_hex(&format!("00{GBT_D}")).err(),
            Some(CryptoError::BadKeyLength {
                expected: 32,
                found: 33
            })
        );
        assert_eq!(
            PrivateKey::from_hex("zz").map_err(|e| e.code()).err(),
            Some("CRYPTO_BAD_HEX")
        );
        // d = n-2 is the largest usable key.
        let largest = "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54121";
        let key = PrivateKey::from_hex(largest).expect("n-2");
        let signature = sign(&key, DEFAULT_ID, b"x").expect("sign");
        assert_eq!(
            verify(&key.public_key(), DEFAULT_ID, b"x", &signature),
            Ok(())
        );
    }

    #[test]
    fn bad_public_keys_are_errors() {
        let good = format!("04{GBT_XA}{GBT_YA}");
        assert_eq!(PublicKey::from_hex(&good[2..]), PublicKey::from_hex(&good));
        let mut off_curve = good.clone();
        off_curve.replace_range(129..130, "4"); // y ends ...13 → ...14
        assert_eq!(
            PublicKey::from_hex(&off_curve).map_err(|e| e.code()).err(),
            Some("CRYPTO_BAD_PUBLIC_KEY")
        );
        assert_eq!(
            PublicKey::from_hex(&good[..126]).err(),
            Some(CryptoError::BadKeyLength {
                expected: 65,
                found: 63
            })
        );
        assert_eq!(
            PublicKey::from_sec1_bytes(&[0x00])
                .map_err(|e| e.code())
                .err(),
            Some("CRYPTO_BAD_PUBLIC_KEY")
        );
        assert_eq!(
            PublicKey::from_sec1_bytes(&[]).map_err(|e| e.code()).err(),
            Some("CRYPTO_BAD_PUBLIC_KEY")
        );
    }

    #[test]
    fn signatures_out_of_range_are_errors() {
        let zero = "00".repeat(32);
        let one = format!("{}01", "00".repeat(31));
        for (r, s) in [
            (zero.as_str(), GBT_S),
            (GBT_R, zero.as_str()),
            (ORDER_HEX, GBT_S),
            (GBT_R, ORDER_HEX),
            ("FF".repeat(32).leak() as &str, GBT_S),
        ] {
            let raw = unhex(&format!("{r}{s}"));
            assert_eq!(
                Signature::from_raw(&raw).map_err(|e| e.code()).err(),
                Some("CRYPTO_BAD_SIGNATURE")
            );
            let der = hand_der(&unhex32(r), &unhex32(s));
            assert_eq!(
                Signature::from_der(&der).map_err(|e| e.code()).err(),
                Some("CRYPTO_BAD_SIGNATURE")
            );
        }
        // r = 1, s = n-1: in range, so well-formed, and simply does not verify.
        let edge =
            Signature::from_raw(&unhex(&format!("{one}{ORDER_MINUS_1_HEX}"))).expect("in range");
        assert_eq!(
            verify(
                &gbt_key().public_key(),
                DEFAULT_ID,
                b"message digest",
                &edge
            ),
            Err(CryptoError::VerifyFailed)
        );
        assert!(Signature::from_raw(&[0u8; 63]).is_err());
        assert!(Signature::from_raw(&[1u8; 65]).is_err());
    }

    #[test]
    fn der_must_be_strict() {
        let good = unhex(TOBACCO_DER_HEX);
        assert!(Signature::from_der(&good).is_ok());
        // Trailing byte after the SEQUENCE.
        assert!(Signature::from_der(&[good.clone(), vec![0x00]].concat()).is_err());
        // Long-form length for the SEQUENCE (0x81 0x45).
        let long_form = [vec![0x30, 0x81, 0x45], good[2..].to_vec()].concat();
        assert!(Signature::from_der(&long_form).is_err());
        // r = 0x165D… with a needless 0x00 in front (non-minimal INTEGER).
        let mut non_minimal = vec![0x30, 0x46, 0x02, 0x21, 0x00];
        non_minimal.extend_from_slice(&good[4..]);
        assert!(Signature::from_der(&non_minimal).is_err());
        // s without its 0x00: reads as a negative INTEGER.
        let mut negative = good[..36].to_vec();
        negative[1] = 0x44;
        negative.extend_from_slice(&[0x02, 0x20]);
        negative.extend_from_slice(&good[39..]);
        assert_eq!(negative.len(), 70);
        assert!(Signature::from_der(&negative).is_err());
        // Wrong outer tag, truncated, length beyond the input.
        let mut wrong_tag = good.clone();
        wrong_tag[0] = 0x31;
        assert!(Signature::from_der(&wrong_tag).is_err());
        assert!(Signature::from_der(&good[..70]).is_err());
        assert!(Signature::from_der(&[0x30]).is_err());
        assert!(Signature::from_der(&[]).is_err());
        // A 33-byte INTEGER that is not a 0x00 pad.
        let mut too_long = vec![0x30, 0x46, 0x02, 0x21, 0x01];
        too_long.extend_from_slice(&good[4..]);
        assert!(Signature::from_der(&too_long).is_err());
    }

    #[test]
    fn der_of_short_values_drops_leading_zero_bytes() {
        // r = 0x00…0080: one 0x00 pad byte before 0x80, the 31 leading zero bytes dropped.
        let mut r = [0u8; 32];
        r[31] = 0x80;
        let s = unhex32(GBT_S);
        let signature = Signature::from_parts(r, s).expect("in range");
        let der = signature.to_der();
        let mut expected = vec![0x30, 0x27, 0x02, 0x02, 0x00, 0x80, 0x02, 0x21, 0x00];
        expected.extend_from_slice(&s);
        assert_eq!(der, expected);
        assert_eq!(Signature::from_der(&der), Ok(signature));
    }

    #[test]
    fn every_single_bit_flip_fails_verification() {
        let key = gbt_key();
        let public = key.public_key();
        let message = b"message digest";
        let signature = Signature::from_raw(&[unhex(GBT_R), unhex(GBT_S)].concat()).expect("raw");
        for bit in 0..message.len() * 8 {
            let mut flipped = message.to_vec();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                verify(&public, DEFAULT_ID, &flipped, &signature).is_err(),
                "message bit {bit}"
            );
        }
        let raw = signature.to_raw();
        for bit in 0..raw.len() * 8 {
            let mut flipped = raw;
            flipped[bit / 8] ^= 1 << (bit % 8);
            let outcome = Signature::from_raw(&flipped)
                .and_then(|s| verify(&public, DEFAULT_ID, message, &s));
            assert!(outcome.is_err(), "raw bit {bit}");
        }
        let der = signature.to_der();
        for bit in 0..der.len() * 8 {
            let mut flipped = der.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let outcome = Signature::from_der(&flipped)
                .and_then(|s| verify(&public, DEFAULT_ID, message, &s));
            assert!(outcome.is_err(), "DER bit {bit}");
        }
    }

    #[test]
    fn a_different_id_or_key_fails() {
        let key = gbt_key();
        let signature = Signature::from_raw(&[unhex(GBT_R), unhex(GBT_S)].concat()).expect("raw");
        assert_eq!(
            verify(
                &key.public_key(),
                b"1234567812345679",
                b"message digest",
                &signature
            ),
            Err(CryptoError::VerifyFailed)
        );
        assert_eq!(
            verify(&key.public_key(), b"", b"message digest", &signature),
            Err(CryptoError::VerifyFailed)
        );
        let other = PrivateKey::generate().expect("key").public_key();
        assert_eq!(
            verify(&other, DEFAULT_ID, b"message digest", &signature),
            Err(CryptoError::VerifyFailed)
        );
        let too_long_id = vec![b'A'; 8192];
        assert_eq!(
            za(&too_long_id, &key.public_key()),
            Err(CryptoError::BadDataLength { found: 8192 })
        );
        assert!(za(&too_long_id[..8191], &key.public_key()).is_ok());
    }

    #[test]
    fn fixed_k_out_of_range_is_an_error() {
        let key = gbt_key();
        assert!(sign_with_k(&key, DEFAULT_ID, b"m", &[0u8; 32]).is_err());
        assert!(sign_with_k(&key, DEFAULT_ID, b"m", &unhex32(ORDER_HEX)).is_err());
        assert!(encrypt_with_k(&key.public_key(), b"m", &[0u8; 32]).is_err());
        assert!(encrypt_with_k(&key.public_key(), b"m", &[0xFF; 32]).is_err());
    }

    #[test]
    fn random_keys_sign_verify_and_encrypt_decrypt() {
        let key = PrivateKey::generate().expect("key");
        let public = key.public_key();
        let first = sign(&key, DEFAULT_ID, b"payment").expect("sign");
        let second = sign(&key, DEFAULT_ID, b"payment").expect("sign");
        assert_ne!(first, second, "k must be fresh for every signature");
        assert_eq!(verify(&public, DEFAULT_ID, b"payment", &first), Ok(()));
        assert_eq!(Signature::from_der(&first.to_der()), Ok(first));
        assert_eq!(Signature::from_raw(&first.to_raw()), Ok(first));
        let ciphertext = encrypt(&public, b"0123456789abcdef").expect("encrypt");
        assert_eq!(
            decrypt(&key, &ciphertext).expect("decrypt"),
            b"0123456789abcdef"
        );
        let other = PrivateKey::generate().expect("key");
        assert!(decrypt(&other, &ciphertext).is_err());
    }

    #[test]
    fn keys_round_trip_through_pem() {
        let key = gbt_key();
        let pem = key.to_pkcs8_pem().expect("pkcs8");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = PrivateKey::from_pkcs8_pem(&pem).expect("parse");
        assert_eq!(again.public_key(), key.public_key());
        let spki = key.public_key().to_spki_pem().expect("spki");
        assert!(spki.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(PublicKey::from_spki_pem(&spki), Ok(key.public_key()));
        // A public key PEM is not a private key and the reverse.
        assert_eq!(
            PrivateKey::from_pkcs8_pem(&spki)
                .map_err(|e| e.code())
                .err(),
            Some("CRYPTO_BAD_PEM")
        );
        assert_eq!(
            PublicKey::from_spki_pem(&pem).map_err(|e| e.code()).err(),
            Some("CRYPTO_BAD_PEM")
        );
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let key = gbt_key();
        let text = format!("{key:?}");
        assert!(
            text.starts_with("PrivateKey(<hidden>, public fp "),
            "{text}"
        );
        assert!(!text.to_uppercase().contains(&GBT_D[..8]), "{text}");
        let fingerprint = key.public_key().fingerprint();
        assert_eq!(fingerprint.len(), 8);
        let expected = hex::encode_upper(&sm3(&[&unhex(&format!("04{GBT_XA}{GBT_YA}"))])[..4]);
        assert_eq!(fingerprint, expected);
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = StdRng::seed_from_u64(0x5332_0003);
        let key = gbt_key();
        for round in 0..3000 {
            let length = rng.gen_range(0..200usize);
            let mut bytes = vec![0u8; length];
            rng.fill(&mut bytes[..]);
            // Give the parsers a plausible start now and then so they get past the first byte.
            match round % 4 {
                1 if length > 0 => bytes[0] = 0x30,
                2 if length > 0 => bytes[0] = 0x04,
                3 if length > 1 => {
                    bytes[0] = 0x30;
                    bytes[1] = (length - 2).min(0x7F) as u8;
                }
                _ => {}
            }
            let _ = Signature::from_der(&bytes);
            let _ = Signature::from_raw(&bytes);
            let _ = decrypt(&key, &bytes);
            let _ = c1c3c2_to_c1c2c3(&bytes);
            let _ = c1c2c3_to_c1c3c2(&bytes);
            let _ = PublicKey::from_sec1_bytes(&bytes);
            let _ = PublicKey::from_spki_der(&bytes);
            let _ = PrivateKey::from_pkcs8_der(&bytes);
            let _ = PrivateKey::from_bytes(&bytes);
            let text = String::from_utf8_lossy(&bytes);
            let _ = PrivateKey::from_hex(&text);
            let _ = PublicKey::from_hex(&text);
            let _ = PrivateKey::from_hex(&hex::encode(&bytes));
            let _ = PublicKey::from_hex(&hex::encode(&bytes));
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                BASE64.encode(&bytes)
            );
            let _ = PrivateKey::from_pkcs8_pem(&pem);
            let _ = PrivateKey::from_pkcs8_pem(&text);
            let _ = PrivateKey::from_sec1_pem(&pem.replace("PRIVATE", "EC PRIVATE"));
            let _ = PublicKey::from_spki_pem(&pem.replace("PRIVATE", "PUBLIC"));
            let _ = PublicKey::from_spki_pem(&text);
        }
    }

    /// Spec 03 worked example: the signing string, verbatim (356 bytes).
    const MEDICAL_SIGNING_STRING: &str = "bankCode=HHXH0001&encData=Pq4r21+LbzABbXpK7hVxyzsirUzLHnzrD38Wzz6qDCfN2ic84RgkpsDHgtuMa28vV/rOfsm/qamcqIWeOiY1hu3SMVe2jFUys5Y9FOOo4ZBbe/HbJB+jU33C2GW4mLEI4OSaV26KgRNzEf16rcOGO3dRw7AjjHSWuGCZA9g+ae+yLmOyZkAYIrG9qUR0SVqNSwbFvjXdpHjX10Af5Yi++Q==&iv=000102030405060708090a0b0c0d0e0f&reqSerial=XH202612021030150001&reqTime=20261202103015&txCode=2001&version=1.0";
    /// Spec 08 worked example: the receipt, one entry per printed line (the breaks are for
    /// reading only, so the lines are joined with nothing between them).
    const TREASURY_RECEIPT_LINES: [&str; 17] = [
        "<?xml version=\"1.0\" encoding=\"GBK\"?><Voucher><Id>430681202652010000000123</Id><AdmDivCode>430681</AdmDivCode>",
        "<StYear>2026</StYear><VtCode>5201</VtCode><VouDate>20261202</VouDate><VoucherNo>ZF2026000123</VoucherNo>",
        "<FundTypeCode>1</FundTypeCode><FundTypeName>一般公共预算资金</FundTypeName><PayTypeCode>1</PayTypeCode>",
        "<PayTypeName>直接支付</PayTypeName><ClearBankCode>001553100015</ClearBankCode>",
        "<ClearBankName>人民银行汨罗市支行国库</ClearBankName><PayBankCode>402553100011</PayBankCode>",
        "<PayBankName>汨罗农村商业银行</PayBankName><SetModeCode>1</SetModeCode><SetModeName>转账</SetModeName>",
        "<PaySummaryName>办公设备采购款</PaySummaryName><PayAmt>12800.00</PayAmt><PayeeAcctNo>82010000123456780</PayeeAcctNo>",
        "<PayeeAcctName>汨罗市明远办公用品有限公司</PayeeAcctName><PayeeAcctBankName>汨罗农村商业银行营业部</PayeeAcctBankName>",
        "<PayeeAcctBankNo>402553100011</PayeeAcctBankNo><PayAcctNo>82010000999000011</PayAcctNo>",
        "<PayAcctName>汨罗市财政局零余额账户</PayAcctName><PayAcctBankName>汨罗农村商业银行营业部</PayAcctBankName>",
        "<AgencyCode>101001</AgencyCode><AgencyName>汨罗市城区公共服务中心</AgencyName><ExpFuncCode>2010301</ExpFuncCode>",
        "<ExpFuncName>行政运行</ExpFuncName><ExpEcoCode>30201</ExpEcoCode><ExpEcoName>办公费</ExpEcoName>",
        "<XPayAmt>12800.00</XPayAmt><XPayDate>20261202</XPayDate><XAgentBusinessNo>C202612020000000345</XAgentBusinessNo>",
        "<XPayeeAcctBankName>汨罗农村商业银行营业部</XPayeeAcctBankName>",
        "<XPayeeAcctName>汨罗市明远办公用品有限公司</XPayeeAcctName><XAddWord></XAddWord><Hold1></Hold1><Hold2></Hold2>",
        "<DetailList><Detail><Id>1</Id><ExpFuncCode>2010301</ExpFuncCode><ExpFuncName>行政运行</ExpFuncName>",
        "<ExpEcoCode>30201</ExpEcoCode><ExpEcoName>办公费</ExpEcoName><PayAmt>12800.00</PayAmt></Detail></DetailList></Voucher>",
    ];
    /// Spec 09 worked example: the HTTP body, verbatim (310 UTF-8 bytes).
    const TOBACCO_BODY: &str = "{\"bureauCode\":\"430600\",\"pushId\":\"P202612020001\",\"pushTime\":\"20261202083000\",\"orders\":[{\"orderNo\":\"YC20261202000123\",\"licenceNo\":\"430602100123\",\"retailerName\":\"岳阳楼区张三便利店\",\"amount\":1256800,\"orderDate\":\"20261202\",\"dueDate\":\"20261205\",\"itemCount\":7,\"itemsSummary\":\"卷烟7个品规，共25条\"}]}";
    /// Spec 10 worked example: the answer body, one entry per line, each ending LF (604 bytes).
    const BIDDING_BODY_LINES: [&str; 8] = [
        "{\"code\": \"0000\", \"msg\": \"成功\", \"reqSerial\": \"YZ202604020000000017\",",
        " \"bankSerial\": \"BZJ202604020000000031\",",
        " \"data\": {\"subAcctNo\": \"8201000055512345-0016\", \"refundDate\": \"20260402\", \"interestFlag\": \"1\",",
        "  \"rate\": \"0.3500\", \"items\": [",
        "   {\"depositSerial\": \"DP202603100000000123\", \"payerAcctNo\": \"6230901234500000017\",",
        "    \"payerName\": \"青禾路桥工程有限公司\", \"payerBankNo\": \"402551000018\", \"arrivalDate\": \"20260310\",",
        "    \"days\": \"23\", \"principal\": \"50000000\", \"interest\": \"11181\", \"status\": \"2\",",
        "    \"principalCoreSeqNo\": \"C202604020000000711\", \"interestCoreSeqNo\": \"C202604020000000712\"}]}}",
    ];
}
