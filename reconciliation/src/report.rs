//! The operators' reconciliation report (对账报告), in Chinese, as HTML and CSV.
//!
//! Customer numbers and account numbers are masked (first 4 and last 4 kept) everywhere except in
//! the settlement instruction, which is the business record an operator posts or checks.
//!
//! CSV: UTF-8 with a BOM so that Excel detects the encoding. Serial, account and customer-number
//! columns are written as Excel text formulas `="..."` (inside a quoted CSV field), so a spreadsheet
//! keeps leading zeros and all 19+ digits instead of turning them into `2.02612E+18`; a plain CSV
//! reader sees the value wrapped in `="` and `"`. Amounts are plain yuan with two decimals.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use codecs::clock::yyyymmdd;
use codecs::Money;

use crate::mask::mask_account;
use crate::model::{CoreExpectation, DifferenceKind, ReconResult, UnconfirmedEarlier};

const BOM: &str = "\u{FEFF}";

fn yuan(amount: Option<Money>) -> String {
    amount.map(|m| m.to_yuan()).unwrap_or_default()
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Renders the HTML report.
pub fn render_html(result: &ReconResult) -> String {
    let mut h = String::new();
    let date = yyyymmdd(result.business_date);
    let t = &result.totals;
    let e = html_escape;
    // `write!` to a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<title>对账报告 {} {} {}</title>\n\
<style>body{{font-family:sans-serif}}table{{border-collapse:collapse;margin-bottom:1em}}\
td,th{{border:1px solid #999;padding:2px 6px}}td.n{{text-align:right}}</style>\n</head>\n<body>\n",
        e(&result.payee),
        e(&result.instance),
        date
    );
    let _ = write!(
        h,
        "<h1>对账报告</h1>\n<table>\n<tr><th>收费单位</th><td>{}</td></tr>\n<tr><th>实例</th><td>{}</td></tr>\n\
<tr><th>对账日期</th><td>{}</td></tr>\n<tr><th>核心文件日期</th><td>{}</td></tr>\n</table>\n",
        e(&result.payee),
        e(&result.instance),
        date,
        result.core_dates.iter().map(|d| yyyymmdd(*d)).collect::<Vec<_>>().join(", ")
    );

    h.push_str("<h2>汇总</h2>\n<table>\n<tr><th>项目</th><th>笔数</th><th>金额(元)</th></tr>\n");
    for (label, count, amount) in [
        ("本方成功", t.hub_success_count, t.hub_success_amount),
        ("本方其他状态", t.hub_other_count, t.hub_other_amount),
        ("对方文件", t.partner_count, t.partner_amount),
        ("核心记账", t.core_count, t.core_amount),
        ("三方一致", t.matched_count, t.matched_amount),
        ("待核心入账", t.awaiting_core_count, t.awaiting_core_amount),
        (
            "待核心冲正确认",
            t.awaiting_reversal_count,
            t.awaiting_reversal_amount,
        ),
    ] {
        let _ = writeln!(
            h,
            "<tr><td>{label}</td><td class=\"n\">{count}</td><td class=\"n\">{}</td></tr>",
            amount.to_yuan()
        );
    }
    let _ = writeln!(
        h,
        "<tr><td>差错</td><td class=\"n\">{}</td><td></td></tr>\n</table>",
        t.difference_count
    );

    h.push_str(
        "<h2>差错分类统计</h2>\n<table>\n<tr><th>差错类型</th><th>代码</th><th>笔数</th></tr>\n",
    );
    let counts = result.difference_counts();
    for kind in DifferenceKind::ALL {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"n\">{}</td></tr>",
            kind.label_zh(),
            kind.code(),
            counts.get(kind.code()).copied().unwrap_or(0)
        );
    }
    h.push_str("</table>\n");

    h.push_str(
        "<h2>差错明细</h2>\n<table>\n<tr><th>差错类型</th><th>代码</th><th>本方流水号</th><th>交易日期</th>\
<th>本方金额</th><th>对方金额</th><th>核心金额</th><th>对方流水号</th><th>核心流水号</th><th>说明</th></tr>\n",
    );
    for x in &result.differences {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
<td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            x.kind.label_zh(),
            x.kind.code(),
            e(&x.hub_serial),
            yyyymmdd(x.tx_date),
            yuan(x.hub_amount),
            yuan(x.partner_amount),
            yuan(x.core_amount),
            e(x.partner_serial.as_deref().unwrap_or("")),
            e(x.core_seq_no.as_deref().unwrap_or("")),
            e(&x.detail)
        );
    }
    h.push_str("</table>\n");

    h.push_str(
        "<h2>待核心入账</h2>\n<table>\n<tr><th>本方流水号</th><th>交易日期</th><th>户号</th><th>金额</th>\
<th>待到核心日期</th><th>预期</th><th>说明</th></tr>\n",
    );
    for a in &result.awaiting_core {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e(&a.hub_serial),
            yyyymmdd(a.tx_date),
            e(&mask_account(&a.customer_no)),
            a.amount.to_yuan(),
            a.awaited_core_date.map(yyyymmdd).unwrap_or_default(),
            expectation_zh(a.expects),
            e(&a.detail)
        );
    }
    h.push_str("</table>\n");

    h.push_str(
        "<h2>三方一致明细</h2>\n<table>\n<tr><th>本方流水号</th><th>交易日期</th><th>渠道</th><th>户号</th>\
<th>金额</th><th>对方流水号</th><th>对方记账日期</th><th>核心流水号</th><th>核心日期</th></tr>\n",
    );
    for m in &result.matched {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e(&m.hub_serial),
            yyyymmdd(m.tx_date),
            e(&m.channel),
            e(&mask_account(&m.customer_no)),
            m.amount.to_yuan(),
            e(&m.partner_serial),
            yyyymmdd(m.acct_date),
            e(&m.core_seq_no),
            yyyymmdd(m.core_date)
        );
    }
    h.push_str("</table>\n");

    // Only partners whose file confirms payments have these: other reports keep their shape.
    if !result.unconfirmed_earlier.is_empty() {
        let _ = write!(
            h,
            "<h2>往日{label}</h2>\n<table>\n<tr><th>类型</th><th>代码</th><th>本方流水号</th><th>记账日期</th>\
<th>户号</th><th>金额</th><th>说明</th></tr>\n",
            label = UnconfirmedEarlier::LABEL_ZH
        );
        for u in &result.unconfirmed_earlier {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                UnconfirmedEarlier::LABEL_ZH,
                UnconfirmedEarlier::CODE,
                e(&u.hub_serial),
                yyyymmdd(u.acct_date),
                e(&mask_account(&u.customer_no)),
                u.amount.to_yuan(),
                e(&u.detail)
            );
        }
        h.push_str("</table>\n");
    }

    let s = &result.settlement;
    let _ = write!(
        h,
        "<h2>结算指令</h2>\n<table>\n<tr><th>结算流水号</th><td>{}</td></tr>\n<tr><th>借方账户(过渡户)</th><td>{}</td></tr>\n\
<tr><th>贷方账户(结算户)</th><td>{}</td></tr>\n<tr><th>金额(元)</th><td class=\"n\">{}</td></tr>\n\
<tr><th>笔数</th><td class=\"n\">{}</td></tr>\n<tr><th>摘要</th><td>{}</td></tr>\n<tr><th>用途</th><td>{}</td></tr>\n\
<tr><th>状态</th><td>{}</td></tr>\n</table>\n",
        e(&s.seq_no),
        e(&s.debit_acct),
        e(&s.credit_acct),
        s.amount.to_yuan(),
        s.count,
        e(&s.summary),
        e(&s.purpose),
        e(&settlement_state_zh(result))
    );

    if !result.warnings.is_empty() {
        h.push_str("<h2>提示</h2>\n<ul>\n");
        for w in &result.warnings {
            let _ = writeln!(h, "<li>{}</li>", e(w));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn expectation_zh(expects: CoreExpectation) -> &'static str {
    match expects {
        CoreExpectation::Posted => "应已入账",
        CoreExpectation::NotPosted => "应无记账",
    }
}

fn settlement_state_zh(result: &ReconResult) -> String {
    let s = &result.settlement;
    if let Some(x) = &result.execution {
        let state = match x.state.as_str() {
            "POSTED" => "已记账",
            "REFUSED" => "核心拒绝, 待人工处理",
            "UNKNOWN" => "结果未知, 重跑时以同一流水号向核心查证",
            "NOTHING_TO_SETTLE" => "无需结算",
            "BLOCKED" => "不得结算",
            _ => "未知状态",
        };
        let mut text = format!("{state} {}", x.state);
        if let Some(seq) = &x.core_seq_no {
            text.push_str(&format!(", 核心流水 {seq}"));
        }
        if x.earlier_run {
            text.push_str(&format!(
                "; 已由首次对账处理: {} 笔 {} 元, 本次未重复记账",
                x.count,
                x.amount.to_yuan()
            ));
            if x.amount != s.amount || x.count != s.count {
                text.push_str(&format!(
                    "; 本次重算 {} 笔 {} 元, 差额由人工核对",
                    s.count,
                    s.amount.to_yuan()
                ));
            }
        }
        return text;
    }
    match &s.blocked_reason {
        Some(reason) => format!("不得结算: {reason}"),
        None if s.is_postable() => "可结算".to_string(),
        None => "无需结算(金额为零)".to_string(),
    }
}

/// One CSV field: quoted when it holds a comma, quote or line break, quotes doubled.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// An identifier column (serial, account, customer number) as an Excel text formula.
fn csv_text(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    csv_field(&format!("=\"{value}\""))
}

fn csv_row(out: &mut String, fields: &[String]) {
    let line: Vec<String> = fields.to_vec();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// Renders the CSV report (BOM included).
pub fn render_csv(result: &ReconResult) -> String {
    let mut c = String::from(BOM);
    let f = |v: &str| csv_field(v);
    let t = &result.totals;
    csv_row(&mut c, &[f("对账报告")]);
    csv_row(&mut c, &[f("收费单位"), f(&result.payee)]);
    csv_row(&mut c, &[f("实例"), f(&result.instance)]);
    csv_row(&mut c, &[f("对账日期"), yyyymmdd(result.business_date)]);
    c.push_str("\r\n");
    csv_row(&mut c, &[f("项目"), f("笔数"), f("金额(元)")]);
    for (label, count, amount) in [
        ("本方成功", t.hub_success_count, t.hub_success_amount),
        ("本方其他状态", t.hub_other_count, t.hub_other_amount),
        ("对方文件", t.partner_count, t.partner_amount),
        ("核心记账", t.core_count, t.core_amount),
        ("三方一致", t.matched_count, t.matched_amount),
        ("待核心入账", t.awaiting_core_count, t.awaiting_core_amount),
        (
            "待核心冲正确认",
            t.awaiting_reversal_count,
            t.awaiting_reversal_amount,
        ),
    ] {
        csv_row(&mut c, &[f(label), count.to_string(), amount.to_yuan()]);
    }
    csv_row(
        &mut c,
        &[f("差错"), t.difference_count.to_string(), String::new()],
    );
    c.push_str("\r\n");

    csv_row(
        &mut c,
        &[
            f("差错类型"),
            f("代码"),
            f("本方流水号"),
            f("交易日期"),
            f("本方金额"),
            f("对方金额"),
            f("核心金额"),
            f("对方流水号"),
            f("核心流水号"),
            f("说明"),
        ],
    );
    for x in &result.differences {
        csv_row(
            &mut c,
            &[
                f(x.kind.label_zh()),
                f(x.kind.code()),
                csv_text(&x.hub_serial),
                yyyymmdd(x.tx_date),
                yuan(x.hub_amount),
                yuan(x.partner_amount),
                yuan(x.core_amount),
                csv_text(x.partner_serial.as_deref().unwrap_or("")),
                csv_text(x.core_seq_no.as_deref().unwrap_or("")),
                f(&x.detail),
            ],
        );
    }
    c.push_str("\r\n");

    csv_row(
        &mut c,
        &[
            f("待核心入账流水号"),
            f("交易日期"),
            f("户号"),
            f("金额"),
            f("待到核心日期"),
            f("预期"),
            f("说明"),
        ],
    );
    for a in &result.awaiting_core {
        csv_row(
            &mut c,
            &[
                csv_text(&a.hub_serial),
                yyyymmdd(a.tx_date),
                csv_text(&mask_account(&a.customer_no)),
                a.amount.to_yuan(),
                a.awaited_core_date.map(yyyymmdd).unwrap_or_default(),
                f(expectation_zh(a.expects)),
                f(&a.detail),
            ],
        );
    }
    c.push_str("\r\n");

    csv_row(
        &mut c,
        &[
            f("三方一致流水号"),
            f("交易日期"),
            f("渠道"),
            f("户号"),
            f("金额"),
            f("对方流水号"),
            f("对方记账日期"),
            f("核心流水号"),
            f("核心日期"),
        ],
    );
    for m in &result.matched {
        csv_row(
            &mut c,
            &[
                csv_text(&m.hub_serial),
                yyyymmdd(m.tx_date),
                csv_text(&m.channel),
                csv_text(&mask_account(&m.customer_no)),
                m.amount.to_yuan(),
                csv_text(&m.partner_serial),
                yyyymmdd(m.acct_date),
                csv_text(&m.core_seq_no),
                yyyymmdd(m.core_date),
            ],
        );
    }
    c.push_str("\r\n");

    if !result.unconfirmed_earlier.is_empty() {
        csv_row(
            &mut c,
            &[
                f("往日通知未确认类型"),
                f("代码"),
                f("本方流水号"),
                f("记账日期"),
                f("户号"),
                f("金额"),
                f("说明"),
            ],
        );
        for u in &result.unconfirmed_earlier {
            csv_row(
                &mut c,
                &[
                    f(UnconfirmedEarlier::LABEL_ZH),
                    f(UnconfirmedEarlier::CODE),
                    csv_text(&u.hub_serial),
                    yyyymmdd(u.acct_date),
                    csv_text(&mask_account(&u.customer_no)),
                    u.amount.to_yuan(),
                    f(&u.detail),
                ],
            );
        }
        c.push_str("\r\n");
    }

    let s = &result.settlement;
    csv_row(&mut c, &[f("结算指令")]);
    csv_row(&mut c, &[f("结算流水号"), csv_text(&s.seq_no)]);
    csv_row(&mut c, &[f("借方账户(过渡户)"), csv_text(&s.debit_acct)]);
    csv_row(&mut c, &[f("贷方账户(结算户)"), csv_text(&s.credit_acct)]);
    csv_row(&mut c, &[f("金额(元)"), s.amount.to_yuan()]);
    csv_row(&mut c, &[f("笔数"), s.count.to_string()]);
    csv_row(&mut c, &[f("摘要"), f(&s.summary)]);
    csv_row(&mut c, &[f("用途"), f(&s.purpose)]);
    csv_row(&mut c, &[f("状态"), f(&settlement_state_zh(result))]);
    for w in &result.warnings {
        csv_row(&mut c, &[f("提示"), f(w)]);
    }
    c
}

/// Writes the HTML report to `path`.
pub fn write_html(result: &ReconResult, path: &Path) -> io::Result<()> {
    std::fs::write(path, render_html(result))
}

/// Writes the CSV report to `path`.
pub fn write_csv(result: &ReconResult, path: &Path) -> io::Result<()> {
    std::fs::write(path, render_csv(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reconcile;
    use crate::engine::tests::{core_s, day, planted_input};

    fn planted_result() -> ReconResult {
        let mut input = planted_input();
        // A core posting no hub record explains, so that an account number reaches the report text.
        let mut stranger = core_s(8, 31, 1234, day());
        stranger.hub_seq_no = "H2026120200000031".into();
        if let Some(file) = input.core.first_mut() {
            file.records.push(stranger);
        }
        reconcile(&input)
    }

    /// Spec 09: a payment of an earlier day no file has listed stays on every later report as
    /// 通知未确认, with its code, its own date and amount; a report without any has no section.
    #[test]
    fn earlier_unconfirmed_payments_are_carried_on_the_report() {
        let mut result = planted_result();
        assert!(!render_html(&result).contains("NOTIFY_UNCONFIRMED"));
        assert!(!render_csv(&result).contains("NOTIFY_UNCONFIRMED"));
        result.unconfirmed_earlier.push(UnconfirmedEarlier {
            hub_serial: "B2026120101000000007".into(),
            acct_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default(),
            customer_no: "YC20261201000777".into(),
            amount: Money::from_fen(45_600),
            detail: "72小时内未获确认，已停止重发，需人工处理".into(),
        });
        let html = render_html(&result);
        for needle in [
            "往日通知未确认",
            "NOTIFY_UNCONFIRMED",
            "B2026120101000000007",
            "20261201",
            "456.00",
            "72小时内未获确认",
        ] {
            assert!(html.contains(needle), "HTML lacks {needle}");
        }
        assert!(!html.contains("YC20261201000777"), "order number unmasked");
        let csv = render_csv(&result);
        assert!(csv.contains("NOTIFY_UNCONFIRMED"), "{csv}");
        assert!(csv.contains("=\"\"B2026120101000000007\"\""), "{csv}");
        assert!(csv.contains("456.00"), "{csv}");
    }

    #[test]
    fn html_carries_title_labels_codes_and_yuan() {
        let html = render_html(&planted_result());
        for needle in [
            "对账报告",
            "CDGJ",
            "NSH43102",
            "20261202",
            "本方成功对方无",
            "HUB_SUCCESS_MISSING_AT_PARTNER",
            "对方有本方非成功",
            "PARTNER_NOT_HUB_SUCCESS",
            "金额不符",
            "AMOUNT_MISMATCH",
            "核心已记账本方非成功",
            "CORE_NOT_HUB_SUCCESS",
            "本方成功核心无",
            "HUB_SUCCESS_MISSING_AT_CORE",
            "本方状态未决",
            "HUB_IN_DOUBT",
            "结算指令",
            "358.55",
            "电费结算NSH4310220261202",
            "SNSH4310220261202",
            // The settlement instruction is the business record: accounts unmasked there.
            "9003100000009999",
        ] {
            assert!(html.contains(needle), "HTML lacks {needle}");
        }
        // Customer numbers and the customer's account are masked.
        assert!(!html.contains("6230901000000000011"));
        assert!(html.contains("6230***********0011"));
        assert!(!html.contains("4310020000000001"));
        assert!(html.contains("4310********0001"));
    }

    #[test]
    fn csv_has_bom_masks_accounts_and_protects_identifiers() {
        let result = planted_result();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recon.csv");
        write_csv(&result, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF]);
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        assert!(text.starts_with("对账报告\r\n"));
        assert!(!text.contains("6230901000000000011"));
        assert!(text.contains("6230***********0011"));
        assert!(!text.contains("4310020000000001"));
        // A serial as an Excel text formula, quoted per CSV.
        assert!(text.contains("\"=\"\"H2026120200000001\"\"\""));
        assert!(text.contains("\"=\"\"9003100000009999\"\"\""));
        assert!(text.contains("金额不符,AMOUNT_MISMATCH,"));
        assert!(text.contains("结算指令"));

        let html_path = dir.path().join("recon.html");
        write_html(&result, &html_path).unwrap();
        assert!(std::fs::read_to_string(&html_path)
            .unwrap()
            .contains("对账报告"));
    }

    #[test]
    fn csv_fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_text("0012"), "\"=\"\"0012\"\"\"");
        assert_eq!(html_escape("<a&b>"), "&lt;a&amp;b&gt;");
    }

    #[test]
    fn result_serializes_for_summary_json() {
        let result = planted_result();
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["business_date"], "2026-12-02");
        assert_eq!(json["settlement"]["amount"], 35855);
        assert_eq!(
            json["differences"][0]["kind"],
            "HUB_SUCCESS_MISSING_AT_PARTNER"
        );
        let counts = serde_json::to_value(result.difference_counts()).unwrap();
        assert_eq!(counts["CORE_NOT_HUB_SUCCESS"], 2);
        assert_eq!(counts["AMOUNT_MISMATCH"], 1);
    }
}
