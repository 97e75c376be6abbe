//! The one long-lived multiplexed link: connect, sign in (1001), heartbeats both ways, requests in
//! flight matched on (TxDate, Serial), reconnect with backoff. A call that may have reached the
//! cable company never ends as "not sent": it is answered, or `Lost` (timeout, link dropped, bad
//! answer MAC), and the engine resolves it. The link never re-sends.

use std::collections::HashMap;
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
    /// From 22:55:00 on 31 December, 0000 this often whatever the traffic (60 s).
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
    serial_seq: AtomicU64,
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
            serial_seq: AtomicU64::new(0),
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

    /// A hub-originated caller: Channel XT, teller SYSTEM, a serial the engine never uses
    /// (`XT` + date + 10 digits).
    pub fn system_caller(&self) -> Caller {
        let now = self.clock.now();
        let seq = self.serial_seq.fetch_add(1, Ordering::SeqCst) + 1;
        Caller {
            branch_no: String::new(),
            teller_no: "SYSTEM".to_string(),
            channel: "XT".to_string(),
            tx_date: now.date(),
            tx_time: now.time().with_nanosecond(0).unwrap_or(now.time()),
            serial: format!("XT{}{:010}", yyyymmdd(now.date()), seq % 10_000_000_000),
        }
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
    let caller = inner.system_caller();
    let version = inner.cached_param_version.load(Ordering::SeqCst);
    let answer = inner
        .send_on(&frames_tx, TxCode::SignIn, &caller, |w| {
            w.n("ParamVersion", version, 10)
        })
        .await;
    let signed_in = match answer {
        Ok(decoded) => match read_status(&decoded) {
            Some(status) => {
                let _ = on_status.send(status);
                inner.status.send_replace(Some(status));
                true
            }
            None => {
                tracing::warn!(code = %decoded.header.rsp_code, "Cable TV sign-in refused.");
                false
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "Cable TV sign-in got no answer.");
            false
        }
    };
    if signed_in {
        inner.set_writer(Some(frames_tx.clone()));
        tracing::info!(addr = %inner.addr, "Cable TV link signed in.");
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
        let deadline = if inner.in_year_end_window() {
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
                let caller = inner.system_caller();
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
                if decoded.tx == Some(TxCode::Heartbeat) || decoded.tx == Some(TxCode::SignIn) {
                    if let Some(status) = read_status(&decoded) {
                        inner.status.send_replace(Some(status));
                        let _ = on_status.send(status);
                    }
                }
                inner.deliver(decoded);
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
