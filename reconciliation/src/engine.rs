//! The engine: which records are in scope for business date D, the core's net position per hub
//! serial, one classification per hub serial, and the settlement of the matched records.
//!
//! Keys: a hub record is `(tx_date, hub_serial)`; the partner file carries the same pair as
//! `(TxDate, BankSerial)`; the core file as `(HubTranDate, HubSeqNo)` of the original 8002, and a
//! V line points at its original through `OrigCoreSeqNo`.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use codecs::clock::{parse_yyyymmdd, yyyymmdd};
use codecs::Money;

use crate::core_file::{CoreRecord, CoreStatus};
use crate::mask::mask_account;
use crate::model::{
    AwaitingCore, CoreExpectation, Difference, DifferenceKind, HubRecord, HubState, MatchedRecord,
    PartnerRecord, ReconInput, ReconResult, Settlement, Totals,
};

type Key<'a> = (NaiveDate, &'a str);

/// The deterministic SeqNo of a settlement 8002, so that a rerun never posts twice.
pub fn settlement_seq_no(instance: &str, business_date: NaiveDate) -> String {
    format!("S{instance}{}", yyyymmdd(business_date))
}

/// The core Summary of a settlement, as each partner's spec names it. Unknown payees get a
/// generic prefix rather than another partner's name.
pub fn settlement_summary(payee: &str, instance: &str, business_date: NaiveDate) -> String {
    let prefix = match payee {
        "CDGJ" => "电费结算",
        "YXCATV" => "收视费结算",
        _ => "代收结算",
    };
    format!("{prefix}{instance}{}", yyyymmdd(business_date))
}

/// Reconciles one partner instance for one business date.
pub fn reconcile(input: &ReconInput) -> ReconResult {
    reconcile_with_carried(input, &[])
}

/// Like [`reconcile`], and also re-examines `Posted`/`NotPosted` records that earlier runs left
/// in `awaiting_core` (their core file had not arrived). Those that now agree with the core are
/// matched and settled with this business date (spec 01, "Settlement": a record of AcctDate D
/// posted on CoreDate D+1 is settled with AcctDate D+1's records).
pub fn reconcile_with_carried(input: &ReconInput, carried: &[AwaitingCore]) -> ReconResult {
    Engine::new(input).run(carried)
}

enum Outcome {
    Matched(MatchedRecord),
    Difference(Difference),
    /// Reported, and settled all the same (see [`ReconInput::settle_unconfirmed`]).
    SettledDifference(Difference, Money),
    Awaiting(AwaitingCore),
    /// Nothing to report: e.g. a clean reversal or failure.
    Clean,
}

/// The core postings of one original 8002, across every available file.
#[derive(Default)]
struct CoreView<'a> {
    /// S and R lines of the original (normally one).
    originals: Vec<&'a CoreRecord>,
    /// S lines not undone by a V line, crediting this instance's suspense account.
    standing: Vec<&'a CoreRecord>,
    /// S lines not undone, crediting some other account.
    standing_elsewhere: Vec<&'a CoreRecord>,
    /// An R line, or a V line for one of the originals (or for the hub's recorded CoreSeqNo).
    reversal_seen: bool,
}

impl CoreView<'_> {
    fn found(&self) -> bool {
        !self.originals.is_empty() || self.reversal_seen
    }

    fn standing_amount(&self) -> Option<Money> {
        sum(self.standing.iter().map(|r| r.amount))
    }

    fn any_standing(&self) -> bool {
        !self.standing.is_empty() || !self.standing_elsewhere.is_empty()
    }

    fn first_standing(&self) -> Option<&CoreRecord> {
        self.standing
            .first()
            .or(self.standing_elsewhere.first())
            .copied()
    }
}

fn sum(amounts: impl Iterator<Item = Money>) -> Option<Money> {
    amounts
        .into_iter()
        .try_fold(Money::ZERO, |acc, m| acc.checked_add(m))
}

struct CoreIndex<'a> {
    available: BTreeSet<NaiveDate>,
    /// In-scope lines only (this purpose, not a settlement).
    lines: Vec<&'a CoreRecord>,
    originals: HashMap<Key<'a>, Vec<&'a CoreRecord>>,
    reversals: HashMap<&'a str, Vec<&'a CoreRecord>>,
}

impl<'a> CoreIndex<'a> {
    fn view(
        &self,
        key: Key<'_>,
        hub_core_seq_no: Option<&str>,
        suspense_acct: &str,
    ) -> CoreView<'a> {
        let mut view = CoreView::default();
        if let Some(originals) = self.originals.get(&key) {
            for line in originals {
                view.originals.push(line);
                match line.status {
                    CoreStatus::ReversedSameDay => view.reversal_seen = true,
                    CoreStatus::Standing
                        if self.reversals.contains_key(line.core_seq_no.as_str()) =>
                    {
                        view.reversal_seen = true
                    }
                    CoreStatus::Standing if line.credit_acct == suspense_acct => {
                        view.standing.push(line)
                    }
                    CoreStatus::Standing => view.standing_elsewhere.push(line),
                    CoreStatus::ReversalOfEarlier => {}
                }
            }
        }
        // The original may sit in a file not given to this run; its V line still proves the reversal.
        if let Some(seq) = hub_core_seq_no {
            if self.reversals.contains_key(seq) {
                view.reversal_seen = true;
                view.standing.retain(|l| l.core_seq_no != seq);
                view.standing_elsewhere.retain(|l| l.core_seq_no != seq);
            }
        }
        view
    }

    fn is_available(&self, date: NaiveDate) -> bool {
        self.available.contains(&date)
    }

    /// The first of `dates` whose file is missing.
    fn first_missing(&self, dates: &[NaiveDate]) -> Option<NaiveDate> {
        dates.iter().copied().find(|d| !self.is_available(*d))
    }
}

/// True when `seq` is a settlement SeqNo of this instance (`S<code><YYYYMMDD>`), of any date.
/// The code is the instance name or the one this run's own settlement SeqNo carries (a
/// CompanyCode where the instance name is not letters and digits only).
fn is_settlement_seq_no(seq: &str, instance: &str, this_settlement: &str) -> bool {
    if seq == this_settlement {
        return true;
    }
    let own_code = this_settlement
        .strip_prefix('S')
        .and_then(|rest| rest.get(..rest.len().saturating_sub(8)))
        .unwrap_or(instance);
    [instance, own_code].iter().any(|code| {
        seq.strip_prefix('S')
            .and_then(|rest| rest.strip_prefix(code))
            .is_some_and(|digits| parse_yyyymmdd(digits).is_some())
    })
}

/// The CoreDates a payment debited on hub date `tx_date` can carry: the core refuses a TranDate
/// more than one day before its CoreDate, and switches date at 23:00.
fn possible_core_dates(hub: &HubRecord) -> Vec<NaiveDate> {
    match hub.core_date {
        Some(date) => vec![date],
        None => {
            let mut dates = vec![hub.tx_date];
            if let Some(next) = hub.tx_date.succ_opt() {
                dates.push(next);
            }
            dates
        }
    }
}

struct Engine<'a> {
    input: &'a ReconInput,
    core: CoreIndex<'a>,
    warnings: Vec<String>,
}

impl<'a> Engine<'a> {
    fn new(input: &'a ReconInput) -> Engine<'a> {
        let mut warnings = Vec::new();
        let mut available = BTreeSet::new();
        let mut lines = Vec::new();
        for file in &input.core {
            if !available.insert(file.core_date) {
                warnings.push(format!(
                    "核心{}文件重复提供, 只使用第一份",
                    yyyymmdd(file.core_date)
                ));
                continue;
            }
            for line in &file.records {
                if line.purpose == input.purpose
                    && !is_settlement_seq_no(
                        &line.hub_seq_no,
                        &input.instance,
                        &input.settlement_seq_no,
                    )
                {
                    lines.push(line);
                }
            }
        }
        let mut originals: HashMap<Key<'a>, Vec<&'a CoreRecord>> = HashMap::new();
        let mut reversals: HashMap<&'a str, Vec<&'a CoreRecord>> = HashMap::new();
        for line in &lines {
            match (&line.status, &line.orig_core_seq_no) {
                (CoreStatus::ReversalOfEarlier, Some(orig)) => {
                    reversals.entry(orig.as_str()).or_default().push(line)
                }
                (CoreStatus::ReversalOfEarlier, None) => {}
                _ => originals
                    .entry((line.hub_tran_date, line.hub_seq_no.as_str()))
                    .or_default()
                    .push(line),
            }
        }
        Engine {
            input,
            core: CoreIndex {
                available,
                lines,
                originals,
                reversals,
            },
            warnings,
        }
    }

    fn d(&self) -> NaiveDate {
        self.input.business_date
    }

    fn view_of(&self, hub: &HubRecord) -> CoreView<'a> {
        self.core.view(
            (hub.tx_date, hub.hub_serial.as_str()),
            hub.core_seq_no.as_deref(),
            &self.input.suspense_acct,
        )
    }

    /// Which hub records belong to this business date (before the partner file widens the scope).
    fn hub_in_scope(&self, hub: &HubRecord) -> bool {
        let d = self.d();
        match hub.state {
            // A success without an AcctDate (not expected) is taken on its hub date.
            HubState::Succeeded => hub.acct_date.map_or(hub.tx_date == d, |acct| acct == d),
            _ => {
                hub.tx_date == d
                    || hub.core_date == Some(d)
                    || self.view_of(hub).originals.iter().any(|l| l.core_date == d)
            }
        }
    }

    fn run(mut self, carried: &[AwaitingCore]) -> ReconResult {
        let input = self.input;
        let d = self.d();

        let mut hub_by_key: HashMap<Key<'a>, &'a HubRecord> = HashMap::new();
        let mut hub_order: Vec<&'a HubRecord> = Vec::new();
        for hub in &input.hub {
            let key = (hub.tx_date, hub.hub_serial.as_str());
            if hub_by_key.contains_key(&key) {
                self.warnings
                    .push(format!("本方流水{}重复提供, 只使用第一条", hub.hub_serial));
                continue;
            }
            hub_by_key.insert(key, hub);
            hub_order.push(hub);
        }

        // Serial-only matching: a line takes the date of the hub record with its serial, so a
        // payment accepted before midnight and paid (payTime) after it is still one key.
        let mut hub_date_by_serial: HashMap<&'a str, Option<NaiveDate>> = HashMap::new();
        if input.match_on_bank_serial {
            for hub in &hub_order {
                hub_date_by_serial
                    .entry(hub.hub_serial.as_str())
                    .and_modify(|date| {
                        // Two hub dates for one serial: ambiguous, keep the line's own date.
                        if *date != Some(hub.tx_date) {
                            *date = None
                        }
                    })
                    .or_insert(Some(hub.tx_date));
            }
        }
        let mut partner_by_key: HashMap<Key<'a>, Vec<&'a PartnerRecord>> = HashMap::new();
        let mut partner_keys: Vec<Key<'a>> = Vec::new();
        let mut partner_lines: Vec<&'a PartnerRecord> = Vec::new();
        for line in &input.partner {
            if line.acct_date != d {
                self.warnings.push(format!(
                    "对方文件第{}行记账日期{}不是对账日期, 未参与本次对账",
                    line.line_no,
                    yyyymmdd(line.acct_date)
                ));
                continue;
            }
            partner_lines.push(line);
            let date = hub_date_by_serial
                .get(line.bank_serial.as_str())
                .copied()
                .flatten()
                .unwrap_or(line.tx_date);
            let key = (date, line.bank_serial.as_str());
            let entry = partner_by_key.entry(key).or_default();
            if entry.is_empty() {
                partner_keys.push(key);
            }
            entry.push(line);
        }

        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut core_seen: HashSet<&'a str> = HashSet::new();
        let mut classified: HashSet<Key<'a>> = HashSet::new();
        let mut hub_success: Vec<Money> = Vec::new();
        let mut hub_other: Vec<Money> = Vec::new();

        for hub in &hub_order {
            let key = (hub.tx_date, hub.hub_serial.as_str());
            let partner = partner_by_key
                .get(&key)
                .and_then(|lines| lines.first().copied());
            if !self.hub_in_scope(hub) && partner.is_none() {
                continue;
            }
            classified.insert(key);
            if hub.state == HubState::Succeeded
                && hub.acct_date.map_or(hub.tx_date == d, |a| a == d)
            {
                hub_success.push(hub.amount);
            } else {
                hub_other.push(hub.amount);
            }
            let view = self.view_of(hub);
            for line in view.standing.iter().chain(&view.standing_elsewhere) {
                core_seen.insert(line.core_seq_no.as_str());
            }
            outcomes.push(self.classify(hub, partner, &view));
        }

        // Partner lines: no hub record at all, or listed more than once.
        for key in &partner_keys {
            let Some(lines) = partner_by_key.get(key) else {
                continue;
            };
            for (i, line) in lines.iter().enumerate() {
                let detail = if i > 0 {
                    format!("对方文件第{}行重复列出该流水", line.line_no)
                } else if !hub_by_key.contains_key(key) {
                    format!("对方文件第{}行有此流水, 本方无此交易", line.line_no)
                } else {
                    continue;
                };
                outcomes.push(Outcome::Difference(Difference {
                    kind: DifferenceKind::PartnerNotHubSuccess,
                    hub_serial: line.bank_serial.clone(),
                    tx_date: line.tx_date,
                    hub_amount: None,
                    partner_amount: Some(line.amount),
                    core_amount: None,
                    partner_serial: Some(line.partner_serial.clone()),
                    core_seq_no: None,
                    detail,
                }));
            }
        }

        // Records left waiting for their core file by earlier runs.
        let mut carried_keys: HashSet<Key<'_>> = HashSet::new();
        for awaiting in carried {
            let key = (awaiting.tx_date, awaiting.hub_serial.as_str());
            carried_keys.insert(key);
            if classified.contains(&key) {
                self.warnings.push(format!(
                    "待核心入账流水{}已在本次对账中, 不再重复处理",
                    awaiting.hub_serial
                ));
                continue;
            }
            let view = self.core.view(key, None, &input.suspense_acct);
            for line in view.standing.iter().chain(&view.standing_elsewhere) {
                core_seen.insert(line.core_seq_no.as_str());
            }
            outcomes.push(self.classify_carried(awaiting, &view));
        }

        // Core postings of this purpose to this instance's suspense account that no hub record
        // explains. Reported on the business date equal to their CoreDate only, so each is reported once.
        let hub_core_seq_nos: HashSet<&str> = input
            .hub
            .iter()
            .filter_map(|h| h.core_seq_no.as_deref())
            .collect();
        for line in &self.core.lines {
            let key = (line.hub_tran_date, line.hub_seq_no.as_str());
            if line.status != CoreStatus::Standing
                || line.core_date != d
                || line.credit_acct != input.suspense_acct
                || self.core.reversals.contains_key(line.core_seq_no.as_str())
                || hub_by_key.contains_key(&key)
                || carried_keys.contains(&key)
                || hub_core_seq_nos.contains(line.core_seq_no.as_str())
            {
                continue;
            }
            core_seen.insert(line.core_seq_no.as_str());
            outcomes.push(Outcome::Difference(Difference {
                kind: DifferenceKind::CoreNotHubSuccess,
                hub_serial: line.hub_seq_no.clone(),
                tx_date: line.hub_tran_date,
                hub_amount: None,
                partner_amount: None,
                core_amount: Some(line.amount),
                partner_serial: None,
                core_seq_no: Some(line.core_seq_no.clone()),
                detail: format!(
                    "核心{}文件第{}行有记账(借方{}), 本方无此交易",
                    yyyymmdd(line.core_date),
                    line.line_no,
                    mask_account(&line.debit_acct)
                ),
            }));
        }

        let core_amounts: Vec<Money> = self
            .core
            .lines
            .iter()
            .filter(|l| core_seen.contains(l.core_seq_no.as_str()))
            .map(|l| l.amount)
            .collect();
        self.finish(
            outcomes,
            &hub_success,
            &hub_other,
            &partner_lines,
            &core_amounts,
        )
    }

    fn classify(
        &self,
        hub: &HubRecord,
        partner: Option<&PartnerRecord>,
        view: &CoreView<'_>,
    ) -> Outcome {
        let d = self.d();
        let core_amount = view
            .any_standing()
            .then(|| view.standing_amount())
            .flatten();
        let difference = |kind: DifferenceKind, detail: String| {
            Outcome::Difference(Difference {
                kind,
                hub_serial: hub.hub_serial.clone(),
                tx_date: hub.tx_date,
                hub_amount: Some(hub.amount),
                partner_amount: partner.map(|p| p.amount),
                core_amount,
                partner_serial: partner.map(|p| p.partner_serial.clone()),
                core_seq_no: view
                    .first_standing()
                    .map(|l| l.core_seq_no.clone())
                    .or_else(|| hub.core_seq_no.clone()),
                detail,
            })
        };

        if hub.state == HubState::InDoubt {
            let partner_text = if partner.is_some() {
                "对方文件有此流水"
            } else {
                "对方文件无此流水"
            };
            let core_text = if view.any_standing() {
                "核心有记账"
            } else {
                "核心无未冲正记账"
            };
            return difference(
                DifferenceKind::HubInDoubt,
                format!("本方交易未完成, {partner_text}, {core_text}, 需人工核实"),
            );
        }

        if hub.state != HubState::Succeeded {
            if let Some(line) = partner {
                return difference(
                    DifferenceKind::PartnerNotHubSuccess,
                    format!(
                        "对方文件第{}行有此流水, 本方状态为{}",
                        line.line_no,
                        hub.state.label_zh()
                    ),
                );
            }
            if let Some(posting) = view.first_standing() {
                let reversal_date = posting.core_date.succ_opt();
                let reversal_may_be_unseen = hub.reversal_seq_no.is_some()
                    && !view.reversal_seen
                    && reversal_date.is_some_and(|next| !self.core.is_available(next));
                if reversal_may_be_unseen {
                    return Outcome::Awaiting(self.awaiting(
                        hub,
                        None,
                        reversal_date,
                        CoreExpectation::NotPosted,
                        "本方已冲正, 核心冲正记录所在日期的文件未到".to_string(),
                    ));
                }
                return difference(
                    DifferenceKind::CoreNotHubSuccess,
                    format!(
                        "核心{}流水{}记账未冲正, 本方状态为{}",
                        yyyymmdd(posting.core_date),
                        posting.core_seq_no,
                        hub.state.label_zh()
                    ),
                );
            }
            if let Some(core_date) = hub
                .core_date
                .filter(|c| !view.found() && !self.core.is_available(*c))
            {
                return Outcome::Awaiting(self.awaiting(
                    hub,
                    None,
                    Some(core_date),
                    CoreExpectation::NotPosted,
                    format!(
                        "本方{}, 核心{}文件未到",
                        hub.state.label_zh(),
                        yyyymmdd(core_date)
                    ),
                ));
            }
            return Outcome::Clean;
        }

        // Succeeded.
        if let Some(acct) = hub.acct_date.filter(|a| *a != d) {
            if let Some(line) = partner {
                return difference(
                    DifferenceKind::PartnerNotHubSuccess,
                    format!(
                        "对方文件第{}行有此流水, 本方记录的对方记账日期为{}",
                        line.line_no,
                        yyyymmdd(acct)
                    ),
                );
            }
        }
        let Some(partner_line) = partner else {
            let posted = view
                .standing
                .first()
                .is_some_and(|posting| posting.amount == hub.amount);
            if self.input.settle_unconfirmed && posted {
                let detail = if self.input.partner_file_absent {
                    "对方文件未到（通知未确认）；核心已入账，照常结算"
                } else {
                    "对方文件无此流水（通知未确认，已重新通知）；核心已入账，照常结算"
                };
                if let Outcome::Difference(d) = difference(
                    DifferenceKind::HubSuccessMissingAtPartner,
                    detail.to_string(),
                ) {
                    return Outcome::SettledDifference(d, hub.amount);
                }
            }
            return difference(
                DifferenceKind::HubSuccessMissingAtPartner,
                "对方文件无此流水".to_string(),
            );
        };
        let Some(posting) = view.standing.first() else {
            if view.found() || !view.standing_elsewhere.is_empty() {
                let detail = if view.standing_elsewhere.is_empty() {
                    "核心已冲正该笔记账"
                } else {
                    "核心记账的贷方账户不是本实例过渡户"
                };
                return difference(DifferenceKind::HubSuccessMissingAtCore, detail.to_string());
            }
            let expected = possible_core_dates(hub);
            return match self.core.first_missing(&expected) {
                None => difference(
                    DifferenceKind::HubSuccessMissingAtCore,
                    format!(
                        "核心{}文件无此记账",
                        expected
                            .iter()
                            .map(|d| yyyymmdd(*d))
                            .collect::<Vec<_>>()
                            .join("/")
                    ),
                ),
                // Hub and partner must agree before a record may wait for the core.
                Some(_) if partner_line.amount != hub.amount => difference(
                    DifferenceKind::AmountMismatch,
                    format!(
                        "本方金额{}与对方金额{}不符(核心文件未到)",
                        hub.amount.to_yuan(),
                        partner_line.amount.to_yuan()
                    ),
                ),
                Some(missing) => Outcome::Awaiting(self.awaiting(
                    hub,
                    Some(partner_line),
                    Some(missing),
                    CoreExpectation::Posted,
                    format!("核心{}文件未到, 待入账核对后结算", yyyymmdd(missing)),
                )),
            };
        };
        let core_net = view.standing_amount();
        // Spec 09: the bureau's money is what is paid in the journal and posted at core; its
        // file confirms, it does not gate. A line whose amount differs is reported, and the
        // payment settles with the amount hub and core agree on.
        if self.input.settle_unconfirmed
            && partner_line.amount != hub.amount
            && core_net == Some(hub.amount)
        {
            if let Outcome::Difference(d) = difference(
                DifferenceKind::AmountMismatch,
                format!(
                    "本方金额{}, 对方金额{}, 核心金额{}；核心已按本方金额入账，照常结算",
                    hub.amount.to_yuan(),
                    partner_line.amount.to_yuan(),
                    hub.amount.to_yuan()
                ),
            ) {
                return Outcome::SettledDifference(d, hub.amount);
            }
        }
        if partner_line.amount != hub.amount || core_net != Some(hub.amount) {
            return difference(
                DifferenceKind::AmountMismatch,
                format!(
                    "本方金额{}, 对方金额{}, 核心金额{}",
                    hub.amount.to_yuan(),
                    partner_line.amount.to_yuan(),
                    core_net.map_or_else(|| "溢出".to_string(), |m| m.to_yuan())
                ),
            );
        }
        Outcome::Matched(MatchedRecord {
            hub_serial: hub.hub_serial.clone(),
            tx_date: hub.tx_date,
            channel: hub.channel.clone(),
            customer_no: hub.customer_no.clone(),
            amount: hub.amount,
            partner_serial: partner_line.partner_serial.clone(),
            acct_date: partner_line.acct_date,
            core_seq_no: posting.core_seq_no.clone(),
            core_date: posting.core_date,
            carried_from: None,
        })
    }

    fn awaiting(
        &self,
        hub: &HubRecord,
        partner: Option<&PartnerRecord>,
        awaited_core_date: Option<NaiveDate>,
        expects: CoreExpectation,
        detail: String,
    ) -> AwaitingCore {
        AwaitingCore {
            hub_serial: hub.hub_serial.clone(),
            tx_date: hub.tx_date,
            channel: hub.channel.clone(),
            customer_no: hub.customer_no.clone(),
            amount: hub.amount,
            partner_serial: partner.map(|p| p.partner_serial.clone()),
            acct_date: partner.map(|p| p.acct_date).or(hub.acct_date),
            business_date: self.d(),
            awaited_core_date,
            expects,
            detail,
        }
    }

    fn classify_carried(&self, awaiting: &AwaitingCore, view: &CoreView<'_>) -> Outcome {
        let core_amount = view
            .any_standing()
            .then(|| view.standing_amount())
            .flatten();
        let difference = |kind: DifferenceKind, detail: String| {
            Outcome::Difference(Difference {
                kind,
                hub_serial: awaiting.hub_serial.clone(),
                tx_date: awaiting.tx_date,
                hub_amount: Some(awaiting.amount),
                partner_amount: (awaiting.expects == CoreExpectation::Posted)
                    .then_some(awaiting.amount),
                core_amount,
                partner_serial: awaiting.partner_serial.clone(),
                core_seq_no: view.first_standing().map(|l| l.core_seq_no.clone()),
                detail: format!(
                    "{}日待核心入账记录: {detail}",
                    yyyymmdd(awaiting.business_date)
                ),
            })
        };
        let expected: Vec<NaiveDate> = match awaiting.awaited_core_date {
            Some(date) => vec![date],
            None => [Some(awaiting.tx_date), awaiting.tx_date.succ_opt()]
                .into_iter()
                .flatten()
                .collect(),
        };
        let still_waiting = || Outcome::Awaiting(awaiting.clone());
        match awaiting.expects {
            CoreExpectation::NotPosted => match view.first_standing() {
                Some(posting) => difference(
                    DifferenceKind::CoreNotHubSuccess,
                    format!(
                        "核心{}流水{}记账未冲正",
                        yyyymmdd(posting.core_date),
                        posting.core_seq_no
                    ),
                ),
                None if !view.found() && self.core.first_missing(&expected).is_some() => {
                    still_waiting()
                }
                None => Outcome::Clean,
            },
            CoreExpectation::Posted => match view.standing.first() {
                Some(posting) if view.standing_amount() == Some(awaiting.amount) => {
                    Outcome::Matched(MatchedRecord {
                        hub_serial: awaiting.hub_serial.clone(),
                        tx_date: awaiting.tx_date,
                        channel: awaiting.channel.clone(),
                        customer_no: awaiting.customer_no.clone(),
                        amount: awaiting.amount,
                        partner_serial: awaiting.partner_serial.clone().unwrap_or_default(),
                        acct_date: awaiting.acct_date.unwrap_or(awaiting.business_date),
                        core_seq_no: posting.core_seq_no.clone(),
                        core_date: posting.core_date,
                        carried_from: Some(awaiting.business_date),
                    })
                }
                Some(_) => difference(
                    DifferenceKind::AmountMismatch,
                    "核心金额与本方金额不符".to_string(),
                ),
                None if view.found() || !view.standing_elsewhere.is_empty() => difference(
                    DifferenceKind::HubSuccessMissingAtCore,
                    "核心无本实例过渡户的未冲正记账".to_string(),
                ),
                None => match self.core.first_missing(&expected) {
                    Some(_) => still_waiting(),
                    None => difference(
                        DifferenceKind::HubSuccessMissingAtCore,
                        "核心文件无此记账".to_string(),
                    ),
                },
            },
        }
    }

    fn finish(
        mut self,
        outcomes: Vec<Outcome>,
        hub_success: &[Money],
        hub_other: &[Money],
        partner_lines: &[&PartnerRecord],
        core_amounts: &[Money],
    ) -> ReconResult {
        let input = self.input;
        let mut matched = Vec::new();
        let mut differences = Vec::new();
        let mut awaiting_core = Vec::new();
        let mut settled_unconfirmed = Vec::new();
        for outcome in outcomes {
            match outcome {
                Outcome::Matched(m) => matched.push(m),
                Outcome::Difference(x) => differences.push(x),
                Outcome::SettledDifference(x, amount) => {
                    differences.push(x);
                    settled_unconfirmed.push(amount);
                }
                Outcome::Awaiting(a) => awaiting_core.push(a),
                Outcome::Clean => {}
            }
        }
        matched.sort_by(|a, b| (a.tx_date, &a.hub_serial).cmp(&(b.tx_date, &b.hub_serial)));
        differences.sort_by(|a, b| {
            (a.kind, a.tx_date, &a.hub_serial).cmp(&(b.kind, b.tx_date, &b.hub_serial))
        });
        awaiting_core.sort_by(|a, b| (a.tx_date, &a.hub_serial).cmp(&(b.tx_date, &b.hub_serial)));

        let mut overflowed = false;
        let mut total = |what: &str, amounts: &mut dyn Iterator<Item = Money>| -> Money {
            sum(amounts).unwrap_or_else(|| {
                overflowed = true;
                self.warnings.push(format!("{what}合计溢出"));
                Money::ZERO
            })
        };
        let matched_amount = total("匹配金额", &mut matched.iter().map(|m| m.amount));
        let settled_amount = total(
            "结算金额",
            &mut matched
                .iter()
                .map(|m| m.amount)
                .chain(settled_unconfirmed.iter().copied()),
        );
        let totals = Totals {
            hub_success_count: hub_success.len(),
            hub_success_amount: total("本方成功金额", &mut hub_success.iter().copied()),
            hub_other_count: hub_other.len(),
            hub_other_amount: total("本方其他状态金额", &mut hub_other.iter().copied()),
            partner_count: partner_lines.len(),
            partner_amount: total("对方金额", &mut partner_lines.iter().map(|p| p.amount)),
            core_count: core_amounts.len(),
            core_amount: total("核心金额", &mut core_amounts.iter().copied()),
            matched_count: matched.len(),
            matched_amount,
            difference_count: differences.len(),
            awaiting_core_count: awaiting_core
                .iter()
                .filter(|a| a.expects == CoreExpectation::Posted)
                .count(),
            awaiting_core_amount: total(
                "待核心入账金额",
                &mut awaiting_core
                    .iter()
                    .filter(|a| a.expects == CoreExpectation::Posted)
                    .map(|a| a.amount),
            ),
            awaiting_reversal_count: awaiting_core
                .iter()
                .filter(|a| a.expects == CoreExpectation::NotPosted)
                .count(),
            awaiting_reversal_amount: total(
                "待核心冲正确认金额",
                &mut awaiting_core
                    .iter()
                    .filter(|a| a.expects == CoreExpectation::NotPosted)
                    .map(|a| a.amount),
            ),
        };
        let settlement = Settlement {
            seq_no: input.settlement_seq_no.clone(),
            debit_acct: input.suspense_acct.clone(),
            credit_acct: input.settlement_acct.clone(),
            amount: settled_amount,
            count: matched.len() + settled_unconfirmed.len(),
            summary: settlement_summary(&input.payee, &input.instance, input.business_date),
            purpose: input.purpose.clone(),
            blocked_reason: overflowed.then(|| "金额合计溢出, 不得结算".to_string()),
        };
        ReconResult {
            payee: input.payee.clone(),
            instance: input.instance.clone(),
            business_date: input.business_date,
            core_dates: self.core.available.iter().copied().collect(),
            matched,
            differences,
            awaiting_core,
            settlement,
            totals,
            warnings: self.warnings,
            execution: None,
            unconfirmed_earlier: Vec::new(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core_file::CoreFile;

    pub(crate) const SUSPENSE: &str = "9003100000000001";
    pub(crate) const OTHER_SUSPENSE: &str = "9003100000000002";
    pub(crate) const SETTLEMENT_ACCT: &str = "9003100000009999";
    pub(crate) const CUSTOMER_ACCT: &str = "6230901000000000011";

    pub(crate) fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }
    pub(crate) fn day() -> NaiveDate {
        d(2026, 12, 2)
    }
    pub(crate) fn next_day() -> NaiveDate {
        d(2026, 12, 3)
    }
    pub(crate) fn serial(n: u32) -> String {
        format!("H20261202{n:08}")
    }

    pub(crate) fn hub(n: u32, fen: i64, state: HubState) -> HubRecord {
        let posted = !matches!(state, HubState::Failed);
        HubRecord {
            hub_serial: serial(n),
            tx_date: day(),
            channel: "02".into(),
            customer_no: format!("43100200000{n:05}"),
            amount: Money::from_fen(fen),
            state,
            acct_date: (state == HubState::Succeeded).then(day),
            core_seq_no: posted.then(|| format!("C20261202{n:010}")),
            core_date: posted.then(day),
            reversal_seq_no: None,
        }
    }

    pub(crate) fn partner(line_no: usize, n: u32, fen: i64) -> PartnerRecord {
        PartnerRecord {
            line_no,
            tx_date: day(),
            bank_serial: serial(n),
            partner_serial: format!("P{n:019}"),
            customer_no: format!("43100200000{n:05}"),
            amount: Money::from_fen(fen),
            acct_date: day(),
        }
    }

    /// An S line of the 8002 of hub serial `n`, posted on `core_date`.
    pub(crate) fn core_s(line_no: usize, n: u32, fen: i64, core_date: NaiveDate) -> CoreRecord {
        CoreRecord {
            line_no,
            core_date,
            core_seq_no: format!("C{}{n:010}", yyyymmdd(core_date)),
            hub_seq_no: serial(n),
            hub_tran_date: day(),
            debit_acct: CUSTOMER_ACCT.into(),
            credit_acct: SUSPENSE.into(),
            amount: Money::from_fen(fen),
            status: CoreStatus::Standing,
            orig_core_seq_no: None,
            purpose: "CDGJ".into(),
        }
    }

    pub(crate) fn input(
        hub: Vec<HubRecord>,
        partner: Vec<PartnerRecord>,
        core: Vec<CoreFile>,
    ) -> ReconInput {
        ReconInput {
            payee: "CDGJ".into(),
            instance: "NSH43102".into(),
            business_date: day(),
            hub,
            partner,
            core,
            purpose: "CDGJ".into(),
            suspense_acct: SUSPENSE.into(),
            settlement_acct: SETTLEMENT_ACCT.into(),
            settlement_seq_no: "SNSH4310220261202".into(),
            settle_unconfirmed: false,
            partner_file_absent: false,
            match_on_bank_serial: false,
        }
    }

    /// Three matched payments (100.00, 35.20, 223.35) and one planted record of each difference kind.
    pub(crate) fn planted_input() -> ReconInput {
        let mut p6 = hub(16, 8000, HubState::InDoubt);
        p6.acct_date = None;
        let hub_records = vec![
            hub(1, 10000, HubState::Succeeded),
            hub(2, 3520, HubState::Succeeded),
            hub(3, 22335, HubState::Succeeded),
            hub(11, 5000, HubState::Succeeded), // not in the partner file
            hub(12, 6000, HubState::Failed),    // the partner lists it anyway
            hub(13, 7000, HubState::Succeeded), // partner says 7.00
            hub(14, 4000, HubState::Failed),    // core posted it nevertheless
            hub(15, 9000, HubState::Succeeded), // core has nothing
            p6,                                 // still unfinished at T+1
        ];
        let partner_lines = vec![
            partner(2, 3, 22335),
            partner(3, 1, 10000),
            partner(4, 12, 6000),
            partner(5, 13, 700),
            partner(6, 2, 3520),
            partner(7, 15, 9000),
        ];
        let core_lines = vec![
            core_s(1, 1, 10000, day()),
            core_s(2, 2, 3520, day()),
            core_s(3, 3, 22335, day()),
            core_s(4, 11, 5000, day()),
            core_s(5, 13, 7000, day()),
            core_s(6, 14, 4000, day()),
            core_s(7, 16, 8000, day()),
        ];
        input(
            hub_records,
            partner_lines,
            vec![CoreFile {
                core_date: day(),
                records: core_lines,
            }],
        )
    }

    fn kinds_and_serials(result: &ReconResult) -> Vec<(DifferenceKind, String)> {
        result
            .differences
            .iter()
            .map(|x| (x.kind, x.hub_serial.clone()))
            .collect()
    }

    #[test]
    fn each_planted_difference_is_found_once_and_nothing_else() {
        let result = reconcile(&planted_input());
        assert_eq!(
            kinds_and_serials(&result),
            vec![
                (
                    DifferenceKind::HubSuccessMissingAtPartner,
                    "H2026120200000011".to_string()
                ),
                (
                    DifferenceKind::PartnerNotHubSuccess,
                    "H2026120200000012".to_string()
                ),
                (
                    DifferenceKind::AmountMismatch,
                    "H2026120200000013".to_string()
                ),
                (
                    DifferenceKind::CoreNotHubSuccess,
                    "H2026120200000014".to_string()
                ),
                (
                    DifferenceKind::HubSuccessMissingAtCore,
                    "H2026120200000015".to_string()
                ),
                (DifferenceKind::HubInDoubt, "H2026120200000016".to_string()),
            ]
        );
        let mismatch = &result.differences[2];
        assert_eq!(mismatch.hub_amount, Some(Money::from_fen(7000)));
        assert_eq!(mismatch.partner_amount, Some(Money::from_fen(700)));
        assert_eq!(mismatch.core_amount, Some(Money::from_fen(7000)));
        let core_not_hub = &result.differences[3];
        assert_eq!(core_not_hub.core_amount, Some(Money::from_fen(4000)));
        assert_eq!(
            core_not_hub.core_seq_no.as_deref(),
            Some("C202612020000000014")
        );
        assert_eq!(result.differences[4].core_amount, None);
        assert_eq!(
            result.differences[5].core_amount,
            Some(Money::from_fen(8000))
        );

        let matched: Vec<&str> = result
            .matched
            .iter()
            .map(|m| m.hub_serial.as_str())
            .collect();
        assert_eq!(
            matched,
            [
                "H2026120200000001",
                "H2026120200000002",
                "H2026120200000003"
            ]
        );
        assert!(result.awaiting_core.is_empty());
        assert!(result.warnings.is_empty(), "{:?}", result.warnings);

        let counts = result.difference_counts();
        assert_eq!(counts.len(), 6);
        assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    }

    /// Tobacco (spec 09): the settlement is every payment "paid in the journal and posted (S)
    /// in the core file, whether or not the bureau's file lists them": 100.00 + 35.20 + 223.35
    /// matched, hub 11's 50.00 (posted, not listed) and hub 13's 70.00 (posted at 70.00, listed
    /// at 7.00: still reported as 金额不符); hub 15 (listed, not posted) stays out.
    #[test]
    fn a_confirming_file_does_not_hold_back_the_settlement() {
        let mut input = planted_input();
        input.settle_unconfirmed = true;
        let result = reconcile(&input);
        assert_eq!(
            result.settlement.amount,
            Money::from_fen(10000 + 3520 + 22335 + 5000 + 7000)
        );
        assert_eq!(result.settlement.count, 5);
        let mismatch: Vec<_> = result
            .differences
            .iter()
            .filter(|d| d.kind == DifferenceKind::AmountMismatch)
            .map(|d| (d.hub_serial.clone(), d.partner_amount, d.core_amount))
            .collect();
        assert_eq!(
            mismatch,
            [(
                serial(13),
                Some(Money::from_fen(700)),
                Some(Money::from_fen(7000))
            )]
        );
        let missing: Vec<_> = result
            .differences
            .iter()
            .filter(|d| d.kind == DifferenceKind::HubSuccessMissingAtPartner)
            .map(|d| d.hub_serial.clone())
            .collect();
        assert_eq!(missing, [serial(11)]);
        assert_eq!(result.difference_counts().values().sum::<usize>(), 6);
    }

    /// Tobacco: a payment the core posted at another amount than the journal's is not "paid and
    /// posted" as one payment: reported 金额不符 and not settled, whatever the file says.
    #[test]
    fn a_confirming_file_settles_no_payment_the_core_does_not_show_at_its_amount() {
        let hub_records = vec![hub(1, 10000, HubState::Succeeded)];
        let partner_lines = vec![partner(2, 1, 9000)];
        let core = CoreFile {
            core_date: day(),
            records: vec![core_s(1, 1, 9000, day())],
        };
        let mut input = input(hub_records, partner_lines, vec![core]);
        input.settle_unconfirmed = true;
        let result = reconcile(&input);
        assert_eq!(result.settlement.amount, Money::ZERO);
        assert_eq!(result.settlement.count, 0);
        let kinds: Vec<_> = result.differences.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, [DifferenceKind::AmountMismatch]);
    }

    /// Spec 09: "The engine matches on bankSerial across files". A payment accepted on D at
    /// 23:59:59 (hub date D, the core's HubTranDate D) is posted on CoreDate D+1 after the
    /// core's 23:00 switch, so its acctDate is D+1 and the bureau's file of D+1 lists it with
    /// payTime D+1 00:00:30: one matched record, no difference.
    #[test]
    fn serial_only_matching_joins_a_line_dated_after_the_hub_date() {
        let mut paid = hub(1, 12300, HubState::Succeeded);
        paid.acct_date = Some(next_day());
        paid.core_date = Some(next_day());
        let mut line = partner(2, 1, 12300);
        line.tx_date = next_day();
        line.acct_date = next_day();
        let core = CoreFile {
            core_date: next_day(),
            records: vec![core_s(1, 1, 12300, next_day())],
        };
        let mut input = input(vec![paid], vec![line], vec![core]);
        input.business_date = next_day();
        input.settlement_seq_no = "SNSH4310220261203".into();
        input.settle_unconfirmed = true;

        // The (date, serial) key sees two strangers.
        let keyed_by_date = reconcile(&input);
        let kinds: Vec<_> = keyed_by_date.differences.iter().map(|d| d.kind).collect();
        assert_eq!(
            kinds,
            [
                DifferenceKind::HubSuccessMissingAtPartner,
                DifferenceKind::PartnerNotHubSuccess
            ]
        );

        input.match_on_bank_serial = true;
        let result = reconcile(&input);
        assert!(result.differences.is_empty(), "{:?}", result.differences);
        assert_eq!(result.matched.len(), 1);
        assert_eq!(result.matched[0].hub_serial, serial(1));
        assert_eq!(result.matched[0].tx_date, day());
        assert_eq!(result.matched[0].acct_date, next_day());
        assert_eq!(result.settlement.amount, Money::from_fen(12300));
        assert_eq!(result.settlement.count, 1);
    }

    /// Spec 09: settlement does not wait for the bureau's file. Without it, the paid and posted
    /// payments (100.00 + 35.20) settle and each is reported unconfirmed; a failed one does not.
    #[test]
    fn without_the_confirming_file_paid_and_posted_payments_settle() {
        let hub_records = vec![
            hub(1, 10000, HubState::Succeeded),
            hub(2, 3520, HubState::Succeeded),
            hub(3, 600, HubState::Failed),
        ];
        let core = CoreFile {
            core_date: day(),
            records: vec![core_s(1, 1, 10000, day()), core_s(2, 2, 3520, day())],
        };
        let mut input = input(hub_records, Vec::new(), vec![core]);
        input.settle_unconfirmed = true;
        input.partner_file_absent = true;
        let result = reconcile(&input);
        assert_eq!(result.settlement.amount, Money::from_fen(13520));
        assert_eq!(result.settlement.count, 2);
        let unconfirmed: Vec<_> = result
            .differences
            .iter()
            .map(|d| {
                (
                    d.kind,
                    d.hub_serial.clone(),
                    d.detail.contains("对方文件未到"),
                )
            })
            .collect();
        assert_eq!(
            unconfirmed,
            [
                (DifferenceKind::HubSuccessMissingAtPartner, serial(1), true),
                (DifferenceKind::HubSuccessMissingAtPartner, serial(2), true),
            ]
        );
    }

    #[test]
    fn settlement_is_the_sum_of_matched_only() {
        let result = reconcile(&planted_input());
        // 100.00 + 35.20 + 223.35, by hand.
        let s = &result.settlement;
        assert_eq!(s.amount, Money::from_fen(35855));
        assert_eq!(s.count, 3);
        assert_eq!(s.seq_no, "SNSH4310220261202");
        assert_eq!(s.debit_acct, SUSPENSE);
        assert_eq!(s.credit_acct, SETTLEMENT_ACCT);
        assert_eq!(s.summary, "电费结算NSH4310220261202");
        assert_eq!(s.purpose, "CDGJ");
        assert!(s.is_postable());

        let t = &result.totals;
        // Succeeded of AcctDate D: 1, 2, 3, 11, 13, 15 = 100.00+35.20+223.35+50.00+70.00+90.00.
        assert_eq!(
            (t.hub_success_count, t.hub_success_amount),
            (6, Money::from_fen(56855))
        );
        // Others: 12 (60.00), 14 (40.00), 16 (80.00).
        assert_eq!(
            (t.hub_other_count, t.hub_other_amount),
            (3, Money::from_fen(18000))
        );
        // Partner: 223.35+100.00+60.00+7.00+35.20+90.00.
        assert_eq!(
            (t.partner_count, t.partner_amount),
            (6, Money::from_fen(51555))
        );
        // Core standing: every line of the file, 100.00+35.20+223.35+50.00+70.00+40.00+80.00.
        assert_eq!((t.core_count, t.core_amount), (7, Money::from_fen(59855)));
        assert_eq!(
            (t.matched_count, t.matched_amount),
            (3, Money::from_fen(35855))
        );
        assert_eq!(t.difference_count, 6);
        assert_eq!(settlement_seq_no("NSH43102", day()), "SNSH4310220261202");
        // An instance named with a dash settles under its CompanyCode: earlier days' settlement
        // lines are still recognised by that code.
        assert!(is_settlement_seq_no(
            "S43102420261201",
            "water-jiahe",
            "S43102420261202"
        ));
        assert!(!is_settlement_seq_no(
            "S43102520261201",
            "water-jiahe",
            "S43102420261202"
        ));
        assert!(!is_settlement_seq_no(
            "2026120201000000001",
            "water-jiahe",
            "S43102420261202"
        ));
    }

    #[test]
    fn strangers_on_either_side_are_differences_and_other_instances_are_not() {
        let mut stranger = core_s(2, 31, 1234, day());
        stranger.hub_seq_no = "H2026120200000031".into();
        let mut other_instance = core_s(3, 32, 999, day());
        other_instance.credit_acct = OTHER_SUSPENSE.into();
        let mut settlement_line = core_s(4, 0, 35855, day());
        settlement_line.hub_seq_no = "SNSH4310220261201".into();
        settlement_line.debit_acct = SUSPENSE.into();
        settlement_line.credit_acct = SETTLEMENT_ACCT.into();
        let mut other_purpose = core_s(5, 33, 500, day());
        other_purpose.purpose = "YXCATV".into();
        let file = CoreFile {
            core_date: day(),
            records: vec![
                core_s(1, 1, 10000, day()),
                stranger,
                other_instance,
                settlement_line,
                other_purpose,
            ],
        };
        let result = reconcile(&input(
            vec![hub(1, 10000, HubState::Succeeded)],
            vec![partner(1, 1, 10000), partner(2, 41, 4100)],
            vec![file],
        ));
        assert_eq!(
            kinds_and_serials(&result),
            vec![
                (
                    DifferenceKind::PartnerNotHubSuccess,
                    "H2026120200000041".to_string()
                ),
                (
                    DifferenceKind::CoreNotHubSuccess,
                    "H2026120200000031".to_string()
                ),
            ]
        );
        assert_eq!(
            result.differences[0].partner_amount,
            Some(Money::from_fen(4100))
        );
        assert_eq!(
            result.differences[1].core_amount,
            Some(Money::from_fen(1234))
        );
        // The debit account is masked in the operator's text.
        assert!(result.differences[1].detail.contains("6230***********0011"));
        assert!(!result.differences[1].detail.contains(CUSTOMER_ACCT));
        assert_eq!(result.settlement.amount, Money::from_fen(10000));
    }

    #[test]
    fn a_duplicated_partner_line_is_flagged_once() {
        let result = reconcile(&input(
            vec![hub(1, 10000, HubState::Succeeded)],
            vec![partner(1, 1, 10000), partner(2, 1, 10000)],
            vec![CoreFile {
                core_date: day(),
                records: vec![core_s(1, 1, 10000, day())],
            }],
        ));
        assert_eq!(result.matched.len(), 1);
        assert_eq!(
            kinds_and_serials(&result),
            vec![(DifferenceKind::PartnerNotHubSuccess, serial(1))]
        );
        assert!(result.differences[0].detail.contains("第2行"));
    }

    #[test]
    fn a_same_day_reversal_is_not_a_difference() {
        let mut reversed = hub(5, 3000, HubState::Reversed);
        reversed.reversal_seq_no = Some("H2026120200000006".into());
        let mut r_line = core_s(1, 5, 3000, day());
        r_line.status = CoreStatus::ReversedSameDay;
        let result = reconcile(&input(
            vec![reversed],
            vec![],
            vec![CoreFile {
                core_date: day(),
                records: vec![r_line],
            }],
        ));
        assert!(result.differences.is_empty(), "{:?}", result.differences);
        assert!(result.matched.is_empty());
        assert!(result.awaiting_core.is_empty());
        assert_eq!(result.settlement.amount, Money::ZERO);
        assert!(!result.settlement.is_postable());
    }

    fn later_day_reversal() -> (HubRecord, CoreFile, CoreFile) {
        let mut reversed = hub(5, 3000, HubState::Reversed);
        reversed.reversal_seq_no = Some("H2026120300000001".into());
        let s_line = core_s(1, 5, 3000, day());
        let v_line = CoreRecord {
            line_no: 1,
            core_date: next_day(),
            core_seq_no: "C202612030000000001".into(),
            hub_seq_no: "H2026120300000001".into(),
            hub_tran_date: next_day(),
            debit_acct: SUSPENSE.into(),
            credit_acct: CUSTOMER_ACCT.into(),
            amount: Money::from_fen(3000),
            status: CoreStatus::ReversalOfEarlier,
            orig_core_seq_no: Some("C202612020000000005".into()),
            purpose: "CDGJ".into(),
        };
        (
            reversed,
            CoreFile {
                core_date: day(),
                records: vec![s_line],
            },
            CoreFile {
                core_date: next_day(),
                records: vec![v_line],
            },
        )
    }

    #[test]
    fn a_later_day_reversal_s_plus_v_is_not_a_difference() {
        let (reversed, file_d, file_d1) = later_day_reversal();
        let result = reconcile(&input(vec![reversed], vec![], vec![file_d, file_d1]));
        assert!(result.differences.is_empty(), "{:?}", result.differences);
        assert!(result.awaiting_core.is_empty());
        assert!(result.matched.is_empty());
    }

    #[test]
    fn a_reversal_whose_v_file_has_not_arrived_waits() {
        let (reversed, file_d, _) = later_day_reversal();
        let result = reconcile(&input(vec![reversed], vec![], vec![file_d]));
        assert!(result.differences.is_empty(), "{:?}", result.differences);
        assert_eq!(result.awaiting_core.len(), 1);
        assert_eq!(result.awaiting_core[0].expects, CoreExpectation::NotPosted);
        assert_eq!(result.awaiting_core[0].awaited_core_date, Some(next_day()));
        // Without a reversal sent, the standing posting is a difference at once.
        let (mut failed, file_d, _) = later_day_reversal();
        failed.state = HubState::Failed;
        failed.reversal_seq_no = None;
        let result = reconcile(&input(vec![failed], vec![], vec![file_d]));
        assert_eq!(
            kinds_and_serials(&result),
            vec![(DifferenceKind::CoreNotHubSuccess, serial(5))]
        );
    }

    /// Paid at 23:10 on D: the partner's AcctDate is still D, the core's is already D+1.
    fn late_payment() -> (HubRecord, PartnerRecord, CoreRecord) {
        let mut late = hub(21, 4560, HubState::Succeeded);
        late.core_date = Some(next_day());
        late.core_seq_no = Some("C202612030000000021".into());
        (late, partner(2, 21, 4560), core_s(1, 21, 4560, next_day()))
    }

    #[test]
    fn a_posting_on_the_next_core_date_waits_for_its_file_and_is_not_settled() {
        let (late, late_partner, _) = late_payment();
        let result = reconcile(&input(
            vec![hub(1, 10000, HubState::Succeeded), late],
            vec![partner(1, 1, 10000), late_partner],
            vec![CoreFile {
                core_date: day(),
                records: vec![core_s(1, 1, 10000, day())],
            }],
        ));
        assert!(result.differences.is_empty(), "{:?}", result.differences);
        assert_eq!(result.awaiting_core.len(), 1);
        let awaiting = &result.awaiting_core[0];
        assert_eq!(awaiting.hub_serial, "H2026120200000021");
        assert_eq!(awaiting.awaited_core_date, Some(next_day()));
        assert_eq!(awaiting.expects, CoreExpectation::Posted);
        assert_eq!(result.settlement.amount, Money::from_fen(10000));
        assert_eq!(result.settlement.count, 1);
        assert_eq!(result.totals.awaiting_core_amount, Money::from_fen(4560));
    }

    #[test]
    fn with_the_next_core_file_present_the_late_posting_matches() {
        let (late, late_partner, late_core) = late_payment();
        let result = reconcile(&input(
            vec![hub(1, 10000, HubState::Succeeded), late],
            vec![partner(1, 1, 10000), late_partner],
            vec![
                CoreFile {
                    core_date: day(),
                    records: vec![core_s(1, 1, 10000, day())],
                },
                CoreFile {
                    core_date: next_day(),
                    records: vec![late_core],
                },
            ],
        ));
        assert!(result.differences.is_empty(), "{:?}", result.differences);
        assert!(result.awaiting_core.is_empty());
        assert_eq!(result.matched.len(), 2);
        assert_eq!(result.matched[1].core_date, next_day());
        // 100.00 + 45.60
        assert_eq!(result.settlement.amount, Money::from_fen(14560));
        assert_eq!(result.settlement.count, 2);
    }

    #[test]
    fn a_carried_record_is_settled_with_the_next_business_date() {
        let (late, late_partner, late_core) = late_payment();
        let first = reconcile(&input(
            vec![late],
            vec![late_partner],
            vec![CoreFile {
                core_date: day(),
                records: vec![],
            }],
        ));
        assert_eq!(first.awaiting_core.len(), 1);
        assert_eq!(first.settlement.count, 0);

        // D+1's run: no hub or partner record of its own, only the carried one and the D+1 file.
        let mut next = input(
            vec![],
            vec![],
            vec![CoreFile {
                core_date: next_day(),
                records: vec![late_core],
            }],
        );
        next.business_date = next_day();
        next.settlement_seq_no = "SNSH4310220261203".into();
        let second = reconcile_with_carried(&next, &first.awaiting_core);
        assert!(second.differences.is_empty(), "{:?}", second.differences);
        assert_eq!(second.matched.len(), 1);
        assert_eq!(second.matched[0].carried_from, Some(day()));
        assert_eq!(second.settlement.amount, Money::from_fen(4560));
        assert_eq!(second.settlement.summary, "电费结算NSH4310220261203");
    }

    #[test]
    fn a_success_missing_from_an_available_core_file_is_a_difference() {
        let (late, late_partner, _) = late_payment();
        let result = reconcile(&input(
            vec![late],
            vec![late_partner],
            vec![
                CoreFile {
                    core_date: day(),
                    records: vec![],
                },
                CoreFile {
                    core_date: next_day(),
                    records: vec![],
                },
            ],
        ));
        assert_eq!(
            kinds_and_serials(&result),
            vec![(DifferenceKind::HubSuccessMissingAtCore, serial(21))]
        );
    }

    #[test]
    fn a_success_reversed_at_core_is_missing_at_core() {
        let mut r_line = core_s(1, 1, 10000, day());
        r_line.status = CoreStatus::ReversedSameDay;
        let result = reconcile(&input(
            vec![hub(1, 10000, HubState::Succeeded)],
            vec![partner(1, 1, 10000)],
            vec![CoreFile {
                core_date: day(),
                records: vec![r_line],
            }],
        ));
        assert_eq!(
            kinds_and_serials(&result),
            vec![(DifferenceKind::HubSuccessMissingAtCore, serial(1))]
        );
        assert_eq!(result.settlement.count, 0);
    }

    #[test]
    fn a_success_of_another_accounting_date_is_out_of_scope() {
        // Paid 23:40 on D: AcctDate D+1, not part of D's reconciliation.
        let mut tomorrow = hub(22, 1000, HubState::Succeeded);
        tomorrow.acct_date = Some(next_day());
        tomorrow.core_date = Some(next_day());
        let result = reconcile(&input(
            vec![tomorrow],
            vec![],
            vec![CoreFile {
                core_date: day(),
                records: vec![],
            }],
        ));
        assert!(result.differences.is_empty());
        assert!(result.awaiting_core.is_empty());
        assert_eq!(result.totals.hub_success_count, 0);
    }

    #[test]
    fn a_core_file_parsed_from_bytes_feeds_the_engine() {
        let text = "20261202|C202612020000000001|H2026120200000001|20261202|6230901000000000011|9003100000000001|100.00|S||CDGJ\r\n\
TOTAL|1|100.00|0.00\r\n";
        let file = crate::core_file::parse(text.as_bytes()).unwrap();
        let result = reconcile(&input(
            vec![hub(1, 10000, HubState::Succeeded)],
            vec![partner(1, 1, 10000)],
            vec![file],
        ));
        assert_eq!(result.matched.len(), 1);
        assert!(result.differences.is_empty());
        assert_eq!(result.settlement.amount, Money::from_fen(10000));
    }
}
