//! Against the bureau simulator over real HTTP on 127.0.0.1.

use std::sync::Arc;

use adapters::tobacco::message::PayChannel;
use adapters::tobacco::{NotifyClient, NotifyConfig, OrderState, RequestVerifier};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use codecs::clock::{Clock, ManualClock, SharedClock};
use codecs::crypto::sm2::PrivateKey;
use codecs::Money;
use fixtures::tobacco_sim::{order_json, NotifyFault, TobaccoSim, TobaccoSimConfig};
use serde_json::Value;

use super::file::reconcile_file;
use super::outbox::Outbox;
use super::router::{router, TobaccoInbound};
use super::store::{PayRefusal, TobaccoStore};
use crate::journal::Journal;

const BUREAU_HEX: &str = "437ecacb8de064675b05b33bd8c5cd9232a92f1c7d06f977d1f9cf1874f2b4e5";

fn at(h: u32, m: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 12, 2)
        .and_then(|d| d.and_hms_opt(h, m, 0))
        .expect("time")
}

struct World {
    sim: TobaccoSim,
    store: TobaccoStore,
    outbox: Outbox,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("hub.db").display());
    let journal = Journal::open(&url).await.expect("journal");
    let clock = ManualClock::new(at(9, 0));
    let shared: SharedClock = clock.clone();
    let bank_key = PrivateKey::generate().expect("key");
    let bureau_key = PrivateKey::from_hex(BUREAU_HEX).expect("key");
    let store = TobaccoStore::new(journal.pool().clone(), shared.clone(), "YYNS0001");
    let inbound = Arc::new(TobaccoInbound {
        store: store.clone(),
        verifier: RequestVerifier::new([("430600".to_string(), bureau_key.public_key())]),
        bank_key: bank_key.clone(),
        bank_code: "YYNS0001".into(),
        bureau_code: "430600".into(),
        clock: shared.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(inbound);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sim = TobaccoSim::start(
        TobaccoSimConfig {
            bureau_code: "430600".into(),
            bank_code: "YYNS0001".into(),
            bureau_key: bureau_key.clone(),
            bank_public: bank_key.public_key(),
            hub_base_url: format!("http://{addr}"),
        },
        shared.clone(),
    )
    .await
    .expect("sim");
    let client = NotifyClient::new(
        reqwest::Client::new(),
        NotifyConfig {
            base_url: sim.base_url(),
            bank_code: "YYNS0001".into(),
            bureau_code: "430600".into(),
            exchange_timeout_ms: 500,
        },
        bank_key,
        bureau_key.public_key(),
        shared,
    );
    World {
        sim,
        outbox: Outbox::new(store.clone(), client, 10),
        store,
        clock,
        _dir: dir,
    }
}

fn code(v: &Value) -> &str {
    v.get("code").and_then(Value::as_str).unwrap_or("")
}

fn result(v: &Value, i: usize) -> (String, String) {
    let r = v
        .get("results")
        .and_then(|r| r.get(i))
        .cloned()
        .unwrap_or(Value::Null);
    (
        r.get("code")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        r.get("state")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
    )
}

#[tokio::test]
async fn pushes_are_idempotent_and_answers_signed() {
    let w = world().await;
    let orders = vec![
        order_json("YC1", "430602100123", 1_256_800, "20261202"),
        order_json("YC2", "430602100123", 500, "20261201"),
    ];
    let first = w.sim.push("P1", orders.clone()).await.expect("push");
    assert_eq!((first.status, first.signed_ok), (200, true));
    assert_eq!(code(&first.body), "0000");
    assert_eq!(result(&first.body, 0), ("0000".into(), "1".into()));
    // The same pushId and body again: processed again, changes nothing.
    let again = w.sim.push("P1", orders.clone()).await.expect("push");
    // pushTime is the clock: unchanged, so the body is byte-identical.
    assert_eq!(code(&again.body), "0000");
    assert_eq!(result(&again.body, 1), ("0000".into(), "1".into()));
    // Same pushId, another body: 1005, results empty.
    let other = w
        .sim
        .push("P1", vec![order_json("YC3", "430602100123", 1, "20261202")])
        .await
        .expect("push");
    assert_eq!(code(&other.body), "1005");
    assert_eq!(other.body.get("results"), Some(&Value::Array(vec![])));
    assert!(w.store.order("YC3").await.expect("db").is_none());
    // Known orderNo with other content: 2001; a bad amount: 2003 with an empty state.
    let mut bad = order_json("YC4", "430602100123", 1, "20261202");
    bad["amount"] = serde_json::json!(1.5);
    let mixed = w
        .sim
        .push(
            "P2",
            vec![
                order_json("YC1", "430602100123", 1_256_801, "20261202"),
                bad,
            ],
        )
        .await
        .expect("push");
    assert_eq!(result(&mixed.body, 0), ("2001".into(), "1".into()));
    assert_eq!(result(&mixed.body, 1), ("2003".into(), "".into()));
    // 101 orders: 1006.
    let many: Vec<Value> = (0..101)
        .map(|i| order_json(&format!("M{i}"), "430602100123", 1, "20261202"))
        .collect();
    assert_eq!(
        code(&w.sim.push("P3", many).await.expect("push").body),
        "1006"
    );
    assert_eq!(
        code(
            &w.sim
                .push_raw(b"{\"bureauCode\":\"430600\"}")
                .await
                .expect("push")
                .body
        ),
        "1007"
    );
}

#[tokio::test]
async fn unauthenticated_requests_get_an_unsigned_401_and_change_nothing() {
    let w = world().await;
    let body = serde_json::json!({"bureauCode":"430600","orderNo":"YC1","reason":"x"}).to_string();
    let tampered = w
        .sim
        .send("/tobacco/v1/orders/cancel", body.as_bytes(), |h| {
            if let Some(sig) = h.iter_mut().find(|(n, _)| n == "X-YC-AppId") {
                sig.1 = "999999".into();
            }
        })
        .await
        .expect("send");
    assert_eq!((tampered.status, code(&tampered.body)), (401, "1002"));
    assert!(!tampered.signed_ok);
    let stale = w
        .sim
        .send("/tobacco/v1/orders/cancel", body.as_bytes(), |h| {
            if let Some(ts) = h.iter_mut().find(|(n, _)| n == "X-YC-Timestamp") {
                ts.1 = "1796172899".into(); // 301 s before 09:00
            }
        })
        .await
        .expect("send");
    assert_eq!((stale.status, code(&stale.body)), (401, "1003"));
}

#[tokio::test]
async fn cancel_query_and_lookup() {
    let w = world().await;
    w.sim
        .push(
            "P1",
            vec![
                order_json("YC1", "430602100123", 100, "20261205"),
                order_json("YC2", "430602100123", 200, "20261201"),
                order_json("YC3", "430602100123", 300, "20261203"),
            ],
        )
        .await
        .expect("push");
    // Oldest dueDate first; the one due on the 1st is overdue on the 2nd.
    let views = w.store.lookup_by_licence("430602100123").await.expect("db");
    let order: Vec<(&str, bool)> = views
        .iter()
        .map(|v| (v.order.order_no.as_str(), v.overdue))
        .collect();
    assert_eq!(order, vec![("YC2", true), ("YC3", false), ("YC1", false)]);

    let c = w.sim.cancel("YC1", "重复下单").await.expect("cancel");
    assert_eq!(
        (code(&c.body), c.body["state"].as_str()),
        ("0000", Some("4"))
    );
    let c = w.sim.cancel("YC1", "重复下单").await.expect("cancel");
    assert_eq!(code(&c.body), "0000");
    assert_eq!(
        code(&w.sim.cancel("NOPE", "x").await.expect("c").body),
        "3001"
    );
    assert_eq!(
        w.store
            .begin_payment("YC1", Money::from_fen(100), "S1")
            .await
            .expect("db"),
        Err(PayRefusal::Cancelled)
    );
    // Paying: cancel gets 3003; wrong amount refused.
    assert_eq!(
        w.store
            .begin_payment("YC2", Money::from_fen(199), "S2")
            .await
            .expect("db"),
        Err(PayRefusal::WrongAmount)
    );
    assert!(w
        .store
        .begin_payment("YC2", Money::from_fen(200), "S2")
        .await
        .expect("db")
        .is_ok());
    assert_eq!(
        code(&w.sim.cancel("YC2", "x").await.expect("c").body),
        "3003"
    );
    let paid = w
        .store
        .payment_succeeded(
            "YC2",
            "S2",
            NaiveDate::from_ymd_opt(2026, 12, 3).expect("d"),
            PayChannel::Mobile,
        )
        .await
        .expect("db");
    assert!(paid);
    assert_eq!(
        code(&w.sim.cancel("YC2", "x").await.expect("c").body),
        "3002"
    );
    let q = w.sim.query("YC2").await.expect("query");
    assert!(q.signed_ok);
    assert_eq!(q.body["state"], "3");
    assert_eq!(q.body["amount"], 200);
    assert_eq!(q.body["bankSerial"], "S2");
    assert_eq!(q.body["acctDate"], "20261203");
    assert_eq!(q.body["payTime"], "20261202090000");
    assert_eq!(q.body["channel"], "02");
    assert_eq!(code(&w.sim.query("NOPE").await.expect("q").body), "3001");
    // An identical repeat of a paid order answers 0000 with state 3.
    let again = w
        .sim
        .push(
            "P9",
            vec![order_json("YC2", "430602100123", 200, "20261201")],
        )
        .await
        .expect("push");
    assert_eq!(result(&again.body, 0), ("0000".into(), "3".into()));
    // 2 → 1 on a core refusal makes the order payable again.
    assert!(w
        .store
        .begin_payment("YC3", Money::from_fen(300), "S3")
        .await
        .expect("db")
        .is_ok());
    assert!(w.store.payment_failed("YC3", "S3").await.expect("db"));
    assert_eq!(
        w.store.order("YC3").await.expect("db").map(|o| o.state),
        Some(OrderState::Unpaid)
    );
}

async fn pay(w: &World, order_no: &str, amount_fen: i64, serial: &str) {
    w.sim
        .push(
            &format!("P{order_no}"),
            vec![order_json(order_no, "430602100123", amount_fen, "20261202")],
        )
        .await
        .expect("push");
    assert!(w
        .store
        .begin_payment(order_no, Money::from_fen(amount_fen), serial)
        .await
        .expect("db")
        .is_ok());
    assert!(w
        .store
        .payment_succeeded(order_no, serial, w.clock.today(), PayChannel::Counter)
        .await
        .expect("db"));
}

#[tokio::test]
async fn outbox_retries_on_schedule_until_acknowledged() {
    let w = world().await;
    pay(&w, "YC1", 1_256_800, "S1").await;
    w.sim.inject(NotifyFault::SystemError, 1);
    w.sim.inject(NotifyFault::BadSignature, 1);
    w.sim
        .inject(NotifyFault::Delay(std::time::Duration::from_secs(2)), 1);
    let first = w.outbox.run_once().await.expect("pass");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].status, "PENDING");
    // Not due before 15 s.
    w.clock.advance(Duration::seconds(14));
    assert!(w.outbox.run_once().await.expect("pass").is_empty());
    w.clock.advance(Duration::seconds(1));
    assert_eq!(
        w.outbox.run_once().await.expect("pass")[0].status,
        "PENDING"
    );
    // The bad-signature answer was recorded at the bureau but is no acknowledgement.
    assert_eq!(w.sim.recorded().len(), 1);
    // Next at 1 min after the first attempt.
    w.clock.advance(Duration::seconds(45));
    assert_eq!(
        w.outbox.run_once().await.expect("pass")[0].status,
        "PENDING"
    );
    w.clock.advance(Duration::minutes(4));
    assert_eq!(w.outbox.run_once().await.expect("pass")[0].status, "ACKED");
    let row = w.store.notification("S1").await.expect("db").expect("row");
    assert_eq!((row.status.as_str(), row.attempts), ("ACKED", 4));
    // Every attempt sent the byte-identical body.
    let attempts = w.sim.state().attempts.clone();
    assert_eq!(attempts.len(), 4);
    assert!(attempts.iter().all(|a| a == &attempts[0]));
    let body: Value = serde_json::from_slice(&attempts[0]).expect("json");
    assert_eq!(body["notifyId"], "S1");
    assert_eq!(body["amount"], 1_256_800);
}

#[tokio::test]
async fn a_rejected_notification_stops_and_a_dead_bureau_expires_after_72_hours() {
    let w = world().await;
    pay(&w, "YC1", 100, "S1").await;
    // The bureau forgot the order (simulated): 2005.
    w.sim.state().orders.clear();
    assert_eq!(
        w.outbox.run_once().await.expect("pass")[0].status,
        "REJECTED"
    );
    w.clock.advance(Duration::hours(1));
    assert!(w.outbox.run_once().await.expect("pass").is_empty());

    pay(&w, "YC2", 100, "S2").await;
    w.sim.inject(NotifyFault::Http500, 1000);
    let mut last = "";
    for _ in 0..200 {
        if let Some(report) = w.outbox.run_once().await.expect("pass").first() {
            last = report.status;
            if last == "EXPIRED" {
                break;
            }
        }
        w.clock.advance(Duration::hours(1));
    }
    assert_eq!(last, "EXPIRED");
    let row = w.store.notification("S2").await.expect("db").expect("row");
    // The first, 6 retries up to 1 h, hourly from 2 h to 72 h (71), then the one that finds
    // the next slot (73 h) past the deadline.
    assert_eq!(row.attempts, 1 + 6 + 71);
}

#[tokio::test]
async fn daily_file_matches_and_renotifies_what_is_missing() {
    let w = world().await;
    pay(&w, "YC1", 100, "S1").await;
    pay(&w, "YC2", 200, "S2").await;
    w.sim.inject(NotifyFault::Http500, 1);
    w.outbox.run_once().await.expect("pass");
    assert_eq!(w.sim.recorded().len(), 1);
    let day = w.clock.today();
    let text = w.sim.daily_file(day);
    let file = adapters::tobacco::parse_daily_file(text.as_bytes(), day).expect("file");
    let report = reconcile_file(&w.store, &file).await.expect("recon");
    assert_eq!(report.matched.len(), 1);
    assert!(report.unknown.is_empty());
    assert_eq!(report.unconfirmed.len(), 1);
    // An unknown line raises an alert.
    let forged = format!(
        "{}|1|5\nX9|YC9|430602100123|5|20261202090000|01\n",
        codecs::clock::yyyymmdd(day)
    );
    let file = adapters::tobacco::parse_daily_file(forged.as_bytes(), day).expect("file");
    let report = reconcile_file(&w.store, &file).await.expect("recon");
    assert_eq!(report.unknown, vec!["X9".to_string()]);
}

/// A crash after the journal said CORE_FAILED but before the order was released leaves it 2:
/// the next payment (or the bureau's cancel) of the order repairs it from the journal, while a
/// hold of a payment still in flight is kept.
#[tokio::test]
async fn a_hold_left_by_an_ended_payment_is_released_from_the_journal() {
    let w = world().await;
    w.sim
        .push(
            "P9",
            vec![
                order_json("YC9", "430602100123", 900, "20261202"),
                order_json("YC8", "430602100123", 800, "20261202"),
            ],
        )
        .await
        .expect("push");
    for (order, serial, amount, state) in [
        ("YC9", "S9", 900, "CORE_FAILED"),
        ("YC8", "S8", 800, "CORE_DEBITED"),
    ] {
        assert!(w
            .store
            .begin_payment(order, Money::from_fen(amount), serial)
            .await
            .expect("db")
            .is_ok());
        sqlx::query(
            "INSERT INTO payments (hub_serial, channel, channel_date, channel_serial, request_hash, \
             payee, instance, customer_no, payer_account, amount_fen, total_due_fen, branch_no, \
             teller_no, tx_date, tx_time, state, created_at, updated_at) VALUES \
             (?, '02', '20261202', ?, 'h', 'TOBACCO', '430600', ?, '6230901000000000011', ?, ?, \
             '000101', 'T1', '20261202', '090000', ?, 'now', 'now')",
        )
        .bind(serial)
        .bind(serial)
        .bind(order)
        .bind(amount)
        .bind(amount)
        .bind(state)
        .execute(w.store.pool())
        .await
        .expect("payment row");
    }
    // The same serial again is the hold it already has.
    assert!(w
        .store
        .begin_payment("YC8", Money::from_fen(800), "S8")
        .await
        .expect("db")
        .is_ok());
    // Still in flight: another payment is refused, the bureau's cancel gets 3003.
    assert_eq!(
        w.store
            .begin_payment("YC8", Money::from_fen(800), "S10")
            .await
            .expect("db"),
        Err(PayRefusal::InProgress)
    );
    assert_eq!(
        code(&w.sim.cancel("YC8", "x").await.expect("c").body),
        "3003"
    );
    // Ended: the next payment takes the order.
    let held = w
        .store
        .begin_payment("YC9", Money::from_fen(900), "S11")
        .await
        .expect("db")
        .expect("released and held again");
    assert_eq!(held.bank_serial.as_deref(), Some("S11"));
}

/// Spec 09 "Authentication", the two checks the other test leaves: a bad signature or nonce form
/// is 1001, a nonce seen within 15 minutes is 1004 (the exact request replayed), and neither
/// changes anything.
#[tokio::test]
async fn bad_signatures_and_replayed_nonces_are_refused_unsigned() {
    let w = world().await;
    let body = serde_json::json!({"bureauCode":"430600","orderNo":"YC1"}).to_string();
    let forged = w
        .sim
        .send("/tobacco/v1/orders/query", body.as_bytes(), |h| {
            if let Some(sig) = h.iter_mut().find(|(n, _)| n == "X-YC-Signature") {
                // A DER-shaped signature of someone else's.
                sig.1 = "MEUCIQDm2yYqXl1rBXsGQd2c4rOZyYgXkV1h5nB0q2t3Yp0PBgIgY8kQ8u7M0p2sZ3Q9y3z4e1jv0c2P5y0pX3z1Zb6fQ1c=".into();
            }
        })
        .await
        .expect("send");
    assert_eq!((forged.status, code(&forged.body)), (401, "1001"));
    assert!(!forged.signed_ok);
    let upper_nonce = w
        .sim
        .send("/tobacco/v1/orders/query", body.as_bytes(), |h| {
            if let Some(nonce) = h.iter_mut().find(|(n, _)| n == "X-YC-Nonce") {
                nonce.1 = nonce.1.to_uppercase();
            }
        })
        .await
        .expect("send");
    assert_eq!((upper_nonce.status, code(&upper_nonce.body)), (401, "1001"));

    // The same signed request twice: the first is answered (3001, no such order), the replay 1004.
    let saved = std::sync::Mutex::new(Vec::new());
    let first = w
        .sim
        .send("/tobacco/v1/orders/query", body.as_bytes(), |h| {
            if let Ok(mut s) = saved.lock() {
                *s = h.clone();
            }
        })
        .await
        .expect("send");
    assert_eq!((first.status, code(&first.body)), (200, "3001"));
    assert!(first.signed_ok);
    let replay = w
        .sim
        .send("/tobacco/v1/orders/query", body.as_bytes(), |h| {
            if let Ok(s) = saved.lock() {
                *h = s.clone();
            }
        })
        .await
        .expect("send");
    assert_eq!((replay.status, code(&replay.body)), (401, "1004"));
    assert!(!replay.signed_ok);
}
