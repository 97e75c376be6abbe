//! The notification client end to end against the bureau simulator (written from spec 09, not
//! from this adapter) over real HTTP on 127.0.0.1.

use adapters::tobacco::message::PayChannel;
use adapters::tobacco::{NotifyClient, NotifyConfig, NotifyOutcome, PaymentNotification};
use chrono::NaiveDate;
use codecs::clock::{ManualClock, SharedClock};
use codecs::crypto::sm2::PrivateKey;
use codecs::Money;
use fixtures::tobacco_sim::{
    NotifyFault, SimOrder, TobaccoSim, TobaccoSimConfig, BUREAU_TEST_PRIVATE_HEX,
};

#[tokio::test]
async fn notification_is_recorded_then_already_recorded_and_faults_are_not_acknowledged() {
    let now = NaiveDate::from_ymd_opt(2026, 12, 2)
        .and_then(|d| d.and_hms_opt(9, 15, 3))
        .expect("time");
    let clock: SharedClock = ManualClock::new(now);
    let bank = PrivateKey::generate().expect("key");
    let bureau = PrivateKey::from_hex(BUREAU_TEST_PRIVATE_HEX).expect("key");
    let sim = TobaccoSim::start(
        TobaccoSimConfig {
            bureau_code: "430600".into(),
            bank_code: "YYNS0001".into(),
            bureau_key: bureau.clone(),
            bank_public: bank.public_key(),
            hub_base_url: "http://127.0.0.1:9".into(),
        },
        clock.clone(),
    )
    .await
    .expect("sim");
    sim.state().orders.insert(
        "YC20261202000123".into(),
        SimOrder {
            order_no: "YC20261202000123".into(),
            licence_no: "430602100123".into(),
            amount_fen: 1_256_800,
            cancelled: false,
        },
    );
    let client = NotifyClient::new(
        reqwest::Client::new(),
        NotifyConfig {
            base_url: sim.base_url(),
            bank_code: "YYNS0001".into(),
            bureau_code: "430600".into(),
            exchange_timeout_ms: 500,
        },
        bank,
        bureau.public_key(),
        clock,
    );
    let body = PaymentNotification {
        bank_code: "YYNS0001".into(),
        order_no: "YC20261202000123".into(),
        licence_no: "430602100123".into(),
        amount: Money::from_fen(1_256_800),
        pay_time: now,
        acct_date: now.date(),
        bank_serial: "20261202H1000001".into(),
        channel: PayChannel::Mobile,
    }
    .to_body();
    sim.inject(NotifyFault::Unsigned, 1);
    assert!(matches!(
        client.notify(&body).await,
        NotifyOutcome::NotAcknowledged { .. }
    ));
    assert_eq!(
        client.notify(&body).await,
        NotifyOutcome::Acknowledged {
            code: "0001".into()
        }
    );
    sim.inject(NotifyFault::Delay(std::time::Duration::from_secs(2)), 1);
    assert!(matches!(
        client.notify(&body).await,
        NotifyOutcome::NotAcknowledged { .. }
    ));
    assert_eq!(sim.recorded().len(), 1);
    let other = String::from_utf8(body.clone())
        .expect("utf8")
        .replace("1256800", "1256801");
    assert!(matches!(
        client.notify(other.as_bytes()).await,
        NotifyOutcome::Rejected { .. }
    ));
}
