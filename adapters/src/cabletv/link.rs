//! The one long-lived multiplexed link: connect, sign in (1001), heartbeats both ways, requests in
//! flight matched on (TxDate, Serial), reconnect with backoff. A call that may have reached the
//! cable company never ends as "not sent": it is answered, or `Lost` (timeout, link dropped, bad
//! answer MAC), and the engine resolves it. The link never re-sends.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use codecs::clock::{yyyymmdd, SharedClock};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::wire::{
    decode_body, encode_body, Decoded, FieldWriter, FrameCodec, Header, TxCode, WireError,
};

/// Timings and limits of the link; defaults are the spec's.
#[derive(Clone, Debug)]
pub struct LinkSettings {
    pub connect_timeout_ms: u64,
    /// Send 0000 after this much sending silence (30 s).
    pub heartbeat_idle_ms: u64,
    /// Close after this much receiving silence (90 s).
    pub receive_idle_ms: u64,
    /// From 22:55:00 on 31 December until a status shows the service resumed, 0000 this often
    /// whatever the traffic (60 s).
    pub year_end_heartbeat_ms: u64,
    /// 2002 and 3001 (15 s).
    pub money_timeout_ms: u64,
    /// Everything else (10 s).
    pub other_timeout_ms: u64,
    /// Reconnect delays; the last repeats (1, 2, 4, 8, 16, 30 s).
    pub backoff_ms: Vec<u64>,
    /// Requests in flight at most (32); more wait here.
    pub max_in_flight: usize,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            connect_timeout_ms: 3_000,
            heartbeat_idle_ms: 30_000,
            receive_idle_ms: 90_000,
            year_end_heartbeat_ms: 60_000,
            money_timeout_ms: 15_000,
            other_timeout_ms: 10_000,
            backoff_ms: vec![1_000, 2_000, 4_000, 8_000, 16_000, 30_000],
            max_in_flight: 32,
        }
    }
}

/// What the cable company said of itself in its last 0000 / 1001 answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartnerStatus {
    pub partner_date: NaiveDate,
    pub param_version: u64,
    /// 0 normal, 1 year-end carry-over in progress.
    pub service_state: u8,
}

/// Why a call has no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The request never left the hub (no signed-in link, input refused): nothing happened.
    #[error("请求未发出：{0}")]
    NotSent(String),
    /// The request may have reached the cable company: its outcome is unknown.
    #[error("结果未知：{0}")]
    Lost(String),
}

/// Who sends a request, as the header carries it.
#[derive(Clone, Debug)]
pub struct Caller {
    pub branch_no: String,
    pub teller_no: String,
    /// `GT`, `SJ`, `WY`, `ZZ`, or `XT` for hub-originated frames.
    pub channel: String,
    pub tx_date: NaiveDate,
    pub tx_time: NaiveTime,
    /// 20 characters, unique per BankCode and TxDate.
    pub serial: String,
}

/// Hands out the part after `XT` of hub-originated serials: 18 ASCII characters, never the same
/// twice for one TxDate, also across processes. Spec 04: Serial is "unique per BankCode and TxDate
/// for each side's requests", and a reused serial with other content is answered 06; a `hub serve`
/// restarted the same day, or a `hub recon` running beside it, must not repeat the serials of the
/// earlier process. The hub backs this with its journal's durable day counter; see
/// [`clock_seeded_serials`] for a link without one.
pub type SerialSource = Arc<
    dyn Fn(NaiveDate) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync,
>;

/// Width of what a [`SerialSource`] returns: AN 20 less the `XT` prefix.
pub const SERIAL_SOURCE_WIDTH: usize = 18;

/// Serials per second-of-the-day slot of [`clock_seeded_serials`].
const SLOT_CAPACITY: u64 = 100_000;

/// A serial source without storage, for a link that has no journal (tests, tools): the date, then
/// 10 digits `slot × 100 000 + n`, where `slot` is the second of the day (0–86 399) at which this
/// process first asked for a serial of that date and `n` counts up from 0; when `n` reaches
/// 100 000 the process moves to `slot + 1`.
///
/// Why it does not repeat an earlier process's serials: a process started at second `s` only ever
/// uses numbers from `s × 100 000` upward, and a later one started at `s' > s` starts at
/// `s' × 100 000`, so the earlier one reaches the later one's numbers only after issuing
/// `(s' − s) × 100 000` serials that day, i.e. at least 100 000 even for a restart one second
/// later; the hub's own traffic is about 2 900 heartbeats a day plus one 2001 per pay. The bound
/// fits: 86 400 × 100 000 < 10^10 (10 digits). What it cannot rule out: two processes whose first
/// serial of the day falls in the same second, or a wall clock stepped back between them; that is
/// why the hub uses its journal instead.
pub fn clock_seeded_serials(clock: SharedClock) -> SerialSource {
    // (date, slot, numbers used in the slot)
    let state: Arc<Mutex<Option<(NaiveDate, u64, u64)>>> = Arc::new(Mutex::new(None));
    Arc::new(move |date: NaiveDate| {
        let mut guard = match state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (slot, used) = match *guard {
            Some((day, slot, used)) if day == date => {
                if used >= SLOT_CAPACITY {
                    (slot + 1, 0)
                } else {
                    (slot, used)
                }
            }
            _ => (u64::from(clock.now().time().num_seconds_from_midnight()), 0),
        };
        *guard = Some((date, slot, used + 1));
        let number = slot * SLOT_CAPACITY + used;
        let result = if number < 10_000_000_000 {
            Ok(format!("{}{number:010}", yyyymmdd(date)))
        } else {
            Err("当日系统流水号已用尽".to_string())
        };
        Box::pin(async move { result })
    })
}

/// The year-end stop as the link tracks it: entered from 22:55:00 on 31 December (hub clock) or
/// when the cable company reports ServiceState 1; `resumed` once a 0000 / 1001 answer shows
/// ServiceState 0 and a PartnerDate in the new year; left when a 6001 sent after that has replaced
/// the cache (spec 04, year-end step 3).
#[derive(Clone, Copy, Debug, Default)]
struct YearEndHold {
    /// The closing year while the stop is in force.
    closing: Option<i32>,
    resumed: bool,
    /// The last year whose stop was left: a skewed clock must not start it again.
    done_for: Option<i32>,
}

type Pending = HashMap<(NaiveDate, String), oneshot::Sender<Result<Decoded, String>>>;

pub(crate) struct Inner {
    pub addr: String,
    pub bank_code: String,
    pub key: Vec<u8>,
    pub settings: LinkSettings,
    pub clock: SharedClock,
    pending: Mutex<Pending>,
    /// The writer of the signed-in connection; `None` while there is none.
    writer: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    pub status: watch::Sender<Option<PartnerStatus>>,
    /// The cached parameter version, zeros when none (answered to the partner's 0000).
    pub cached_param_version: AtomicU64,
    serials: SerialSource,
    year_end: Mutex<YearEndHold>,
    /// When a refusal from the cached prices last started a 6001 (rate limit).
    last_cache_refresh: Mutex<Option<Instant>>,
    in_flight: Semaphore,
    /// Answers that matched nothing pending (late after a timeout), for metrics and tests.
    pub stray_answers: AtomicU64,
    pub connects: AtomicU64,
    pub shutdown: watch::Sender<bool>,
    /// Parameter rows, replaced in one step (see `ops`).
    pub params: RwLock<Option<super::ops::ParamSet>>,
}

impl Inner {
    pub fn new(
        addr: String,
        bank_code: String,
        key: Vec<u8>,
        settings: LinkSettings,
        clock: SharedClock,
        serials: SerialSource,
    ) -> Inner {
        let permits = settings.max_in_flight.max(1);
        Inner {
            addr,
            bank_code,
            key,
            settings,
            clock,
            pending: Mutex::new(HashMap::new()),
            writer: Mutex::new(None),
            status: watch::channel(None).0,
            cached_param_version: AtomicU64::new(0),
            serials,
            year_end: Mutex::new(YearEndHold::default()),
            last_cache_refresh: Mutex::new(None),
            in_flight: Semaphore::new(permits),
            stray_answers: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            shutdown: watch::channel(false).0,
            params: RwLock::new(None),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        match self.pending.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn set_writer(&self, writer: Option<mpsc::Sender<Vec<u8>>>) {
        match self.writer.lock() {
            Ok(mut slot) => *slot = writer,
            Err(poisoned) => *poisoned.into_inner() = writer,
        }
    }

    fn writer(&self) -> Option<mpsc::Sender<Vec<u8>>> {
        match self.writer.lock() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn signed_in(&self) -> bool {
        self.writer().is_some()
    }

    /// A hub-originated caller: Channel XT, teller SYSTEM, a serial the engine never uses (`XT` +
    /// 18 characters of the [`SerialSource`]; the engine's serials are all digits).
    pub async fn system_caller(&self) -> Result<Caller, CallError> {
        let now = self.clock.now();
        let tail = (self.serials)(now.date())
            .await
            .map_err(|e| CallError::NotSent(format!("系统流水号未取得：{e}")))?;
        if tail.len() != SERIAL_SOURCE_WIDTH || !tail.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CallError::NotSent(format!("系统流水号格式错：{tail}")));
        }
        Ok(Caller {
            branch_no: String::new(),
            teller_no: "SYSTEM".to_string(),
            channel: "XT".to_string(),
            tx_date: now.date(),
            tx_time: now.time().with_nanosecond(0).unwrap_or(now.time()),
            serial: format!("XT{tail}"),
        })
    }

    fn header(&self, tx: TxCode, caller: &Caller) -> Header {
        Header {
            tx_code: tx.code().to_string(),
            msg_type: 0,
            bank_code: self.bank_code.clone(),
            branch_no: caller.branch_no.clone(),
            teller_no: caller.teller_no.clone(),
            channel: caller.channel.clone(),
            tx_date: caller.tx_date,
            tx_time: caller.tx_time.with_nanosecond(0).unwrap_or(caller.tx_time),
            serial: caller.serial.clone(),
            rsp_code: String::new(),
            rsp_msg: String::new(),
        }
    }

    pub fn timeout_for(&self, tx: TxCode) -> Duration {
        Duration::from_millis(match tx {
            TxCode::Pay | TxCode::Cancel => self.settings.money_timeout_ms,
            _ => self.settings.other_timeout_ms,
        })
    }

    /// Sends one request on the signed-in link and waits for its answer.
    pub async fn call(
        &self,
        tx: TxCode,
        caller: &Caller,
        fields: impl FnOnce(&mut FieldWriter) -> Result<(), WireError>,
    ) -> Result<Decoded, CallError> {
        let writer = self
            .writer()
            .ok_or_else(|| CallError::NotSent("与有线电视公司的链路未签到".to_string()))?;
        self.send_on(&writer, tx, caller, fields).await
    }

    async fn send_on(
        &self,
        writer: &mpsc::Sender<Vec<u8>>,
        tx: TxCode,
        caller: &Caller,
        fields: impl FnOnce(&mut FieldWriter) -> Result<(), WireError>,
    ) -> Result<Decoded, CallError> {
        let body = encode_body(&self.header(tx, caller), &self.key, fields)
            .map_err(|e| CallError::NotSent(e.to_string()))?;
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| CallError::NotSent("链路已关闭".to_string()))?;
        let key = (caller.tx_date, caller.serial.clone());
        let (answer_tx, answer_rx) = oneshot::channel();
        {
            let mut pending = self.pending();
            if pending.contains_key(&key) {
                return Err(CallError::NotSent(format!(
                    "流水号{}已有请求在途",
                    caller.serial
                )));
            }
            pending.insert(key.clone(), answer_tx);
        }
        if writer.send(body).await.is_err() {
            self.pending().remove(&key);
            return Err(CallError::NotSent("链路已断开，请求未发出".to_string()));
        }
        match tokio::time::timeout(self.timeout_for(tx), answer_rx).await {
            Ok(Ok(Ok(decoded))) => Ok(decoded),
            Ok(Ok(Err(reason))) => Err(CallError::Lost(reason)),
            Ok(Err(_)) => Err(CallError::Lost("链路已断开".to_string())),
            Err(_) => {
                // Removed now, so that a late answer matches nothing and is dropped.
                self.pending().remove(&key);
                tracing::warn!(tx_code = tx.code(), serial = %caller.serial, "Cable TV answer timed out.");
                Err(CallError::Lost("应答超时".to_string()))
            }
        }
    }

    /// Every request in flight on a dropped link is treated as timed out.
    fn fail_all_pending(&self, reason: &str) {
        let drained: Vec<_> = self.pending().drain().collect();
        for (_, sender) in drained {
            let _ = sender.send(Err(reason.to_string()));
        }
    }

    fn deliver(&self, decoded: Decoded) {
        let key = (decoded.header.tx_date, decoded.header.serial.clone());
        let sender = self.pending().remove(&key);
        match sender {
            Some(sender) => {
                let _ = sender.send(Ok(decoded));
            }
            None if decoded.tx == Some(TxCode::Heartbeat) => {}
            None => {
                self.stray_answers.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(
                    tx_code = %decoded.header.tx_code,
                    serial = %decoded.header.serial,
                    "Cable TV answer matches no pending request (late?); dropped."
                );
            }
        }
    }

    fn fail_one(&self, tx_date: Option<NaiveDate>, serial: &str, reason: &str) {
        let Some(tx_date) = tx_date else { return };
        if let Some(sender) = self.pending().remove(&(tx_date, serial.to_string())) {
            let _ = sender.send(Err(reason.to_string()));
        }
    }

    /// Whether 31 December's stop is in force by the hub's clock (22:55:00 to midnight).
    pub fn in_year_end_window(&self) -> bool {
        let now = self.clock.now();
        now.month() == 12
            && now.day() == 31
            && now.time() >= NaiveTime::from_hms_opt(22, 55, 0).unwrap_or_default()
    }

    fn hold(&self) -> std::sync::MutexGuard<'_, YearEndHold> {
        match self.year_end.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Enters the stop for `year` unless it is already in force or was left for that year.
    fn enter_year_end(hold: &mut YearEndHold, year: i32) {
        let newer = |y: Option<i32>| y.is_none_or(|y| y < year);
        if newer(hold.closing) && newer(hold.done_for) {
            hold.closing = Some(year);
            hold.resumed = false;
        }
    }

    /// The stop in force now: the clock window, or entered earlier and not yet left.
    fn year_end_hold(&self) -> YearEndHold {
        let in_window = self.in_year_end_window();
        let mut hold = self.hold();
        if in_window {
            Self::enter_year_end(&mut hold, self.clock.now().year());
        }
        *hold
    }

    /// Channel money stops from 22:55:00 on 31 December until the cable company has shown the new
    /// year with ServiceState 0 and a 6001 sent after that has replaced the cache.
    pub fn year_end_stop(&self) -> bool {
        self.in_year_end_window() || self.year_end_hold().closing.is_some()
    }

    /// 0000 every 60 s whatever the traffic, from 22:55:00 until an answer shows the service
    /// resumed: on a busy link nothing else would bring a status (the 30 s idle heartbeat never
    /// fires), and pays would stay refused after midnight.
    pub fn forced_heartbeat(&self) -> bool {
        let hold = self.year_end_hold();
        hold.closing.is_some() && !hold.resumed
    }

    /// Resumed, waiting for the 6001 that ends the stop.
    pub fn year_end_awaiting_parameters(&self) -> bool {
        let hold = self.year_end_hold();
        hold.closing.is_some() && hold.resumed
    }

    /// A 0000 / 1001 answer: ServiceState 1 on 31 December or 1 January starts the stop (a hub
    /// started during the carry-over has seen no 22:55); ServiceState 0 with a PartnerDate after
    /// the closing year resumes it.
    pub fn observe_status(&self, status: &PartnerStatus) {
        let in_window = self.in_year_end_window();
        let mut hold = self.hold();
        if in_window {
            Self::enter_year_end(&mut hold, self.clock.now().year());
        }
        let date = status.partner_date;
        if status.service_state == 1 {
            if date.month() == 12 && date.day() == 31 {
                Self::enter_year_end(&mut hold, date.year());
            } else if date.month() == 1 && date.day() == 1 {
                Self::enter_year_end(&mut hold, date.year() - 1);
            }
        } else if status.service_state == 0 {
            if let Some(closing) = hold.closing {
                if date.year() > closing {
                    hold.resumed = true;
                }
            }
        }
    }

    /// A 6001 replaced the cache; `sent_after_resume` says whether it left after the resumption
    /// (only such a download carries the new year's set).
    pub fn parameters_replaced(&self, sent_after_resume: bool) {
        let mut hold = self.hold();
        if sent_after_resume && hold.resumed {
            hold.done_for = hold.closing;
            hold.closing = None;
            hold.resumed = false;
        }
    }

    /// Whether a refusal from the cached prices may start a 6001 now (at most one per `gap`),
    /// noting it if so.
    pub fn cache_refresh_due(&self, gap: Duration) -> bool {
        let mut last = match self.last_cache_refresh.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < gap) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// Reads a 0000 / 1001 answer's status fields.
pub fn read_status(decoded: &Decoded) -> Option<PartnerStatus> {
    if decoded.header.rsp_code != "00" {
        return None;
    }
    let mut r = decoded.reader();
    let partner_date = r.date("PartnerDate").ok()?;
    let param_version = r.n("ParamVersion", 10).ok()?;
    let service_state = u8::try_from(r.n("ServiceState", 1).ok()?).ok()?;
    r.finish().ok()?;
    Some(PartnerStatus {
        partner_date,
        param_version,
        service_state,
    })
}

/// Keeps the link up until shutdown: connect, sign in, serve, and after a drop wait the backoff.
pub(crate) async fn run(inner: Arc<Inner>, on_status: mpsc::UnboundedSender<PartnerStatus>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut attempt = 0usize;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let signed_in = tokio::select! {
            ok = connection(&inner, &on_status) => ok,
            _ = shutdown.changed() => return,
        };
        inner.set_writer(None);
        inner.fail_all_pending("链路中断");
        if signed_in {
            attempt = 0;
        }
        let delays = &inner.settings.backoff_ms;
        let delay_ms = delays
            .get(attempt)
            .or(delays.last())
            .copied()
            .unwrap_or(1_000);
        attempt = attempt.saturating_add(1);
        tracing::info!(addr = %inner.addr, delay_ms, "Cable TV link down; reconnecting after backoff.");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(delay_ms)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One connection's life; true when it got signed in.
async fn connection(inner: &Arc<Inner>, on_status: &mpsc::UnboundedSender<PartnerStatus>) -> bool {
    let connect = tokio::time::timeout(
        Duration::from_millis(inner.settings.connect_timeout_ms),
        TcpStream::connect(inner.addr.as_str()),
    )
    .await;
    let Ok(Ok(stream)) = connect else {
        tracing::warn!(addr = %inner.addr, "Cable TV connect failed.");
        return false;
    };
    inner.connects.fetch_add(1, Ordering::SeqCst);
    let (read_half, write_half) = stream.into_split();
    let (frames_tx, frames_rx) = mpsc::channel::<Vec<u8>>(64);
    let writer_task = tokio::spawn(write_loop(
        inner.clone(),
        write_half,
        frames_rx,
        frames_tx.clone(),
    ));
    let reader_task = tokio::spawn(read_loop(
        inner.clone(),
        read_half,
        frames_tx.clone(),
        on_status.clone(),
    ));
    // Sign-in is the first frame; until it succeeds nobody else may use this connection.
    let caller = match inner.system_caller().await {
        Ok(caller) => caller,
        Err(e) => {
            tracing::warn!(error = %e, "Cable TV sign-in not sent: no serial.");
            reader_task.abort();
            writer_task.abort();
            return false;
        }
    };
    let version = inner.cached_param_version.load(Ordering::SeqCst);
    let answer = inner
        .send_on(&frames_tx, TxCode::SignIn, &caller, |w| {
            w.n("ParamVersion", version, 10)
        })
        .await;
    let status = match answer {
        Ok(decoded) => {
            let status = read_status(&decoded);
            if status.is_none() {
                tracing::warn!(code = %decoded.header.rsp_code, "Cable TV sign-in refused.");
            }
            status
        }
        Err(e) => {
            tracing::warn!(error = %e, "Cable TV sign-in got no answer.");
            None
        }
    };
    let signed_in = status.is_some();
    if let Some(status) = status {
        inner.observe_status(&status);
        inner.status.send_replace(Some(status));
        // The writer first, then the status: the status may start a 6001, which must find the
        // link signed in (it was refused as "not sent" when it raced ahead).
        inner.set_writer(Some(frames_tx.clone()));
        tracing::info!(addr = %inner.addr, "Cable TV link signed in.");
        let _ = on_status.send(status);
    }
    drop(frames_tx);
    // The reader ends on EOF, a protocol error or receive silence; the writer on a write error.
    let mut reader_task = reader_task;
    let mut writer_task = writer_task;
    if signed_in {
        tokio::select! {
            _ = &mut reader_task => {}
            _ = &mut writer_task => {}
        }
    }
    reader_task.abort();
    writer_task.abort();
    signed_in
}

async fn write_loop(
    inner: Arc<Inner>,
    write_half: tokio::net::tcp::OwnedWriteHalf,
    mut frames: mpsc::Receiver<Vec<u8>>,
    own: mpsc::Sender<Vec<u8>>,
) {
    // `own` is only used to build heartbeats; dropping it keeps the channel alive for them.
    drop(own);
    let mut sink = FramedWrite::new(write_half, FrameCodec);
    let idle = Duration::from_millis(inner.settings.heartbeat_idle_ms);
    let year_end_every = Duration::from_millis(inner.settings.year_end_heartbeat_ms);
    let mut last_sent = Instant::now();
    let mut last_heartbeat = Instant::now();
    loop {
        let idle_deadline = last_sent + idle;
        let deadline = if inner.forced_heartbeat() {
            idle_deadline.min(last_heartbeat + year_end_every)
        } else {
            idle_deadline
        };
        tokio::select! {
            next = frames.recv() => {
                let Some(body) = next else { return };
                if sink.send(body).await.is_err() {
                    return;
                }
                last_sent = Instant::now();
            }
            _ = tokio::time::sleep_until(deadline) => {
                let caller = match inner.system_caller().await {
                    Ok(caller) => caller,
                    Err(e) => {
                        // No serial, no heartbeat; tried again after the next idle period.
                        tracing::warn!(error = %e, "Cable TV heartbeat not sent: no serial.");
                        last_sent = Instant::now();
                        last_heartbeat = last_sent;
                        continue;
                    }
                };
                let header = inner.header(TxCode::Heartbeat, &caller);
                let Ok(body) = encode_body(&header, &inner.key, |_| Ok(())) else { return };
                if sink.send(body).await.is_err() {
                    return;
                }
                last_sent = Instant::now();
                last_heartbeat = last_sent;
            }
        }
    }
}

async fn read_loop(
    inner: Arc<Inner>,
    read_half: tokio::net::tcp::OwnedReadHalf,
    frames: mpsc::Sender<Vec<u8>>,
    on_status: mpsc::UnboundedSender<PartnerStatus>,
) {
    let mut stream = FramedRead::new(read_half, FrameCodec);
    let idle = Duration::from_millis(inner.settings.receive_idle_ms);
    loop {
        let next = match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(body))) => body,
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "Cable TV frame error; closing the link.");
                return;
            }
            Ok(None) => return,
            Err(_) => {
                tracing::warn!("Cable TV link silent too long; closing it.");
                return;
            }
        };
        match decode_body(&next, &inner.key) {
            Ok(decoded) if decoded.is_response() => {
                // The sign-in's status is handled where the sign-in was sent, after the writer is
                // set (see `connection`).
                if decoded.tx == Some(TxCode::Heartbeat) {
                    if let Some(status) = read_status(&decoded) {
                        inner.observe_status(&status);
                        inner.status.send_replace(Some(status));
                        let _ = on_status.send(status);
                    }
                }
                // 92: the cable company no longer holds this connection signed in. Spec 04 has
                // a 92 re-sent "after reconnect and sign-in": the link is closed now, before
                // its caller can retry on it, and the run loop reconnects and signs in again.
                let not_signed_in = decoded.header.rsp_code == "92";
                if not_signed_in {
                    inner.set_writer(None);
                }
                inner.deliver(decoded);
                if not_signed_in {
                    tracing::warn!("Cable TV answered 92 (not signed in); reconnecting.");
                    return;
                }
            }
            Ok(request) => {
                let code = if request.tx == Some(TxCode::Heartbeat) {
                    "00"
                } else {
                    "90"
                };
                if let Ok(body) = answer_partner(&inner, &request, code) {
                    let _ = frames.send(body).await;
                }
            }
            Err(WireError::BadMac { serial, .. }) => {
                // The frame is dropped; its request is treated as timed out at once.
                let tx_date = next
                    .get(27..35)
                    .and_then(|raw| std::str::from_utf8(raw).ok())
                    .and_then(codecs::clock::parse_yyyymmdd);
                tracing::warn!(serial = %serial, "Cable TV answer with a bad MAC dropped.");
                inner.fail_one(tx_date, &serial, "应答MAC错");
            }
            Err(WireError::Field {
                field,
                offset,
                found,
            }) => {
                tracing::warn!(field, offset, found = %found, "Cable TV frame with a bad header field dropped.");
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cable TV protocol error; closing the link.");
                return;
            }
        }
    }
}

/// The hub's answer to a request of the cable company: 0000 with its date, cached ParamVersion
/// and 0; anything else 90.
fn answer_partner(inner: &Inner, request: &Decoded, code: &str) -> Result<Vec<u8>, WireError> {
    let mut header = request.header.clone();
    header.msg_type = 1;
    header.rsp_code = code.to_string();
    header.rsp_msg = if code == "00" {
        "成功"
    } else {
        "报文格式错"
    }
    .to_string();
    let today = inner.clock.today();
    let version = inner.cached_param_version.load(Ordering::SeqCst);
    encode_body(&header, &inner.key, |w| {
        if code == "00" {
            w.date("PartnerDate", today)?;
            w.n("ParamVersion", version, 10)?;
            w.n("ServiceState", 0, 1)?;
        }
        Ok(())
    })
}
