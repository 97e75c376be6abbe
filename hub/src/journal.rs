//! The journal: durable record of every payment and every state change, on sqlx (SQLite by
//! default). A state change is a compare-and-set on (state, next_action) so that two workers, or a
//! late answer and a resolver, can never both move the same payment; each change writes an event row
//! in the same database transaction.

use std::str::FromStr;

use adapters::spi::PayFields;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use codecs::clock::{parse_yyyymmdd, yyyymmdd};
use codecs::Money;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::state::{NextAction, PaymentState};

/// Migrations, in order. A small embedded runner instead of `sqlx::migrate!` keeps sqlx's
/// proc-macro crates out of the build; the table records what ran.
/// The columns of `payments` a [`PaymentRow`] is read from, named: a `SELECT *` prepared before a
/// migration added a column would be re-prepared by SQLite with more columns than sqlx expects.
macro_rules! payment_columns {
    () => {
        "hub_serial, channel, channel_date, channel_serial, request_hash, payee, instance, customer_no, payer_account, amount_fen, total_due_fen, branch_no, teller_no, tx_date, tx_time, state, next_action, attempts, next_attempt_at, core_seq_no, core_date, reversal_seq_no, reversal_tran_date, reversal_core_seq_no, reversal_core_date, reversal_reason, partner_reversal_serial, partner_reversal_date, partner_serial, acct_date, prepaid_fen, last_error, first_answer, created_at, updated_at, fields, partner_reversal_time"
    };
}

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_journal.sql")),
    (2, include_str!("../migrations/0002_keys.sql")),
    (3, include_str!("../migrations/0003_tobacco.sql")),
    (4, include_str!("../migrations/0004_batch.sql")),
    (5, include_str!("../migrations/0005_payment_fields.sql")),
    (6, include_str!("../migrations/0006_reversal_time.sql")),
];

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("no hub serial of {width} characters is left for {day}")]
    SerialsExhausted { day: String, width: usize },
    #[error("cannot open the journal {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("journal row {serial} has an unreadable column {column}: {value}")]
    Corrupt {
        serial: String,
        column: &'static str,
        value: String,
    },
}

impl JournalError {
    pub fn code(&self) -> &'static str {
        match self {
            JournalError::Database(_) => "JOURNAL_DATABASE",
            JournalError::Open { .. } => "JOURNAL_OPEN",
            JournalError::SerialsExhausted { .. } => "JOURNAL_SERIALS_EXHAUSTED",
            JournalError::Corrupt { .. } => "JOURNAL_CORRUPT",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Journal {
    pool: SqlitePool,
}

/// What the engine knows when it accepts a payment.
#[derive(Clone, Debug)]
pub struct NewPayment {
    pub hub_serial: String,
    pub channel: String,
    pub channel_date: String,
    pub channel_serial: String,
    pub request_hash: String,
    pub payee: String,
    pub instance: String,
    pub customer_no: String,
    pub payer_account: String,
    pub amount: Money,
    pub total_due: Money,
    pub branch_no: String,
    pub teller_no: String,
    pub tx_date: NaiveDate,
    pub tx_time: String,
    /// Partner-specific elements ([`adapters::spi::PayFields`]).
    pub fields: PayFields,
    pub now: NaiveDateTime,
}

#[derive(Clone, Debug)]
pub struct PaymentRow {
    pub hub_serial: String,
    pub channel: String,
    pub channel_date: String,
    pub channel_serial: String,
    pub request_hash: String,
    pub payee: String,
    pub instance: String,
    pub customer_no: String,
    pub payer_account: String,
    pub amount: Money,
    pub total_due: Money,
    pub branch_no: String,
    pub teller_no: String,
    pub tx_date: NaiveDate,
    pub tx_time: String,
    pub state: PaymentState,
    pub next_action: NextAction,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub core_seq_no: Option<String>,
    pub core_date: Option<NaiveDate>,
    pub reversal_seq_no: Option<String>,
    pub reversal_tran_date: Option<NaiveDate>,
    pub reversal_core_seq_no: Option<String>,
    pub reversal_core_date: Option<NaiveDate>,
    pub reversal_reason: Option<String>,
    pub partner_reversal_serial: Option<String>,
    pub partner_reversal_date: Option<NaiveDate>,
    /// The time the partner reversal's first frame carried: a re-send is the same frame.
    pub partner_reversal_time: Option<NaiveTime>,
    pub partner_serial: Option<String>,
    pub acct_date: Option<NaiveDate>,
    pub prepaid: Option<Money>,
    pub last_error: Option<String>,
    pub first_answer: Option<String>,
    pub fields: PayFields,
}

/// A state change and the facts learnt with it. `None` leaves a column as it is.
#[derive(Clone, Debug, Default)]
pub struct Change {
    pub state: Option<PaymentState>,
    pub next_action: Option<NextAction>,
    /// `Some(None)` clears the schedule.
    pub next_attempt_at: Option<Option<NaiveDateTime>>,
    pub bump_attempts: bool,
    pub reset_attempts: bool,
    pub core_seq_no: Option<String>,
    pub core_date: Option<NaiveDate>,
    pub reversal_seq_no: Option<String>,
    pub reversal_tran_date: Option<NaiveDate>,
    pub reversal_core_seq_no: Option<String>,
    pub reversal_core_date: Option<NaiveDate>,
    pub reversal_reason: Option<String>,
    pub partner_reversal_serial: Option<String>,
    pub partner_reversal_date: Option<NaiveDate>,
    pub partner_reversal_time: Option<NaiveTime>,
    pub partner_serial: Option<String>,
    pub acct_date: Option<NaiveDate>,
    pub prepaid: Option<Money>,
    pub last_error: Option<String>,
    /// Forgets the partner reversal's serial, so the next attempt journals a new one (partners
    /// that take a re-sent reversal or cancel only under a new serial).
    pub clear_partner_reversal_serial: bool,
    pub note: String,
}

pub enum Inserted {
    New,
    /// The channel key exists already: the first row is returned untouched.
    Existing(Box<PaymentRow>),
}

/// Fields are kept as a JSON object of strings; a BTreeMap keeps its text canonical.
fn fields_json(fields: &PayFields) -> String {
    serde_json::to_string(fields).unwrap_or_else(|_| "{}".to_string())
}

fn parse_fields(serial: &str, text: String) -> Result<PayFields, JournalError> {
    serde_json::from_str(&text).map_err(|_| JournalError::Corrupt {
        serial: serial.to_string(),
        column: "fields",
        value: text,
    })
}

fn ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

impl Journal {
    /// Opens (creating when missing) the journal and runs the migrations.
    pub async fn open(url: &str) -> Result<Journal, JournalError> {
        // A fresh installation has no folder for the journal yet: make it, so that the first
        // start does not fail on a missing directory.
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            if !path.is_empty() && path != ":memory:" {
                if let Some(parent) = std::path::Path::new(path)
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(parent).map_err(|source| JournalError::Open {
                        url: url.to_string(),
                        reason: source.to_string(),
                    })?;
                }
            }
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let connect = || async {
            SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options.clone())
                .await
                .map_err(|e| JournalError::Open {
                    url: url.to_string(),
                    reason: e.to_string(),
                })
        };
        let journal = Journal {
            pool: connect().await?,
        };
        // An in-memory database lives only as long as its pool: keep that one.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if journal.migrate().await? && !in_memory {
            // A connection opened while the migrations ran may keep the old schema until its
            // next read; sqlx then caches a `SELECT *` with the old column count and panics on
            // the first row. Fresh connections see only the migrated schema.
            journal.pool.close().await;
            return Ok(Journal {
                pool: connect().await?,
            });
        }
        Ok(journal)
    }

    /// Runs the migrations not yet run; true when any ran.
    async fn migrate(&self) -> Result<bool, JournalError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
            .execute(&self.pool)
            .await?;
        let mut ran = false;
        for (version, sql) in MIGRATIONS {
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?;
            if done.is_some() {
                continue;
            }
            let mut tx = self.pool.begin().await?;
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version) VALUES (?)")
                .bind(version)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            ran = true;
        }
        Ok(ran)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Allocates the next hub serial of `date`, `width` characters long (the partner's bank
    /// serial field): YYYYMMDD, the node (2 digits), then the day's counter zero-padded to the
    /// rest. Serials start with the hub's calendar date and never repeat: one counter per day
    /// serves every width, and a counter that no longer fits is an error, never a wrap.
    pub async fn next_serial(
        &self,
        node: u8,
        date: NaiveDate,
        width: usize,
    ) -> Result<String, JournalError> {
        let day = yyyymmdd(date);
        let counter: i64 = sqlx::query_scalar(
            "INSERT INTO serial_counters (day, last) VALUES (?, 1)
             ON CONFLICT(day) DO UPDATE SET last = last + 1 RETURNING last",
        )
        .bind(&day)
        .fetch_one(&self.pool)
        .await?;
        let digits = width.saturating_sub(10);
        let serial = format!("{day}{:02}{counter:0digits$}", node % 100);
        if digits < 6 || serial.len() != width {
            return Err(JournalError::SerialsExhausted { day, width });
        }
        Ok(serial)
    }

    /// Inserts a new payment in state ACCEPTED, or returns the existing row for the same channel key.
    pub async fn insert_payment(&self, new: &NewPayment) -> Result<Inserted, JournalError> {
        let now = ts(new.now);
        let result = sqlx::query(
            "INSERT INTO payments (hub_serial, channel, channel_date, channel_serial, request_hash, payee,
                instance, customer_no, payer_account, amount_fen, total_due_fen, branch_no, teller_no,
                tx_date, tx_time, state, next_action, created_at, updated_at, fields)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'NONE', ?, ?, ?)
             ON CONFLICT (channel, channel_date, channel_serial) DO NOTHING",
        )
        .bind(&new.hub_serial)
        .bind(&new.channel)
        .bind(&new.channel_date)
        .bind(&new.channel_serial)
        .bind(&new.request_hash)
        .bind(&new.payee)
        .bind(&new.instance)
        .bind(&new.customer_no)
        .bind(&new.payer_account)
        .bind(new.amount.fen())
        .bind(new.total_due.fen())
        .bind(&new.branch_no)
        .bind(&new.teller_no)
        .bind(yyyymmdd(new.tx_date))
        .bind(&new.tx_time)
        .bind(PaymentState::Accepted.as_str())
        .bind(&now)
        .bind(&now)
        .bind(fields_json(&new.fields))
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 1 {
            self.event(
                &new.hub_serial,
                new.now,
                "",
                PaymentState::Accepted,
                NextAction::None,
                "accepted",
            )
            .await?;
            return Ok(Inserted::New);
        }
        match self
            .by_channel_key(&new.channel, &new.channel_date, &new.channel_serial)
            .await?
        {
            Some(row) => Ok(Inserted::Existing(Box::new(row))),
            // The conflicting row cannot vanish (rows are never deleted); report it as corrupt.
            None => Err(JournalError::Corrupt {
                serial: new.hub_serial.clone(),
                column: "channel_key",
                value: new.channel_serial.clone(),
            }),
        }
    }

    async fn event(
        &self,
        serial: &str,
        at: NaiveDateTime,
        from: &str,
        to: PaymentState,
        action: NextAction,
        note: &str,
    ) -> Result<(), JournalError> {
        sqlx::query(
            "INSERT INTO payment_events (hub_serial, at, from_state, to_state, next_action, note)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(serial)
        .bind(ts(at))
        .bind(from)
        .bind(to.as_str())
        .bind(action.as_str())
        .bind(note)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Compare-and-set: applies `change` only if the row is still in (`from`, `from_action`).
    /// Returns false, changing nothing, when someone else moved it first.
    pub async fn transition(
        &self,
        serial: &str,
        from: PaymentState,
        from_action: NextAction,
        change: &Change,
        now: NaiveDateTime,
    ) -> Result<bool, JournalError> {
        let mut tx = self.pool.begin().await?;
        let to_state = change.state.unwrap_or(from);
        let to_action = change.next_action.unwrap_or(from_action);
        let (set_schedule, schedule) = match change.next_attempt_at {
            Some(at) => (1i64, at.map(ts)),
            None => (0i64, None),
        };
        let result = sqlx::query(
            "UPDATE payments SET
                state = ?, next_action = ?,
                next_attempt_at = CASE WHEN ? = 1 THEN ? ELSE next_attempt_at END,
                attempts = CASE WHEN ? = 1 THEN 0 WHEN ? = 1 THEN attempts + 1 ELSE attempts END,
                core_seq_no = COALESCE(?, core_seq_no),
                core_date = COALESCE(?, core_date),
                reversal_seq_no = COALESCE(?, reversal_seq_no),
                reversal_tran_date = COALESCE(?, reversal_tran_date),
                reversal_core_seq_no = COALESCE(?, reversal_core_seq_no),
                reversal_core_date = COALESCE(?, reversal_core_date),
                reversal_reason = COALESCE(?, reversal_reason),
                partner_reversal_serial = CASE WHEN ? = 1 THEN NULL
                    ELSE COALESCE(?, partner_reversal_serial) END,
                partner_reversal_date = CASE WHEN ? = 1 THEN NULL
                    ELSE COALESCE(?, partner_reversal_date) END,
                partner_reversal_time = CASE WHEN ? = 1 THEN NULL
                    ELSE COALESCE(?, partner_reversal_time) END,
                partner_serial = COALESCE(?, partner_serial),
                acct_date = COALESCE(?, acct_date),
                prepaid_fen = COALESCE(?, prepaid_fen),
                last_error = COALESCE(?, last_error),
                updated_at = ?
             WHERE hub_serial = ? AND state = ? AND next_action = ?",
        )
        .bind(to_state.as_str())
        .bind(to_action.as_str())
        .bind(set_schedule)
        .bind(schedule)
        .bind(change.reset_attempts as i64)
        .bind(change.bump_attempts as i64)
        .bind(&change.core_seq_no)
        .bind(change.core_date.map(yyyymmdd))
        .bind(&change.reversal_seq_no)
        .bind(change.reversal_tran_date.map(yyyymmdd))
        .bind(&change.reversal_core_seq_no)
        .bind(change.reversal_core_date.map(yyyymmdd))
        .bind(&change.reversal_reason)
        .bind(change.clear_partner_reversal_serial as i64)
        .bind(&change.partner_reversal_serial)
        .bind(change.clear_partner_reversal_serial as i64)
        .bind(change.partner_reversal_date.map(yyyymmdd))
        .bind(change.clear_partner_reversal_serial as i64)
        .bind(
            change
                .partner_reversal_time
                .map(|t| t.format("%H%M%S").to_string()),
        )
        .bind(&change.partner_serial)
        .bind(change.acct_date.map(yyyymmdd))
        .bind(change.prepaid.map(Money::fen))
        .bind(&change.last_error)
        .bind(ts(now))
        .bind(serial)
        .bind(from.as_str())
        .bind(from_action.as_str())
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO payment_events (hub_serial, at, from_state, to_state, next_action, note)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(serial)
        .bind(ts(now))
        .bind(from.as_str())
        .bind(to_state.as_str())
        .bind(to_action.as_str())
        .bind(&change.note)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records the answer given to the channel the first time; later writes are ignored.
    pub async fn set_first_answer(&self, serial: &str, answer: &str) -> Result<(), JournalError> {
        sqlx::query(
            "UPDATE payments SET first_answer = ? WHERE hub_serial = ? AND first_answer IS NULL",
        )
        .bind(answer)
        .bind(serial)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get(&self, serial: &str) -> Result<Option<PaymentRow>, JournalError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE hub_serial = ?"
        ))
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| map_row(&r)).transpose()
    }

    pub async fn by_channel_key(
        &self,
        channel: &str,
        channel_date: &str,
        channel_serial: &str,
    ) -> Result<Option<PaymentRow>, JournalError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE channel = ? AND channel_date = ? AND channel_serial = ?"
        ))
        .bind(channel)
        .bind(channel_date)
        .bind(channel_serial)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| map_row(&r)).transpose()
    }

    /// Payments with a pending action due at `now` (or with no schedule, e.g. after a crash).
    pub async fn due(
        &self,
        now: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<PaymentRow>, JournalError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE next_action <> 'NONE'
               AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
             ORDER BY next_attempt_at LIMIT ?"
        ))
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(map_row).collect()
    }

    /// Payments stopped in a state that an external call was in flight from when the hub died:
    /// ACCEPTED (8002 maybe sent) and CORE_DEBITED (1002 maybe sent) with no pending action.
    pub async fn interrupted(&self) -> Result<Vec<PaymentRow>, JournalError> {
        let rows = sqlx::query(
            concat!("SELECT ", payment_columns!(), " FROM payments WHERE next_action = 'NONE' AND state IN ('ACCEPTED', 'CORE_DEBITED', 'REVERSAL_REQUESTED', 'CANCEL_REQUESTED')"),
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(map_row).collect()
    }

    pub async fn pending_count(&self) -> Result<i64, JournalError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM payments WHERE next_action <> 'NONE'
                OR state IN ('ACCEPTED', 'CORE_DEBITED', 'REVERSAL_REQUESTED', 'CANCEL_REQUESTED')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Every payment of one partner instance that reconciliation of `business_date` may need:
    /// written off on that accounting date, made on that hub date, or posted or reversed at core
    /// on that CoreDate (so that a core line of a payment reconciled on another date is known).
    pub async fn for_reconciliation(
        &self,
        payee: &str,
        instance: &str,
        business_date: NaiveDate,
    ) -> Result<Vec<PaymentRow>, JournalError> {
        let day = yyyymmdd(business_date);
        let rows = sqlx::query(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE payee = ? AND instance = ?
               AND (acct_date = ? OR tx_date = ? OR core_date = ? OR reversal_core_date = ?)
             ORDER BY hub_serial"
        ))
        .bind(payee)
        .bind(instance)
        .bind(&day)
        .bind(&day)
        .bind(&day)
        .bind(&day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(map_row).collect()
    }

    pub async fn count_by_state(&self) -> Result<Vec<(String, i64)>, JournalError> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM payments GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("state")?, r.try_get::<i64, _>("n")?)))
            .collect()
    }

    /// Payments per state of one partner instance.
    pub async fn count_by_state_for(
        &self,
        payee: &str,
        instance: &str,
    ) -> Result<Vec<(String, i64)>, JournalError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM payments WHERE payee = ? AND instance = ?
             GROUP BY state ORDER BY state",
        )
        .bind(payee)
        .bind(instance)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("state")?, r.try_get::<i64, _>("n")?)))
            .collect()
    }

    pub async fn events(
        &self,
        serial: &str,
    ) -> Result<Vec<(String, String, String)>, JournalError> {
        let rows = sqlx::query(
            "SELECT from_state, to_state, note FROM payment_events WHERE hub_serial = ? ORDER BY id",
        )
        .bind(serial)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("from_state")?,
                    r.try_get("to_state")?,
                    r.try_get("note")?,
                ))
            })
            .collect()
    }
}

fn opt_date(
    serial: &str,
    column: &'static str,
    value: Option<String>,
) -> Result<Option<NaiveDate>, JournalError> {
    match value {
        None => Ok(None),
        Some(v) => parse_yyyymmdd(&v).map(Some).ok_or(JournalError::Corrupt {
            serial: serial.to_string(),
            column,
            value: v,
        }),
    }
}

fn map_row(r: &sqlx::sqlite::SqliteRow) -> Result<PaymentRow, JournalError> {
    let serial: String = r.try_get("hub_serial")?;
    let state_text: String = r.try_get("state")?;
    let action_text: String = r.try_get("next_action")?;
    let state = PaymentState::parse(&state_text).ok_or_else(|| JournalError::Corrupt {
        serial: serial.clone(),
        column: "state",
        value: state_text.clone(),
    })?;
    let next_action = NextAction::parse(&action_text).ok_or_else(|| JournalError::Corrupt {
        serial: serial.clone(),
        column: "next_action",
        value: action_text.clone(),
    })?;
    let tx_date_text: String = r.try_get("tx_date")?;
    let tx_date = parse_yyyymmdd(&tx_date_text).ok_or_else(|| JournalError::Corrupt {
        serial: serial.clone(),
        column: "tx_date",
        value: tx_date_text.clone(),
    })?;
    Ok(PaymentRow {
        channel: r.try_get("channel")?,
        channel_date: r.try_get("channel_date")?,
        channel_serial: r.try_get("channel_serial")?,
        request_hash: r.try_get("request_hash")?,
        payee: r.try_get("payee")?,
        instance: r.try_get("instance")?,
        customer_no: r.try_get("customer_no")?,
        payer_account: r.try_get("payer_account")?,
        amount: Money::from_fen(r.try_get("amount_fen")?),
        total_due: Money::from_fen(r.try_get("total_due_fen")?),
        branch_no: r.try_get("branch_no")?,
        teller_no: r.try_get("teller_no")?,
        tx_date,
        tx_time: r.try_get("tx_time")?,
        state,
        next_action,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        core_seq_no: r.try_get("core_seq_no")?,
        core_date: opt_date(&serial, "core_date", r.try_get("core_date")?)?,
        reversal_seq_no: r.try_get("reversal_seq_no")?,
        reversal_tran_date: opt_date(
            &serial,
            "reversal_tran_date",
            r.try_get("reversal_tran_date")?,
        )?,
        reversal_core_seq_no: r.try_get("reversal_core_seq_no")?,
        reversal_core_date: opt_date(
            &serial,
            "reversal_core_date",
            r.try_get("reversal_core_date")?,
        )?,
        reversal_reason: r.try_get("reversal_reason")?,
        partner_reversal_serial: r.try_get("partner_reversal_serial")?,
        partner_reversal_date: opt_date(
            &serial,
            "partner_reversal_date",
            r.try_get("partner_reversal_date")?,
        )?,
        partner_reversal_time: match r.try_get::<Option<String>, _>("partner_reversal_time")? {
            None => None,
            Some(v) => Some(NaiveTime::parse_from_str(&v, "%H%M%S").map_err(|_| {
                JournalError::Corrupt {
                    serial: serial.clone(),
                    column: "partner_reversal_time",
                    value: v,
                }
            })?),
        },
        partner_serial: r.try_get("partner_serial")?,
        acct_date: opt_date(&serial, "acct_date", r.try_get("acct_date")?)?,
        prepaid: r
            .try_get::<Option<i64>, _>("prepaid_fen")?
            .map(Money::from_fen),
        last_error: r.try_get("last_error")?,
        first_answer: r.try_get("first_answer")?,
        fields: parse_fields(&serial, r.try_get("fields")?)?,
        hub_serial: serial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pooled connection of a freshly migrated journal reads whole rows: none keeps the
    /// schema of before the migrations (sqlx then panicked on `SELECT *`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fresh_journal_reads_whole_rows_on_every_connection() {
        let dir = tempfile::tempdir().unwrap();
        // Which connection is stale is chance: several fresh journals make a miss unlikely.
        for n in 0..8 {
            let url = format!("sqlite://{}", dir.path().join(format!("j{n}.db")).display());
            let journal = Journal::open(&url).await.unwrap();
            sqlx::query(
            "INSERT INTO payments (hub_serial, channel, channel_date, channel_serial, request_hash,
               payee, instance, customer_no, payer_account, amount_fen, total_due_fen, branch_no,
               teller_no, tx_date, tx_time, state, created_at, updated_at)
             VALUES ('S1', '02', '20261203', 'C1', 'h', 'CATV', 'YX0001', 'YX2019000123',
               '6230901000000000011', 2600, 2600, '000101', 'T00001', '20261203', '100000',
               'SUCCEEDED', '2026-12-03 10:00:00', '2026-12-03 10:00:00')",
        )
        .execute(journal.pool())
        .await
        .unwrap();
            let reads = (0..32).map(|_| {
                let journal = journal.clone();
                tokio::spawn(
                    async move { journal.get("S1").await.map(|row| row.map(|r| r.fields)) },
                )
            });
            for read in futures::future::join_all(reads).await {
                assert!(
                    matches!(&read, Ok(Ok(Some(fields))) if fields.is_empty()),
                    "{read:?}"
                );
            }
        }
    }
}
