//! The `hub` binary: `hub serve`, `hub demo`, `hub recon`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use codecs::clock::{parse_yyyymmdd, SystemClock};

#[derive(Parser)]
#[command(name = "hub", about = "中间业务平台 integration hub")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub: channel API, resolver, recovery of unfinished payments.
    Serve {
        #[arg(long, default_value = "hub.toml")]
        config: PathBuf,
    },
    /// A business day of traffic against the simulators, then T+1 reconciliation and its report.
    Demo {
        /// Output folder (journal, files, reports, summary.json).
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        /// Number of payments to drive.
        #[arg(long, default_value_t = 2400)]
        payments: usize,
        /// Business date (YYYYMMDD); default: today.
        #[arg(long)]
        date: Option<String>,
        /// Seed of the day's traffic and faults.
        #[arg(long, default_value_t = 20191203)]
        seed: u64,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// The operators' crypto tool: SM2 keys and signatures, SM3, SM4, partner MACs.
    Crypto {
        #[command(subcommand)]
        command: hub::crypto_cli::CryptoCommand,
    },
    /// Key management: maker-checker promotion of a link's next key, and the list.
    Keys {
        #[command(subcommand)]
        command: hub::keys::cli::KeysCommand,
    },
    /// Start the core and power simulators on the ports of a config (to try `hub serve`).
    Simulate {
        #[arg(long, default_value = "hub.toml")]
        config: PathBuf,
        /// Sample power customers per instance.
        #[arg(long, default_value_t = 200)]
        customers: usize,
    },
    /// Batch jobs run by operators or a scheduler.
    Batch {
        #[command(subcommand)]
        command: BatchCommand,
    },
    /// Reconcile one business date for every configured partner instance and settle.
    Recon {
        #[arg(long, default_value = "hub.toml")]
        config: PathBuf,
        /// YYYYMMDD
        #[arg(long)]
        date: String,
    },
}

#[derive(Subcommand)]
enum BatchCommand {
    /// County water batch withholding (批量代扣): reads in/DK<CompanyCode><date>.txt once its .ok
    /// flag exists, debits, writes out/DKR<CompanyCode><date>.txt and its flag. Safe to rerun.
    WaterWithhold {
        #[arg(long, default_value = "hub.toml")]
        config: PathBuf,
        /// The `[[fixedlen]]` instance, e.g. `water-xinhuang`.
        #[arg(long)]
        instance: String,
        /// The instance's SFTP folder (with `in/` and `out/`).
        #[arg(long)]
        dir: PathBuf,
        /// Batch date, YYYYMMDD.
        #[arg(long)]
        date: String,
    },
}

fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colour codes only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            init_logging("info");
            let config = match hub::config::HubConfig::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("配置错误 [{}]: {e}", e.code());
                    return ExitCode::from(2);
                }
            };
            let hub = match hub::app::start(&config, Arc::new(SystemClock)).await {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("启动失败: {e}");
                    return ExitCode::from(1);
                }
            };
            let scheme = |tls: bool| if tls { "https" } else { "http" };
            println!(
                "hub listening on {}://{} (channel API, OpenAPI at /openapi.json)",
                scheme(config.hub.tls.is_some()),
                hub.addr
            );
            match hub.admin_addr {
                Some(admin) => println!(
                    "admin console on {}://{}/admin",
                    scheme(config.hub.admin_tls.is_some()),
                    admin
                ),
                None => println!(
                    "admin console on {}://{}/admin",
                    scheme(config.hub.tls.is_some()),
                    hub.addr
                ),
            }
            let _ = tokio::signal::ctrl_c().await;
            hub.stop().await;
            ExitCode::SUCCESS
        }
        Command::Demo {
            out,
            payments,
            date,
            seed,
            quiet,
        } => {
            init_logging("error");
            let date = match date.as_deref().map(parse_yyyymmdd) {
                Some(None) => {
                    eprintln!("--date must be YYYYMMDD");
                    return ExitCode::from(2);
                }
                Some(Some(d)) => Some(d),
                None => None,
            };
            let options = hub::demo::DemoOptions {
                out,
                payments,
                date,
                seed,
                progress: !quiet,
            };
            match hub::demo::run(options).await {
                Ok(summary) if summary.unexplained_total() == 0 => ExitCode::SUCCESS,
                Ok(_) => {
                    eprintln!("demo: unexplained differences remain");
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("demo failed: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Crypto { command } => hub::crypto_cli::run(command),
        Command::Keys { command } => {
            init_logging("warn");
            hub::keys::cli::run(command, Arc::new(SystemClock)).await
        }
        Command::Simulate { config, customers } => {
            init_logging("warn");
            let config = match hub::config::HubConfig::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("配置错误 [{}]: {e}", e.code());
                    return ExitCode::from(2);
                }
            };
            match hub::simulate::run(&config, customers).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("模拟器启动失败 [SIMULATE_START]: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Batch {
            command:
                BatchCommand::WaterWithhold {
                    config,
                    instance,
                    dir,
                    date,
                },
        } => {
            init_logging("warn");
            let Some(date) = parse_yyyymmdd(&date) else {
                eprintln!("--date must be YYYYMMDD");
                return ExitCode::from(2);
            };
            let config = match hub::config::HubConfig::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("配置错误 [{}]: {e}", e.code());
                    return ExitCode::from(2);
                }
            };
            let Some(link) = config.fixedlen.iter().find(|f| f.instance == instance) else {
                eprintln!("配置错误 [BATCH_INSTANCE]: 未配置实例{instance}");
                return ExitCode::from(2);
            };
            // Spec 11: no batch withholding for a profile without it.
            match link.load_profile() {
                Ok(profile) if profile.supports_batch_withholding() => {}
                Ok(profile) => {
                    eprintln!(
                        "配置错误 [BATCH_INSTANCE]: 实例{instance}的协议配置{}不支持批量代扣",
                        profile.name
                    );
                    return ExitCode::from(2);
                }
                Err(e) => {
                    eprintln!("配置错误 [{}]: {e}", e.code());
                    return ExitCode::from(2);
                }
            }
            let clock: codecs::clock::SharedClock = Arc::new(SystemClock);
            let journal = match hub::journal::Journal::open(&config.hub.database_url).await {
                Ok(j) => j,
                Err(e) => {
                    eprintln!("流水库打开失败 [{}]: {e}", e.code());
                    return ExitCode::from(1);
                }
            };
            let core = hub::core_client::CoreClient::new(config.core.clone(), clock.clone());
            let mut job_config = hub::batch::WaterWithholdConfig::new(
                &link.instance,
                &link.company_code,
                &link.suspense_account,
                &dir,
            );
            job_config.node = config.engine.node;
            // The poller's serial code: a line resumed by hand keeps the serial it was sent with.
            job_config.serial_code = match config.batch_serial_code(&link.instance) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("配置错误 [{}]: {e}", e.code());
                    return ExitCode::from(2);
                }
            };
            let job = hub::batch::WaterWithholdJob::new(journal, core, clock, job_config);
            match job.run(date).await {
                Ok(hub::batch::RunOutcome::NotReady) => {
                    println!("代扣文件未到（无.ok标志），未处理");
                    ExitCode::SUCCESS
                }
                Ok(hub::batch::RunOutcome::Written(report)) => {
                    println!(
                        "批量结果 {} 已写出: {}",
                        report.file_result.code(),
                        report.result_path.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("批量代扣失败 [{}]: {e}", e.code());
                    ExitCode::from(1)
                }
            }
        }
        Command::Recon { config, date } => {
            init_logging("info");
            let Some(date) = parse_yyyymmdd(&date) else {
                eprintln!("--date must be YYYYMMDD");
                return ExitCode::from(2);
            };
            let config = match hub::config::HubConfig::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("配置错误 [{}]: {e}", e.code());
                    return ExitCode::from(2);
                }
            };
            match hub::recon_job::run_all(&config, date).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("对账失败: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
