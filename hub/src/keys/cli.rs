//! `hub keys`: maker-checker promotion of a link's next key, and the list operators check.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use codecs::clock::SharedClock;

use super::{KeyError, KeyStore, LinkStatus};
use crate::config::HubConfig;
use crate::journal::Journal;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Request (maker) that a link's next key become current.
    #[command(name = "request-promotion")]
    RequestPromotion {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        link: String,
        #[arg(long)]
        maker: String,
    },
    /// Approve (checker, not the maker) the pending promotion of a link.
    Approve {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        link: String,
        #[arg(long)]
        checker: String,
    },
    /// Each link's current and next key fingerprints and pending requests.
    List {
        #[arg(long)]
        config: PathBuf,
    },
}

async fn open_store(config_path: &Path, clock: SharedClock) -> Result<KeyStore, String> {
    let config =
        HubConfig::load(config_path).map_err(|e| format!("配置错误 [{}]: {e}", e.code()))?;
    let journal = Journal::open(&config.hub.database_url)
        .await
        .map_err(|e| format!("数据库错误 [{}]: {e}", e.code()))?;
    Ok(KeyStore::new(
        config.keys.clone(),
        journal.pool().clone(),
        clock,
    ))
}

fn key_error(error: &KeyError) -> String {
    format!("{} [{}]: {error}", error.message_zh(), error.code())
}

/// The text `hub keys list` prints.
pub fn render_list(links: &[LinkStatus]) -> String {
    let mut out = String::new();
    if links.is_empty() {
        out.push_str("（未配置链路密钥 no links under [keys.links]）\n");
    }
    for status in links {
        let _ = writeln!(
            out,
            "{}\tkind={:?}\tcurrent={}\tnext={}",
            status.link,
            status.kind,
            status.current_fingerprint,
            status.next_fingerprint.as_deref().unwrap_or("-"),
        );
        if let Some(pending) = &status.pending {
            let _ = writeln!(
                out,
                "\t待复核 pending #{}: next={} maker={} requested_at={}",
                pending.id, pending.next_fingerprint, pending.maker, pending.requested_at
            );
        }
    }
    out
}

/// Runs one `hub keys` command; prints the result or the error.
pub async fn run(command: KeysCommand, clock: SharedClock) -> ExitCode {
    match execute(command, clock).await {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(text) => {
            eprintln!("错误: {text}");
            ExitCode::from(2)
        }
    }
}

/// One command without printing.
pub async fn execute(command: KeysCommand, clock: SharedClock) -> Result<String, String> {
    match command {
        KeysCommand::RequestPromotion {
            config,
            link,
            maker,
        } => {
            let store = open_store(&config, clock).await?;
            let request = store
                .request_promotion(&link, &maker)
                .await
                .map_err(|e| key_error(&e))?;
            Ok(format!(
                "已提交密钥启用申请 #{}: link={} next={} maker={}，待另一操作员复核\n",
                request.id, request.link, request.next_fingerprint, request.maker
            ))
        }
        KeysCommand::Approve {
            config,
            link,
            checker,
        } => {
            let store = open_store(&config, clock).await?;
            let approved = store
                .approve(&link, &checker)
                .await
                .map_err(|e| key_error(&e))?;
            Ok(format!(
                "已复核 #{}: link={} 当前密钥 current={} maker={} checker={}\n",
                approved.id,
                approved.link,
                approved.next_fingerprint,
                approved.maker,
                approved.checker.as_deref().unwrap_or_default()
            ))
        }
        KeysCommand::List { config } => {
            let store = open_store(&config, clock).await?;
            let links = store.list().await.map_err(|e| key_error(&e))?;
            Ok(render_list(&links))
        }
    }
}
