//! A 郴电国际 MAC key change end to end, over real sockets: the power simulator already uses the
//! new key K2, the hub's key store holds the old key K1 as current and K2 as next (files in the
//! test's temp dir). Spec 01: the sender MACs with its key, a receiver answers 9002 on a request
//! MAC mismatch; the hub verifies answers with the current key, then the next.
//!
//! A recording proxy sits between the hub and the simulator so that every test can check, on the
//! bytes themselves, which key MACed each request and each answer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use e2e_tests::*;
use fixtures::power_sim::PowerPaymentState;
use hub::app::StartError;
use hub::config::HubConfig;
use hub::keys::{
    KeyError, KeyRef, KeyStore, KeysConfig, LinkKeyKind, LinkKeysConfig, PromotionState,
};
use hub::state::PaymentState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The old key: the power company no longer accepts it.
const K1_OLD_HEX: &str = "00112233445566778899aabbccddeeff";
/// The new key: the power simulator's key (the harness keys it with `MAC_KEY_HEX`).
const K2_NEW_HEX: &str = MAC_KEY_HEX;
/// A third key, only ever written inline in `[[chendian]]`.
const K3_INLINE_HEX: &str = "8899aabbccddeeff0011223344556677";
/// The key-store name of the harness's instance: `CDGJ-` + its BankCode NSH43102.
const LINK: &str = "CDGJ-NSH43102";
/// Spec 01: the MAC is the last 16 bytes of every body; the frame has a 6-digit length in front.
const MAC_BYTES: usize = 16;
const LENGTH_DIGITS: usize = 6;

/// One request the hub sent and the answer the simulator gave, bodies without the length prefix.
#[derive(Clone, Debug)]
struct Exchange {
    request: Vec<u8>,
    answer: Vec<u8>,
}

impl Exchange {
    fn tx_code(&self) -> String {
        String::from_utf8_lossy(self.request.get(0..4).unwrap_or_default()).into_owned()
    }

    /// Header: TxCode 4, BankCode 8, BranchNo 6, TellerNo 6, Channel 2, TxDate 8, TxTime 6, then
    /// BankSerial 20 at offset 40.
    fn bank_serial(&self) -> String {
        String::from_utf8_lossy(self.request.get(40..60).unwrap_or_default())
            .trim_end()
            .to_string()
    }
}

type Recorded = Arc<Mutex<Vec<Exchange>>>;

async fn read_frame(stream: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut length = [0u8; LENGTH_DIGITS];
    stream.read_exact(&mut length).await.ok()?;
    let body_len: usize = std::str::from_utf8(&length).ok()?.parse().ok()?;
    let mut body = vec![0u8; body_len.min(4096)];
    stream.read_exact(&mut body).await.ok()?;
    Some((length.to_vec(), body))
}

/// A transparent proxy to the power simulator (one exchange per connection, as spec 01 has it)
/// that records every request and answer.
async fn recording_proxy(target: std::net::SocketAddr) -> (u16, Recorded) {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("proxy binds");
    let port = listener.local_addr().expect("proxy addr").port();
    let recorded: Recorded = Arc::default();
    let log = recorded.clone();
    tokio::spawn(async move {
        while let Ok((mut from_hub, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let Some((request_len, request)) = read_frame(&mut from_hub).await else {
                    return;
                };
                let Ok(mut to_power) = TcpStream::connect(target).await else {
                    return;
                };
                if to_power.write_all(&request_len).await.is_err()
                    || to_power.write_all(&request).await.is_err()
                {
                    return;
                }
                let Some((answer_len, answer)) = read_frame(&mut to_power).await else {
                    return;
                };
                if let Ok(mut log) = log.lock() {
                    log.push(Exchange {
                        request,
                        answer: answer.clone(),
                    });
                }
                let _ = from_hub.write_all(&answer_len).await;
                let _ = from_hub.write_all(&answer).await;
            });
        }
    });
    (port, recorded)
}

/// The exchanges of one TxCode for one hub serial.
fn exchanges(recorded: &Recorded, tx_code: &str, hub_serial: &str) -> Vec<Exchange> {
    recorded
        .lock()
        .expect("proxy log")
        .iter()
        .filter(|e| e.tx_code() == tx_code && e.bank_serial() == hub_serial)
        .cloned()
        .collect()
}

/// True when the body's trailing MAC is spec 01's MAC of the rest under `key_hex`.
fn maced_with(body: &[u8], key_hex: &str) -> bool {
    let key = codecs::mac::parse_key_hex(key_hex).expect("test key");
    let Some(split) = body.len().checked_sub(MAC_BYTES) else {
        return false;
    };
    let (data, mac) = body.split_at(split);
    codecs::mac::verify_cdgj_mac(&key, data, mac)
}

/// Which of the test's keys MACed `body` (exactly one must).
fn mac_key_of(body: &[u8]) -> &'static str {
    let matching: Vec<&'static str> = [K1_OLD_HEX, K2_NEW_HEX, K3_INLINE_HEX]
        .into_iter()
        .filter(|key| maced_with(body, key))
        .collect();
    assert_eq!(matching.len(), 1, "MAC keys matching a body: {matching:?}");
    matching.first().copied().unwrap_or_default()
}

/// A key file in the test's temp dir, hex with a final newline as an operator would write it.
fn write_key(env: &Env, name: &str, key_hex: &str) -> PathBuf {
    let path = env.dir.path().join(name);
    std::fs::write(&path, format!("{key_hex}\n")).expect("key file written");
    path
}

/// The harness's config with the power company behind the proxy, `inline_hex` in `[[chendian]]`
/// and the link's keys in the key store.
fn keyed_config(
    env: &Env,
    proxy_port: u16,
    inline_hex: &str,
    current: KeyRef,
    next: Option<KeyRef>,
) -> HubConfig {
    let mut config = env.hub_config();
    for instance in &mut config.chendian {
        instance.port = proxy_port;
        instance.mac_key_hex = inline_hex.into();
        instance.mac_key_next_hex = None;
    }
    config.keys.links.insert(
        LINK.into(),
        LinkKeysConfig {
            kind: LinkKeyKind::Mac,
            current,
            next,
        },
    );
    config
}

/// An environment whose hub runs on the config `build` makes of the environment and the proxy's
/// port; also the proxy's port and the config's `[keys]`.
async fn env_with_hub(
    build: impl FnOnce(&Env, u16) -> HubConfig,
) -> (Env, Recorded, u16, KeysConfig) {
    let mut env = Env::start().await;
    let (proxy_port, recorded) = recording_proxy(env.power.addr).await;
    let config = build(&env, proxy_port);
    let keys = config.keys.clone();
    env.stop_hub().await;
    env.start_hub_with_config(config).await;
    (env, recorded, proxy_port, keys)
}

/// Current K1, next K2, inline K2 (the harness's key).
fn k1_current_k2_next(env: &Env, proxy_port: u16) -> HubConfig {
    let k1 = write_key(env, "cdgj-k1.hex", K1_OLD_HEX);
    let k2 = write_key(env, "cdgj-k2.hex", K2_NEW_HEX);
    keyed_config(
        env,
        proxy_port,
        K2_NEW_HEX,
        KeyRef::File(k1),
        Some(KeyRef::File(k2)),
    )
}

/// Pays 张三's arrears and expects the 9002 refusal read through the next key: REVERSED, the
/// payer whole again, nothing written off.
async fn pay_refused_9002(env: &Env, recorded: &Recorded, serial: &str) {
    let (answer, hub_serial) = env
        .pay_ok(&PayArgs::mobile(
            serial,
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["partner_code"], "9002", "{answer}");
    env.wait_state(&hub_serial, PaymentState::Reversed).await;

    let sent = exchanges(recorded, "1002", &hub_serial);
    assert_eq!(sent.len(), 1, "one 1002, never re-sent");
    let exchange = sent.first().expect("the 1002");
    assert_eq!(
        mac_key_of(&exchange.request),
        K1_OLD_HEX,
        "the 1002 is MACed with the current key"
    );
    // The 9002 answer verifies under K2 only: the hub read it through its next key.
    assert_eq!(mac_key_of(&exchange.answer), K2_NEW_HEX);

    assert!(env.power.payments().is_empty(), "nothing written off");
    assert_eq!(power_due_fen(env, ZHANG_SAN), ZHANG_SAN_DUE_FEN);
    assert_money(env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// Pays 张三's arrears and expects success with one debit and one write-off MACed with `key_hex`.
async fn pay_succeeds(env: &Env, recorded: &Recorded, serial: &str, key_hex: &str) {
    let (answer, hub_serial) = env
        .pay_ok(&PayArgs::mobile(
            serial,
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    env.wait_state(&hub_serial, PaymentState::Succeeded).await;

    let sent = exchanges(recorded, "1002", &hub_serial);
    assert_eq!(sent.len(), 1, "one 1002");
    let exchange = sent.first().expect("the 1002");
    assert_eq!(mac_key_of(&exchange.request), key_hex, "the 1002's MAC key");
    assert_eq!(mac_key_of(&exchange.answer), K2_NEW_HEX);

    let written_off = env.power.payments();
    assert_eq!(written_off.len(), 1, "one write-off: {written_off:?}");
    let partner = env
        .power_payment(&hub_serial)
        .expect("the power company wrote this payment off");
    assert_eq!(partner.state, PowerPaymentState::WrittenOff);
    assert_eq!(partner.amount.fen(), ZHANG_SAN_DUE_FEN);
    assert_eq!(power_due_fen(env, ZHANG_SAN), 0);
    // Debited once: the payer is short of exactly one payment, held in the suspense account.
    assert_money(
        env,
        PAYER_A,
        PAYER_A_OPENING_FEN - ZHANG_SAN_DUE_FEN,
        ZHANG_SAN_DUE_FEN,
    );
}

/// 1. Before any promotion the hub sends with K1; the power company (K2) answers 9002 under K2,
///    which the hub reads through its next key as a refusal: REVERSED. The inline key is the
///    partner's own K2 here, so a hub that ignored the key store would have succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_promotion_requests_use_the_old_key_and_9002_reverses() {
    let (env, recorded, _, _) = env_with_hub(k1_current_k2_next).await;
    pay_refused_9002(&env, &recorded, "MBKEY0101").await;
}

/// 2. Maker-checker: the maker cannot approve her own request (in any letter case); a second
///    operator can; after a restart the hub sends with K2 and the same payment succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_needs_a_second_operator_and_takes_effect_after_restart() {
    let (mut env, recorded, proxy_port, keys) = env_with_hub(k1_current_k2_next).await;
    pay_refused_9002(&env, &recorded, "MBKEY0201").await;

    let store = KeyStore::new(keys, env.journal.pool().clone(), env.clock.clone());
    let request = store
        .request_promotion(LINK, "alice")
        .await
        .expect("the maker's request is taken");
    assert_eq!(request.link, LINK);
    assert_eq!(request.maker, "alice");
    assert_eq!(request.state, PromotionState::Pending);
    assert_eq!(request.checker, None);

    for same_operator in ["alice", "ALICE"] {
        let refused = store
            .approve(LINK, same_operator)
            .await
            .expect_err("the maker cannot be the checker");
        assert!(
            matches!(&refused, KeyError::CheckerIsMaker { link, .. } if link == LINK),
            "{refused:?}"
        );
        assert_eq!(refused.code(), "KEY_CHECKER_IS_MAKER");
        assert!(is_chinese(refused.message_zh()));
    }

    let approved = store
        .approve(LINK, "bob")
        .await
        .expect("a second operator approves");
    assert_eq!(approved.id, request.id);
    assert_eq!(approved.maker, "alice");
    assert_eq!(approved.checker.as_deref(), Some("bob"));
    assert_eq!(approved.state, PromotionState::Approved);
    assert_eq!(approved.next_fingerprint, request.next_fingerprint);

    // The same configuration (same files, same contents): the journal's approval alone makes
    // K2 current.
    env.stop_hub().await;
    env.start_hub_with_config(k1_current_k2_next(&env, proxy_port))
        .await;
    pay_succeeds(&env, &recorded, "MBKEY0202", K2_NEW_HEX).await;
}

/// 3. The inline `mac_key_hex` is ignored for a link with key-store keys: inline K3, current K2
///    in the store, the hub sends with K2 and succeeds. (Test 1 shows the other direction: an
///    inline key the partner would accept does not override the store's K1.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inline_key_is_ignored_when_the_key_store_has_the_link() {
    let (env, recorded, _, _) = env_with_hub(|env, proxy_port| {
        let k2 = write_key(env, "cdgj-k2.hex", K2_NEW_HEX);
        keyed_config(env, proxy_port, K3_INLINE_HEX, KeyRef::File(k2), None)
    })
    .await;
    pay_succeeds(&env, &recorded, "MBKEY0301", K2_NEW_HEX).await;
}

/// 3b. Inline K3, store current K1 and next K2: the 1002 goes out under K1 (not K3) and is
///     refused 9002, read through the next key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inline_key_is_ignored_before_promotion_too() {
    let (env, recorded, _, _) = env_with_hub(|env, proxy_port| {
        let k1 = write_key(env, "cdgj-k1.hex", K1_OLD_HEX);
        let k2 = write_key(env, "cdgj-k2.hex", K2_NEW_HEX);
        keyed_config(
            env,
            proxy_port,
            K3_INLINE_HEX,
            KeyRef::File(k1),
            Some(KeyRef::File(k2)),
        )
    })
    .await;
    pay_refused_9002(&env, &recorded, "MBKEY0302").await;
}

/// Starts a hub on `config` and returns why it refused to start.
async fn start_refused(env: &Env, config: &HubConfig) -> StartError {
    let clock: codecs::clock::SharedClock = env.clock.clone();
    match hub::app::start(config, clock).await {
        Ok(hub) => {
            hub.stop().await;
            panic!("the hub started with a missing key file");
        }
        Err(error) => error,
    }
}

/// The error names the link and the file reference, and no key value in any case or form.
fn assert_names_reference_only(error: &StartError, missing: &std::path::Path) {
    assert_eq!(error.code(), "KEY_UNREADABLE", "{error:?}");
    let reference = format!("file:{}", missing.display());
    assert!(
        matches!(
            error,
            StartError::Keys(KeyError::Unreadable { link, reference: r, .. })
                if link == LINK && *r == reference
        ),
        "{error:?}"
    );
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(shown.contains(LINK), "{shown}");
        assert!(shown.contains(&reference), "{shown}");
        for key in [K1_OLD_HEX, K2_NEW_HEX, K3_INLINE_HEX] {
            assert!(
                !shown.to_lowercase().contains(key),
                "key material in {shown}"
            );
        }
    }
}

/// 4. A missing key file (current or next) stops the start with a typed error naming the link and
///    the reference, never a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_file_stops_the_start_without_showing_keys() {
    let mut env = Env::start().await;
    env.stop_hub().await;
    let k1 = write_key(&env, "cdgj-k1.hex", K1_OLD_HEX);
    let k2 = write_key(&env, "cdgj-k2.hex", K2_NEW_HEX);
    let missing = env.dir.path().join("cdgj-absent.hex");
    let port = env.power.addr.port();

    let current_missing = keyed_config(
        &env,
        port,
        K3_INLINE_HEX,
        KeyRef::File(missing.clone()),
        Some(KeyRef::File(k2)),
    );
    let error = start_refused(&env, &current_missing).await;
    assert_names_reference_only(&error, &missing);

    // The current key is read (and must not leak) before the next one is found missing.
    let next_missing = keyed_config(
        &env,
        port,
        K3_INLINE_HEX,
        KeyRef::File(k1),
        Some(KeyRef::File(missing.clone())),
    );
    let error = start_refused(&env, &next_missing).await;
    assert_names_reference_only(&error, &missing);

    // Nothing was paid while the hub was refusing to start.
    assert!(env.power.payments().is_empty());
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}
