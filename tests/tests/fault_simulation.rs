//! A seeded, replayable simulation of faults (in the spirit of TigerBeetle's simulator): for each
//! seed, a run of payments where every payment draws, from the seed alone, either no fault or one
//! or two of the faults the simulators can inject (power 1002/1003/1004, core 8002/8003/8004),
//! and sometimes a hub kill and restart in the middle. Whatever happened, invariants computed
//! independently of the hub (the core's ledger and its MBP daily file, the power simulator's
//! write-offs, a proxy that counts every 1002 the hub sends) must hold at the end.
//!
//! A failure prints the seed and the schedule it drew; replay one with
//! `FAULT_SEED=<seed> cargo test -p e2e-tests --test fault_simulation replay -- --nocapture`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e_tests::*;
use fixtures::core_sim::{CoreFault, FaultRule};
use fixtures::power_sim::{PowerFault, PowerFaultRule, PowerPaymentState};
use hub::config::HubConfig;
use hub::journal::PaymentRow;
use hub::state::{NextAction, PaymentState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SEEDS: [u64; 8] = [
    0x5EED_0001,
    0x5EED_0002,
    0xC0FF_EE00,
    0xDEAD_BEEF,
    42,
    7,
    20_261_203,
    0x0BAD_F00D,
];
const PAYMENTS_PER_SEED: usize = 40;
/// Past the hub's answer timeouts below, so that a late answer is a timeout.
const LATE: Duration = Duration::from_millis(350);
/// Real time the resolver gets to finish one payment.
const FINAL_LIMIT: Duration = Duration::from_secs(15);

/// SplitMix64: tiny, good enough, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let index = self.below(items.len() as u64) as usize;
        items.get(index).unwrap_or_else(|| panic!("empty choice"))
    }
}

#[derive(Clone, Debug)]
enum Fault {
    Power(&'static str, PowerFault),
    Core(&'static str, CoreFault),
}

fn power_fault(rng: &mut Rng) -> PowerFault {
    match rng.below(6) {
        0 => PowerFault::AnswerLate(LATE),
        1 => PowerFault::CloseMidFrame,
        2 => PowerFault::BadMac,
        3 => PowerFault::Busy,
        4 => PowerFault::BusyAfterProcessing,
        _ => PowerFault::CloseWithoutAnswer,
    }
}

fn core_fault(rng: &mut Rng) -> CoreFault {
    match rng.below(5) {
        0 => CoreFault::AnswerLate(LATE),
        1 => CoreFault::DropAfterProcessing,
        2 => CoreFault::DropBeforeProcessing,
        3 => CoreFault::SystemError,
        _ => CoreFault::SystemErrorAfterProcessing,
    }
}

/// What one payment draws from the seed.
#[derive(Clone, Debug)]
struct Plan {
    serial: String,
    channel: &'static str,
    customer_no: String,
    payer: &'static str,
    extra_fen: i64,
    faults: Vec<Fault>,
    /// Real milliseconds after the request before the hub is killed.
    kill_after_ms: Option<u64>,
}

fn draw(rng: &mut Rng, seed: u64, index: usize) -> Plan {
    let mut customers: Vec<String> = vec![
        ZHANG_SAN.into(),
        LI_SI.into(),
        WANG_WU.into(),
        ZHAO_LIU.into(),
        CLOSED_CUSTOMER.into(),
    ];
    customers.extend((1..=EXTRA_CUSTOMERS).map(extra_customer));
    let customer_no = rng.pick(&customers).clone();
    let payer = *rng.pick(&[PAYER_A, PAYER_B, PAYER_C]);
    let channel = *rng.pick(&["01", "02", "03", "04"]);
    let extra_fen = if rng.below(3) == 0 {
        1 + rng.below(5_000) as i64
    } else {
        0
    };
    let power_tx = |rng: &mut Rng| *rng.pick(&["1002", "1003", "1004"]);
    let core_tx = |rng: &mut Rng| *rng.pick(&["8002", "8003", "8004"]);
    let faults = match rng.below(10) {
        0..=2 => vec![],
        3..=5 => vec![Fault::Power(power_tx(rng), power_fault(rng))],
        6..=7 => vec![Fault::Core(core_tx(rng), core_fault(rng))],
        _ => match rng.below(3) {
            0 => vec![
                Fault::Power("1002", power_fault(rng)),
                Fault::Power("1003", power_fault(rng)),
            ],
            1 => vec![
                Fault::Core("8002", core_fault(rng)),
                Fault::Core(
                    if rng.below(2) == 0 { "8003" } else { "8004" },
                    core_fault(rng),
                ),
            ],
            _ => vec![
                Fault::Power("1002", power_fault(rng)),
                Fault::Core("8003", core_fault(rng)),
            ],
        },
    };
    let kill_after_ms = (rng.below(7) == 0).then(|| rng.below(250));
    Plan {
        serial: format!("F{seed:X}N{index:03}"),
        channel,
        customer_no,
        payer,
        extra_fen,
        faults,
        kill_after_ms,
    }
}

/// Prints the seed and the schedule when the test panics, so that the run can be replayed.
struct Replay {
    seed: u64,
    log: Vec<String>,
}

impl Drop for Replay {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n==== fault simulation FAILED with seed {} (replay: FAULT_SEED={} cargo test -p e2e-tests --test fault_simulation replay -- --nocapture) ====",
                self.seed, self.seed
            );
            for line in &self.log {
                eprintln!("  {line}");
            }
        }
    }
}

/// TxCode and BankSerial of every request the hub sent to the power company.
type Sent = Arc<Mutex<Vec<(String, String)>>>;

/// A transparent proxy between the hub and the power simulator that notes every request.
async fn counting_proxy(target: std::net::SocketAddr) -> (u16, Sent) {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("proxy binds");
    let port = listener.local_addr().expect("proxy addr").port();
    let sent: Sent = Arc::default();
    let log = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut from_hub, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut header = [0u8; 6];
                if from_hub.read_exact(&mut header).await.is_err() {
                    return;
                }
                let length: usize = std::str::from_utf8(&header)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length.min(4096)];
                if from_hub.read_exact(&mut body).await.is_err() {
                    return;
                }
                let tx_code = String::from_utf8_lossy(body.get(0..4).unwrap_or_default());
                let serial = String::from_utf8_lossy(body.get(40..60).unwrap_or_default());
                if let Ok(mut log) = log.lock() {
                    log.push((tx_code.into_owned(), serial.trim_end().to_string()));
                }
                let Ok(mut to_power) = TcpStream::connect(target).await else {
                    return;
                };
                if to_power.write_all(&header).await.is_err()
                    || to_power.write_all(&body).await.is_err()
                {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut from_hub, &mut to_power).await;
            });
        }
    });
    (port, sent)
}

fn arm(env: &Env, plan: &Plan) {
    for fault in &plan.faults {
        match fault {
            Fault::Power(tx_code, fault) => env.power.arm(PowerFaultRule {
                tx_code: (*tx_code).into(),
                // 1004 carries no CustomerNo: a rule with one would never hit it.
                customer_no: (*tx_code != "1004").then(|| plan.customer_no.clone()),
                fault: fault.clone(),
                times: 1,
            }),
            Fault::Core(tran_code, fault) => env.core.arm(FaultRule {
                tran_code: (*tran_code).into(),
                debit_acct: Some(plan.payer.into()),
                fault: fault.clone(),
                times: 1,
            }),
        }
    }
}

/// Waits, bounded, for a final state with nothing pending, moving the clock 1 s a look.
async fn wait_final(env: &Env, serial: &str) -> Result<PaymentRow, String> {
    let deadline = Instant::now() + FINAL_LIMIT;
    loop {
        let row = env.journal.get(serial).await.map_err(|e| e.to_string())?;
        if let Some(row) = &row {
            if row.state.is_final() && row.next_action == NextAction::None {
                return Ok(row.clone());
            }
        }
        if Instant::now() >= deadline {
            let notes = env.event_notes(serial).await;
            return Err(format!(
                "{serial} not final within {FINAL_LIMIT:?}: {:?} events {notes:?}",
                row.map(|r| (r.state, r.next_action, r.last_error))
            ));
        }
        env.clock.advance(chrono::Duration::seconds(1));
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The payer's net debit per hub serial, read from the core's MBP files of every CoreDate from
/// `first` to the current one: an S line counts its amount, an R line (reversed the same CoreDate)
/// nothing, and a V line (a reversal on a later CoreDate) takes its original's amount back. Also
/// returns the debit account of each hub serial's posting.
fn core_net_debits(env: &Env, first: chrono::NaiveDate) -> HashMap<String, (i64, String)> {
    let dir = env.dir.path().join("core-files");
    std::fs::create_dir_all(&dir).expect("core file dir");
    let mut lines: Vec<Vec<String>> = Vec::new();
    let mut date = first;
    while date <= env.core.core_date() {
        let path = env
            .core
            .write_daily_file(date, &dir)
            .expect("core file written");
        let bytes = std::fs::read(path).expect("core file read");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            let fields: Vec<String> = line.split('|').map(str::to_string).collect();
            if fields.first().map(String::as_str) == Some("TOTAL") {
                continue;
            }
            assert_eq!(fields.len(), 10, "core file line {line}");
            lines.push(fields);
        }
        date = date.succ_opt().expect("next date");
    }
    let fen = |text: &str| {
        codecs::Money::parse_yuan(text)
            .unwrap_or_else(|e| panic!("core file amount {text}: {e}"))
            .fen()
    };
    let mut by_core_seq: HashMap<String, String> = HashMap::new();
    let mut net: HashMap<String, (i64, String)> = HashMap::new();
    for f in lines.iter().filter(|f| f[7] == "S" || f[7] == "R") {
        let amount = if f[7] == "S" { fen(&f[6]) } else { 0 };
        let previous = net.insert(f[2].clone(), (amount, f[4].clone()));
        assert!(
            previous.is_none(),
            "two core postings for hub serial {}",
            f[2]
        );
        by_core_seq.insert(f[1].clone(), f[2].clone());
    }
    for f in lines.iter().filter(|f| f[7] == "V") {
        let original = by_core_seq
            .get(&f[8])
            .unwrap_or_else(|| panic!("V line of an unknown original: {f:?}"));
        let entry = net.get_mut(original).expect("original posting");
        assert_eq!(
            f[5], entry.1,
            "a V line credits the original's debit account"
        );
        entry.0 -= fen(&f[6]);
    }
    let odd = lines
        .iter()
        .find(|f| !["S", "R", "V"].contains(&f[7].as_str()));
    assert!(
        odd.is_none(),
        "core file line with an unknown status {odd:?}"
    );
    net
}

/// The harness's hub config with the power company reached through the counting proxy.
fn proxied(env: &Env, proxy_port: u16) -> HubConfig {
    let mut config = env.hub_config();
    for link in &mut config.chendian {
        link.port = proxy_port;
    }
    config
}

async fn run_seed(seed: u64, payments: usize) {
    let mut replay = Replay {
        seed,
        log: Vec::new(),
    };
    let mut rng = Rng(seed);
    // Where in the day the run starts: mid-morning, or just before the core's 23:00 date switch,
    // the power company's 23:30 day-end, or the hub's midnight; the clock then drifts on.
    let starts = [(10, 0), (22, 58), (23, 28), (23, 58)];
    let (hour, minute) = starts[(seed % 4) as usize];
    replay.log.push(format!("start {hour:02}:{minute:02}"));
    let options = EnvOptions {
        start: at(business_date(), hour, minute, 0),
        partner_answer_timeout_ms: 150,
        core_answer_timeout_ms: 150,
        ..EnvOptions::default()
    };
    let mut env = Env::start_with(options).await;
    let (proxy_port, sent) = counting_proxy(env.power.addr).await;
    env.stop_hub().await;
    env.start_hub_with_config(proxied(&env, proxy_port)).await;
    let first_core_date = env.core.core_date();
    // Channel serial -> (hub serial if journaled, channel answer if any).
    let mut outcomes: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();

    for index in 0..payments {
        let plan = draw(&mut rng, seed, index);
        let due_fen = power_due_fen(&env, &plan.customer_no);
        let amount_fen = (due_fen + plan.extra_fen).max(1);
        replay.log.push(format!(
            "#{index} {} ch{} cust {} payer {} amount {amount_fen} due {due_fen} faults {:?} kill {:?}",
            plan.serial, plan.channel, plan.customer_no, plan.payer, plan.faults, plan.kill_after_ms
        ));
        env.clock
            .advance(chrono::Duration::seconds(rng.below(20) as i64));
        let channel_date = env.today();
        arm(&env, &plan);
        let args = PayArgs {
            channel: plan.channel,
            serial: &plan.serial,
            customer_no: &plan.customer_no,
            payer: plan.payer,
            amount_fen,
            total_due_fen: due_fen,
        };
        let mut channel_status = None;
        if let Some(after_ms) = plan.kill_after_ms {
            let http = env.http.clone();
            let url = format!("{}/api/v1/payments", env.base_url());
            let mut body = env.pay_body(&args);
            body["channel_date"] = channel_date.clone().into();
            let request = tokio::spawn(async move {
                let _ = http.post(url).json(&body).send().await;
            });
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            env.kill_hub();
            request.abort();
            // The hub stays down a while (on the business clock) before it is restarted.
            env.clock
                .advance(chrono::Duration::seconds(rng.below(180) as i64));
            env.start_hub_with_config(proxied(&env, proxy_port)).await;
        } else {
            let mut body = env.pay_body(&args);
            body["channel_date"] = channel_date.clone().into();
            let (status, answer) = env.post("/api/v1/payments", &body).await;
            replay.log.push(format!("   -> {status} {answer}"));
            if status == StatusCode::OK {
                let s = answer["status"].as_str().unwrap_or_default().to_string();
                assert!(
                    ["SUCCEEDED", "FAILED", "IN_DOUBT"].contains(&s.as_str()),
                    "seed {seed}: untyped channel answer {answer}"
                );
                channel_status = Some(s);
            } else {
                // A typed refusal: a code and a Chinese message.
                assert!(
                    answer["code"].is_string()
                        && is_chinese(answer["message"].as_str().unwrap_or_default()),
                    "seed {seed}: untyped refusal {status} {answer}"
                );
            }
        }
        let row = env
            .journal
            .by_channel_key(plan.channel, &channel_date, &plan.serial)
            .await
            .expect("journal read");
        let hub_serial = row.map(|r| r.hub_serial);
        if let Some(serial) = &hub_serial {
            match wait_final(&env, serial).await {
                Ok(row) => replay
                    .log
                    .push(format!("   final {serial} {:?}", row.state)),
                Err(e) => panic!("seed {seed}: {e}"),
            }
        } else {
            replay.log.push("   never journaled".into());
        }
        outcomes.insert(plan.serial.clone(), (hub_serial, channel_status));
    }

    // Late answers still on their way must change nothing.
    tokio::time::sleep(LATE + Duration::from_millis(200)).await;
    env.clock.advance(chrono::Duration::seconds(30));
    tokio::time::sleep(Duration::from_millis(200)).await;

    check_invariants(&env, seed, first_core_date, &outcomes, &sent).await;
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for (hub_serial, _) in outcomes.values() {
        let state = match hub_serial {
            Some(serial) => env.row(serial).await.state.as_str().to_string(),
            None => "NOT_JOURNALED".into(),
        };
        *by_state.entry(state).or_default() += 1;
    }
    let kills = replay
        .log
        .iter()
        .filter(|l| l.contains("kill Some"))
        .count();
    let mut too_late = 0;
    for (hub_serial, _) in outcomes.values() {
        if let Some(serial) = hub_serial {
            too_late += env
                .event_notes(serial)
                .await
                .iter()
                .filter(|n| n.contains("2003"))
                .count();
        }
    }
    eprintln!(
        "seed {seed}: {} to {}, {by_state:?}, {kills} kills, {too_late} reversals too late",
        replay.log.first().map(String::as_str).unwrap_or_default(),
        codecs::clock::Clock::now(env.clock.as_ref())
    );
    drop(replay);
}

async fn check_invariants(
    env: &Env,
    seed: u64,
    first_core_date: chrono::NaiveDate,
    outcomes: &BTreeMap<String, (Option<String>, Option<String>)>,
    sent: &Sent,
) {
    assert_eq!(
        env.ledger_total_fen(),
        PAYER_A_OPENING_FEN + PAYER_B_OPENING_FEN + PAYER_C_OPENING_FEN,
        "seed {seed}: the core ledger's total moved"
    );
    let core_lines = core_net_debits(env, first_core_date);
    let power = env.power.payments();
    let sent: Vec<(String, String)> = sent.lock().map(|s| s.clone()).unwrap_or_default();
    let mut pays_sent: HashMap<&str, usize> = HashMap::new();
    for (tx, serial) in &sent {
        if tx == "1002" {
            *pays_sent.entry(serial.as_str()).or_default() += 1;
        }
    }
    let mut succeeded_fen = 0;
    let mut journaled = Vec::new();
    let mut debited_by_payer: HashMap<String, i64> = HashMap::new();
    for (channel_serial, (hub_serial, channel_status)) in outcomes {
        let Some(hub_serial) = hub_serial else {
            continue;
        };
        journaled.push(hub_serial.clone());
        let row = env.row(hub_serial).await;
        let what = format!(
            "seed {seed}: {channel_serial}/{hub_serial} ({:?})",
            row.state
        );
        assert!(
            row.state.is_final() && row.next_action == NextAction::None,
            "{what}: not final after the late answers, {:?}",
            row.next_action
        );
        let written_off = power
            .iter()
            .find(|p| p.bank_serial == *hub_serial)
            .map(|p| (p.state, p.amount.fen()));
        let net_debit = match core_lines.get(hub_serial) {
            Some((amount, payer)) => {
                assert_eq!(payer, &row.payer_account, "{what}: debit account");
                *amount
            }
            None => 0,
        };
        *debited_by_payer
            .entry(row.payer_account.clone())
            .or_default() += net_debit;
        let times_sent = pays_sent.get(hub_serial.as_str()).copied().unwrap_or(0);
        assert!(times_sent <= 1, "{what}: 1002 sent {times_sent} times");
        match row.state {
            PaymentState::Succeeded => {
                succeeded_fen += row.amount.fen();
                assert_eq!(net_debit, row.amount.fen(), "{what}: payer debited once");
                assert_eq!(
                    written_off,
                    Some((PowerPaymentState::WrittenOff, row.amount.fen())),
                    "{what}: the power company must hold the write-off"
                );
            }
            PaymentState::Reversed | PaymentState::CoreFailed => {
                assert_eq!(net_debit, 0, "{what}: the payer must be whole");
                assert!(
                    matches!(written_off, None | Some((PowerPaymentState::Reversed, _))),
                    "{what}: the power company holds a write-off: {written_off:?}"
                );
                if row.state == PaymentState::CoreFailed {
                    assert_eq!(times_sent, 0, "{what}: 1002 sent without a debit");
                }
            }
            other => panic!("{what}: not a final state {other:?}"),
        }
        match channel_status.as_deref() {
            Some("SUCCEEDED") => assert_eq!(
                row.state,
                PaymentState::Succeeded,
                "{what}: the channel was told SUCCEEDED"
            ),
            Some("FAILED") => assert_ne!(
                row.state,
                PaymentState::Succeeded,
                "{what}: the channel was told FAILED"
            ),
            _ => {}
        }
    }
    // No money movement the journal does not know of.
    for (hub_serial, (net, _)) in &core_lines {
        assert!(
            journaled.contains(hub_serial) || *net == 0,
            "seed {seed}: a standing core posting {hub_serial} with no payment"
        );
    }
    for payment in &power {
        assert!(
            journaled.contains(&payment.bank_serial)
                || payment.state == PowerPaymentState::Reversed,
            "seed {seed}: a write-off {} with no payment",
            payment.bank_serial
        );
    }
    for (payer, opening) in [
        (PAYER_A, PAYER_A_OPENING_FEN),
        (PAYER_B, PAYER_B_OPENING_FEN),
        (PAYER_C, PAYER_C_OPENING_FEN),
    ] {
        let debited = debited_by_payer.get(payer).copied().unwrap_or(0);
        assert_eq!(
            env.balance_fen(payer),
            opening - debited,
            "seed {seed}: payer {payer} balance against the core file"
        );
    }
    assert_eq!(
        env.balance_fen(SUSPENSE),
        succeeded_fen,
        "seed {seed}: suspense holds exactly the SUCCEEDED payments"
    );
}

macro_rules! seeded {
    ($($name:ident => $index:expr),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run_seed(SEEDS[$index], PAYMENTS_PER_SEED).await;
            }
        )*
    };
}

seeded! {
    seed_0 => 0,
    seed_1 => 1,
    seed_2 => 2,
    seed_3 => 3,
    seed_4 => 4,
    seed_5 => 5,
    seed_6 => 6,
    seed_7 => 7,
}

/// Replays one seed given in `FAULT_SEED` (decimal or 0x-hex); without it, does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay() {
    let Ok(text) = std::env::var("FAULT_SEED") else {
        return;
    };
    let seed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .unwrap_or_else(|e| panic!("FAULT_SEED {text}: {e}"));
    let payments = std::env::var("FAULT_PAYMENTS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(PAYMENTS_PER_SEED);
    run_seed(seed, payments).await;
}
