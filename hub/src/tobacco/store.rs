//! The tobacco tables: orders pushed by the bureau, push digests, and the notification outbox.
//! Every state change is one conditional UPDATE, so a cancellation and a payment can never both
//! win; the notification row is written in the same transaction that makes the order paid.

use adapters::tobacco::message::{PayChannel, PayableOrder, PaymentNotification, PushedOrder};
use adapters::tobacco::OrderState;
use chrono::{Duration, NaiveDate, NaiveDateTime};
use codecs::clock::SharedClock;
use codecs::Money;
use sqlx::{Row, SqliteConnection, SqlitePool};

fn ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn parse_ts(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.3f").ok()
}

fn ymd(d: NaiveDate) -> String {
    codecs::clock::yyyymmdd(d)
}

#[derive(Debug, thiserror::Error)]
pub enum TobaccoError {
    #[error("数据库错误：{0}")]
    Database(#[from] sqlx::Error),
    #[error("烟草订单数据损坏：{0}")]
    Corrupt(String),
}

impl TobaccoError {
    pub fn code(&self) -> &'static str {
        match self {
            TobaccoError::Database(_) => "YC_DB",
            TobaccoError::Corrupt(_) => "YC_CORRUPT",
        }
    }
}

/// An order as the hub holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRow {
    pub order: PayableOrder,
    pub state: OrderState,
    pub bank_serial: Option<String>,
    pub acct_date: Option<String>,
    pub pay_time: Option<String>,
    pub channel: Option<String>,
}

/// A payable order shown to a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayableView {
    pub order: PayableOrder,
    /// 已逾期: dueDate before today (shown, not enforced).
    pub overdue: bool,
}

/// Per-order result of a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushOutcomeLine {
    pub order_no: String,
    /// 0000, 2001 or 2003.
    pub code: &'static str,
    /// Empty for 2003.
    pub state: Option<OrderState>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Stored(Vec<PushOutcomeLine>),
    /// 1005: the pushId was used with another body; nothing stored.
    PushIdReused,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// 0000 (also when already cancelled).
    Cancelled,
    /// 3001
    NoSuchOrder,
    /// 3002
    AlreadyPaid,
    /// 3003
    PaymentInProgress,
}

impl CancelOutcome {
    pub fn code(&self) -> &'static str {
        match self {
            CancelOutcome::Cancelled => "0000",
            CancelOutcome::NoSuchOrder => "3001",
            CancelOutcome::AlreadyPaid => "3002",
            CancelOutcome::PaymentInProgress => "3003",
        }
    }
}

/// Why a channel's payment attempt is refused (nothing moved).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayRefusal {
    #[error("订单不存在")]
    NoSuchOrder,
    #[error("订单已撤销")]
    Cancelled,
    #[error("订单已缴费")]
    AlreadyPaid,
    #[error("订单缴费处理中")]
    InProgress,
    #[error("缴费金额须等于订单金额")]
    WrongAmount,
}

impl PayRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            PayRefusal::NoSuchOrder => "YC_NO_ORDER",
            PayRefusal::Cancelled => "YC_CANCELLED",
            PayRefusal::AlreadyPaid => "YC_PAID",
            PayRefusal::InProgress => "YC_PAYING",
            PayRefusal::WrongAmount => "YC_AMOUNT",
        }
    }
}

/// A notification due for an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueNotification {
    pub notify_id: String,
    pub body: Vec<u8>,
    pub attempts: i64,
    pub schedule_start: NaiveDateTime,
    pub deadline_at: NaiveDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationRow {
    pub notify_id: String,
    pub order_no: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub listed_in_file: Option<String>,
    pub acct_date: String,
}

/// A paid payment of an earlier acctDate that no bureau file has listed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnlistedPayment {
    pub notify_id: String,
    pub order_no: String,
    pub acct_date: NaiveDate,
    /// The outbox status: PENDING, ACKED, REJECTED, EXPIRED.
    pub status: String,
    pub amount: Money,
}

#[derive(Clone, Debug)]
pub struct TobaccoStore {
    pool: SqlitePool,
    clock: SharedClock,
    bank_code: String,
}

fn state_from_i64(value: i64) -> Result<OrderState, TobaccoError> {
    match value {
        1 => Ok(OrderState::Unpaid),
        2 => Ok(OrderState::Paying),
        3 => Ok(OrderState::Paid),
        4 => Ok(OrderState::Cancelled),
        other => Err(TobaccoError::Corrupt(format!("state {other}"))),
    }
}

const ORDER_COLUMNS: &str =
    "order_no, licence_no, retailer_name, amount_fen, order_date, due_date, \
     item_count, items_summary, state, bank_serial, acct_date, pay_time, channel";

fn order_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<OrderRow, TobaccoError> {
    let date = |column: &str| -> Result<NaiveDate, TobaccoError> {
        let text: String = row.try_get(column)?;
        codecs::clock::parse_yyyymmdd(&text)
            .ok_or_else(|| TobaccoError::Corrupt(format!("{column} {text}")))
    };
    let item_count: i64 = row.try_get("item_count")?;
    Ok(OrderRow {
        order: PayableOrder {
            order_no: row.try_get("order_no")?,
            licence_no: row.try_get("licence_no")?,
            retailer_name: row.try_get("retailer_name")?,
            amount: Money::from_fen(row.try_get("amount_fen")?),
            order_date: date("order_date")?,
            due_date: date("due_date")?,
            item_count: u16::try_from(item_count)
                .map_err(|_| TobaccoError::Corrupt(format!("item_count {item_count}")))?,
            items_summary: row.try_get("items_summary")?,
        },
        state: state_from_i64(row.try_get("state")?)?,
        bank_serial: row.try_get("bank_serial")?,
        acct_date: row.try_get("acct_date")?,
        pay_time: row.try_get("pay_time")?,
        channel: row.try_get("channel")?,
    })
}

async fn order_in(
    conn: &mut SqliteConnection,
    order_no: &str,
) -> Result<Option<OrderRow>, TobaccoError> {
    let row = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM tobacco_orders WHERE order_no = ?"
    ))
    .bind(order_no)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(order_from_row).transpose()
}

/// First attempt at once; retries 15 s, 1 min, 5 min, 15 min, 30 min, 1 h after the first, then
/// hourly. `attempts_done` counts attempts already made (≥ 1).
pub fn retry_offset(attempts_done: i64) -> Duration {
    match attempts_done {
        i64::MIN..=0 => Duration::zero(),
        1 => Duration::seconds(15),
        2 => Duration::minutes(1),
        3 => Duration::minutes(5),
        4 => Duration::minutes(15),
        5 => Duration::minutes(30),
        n => Duration::hours((n - 5).min(10_000)),
    }
}

impl TobaccoStore {
    pub fn new(pool: SqlitePool, clock: SharedClock, bank_code: impl Into<String>) -> Self {
        TobaccoStore {
            pool,
            clock,
            bank_code: bank_code.into(),
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Stores a push in one transaction; answers only after the commit.
    pub async fn push(
        &self,
        push_id: &str,
        body_sm3_hex: &str,
        orders: &[PushedOrder],
    ) -> Result<PushOutcome, TobaccoError> {
        let now = ts(self.clock.now());
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let known: Option<String> =
            sqlx::query_scalar("SELECT body_sm3 FROM tobacco_pushes WHERE push_id = ?")
                .bind(push_id)
                .fetch_optional(&mut *tx)
                .await?;
        match known {
            Some(digest) if digest != body_sm3_hex => return Ok(PushOutcome::PushIdReused),
            Some(_) => {}
            None => {
                sqlx::query(
                    "INSERT INTO tobacco_pushes (push_id, body_sm3, received_at) VALUES (?, ?, ?)",
                )
                .bind(push_id)
                .bind(body_sm3_hex)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            }
        }
        let mut lines = Vec::with_capacity(orders.len());
        for pushed in orders {
            let order = match pushed {
                PushedOrder::Invalid { order_no, .. } => {
                    lines.push(PushOutcomeLine {
                        order_no: order_no.clone(),
                        code: "2003",
                        state: None,
                    });
                    continue;
                }
                PushedOrder::Valid(order) => order,
            };
            let line = match order_in(&mut tx, &order.order_no).await? {
                Some(existing) if existing.order == *order => PushOutcomeLine {
                    order_no: order.order_no.clone(),
                    code: "0000",
                    state: Some(existing.state),
                },
                Some(existing) => PushOutcomeLine {
                    order_no: order.order_no.clone(),
                    code: "2001",
                    state: Some(existing.state),
                },
                None => {
                    sqlx::query(
                        "INSERT INTO tobacco_orders (order_no, licence_no, retailer_name, amount_fen, \
                         order_date, due_date, item_count, items_summary, state, push_id, received_at, \
                         updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                    )
                    .bind(&order.order_no)
                    .bind(&order.licence_no)
                    .bind(&order.retailer_name)
                    .bind(order.amount.fen())
                    .bind(ymd(order.order_date))
                    .bind(ymd(order.due_date))
                    .bind(i64::from(order.item_count))
                    .bind(&order.items_summary)
                    .bind(push_id)
                    .bind(&now)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                    PushOutcomeLine {
                        order_no: order.order_no.clone(),
                        code: "0000",
                        state: Some(OrderState::Unpaid),
                    }
                }
            };
            lines.push(line);
        }
        tx.commit().await?;
        Ok(PushOutcome::Stored(lines))
    }

    /// 1 → 4 in one update; otherwise says why not.
    pub async fn cancel(
        &self,
        order_no: &str,
        reason: &str,
    ) -> Result<(CancelOutcome, Option<OrderState>), TobaccoError> {
        let now = ts(self.clock.now());
        let mut conn = self.pool.acquire().await?;
        self.release_ended_hold(&mut conn, order_no).await?;
        sqlx::query(
            "UPDATE tobacco_orders SET state = 4, cancel_reason = ?, updated_at = ? \
             WHERE order_no = ? AND state = 1",
        )
        .bind(reason)
        .bind(&now)
        .bind(order_no)
        .execute(&mut *conn)
        .await?;
        let Some(row) = order_in(&mut conn, order_no).await? else {
            return Ok((CancelOutcome::NoSuchOrder, None));
        };
        let outcome = match row.state {
            OrderState::Cancelled => CancelOutcome::Cancelled,
            OrderState::Paid => CancelOutcome::AlreadyPaid,
            OrderState::Paying | OrderState::Unpaid => CancelOutcome::PaymentInProgress,
        };
        Ok((outcome, Some(row.state)))
    }

    pub async fn order(&self, order_no: &str) -> Result<Option<OrderRow>, TobaccoError> {
        let mut conn = self.pool.acquire().await?;
        order_in(&mut conn, order_no).await
    }

    /// The channels' look-up by order number: the order whatever its state.
    pub async fn lookup_by_order(&self, order_no: &str) -> Result<Option<OrderRow>, TobaccoError> {
        self.order(order_no).await
    }

    /// All unpaid orders of a licence, oldest dueDate first, overdue ones marked.
    pub async fn lookup_by_licence(
        &self,
        licence_no: &str,
    ) -> Result<Vec<PayableView>, TobaccoError> {
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM tobacco_orders WHERE licence_no = ? AND state = 1 \
             ORDER BY due_date, order_date, order_no LIMIT 1000"
        ))
        .bind(licence_no)
        .fetch_all(&self.pool)
        .await?;
        let today = self.clock.today();
        rows.iter()
            .map(|row| {
                let order = order_from_row(row)?.order;
                Ok(PayableView {
                    overdue: order.due_date < today,
                    order,
                })
            })
            .collect()
    }

    /// 2 → 1 for a hold whose payment the journal says ended with the money at the payer
    /// (CORE_FAILED, REVERSED): the repair of a crash between that transition and the engine's
    /// release, made before anything that depends on the order's state.
    async fn release_ended_hold(
        &self,
        conn: &mut SqliteConnection,
        order_no: &str,
    ) -> Result<(), TobaccoError> {
        let released = sqlx::query(
            "UPDATE tobacco_orders SET state = 1, bank_serial = NULL, updated_at = ? \
             WHERE order_no = ? AND state = 2 AND bank_serial IN \
             (SELECT hub_serial FROM payments WHERE state IN ('CORE_FAILED', 'REVERSED'))",
        )
        .bind(ts(self.clock.now()))
        .bind(order_no)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if released > 0 {
            tracing::warn!(
                order_no,
                "Released a tobacco order held by a payment that had ended."
            );
        }
        Ok(())
    }

    /// 1 → 2 when a payment is accepted (before the core call), for exactly the order's amount.
    /// Taking it again under the same serial is a no-op (the engine may ask twice).
    pub async fn begin_payment(
        &self,
        order_no: &str,
        amount: Money,
        bank_serial: &str,
    ) -> Result<Result<OrderRow, PayRefusal>, TobaccoError> {
        let now = ts(self.clock.now());
        let mut conn = self.pool.acquire().await?;
        self.release_ended_hold(&mut conn, order_no).await?;
        let changed = sqlx::query(
            "UPDATE tobacco_orders SET state = 2, bank_serial = ?, updated_at = ? \
             WHERE order_no = ? AND state = 1 AND amount_fen = ?",
        )
        .bind(bank_serial)
        .bind(&now)
        .bind(order_no)
        .bind(amount.fen())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        let row = order_in(&mut conn, order_no).await?;
        Ok(match row {
            None => Err(PayRefusal::NoSuchOrder),
            Some(row) if changed == 1 => Ok(row),
            Some(row)
                if row.state == OrderState::Paying
                    && row.bank_serial.as_deref() == Some(bank_serial) =>
            {
                Ok(row)
            }
            Some(row) => Err(match row.state {
                OrderState::Cancelled => PayRefusal::Cancelled,
                OrderState::Paid => PayRefusal::AlreadyPaid,
                OrderState::Paying => PayRefusal::InProgress,
                OrderState::Unpaid => PayRefusal::WrongAmount,
            }),
        })
    }

    /// 2 → 1: the core refused the debit (or 8004 said R, or N then 8003).
    pub async fn payment_failed(
        &self,
        order_no: &str,
        bank_serial: &str,
    ) -> Result<bool, TobaccoError> {
        let now = ts(self.clock.now());
        let changed = sqlx::query(
            "UPDATE tobacco_orders SET state = 1, bank_serial = NULL, updated_at = ? \
             WHERE order_no = ? AND state = 2 AND bank_serial = ?",
        )
        .bind(&now)
        .bind(order_no)
        .bind(bank_serial)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// 2 → 3 and the outbox row, in the caller's transaction (the engine commits it together with
    /// its own journal transition). Returns false when the order was not in state 2 under this
    /// serial (nothing written).
    pub async fn payment_succeeded_in(
        &self,
        conn: &mut SqliteConnection,
        order_no: &str,
        bank_serial: &str,
        acct_date: NaiveDate,
        channel: PayChannel,
    ) -> Result<bool, TobaccoError> {
        let now = self.clock.now();
        // The write comes first: in WAL mode a deferred transaction that read before it writes
        // cannot wait for another writer (SQLITE_BUSY at once); one that starts with the write
        // waits its turn (callers with their own transaction need not begin it IMMEDIATE).
        let changed = sqlx::query(
            "UPDATE tobacco_orders SET state = 3, acct_date = ?, pay_time = ?, channel = ?, \
             updated_at = ? WHERE order_no = ? AND state = 2 AND bank_serial = ?",
        )
        .bind(ymd(acct_date))
        .bind(adapters::tobacco::message::format_time(now))
        .bind(channel.code())
        .bind(ts(now))
        .bind(order_no)
        .bind(bank_serial)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if changed != 1 {
            return Ok(false);
        }
        let Some(row) = order_in(conn, order_no).await? else {
            return Ok(false);
        };
        let notification = PaymentNotification {
            bank_code: self.bank_code.clone(),
            order_no: order_no.to_string(),
            licence_no: row.order.licence_no.clone(),
            amount: row.order.amount,
            pay_time: now,
            acct_date,
            bank_serial: bank_serial.to_string(),
            channel,
        };
        sqlx::query(
            "INSERT INTO tobacco_notifications (notify_id, order_no, body, acct_date, status, \
             attempts, schedule_start, deadline_at, next_attempt_at) \
             VALUES (?, ?, ?, ?, 'PENDING', 0, ?, ?, ?)",
        )
        .bind(bank_serial)
        .bind(order_no)
        .bind(notification.to_body())
        .bind(ymd(acct_date))
        .bind(ts(now))
        .bind(ts(now + Duration::hours(72)))
        .bind(ts(now))
        .execute(&mut *conn)
        .await?;
        Ok(true)
    }

    /// [`Self::payment_succeeded_in`] in a transaction of its own.
    pub async fn payment_succeeded(
        &self,
        order_no: &str,
        bank_serial: &str,
        acct_date: NaiveDate,
        channel: PayChannel,
    ) -> Result<bool, TobaccoError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = self
            .payment_succeeded_in(&mut tx, order_no, bank_serial, acct_date, channel)
            .await?;
        if done {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(done)
    }

    /// Pending notifications whose time has come, oldest first, at most `limit`.
    pub async fn due_notifications(
        &self,
        limit: i64,
    ) -> Result<Vec<DueNotification>, TobaccoError> {
        let rows = sqlx::query(
            "SELECT notify_id, body, attempts, schedule_start, deadline_at FROM tobacco_notifications \
             WHERE status = 'PENDING' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
        )
        .bind(ts(self.clock.now()))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let when = |column: &str| -> Result<NaiveDateTime, TobaccoError> {
                    let text: String = row.try_get(column)?;
                    parse_ts(&text).ok_or_else(|| TobaccoError::Corrupt(format!("{column} {text}")))
                };
                Ok(DueNotification {
                    notify_id: row.try_get("notify_id")?,
                    body: row.try_get("body")?,
                    attempts: row.try_get("attempts")?,
                    schedule_start: when("schedule_start")?,
                    deadline_at: when("deadline_at")?,
                })
            })
            .collect()
    }

    /// Records an attempt's outcome: `Some(status)` ends the schedule (ACKED, REJECTED), `None`
    /// schedules the next try, or EXPIRED past the deadline. Returns the new status.
    pub async fn record_attempt(
        &self,
        due: &DueNotification,
        final_status: Option<&'static str>,
        error: Option<&str>,
    ) -> Result<&'static str, TobaccoError> {
        let now = self.clock.now();
        let attempts = due.attempts + 1;
        // The schedule counts from the first attempt of this schedule.
        let schedule_start = if due.attempts == 0 {
            now
        } else {
            due.schedule_start
        };
        let (status, next) = match final_status {
            Some(status) => (status, now),
            None => {
                let next = schedule_start + retry_offset(attempts);
                if next > due.deadline_at {
                    ("EXPIRED", next)
                } else {
                    ("PENDING", next)
                }
            }
        };
        sqlx::query(
            "UPDATE tobacco_notifications SET status = ?, attempts = ?, schedule_start = ?, \
             next_attempt_at = ?, last_error = ?, acked_at = CASE WHEN ? = 'ACKED' THEN ? ELSE acked_at END \
             WHERE notify_id = ? AND status = 'PENDING'",
        )
        .bind(status)
        .bind(attempts)
        .bind(ts(schedule_start))
        .bind(ts(next))
        .bind(error)
        .bind(status)
        .bind(ts(now))
        .bind(&due.notify_id)
        .execute(&self.pool)
        .await?;
        Ok(status)
    }

    /// A new schedule for a payment the bureau's file did not list (unless one is running).
    pub async fn renotify(&self, notify_id: &str) -> Result<(), TobaccoError> {
        let now = self.clock.now();
        sqlx::query(
            "UPDATE tobacco_notifications SET status = 'PENDING', attempts = 0, schedule_start = ?, \
             deadline_at = ?, next_attempt_at = ? WHERE notify_id = ? AND status <> 'PENDING'",
        )
        .bind(ts(now))
        .bind(ts(now + Duration::hours(72)))
        .bind(ts(now))
        .bind(notify_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn notification(
        &self,
        notify_id: &str,
    ) -> Result<Option<NotificationRow>, TobaccoError> {
        let row = sqlx::query(
            "SELECT notify_id, order_no, status, attempts, next_attempt_at, listed_in_file, acct_date \
             FROM tobacco_notifications WHERE notify_id = ?",
        )
        .bind(notify_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| -> Result<NotificationRow, TobaccoError> {
            Ok(NotificationRow {
                notify_id: row.try_get("notify_id")?,
                order_no: row.try_get("order_no")?,
                status: row.try_get("status")?,
                attempts: row.try_get("attempts")?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                listed_in_file: row.try_get("listed_in_file")?,
                acct_date: row.try_get("acct_date")?,
            })
        })
        .transpose()
    }

    /// Paid notifications of acctDate ≤ `date` that no file has listed yet.
    pub async fn unlisted_up_to(&self, date: NaiveDate) -> Result<Vec<String>, TobaccoError> {
        Ok(sqlx::query_scalar(
            "SELECT notify_id FROM tobacco_notifications WHERE listed_in_file IS NULL \
             AND acct_date <= ? ORDER BY notify_id",
        )
        .bind(ymd(date))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Paid payments of acctDate before `date` that no file has listed yet, oldest first, with
    /// their order's number and amount and their notification's status: the report of `date`
    /// carries them as 通知未确认 until a file lists them (spec 09).
    pub async fn unlisted_before(
        &self,
        date: NaiveDate,
    ) -> Result<Vec<UnlistedPayment>, TobaccoError> {
        let rows = sqlx::query(
            "SELECT n.notify_id, n.order_no, n.acct_date, n.status, o.amount_fen \
             FROM tobacco_notifications n JOIN tobacco_orders o ON o.order_no = n.order_no \
             WHERE n.listed_in_file IS NULL AND n.acct_date < ? \
             ORDER BY n.acct_date, n.notify_id",
        )
        .bind(ymd(date))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let acct_date: String = row.try_get("acct_date")?;
                let amount_fen: i64 = row.try_get("amount_fen")?;
                Ok(UnlistedPayment {
                    notify_id: row.try_get("notify_id")?,
                    order_no: row.try_get("order_no")?,
                    acct_date: codecs::clock::parse_yyyymmdd(&acct_date).ok_or_else(|| {
                        TobaccoError::Corrupt(format!("通知记账日期{acct_date}不是日期"))
                    })?,
                    status: row.try_get("status")?,
                    amount: Money::from_fen(amount_fen),
                })
            })
            .collect()
    }

    pub async fn mark_listed(
        &self,
        notify_id: &str,
        file_date: NaiveDate,
    ) -> Result<(), TobaccoError> {
        sqlx::query(
            "UPDATE tobacco_notifications SET listed_in_file = ? WHERE notify_id = ? AND listed_in_file IS NULL",
        )
        .bind(ymd(file_date))
        .bind(notify_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The paid order behind a notifyId (bankSerial), for file matching.
    pub async fn paid_by_serial(
        &self,
        bank_serial: &str,
    ) -> Result<Option<OrderRow>, TobaccoError> {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM tobacco_orders WHERE bank_serial = ? AND state = 3"
        ))
        .bind(bank_serial)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(order_from_row).transpose()
    }
}

pub(crate) fn state_code(state: Option<OrderState>) -> String {
    state.map(|s| s.code().to_string()).unwrap_or_default()
}
