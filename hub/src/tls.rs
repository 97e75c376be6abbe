//! TLS with rustls (the `ring` provider only: aws-lc-rs would need cmake and nasm on every build
//! machine). Three uses:
//! - [`server_config`] + [`TlsListener`]: the channel API and the admin surface over HTTPS, with
//!   optional client-certificate authentication (mutual TLS) for channels;
//! - [`https_client`]: a `reqwest::Client` for HTTPS partners that trusts ONLY the partner's CA file
//!   (never the system roots), optionally presenting our client certificate.
//!
//! Files are read here, once, at start-up; every failure names the file and never its content (a
//! PEM parser's message can quote a line of a key file, so those messages are not passed on).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A PEM file larger than this is not a certificate or a key: refuse it rather than read it all.
pub const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;
/// Handshakes in progress at once on one listener; further connections wait in the TCP backlog.
pub const MAX_HANDSHAKES_IN_FLIGHT: usize = 256;
/// Connections that finished their handshake and wait for the HTTP server to take them.
const ACCEPTED_QUEUE_LEN: usize = 64;

/// `[hub.tls]` / `[hub.admin_tls]`: TLS on one listener.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM: the server certificate first, then any intermediates.
    pub cert_file: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key_file: PathBuf,
    /// PEM: when set, clients must present a certificate issued by one of these CAs (mutual TLS);
    /// a client without one, or with one from another CA, is refused during the handshake.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// A client that has not finished its handshake in this time is dropped, so slow or idle
    /// connections cannot hold handshake slots.
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
}

fn default_handshake_timeout_ms() -> u64 {
    10_000
}

/// TLS towards one HTTPS partner.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PartnerTls {
    /// PEM: the only trust anchors for this partner (the system roots are never used).
    pub ca_file: PathBuf,
    /// PEM: our client certificate chain, when the partner asks for one.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM: the key of `client_cert_file`; set both or neither.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Whole request, connect to last byte of the answer.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// Both HTTPS partners' specs say connect 5 s (03 medical insurance, 09 tobacco).
fn default_connect_timeout_ms() -> u64 {
    5_000
}

fn default_timeout_ms() -> u64 {
    15_000
}

/// Which file of a TLS setting an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFile {
    Certificate,
    PrivateKey,
    ClientCa,
    PartnerCa,
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFile::Certificate => "证书文件",
            TlsFile::PrivateKey => "私钥文件",
            TlsFile::ClientCa => "客户端CA证书文件",
            TlsFile::PartnerCa => "合作方CA证书文件",
        })
    }
}

/// Start-up errors of TLS. Each names the file; none carries any of a key's content.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS{file}无法读取: {path}: {source}")]
    Read {
        file: TlsFile,
        path: PathBuf,
        source: io::Error,
    },
    #[error("TLS{file}过大(超过{max_bytes}字节): {path}")]
    TooLarge {
        file: TlsFile,
        path: PathBuf,
        max_bytes: u64,
    },
    #[error("TLS{file}不是有效的PEM证书(未找到CERTIFICATE段或格式错误): {path}")]
    NoCertificate { file: TlsFile, path: PathBuf },
    #[error("TLS私钥文件不是有效的PEM私钥(需PKCS#8、RSA或EC私钥): {path}")]
    NoPrivateKey { path: PathBuf },
    #[error("TLS私钥文件中的私钥类型不受支持: {path}")]
    UnsupportedKey { path: PathBuf },
    #[error("TLS证书无法解析: {path}")]
    BadCertificate { path: PathBuf },
    #[error("TLS私钥与证书不匹配: 私钥 {key_path}, 证书 {cert_path}")]
    KeyMismatch {
        cert_path: PathBuf,
        key_path: PathBuf,
    },
    #[error("TLS{file}中的CA证书不可用: {path}: {reason}")]
    BadCa {
        file: TlsFile,
        path: PathBuf,
        reason: String,
    },
    #[error("合作方TLS客户端证书与私钥须同时配置: client_cert_file 与 client_key_file")]
    IncompleteClientIdentity,
    #[error("TLS配置无法建立: {0}")]
    Setup(String),
}

impl TlsError {
    /// Stable code for logs, alerts and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            TlsError::Read { .. } => "TLS_FILE_READ",
            TlsError::TooLarge { .. } => "TLS_FILE_TOO_LARGE",
            TlsError::NoCertificate { .. } => "TLS_NO_CERTIFICATE",
            TlsError::NoPrivateKey { .. } => "TLS_NO_PRIVATE_KEY",
            TlsError::UnsupportedKey { .. } => "TLS_UNSUPPORTED_KEY",
            TlsError::BadCertificate { .. } => "TLS_BAD_CERTIFICATE",
            TlsError::KeyMismatch { .. } => "TLS_KEY_MISMATCH",
            TlsError::BadCa { .. } => "TLS_BAD_CA",
            TlsError::IncompleteClientIdentity => "TLS_INCOMPLETE_CLIENT_IDENTITY",
            TlsError::Setup(_) => "TLS_SETUP",
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem_file(file: TlsFile, path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |source| TlsError::Read {
        file,
        path: path.to_path_buf(),
        source,
    };
    let length_bytes = std::fs::metadata(path).map_err(read_error)?.len();
    if length_bytes > MAX_PEM_FILE_BYTES {
        return Err(TlsError::TooLarge {
            file,
            path: path.to_path_buf(),
            max_bytes: MAX_PEM_FILE_BYTES,
        });
    }
    std::fs::read(path).map_err(read_error)
}

/// Every CERTIFICATE section of a PEM file, in order; none is an error.
fn load_certs(file: TlsFile, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem_file(file, path)?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        _ => Err(TlsError::NoCertificate {
            file,
            path: path.to_path_buf(),
        }),
    }
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem_file(TlsFile::PrivateKey, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::NoPrivateKey {
        path: path.to_path_buf(),
    })
}

fn load_roots(file: TlsFile, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(file, path)? {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            file,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// A certificate chain and its key, checked to belong together: a mismatch would otherwise
/// only show as every client failing the handshake.
fn load_identity(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs = load_certs(TlsFile::Certificate, cert_path)?;
    let key = load_key(key_path)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|_| TlsError::UnsupportedKey {
            path: key_path.to_path_buf(),
        })?;
    match CertifiedKey::new(certs.clone(), signing_key).keys_match() {
        Ok(()) => Ok((certs, key)),
        // ring cannot always derive the public key (then rustls cannot tell): accept, as rustls does.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok((certs, key)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
        }),
        Err(_) => Err(TlsError::BadCertificate {
            path: cert_path.to_path_buf(),
        }),
    }
}

/// The rustls server configuration of one listener, from its files.
pub fn server_config(tls: &ListenerTls) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let (certs, key) = load_identity(&tls.cert_file, &tls.key_file, &provider)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let builder = match &tls.client_ca_file {
        Some(ca_path) => {
            let roots = load_roots(TlsFile::ClientCa, ca_path)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::BadCa {
                    file: TlsFile::ClientCa,
                    path: ca_path.clone(),
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|_| TlsError::KeyMismatch {
            cert_path: tls.cert_file.clone(),
            key_path: tls.key_file.clone(),
        })?;
    // axum serves HTTP/1.1 only (no http2 feature): say so, rather than let a client guess.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client for one HTTPS partner: trust anchors from `config.ca_file` only, our certificate when
/// configured, HTTPS only, and the configured timeouts.
pub fn https_client(config: &PartnerTls) -> Result<reqwest::Client, TlsError> {
    let provider = provider();
    let roots = load_roots(TlsFile::PartnerCa, &config.ca_file)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_root_certificates(roots);
    let mut tls = match (&config.client_cert_file, &config.client_key_file) {
        (Some(cert_path), Some(key_path)) => {
            let (certs, key) = load_identity(cert_path, key_path, &provider)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|_| TlsError::KeyMismatch {
                    cert_path: cert_path.clone(),
                    key_path: key_path.clone(),
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::IncompleteClientIdentity),
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
        .timeout(Duration::from_millis(config.timeout_ms))
        .build()
        .map_err(|e| TlsError::Setup(e.to_string()))
}

/// A TCP listener whose connections come out TLS-terminated, for `axum::serve`.
///
/// Handshakes run in tasks of their own, so one slow client never holds up the accept loop;
/// at most [`MAX_HANDSHAKES_IN_FLIGHT`] run at once, each bounded by the handshake timeout.
/// A refused handshake (wrong or missing client certificate, plain HTTP, wrong protocol) is
/// logged with the peer address and dropped.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    acceptor_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        handshake_timeout: Duration,
    ) -> io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (sender, accepted) = mpsc::channel(ACCEPTED_QUEUE_LEN);
        let acceptor_task = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(config),
            handshake_timeout,
            sender,
        ));
        Ok(TlsListener {
            accepted,
            local_addr,
            acceptor_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // The server is gone: release the port now rather than at the next connection attempt.
        self.acceptor_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(connection) => connection,
            // Only when the accept loop ended, which it does only when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    sender: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES_IN_FLIGHT));
    loop {
        let permit = tokio::select! {
            _ = sender.closed() => return,
            permit = handshakes.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = sender.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "TLS listener could not accept a connection.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = sender.send((stream, peer)).await;
                }
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "TLS handshake refused.");
                }
                Err(_) => {
                    tracing::warn!(%peer, "TLS handshake timed out.");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_tls_reads_the_documented_fields_and_defaults() {
        let parsed: Result<ListenerTls, _> = toml::from_str(
            "cert_file = \"a.pem\"\nkey_file = \"b.pem\"\nclient_ca_file = \"ca.pem\"\n",
        );
        assert_eq!(
            parsed.ok(),
            Some(ListenerTls {
                cert_file: PathBuf::from("a.pem"),
                key_file: PathBuf::from("b.pem"),
                client_ca_file: Some(PathBuf::from("ca.pem")),
                handshake_timeout_ms: 10_000,
            })
        );
        let unknown: Result<ListenerTls, _> =
            toml::from_str("cert_file = \"a\"\nkey_file = \"b\"\nclient_ca = \"c\"\n");
        assert!(unknown.is_err(), "a misspelt field must not be ignored");
    }

    #[test]
    fn missing_cert_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().ok();
        let base = dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        let tls = ListenerTls {
            cert_file: base.join("no-such-cert.pem"),
            key_file: base.join("no-such-key.pem"),
            client_ca_file: None,
            handshake_timeout_ms: 1_000,
        };
        let error = server_config(&tls).err();
        assert!(
            matches!(&error, Some(TlsError::Read { file: TlsFile::Certificate, path, .. }) if path == &tls.cert_file),
            "{error:?}"
        );
        let text = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("no-such-cert.pem"), "{text}");
    }

    #[test]
    fn a_file_without_a_pem_certificate_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().ok();
        let base = dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        let cert = base.join("cert.pem");
        let key = base.join("key.pem");
        let secret_line = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
        assert!(std::fs::write(&cert, "not a certificate\n").is_ok());
        assert!(std::fs::write(&key, secret_line).is_ok());
        let tls = ListenerTls {
            cert_file: cert.clone(),
            key_file: key.clone(),
            client_ca_file: None,
            handshake_timeout_ms: 1_000,
        };
        assert!(matches!(
            server_config(&tls),
            Err(TlsError::NoCertificate { file: TlsFile::Certificate, ref path }) if path == &cert
        ));
        // The key alone is checked too: a garbage key never shows in the message.
        let error = load_key(&key)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!error.contains("c2VjcmV0"), "{error}");
    }

    #[test]
    fn partner_ca_file_is_read_first_and_named() {
        let dir = tempfile::tempdir().ok();
        let base = dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        let config = PartnerTls {
            ca_file: base.join("partner-ca.pem"),
            client_cert_file: Some(base.join("client.pem")),
            client_key_file: None,
            connect_timeout_ms: 1_000,
            timeout_ms: 1_000,
        };
        assert!(matches!(
            https_client(&config),
            Err(TlsError::Read {
                file: TlsFile::PartnerCa,
                ..
            })
        ));
    }
}
