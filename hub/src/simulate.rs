//! `hub simulate`: the core and 郴电国际 simulators on the ports of a hub configuration, with
//! sample accounts and customers, so that `hub serve` can be tried end to end on one machine
//! (operators' training, a new engineer's first afternoon). Never part of production.

use std::sync::Arc;

use codecs::clock::{SharedClock, SystemClock};
use codecs::Money;
use fixtures::core_sim::{self, AccountFixture, AcctClass, AcctStatus, CoreSimConfig};
use fixtures::power_sim::{self, PowerSimConfig, PowerSimOptions};

use crate::config::HubConfig;

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("sample accounts: {0}")]
    Accounts(String),
    #[error("{link}: {reason}")]
    Start { link: String, reason: String },
}

fn internal(acct_no: &str, name: &str) -> AccountFixture {
    AccountFixture {
        acct_no: acct_no.to_string(),
        name: name.to_string(),
        class: AcctClass::I,
        status: AcctStatus::N,
        balance: Money::ZERO,
        open_branch: "430100".to_string(),
        id_type: None,
        id_no: None,
        interest_bearing: false,
    }
}

/// Starts the simulators and serves until Ctrl-C.
pub async fn run(config: &HubConfig, customers: usize) -> Result<(), SimulateError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let mut accounts = core_sim::load_accounts(core_sim::SAMPLE_ACCOUNTS_PSV)
        .map_err(|e| SimulateError::Accounts(e.to_string()))?;
    for c in &config.chendian {
        for (acct, name) in [
            (&c.suspense_account, "代收电费过渡户"),
            (&c.settlement_account, "郴电国际结算户"),
        ] {
            if !accounts.iter().any(|a| &a.acct_no == acct) {
                accounts.push(internal(acct, name));
            }
        }
    }
    for c in &config.cabletv {
        for (acct, name) in [
            (&c.suspense_account, "代收收视费过渡户"),
            (&c.settlement_account, "有线电视结算户"),
        ] {
            if !accounts.iter().any(|a| &a.acct_no == acct) {
                accounts.push(internal(acct, name));
            }
        }
    }
    for c in &config.fixedlen {
        for (acct, name) in [
            (&c.suspense_account, "代收业务过渡户"),
            (&c.settlement_account, "收费单位结算户"),
        ] {
            if !accounts.iter().any(|a| &a.acct_no == acct) {
                accounts.push(internal(acct, name));
            }
        }
    }
    let core_address = format!("{}:{}", config.core.host, config.core.port);
    let core = core_sim::start_on(
        CoreSimConfig {
            accounts: accounts.clone(),
            ..CoreSimConfig::default()
        },
        clock.clone(),
        &core_address,
    )
    .await
    .map_err(|e| SimulateError::Start {
        link: format!("core {core_address}"),
        reason: e.to_string(),
    })?;
    println!("核心模拟器 core simulator on {}", core.addr);
    let mut powers = Vec::new();
    for c in &config.chendian {
        let key = codecs::mac::parse_key_hex(&c.mac_key_hex).map_err(|e| SimulateError::Start {
            link: c.bank_code.clone(),
            reason: e.to_string(),
        })?;
        let sample = power_sim::sample_customers(20191203, customers);
        let address = format!("{}:{}", c.host, c.port);
        let power = power_sim::start_on(
            PowerSimConfig {
                bank_code: c.bank_code.clone(),
                mac_key: key,
                day_end: chrono::NaiveTime::from_hms_opt(23, 30, 0)
                    .unwrap_or(chrono::NaiveTime::MIN),
                customers: sample.clone(),
            },
            clock.clone(),
            PowerSimOptions::default(),
            &address,
        )
        .await
        .map_err(|e| SimulateError::Start {
            link: format!("{} {address}", c.bank_code),
            reason: e.to_string(),
        })?;
        println!(
            "郴电国际模拟器 power simulator {} on {}",
            c.bank_code, power.addr
        );
        println!("  customers to try (户号):");
        for customer in sample.iter().filter(|c| !c.closed).take(5) {
            let due: Money = customer
                .arrears
                .iter()
                .map(|a| a.amount.fen() + a.penalty.fen())
                .map(Money::from_fen)
                .sum();
            println!("    {}  due {} 元", customer.customer_no, due.to_yuan());
        }
        powers.push(power);
    }
    // Profile-driven partners: the simulator is the one named like the partner's profile.
    let mut others = Vec::new();
    for c in &config.fixedlen {
        let profile = c.load_profile().map_err(|e| SimulateError::Start {
            link: c.instance.clone(),
            reason: e.to_string(),
        })?;
        let key = codecs::mac::parse_key_hex(&c.mac_key_hex).map_err(|e| SimulateError::Start {
            link: c.instance.clone(),
            reason: e.to_string(),
        })?;
        let sim = fixtures::sims::start_on(
            &profile.name,
            &c.company_code,
            key,
            20191203,
            customers,
            clock.clone(),
            &format!("{}:{}", c.host, c.port),
        )
        .await
        .map_err(|e| SimulateError::Start {
            link: c.instance.clone(),
            reason: e.to_string(),
        })?;
        println!(
            "{} 模拟器 simulator {} on {}",
            profile.name,
            c.instance,
            sim.addr()
        );
        println!(
            "  customers to try (户号): {}",
            sim.payable_customers()
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        );
        others.push(sim);
    }
    // Cable TV: the sample subscribers (张三 of the spec's worked example among them).
    for c in &config.cabletv {
        let key = c.validate().map_err(|e| SimulateError::Start {
            link: c.bank_code.clone(),
            reason: e.to_string(),
        })?;
        let address = c.addr();
        let mut sample = fixtures::cabletv_sim::demo_config(key, clock.today(), customers);
        sample.bank_code = c.bank_code.clone();
        let sim = fixtures::cabletv_sim::CableBillSim::new(
            fixtures::cabletv_sim::start_on(&address, sample, clock.clone())
                .await
                .map_err(|e| SimulateError::Start {
                    link: format!("{} {address}", c.bank_code),
                    reason: e.to_string(),
                })?,
        );
        println!(
            "有线电视模拟器 cable TV simulator {} on {}",
            c.bank_code,
            fixtures::sims::BillSim::addr(&sim)
        );
        println!("  customers to try (用户号, package_code, months):");
        for customer in fixtures::sims::BillSim::payable_customers(&sim)
            .iter()
            .take(5)
        {
            let fields = fixtures::sims::BillSim::pay_fields(&sim, customer);
            println!(
                "    {customer}  {} {}",
                fields.get("package_code").map_or("", String::as_str),
                fields.get("months").map_or("", String::as_str)
            );
        }
        others.push(Box::new(sim));
    }
    println!("  payer accounts to try (付款账号):");
    for a in accounts.iter().filter(|a| a.class == AcctClass::P).take(4) {
        println!(
            "    {}  {:?} {} 元",
            a.acct_no,
            a.status,
            a.balance.to_yuan()
        );
    }
    println!("Ctrl-C stops the simulators.");
    let _ = tokio::signal::ctrl_c().await;
    core.shutdown();
    for p in powers {
        p.shutdown();
    }
    for sim in others {
        sim.shutdown();
    }
    Ok(())
}
