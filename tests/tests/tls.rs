//! TLS on the channel API and the admin listener (rustls), mutual TLS for channels, and the HTTPS
//! partner client. Certificates are made here with rcgen: a CA, a server certificate for
//! 127.0.0.1/localhost, a channel's client certificate, and a second, unrelated CA with a client
//! certificate of its own. The clients used against the hub are reqwest's own rustls clients,
//! configured here, not the hub's code; the server used against the hub's client is a bare
//! tokio-rustls server written here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use codecs::clock::SharedClock;
use e2e_tests::*;
use hub::app::{Hub, StartError};
use hub::config::HubConfig;
use hub::tls::{ListenerTls, PartnerTls, TlsError, TlsFile};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Test PKI on disk (PEM files) and in memory (for the test's own clients).
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    other_ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    other_client_cert_pem: String,
    other_client_key_pem: String,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("pki dir");
        let ca = make_ca("Test Rural Credit Union CA");
        let other_ca = make_ca("Unrelated CA");
        let (server_cert, server_key) = make_leaf(
            &ca,
            vec!["localhost".into(), "127.0.0.1".into()],
            "hub.test",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = make_leaf(
            &ca,
            vec![],
            "channel-02-mobile",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (other_client_cert, other_client_key) = make_leaf(
            &other_ca,
            vec![],
            "channel-02-mobile",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let unrelated_key = KeyPair::generate().expect("key").serialize_pem();
        let files = [
            ("ca.pem", ca.pem()),
            ("other-ca.pem", other_ca.pem()),
            ("server.pem", server_cert),
            ("server.key", server_key),
            ("client.pem", client_cert.clone()),
            ("client.key", client_key.clone()),
            ("unrelated.key", unrelated_key),
        ];
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write pem");
        }
        Pki {
            dir,
            ca_pem: ca.pem(),
            other_ca_pem: other_ca.pem(),
            client_cert_pem: client_cert,
            client_key_pem: client_key,
            other_client_cert_pem: other_client_cert,
            other_client_key_pem: other_client_key,
        }
    }

    fn server_tls(&self, client_ca: Option<&str>) -> ListenerTls {
        ListenerTls {
            cert_file: self.path("server.pem"),
            key_file: self.path("server.key"),
            client_ca_file: client_ca.map(|name| self.path(name)),
            handshake_timeout_ms: 2_000,
        }
    }
}

fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("ca key")).expect("ca")
}

fn make_leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: Vec<String>,
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params = CertificateParams::new(names).expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("leaf");
    (cert.pem(), key.serialize_pem())
}

/// A channel's HTTPS client: trusts `ca_pem` only, presents `identity` when given.
fn channel_client(ca_pem: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("ca"))
        .timeout(Duration::from_secs(10));
    if let Some((cert, key)) = identity {
        let pem = format!("{cert}{key}");
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    builder.build().expect("client")
}

/// Stops the harness's plain hub and starts one on the same journal with `edit` applied.
async fn start_hub(env: &mut Env, edit: impl FnOnce(&mut HubConfig)) -> Result<Hub, StartError> {
    env.stop_hub().await;
    let mut config = env.hub_config();
    edit(&mut config);
    let clock: SharedClock = env.clock.clone();
    hub::app::start(&config, clock).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_channel_api_serves_a_payment_and_refuses_other_trust_and_plain_http() {
    let pki = Pki::new();
    let mut env = Env::start().await;
    let tls = pki.server_tls(None);
    let hub = start_hub(&mut env, |c| c.hub.tls = Some(tls))
        .await
        .expect("hub starts with TLS");
    let base = format!("https://127.0.0.1:{}", hub.addr.port());
    let good = channel_client(&pki.ca_pem, None);

    let health = good
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("TLS handshake with a client trusting the CA");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    assert_eq!(health.text().await.expect("body"), "ok");

    // localhost is in the certificate's SAN too.
    let by_name = good
        .get(format!("https://localhost:{}/healthz", hub.addr.port()))
        .send()
        .await
        .expect("localhost matches the SAN");
    assert_eq!(by_name.status(), reqwest::StatusCode::OK);

    // A whole payment over HTTPS: debit at the core, write-off at the power company.
    let args = PayArgs::mobile("TLS0001", ZHANG_SAN, PAYER_A, ZHANG_SAN_DUE_FEN);
    let answer = good
        .post(format!("{base}/api/v1/payments"))
        .json(&env.pay_body(&args))
        .send()
        .await
        .expect("payment answered");
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let answer: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_money(
        &env,
        PAYER_A,
        PAYER_A_OPENING_FEN - ZHANG_SAN_DUE_FEN,
        ZHANG_SAN_DUE_FEN,
    );
    assert_eq!(env.power.payments().len(), 1);

    // A client that trusts another CA refuses the hub's certificate.
    let wrong_trust = channel_client(&pki.other_ca_pem, None);
    let refused = wrong_trust.get(format!("{base}/healthz")).send().await;
    assert!(refused.is_err(), "{refused:?}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .get(format!("http://127.0.0.1:{}/healthz", hub.addr.port()))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");

    // The listener still works after the refused handshakes.
    let again = good.get(format!("{base}/healthz")).send().await;
    assert!(again.is_ok(), "{again:?}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_channels_with_a_certificate_from_the_client_ca() {
    let pki = Pki::new();
    let mut env = Env::start().await;
    let tls = pki.server_tls(Some("ca.pem"));
    let hub = start_hub(&mut env, |c| c.hub.tls = Some(tls))
        .await
        .expect("hub starts with mutual TLS");
    let url = format!("https://127.0.0.1:{}/healthz", hub.addr.port());

    let anonymous = channel_client(&pki.ca_pem, None).get(&url).send().await;
    assert!(anonymous.is_err(), "no certificate: {anonymous:?}");

    let foreign = channel_client(
        &pki.ca_pem,
        Some((&pki.other_client_cert_pem, &pki.other_client_key_pem)),
    )
    .get(&url)
    .send()
    .await;
    assert!(foreign.is_err(), "certificate of another CA: {foreign:?}");

    let admitted = channel_client(
        &pki.ca_pem,
        Some((&pki.client_cert_pem, &pki.client_key_pem)),
    )
    .get(&url)
    .send()
    .await
    .expect("a channel with the right certificate is admitted");
    assert_eq!(admitted.status(), reqwest::StatusCode::OK);
    assert_eq!(admitted.text().await.expect("body"), "ok");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_surface_on_its_own_tls_listener() {
    let pki = Pki::new();
    let mut env = Env::start().await;
    let admin_tls = pki.server_tls(None);
    let hub = start_hub(&mut env, |c| {
        c.hub.admin_listen = Some("127.0.0.1:0".into());
        c.hub.admin_tls = Some(admin_tls);
    })
    .await
    .expect("hub starts with an admin listener");
    let admin_addr = hub.admin_addr.expect("admin listener address");
    assert_ne!(admin_addr, hub.addr);
    let client = channel_client(&pki.ca_pem, None);

    let overview = client
        .get(format!(
            "https://127.0.0.1:{}/admin/api/overview",
            admin_addr.port()
        ))
        .send()
        .await
        .expect("admin listener answers over TLS");
    assert_eq!(overview.status(), reqwest::StatusCode::OK);
    let overview: serde_json::Value = overview.json().await.expect("overview is JSON");
    assert!(overview.is_object(), "{overview}");

    // The channel listener (plain HTTP here) no longer carries the admin surface, and the admin
    // listener carries nothing of the channel API.
    let plain = reqwest::Client::new();
    let on_channel = plain
        .get(format!("http://{}/admin/api/overview", hub.addr))
        .send()
        .await
        .expect("channel listener answers");
    assert_eq!(on_channel.status(), reqwest::StatusCode::NOT_FOUND);
    let health = plain
        .get(format!("http://{}/healthz", hub.addr))
        .send()
        .await
        .expect("channel listener answers");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let channel_on_admin = client
        .get(format!("https://127.0.0.1:{}/healthz", admin_addr.port()))
        .send()
        .await
        .expect("admin listener answers");
    assert_eq!(channel_on_admin.status(), reqwest::StatusCode::NOT_FOUND);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_admin_listen_the_admin_surface_stays_on_the_channel_listener() {
    let mut env = Env::start().await;
    let hub = start_hub(&mut env, |_| {}).await.expect("hub starts");
    assert_eq!(hub.admin_addr, None);
    let overview = reqwest::Client::new()
        .get(format!("http://{}/admin/api/overview", hub.addr))
        .send()
        .await
        .expect("hub answers");
    assert_eq!(overview.status(), reqwest::StatusCode::OK);
    hub.stop().await;
}

/// A bare rustls HTTPS server answering `ok` to any request.
async fn partner_server(pki: &Pki, require_client_cert_from: Option<&str>) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pki.path("server.pem"))
        .expect("server.pem")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(pki.path("server.key")).expect("server.key");
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let config = match require_client_cert_from {
        Some(ca_pem) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("ca"))
                .expect("root");
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    }
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut chunk = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16_384 {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

fn partner_tls(pki: &Pki, ca: &str, identity: Option<(&str, &str)>) -> PartnerTls {
    PartnerTls {
        ca_file: pki.path(ca),
        client_cert_file: identity.map(|(cert, _)| pki.path(cert)),
        client_key_file: identity.map(|(_, key)| pki.path(key)),
        connect_timeout_ms: 2_000,
        timeout_ms: 5_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_client_trusts_only_the_configured_ca() {
    let pki = Pki::new();
    let addr = partner_server(&pki, None).await;
    let url = format!("https://127.0.0.1:{}/bill", addr.port());

    let client = hub::tls::https_client(&partner_tls(&pki, "ca.pem", None)).expect("client");
    let answer = client.get(&url).send().await.expect("partner reached");
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    assert_eq!(answer.text().await.expect("body"), "ok");

    let wrong = hub::tls::https_client(&partner_tls(&pki, "other-ca.pem", None)).expect("client");
    let refused = wrong.get(&url).send().await;
    assert!(
        refused.is_err(),
        "another CA must not be trusted: {refused:?}"
    );

    // HTTPS only: a plain URL is refused before anything is sent.
    let plain = client
        .get(format!("http://127.0.0.1:{}/bill", addr.port()))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_client_presents_its_certificate_when_the_partner_asks() {
    let pki = Pki::new();
    let addr = partner_server(&pki, Some(&pki.ca_pem)).await;
    let url = format!("https://127.0.0.1:{}/bill", addr.port());

    let with_identity = hub::tls::https_client(&partner_tls(
        &pki,
        "ca.pem",
        Some(("client.pem", "client.key")),
    ))
    .expect("client");
    let answer = with_identity
        .get(&url)
        .send()
        .await
        .expect("partner reached");
    assert_eq!(answer.status(), reqwest::StatusCode::OK);

    let without = hub::tls::https_client(&partner_tls(&pki, "ca.pem", None)).expect("client");
    let refused = without.get(&url).send().await;
    assert!(refused.is_err(), "{refused:?}");

    let mut half = partner_tls(&pki, "ca.pem", Some(("client.pem", "client.key")));
    half.client_key_file = None;
    assert!(matches!(
        hub::tls::https_client(&half),
        Err(TlsError::IncompleteClientIdentity)
    ));

    let mismatched = hub::tls::https_client(&partner_tls(
        &pki,
        "ca.pem",
        Some(("client.pem", "unrelated.key")),
    ));
    assert!(
        matches!(mismatched, Err(TlsError::KeyMismatch { .. })),
        "{:?}",
        mismatched.err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_fails_with_a_typed_error_naming_the_file() {
    let pki = Pki::new();
    let mut env = Env::start().await;

    let mut missing = pki.server_tls(None);
    missing.cert_file = pki.path("no-such-server.pem");
    let error = start_hub(&mut env, |c| c.hub.tls = Some(missing))
        .await
        .err();
    match &error {
        Some(StartError::Tls(TlsError::Read { file, path, .. })) => {
            assert_eq!(*file, TlsFile::Certificate);
            assert_eq!(path, &pki.path("no-such-server.pem"));
        }
        other => panic!("expected a read error of the certificate file, got {other:?}"),
    }
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("no-such-server.pem"), "{text}");

    let mut mismatched = pki.server_tls(None);
    mismatched.key_file = pki.path("unrelated.key");
    let error = start_hub(&mut env, |c| c.hub.tls = Some(mismatched))
        .await
        .err();
    assert!(
        matches!(
            &error,
            Some(StartError::Tls(TlsError::KeyMismatch { key_path, cert_path }))
                if key_path == &pki.path("unrelated.key") && cert_path == &pki.path("server.pem")
        ),
        "{error:?}"
    );
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    let key_pem = std::fs::read_to_string(pki.path("unrelated.key")).expect("key");
    let key_body = key_pem.lines().nth(1).unwrap_or("-");
    assert!(!text.contains(key_body), "the key never shows: {text}");

    // A CA file that holds no certificate (here: a key) is refused and named.
    let bad_ca = pki.server_tls(Some("client.key"));
    let error = start_hub(&mut env, |c| c.hub.tls = Some(bad_ca))
        .await
        .err();
    assert!(
        matches!(
            &error,
            Some(StartError::Tls(TlsError::NoCertificate { file: TlsFile::ClientCa, path }))
                if path == &pki.path("client.key")
        ),
        "{error:?}"
    );

    // The admin listener's TLS is checked the same way.
    let mut admin_missing_key = pki.server_tls(None);
    admin_missing_key.key_file = pki.path("no-such-admin.key");
    let error = start_hub(&mut env, |c| {
        c.hub.admin_listen = Some("127.0.0.1:0".into());
        c.hub.admin_tls = Some(admin_missing_key);
    })
    .await
    .err();
    assert!(
        matches!(
            &error,
            Some(StartError::Tls(TlsError::Read { file: TlsFile::PrivateKey, path, .. }))
                if path == &pki.path("no-such-admin.key")
        ),
        "{error:?}"
    );
    assert_eq!(error.map(|e| e.code()), Some("TLS_FILE_READ"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_starts_its_handshake_is_dropped_and_others_still_get_in() {
    let pki = Pki::new();
    let mut env = Env::start().await;
    let mut tls = pki.server_tls(None);
    tls.handshake_timeout_ms = 200;
    let hub = start_hub(&mut env, |c| c.hub.tls = Some(tls))
        .await
        .expect("hub starts with TLS");
    let mut idle = tokio::net::TcpStream::connect(hub.addr)
        .await
        .expect("tcp connect");
    // While the idle connection holds its slot, a real client is served.
    let health = channel_client(&pki.ca_pem, None)
        .get(format!("https://127.0.0.1:{}/healthz", hub.addr.port()))
        .send()
        .await
        .expect("served beside an idle connection");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let mut buffer = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buffer)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the idle connection is closed after the handshake timeout: {closed:?}"
    );
    hub.stop().await;
}
