//! The shared harness of the end-to-end tests (the tests themselves are in `tests/tests/`).
//!
//! One [`Env`] per test: a temp directory, a [`ManualClock`] shared by everything, the core
//! simulator with a handful of accounts of known balances, the 郴电国际 power simulator with
//! customers of known arrears (the spec's 张三 among them), and the hub on a temp SQLite file,
//! reached over real loopback HTTP.
//!
//! The hub runs on a runtime of its own so that [`Env::kill_hub`] is a real crash: every task
//! of the hub (listener, resolver, in-flight requests) dies at once, as when the process is
//! killed. The test reads the journal through a pool of its own, which outlives any hub.
//!
//! This is test code: a helper that cannot do its job panics with a message saying why.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use codecs::clock::{yyyymmdd, ManualClock, SharedClock};
use codecs::Money;
use fixtures::core_sim::{
    self, AccountFixture, AcctClass, AcctStatus, CoreSimConfig, CoreSimHandle,
};
use fixtures::power_sim::{
    self, ArrearsItem, PowerCustomer, PowerPayment, PowerSimConfig, PowerSimHandle,
};
use hub::app::Hub;
use hub::config::{HubConfig, HubSection};
use hub::core_client::CoreConfig;
use hub::engine::{Engine, EngineConfig};
use hub::journal::{Journal, PaymentRow};
use hub::state::{NextAction, PaymentState};
use serde_json::{json, Value};

pub use reqwest::StatusCode;

pub const PAYEE: &str = "CDGJ";
pub const BANK_CODE: &str = "NSH43102";
pub const MAC_KEY_HEX: &str = "0123456789abcdeffedcba9876543210";
/// A key the power company never agreed: every MAC the hub computes with it is wrong.
pub const WRONG_MAC_KEY_HEX: &str = "00112233445566778899aabbccddeeff";
pub const SUSPENSE: &str = "9003100000000001";
pub const SETTLEMENT: &str = "9003200000000001";
pub const BRANCH: &str = "000101";

/// The spec's example customer: TotalDue 22335 fen = 12345 + (9870 + 120).
pub const ZHANG_SAN: &str = "4310020000000001";
pub const ZHANG_SAN_DUE_FEN: i64 = 12_345 + 9_870 + 120;
/// Two periods: 3000 + (2000 + 50) = 5050 fen.
pub const LI_SI: &str = "4310020000000002";
pub const LI_SI_DUE_FEN: i64 = 3_000 + 2_000 + 50;
/// Nothing due, 10.00 yuan prepaid.
pub const WANG_WU: &str = "4310020000000003";
pub const WANG_WU_PREPAID_FEN: i64 = 1_000;
/// A closed (销户) customer who still owes 12.00 yuan.
pub const CLOSED_CUSTOMER: &str = "4310020000000004";
/// One period of 88.00 yuan.
pub const ZHAO_LIU: &str = "4310020000000005";
pub const ZHAO_LIU_DUE_FEN: i64 = 8_800;
/// Not a customer of the power company.
pub const UNKNOWN_CUSTOMER: &str = "4310029999999999";

/// Customers `4310020000000101`.. with one period each; `extra_customer_due_fen(n)` is owed.
pub const EXTRA_CUSTOMERS: usize = 12;

/// The payer of the spec's worked example, 10 000.00 yuan.
pub const PAYER_A: &str = "6230901000000000011";
pub const PAYER_A_OPENING_FEN: i64 = 1_000_000;
/// 5 000.00 yuan.
pub const PAYER_B: &str = "6230901000000000029";
pub const PAYER_B_OPENING_FEN: i64 = 500_000;
/// 2 000.00 yuan.
pub const PAYER_C: &str = "6230901000000000037";
pub const PAYER_C_OPENING_FEN: i64 = 200_000;

/// Real time a wait may take before the test fails.
pub const WAIT_LIMIT: Duration = Duration::from_secs(10);
/// Real time between two looks at the journal.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

pub fn extra_customer(n: usize) -> String {
    format!("43100200000001{n:02}")
}

pub fn extra_customer_due_fen(n: usize) -> i64 {
    1_000 + 100 * n as i64 + 1
}

/// The business date of every test: the spec's worked example is of 2026-12-03.
pub fn business_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).unwrap_or_default()
}

pub fn at(date: NaiveDate, h: u32, m: u32, s: u32) -> NaiveDateTime {
    date.and_time(NaiveTime::from_hms_opt(h, m, s).unwrap_or(NaiveTime::MIN))
}

fn item(period: &str, amount_fen: i64, penalty_fen: i64) -> ArrearsItem {
    ArrearsItem {
        period: period.into(),
        amount: Money::from_fen(amount_fen),
        penalty: Money::from_fen(penalty_fen),
    }
}

fn customer(
    no: &str,
    name: &str,
    closed: bool,
    prepaid_fen: i64,
    arrears: Vec<ArrearsItem>,
) -> PowerCustomer {
    PowerCustomer {
        customer_no: no.into(),
        name: name.into(),
        address: "郴州市北湖区人民路1号".into(),
        closed,
        prepaid: Money::from_fen(prepaid_fen),
        arrears,
    }
}

/// The power company's customers, written by hand.
pub fn power_customers() -> Vec<PowerCustomer> {
    let mut customers = vec![
        customer(
            ZHANG_SAN,
            "张三",
            false,
            0,
            vec![item("202610", 12_345, 0), item("202611", 9_870, 120)],
        ),
        customer(
            LI_SI,
            "李四",
            false,
            0,
            vec![item("202610", 3_000, 0), item("202611", 2_000, 50)],
        ),
        customer(WANG_WU, "王五", false, WANG_WU_PREPAID_FEN, vec![]),
        customer(
            CLOSED_CUSTOMER,
            "陈七",
            true,
            0,
            vec![item("202611", 1_200, 0)],
        ),
        customer(ZHAO_LIU, "赵六", false, 0, vec![item("202611", 8_800, 0)]),
    ];
    for n in 1..=EXTRA_CUSTOMERS {
        customers.push(customer(
            &extra_customer(n),
            "周八",
            false,
            0,
            vec![item("202611", extra_customer_due_fen(n), 0)],
        ));
    }
    customers
}

fn account(acct_no: &str, name: &str, class: AcctClass, balance_fen: i64) -> AccountFixture {
    AccountFixture {
        acct_no: acct_no.into(),
        name: name.into(),
        class,
        status: AcctStatus::N,
        balance: Money::from_fen(balance_fen),
        open_branch: BRANCH.into(),
        id_type: None,
        id_no: None,
        interest_bearing: false,
    }
}

/// The core's accounts: three customers and the two internal accounts of the power collection.
pub fn core_accounts() -> Vec<AccountFixture> {
    vec![
        account(PAYER_A, "张三", AcctClass::P, PAYER_A_OPENING_FEN),
        account(PAYER_B, "李四", AcctClass::P, PAYER_B_OPENING_FEN),
        account(PAYER_C, "王五", AcctClass::P, PAYER_C_OPENING_FEN),
        account(SUSPENSE, "代收电费过渡户", AcctClass::I, 0),
        account(SETTLEMENT, "郴电国际结算户", AcctClass::I, 0),
    ]
}

/// What differs between tests.
#[derive(Clone, Debug)]
pub struct EnvOptions {
    pub start: NaiveDateTime,
    pub hub_bank_code: String,
    pub hub_mac_key_hex: String,
    pub partner_answer_timeout_ms: u64,
    pub core_answer_timeout_ms: u64,
    /// Backoff on the manual clock.
    pub backoff_initial_ms: i64,
    pub backoff_max_ms: i64,
}

impl Default for EnvOptions {
    fn default() -> Self {
        EnvOptions {
            start: at(business_date(), 10, 0, 0),
            hub_bank_code: BANK_CODE.into(),
            hub_mac_key_hex: MAC_KEY_HEX.into(),
            partner_answer_timeout_ms: 300,
            core_answer_timeout_ms: 300,
            backoff_initial_ms: 500,
            backoff_max_ms: 4_000,
        }
    }
}

/// A hub on a runtime of its own.
struct RunningHub {
    runtime: tokio::runtime::Runtime,
    hub: Option<Hub>,
    engine: Arc<Engine>,
    base_url: String,
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub core: CoreSimHandle,
    pub power: PowerSimHandle,
    pub http: reqwest::Client,
    /// The test's own pool on the hub's database.
    pub journal: Journal,
    pub options: EnvOptions,
    hub: Option<RunningHub>,
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(EnvOptions::default()).await
    }

    pub async fn start_with(options: EnvOptions) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = ManualClock::new(options.start);
        let shared: SharedClock = clock.clone();
        let core = core_sim::start(
            CoreSimConfig {
                accounts: core_accounts(),
                ..CoreSimConfig::default()
            },
            shared.clone(),
        )
        .await
        .expect("core simulator starts");
        let power = power_sim::start(
            PowerSimConfig {
                bank_code: BANK_CODE.into(),
                mac_key: codecs::mac::parse_key_hex(MAC_KEY_HEX).expect("spec key"),
                day_end: NaiveTime::from_hms_opt(23, 30, 0).unwrap_or(NaiveTime::MIN),
                customers: power_customers(),
            },
            shared,
        )
        .await
        .expect("power simulator starts");
        std::fs::create_dir_all(dir.path().join("files")).expect("files dir");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("http client");
        let url = database_url(&dir);
        let journal = Journal::open(&url).await.expect("journal opens");
        let mut env = Env {
            dir,
            clock,
            core,
            power,
            http,
            journal,
            options,
            hub: None,
        };
        env.start_hub().await;
        env
    }

    pub fn hub_config(&self) -> HubConfig {
        let o = &self.options;
        HubConfig {
            hub: HubSection {
                database_url: database_url(&self.dir),
                listen: "127.0.0.1:0".into(),
                file_dir: self.files_dir(),
                report_dir: self.dir.path().join("reports"),
                resolver_interval_ms: 20,
                tls: None,
                admin_listen: None,
                admin_tls: None,
            },
            engine: EngineConfig {
                node: 1,
                backoff_initial_ms: o.backoff_initial_ms,
                backoff_max_ms: o.backoff_max_ms,
                repeat_wait_ms: 5_000,
            },
            core: CoreConfig {
                host: "127.0.0.1".into(),
                port: self.core.addr.port(),
                connect_timeout_ms: 1_000,
                answer_timeout_ms: o.core_answer_timeout_ms,
                branch_id: BRANCH.into(),
                teller_id: "MBP001".into(),
            },
            chendian: vec![adapters::chendian::ChendianConfig {
                bank_code: o.hub_bank_code.clone(),
                host: "127.0.0.1".into(),
                port: self.power.addr.port(),
                mac_key_hex: o.hub_mac_key_hex.clone(),
                mac_key_next_hex: None,
                suspense_account: SUSPENSE.into(),
                settlement_account: SETTLEMENT.into(),
                connect_timeout_ms: 1_000,
                answer_timeout_ms: o.partner_answer_timeout_ms,
                file_dir: None,
            }],
            fixedlen: Vec::new(),
            medical: Vec::new(),
            keys: Default::default(),
            tobacco: None,
            withholding: Vec::new(),
            recon_schedule: None,
            cabletv: Vec::new(),
        }
    }

    pub fn files_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("files")
    }

    /// Starts a hub on the journal (resuming whatever the last one left unfinished).
    pub async fn start_hub(&mut self) {
        assert!(self.hub.is_none(), "a hub is already running");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("hub runtime");
        let config = self.hub_config();
        let clock: SharedClock = self.clock.clone();
        let handle = runtime.handle().clone();
        // block_on on a blocking thread: sqlx's futures are not provably Send to the compiler.
        let hub =
            tokio::task::spawn_blocking(move || handle.block_on(hub::app::start(&config, clock)))
                .await
                .expect("hub start task")
                .expect("hub starts");
        let engine = hub.engine.clone();
        let base_url = format!("http://{}", hub.addr);
        self.hub = Some(RunningHub {
            runtime,
            hub: Some(hub),
            engine,
            base_url,
        });
    }

    /// Starts a hub on the journal with a config of the test's own (e.g. a partner or core port
    /// pointing at a proxy or a fake server the test runs).
    pub async fn start_hub_with_config(&mut self, config: HubConfig) {
        assert!(self.hub.is_none(), "a hub is already running");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("hub runtime");
        let clock: SharedClock = self.clock.clone();
        let handle = runtime.handle().clone();
        let hub =
            tokio::task::spawn_blocking(move || handle.block_on(hub::app::start(&config, clock)))
                .await
                .expect("hub start task")
                .expect("hub starts");
        let engine = hub.engine.clone();
        let base_url = format!("http://{}", hub.addr);
        self.hub = Some(RunningHub {
            runtime,
            hub: Some(hub),
            engine,
            base_url,
        });
    }

    /// Kills the hub: every task it runs dies where it stands, nothing is flushed.
    pub fn kill_hub(&mut self) {
        if let Some(mut running) = self.hub.take() {
            drop(running.hub.take());
            running.runtime.shutdown_background();
        }
    }

    /// Stops the hub the orderly way.
    pub async fn stop_hub(&mut self) {
        if let Some(mut running) = self.hub.take() {
            if let Some(hub) = running.hub.take() {
                let handle = running.runtime.handle().clone();
                let _ = tokio::task::spawn_blocking(move || handle.block_on(hub.stop())).await;
            }
            running.runtime.shutdown_background();
        }
    }

    /// Restarts the hub with other options (e.g. the right MAC key after a wrong one).
    pub async fn restart_hub_with(&mut self, options: EnvOptions) {
        self.stop_hub().await;
        self.options = options;
        self.start_hub().await;
    }

    fn running(&self) -> &RunningHub {
        self.hub.as_ref().expect("the hub is running")
    }

    pub fn base_url(&self) -> String {
        self.running().base_url.clone()
    }

    /// Runs `work` with the hub's engine on the hub's own runtime (its pool and its tasks live
    /// there).
    pub async fn on_hub<F, Fut, T>(&self, work: F) -> T
    where
        F: FnOnce(Arc<Engine>) -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let running = self.running();
        let handle = running.runtime.handle().clone();
        let engine = running.engine.clone();
        tokio::task::spawn_blocking(move || handle.block_on(work(engine)))
            .await
            .expect("task on the hub runtime")
    }

    pub fn today(&self) -> String {
        yyyymmdd(codecs::clock::Clock::today(self.clock.as_ref()))
    }

    pub fn balance_fen(&self, acct_no: &str) -> i64 {
        self.core.balance(acct_no).expect("account exists").fen()
    }

    // ---- the channel API ----

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url()))
            .json(body)
            .send()
            .await
            .expect("hub answers");
        read_json(response).await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("hub answers");
        read_json(response).await
    }

    pub async fn query(&self, customer_no: &str, channel: &str) -> (StatusCode, Value) {
        let body = json!({
            "payee": PAYEE, "instance": self.options.hub_bank_code, "customer_no": customer_no, "channel": channel,
            "branch_no": BRANCH, "teller_no": "T00001",
        });
        self.post("/api/v1/bills/query", &body).await
    }

    /// A payment request dated today on the hub's clock.
    pub fn pay_body(&self, p: &PayArgs<'_>) -> Value {
        json!({
            "channel": p.channel, "channel_date": self.today(), "channel_serial": p.serial,
            "payee": PAYEE, "instance": self.options.hub_bank_code, "customer_no": p.customer_no,
            "payer_account": p.payer, "amount_fen": p.amount_fen, "total_due_fen": p.total_due_fen,
            "branch_no": BRANCH, "teller_no": "T00001",
        })
    }

    pub async fn pay(&self, p: &PayArgs<'_>) -> (StatusCode, Value) {
        self.post("/api/v1/payments", &self.pay_body(p)).await
    }

    /// Pays and returns the answer, insisting on HTTP 200 and a hub serial.
    pub async fn pay_ok(&self, p: &PayArgs<'_>) -> (Value, String) {
        let (status, answer) = self.pay(p).await;
        assert_eq!(status, StatusCode::OK, "pay answered {answer}");
        let serial = answer["hub_serial"]
            .as_str()
            .expect("answer has hub_serial")
            .to_string();
        (answer, serial)
    }

    /// 冲正 of a payment on the channel's request.
    pub async fn reverse(
        &self,
        channel: &str,
        channel_date: &str,
        serial: &str,
    ) -> (StatusCode, Value) {
        let path = format!("/api/v1/payments/{channel}/{channel_date}/{serial}/reversal");
        self.post(&path, &json!({"reason": "客户申请冲正"})).await
    }

    pub async fn status(
        &self,
        channel: &str,
        channel_date: &str,
        serial: &str,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!(
                "{}/api/v1/payments/{channel}/{channel_date}/{serial}",
                self.base_url()
            ))
            .send()
            .await
            .expect("hub answers");
        read_json(response).await
    }

    // ---- the journal ----

    pub async fn row(&self, hub_serial: &str) -> PaymentRow {
        self.journal
            .get(hub_serial)
            .await
            .expect("journal read")
            .expect("payment journaled")
    }

    pub async fn payment_count(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM payments")
            .fetch_one(self.journal.pool())
            .await
            .expect("count payments")
    }

    pub async fn event_notes(&self, hub_serial: &str) -> Vec<String> {
        self.journal
            .events(hub_serial)
            .await
            .expect("events")
            .into_iter()
            .map(|(_, _, note)| note)
            .collect()
    }

    /// Waits (bounded) until `done` holds for the payment, moving the clock on by `clock_step`
    /// at every look so that backoff delays elapse.
    pub async fn wait_until(
        &self,
        hub_serial: &str,
        clock_step: chrono::Duration,
        what: &str,
        done: impl Fn(&PaymentRow) -> bool,
    ) -> PaymentRow {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            if let Some(row) = self.journal.get(hub_serial).await.expect("journal read") {
                if done(&row) {
                    return row;
                }
                if Instant::now() >= deadline {
                    let notes = self.event_notes(hub_serial).await;
                    panic!(
                        "{hub_serial} did not reach {what} within {WAIT_LIMIT:?}: state {:?}, next {:?}, last_error {:?}, events {notes:?}",
                        row.state, row.next_action, row.last_error
                    );
                }
            } else if Instant::now() >= deadline {
                panic!("{hub_serial} was never journaled");
            }
            self.clock.advance(clock_step);
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until the payment is in a final state with nothing pending; the clock moves 1 s a look.
    pub async fn wait_final(&self, hub_serial: &str) -> PaymentRow {
        self.wait_until(
            hub_serial,
            chrono::Duration::seconds(1),
            "a final state",
            |row| row.state.is_final() && row.next_action == NextAction::None,
        )
        .await
    }

    /// Waits for one given final state.
    pub async fn wait_state(&self, hub_serial: &str, state: PaymentState) -> PaymentRow {
        let row = self.wait_final(hub_serial).await;
        assert_eq!(
            row.state,
            state,
            "{hub_serial} ended {:?}; events {:?}",
            row.state,
            self.event_notes(hub_serial).await
        );
        row
    }

    /// The power simulator's record of a payment, by the hub serial it carried as BankSerial.
    pub fn power_payment(&self, hub_serial: &str) -> Option<PowerPayment> {
        self.power
            .payments()
            .into_iter()
            .find(|p| p.bank_serial == hub_serial)
    }

    /// The sum of all core balances, which a double-entry ledger never changes.
    pub fn ledger_total_fen(&self) -> i64 {
        self.core.total_balance().fen()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_hub();
        self.core.shutdown();
        self.power.shutdown();
    }
}

/// One payment request's variable part.
#[derive(Clone, Debug)]
pub struct PayArgs<'a> {
    pub channel: &'a str,
    pub serial: &'a str,
    pub customer_no: &'a str,
    pub payer: &'a str,
    pub amount_fen: i64,
    pub total_due_fen: i64,
}

impl<'a> PayArgs<'a> {
    /// Mobile banking paying exactly what is due.
    pub fn mobile(
        serial: &'a str,
        customer_no: &'a str,
        payer: &'a str,
        due_fen: i64,
    ) -> PayArgs<'a> {
        PayArgs {
            channel: "02",
            serial,
            customer_no,
            payer,
            amount_fen: due_fen,
            total_due_fen: due_fen,
        }
    }

    /// The counter paying exactly what is due.
    pub fn counter(
        serial: &'a str,
        customer_no: &'a str,
        payer: &'a str,
        due_fen: i64,
    ) -> PayArgs<'a> {
        PayArgs {
            channel: "01",
            serial,
            customer_no,
            payer,
            amount_fen: due_fen,
            total_due_fen: due_fen,
        }
    }
}

fn database_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("hub.db").display())
}

async fn read_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

/// True when the text holds at least one CJK ideograph (a Chinese message).
pub fn is_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// Asserts the payer's and the suspense account's balances, and that the core's double-entry
/// ledger still sums to its opening total.
pub fn assert_money(env: &Env, payer: &str, payer_fen: i64, suspense_fen: i64) {
    assert_eq!(env.balance_fen(payer), payer_fen, "payer {payer} balance");
    assert_eq!(env.balance_fen(SUSPENSE), suspense_fen, "suspense balance");
    let opening = PAYER_A_OPENING_FEN + PAYER_B_OPENING_FEN + PAYER_C_OPENING_FEN;
    assert_eq!(
        env.ledger_total_fen(),
        opening,
        "the core ledger must stay balanced"
    );
}

/// Sum of a power customer's arrears (amount + penalty) as the simulator holds them now.
pub fn power_due_fen(env: &Env, customer_no: &str) -> i64 {
    env.power
        .customer(customer_no)
        .expect("power customer")
        .arrears
        .iter()
        .map(|i| i.amount.fen() + i.penalty.fen())
        .sum()
}

impl Env {
    /// Like [`Env::start_with`], with `extra_accounts` added to the core's fixture (e.g. the
    /// internal accounts of further partner instances) and no hub running yet: the caller starts
    /// one with [`Env::start_hub_with_config`] (typically [`Env::hub_config`] plus partners).
    pub async fn start_without_hub(
        options: EnvOptions,
        extra_accounts: Vec<AccountFixture>,
    ) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = ManualClock::new(options.start);
        let shared: SharedClock = clock.clone();
        let mut accounts = core_accounts();
        accounts.extend(extra_accounts);
        let core = core_sim::start(
            CoreSimConfig {
                accounts,
                ..CoreSimConfig::default()
            },
            shared.clone(),
        )
        .await
        .expect("core simulator starts");
        let power = power_sim::start(
            PowerSimConfig {
                bank_code: BANK_CODE.into(),
                mac_key: codecs::mac::parse_key_hex(MAC_KEY_HEX).expect("spec key"),
                day_end: NaiveTime::from_hms_opt(23, 30, 0).unwrap_or(NaiveTime::MIN),
                customers: power_customers(),
            },
            shared,
        )
        .await
        .expect("power simulator starts");
        std::fs::create_dir_all(dir.path().join("files")).expect("files dir");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("http client");
        let journal = Journal::open(&database_url(&dir))
            .await
            .expect("journal opens");
        Env {
            dir,
            clock,
            core,
            power,
            http,
            journal,
            options,
            hub: None,
        }
    }

    /// An internal (class I) account of zero balance, for a partner instance's suspense or
    /// settlement account.
    pub fn internal_account(acct_no: &str, name: &str) -> AccountFixture {
        account(acct_no, name, AcctClass::I, 0)
    }
}
