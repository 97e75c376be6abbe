//! The profile-driven fixed-length partners end to end, through the hub over real sockets: the
//! county water company of spec 02 (instance `water-xinhuang`, CompanyCode 431227, the built-in
//! `water` profile) and the county gas company of spec 11 (`gas-zhongfang`, 431221, onboarded by
//! the profile file `deploy/partners/gas.toml` alone).
//!
//! Every scenario is written once and run for both partners. Expected values come from the
//! customers written by hand below and from the specs (the trade codes, the day-end window, the
//! settlement Summary), never from the hub.

use std::path::PathBuf;
use std::time::Duration;

use adapters::fixedlen::FixedLenConfig;
use chrono::{Days, NaiveDate, NaiveDateTime};
use codecs::clock::yyyymmdd;
use codecs::Money;
use e2e_tests::*;
use fixtures::gas_sim::{
    self, GasBill, GasCustomer, GasFaultRule, GasPaymentState, GasSimConfig, GasSimHandle,
};
use fixtures::water_sim::{
    self, DayEnd, WaterBill, WaterCustomer, WaterFault, WaterFaultRule, WaterPaymentState,
    WaterSimConfig, WaterSimHandle,
};
use hub::recon_job::ReconRun;
use hub::state::PaymentState;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WATER_PAYEE: &str = "WATER";
const WATER_INSTANCE: &str = "water-xinhuang";
const WATER_CODE: &str = "431227";
const WATER_KEY_HEX: &str = "11223344556677889900AABBCCDDEEFF";
const WATER_SUSPENSE: &str = "9003143122700001";
const WATER_SETTLEMENT: &str = "9003243122700001";

const GAS_PAYEE: &str = "GAS";
const GAS_INSTANCE: &str = "gas-zhongfang";
const GAS_CODE: &str = "431221";
/// Spec 11's worked example key.
const GAS_KEY_HEX: &str = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
const GAS_SUSPENSE: &str = "9003143122100001";
const GAS_SETTLEMENT: &str = "9003243122100001";

/// The hub's answer timeout for both partners; a late answer comes well after it.
const PARTNER_ANSWER_TIMEOUT_MS: u64 = 300;
const LATE_BY: Duration = Duration::from_millis(800);

/// Customer numbers: one customer per scenario, so that no scenario sees another's write-off.
const C_PAY: u32 = 1;
/// Nothing due, 20.00 yuan prepaid.
const C_NOTHING_DUE: u32 = 2;
const C_STALE: u32 = 3;
const C_TIMEOUT: u32 = 4;
const C_BUSY: u32 = 5;
const C_DUPLICATE: u32 = 6;
const C_COUNTER: u32 = 7;
const C_DAY_END: u32 = 8;
const C_RECON_1: u32 = 9;
const C_RECON_2: u32 = 10;
const C_RECON_3: u32 = 11;
const C_UNKNOWN: u32 = 99;
const NOTHING_DUE_BALANCE_FEN: i64 = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Water,
    Gas,
}

impl Kind {
    fn payee(self) -> &'static str {
        match self {
            Kind::Water => WATER_PAYEE,
            Kind::Gas => GAS_PAYEE,
        }
    }

    fn instance(self) -> &'static str {
        match self {
            Kind::Water => WATER_INSTANCE,
            Kind::Gas => GAS_INSTANCE,
        }
    }

    fn company_code(self) -> &'static str {
        match self {
            Kind::Water => WATER_CODE,
            Kind::Gas => GAS_CODE,
        }
    }

    fn suspense(self) -> &'static str {
        match self {
            Kind::Water => WATER_SUSPENSE,
            Kind::Gas => GAS_SUSPENSE,
        }
    }

    fn settlement(self) -> &'static str {
        match self {
            Kind::Water => WATER_SETTLEMENT,
            Kind::Gas => GAS_SETTLEMENT,
        }
    }

    /// The pay trade's code: spec 02's 102, spec 11's 302.
    fn pay_code(self) -> &'static str {
        match self {
            Kind::Water => "102",
            Kind::Gas => "302",
        }
    }

    /// CustomerNo: AN 10 for water, AN 12 for gas.
    fn customer(self, n: u32) -> String {
        match self {
            Kind::Water => format!("08{n:08}"),
            Kind::Gas => format!("RQ{n:010}"),
        }
    }

    /// The bills every owing customer has, oldest first: (period, fee, late fee).
    fn bills(self) -> [(&'static str, i64, i64); 2] {
        match self {
            // 12 m³ and 10 m³ at 2.95 yuan/m³; the older one with a 3% late fee.
            Kind::Water => [("202610", 3_540, 106), ("202611", 2_950, 0)],
            // Spec 11's example bill (121.50 + 4.90), then 29.00 m³ at 3.00 yuan/m³.
            Kind::Gas => [("202610", 12_150, 490), ("202611", 8_700, 0)],
        }
    }

    /// TotalDue of an owing customer = Σ(fee + late fee).
    fn due_fen(self) -> i64 {
        match self {
            Kind::Water => 3_540 + 106 + 2_950,
            Kind::Gas => 12_150 + 490 + 8_700,
        }
    }

    fn settlement_summary(self, date: NaiveDate) -> String {
        match self {
            Kind::Water => format!("水费结算{WATER_CODE}{}", yyyymmdd(date)),
            Kind::Gas => format!("燃气费结算{GAS_CODE}{}", yyyymmdd(date)),
        }
    }
}

fn customer_name(n: u32) -> String {
    format!("用户{n:02}")
}

fn water_customers() -> Vec<WaterCustomer> {
    (1..=C_RECON_3)
        .map(|n| {
            let nothing_due = n == C_NOTHING_DUE;
            let bills = if nothing_due {
                Vec::new()
            } else {
                Kind::Water
                    .bills()
                    .iter()
                    // The first period's meter was changed: its Usage (13) is not Curr − Prev,
                    // and spec 02 says it is authoritative.
                    .zip([(1_000, 1_012, 13), (1_012, 1_022, 10)])
                    .map(|((period, fee, late), (prev, curr, usage))| WaterBill {
                        period: (*period).into(),
                        prev_reading_m3: prev,
                        curr_reading_m3: curr,
                        usage_m3: usage,
                        water_fee: Money::from_fen(*fee),
                        late_fee: Money::from_fen(*late),
                    })
                    .collect()
            };
            WaterCustomer {
                customer_no: Kind::Water.customer(n),
                name: customer_name(n),
                address: "新晃侗族自治县晃州镇舞阳路1号".into(),
                meter_no: format!("SB{n:010}"),
                closed: false,
                balance: Money::from_fen(if nothing_due {
                    NOTHING_DUE_BALANCE_FEN
                } else {
                    0
                }),
                bills,
                locked_by_batch: false,
            }
        })
        .collect()
}

fn gas_customers() -> Vec<GasCustomer> {
    (1..=C_RECON_3)
        .map(|n| {
            let nothing_due = n == C_NOTHING_DUE;
            let bills = if nothing_due {
                Vec::new()
            } else {
                Kind::Gas
                    .bills()
                    .iter()
                    .zip([(120_000, 124_050, 4_050), (124_050, 126_950, 2_900)])
                    .map(|((period, fee, late), (prev, curr, usage))| GasBill {
                        period: (*period).into(),
                        prev_reading_hundredth_m3: prev,
                        curr_reading_hundredth_m3: curr,
                        usage_hundredth_m3: usage,
                        gas_fee: Money::from_fen(*fee),
                        late_fee: Money::from_fen(*late),
                    })
                    .collect()
            };
            GasCustomer {
                customer_no: Kind::Gas.customer(n),
                name: customer_name(n),
                address: "怀化市中方县中方镇建设路2号".into(),
                meter_no: format!("QB{n:010}"),
                closed: false,
                balance: Money::from_fen(if nothing_due {
                    NOTHING_DUE_BALANCE_FEN
                } else {
                    0
                }),
                bills,
            }
        })
        .collect()
}

/// What either simulator recorded of one accepted pay (or prepay) trade.
#[derive(Debug)]
struct SimPayment {
    trade_code: String,
    customer_no: String,
    payer_account: String,
    channel: u8,
    amount_fen: i64,
    partner_serial: String,
    acct_date: NaiveDate,
    written_off: bool,
}

/// The hub with both partners configured, and their simulators.
struct Fx {
    env: Env,
    water: WaterSimHandle,
    gas: GasSimHandle,
}

impl Fx {
    async fn start() -> Fx {
        Fx::start_at(at(business_date(), 10, 0, 0)).await
    }

    async fn start_at(start: NaiveDateTime) -> Fx {
        let mut env = Env::start_without_hub(
            EnvOptions {
                start,
                ..EnvOptions::default()
            },
            vec![
                Env::internal_account(WATER_SUSPENSE, "代收水费过渡户"),
                Env::internal_account(WATER_SETTLEMENT, "新晃县自来水公司结算户"),
                Env::internal_account(GAS_SUSPENSE, "代收燃气费过渡户"),
                Env::internal_account(GAS_SETTLEMENT, "中方县燃气公司结算户"),
            ],
        )
        .await;
        let water = water_sim::start(
            WaterSimConfig {
                company_code: WATER_CODE.into(),
                mac_key: codecs::mac::parse_key_hex(WATER_KEY_HEX).expect("water key"),
                day_end: DayEnd::spec(),
                customers: water_customers(),
            },
            env.clock.clone(),
        )
        .await
        .expect("water simulator starts");
        let gas = gas_sim::start(
            GasSimConfig {
                company_code: GAS_CODE.into(),
                mac_key: codecs::mac::parse_key_hex(GAS_KEY_HEX).expect("gas key"),
                day_end: DayEnd::spec(),
                customers: gas_customers(),
            },
            env.clock.clone(),
        )
        .await
        .expect("gas simulator starts");
        let mut config = env.hub_config();
        config.fixedlen = vec![
            instance_config(Kind::Water, water.addr.port()),
            instance_config(Kind::Gas, gas.addr.port()),
        ];
        env.start_hub_with_config(config).await;
        Fx { env, water, gas }
    }

    async fn query(&self, k: Kind, customer_no: &str) -> (StatusCode, Value) {
        let body = json!({
            "payee": k.payee(), "instance": k.instance(), "customer_no": customer_no,
            "channel": "02", "branch_no": BRANCH, "teller_no": "T00001",
        });
        self.env.post("/api/v1/bills/query", &body).await
    }

    fn pay_body(&self, k: Kind, p: &PayArgs<'_>) -> Value {
        json!({
            "channel": p.channel, "channel_date": self.env.today(), "channel_serial": p.serial,
            "payee": k.payee(), "instance": k.instance(), "customer_no": p.customer_no,
            "payer_account": p.payer, "amount_fen": p.amount_fen, "total_due_fen": p.total_due_fen,
            // TellerNo is AN 8 in spec 02's header: the worked example's teller.
            "branch_no": BRANCH, "teller_no": "T0801001",
        })
    }

    async fn pay(&self, k: Kind, p: &PayArgs<'_>) -> (StatusCode, Value) {
        self.env
            .post("/api/v1/payments", &self.pay_body(k, p))
            .await
    }

    async fn pay_ok(&self, k: Kind, p: &PayArgs<'_>) -> (Value, String) {
        let (status, answer) = self.pay(k, p).await;
        assert_eq!(status, StatusCode::OK, "pay answered {answer}");
        let serial = answer["hub_serial"]
            .as_str()
            .expect("answer has hub_serial")
            .to_string();
        (answer, serial)
    }

    fn sim_payments(&self, k: Kind) -> Vec<SimPayment> {
        match k {
            Kind::Water => self
                .water
                .payments()
                .into_iter()
                .map(|p| SimPayment {
                    trade_code: p.trade_code,
                    customer_no: p.customer_no,
                    payer_account: p.payer_account,
                    channel: p.channel,
                    amount_fen: p.amount.fen(),
                    partner_serial: p.partner_serial,
                    acct_date: p.acct_date,
                    written_off: p.state == WaterPaymentState::WrittenOff,
                })
                .collect(),
            Kind::Gas => self
                .gas
                .payments()
                .into_iter()
                .map(|p| SimPayment {
                    trade_code: "302".into(),
                    customer_no: p.customer_no,
                    payer_account: p.payer_account,
                    channel: p.channel,
                    amount_fen: p.amount.fen(),
                    partner_serial: p.partner_serial,
                    acct_date: p.acct_date,
                    written_off: p.state == GasPaymentState::WrittenOff,
                })
                .collect(),
        }
    }

    /// The simulator's record of the trade that carried `hub_serial` as BankSerial.
    fn sim_payment(&self, k: Kind, hub_serial: &str) -> Option<SimPayment> {
        let serials: Vec<String> = match k {
            Kind::Water => self
                .water
                .payments()
                .into_iter()
                .map(|p| p.bank_serial)
                .collect(),
            Kind::Gas => self
                .gas
                .payments()
                .into_iter()
                .map(|p| p.bank_serial)
                .collect(),
        };
        let index = serials.iter().position(|s| s == hub_serial)?;
        self.sim_payments(k).into_iter().nth(index)
    }

    /// What the partner says the customer owes now.
    fn sim_due_fen(&self, k: Kind, customer_no: &str) -> i64 {
        match k {
            Kind::Water => self
                .water
                .customer(customer_no)
                .expect("water customer")
                .bills
                .iter()
                .map(|b| b.water_fee.fen() + b.late_fee.fen())
                .sum(),
            Kind::Gas => self
                .gas
                .customer(customer_no)
                .expect("gas customer")
                .bills
                .iter()
                .map(|b| b.gas_fee.fen() + b.late_fee.fen())
                .sum(),
        }
    }

    fn sim_balance_fen(&self, k: Kind, customer_no: &str) -> i64 {
        match k {
            Kind::Water => self
                .water
                .customer(customer_no)
                .expect("water customer")
                .balance
                .fen(),
            Kind::Gas => self
                .gas
                .customer(customer_no)
                .expect("gas customer")
                .balance
                .fen(),
        }
    }

    /// A new monthly bill of `fee_fen`, so that a TotalDue already shown is stale.
    fn add_bill(&self, k: Kind, customer_no: &str, fee_fen: i64) {
        match k {
            Kind::Water => self.water.add_bill(
                customer_no,
                WaterBill {
                    period: "202612".into(),
                    prev_reading_m3: 1_022,
                    curr_reading_m3: 1_030,
                    usage_m3: 8,
                    water_fee: Money::from_fen(fee_fen),
                    late_fee: Money::ZERO,
                },
            ),
            Kind::Gas => self.gas.add_bill(
                customer_no,
                GasBill {
                    period: "202612".into(),
                    prev_reading_hundredth_m3: 126_950,
                    curr_reading_hundredth_m3: 128_000,
                    usage_hundredth_m3: 1_050,
                    gas_fee: Money::from_fen(fee_fen),
                    late_fee: Money::ZERO,
                },
            ),
        }
    }

    /// Arms a fault on the next pay trade (102/302) of `customer_no`.
    fn arm_pay(&self, k: Kind, customer_no: &str, fault: WaterFault) {
        match k {
            Kind::Water => self.water.arm(WaterFaultRule {
                trade_code: k.pay_code().into(),
                customer_no: Some(customer_no.into()),
                fault,
                times: 1,
            }),
            Kind::Gas => self.gas.arm(GasFaultRule {
                trade_code: k.pay_code().into(),
                customer_no: Some(customer_no.into()),
                fault,
                times: 1,
            }),
        }
    }

    /// Payer, instance suspense account, and the core's double-entry total.
    fn assert_money(&self, k: Kind, payer: &str, payer_fen: i64, suspense_fen: i64) {
        assert_eq!(self.env.balance_fen(payer), payer_fen, "payer {payer}");
        assert_eq!(
            self.env.balance_fen(k.suspense()),
            suspense_fen,
            "{} suspense",
            k.instance()
        );
        let opening = PAYER_A_OPENING_FEN + PAYER_B_OPENING_FEN + PAYER_C_OPENING_FEN;
        assert_eq!(self.env.ledger_total_fen(), opening, "ledger balanced");
    }
}

fn instance_config(k: Kind, port: u16) -> FixedLenConfig {
    let (profile_builtin, profile_file, key) = match k {
        Kind::Water => (Some("water".to_string()), None, WATER_KEY_HEX),
        Kind::Gas => (
            None,
            Some(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join("deploy")
                    .join("partners")
                    .join("gas.toml"),
            ),
            GAS_KEY_HEX,
        ),
    };
    FixedLenConfig {
        instance: k.instance().into(),
        profile_builtin,
        profile_file,
        company_code: k.company_code().into(),
        host: "127.0.0.1".into(),
        port,
        mac_key_hex: key.into(),
        suspense_account: k.suspense().into(),
        settlement_account: k.settlement().into(),
        connect_timeout_ms: 1_000,
        answer_timeout_ms: Some(PARTNER_ANSWER_TIMEOUT_MS),
        answer_timeouts_ms: Default::default(),
        file_dir: None,
    }
}

// ---- the scenarios, each run for both partners ----

/// Query shows the bill; paying the exact total succeeds, debits once, and is written off.
async fn query_then_pay_exact_total(k: Kind) {
    let fx = Fx::start().await;
    let customer = k.customer(C_PAY);
    let (status, bill) = fx.query(k, &customer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bill["status"], "OK", "{bill}");
    assert_eq!(bill["customer_no"], customer.as_str());
    assert_eq!(bill["customer_name"], customer_name(C_PAY).as_str());
    assert_eq!(bill["total_due_fen"], k.due_fen());
    assert_eq!(bill["prepaid_fen"], 0);
    assert_eq!(bill["nothing_due"], false);
    let items = bill["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{bill}");
    for (item, (period, fee, late)) in items.iter().zip(k.bills()) {
        assert_eq!(item["period"], period);
        assert_eq!(item["amount_fen"], fee);
        assert_eq!(item["penalty_fen"], late);
    }
    // The arrears and usage query: readings and usage as the company states them, in m³
    // (spec 02: whole m³; spec 11: 0.01 m³, `0000004050` = 40.50).
    let (meter, usages) = match k {
        Kind::Water => (
            format!("SB{C_PAY:010}"),
            [("1000", "1012", "13"), ("1012", "1022", "10")],
        ),
        Kind::Gas => (
            format!("QB{C_PAY:010}"),
            [
                ("1200.00", "1240.50", "40.50"),
                ("1240.50", "1269.50", "29.00"),
            ],
        ),
    };
    assert_eq!(bill["meter_no"], meter.as_str(), "{bill}");
    for (item, (prev, curr, usage)) in items.iter().zip(usages) {
        assert_eq!(item["usage"]["prev_reading"], prev, "{item}");
        assert_eq!(item["usage"]["curr_reading"], curr, "{item}");
        assert_eq!(item["usage"]["usage"], usage, "{item}");
        assert_eq!(item["usage"]["unit"], "m³");
    }

    let (answer, serial) = fx
        .pay_ok(
            k,
            &PayArgs::mobile("MB0001", &customer, PAYER_A, k.due_fen()),
        )
        .await;
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(answer["amount_fen"], k.due_fen());
    assert_eq!(answer["acct_date"], "20261203");
    let row = fx.env.wait_state(&serial, PaymentState::Succeeded).await;
    let partner = fx.sim_payment(k, &serial).expect("written off");
    assert!(partner.written_off);
    assert_eq!(partner.trade_code, k.pay_code());
    assert_eq!(partner.customer_no, customer);
    assert_eq!(partner.payer_account, PAYER_A);
    // Channel 02 (mobile) is spec 02's Channel 4.
    assert_eq!(partner.channel, 4);
    assert_eq!(partner.amount_fen, k.due_fen());
    assert_eq!(partner.acct_date, business_date());
    assert_eq!(answer["partner_serial"], partner.partner_serial.as_str());
    assert_eq!(
        row.partner_serial.as_deref(),
        Some(partner.partner_serial.as_str())
    );
    assert_eq!(row.acct_date, Some(business_date()));
    assert_eq!(fx.sim_payments(k).len(), 1);
    assert_eq!(fx.sim_due_fen(k, &customer), 0, "both bills written off");
    assert_eq!(fx.env.core.posting_count(), 1, "exactly one 8002");
    fx.assert_money(k, PAYER_A, PAYER_A_OPENING_FEN - k.due_fen(), k.due_fen());

    // The bill is gone when queried again.
    let (_, again) = fx.query(k, &customer).await;
    assert_eq!(again["status"], "OK", "{again}");
    assert_eq!(again["total_due_fen"], 0);
    assert_eq!(again["nothing_due"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_query_then_pay_exact_total() {
    query_then_pay_exact_total(Kind::Water).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_query_then_pay_exact_total() {
    query_then_pay_exact_total(Kind::Gas).await;
}

/// Water: nothing due, so a payment goes as 103 预缴 and adds to the balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_prepay_when_nothing_is_due_goes_as_103() {
    let k = Kind::Water;
    let fx = Fx::start().await;
    let customer = k.customer(C_NOTHING_DUE);
    let (_, bill) = fx.query(k, &customer).await;
    assert_eq!(bill["status"], "OK", "{bill}");
    assert_eq!(bill["nothing_due"], true);
    assert_eq!(bill["total_due_fen"], 0);
    assert_eq!(bill["prepaid_fen"], NOTHING_DUE_BALANCE_FEN);
    assert_eq!(bill["items"].as_array().map(Vec::len), Some(0));

    let pay = PayArgs {
        channel: "03",
        amount_fen: 5_000,
        ..PayArgs::mobile("SS0103", &customer, PAYER_C, 0)
    };
    let (answer, serial) = fx.pay_ok(k, &pay).await;
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(answer["prepaid_fen"], NOTHING_DUE_BALANCE_FEN + 5_000);
    fx.env.wait_state(&serial, PaymentState::Succeeded).await;
    let partner = fx.sim_payment(k, &serial).expect("prepaid");
    assert_eq!(partner.trade_code, "103");
    assert_eq!(partner.amount_fen, 5_000);
    // The hub's channel 03 (self-service) is spec 02's Channel 2.
    assert_eq!(partner.channel, 2);
    assert_eq!(
        fx.sim_balance_fen(k, &customer),
        NOTHING_DUE_BALANCE_FEN + 5_000
    );
    fx.assert_money(k, PAYER_C, PAYER_C_OPENING_FEN - 5_000, 5_000);
}

/// Water: a counter 预缴 reversed the same day; the 104 must name the original as 103 (a 103
/// named as 102 is answered 023, spec 02), so the water company reverses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_counter_reversal_of_a_prepay_names_103() {
    let k = Kind::Water;
    let fx = Fx::start().await;
    let customer = k.customer(C_NOTHING_DUE);
    let pay = PayArgs {
        amount_fen: 8_800,
        ..PayArgs::counter("CT0103", &customer, PAYER_A, 0)
    };
    let (answer, serial) = fx.pay_ok(k, &pay).await;
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(
        fx.sim_payment(k, &serial).map(|p| p.trade_code),
        Some("103".to_string())
    );
    let (status, reversal) = fx.env.reverse("01", &fx.env.today(), "CT0103").await;
    assert_eq!(status, StatusCode::OK, "{reversal}");
    assert_eq!(reversal["status"], "REVERSED", "{reversal}");
    fx.env.wait_state(&serial, PaymentState::Reversed).await;
    let partner = fx.sim_payment(k, &serial).expect("prepaid, then reversed");
    assert!(!partner.written_off);
    assert_eq!(fx.sim_balance_fen(k, &customer), NOTHING_DUE_BALANCE_FEN);
    fx.assert_money(k, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// Gas has no prepay (spec 11: no 103; "the hub offers none of the missing functions"). With
/// nothing due the hub refuses the payment itself, before any debit: no journal row, no 8002,
/// nothing sent to the gas company.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_payment_when_nothing_is_due_is_refused_before_any_debit() {
    let k = Kind::Gas;
    let fx = Fx::start().await;
    let customer = k.customer(C_NOTHING_DUE);
    let (_, bill) = fx.query(k, &customer).await;
    assert_eq!(bill["status"], "OK", "{bill}");
    assert_eq!(bill["nothing_due"], true);
    assert_eq!(bill["total_due_fen"], 0);
    assert_eq!(bill["prepaid_fen"], NOTHING_DUE_BALANCE_FEN);

    let pay = PayArgs {
        amount_fen: 5_000,
        ..PayArgs::mobile("MB0103", &customer, PAYER_C, 0)
    };
    let (status, answer) = fx.pay(k, &pay).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "PARTNER_NOTHING_DUE", "{answer}");
    assert!(
        is_chinese(answer["message"].as_str().unwrap_or_default()),
        "{answer}"
    );
    assert_eq!(fx.env.payment_count().await, 0, "nothing journaled");
    assert_eq!(fx.env.core.posting_count(), 0, "no 8002");
    assert!(fx.sim_payments(k).is_empty(), "nothing written off");
    assert_eq!(fx.sim_balance_fen(k, &customer), NOTHING_DUE_BALANCE_FEN);
    fx.assert_money(k, PAYER_C, PAYER_C_OPENING_FEN, 0);
}

/// 001: refused at query; a payment anyway is debited, refused 001 and given back.
async fn customer_not_found(k: Kind) {
    let fx = Fx::start().await;
    let customer = k.customer(C_UNKNOWN);
    let (status, bill) = fx.query(k, &customer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bill["status"], "FAILED", "{bill}");
    assert_eq!(bill["partner_code"], "001");
    assert_eq!(bill["code"], "PARTNER_CUSTOMER_NOT_FOUND", "{bill}");
    assert!(
        is_chinese(bill["message"].as_str().unwrap_or_default()),
        "{bill}"
    );

    let (answer, serial) = fx
        .pay_ok(k, &PayArgs::mobile("MB0001", &customer, PAYER_B, 5_000))
        .await;
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["partner_code"], "001");
    assert_eq!(answer["code"], "PARTNER_CUSTOMER_NOT_FOUND", "{answer}");
    let row = fx.env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(row.reversal_core_seq_no.is_some(), "the 8003 is journaled");
    assert!(fx.sim_payments(k).is_empty());
    fx.assert_money(k, PAYER_B, PAYER_B_OPENING_FEN, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_customer_not_found() {
    customer_not_found(Kind::Water).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_customer_not_found() {
    customer_not_found(Kind::Gas).await;
}

/// 003: a bill arrives between the query and the payment; the debit is given back.
async fn stale_bill(k: Kind) {
    let fx = Fx::start().await;
    let customer = k.customer(C_STALE);
    let (_, bill) = fx.query(k, &customer).await;
    assert_eq!(bill["total_due_fen"], k.due_fen());
    fx.add_bill(k, &customer, 2_360);
    let (answer, serial) = fx
        .pay_ok(
            k,
            &PayArgs::mobile("MB0003", &customer, PAYER_A, k.due_fen()),
        )
        .await;
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["partner_code"], "003");
    assert_eq!(answer["code"], "PARTNER_ARREARS_CHANGED", "{answer}");
    fx.env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(fx.sim_payments(k).is_empty());
    assert_eq!(fx.sim_due_fen(k, &customer), k.due_fen() + 2_360);
    fx.assert_money(k, PAYER_A, PAYER_A_OPENING_FEN, 0);
    // The new total is shown by a fresh query.
    let (_, fresh) = fx.query(k, &customer).await;
    assert_eq!(fresh["total_due_fen"], k.due_fen() + 2_360);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_stale_bill_is_reversed() {
    stale_bill(Kind::Water).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_stale_bill_is_reversed() {
    stale_bill(Kind::Gas).await;
}

/// The pay trade is written off but answered after the hub's answer timeout: the hub never
/// resends it, sends the reversal trade (104/304), and gives the money back.
async fn partner_timeout_is_reversed(k: Kind) {
    let fx = Fx::start().await;
    let customer = k.customer(C_TIMEOUT);
    fx.arm_pay(k, &customer, WaterFault::AnswerLate(LATE_BY));
    let (answer, serial) = fx
        .pay_ok(
            k,
            &PayArgs::mobile("MB0004", &customer, PAYER_B, k.due_fen()),
        )
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    fx.env.wait_state(&serial, PaymentState::Reversed).await;
    let partner = fx
        .sim_payment(k, &serial)
        .expect("the late pay trade was written off");
    assert!(
        !partner.written_off,
        "the reversal trade reversed the write-off"
    );
    assert_eq!(
        fx.sim_payments(k).len(),
        1,
        "the pay trade is never re-sent"
    );
    assert_eq!(fx.sim_due_fen(k, &customer), k.due_fen(), "bills restored");
    fx.assert_money(k, PAYER_B, PAYER_B_OPENING_FEN, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_partner_timeout_sends_104_and_reverses() {
    partner_timeout_is_reversed(Kind::Water).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_partner_timeout_sends_304_and_reverses() {
    partner_timeout_is_reversed(Kind::Gas).await;
}

/// Spec 02 (and 11): the reversal re-sent after a timeout is "the same 104 frame"; the company
/// answers an identical repeat with its first answer and other content under the serial with
/// 093. Here the first 104 is processed but its answer comes too late: the re-send must be the
/// identical frame (same TxTime, same MAC), so it gets the first answer and the payment ends
/// REVERSED, once.
async fn late_reversal_answer_is_resent_as_the_same_frame(k: Kind) {
    let fx = Fx::start().await;
    let customer = k.customer(C_TIMEOUT);
    fx.arm_pay(k, &customer, WaterFault::AnswerLate(LATE_BY));
    let reversal_code = match k {
        Kind::Water => "104",
        Kind::Gas => "304",
    };
    match k {
        Kind::Water => fx.water.arm(WaterFaultRule {
            trade_code: reversal_code.into(),
            customer_no: Some(customer.clone()),
            fault: WaterFault::AnswerLate(LATE_BY),
            times: 1,
        }),
        Kind::Gas => fx.gas.arm(GasFaultRule {
            trade_code: reversal_code.into(),
            customer_no: Some(customer.clone()),
            fault: WaterFault::AnswerLate(LATE_BY),
            times: 1,
        }),
    }
    // The re-send waits out the spec's backoff (at least 10 s), so a rebuilt frame would carry
    // another TxTime.
    let (answer, serial) = fx
        .pay_ok(
            k,
            &PayArgs::mobile("MB0104", &customer, PAYER_B, k.due_fen()),
        )
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    let row = fx.env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(
        row.partner_reversal_time.is_some(),
        "the first send's time is journaled"
    );
    let partner = fx
        .sim_payment(k, &serial)
        .expect("written off, then reversed");
    assert!(!partner.written_off, "the first 104 reversed the write-off");
    assert_eq!(fx.sim_due_fen(k, &customer), k.due_fen(), "bills restored");
    fx.assert_money(k, PAYER_B, PAYER_B_OPENING_FEN, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_late_104_answer_is_resent_as_the_same_frame() {
    late_reversal_answer_is_resent_as_the_same_frame(Kind::Water).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_late_304_answer_is_resent_as_the_same_frame() {
    late_reversal_answer_is_resent_as_the_same_frame(Kind::Gas).await;
}

/// 099 after writing off (outcome unknown to the bank): reversed at both ends.
async fn busy_after_processing_is_reversed(k: Kind) {
    let fx = Fx::start().await;
    let customer = k.customer(C_BUSY);
    fx.arm_pay(k, &customer, WaterFault::BusyAfterProcessing);
    let (answer, serial) = fx
        .pay_ok(
            k,
            &PayArgs::mobile("MB0099", &customer, PAYER_A, k.due_fen()),
        )
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    fx.env.wait_state(&serial, PaymentState::Reversed).await;
    let partner = fx.sim_payment(k, &serial).expect("the write-off happened");
    assert!(!partner.written_off, "reversed by the reversal trade");
    assert_eq!(fx.sim_payments(k).len(), 1);
    assert_eq!(fx.sim_due_fen(k, &customer), k.due_fen(), "bills restored");
    fx.assert_money(k, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_busy_after_processing_is_reversed() {
    busy_after_processing_is_reversed(Kind::Water).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_busy_after_processing_is_reversed() {
    busy_after_processing_is_reversed(Kind::Gas).await;
}

/// A channel repeats its serial: the first answer, one debit, one write-off; the same serial
/// with another payment is refused.
async fn duplicate_channel_serial(k: Kind) {
    let fx = Fx::start().await;
    let customer = k.customer(C_DUPLICATE);
    let pay = PayArgs::mobile("MB0006", &customer, PAYER_C, k.due_fen());
    let (first, serial) = fx.pay_ok(k, &pay).await;
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    let (again, again_serial) = fx.pay_ok(k, &pay).await;
    assert_eq!(again, first, "the repeat gets the first answer");
    assert_eq!(again_serial, serial);
    let (status, other) = fx
        .pay(
            k,
            &PayArgs {
                amount_fen: k.due_fen() + 1,
                total_due_fen: k.due_fen() + 1,
                ..pay.clone()
            },
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{other}");
    assert_eq!(other["code"], "DUPLICATE_MISMATCH");
    assert_eq!(fx.env.payment_count().await, 1);
    assert_eq!(fx.env.core.posting_count(), 1, "one 8002");
    assert_eq!(fx.sim_payments(k).len(), 1, "one write-off");
    fx.assert_money(k, PAYER_C, PAYER_C_OPENING_FEN - k.due_fen(), k.due_fen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_duplicate_channel_serial_debits_once() {
    duplicate_channel_serial(Kind::Water).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_duplicate_channel_serial_debits_once() {
    duplicate_channel_serial(Kind::Gas).await;
}

/// A counter 冲正 the same day: the reversal trade, then the core reversal.
async fn counter_reversal_same_day(k: Kind) {
    let fx = Fx::start().await;
    let customer = k.customer(C_COUNTER);
    let (answer, serial) = fx
        .pay_ok(
            k,
            &PayArgs::counter("CT0007", &customer, PAYER_B, k.due_fen()),
        )
        .await;
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(fx.sim_payment(k, &serial).map(|p| p.channel), Some(1));
    fx.assert_money(k, PAYER_B, PAYER_B_OPENING_FEN - k.due_fen(), k.due_fen());

    let (status, reversal) = fx.env.reverse("01", &fx.env.today(), "CT0007").await;
    assert_eq!(status, StatusCode::OK, "{reversal}");
    assert_eq!(reversal["status"], "REVERSED", "{reversal}");
    let row = fx.env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(row.reversal_core_seq_no.is_some());
    let partner = fx
        .sim_payment(k, &serial)
        .expect("written off, then reversed");
    assert!(!partner.written_off);
    assert_eq!(fx.sim_due_fen(k, &customer), k.due_fen(), "owed again");
    fx.assert_money(k, PAYER_B, PAYER_B_OPENING_FEN, 0);

    // Asked again: the same outcome, nothing moves.
    let (_, again) = fx.env.reverse("01", &fx.env.today(), "CT0007").await;
    assert_eq!(again["status"], "REVERSED", "{again}");
    fx.assert_money(k, PAYER_B, PAYER_B_OPENING_FEN, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_counter_reversal_same_day() {
    counter_reversal_same_day(Kind::Water).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_counter_reversal_same_day() {
    counter_reversal_same_day(Kind::Gas).await;
}

/// The hub refuses new payments from 23:50:00 until 00:09:59 by its clock (the partner's
/// day-end is 23:55:00–00:04:59), with PARTNER_DAY_END and no debit; queries stay open.
async fn day_end_window(k: Kind) {
    let date = business_date();
    let next_day = date.checked_add_days(Days::new(1)).expect("next day");
    let fx = Fx::start_at(at(date, 23, 49, 59)).await;
    let customer = k.customer(C_DAY_END);

    // 23:49:59, the last second before the window: paid.
    let other = k.customer(C_PAY);
    let (before, serial) = fx
        .pay_ok(k, &PayArgs::mobile("MB2349", &other, PAYER_C, k.due_fen()))
        .await;
    assert_eq!(before["status"], "SUCCEEDED", "{before}");
    fx.env.wait_state(&serial, PaymentState::Succeeded).await;
    let postings = fx.env.core.posting_count();
    let payer_fen = PAYER_A_OPENING_FEN;

    for (time, serial) in [
        (at(date, 23, 50, 0), "MB2350"),
        (at(date, 23, 56, 0), "MB2356"),
        (at(next_day, 0, 9, 59), "MB0009"),
    ] {
        fx.env.clock.advance_to(time);
        let (status, answer) = fx
            .pay(k, &PayArgs::mobile(serial, &customer, PAYER_A, k.due_fen()))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{time}: {answer}");
        assert_eq!(answer["code"], "PARTNER_DAY_END", "{time}: {answer}");
        assert!(
            is_chinese(answer["message"].as_str().unwrap_or_default()),
            "{answer}"
        );
        // The query trade stays open (the partner answers 101/301 in its day-end too).
        let (_, bill) = fx.query(k, &customer).await;
        assert_eq!(bill["status"], "OK", "{time}: {bill}");
        assert_eq!(bill["total_due_fen"], k.due_fen());
    }
    assert_eq!(fx.env.core.posting_count(), postings, "nobody debited");
    assert_eq!(fx.env.balance_fen(PAYER_A), payer_fen);
    assert_eq!(fx.env.payment_count().await, 1, "nothing journaled");
    assert_eq!(fx.sim_payments(k).len(), 1);

    // 00:10:00: open again, on the partner's new AcctDate.
    fx.env.clock.advance_to(at(next_day, 0, 10, 0));
    let (after, serial) = fx
        .pay_ok(
            k,
            &PayArgs::mobile("MB0010", &customer, PAYER_A, k.due_fen()),
        )
        .await;
    assert_eq!(after["status"], "SUCCEEDED", "{after}");
    assert_eq!(after["acct_date"], yyyymmdd(next_day));
    fx.env.wait_state(&serial, PaymentState::Succeeded).await;
    assert_eq!(fx.env.balance_fen(PAYER_A), payer_fen - k.due_fen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_day_end_window_refuses_payments_before_any_debit() {
    day_end_window(Kind::Water).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_day_end_window_refuses_payments_before_any_debit() {
    day_end_window(Kind::Gas).await;
}

// ---- T+1 ----

async fn reconcile(fx: &Fx, k: Kind, date: NaiveDate) -> ReconRun {
    let files = fx.env.files_dir();
    let reports = fx.env.dir.path().join("reports");
    fx.env
        .on_hub(move |engine| async move {
            let link = engine
                .partner(k.payee(), k.instance())
                .cloned()
                .expect("instance configured");
            hub::recon_job::run(&engine, &link, date, &files, &reports).await
        })
        .await
        .expect("reconciliation runs")
}

/// 8006 (core-banking.md) straight to the core simulator: the account's statement of one
/// CoreDate, as GBK XML text.
async fn core_statement(fx: &Fx, acct_no: &str, core_date: NaiveDate) -> String {
    let day = yyyymmdd(core_date);
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"GBK\"?><Service><Head><TranCode>8006</TranCode>\
         <ChannelId>MBP</ChannelId><SeqNo>T8006{day}</SeqNo><TranDate>{day}</TranDate>\
         <TranTime>090000</TranTime><BranchId>{BRANCH}</BranchId><TellerId>MBP001</TellerId>\
         </Head><Body><AcctNo>{acct_no}</AcctNo><StartDate>{day}</StartDate><EndDate>{day}</EndDate>\
         <PageNo>1</PageNo><PageSize>100</PageSize></Body></Service>"
    );
    let body = codecs::text::encode(&xml, codecs::text::Charset::Gbk).expect("GBK");
    let mut stream = tokio::net::TcpStream::connect(fx.env.core.addr)
        .await
        .expect("core connects");
    stream
        .write_all(format!("{:08}", body.len()).as_bytes())
        .await
        .expect("send length");
    stream.write_all(&body).await.expect("send body");
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await.expect("answer length");
    let len: usize = std::str::from_utf8(&header)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("8 digits");
    let mut answer = vec![0u8; len];
    stream.read_exact(&mut answer).await.expect("answer body");
    codecs::text::decode(&answer, codecs::text::Charset::Gbk).expect("GBK answer")
}

/// A small day: two successes, one counter payment reversed, one refusal. The partner's T+1
/// files agree with the journal and the core to zero differences; the settlement is posted once
/// to the instance's settlement account with the spec's Summary.
async fn small_day_reconciles_and_settles_once(k: Kind) {
    let date = business_date();
    let fx = Fx::start().await;
    let c1 = k.customer(C_RECON_1);
    let (a, s1) = fx
        .pay_ok(k, &PayArgs::mobile("RC0001", &c1, PAYER_A, k.due_fen()))
        .await;
    assert_eq!(a["status"], "SUCCEEDED", "{a}");
    // Water: a 预缴 (Type 2); gas: another payment (gas has no prepay).
    let (second, second_fen) = match k {
        Kind::Water => (k.customer(C_NOTHING_DUE), 3_000),
        Kind::Gas => (k.customer(C_RECON_2), k.due_fen()),
    };
    let (b, s2) = fx
        .pay_ok(
            k,
            &PayArgs {
                channel: "04",
                amount_fen: second_fen,
                total_due_fen: if k == Kind::Water { 0 } else { second_fen },
                ..PayArgs::mobile("RC0002", &second, PAYER_B, 0)
            },
        )
        .await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}");
    // The hub's channel 04 (online banking) is the spec's Channel 3.
    assert_eq!(fx.sim_payment(k, &s2).map(|p| p.channel), Some(3));
    let c3 = k.customer(C_RECON_3);
    let (c, s3) = fx
        .pay_ok(k, &PayArgs::counter("RC0003", &c3, PAYER_C, k.due_fen()))
        .await;
    assert_eq!(c["status"], "SUCCEEDED", "{c}");
    let (_, reversal) = fx.env.reverse("01", &fx.env.today(), "RC0003").await;
    assert_eq!(reversal["status"], "REVERSED", "{reversal}");
    let unknown = k.customer(C_UNKNOWN);
    let (_, s4) = fx
        .pay_ok(k, &PayArgs::mobile("RC0004", &unknown, PAYER_B, 1_000))
        .await;
    for (serial, state) in [
        (&s1, PaymentState::Succeeded),
        (&s2, PaymentState::Succeeded),
        (&s3, PaymentState::Reversed),
        (&s4, PaymentState::Reversed),
    ] {
        fx.env.wait_state(serial, state).await;
    }
    let settled_fen = k.due_fen() + second_fen;
    assert_eq!(fx.env.balance_fen(k.suspense()), settled_fen);

    // T+1: the core's file by 01:00, the partner's by 07:00, reconciliation at 09:00.
    let next_day = date.checked_add_days(Days::new(1)).expect("next day");
    fx.env.clock.advance_to(at(next_day, 1, 0, 0));
    fx.env
        .core
        .write_daily_file(date, &fx.env.files_dir())
        .expect("core file");
    fx.env.clock.advance_to(at(next_day, 6, 0, 0));
    let written = match k {
        Kind::Water => fx.water.write_daily_files(date, &fx.env.files_dir()),
        Kind::Gas => fx.gas.write_daily_files(date, &fx.env.files_dir()),
    }
    .expect("partner files");
    let names: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let day = yyyymmdd(date);
    let code = k.company_code();
    let expected_names = match k {
        Kind::Water => [
            format!("ZZ{code}{day}.txt"),
            format!("MX{code}{day}.txt"),
            format!("DZ{code}{day}.ok"),
        ],
        Kind::Gas => [
            format!("RQZZ{code}{day}.txt"),
            format!("RQMX{code}{day}.txt"),
            format!("DZ{code}{day}.ok"),
        ],
    };
    assert_eq!(names, expected_names);
    fx.env.clock.advance_to(at(next_day, 9, 0, 0));

    let postings = fx.env.core.posting_count();
    let run = reconcile(&fx, k, date).await;
    assert!(
        run.result.differences.is_empty(),
        "{:?}",
        run.result.differences
    );
    assert_eq!(run.result.matched.len(), 2);
    assert_eq!(run.settlement.state, "POSTED", "{:?}", run.settlement);
    assert_eq!(run.settlement.amount_fen, settled_fen);
    assert_eq!(
        fx.env.core.posting_count(),
        postings + 1,
        "one settlement 8002"
    );
    assert_eq!(fx.env.balance_fen(k.settlement()), settled_fen);
    assert_eq!(fx.env.balance_fen(k.suspense()), 0, "suspense cleared");

    // The core's own statement of the settlement account: one credit, the spec's Summary.
    let statement = core_statement(&fx, k.settlement(), next_day).await;
    assert!(
        statement.contains("<RetCode>000000</RetCode>"),
        "{statement}"
    );
    assert!(
        statement.contains("<TotalCount>1</TotalCount>"),
        "{statement}"
    );
    assert!(
        statement.contains(&format!(
            "<Summary>{}</Summary>",
            k.settlement_summary(date)
        )),
        "{statement}"
    );
    assert!(
        statement.contains(&format!(
            "<Amount>{}</Amount>",
            Money::from_fen(settled_fen).to_yuan()
        )),
        "{statement}"
    );
    assert!(statement.contains("<DrCr>C</DrCr>"), "{statement}");

    // A rerun posts nothing more.
    let again = reconcile(&fx, k, date).await;
    assert!(again.result.differences.is_empty());
    assert_eq!(again.settlement.state, "POSTED");
    assert_eq!(again.settlement.amount_fen, settled_fen);
    assert_eq!(fx.env.core.posting_count(), postings + 1, "no second 8002");
    assert_eq!(fx.env.balance_fen(k.settlement()), settled_fen);
    let opening = PAYER_A_OPENING_FEN + PAYER_B_OPENING_FEN + PAYER_C_OPENING_FEN;
    assert_eq!(fx.env.ledger_total_fen(), opening);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_small_day_reconciles_and_settles_once() {
    small_day_reconciles_and_settles_once(Kind::Water).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_small_day_reconciles_and_settles_once() {
    small_day_reconciles_and_settles_once(Kind::Gas).await;
}

/// Spec 02, 201/202 from a channel: the hub checks the ID number's check digit and, with core
/// 8005, the account's name before it calls; the water company's answers (000, 010, 011) come
/// back to the channel, and the hub's register follows only the 000s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_agreements_are_signed_and_terminated_from_a_channel() {
    let fx = Fx::start().await;
    let customer = Kind::Water.customer(C_RECON_1);
    let sign = |account: &str, account_name: &str, id_no: &str| {
        json!({
            "instance": WATER_INSTANCE, "customer_no": customer, "customer_name": customer_name(C_RECON_1),
            "account_no": account, "account_name": account_name, "id_type": "01",
            // The spec's worked-example ID number (its check digit is right).
            "id_no": id_no, "phone": "13900001111",
            "channel": "01", "branch_no": BRANCH, "teller_no": "T00001",
        })
    };
    const GOOD_ID: &str = "431227199003150016";

    // The check digit of 431227199003150016 is 6: a 7 is refused before any call.
    let (status, bad_id) = fx
        .env
        .post(
            "/api/v1/agreements/sign",
            &sign(PAYER_A, "张三", "431227199003150017"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bad_id["status"], "FAILED", "{bad_id}");
    assert_eq!(bad_id["code"], "PARTNER_INVALID_ID_NUMBER");
    // The core says PAYER_A is 张三's: another name is refused (8005 Match=N), nothing sent.
    let (_, wrong_name) = fx
        .env
        .post("/api/v1/agreements/sign", &sign(PAYER_A, "李四", GOOD_ID))
        .await;
    assert_eq!(wrong_name["code"], "ACCOUNT_NAME_MISMATCH", "{wrong_name}");
    assert!(fx.water.agreements().is_empty());
    // An empty field never reaches the company (it would answer 090).
    let mut empty_phone = sign(PAYER_A, "张三", GOOD_ID);
    empty_phone["phone"] = json!("");
    let (status, refused) = fx.env.post("/api/v1/agreements/sign", &empty_phone).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");

    // Signed: the company's AgreementNo, effective the day after its AcctDate.
    let (_, signed) = fx
        .env
        .post("/api/v1/agreements/sign", &sign(PAYER_A, "张三", GOOD_ID))
        .await;
    assert_eq!(signed["status"], "SIGNED", "{signed}");
    let at_company = fx.water.agreements();
    assert_eq!(at_company.len(), 1);
    assert_eq!(signed["agreement_no"], at_company[0].agreement_no.as_str());
    let effective = fx
        .water
        .acct_date()
        .checked_add_days(Days::new(1))
        .expect("date");
    assert_eq!(signed["effective_date"], yyyymmdd(effective).as_str());
    let agreement_no = at_company[0].agreement_no.clone();
    let register = hub::batch::AgreementRegister::new(fx.env.journal.clone(), fx.env.clock.clone());
    let recorded = register
        .find(WATER_INSTANCE, &agreement_no)
        .await
        .expect("register read")
        .expect("recorded");
    assert_eq!(recorded.account_no, PAYER_A);
    assert_eq!(recorded.end_date, None);

    // Another account for the same customer: 010, the register unchanged.
    let (_, other) = fx
        .env
        .post("/api/v1/agreements/sign", &sign(PAYER_B, "李四", GOOD_ID))
        .await;
    assert_eq!(other["status"], "FAILED", "{other}");
    assert_eq!(other["code"], "AGREEMENT_REFUSED");
    assert_eq!(other["partner_code"], "010");

    // Terminated (202 000), then again: 011.
    let terminate = json!({
        "instance": WATER_INSTANCE, "customer_no": customer, "agreement_no": agreement_no,
        "account_no": PAYER_A, "channel": "02", "branch_no": BRANCH, "teller_no": "T00001",
    });
    let (_, ended) = fx
        .env
        .post("/api/v1/agreements/terminate", &terminate)
        .await;
    assert_eq!(ended["status"], "TERMINATED", "{ended}");
    assert!(fx.water.agreements()[0].end_date.is_some());
    let recorded = register
        .find(WATER_INSTANCE, &agreement_no)
        .await
        .expect("register read")
        .expect("recorded");
    assert!(recorded.end_date.is_some());
    let (_, again) = fx
        .env
        .post("/api/v1/agreements/terminate", &terminate)
        .await;
    assert_eq!(again["partner_code"], "011", "{again}");
}

/// Spec 02: every 201 field is checked against its layout (GBK, byte widths) and IdType is 01 or
/// 99, all before core 8005 and before the company; from 23:50:00 to 00:09:59 (the hub's clock) new
/// 201/202 are refused with PARTNER_DAY_END and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_agreement_desk_refuses_bad_fields_and_the_day_end_window() {
    let fx = Fx::start().await;
    let customer = Kind::Water.customer(C_RECON_1);
    let sign = json!({
        "instance": WATER_INSTANCE, "customer_no": customer, "customer_name": customer_name(C_RECON_1),
        "account_no": PAYER_A, "account_name": "张三", "id_type": "01",
        "id_no": "431227199003150016", "phone": "13900001111",
        "channel": "01", "branch_no": BRANCH, "teller_no": "T00001",
    });
    // CustomerName is C 40: 21 double-byte characters are 42 GBK bytes.
    let mut long_name = sign.clone();
    long_name["customer_name"] = json!("张".repeat(21));
    // An emoji has no GBK encoding: a bad request, not a core outage.
    let mut not_gbk = sign.clone();
    not_gbk["account_name"] = json!("张三😀");
    let mut other_id_type = sign.clone();
    other_id_type["id_type"] = json!("02");
    let mut long_phone = sign.clone();
    long_phone["phone"] = json!("139000011112");
    // GBK has control characters; core 8005's XML cannot carry them.
    let mut control = sign.clone();
    control["account_name"] = json!("张三\u{1}");
    for bad in [&long_name, &not_gbk, &other_id_type, &long_phone, &control] {
        let (status, answer) = fx.env.post("/api/v1/agreements/sign", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {answer}");
        assert_eq!(answer["code"], "BAD_REQUEST", "{answer}");
    }
    assert!(fx.water.agreements().is_empty());

    let terminate = json!({
        "instance": WATER_INSTANCE, "customer_no": customer, "agreement_no": "NOSUCHAGREEMENT1",
        "account_no": PAYER_A, "channel": "02", "branch_no": BRANCH, "teller_no": "T00001",
    });
    let mut long_agreement = terminate.clone();
    long_agreement["agreement_no"] = json!("A".repeat(17));
    let (status, answer) = fx
        .env
        .post("/api/v1/agreements/terminate", &long_agreement)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    // 23:50:00 by the hub's clock: the window has begun (the company's own starts at 23:55).
    fx.env.clock.advance_to(at(business_date(), 23, 50, 0));
    let (status, answer) = fx.env.post("/api/v1/agreements/sign", &sign).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["code"], "PARTNER_DAY_END", "{answer}");
    assert!(answer.get("partner_code").is_none(), "{answer}");
    let (_, answer) = fx
        .env
        .post("/api/v1/agreements/terminate", &terminate)
        .await;
    assert_eq!(answer["code"], "PARTNER_DAY_END", "{answer}");
    assert!(answer.get("partner_code").is_none(), "{answer}");
    assert!(fx.water.agreements().is_empty());
}

/// `[recon_schedule]`: `hub serve` reconciles the previous day itself. At 06:30 the files are not
/// there (nothing settles, it tries again later); once they are, the next attempt an hour later
/// reconciles and settles the day once, with no operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reconciles_and_settles_the_previous_day_once_the_files_are_there() {
    let k = Kind::Water;
    let date = business_date();
    let mut fx = Fx::start().await;
    let customer = k.customer(C_RECON_1);
    let (paid, serial) = fx
        .pay_ok(
            k,
            &PayArgs::mobile("SC0001", &customer, PAYER_A, k.due_fen()),
        )
        .await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    fx.env.wait_state(&serial, PaymentState::Succeeded).await;

    fx.env.stop_hub().await;
    let mut config = fx.env.hub_config();
    config.fixedlen = vec![
        instance_config(Kind::Water, fx.water.addr.port()),
        instance_config(Kind::Gas, fx.gas.addr.port()),
    ];
    config.recon_schedule = Some(hub::recon_schedule::ReconScheduleConfig {
        start: "063000".into(),
        retry_minutes: 60,
        alert_after: "110000".into(),
        check_interval_ms: 20,
    });
    fx.env.start_hub_with_config(config).await;

    let settlement = |pool: sqlx::SqlitePool| async move {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT state, amount_fen FROM settlements WHERE instance = ? AND business_date = ?",
        )
        .bind(WATER_INSTANCE)
        .bind(yyyymmdd(date))
        .fetch_optional(&pool)
        .await
        .expect("settlements read")
    };
    let next_day = date.checked_add_days(Days::new(1)).expect("next day");
    fx.env.clock.advance_to(at(next_day, 6, 30, 0));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        settlement(fx.env.journal.pool().clone()).await,
        None,
        "no files yet: nothing settles"
    );

    fx.env
        .core
        .write_daily_file(date, &fx.env.files_dir())
        .expect("core file");
    fx.water
        .write_daily_files(date, &fx.env.files_dir())
        .expect("water files");
    // Within the hour nothing is tried again.
    fx.env.clock.advance_to(at(next_day, 7, 0, 0));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(settlement(fx.env.journal.pool().clone()).await, None);
    let postings = fx.env.core.posting_count();
    fx.env.clock.advance_to(at(next_day, 7, 30, 0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let settled = loop {
        if let Some(row) = settlement(fx.env.journal.pool().clone()).await {
            if row.0 == "POSTED" {
                break row;
            }
        }
        assert!(std::time::Instant::now() < deadline, "never settled");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(settled.1, k.due_fen());
    // Once: later looks that day leave the day alone.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    fx.env.clock.advance_to(at(next_day, 9, 0, 0));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        fx.env.core.posting_count(),
        postings + 1,
        "one settlement 8002"
    );
    assert_eq!(fx.env.balance_fen(WATER_SETTLEMENT), k.due_fen());
}

/// Spec 02: a bill in today's batch file is locked; "102 on it answers 007 (the channel says
/// "代扣处理中，请17:00后再试")". The 102 wrote nothing off, so the debit goes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_bill_locked_by_the_batch_tells_the_channel_to_retry_after_17() {
    let fx = Fx::start().await;
    let k = Kind::Water;
    let customer = k.customer(C_STALE);
    fx.water.set_locked_by_batch(&customer, true);
    let (answer, serial) = fx
        .pay_ok(
            k,
            &PayArgs::mobile("MB0071", &customer, PAYER_A, k.due_fen()),
        )
        .await;
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["partner_code"], "007", "{answer}");
    assert_eq!(answer["code"], "PARTNER_BATCH_IN_PROGRESS", "{answer}");
    assert_eq!(answer["message"], "代扣处理中，请17:00后再试", "{answer}");
    fx.env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(fx.sim_payments(k).is_empty());
    fx.assert_money(k, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// Spec 11: no withholding agreements for the gas instance ("the hub offers none of the missing
/// functions"): its name is unknown at the agreement desk and nothing reaches the gas company,
/// while the water instance's desk is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_has_no_agreement_desk() {
    let fx = Fx::start().await;
    let sign = |instance: &str, customer: &str| {
        json!({
            "instance": instance, "customer_no": customer, "customer_name": customer_name(C_RECON_1),
            "account_no": PAYER_A, "account_name": "张三", "id_type": "01",
            "id_no": "431227199003150016", "phone": "13900001111",
            "channel": "01", "branch_no": BRANCH, "teller_no": "T00001",
        })
    };
    let (status, gas) = fx
        .env
        .post(
            "/api/v1/agreements/sign",
            &sign(GAS_INSTANCE, &Kind::Gas.customer(C_RECON_1)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{gas}");
    assert_eq!(gas["code"], "UNKNOWN_PAYEE", "{gas}");
    let (status, terminate) = fx
        .env
        .post(
            "/api/v1/agreements/terminate",
            &json!({
                "instance": GAS_INSTANCE, "customer_no": Kind::Gas.customer(C_RECON_1),
                "agreement_no": "ZF26110100000001", "account_no": PAYER_A,
                "channel": "01", "branch_no": BRANCH, "teller_no": "T00001",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{terminate}");
    assert_eq!(terminate["code"], "UNKNOWN_PAYEE", "{terminate}");
    // The water desk answers (PAYER_A is 张三's at the core, the name matches the company's).
    let (status, water) = fx
        .env
        .post(
            "/api/v1/agreements/sign",
            &sign(WATER_INSTANCE, &Kind::Water.customer(C_RECON_1)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{water}");
    assert_ne!(water["code"], "UNKNOWN_PAYEE", "{water}");
}

/// Spec 11: no batch withholding for the gas instance; a `[[withholding]]` naming it is refused
/// when the configuration is checked, before the hub starts anything.
#[test]
fn a_withholding_entry_for_gas_is_refused_at_config_load() {
    let mut config =
        hub::config::HubConfig::from_toml(include_str!("../../deploy/hub.example.toml"))
            .expect("example config");
    config.fixedlen.push(instance_config(Kind::Gas, 9302));
    config
        .withholding
        .push(hub::batch::schedule::WithholdingConfig {
            instance: GAS_INSTANCE.into(),
            dir: PathBuf::from("var/sftp/gas-zhongfang"),
            check_interval_ms: 30_000,
            serial_code: None,
        });
    let error = config.check_withholding().expect_err("gas has no batch");
    assert_eq!(error.code(), "CONFIG_WITHHOLDING");
    let text = error.to_string();
    assert!(text.contains(GAS_INSTANCE), "{text}");
    assert!(text.contains("不支持批量代扣"), "{text}");
    // The example's own water entry passes, and so does the config without the gas entry.
    config.withholding.pop();
    assert!(config.check_withholding().is_ok());
}

/// CustomerNo is AN 10 (spec 02) or AN 12 (spec 11): a longer one is a bad request before any
/// debit, not a debit that the encoder then refuses and the hub gives back.
async fn an_overlong_customer_number_is_refused_before_the_debit(k: Kind) {
    let fx = Fx::start().await;
    let too_long = format!("{}9", k.customer(C_PAY));
    let postings = fx.env.core.posting_count();
    let (status, answer) = fx
        .pay(
            k,
            &PayArgs::mobile("MBLONG1", &too_long, PAYER_A, k.due_fen()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "BAD_REQUEST", "{answer}");
    let (status, _) = fx.query(k, &too_long).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fx.env.core.posting_count(), postings, "nobody debited");
    assert_eq!(fx.env.payment_count().await, 0, "nothing journaled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_overlong_customer_number_is_refused_before_the_debit() {
    an_overlong_customer_number_is_refused_before_the_debit(Kind::Water).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_overlong_customer_number_is_refused_before_the_debit() {
    an_overlong_customer_number_is_refused_before_the_debit(Kind::Gas).await;
}

/// Spec 02: a 104 is only taken while the original's AcctDate is the company's current date
/// (else 022), and "022: ask 105 (same backoff): Status 1 → SUCCEEDED". A 102 at 23:49:50 times
/// out; its first 104 is read but never answered; the re-sent 104 arrives after midnight and gets
/// 022; the 105 says written off, so the payment stands and nobody's money moves back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_104_too_late_for_the_day_is_resolved_by_105_and_stands() {
    let k = Kind::Water;
    let date = business_date();
    let fx = Fx::start_at(at(date, 23, 49, 50)).await;
    let customer = k.customer(C_TIMEOUT);
    fx.arm_pay(k, &customer, WaterFault::AnswerLate(LATE_BY));
    fx.water.arm(WaterFaultRule {
        trade_code: "104".into(),
        customer_no: Some(customer.clone()),
        fault: WaterFault::CloseWithoutAnswer,
        times: 1,
    });
    let (answer, serial) = fx
        .pay_ok(
            k,
            &PayArgs::mobile("MB0022", &customer, PAYER_B, k.due_fen()),
        )
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    // The first 104 went out and got nothing back: the engine waits out its backoff.
    fx.env
        .wait_until(&serial, chrono::Duration::zero(), "a first 104", |row| {
            row.partner_reversal_serial.is_some() && row.attempts >= 1
        })
        .await;
    let next_day = date.checked_add_days(Days::new(1)).expect("next day");
    fx.env.clock.advance_to(at(next_day, 0, 10, 0));
    let row = fx.env.wait_state(&serial, PaymentState::Succeeded).await;
    assert_eq!(row.acct_date, Some(date), "the 105's AcctDate");
    let partner = fx.sim_payment(k, &serial).expect("written off");
    assert!(partner.written_off, "the company kept the payment");
    assert_eq!(fx.sim_due_fen(k, &customer), 0, "bills stay paid");
    fx.assert_money(k, PAYER_B, PAYER_B_OPENING_FEN - k.due_fen(), k.due_fen());
    let notes = fx.env.event_notes(&serial).await.join(" | ");
    assert!(notes.contains("too late for the partner's day"), "{notes}");
    assert!(notes.contains("partner status: written off"), "{notes}");
}
