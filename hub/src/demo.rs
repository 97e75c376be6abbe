//! `hub demo`: one business day of bill payments against the core and the partners' simulators
//! (郴电国际 power, and the profile-driven fixed-length partners of `deploy/demo/partners.toml`:
//! four county water companies and a partner onboarded by configuration alone; 攸县 cable TV on
//! its long link; 城乡居民医保 `medins-xinhuang`, spec 03; the 岳阳 tobacco bureau), on a compressed
//! clock shared by the hub and the simulators, through the core's 23:00 date switch and the
//! partners' day-ends; then the daily files, T+1 reconciliation, the reports, settlement and
//! `summary.json`.
//!
//! Every fault the day injects is recorded with the payment it hits, so that each reconciliation
//! difference is either explained by a recorded fault or counted as `unexplained`.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime};
use codecs::clock::{yyyymmdd, Clock, ManualClock, SharedClock, SystemClock};
use codecs::Money;
use fixtures::core_sim::{
    self, AccountFixture, AcctClass, AcctStatus, CoreFault, CoreSimConfig, FaultRule,
};
use fixtures::sims::{self, BillSim, SimFault};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;

use crate::config::{HubConfig, HubSection};
use crate::core_client::CoreConfig;
use crate::engine::{ChannelAnswer, EngineConfig};

const BANK_CODE: &str = "NSH43102";
const MAC_KEY_HEX: &str = "0123456789abcdeffedcba9876543210";
const SUSPENSE: &str = "9003100000000001";
const SETTLEMENT: &str = "9003200000000001";
/// Demo timeouts: short, so that a day with dozens of timeouts still runs in a minute.
const ANSWER_TIMEOUT_MS: u64 = 600;
const LATE_BY: Duration = Duration::from_millis(1_500);
/// Payments in flight at once.
const CONCURRENCY: usize = 16;
const CABLE_BANK_CODE: &str = "YX0001";
/// The spec's worked-example key (00 01 .. 1F).
const CABLE_KEY: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
const CABLE_SUSPENSE: &str = "9004100000000001";
const CABLE_SETTLEMENT: &str = "9004200000000001";
/// Cable TV's weight in the day's traffic.
const CABLE_SHARE: u32 = 15;

fn cable_config(port: u16) -> adapters::cabletv::CableTvConfig {
    adapters::cabletv::CableTvConfig {
        bank_code: CABLE_BANK_CODE.into(),
        host: "127.0.0.1".into(),
        port,
        mac_key_hex: hex::encode_upper(CABLE_KEY),
        suspense_account: CABLE_SUSPENSE.into(),
        settlement_account: CABLE_SETTLEMENT.into(),
        connect_timeout_ms: 1_000,
        money_timeout_ms: ANSWER_TIMEOUT_MS,
        other_timeout_ms: ANSWER_TIMEOUT_MS,
        heartbeat_idle_ms: 30_000,
        receive_idle_ms: 90_000,
        backoff_ms: vec![100, 200, 400, 800],
    }
}

/// 城乡居民医保 (spec 03): its instance, accounts and share of the day's traffic.
const MEDICAL_INSTANCE: &str = "medins-xinhuang";
const MEDICAL_BANK_CODE: &str = "HHXH0001";
const MEDICAL_SUSPENSE: &str = "9003100000000301";
const MEDICAL_FUND: &str = "9003200000000301";
const MEDICAL_SHARE: u32 = 8;
/// The insurer refuses a reqTime more than 300 s off its clock; on the demo's clock a simulated
/// minute passes every 20 ms, so a request may be hours old in business time when it arrives.
const MEDICAL_DEMO_WINDOW_S: i64 = 6 * 3600;

/// The fixed-length partners of the day (configuration, not code).
const DEMO_PARTNERS_TOML: &str = include_str!("../../deploy/demo/partners.toml");

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoPartners {
    #[serde(default)]
    fixedlen: Vec<DemoFixedLen>,
}

/// One fixed-length instance of the demo: its simulator and the hub's configuration of it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoFixedLen {
    simulator: String,
    share: u32,
    instance: String,
    #[serde(default)]
    profile_builtin: Option<String>,
    #[serde(default)]
    profile_file: Option<PathBuf>,
    company_code: String,
    mac_key_hex: String,
    suspense_account: String,
    settlement_account: String,
    /// Customers who signed a withholding agreement the day before (county water): the company
    /// drops their due bills as the day's batch file, which `hub serve`'s poll runs.
    #[serde(default)]
    withhold_customers: usize,
}

impl DemoFixedLen {
    fn adapter_config(&self, port: u16) -> Result<adapters::fixedlen::FixedLenConfig, DemoError> {
        // A profile file is found from the working directory, or else from the source tree the
        // binary was built from (so `hub demo` runs from anywhere on a build machine).
        let profile_file = self.profile_file.as_ref().map(|path| {
            if path.is_relative() && !path.exists() {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join(path)
            } else {
                path.clone()
            }
        });
        Ok(adapters::fixedlen::FixedLenConfig {
            instance: self.instance.clone(),
            profile_builtin: self.profile_builtin.clone(),
            profile_file,
            company_code: self.company_code.clone(),
            host: "127.0.0.1".into(),
            port,
            mac_key_hex: self.mac_key_hex.clone(),
            suspense_account: self.suspense_account.clone(),
            settlement_account: self.settlement_account.clone(),
            connect_timeout_ms: 1_000,
            answer_timeout_ms: Some(ANSWER_TIMEOUT_MS),
            answer_timeouts_ms: Default::default(),
            file_dir: None,
        })
    }
}

pub struct DemoOptions {
    pub out: PathBuf,
    pub payments: usize,
    pub date: Option<NaiveDate>,
    pub seed: u64,
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("hub start: {0}")]
    Start(#[from] crate::app::StartError),
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
    #[error("reconciliation: {0}")]
    Recon(#[from] crate::recon_job::ReconError),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Setup(String),
}

/// The trouble a payment of the day is made to meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    Normal,
    Prepay,
    Duplicate,
    InsufficientBalance,
    FrozenAccount,
    UnknownCustomer,
    StaleArrears,
    PartnerTimeout,
    PartnerBusy,
    PartnerBadMac,
    PartnerCloseMidFrame,
    CoreTimeout,
    CoreSystemError,
    CounterReversal,
    OmittedFromPartnerFile,
    /// The customer cancels the payment the same day (撤销), where the partner has a cancel.
    SameDayCancel,
}

/// 城乡居民医保 (spec 03): its only undo is the counter's 撤销 (no counter 冲正), and it takes no
/// prepayment.
const MEDICAL_UNSUPPORTED: &[Scenario] = &[Scenario::CounterReversal, Scenario::Prepay];
/// An unknown 2001 is resolved by asking 2003, so a payment the insurer did process stays paid;
/// the 1001 re-check before the debit refuses an unknown or changed one with nothing debited.
const MEDICAL_ENDS: &[(Scenario, &str)] = &[
    (Scenario::PartnerTimeout, "SUCCEEDED"),
    (Scenario::PartnerBadMac, "SUCCEEDED"),
    (Scenario::PartnerCloseMidFrame, "SUCCEEDED"),
    (Scenario::UnknownCustomer, "CORE_FAILED"),
    (Scenario::StaleArrears, "CORE_FAILED"),
];

impl Scenario {
    /// The final hub state the scenario must end in under 01's rules (a partner whose spec ends
    /// it otherwise says so in its [`Target::ends`]).
    fn expected_state(self) -> &'static str {
        match self {
            Scenario::Normal
            | Scenario::Prepay
            | Scenario::Duplicate
            | Scenario::OmittedFromPartnerFile => "SUCCEEDED",
            Scenario::InsufficientBalance | Scenario::FrozenAccount | Scenario::CoreSystemError => {
                "CORE_FAILED"
            }
            Scenario::SameDayCancel => "CANCELLED",
            _ => "REVERSED",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PartnerSummary {
    pub payee: String,
    pub instance: String,
    pub business_date: String,
    pub payments_succeeded: i64,
    pub payments_reversed: i64,
    pub payments_failed: i64,
    pub payments_in_doubt: i64,
    /// Cancelled the same day (撤销), money back.
    pub payments_cancelled: i64,
    pub matched: usize,
    pub awaiting_core: usize,
    pub differences: BTreeMap<String, usize>,
    pub explained: usize,
    pub unexplained: usize,
    pub settlement_fen: i64,
    pub settlement_state: String,
    /// Records of this date posted at core after its 23:00 switch, matched by the next day's run.
    /// Withholding agreements signed from a channel the day before (county water).
    pub agreements_signed: usize,
    /// Lines of the day's batch withholding debited (DKR result 000).
    pub withheld: i64,
    pub next_day_carried_matched: usize,
    pub next_day_settlement_fen: i64,
    pub report_html: String,
    pub report_csv: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub business_date: String,
    pub payments_driven: usize,
    pub duplicates_sent: usize,
    pub traffic_seconds: f64,
    pub payments_per_second: f64,
    pub scenarios: BTreeMap<String, usize>,
    /// Payments whose final state differs from what their scenario must end in.
    pub scenario_mismatches: Vec<String>,
    /// Core double-entry check: the sum of all balances is unchanged by the day.
    pub ledger_balanced: bool,
    pub partners: Vec<PartnerSummary>,
}

impl DemoSummary {
    pub fn unexplained_total(&self) -> usize {
        self.partners.iter().map(|p| p.unexplained).sum::<usize>()
            + self.scenario_mismatches.len()
            + usize::from(!self.ledger_balanced)
    }
}

struct Planned {
    /// Index into the day's partners (0 is 郴电国际 power).
    target: usize,
    scenario: Scenario,
    channel: &'static str,
    customer: String,
    payer: String,
    /// Arrears of the customer at plan time (for prepayment planning).
    extra_fen: i64,
    /// The state the payment must end in (its scenario under its partner's rules).
    expected: &'static str,
}

/// A resident ID number (GB 11643) of a made-up customer: region 431227, born 1990-03-15,
/// sequence `n`, with its check digit.
fn resident_id(n: usize) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let body = format!("43122719900315{:03}", n % 1000);
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = CHECK[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

fn at(date: NaiveDate, h: u32, m: u32, s: u32) -> NaiveDateTime {
    date.and_time(NaiveTime::from_hms_opt(h, m, s).unwrap_or(NaiveTime::MIN))
}

fn customer_accounts(rng: &mut StdRng, count: usize) -> Vec<AccountFixture> {
    const SURNAMES: &[&str] = &[
        "李", "王", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴", "谭", "曹", "邓",
    ];
    const GIVEN: &[&str] = &[
        "伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "湘", "郴",
    ];
    (0..count)
        .map(|i| AccountFixture {
            acct_no: format!("62309010{:011}", i + 1),
            name: format!(
                "{}{}",
                SURNAMES[rng.gen_range(0..SURNAMES.len())],
                GIVEN[rng.gen_range(0..GIVEN.len())]
            ),
            class: AcctClass::P,
            status: AcctStatus::N,
            balance: Money::from_fen(rng.gen_range(5_000_000..20_000_000)),
            open_branch: "000101".into(),
            id_type: None,
            id_no: None,
            interest_bearing: true,
        })
        .collect()
}

fn internal(acct_no: &str, name: &str) -> AccountFixture {
    AccountFixture {
        acct_no: acct_no.into(),
        name: name.into(),
        class: AcctClass::I,
        status: AcctStatus::N,
        balance: Money::ZERO,
        open_branch: "000101".into(),
        id_type: None,
        id_no: None,
        interest_bearing: false,
    }
}

/// Plans the day: which payment meets which trouble, with dedicated customers and accounts for
/// every fault so that a fault rule can only hit the payment it was planned for.
fn plan(
    rng: &mut StdRng,
    count: usize,
    targets: &[Target],
    accounts: &mut [AccountFixture],
) -> Vec<Planned> {
    let pools: Vec<Vec<String>> = targets.iter().map(|t| t.sim.payable_customers()).collect();
    let mut next_customer = vec![0usize; targets.len()];
    let total_share: u32 = targets.iter().map(|t| t.share).sum::<u32>().max(1);
    let mut plans = Vec::with_capacity(count);
    // Fault scenarios take accounts from the end of the list, ordinary ones from the front.
    let mut spare_account = accounts.len();
    let ordinary_accounts = accounts.len() / 2;
    let channels = ["01", "02", "02", "02", "03", "04"];
    for i in 0..count {
        let roll = rng.gen_range(0..1000);
        // Every day has a few lines the partner's file leaves out, whatever the seed, so that
        // reconciliation always has differences to find (and to explain).
        let roll = if i % 500 == 250 { 173 } else { roll };
        let scenario = match roll {
            0..=24 => Scenario::InsufficientBalance,
            25..=34 => Scenario::FrozenAccount,
            35..=54 => Scenario::UnknownCustomer,
            55..=74 => Scenario::StaleArrears,
            75..=104 => Scenario::Duplicate,
            105..=116 => Scenario::PartnerTimeout,
            117..=122 => Scenario::PartnerBusy,
            123..=128 => Scenario::PartnerBadMac,
            129..=134 => Scenario::PartnerCloseMidFrame,
            135..=146 => Scenario::CoreTimeout,
            147..=152 => Scenario::CoreSystemError,
            153..=172 => Scenario::CounterReversal,
            173..=174 => Scenario::OmittedFromPartnerFile,
            175..=224 => Scenario::Prepay,
            225..=244 => Scenario::SameDayCancel,
            _ => Scenario::Normal,
        };
        let target = {
            let mut pick = rng.gen_range(0..total_share);
            targets
                .iter()
                .position(|t| {
                    if pick < t.share {
                        true
                    } else {
                        pick -= t.share;
                        false
                    }
                })
                .unwrap_or(0)
        };
        // A fixed-length partner's pay trade takes exactly the total shown, and a partner without
        // prepayment takes no more: no overpayment.
        let scenario = if (scenario == Scenario::Prepay
            && (targets[target].fixed || !targets[target].prepay))
            || (scenario == Scenario::SameDayCancel && !targets[target].cancel)
            || targets[target].unsupported.contains(&scenario)
        {
            Scenario::Normal
        } else {
            scenario
        };
        let needs_own_account = matches!(
            scenario,
            Scenario::InsufficientBalance
                | Scenario::FrozenAccount
                | Scenario::CoreTimeout
                | Scenario::CoreSystemError
        );
        let payer = if needs_own_account && spare_account > ordinary_accounts {
            spare_account -= 1;
            let account = &mut accounts[spare_account];
            match scenario {
                Scenario::InsufficientBalance => {
                    account.balance = Money::from_fen(rng.gen_range(0..500))
                }
                Scenario::FrozenAccount => {
                    account.status = if rng.gen_bool(0.5) {
                        AcctStatus::F
                    } else {
                        AcctStatus::S
                    }
                }
                _ => {}
            }
            account.acct_no.clone()
        } else {
            // Round robin: no ordinary account pays so often that its balance runs out.
            accounts[i % ordinary_accounts.max(1)].acct_no.clone()
        };
        let customer = if scenario == Scenario::UnknownCustomer {
            targets[target].sim.unknown_customer(i)
        } else {
            // Each customer is used once, so a query and its payment are never interleaved with
            // another payment of the same customer (that would be a stale-arrears case of its own).
            let pool = &pools[target];
            let c = pool
                .get(next_customer[target] % pool.len().max(1))
                .cloned()
                .unwrap_or_default();
            next_customer[target] += 1;
            c
        };
        let channel = if scenario == Scenario::CounterReversal {
            "01"
        } else {
            channels[rng.gen_range(0..channels.len())]
        };
        let extra_fen = if scenario == Scenario::Prepay {
            rng.gen_range(1..20_000)
        } else {
            0
        };
        plans.push(Planned {
            target,
            scenario,
            channel,
            customer,
            payer,
            extra_fen,
            expected: targets[target].expected_state(scenario),
        });
    }
    plans
}

/// One partner instance of the day: what the channels call it, and its simulator.
struct Target {
    payee: String,
    instance: String,
    sim: Arc<dyn BillSim>,
    /// Weight in the day's traffic.
    share: u32,
    /// A profile-driven fixed-length partner (pay takes exactly the total due).
    fixed: bool,
    /// The partner takes payments with nothing due (pure prepayments).
    prepay: bool,
    /// Scenarios this partner's protocol cannot meet (no such fault or trade): planned as Normal.
    unsupported: &'static [Scenario],
    /// Where this partner's spec ends a scenario other than 01 does.
    ends: &'static [(Scenario, &'static str)],
    /// The partner has a same-day cancel (撤销) a channel may ask for.
    cancel: bool,
}

impl Target {
    fn expected_state(&self, scenario: Scenario) -> &'static str {
        self.ends
            .iter()
            .find(|(s, _)| *s == scenario)
            .map(|(_, state)| *state)
            .unwrap_or_else(|| scenario.expected_state())
    }
}

/// Tobacco (spec 09): a payment never calls the bureau, so partner faults and stale arrears do not
/// exist, and a paid order is never reversed (not even at the counter).
const TOBACCO_UNSUPPORTED: &[Scenario] = &[
    Scenario::StaleArrears,
    Scenario::PartnerTimeout,
    Scenario::PartnerBusy,
    Scenario::PartnerBadMac,
    Scenario::PartnerCloseMidFrame,
    Scenario::CounterReversal,
];
/// Unknown orders are refused before the debit; a debit the core posted late is written off
/// (8004 S → paid).
const TOBACCO_ENDS: &[(Scenario, &str)] = &[
    (Scenario::UnknownCustomer, "CORE_FAILED"),
    (Scenario::CoreTimeout, "SUCCEEDED"),
];
const TOBACCO_BUREAU: &str = "430600";
const TOBACCO_BANK: &str = "YYNS0001";
/// The bank's demo key (the GM/T 0003 example private key); the bureau's is the spec's.
const TOBACCO_BANK_KEY_HEX: &str =
    "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8";
const TOBACCO_SUSPENSE: &str = "9003143060000001";
const TOBACCO_SETTLEMENT: &str = "9003243060000001";
/// The bureau's weight in the day's traffic.
const TOBACCO_SHARE: u32 = 8;

struct Driver {
    http: reqwest::Client,
    base: String,
    date: String,
    targets: Vec<Target>,
    core: core_sim::CoreSimHandle,
}

impl Driver {
    fn target(&self, p: &Planned) -> &Target {
        // Plans only name targets of the day; index 0 always exists.
        self.targets.get(p.target).unwrap_or(&self.targets[0])
    }

    async fn query(&self, p: &Planned, serial: usize) -> Result<serde_json::Value, DemoError> {
        let body = json!({
            "payee": self.target(p).payee, "instance": self.target(p).instance, "customer_no": p.customer, "channel": p.channel,
            "branch_no": "000101", "teller_no": format!("T{:05}", serial % 100_000),
        });
        Ok(self
            .http
            .post(format!("{}/api/v1/bills/query", self.base))
            .json(&body)
            .send()
            .await?
            .json()
            .await?)
    }

    async fn pay(
        &self,
        p: &Planned,
        serial: &str,
        amount_fen: i64,
        total_due_fen: i64,
    ) -> Result<ChannelAnswer, DemoError> {
        let body = json!({
            "channel": p.channel, "channel_date": self.date, "channel_serial": serial,
            "payee": self.target(p).payee, "instance": self.target(p).instance, "customer_no": p.customer, "payer_account": p.payer,
            "amount_fen": amount_fen, "total_due_fen": total_due_fen, "branch_no": "000101", "teller_no": "MB0001",
            "fields": self.target(p).sim.pay_fields(&p.customer),
        });
        let response = self
            .http
            .post(format!("{}/api/v1/payments", self.base))
            .json(&body)
            .send()
            .await?;
        Ok(response.json().await?)
    }

    /// One payment through its scenario. Returns (hub serial, duplicates sent).
    async fn run(&self, index: usize, p: &Planned) -> Result<(Option<String>, usize), DemoError> {
        let channel_serial = format!("{}{}{:08}", p.channel, self.date, index);
        let (mut amount_fen, mut total_due_fen) = (0i64, 0i64);
        if p.scenario != Scenario::UnknownCustomer {
            let bill = self.query(p, index).await?;
            total_due_fen = bill["total_due_fen"].as_i64().unwrap_or(0);
            amount_fen = total_due_fen;
        }
        if amount_fen == 0 {
            // Nothing due (or never queried): a pure prepayment, or, where the partner takes
            // none, the channel sends the total it believes is due.
            amount_fen = 5_000;
            if !self.target(p).prepay {
                total_due_fen = amount_fen;
            }
        }
        amount_fen += p.extra_fen;
        match p.scenario {
            Scenario::StaleArrears => self.target(p).sim.make_stale(&p.customer),
            Scenario::PartnerTimeout => self.arm(p, SimFault::AnswerLate(LATE_BY)),
            Scenario::PartnerBusy => self.arm(p, SimFault::BusyAfterProcessing),
            Scenario::PartnerBadMac => self.arm(p, SimFault::BadMac),
            Scenario::PartnerCloseMidFrame => self.arm(p, SimFault::CloseMidFrame),
            Scenario::CoreTimeout => self.core.arm(FaultRule {
                tran_code: "8002".into(),
                debit_acct: Some(p.payer.clone()),
                fault: CoreFault::AnswerLate(LATE_BY),
                times: 1,
            }),
            Scenario::CoreSystemError => self.core.arm(FaultRule {
                tran_code: "8002".into(),
                debit_acct: Some(p.payer.clone()),
                fault: CoreFault::SystemError,
                times: 1,
            }),
            _ => {}
        }
        let answer = self
            .pay(p, &channel_serial, amount_fen, total_due_fen)
            .await?;
        let mut duplicates = 0;
        if p.scenario == Scenario::Duplicate {
            let again = self
                .pay(p, &channel_serial, amount_fen, total_due_fen)
                .await?;
            duplicates += 1;
            if again != answer {
                return Err(DemoError::Setup(format!(
                    "duplicate {channel_serial} got a different answer"
                )));
            }
        }
        if p.scenario == Scenario::CounterReversal && answer.status == "SUCCEEDED" {
            let url = format!(
                "{}/api/v1/payments/{}/{}/{}/reversal",
                self.base, p.channel, self.date, channel_serial
            );
            let _: serde_json::Value = self
                .http
                .post(url)
                .json(&json!({"reason": "客户申请冲正"}))
                .send()
                .await?
                .json()
                .await?;
        }
        if p.scenario == Scenario::SameDayCancel && answer.status == "SUCCEEDED" {
            let url = format!(
                "{}/api/v1/payments/{}/{}/{}/cancel",
                self.base, p.channel, self.date, channel_serial
            );
            let _: serde_json::Value = self
                .http
                .post(url)
                .json(&json!({"reason": "客户申请撤销", "authorized_by": ""}))
                .send()
                .await?
                .json()
                .await?;
        }
        if p.scenario == Scenario::OmittedFromPartnerFile && answer.status == "SUCCEEDED" {
            if let Some(date) = codecs::clock::parse_yyyymmdd(&self.date) {
                self.target(p)
                    .sim
                    .omit_from_daily_file(date, &answer.hub_serial);
            }
        }
        Ok((Some(answer.hub_serial), duplicates))
    }

    fn arm(&self, p: &Planned, fault: SimFault) {
        self.target(p).sim.arm_on_pay(&p.customer, fault);
    }
}

/// Waits (bounded) until a cable TV query goes through: the link is signed in; then a moment
/// for the 6001 download that follows the sign-in.
async fn wait_for_cable(driver: &Driver) -> Result<(), DemoError> {
    let Some(target) = driver
        .targets
        .iter()
        .find(|t| t.payee == adapters::cabletv::PAYEE)
    else {
        return Ok(());
    };
    let customer = target.sim.payable_customers().into_iter().next();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = json!({
            "payee": target.payee, "instance": target.instance, "customer_no": customer,
            "channel": "02", "branch_no": "000101", "teller_no": "T00000",
        });
        let answer: serde_json::Value = driver
            .http
            .post(format!("{}/api/v1/bills/query", driver.base))
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        if answer["status"] == "OK" {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(DemoError::Setup(format!(
                "cable TV link not signed in: {answer}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the demo and writes `summary.json`.
pub async fn run(options: DemoOptions) -> Result<DemoSummary, DemoError> {
    let date = options.date.unwrap_or_else(|| SystemClock.today());
    let out = options.out.clone();
    let files = out.join("files");
    let reports = out.join("reports");
    for stale in ["hub.db", "hub.db-wal", "hub.db-shm"] {
        let _ = std::fs::remove_file(out.join(stale));
    }
    let sftp = out.join("sftp");
    let _ = std::fs::remove_dir_all(&files);
    let _ = std::fs::remove_dir_all(&sftp);
    std::fs::create_dir_all(&files)?;
    std::fs::create_dir_all(&reports)?;

    // The day before, 16:00: customers sign withholding agreements (effective the next day).
    let eve = date
        .pred_opt()
        .ok_or_else(|| DemoError::Setup("date underflow".into()))?;
    let manual = ManualClock::new(at(eve, 16, 0, 0));
    let clock: SharedClock = manual.clone();
    let mut rng = StdRng::seed_from_u64(options.seed);

    // The partners: 郴电国际 power, then the fixed-length instances of the demo's configuration.
    let demo_partners: DemoPartners = toml::from_str(DEMO_PARTNERS_TOML)
        .map_err(|e| DemoError::Setup(format!("deploy/demo/partners.toml: {e}")))?;
    let mac_key =
        codecs::mac::parse_key_hex(MAC_KEY_HEX).map_err(|e| DemoError::Setup(e.to_string()))?;
    let customers_per_partner = options.payments + 200;
    let power = sims::start(
        "power",
        BANK_CODE,
        mac_key,
        options.seed,
        customers_per_partner,
        clock.clone(),
    )
    .await
    .map_err(|e| DemoError::Setup(e.to_string()))?;
    let fixed_share: u32 =
        demo_partners.fixedlen.iter().map(|f| f.share).sum::<u32>() + TOBACCO_SHARE;
    let mut targets = vec![Target {
        payee: "CDGJ".into(),
        instance: BANK_CODE.into(),
        sim: Arc::from(power),
        share: 100u32
            .saturating_sub(fixed_share + CABLE_SHARE + MEDICAL_SHARE)
            .max(1),
        fixed: false,
        prepay: true,
        unsupported: &[],
        ends: &[],
        cancel: false,
    }];
    let mut fixed_configs = Vec::new();
    for (n, f) in demo_partners.fixedlen.iter().enumerate() {
        let key = codecs::mac::parse_key_hex(&f.mac_key_hex)
            .map_err(|e| DemoError::Setup(format!("{}: {e}", f.instance)))?;
        let sim = sims::start(
            &f.simulator,
            &f.company_code,
            key,
            options.seed.wrapping_add(n as u64 + 1),
            customers_per_partner,
            clock.clone(),
        )
        .await
        .map_err(|e| DemoError::Setup(format!("{}: {e}", f.instance)))?;
        let config = f.adapter_config(sim.addr().port())?;
        let adapter = adapters::fixedlen::FixedLenAdapter::from_config(config.clone())
            .map_err(|e| DemoError::Setup(format!("{}: {e}", f.instance)))?;
        targets.push(Target {
            payee: adapters::spi::BillPartner::payee(&adapter).to_string(),
            instance: f.instance.clone(),
            sim: Arc::from(sim),
            share: f.share,
            fixed: true,
            prepay: adapters::spi::BillPartner::accepts_prepayment(&adapter),
            unsupported: &[],
            ends: &[],
            cancel: false,
        });
        fixed_configs.push(config);
    }
    // 攸县 cable TV on its long link: pays name a package and months, which the channel takes
    // from the arrears it was shown.
    let cable = fixtures::cabletv_sim::start(
        fixtures::cabletv_sim::demo_config(CABLE_KEY.to_vec(), date, customers_per_partner),
        clock.clone(),
    )
    .await?;
    let cable_port = cable.addr.port();
    targets.push(Target {
        payee: adapters::cabletv::PAYEE.into(),
        instance: CABLE_BANK_CODE.into(),
        sim: Arc::new(fixtures::cabletv_sim::CableBillSim::new(cable)),
        share: CABLE_SHARE,
        fixed: false,
        prepay: false,
        // A pay is whole months of a package (no overpayment, no amount for an unknown
        // subscriber), a dropped link would hit every payment in flight on it, and the undo a
        // channel asks for is the 撤销 (3001), not a counter 冲正.
        unsupported: &[
            Scenario::Prepay,
            Scenario::UnknownCustomer,
            Scenario::PartnerCloseMidFrame,
            Scenario::CounterReversal,
        ],
        // A fresh 2001 before the debit refuses a stale (or unknown) one with nothing debited.
        ends: &[
            (Scenario::StaleArrears, "CORE_FAILED"),
            (Scenario::UnknownCustomer, "CORE_FAILED"),
        ],
        cancel: true,
    });

    let (medical_sim, medical_config) = start_medical(date, customers_per_partner, &clock).await?;
    targets.push(Target {
        payee: adapters::medical::PAYEE.into(),
        instance: MEDICAL_INSTANCE.into(),
        sim: medical_sim,
        share: MEDICAL_SHARE,
        fixed: false,
        prepay: false,
        unsupported: MEDICAL_UNSUPPORTED,
        ends: MEDICAL_ENDS,
        cancel: false,
    });

    // 岳阳烟草: the bureau pushes its orders to the hub's listener, so the hub's port is fixed
    // before either starts.
    let hub_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| DemoError::Setup(format!("hub port: {e}")))?
        .port();
    let bank_key = codecs::crypto::sm2::PrivateKey::from_hex(TOBACCO_BANK_KEY_HEX)
        .map_err(|e| DemoError::Setup(format!("tobacco bank key: {e}")))?;
    let bureau_key =
        codecs::crypto::sm2::PrivateKey::from_hex(fixtures::tobacco_sim::BUREAU_TEST_PRIVATE_HEX)
            .map_err(|e| DemoError::Setup(format!("tobacco bureau key: {e}")))?;
    let bureau_public_hex = hex::encode(bureau_key.public_key().to_uncompressed());
    let bureau_sim = fixtures::tobacco_sim::TobaccoSim::start(
        fixtures::tobacco_sim::TobaccoSimConfig {
            bureau_code: TOBACCO_BUREAU.into(),
            bank_code: TOBACCO_BANK.into(),
            bureau_key,
            bank_public: bank_key.public_key(),
            hub_base_url: format!("http://127.0.0.1:{hub_port}"),
        },
        clock.clone(),
    )
    .await?;
    let bureau = Arc::new(fixtures::tobacco_sim::DemoBureau::new(
        bureau_sim.clone(),
        TOBACCO_BANK,
        date,
        customers_per_partner,
        options.seed.wrapping_add(101),
    ));
    targets.push(Target {
        payee: crate::tobacco::partner::PAYEE.into(),
        instance: TOBACCO_BUREAU.into(),
        sim: bureau.clone(),
        share: TOBACCO_SHARE,
        fixed: true,
        prepay: false,
        unsupported: TOBACCO_UNSUPPORTED,
        ends: TOBACCO_ENDS,
        cancel: false,
    });

    // Core: the bank's customers and the internal accounts of every partner.
    let mut accounts = customer_accounts(&mut rng, 900);
    let plans = plan(&mut rng, options.payments, &targets, &mut accounts);
    // Withholding agreements: customers the day's channel traffic never reaches (the end of the
    // partner's list), each with a bank account of its own from the ordinary ones.
    let mut signers = Vec::new();
    for (n, f) in demo_partners.fixedlen.iter().enumerate() {
        let Some(target) = targets.get(n + 1) else {
            continue;
        };
        let pool = target.sim.payable_customers();
        for customer in pool.iter().rev().take(f.withhold_customers) {
            let Some(account) = accounts.get(signers.len()) else {
                break;
            };
            signers.push((
                n + 1,
                customer.clone(),
                account.acct_no.clone(),
                account.name.clone(),
            ));
        }
    }
    accounts.push(internal(SUSPENSE, "代收电费过渡户"));
    accounts.push(internal(SETTLEMENT, "郴电国际结算户"));
    for c in &fixed_configs {
        accounts.push(internal(&c.suspense_account, "代收业务过渡户"));
        accounts.push(internal(&c.settlement_account, "收费单位结算户"));
    }
    accounts.push(internal(TOBACCO_SUSPENSE, "烟草货款过渡户"));
    accounts.push(internal(TOBACCO_SETTLEMENT, "岳阳烟草结算户"));
    accounts.push(internal(CABLE_SUSPENSE, "代收收视费过渡户"));
    accounts.push(internal(CABLE_SETTLEMENT, "有线电视结算户"));
    accounts.push(internal(MEDICAL_SUSPENSE, "医保代收过渡户"));
    accounts.push(internal(MEDICAL_FUND, "医保基金收入户"));
    let core = core_sim::start(
        CoreSimConfig {
            accounts,
            ..CoreSimConfig::default()
        },
        clock.clone(),
    )
    .await?;
    let opening_total = core.total_balance();

    let mut config = demo_config(&out, core.addr.port(), targets[0].sim.addr().port())?;
    config.fixedlen = fixed_configs;
    config.hub.listen = format!("127.0.0.1:{hub_port}");
    config.tobacco = Some(crate::config::TobaccoConfig {
        bureau_code: TOBACCO_BUREAU.into(),
        bank_code: TOBACCO_BANK.into(),
        bureau_base_url: bureau_sim.base_url(),
        bank_private_key_hex: TOBACCO_BANK_KEY_HEX.into(),
        bureau_public_key_hex: bureau_public_hex,
        suspense_account: TOBACCO_SUSPENSE.into(),
        settlement_account: TOBACCO_SETTLEMENT.into(),
        tls: None,
        notify_timeout_ms: 2_000,
        outbox_poll_interval_ms: 50,
    });
    config.withholding = demo_partners
        .fixedlen
        .iter()
        .filter(|f| f.withhold_customers > 0)
        .map(|f| crate::batch::schedule::WithholdingConfig {
            instance: f.instance.clone(),
            dir: sftp.join(&f.instance),
            check_interval_ms: 20,
            serial_code: None,
        })
        .collect();
    config.cabletv = vec![cable_config(cable_port)];
    config.medical = vec![medical_config];
    let hub = crate::app::start(&config, clock.clone()).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut agreements_signed = BTreeMap::<String, usize>::new();
    for (n, (target, customer, account, account_name)) in signers.iter().enumerate() {
        let Some(t) = targets.get(*target) else {
            continue;
        };
        let body = json!({
            "instance": t.instance, "customer_no": customer,
            "customer_name": t.sim.customer_name(customer).unwrap_or_default(),
            "account_no": account, "account_name": account_name,
            "id_type": "01", "id_no": resident_id(n), "phone": format!("139{:08}", n),
            "channel": "01", "branch_no": "000101", "teller_no": "T00001",
        });
        let answer: serde_json::Value = http
            .post(format!("http://{}/api/v1/agreements/sign", hub.addr))
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        if answer["status"] != "SIGNED" {
            return Err(DemoError::Setup(format!(
                "agreement of {}: {answer}",
                t.instance
            )));
        }
        *agreements_signed.entry(t.instance.clone()).or_default() += 1;
    }

    // The business day: the water companies drop their batch files before 08:00, and the hub's
    // poll runs them while the channels pay.
    manual.advance_to(at(date, 7, 50, 0));
    for (n, f) in demo_partners.fixedlen.iter().enumerate() {
        if let (true, Some(t)) = (f.withhold_customers > 0, targets.get(n + 1)) {
            t.sim
                .write_withholding_file(date, &sftp.join(&f.instance))?;
        }
    }
    manual.advance_to(at(date, 7, 59, 0));
    bureau
        .push_all(date)
        .await
        .map_err(|e| DemoError::Setup(format!("tobacco orders: {e}")))?;
    let driver = Arc::new(Driver {
        http,
        base: format!("http://{}", hub.addr),
        date: yyyymmdd(date),
        targets,
        core: core.clone(),
    });

    // The cable TV link signs in and downloads its prices before the first channel arrives.
    wait_for_cable(&driver).await?;

    // The day: 08:00 to 23:20, so that the last payments fall after the core's 23:00 switch
    // (CoreDate D+1) but before the power company's 23:30 day-end (AcctDate D).
    let day_start = at(date, 8, 0, 0);
    let day_span_ms = (at(date, 23, 20, 0) - day_start).num_milliseconds();
    let bar = if options.progress {
        ProgressBar::new(plans.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} 笔")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let plans = Arc::new(plans);
    let mut serials: Vec<(usize, String)> = Vec::new();
    let mut duplicates_sent = 0usize;
    // A sliding window of CONCURRENCY payments in flight; each one moves the shared clock to its
    // planned time when it starts (the clock never goes back), so slow ones do not hold up others.
    let window = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    let mut outcomes = Vec::with_capacity(plans.len());
    for index in 0..plans.len() {
        let permit = window
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| DemoError::Setup(e.to_string()))?;
        let offset = day_span_ms * index as i64 / plans.len().max(1) as i64;
        manual.advance_to(day_start + chrono::Duration::milliseconds(offset));
        if index % 50 == 0 {
            bar.set_message(format!("营业日 {}", clock.now().format("%Y-%m-%d %H:%M")));
        }
        let driver = driver.clone();
        let plans = plans.clone();
        let bar = bar.clone();
        tasks.spawn(async move {
            let outcome = match plans.get(index) {
                Some(p) => driver.run(index, p).await,
                None => Err(DemoError::Setup(format!("no plan {index}"))),
            };
            bar.inc(1);
            drop(permit);
            (index, outcome)
        });
        while let Some(done) = tasks.try_join_next() {
            outcomes.push(done);
        }
    }
    while let Some(done) = tasks.join_next().await {
        outcomes.push(done);
    }
    for outcome in outcomes {
        match outcome {
            Ok((index, Ok((Some(serial), dups)))) => {
                serials.push((index, serial));
                duplicates_sent += dups;
            }
            Ok((_, Ok((None, dups)))) => duplicates_sent += dups,
            Ok((index, Err(e))) => return Err(DemoError::Setup(format!("payment {index}: {e}"))),
            Err(e) => return Err(DemoError::Setup(format!("driver task: {e}"))),
        }
    }
    serials.sort();
    let traffic_seconds = started.elapsed().as_secs_f64();
    bar.finish_with_message(format!("营业日 {} 交易结束", yyyymmdd(date)));

    // Through the day-ends; let the resolver work every pending reversal and status query off
    // on the compressed clock (one simulated minute per real 20 ms).
    // The hub sends its 1003s within seconds of a timeout, long before the 23:30 day-end: let it
    // finish those on the clock of the day's end before the clock passes the day-ends.
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    while hub.engine.journal().pending_count().await? > 0
        && clock.now() < at(date, 23, 29, 0)
        && Instant::now() < drain_deadline
    {
        manual.advance(chrono::Duration::seconds(10));
        hub.engine
            .resolve_due(256)
            .await
            .map_err(|e| DemoError::Setup(e.to_string()))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    manual.advance_to(at(date, 23, 31, 0));
    let resolve_deadline = Instant::now() + Duration::from_secs(120);
    while hub.engine.journal().pending_count().await? > 0 && Instant::now() < resolve_deadline {
        manual.advance(chrono::Duration::minutes(1));
        hub.engine
            .resolve_due(256)
            .await
            .map_err(|e| DemoError::Setup(e.to_string()))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The batch results: each water company reads its DKR and writes the withheld bills off
    // (AcctDate = BatchDate) before it cuts its day's files.
    let batch_deadline = Instant::now() + Duration::from_secs(60);
    for (n, f) in demo_partners.fixedlen.iter().enumerate() {
        let Some(t) = driver.targets.get(n + 1) else {
            continue;
        };
        if f.withhold_customers == 0 {
            continue;
        }
        loop {
            match t.sim.read_withholding_result(date, &sftp.join(&f.instance)) {
                Ok(_) => break,
                Err(e) if Instant::now() < batch_deadline => {
                    tracing::debug!(instance = %f.instance, error = %e, "Batch result not there yet.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    return Err(DemoError::Setup(format!(
                        "{}: batch result: {e}",
                        f.instance
                    )))
                }
            }
        }
    }
    let next_day = date
        .checked_add_days(Days::new(1))
        .ok_or_else(|| DemoError::Setup("date overflow".into()))?;
    // T+1: the core's file by 01:00, the partners' by 06:00.
    manual.advance_to(at(next_day, 1, 0, 0));
    core.write_daily_file(date, &files)?;
    manual.advance_to(at(next_day, 6, 0, 0));
    for target in &driver.targets {
        target.sim.write_daily_files(date, &files)?;
    }
    manual.advance_to(at(next_day, 9, 0, 0));

    let mut links: Vec<_> = hub.engine.partners().cloned().collect();
    // 郴电国际 first, then the others by name: a stable summary.
    links.sort_by_key(|l| {
        (
            l.adapter.payee() != "CDGJ",
            l.adapter.payee().to_string(),
            l.adapter.instance().to_string(),
        )
    });
    let omitted: HashSet<String> = serials
        .iter()
        .filter(|(i, _)| plans[*i].scenario == Scenario::OmittedFromPartnerFile)
        .map(|(_, s)| s.clone())
        .collect();
    let mut runs = Vec::new();
    for link in &links {
        runs.push(crate::recon_job::run(&hub.engine, link, date, &files, &reports).await?);
    }
    // D+1 has no traffic of its own, but its core file carries the postings made after the
    // core's 23:00 switch on D: D+1's run matches and settles what D left awaiting the core.
    let day_after = next_day
        .checked_add_days(Days::new(1))
        .ok_or_else(|| DemoError::Setup("date overflow".into()))?;
    manual.advance_to(at(day_after, 1, 0, 0));
    core.write_daily_file(next_day, &files)?;
    manual.advance_to(at(day_after, 6, 0, 0));
    for target in &driver.targets {
        target.sim.write_daily_files(next_day, &files)?;
    }
    manual.advance_to(at(day_after, 9, 0, 0));

    let mut partners = Vec::new();
    for (link, run) in links.iter().zip(runs) {
        let counts: BTreeMap<String, usize> = run
            .result
            .difference_counts()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let explained = run
            .result
            .differences
            .iter()
            .filter(|d| {
                d.kind == reconciliation::DifferenceKind::HubSuccessMissingAtPartner
                    && omitted.contains(&d.hub_serial)
            })
            .count();
        let next = crate::recon_job::run(&hub.engine, link, next_day, &files, &reports).await?;
        let carried_matched = next
            .result
            .matched
            .iter()
            .filter(|m| m.carried_from.is_some())
            .count();
        let states = hub
            .engine
            .journal()
            .count_by_state_for(link.adapter.payee(), link.adapter.instance())
            .await?;
        let count = |names: &[&str]| {
            states
                .iter()
                .filter(|(s, _)| names.contains(&s.as_str()))
                .map(|(_, n)| n)
                .sum::<i64>()
        };
        partners.push(PartnerSummary {
            payee: link.adapter.payee().to_string(),
            instance: link.adapter.instance().to_string(),
            business_date: yyyymmdd(date),
            payments_succeeded: count(&["SUCCEEDED"]),
            payments_reversed: count(&["REVERSED"]),
            payments_failed: count(&["CORE_FAILED"]),
            payments_in_doubt: count(&[
                "ACCEPTED",
                "CORE_DEBITED",
                "CORE_UNKNOWN",
                "PARTNER_UNKNOWN",
                "PARTNER_FAILED",
                "REVERSAL_REQUESTED",
                "CANCEL_REQUESTED",
            ]),
            payments_cancelled: count(&["CANCELLED"]),
            matched: run.result.matched.len(),
            awaiting_core: run.result.awaiting_core.len(),
            differences: counts,
            explained,
            unexplained: run.result.differences.len() - explained + next.result.differences.len(),
            settlement_fen: run.settlement.amount_fen,
            settlement_state: run.settlement.state.clone(),
            agreements_signed: agreements_signed
                .get(link.adapter.instance())
                .copied()
                .unwrap_or(0),
            withheld: sqlx::query_scalar(
                "SELECT COUNT(*) FROM batch_lines WHERE instance = ? AND result = '000'",
            )
            .bind(link.adapter.instance())
            .fetch_one(hub.engine.journal().pool())
            .await
            .map_err(crate::journal::JournalError::from)?,
            next_day_carried_matched: carried_matched,
            next_day_settlement_fen: next.settlement.amount_fen,
            report_html: run.html.display().to_string(),
            report_csv: run.csv.display().to_string(),
        });
    }

    // Every payment must end where its scenario says.
    let mut scenario_mismatches = Vec::new();
    let mut scenarios: BTreeMap<String, usize> = BTreeMap::new();
    for (index, serial) in &serials {
        let p = &plans[*index];
        let name = serde_json::to_value(p.scenario)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        *scenarios.entry(name.clone()).or_default() += 1;
        let state = hub
            .engine
            .journal()
            .get(serial)
            .await?
            .map(|r| r.state.as_str())
            .unwrap_or("MISSING");
        if state != p.expected {
            scenario_mismatches.push(format!("{serial} {name}: {state}, expected {}", p.expected));
        }
    }
    let ledger_balanced = core.total_balance() == opening_total;
    let payments_per_second = if traffic_seconds > 0.0 {
        plans.len() as f64 / traffic_seconds
    } else {
        0.0
    };
    let summary = DemoSummary {
        business_date: yyyymmdd(date),
        payments_driven: plans.len(),
        duplicates_sent,
        traffic_seconds,
        payments_per_second,
        scenarios,
        scenario_mismatches,
        ledger_balanced,
        partners,
    };
    let summary_path = out.join("summary.json");
    std::fs::write(
        &summary_path,
        serde_json::to_vec_pretty(&summary).unwrap_or_default(),
    )?;
    print_summary(&summary, &summary_path);
    hub.stop().await;
    core.shutdown();
    for target in &driver.targets {
        target.sim.shutdown();
    }
    Ok(summary)
}

/// The insurer's simulator with made-up insured persons owing next year's contribution (window
/// open on the demo's date), and the hub's `[[medical]]` for it.
async fn start_medical(
    date: NaiveDate,
    count: usize,
    clock: &SharedClock,
) -> Result<(Arc<dyn BillSim>, crate::medical::MedicalInstanceConfig), DemoError> {
    use chrono::Datelike;
    use fixtures::medical_sim::{
        demo_insured, MedicalBillSim, MedicalSim, MedicalSimConfig, TEST_BANK_PRIVATE_HEX,
        TEST_DATA_KEY_HEX,
    };
    let setup = |e: String| DemoError::Setup(format!("{MEDICAL_INSTANCE}: {e}"));
    let year = (date.year() + 1).to_string();
    let window_start = date - chrono::Duration::days(120);
    let window_end = date + chrono::Duration::days(30);
    let insured = demo_insured(count, &year, window_start, window_end);
    let bank = codecs::crypto::sm2::PrivateKey::from_hex(TEST_BANK_PRIVATE_HEX)
        .map_err(|e| setup(e.to_string()))?;
    let insurer = codecs::crypto::sm2::PrivateKey::generate().map_err(|e| setup(e.to_string()))?;
    let insurer_public_key_hex = hex::encode(insurer.public_key().to_uncompressed());
    let data_key: [u8; 16] = hex::decode(TEST_DATA_KEY_HEX)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| setup("data key".into()))?;
    let sim = MedicalSim::start(MedicalSimConfig {
        bank_code: MEDICAL_BANK_CODE.into(),
        data_key,
        bank_public: bank.public_key(),
        insurer_key: insurer,
        clock: clock.clone(),
        insured: insured.clone(),
        payments_elsewhere: Vec::new(),
    })
    .await?;
    sim.set_req_time_window(MEDICAL_DEMO_WINDOW_S);
    let sim = MedicalBillSim::new(sim, &insured, &year);
    let config = crate::medical::MedicalInstanceConfig {
        instance: MEDICAL_INSTANCE.into(),
        url: sim.url(),
        bank_code: MEDICAL_BANK_CODE.into(),
        data_key_hex: TEST_DATA_KEY_HEX.into(),
        bank_private_key_hex: TEST_BANK_PRIVATE_HEX.into(),
        insurer_public_key_hex,
        suspense_account: MEDICAL_SUSPENSE.into(),
        settlement_account: MEDICAL_FUND.into(),
        money_timeout_ms: ANSWER_TIMEOUT_MS,
        query_timeout_ms: ANSWER_TIMEOUT_MS,
        tls: None,
        allow_plain_http: true,
    };
    Ok((Arc::new(sim), config))
}

fn demo_config(
    out: &std::path::Path,
    core_port: u16,
    power_port: u16,
) -> Result<HubConfig, DemoError> {
    let chendian = adapters::chendian::ChendianConfig::from_toml(&format!(
        "bank_code = \"{BANK_CODE}\"\nhost = \"127.0.0.1\"\nport = {power_port}\nmac_key_hex = \"{MAC_KEY_HEX}\"\n\
         suspense_account = \"{SUSPENSE}\"\nsettlement_account = \"{SETTLEMENT}\"\n\
         connect_timeout_ms = 1000\nanswer_timeout_ms = {ANSWER_TIMEOUT_MS}\n"
    ))
    .map_err(|e| DemoError::Setup(e.to_string()))?;
    Ok(HubConfig {
        hub: HubSection {
            database_url: format!("sqlite://{}", out.join("hub.db").display()),
            listen: "127.0.0.1:0".into(),
            file_dir: out.join("files"),
            report_dir: out.join("reports"),
            resolver_interval_ms: 50,
            tls: None,
            admin_listen: None,
            admin_tls: None,
        },
        // Backoff runs on the compressed clock: 30 simulated seconds doubling to 10 minutes.
        engine: EngineConfig {
            node: 1,
            backoff_initial_ms: 30_000,
            backoff_max_ms: 600_000,
            repeat_wait_ms: 5_000,
        },
        core: CoreConfig {
            host: "127.0.0.1".into(),
            port: core_port,
            connect_timeout_ms: 1000,
            answer_timeout_ms: ANSWER_TIMEOUT_MS,
            branch_id: "000101".into(),
            teller_id: "MBP001".into(),
        },
        chendian: vec![chendian],
        fixedlen: Vec::new(),
        medical: Vec::new(),
        keys: Default::default(),
        tobacco: None,
        withholding: Vec::new(),
        recon_schedule: None,
        cabletv: Vec::new(),
    })
}

fn print_summary(summary: &DemoSummary, path: &std::path::Path) {
    println!();
    println!(
        "中间业务平台 演示营业日 {} (hub demo)",
        summary.business_date
    );
    println!(
        "  渠道交易 {} 笔（另重复提交 {} 笔），耗时 {:.1} 秒，{:.0} 笔/秒",
        summary.payments_driven,
        summary.duplicates_sent,
        summary.traffic_seconds,
        summary.payments_per_second
    );
    for (name, n) in &summary.scenarios {
        println!("    {name:<28} {n:>5}");
    }
    for p in &summary.partners {
        println!("  {} {} 业务日期 {}", p.payee, p.instance, p.business_date);
        println!(
            "    成功 succeeded {}  已冲正 reversed {}  已撤销 cancelled {}  失败 failed {}  未决 in doubt {}",
            p.payments_succeeded,
            p.payments_reversed,
            p.payments_cancelled,
            p.payments_failed,
            p.payments_in_doubt
        );
        if p.agreements_signed > 0 || p.withheld > 0 {
            println!(
                "    代扣签约 agreements signed {}  批量代扣成功 withheld {}",
                p.agreements_signed, p.withheld
            );
        }
        println!(
            "    对平 matched {}  待次日核心文件 awaiting core {}",
            p.matched, p.awaiting_core
        );
        for (kind, n) in &p.differences {
            println!("    差错 {kind}: {n}");
        }
        println!(
            "    已解释 explained {}  未解释 unexplained {}",
            p.explained, p.unexplained
        );
        println!(
            "    结算 settlement {} 元 ({})",
            Money::from_fen(p.settlement_fen).to_yuan(),
            p.settlement_state
        );
        println!(
            "    次日核心文件对平 carried to D+1 {}，次日结算 {} 元",
            p.next_day_carried_matched,
            Money::from_fen(p.next_day_settlement_fen).to_yuan()
        );
        println!("    报告 report {}", p.report_html);
    }
    if !summary.scenario_mismatches.is_empty() {
        println!(
            "  场景结果不符 scenario mismatches: {}",
            summary.scenario_mismatches.len()
        );
        for m in summary.scenario_mismatches.iter().take(10) {
            println!("    {m}");
        }
    }
    println!(
        "  核心账务平衡 ledger balanced: {}",
        summary.ledger_balanced
    );
    println!("  summary: {}", path.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_id_numbers_carry_the_gb_11643_check_digit() {
        // The worked example of spec 02's 201: 431227199003150016.
        assert_eq!(resident_id(1), "431227199003150016");
        for n in 0..50 {
            let id = resident_id(n);
            let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default();
            assert!(
                adapters::medical::IdNumber::parse(&id, today).is_ok(),
                "{id}"
            );
        }
    }
}
