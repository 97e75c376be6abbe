//! Fixed-length records driven by layout tables: one engine, many layouts (jPOS packager style).
//! A layout is data, so a new fixed-length partner is a TOML file plus a mapping, not new code.
//!
//! Field kinds, all widths in BYTES of the encoded text:
//! - `N`: ASCII digits, right-aligned, zero-padded. Decoded as the digit string as found (leading
//!   zeros kept: dates, channel codes and periods are N fields too).
//! - `AN`: printable ASCII (0x20..=0x7E), left-aligned, space-padded. Decoded with trailing spaces
//!   trimmed.
//! - `C`: GBK / GB18030 text, left-aligned, space-padded. Decoded strictly (a half character at the
//!   end of the field is an error, as is any byte sequence that is not the charset's canonical form),
//!   trailing spaces trimmed.
//! - `M`: an amount in yuan with a decimal point and exactly two decimals, right-aligned,
//!   zero-padded, no sign (`000000035.20`). Decoded to canonical yuan (`35.20`); encoded from yuan
//!   text or from the fen digits `Record::set_money` stores, so `set_money`/`get_money` work on N
//!   (fen) and M (yuan) fields alike. A sign, a third decimal or a missing point is an error.
//!
//! A repeated group follows an earlier top-level `N` field (`count_field`) giving its occurrence
//! count; encoding writes that count from the number of entries, decoding reads it.
//!
//! Encoding never truncates and never pads a missing value: a missing field, a value wider than its
//! field, a non-digit N, a non-ASCII AN and a character the charset lacks are all errors. Every
//! error names the layout, the field, the byte offset in the record and (for decoding) the bytes
//! found, in hex.
//!
//! A layout set in TOML (spec 01's header and 1001 response, abridged):
//!
//! ```toml
//! [[layouts]]
//! name = "cdgj.header"
//! items = [
//!   { name = "TxCode", kind = "AN", len = 4 },
//!   { name = "BankCode", kind = "AN", len = 8 },
//!   { name = "Channel", kind = "N", len = 2 },
//!   { name = "RspMsg", kind = "C", len = 40 },
//! ]
//!
//! [[layouts]]
//! name = "cdgj.1001.rsp"
//! items = [
//!   { name = "CustomerNo", kind = "AN", len = 16 },
//!   { name = "TotalDue", kind = "N", len = 12 },
//!   { name = "ItemCount", kind = "N", len = 2 },
//!   { group = "Items", count_field = "ItemCount", max = 12, fields = [
//!     { name = "Period", kind = "N", len = 6 },
//!     { name = "Amount", kind = "N", len = 12 },
//!   ] },
//! ]
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::money::Money;
use crate::text::{self, Charset, TextError};

/// How many bytes of a field are shown (hex) in an error; longer runs end with `...`.
const MAX_HEX_BYTES_IN_ERROR: usize = 48;
/// The narrowest M field holds `0.00`.
const MIN_M_LEN: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FieldKind {
    /// Digits, right-aligned, zero-padded.
    N,
    /// Printable ASCII, left-aligned, space-padded.
    AN,
    /// GBK (or GB18030) text, left-aligned, space-padded.
    C,
    /// Amount in yuan with a decimal point and exactly two decimals, right-aligned, zero-padded,
    /// no sign (spec 02: `000000035.20`). Decoded to canonical yuan (`35.20`); encoded from yuan
    /// text or from the fen digits `Record::set_money` writes.
    M,
}

/// One fixed-width field; `len` is in bytes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    pub kind: FieldKind,
    pub len: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Item {
    Field(FieldSpec),
    Group(GroupSpec),
}

/// A repeated group whose occurrence count is the value of an earlier top-level N field
/// `count_field`; at most `max` occurrences.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub group: String,
    pub count_field: String,
    pub max: usize,
    pub fields: Vec<FieldSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub name: String,
    pub items: Vec<Item>,
}

/// Field values by name plus the entries of each repeated group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    fields: BTreeMap<String, String>,
    groups: BTreeMap<String, Vec<Record>>,
}

/// The layout name used in errors raised by [`Record`] accessors, which know no layout.
const RECORD_CONTEXT: &str = "(record)";

impl Record {
    pub fn new() -> Self {
        Record::default()
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.fields.insert(name.to_string(), value.into());
        self
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    /// The decoded value: AN and C with trailing spaces trimmed, N as its digit string (leading
    /// zeros kept).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// An N field holding fen.
    pub fn get_money(&self, name: &str) -> Result<Money, LayoutError> {
        let value = self.required(name)?;
        // A decoded M field holds yuan with a decimal point; N fields never contain one.
        let parsed = if value.contains('.') {
            parse_m_yuan(value)
        } else {
            Money::parse_fen_digits(value).ok()
        };
        parsed.ok_or_else(|| LayoutError::NotNumber {
            field: name.to_string(),
            value: value.to_string(),
        })
    }

    /// Stored as its decimal digits; the layout pads it to the field's width when encoding. A
    /// negative amount is stored with its sign and refused by the encoder (N fields are unsigned).
    pub fn set_money(&mut self, name: &str, amount: Money) -> &mut Self {
        self.set(name, amount.fen().to_string())
    }

    pub fn get_u32(&self, name: &str) -> Result<u32, LayoutError> {
        let value = self.required(name)?;
        let not_number = || LayoutError::NotNumber {
            field: name.to_string(),
            value: value.to_string(),
        };
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_number());
        }
        value.parse::<u32>().map_err(|_| not_number())
    }

    pub fn push_group(&mut self, group: &str, entry: Record) -> &mut Self {
        self.groups
            .entry(group.to_string())
            .or_default()
            .push(entry);
        self
    }

    /// The entries of a group, empty when it has none.
    pub fn group(&self, group: &str) -> &[Record] {
        self.groups.get(group).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every field value, by name in name order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    fn required(&self, name: &str) -> Result<&str, LayoutError> {
        self.get(name).ok_or_else(|| LayoutError::Missing {
            layout: RECORD_CONTEXT.to_string(),
            field: name.to_string(),
        })
    }
}

/// Why a record could not be encoded or decoded. Offsets are byte offsets in the record (the input
/// when decoding, the output when encoding); `found` is hex of the bytes at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("layout {layout}: field {field} has no value")]
    Missing { layout: String, field: String },
    #[error("layout {layout}: field {field} at offset {offset} takes {width_bytes} bytes, the value needs {value_bytes}")]
    TooLong {
        layout: String,
        field: String,
        offset: usize,
        width_bytes: usize,
        value_bytes: usize,
    },
    #[error("layout {layout}: N field {field} at offset {offset} is not all digits: {found}")]
    NotDigits {
        layout: String,
        field: String,
        offset: usize,
        found: String,
    },
    #[error(
        "layout {layout}: AN field {field} at offset {offset} is not printable ASCII: {found}"
    )]
    NotAscii {
        layout: String,
        field: String,
        offset: usize,
        found: String,
    },
    #[error("layout {layout}: C field {field} at offset {offset} is not valid {charset:?} text ({detail}): {found}")]
    BadText {
        layout: String,
        field: String,
        offset: usize,
        charset: Charset,
        detail: String,
        found: String,
    },
    #[error("layout {layout}: field {field} at offset {offset} needs {needed} bytes, only {available} left: {found}")]
    Short {
        layout: String,
        field: String,
        offset: usize,
        needed: usize,
        available: usize,
        found: String,
    },
    #[error("layout {layout}: {leftover} bytes left over at offset {offset}: {found}")]
    Leftover {
        layout: String,
        offset: usize,
        leftover: usize,
        found: String,
    },
    #[error("layout {layout}: group {group} counted by {field} at offset {offset} has {count} entries, at most {max} allowed")]
    BadCount {
        layout: String,
        group: String,
        field: String,
        offset: usize,
        count: String,
        max: usize,
    },
    #[error("layout {layout}: M field {field} at offset {offset} is not unsigned yuan with exactly two decimals: {found}")]
    NotAmount {
        layout: String,
        field: String,
        offset: usize,
        found: String,
    },
    #[error("no layout named {0}")]
    UnknownLayout(String),
    #[error("layout file is not valid TOML for layouts: {0}")]
    BadToml(String),
    #[error("layout {layout} is inconsistent: {reason}")]
    BadLayout { layout: String, reason: String },
    #[error("field {field} holds {value:?}, not an unsigned number")]
    NotNumber { field: String, value: String },
}

impl LayoutError {
    /// A stable code for logs, metrics and answers.
    pub fn code(&self) -> &'static str {
        match self {
            LayoutError::Missing { .. } => "LAYOUT_MISSING",
            LayoutError::TooLong { .. } => "LAYOUT_TOO_LONG",
            LayoutError::NotDigits { .. } => "LAYOUT_NOT_DIGITS",
            LayoutError::NotAscii { .. } => "LAYOUT_NOT_ASCII",
            LayoutError::BadText { .. } => "LAYOUT_BAD_TEXT",
            LayoutError::Short { .. } => "LAYOUT_SHORT",
            LayoutError::Leftover { .. } => "LAYOUT_LEFTOVER",
            LayoutError::BadCount { .. } => "LAYOUT_BAD_COUNT",
            LayoutError::NotAmount { .. } => "LAYOUT_NOT_AMOUNT",
            LayoutError::UnknownLayout(_) => "LAYOUT_UNKNOWN",
            LayoutError::BadToml(_) => "LAYOUT_BAD_TOML",
            LayoutError::BadLayout { .. } => "LAYOUT_BAD_LAYOUT",
            LayoutError::NotNumber { .. } => "LAYOUT_NOT_NUMBER",
        }
    }

    /// The same error with the bytes found replaced by their count, for logs where the field may
    /// hold personal data (names, account numbers): layout, field and offset stay.
    pub fn redacted(&self) -> LayoutError {
        let mut copy = self.clone();
        match &mut copy {
            LayoutError::NotDigits { found, .. }
            | LayoutError::NotAscii { found, .. }
            | LayoutError::BadText { found, .. }
            | LayoutError::Short { found, .. }
            | LayoutError::Leftover { found, .. }
            | LayoutError::NotAmount { found, .. } => {
                *found = format!("<{} hex digits withheld>", found.len());
            }
            LayoutError::NotNumber { value, .. } => {
                *value = format!("<{} characters withheld>", value.chars().count())
            }
            _ => {}
        }
        copy
    }

    /// The operator's text for this kind of error (details are in the `Display` form).
    pub fn message_zh(&self) -> &'static str {
        match self {
            LayoutError::Missing { .. } => "报文字段缺失",
            LayoutError::TooLong { .. } => "字段内容超长",
            LayoutError::NotDigits { .. } => "数字字段含非数字字符",
            LayoutError::NotAscii { .. } => "字符字段含非ASCII字符",
            LayoutError::BadText { .. } => "中文字段编码错误",
            LayoutError::Short { .. } => "报文长度不足",
            LayoutError::Leftover { .. } => "报文长度超出",
            LayoutError::BadCount { .. } => "循环域笔数错误",
            LayoutError::NotAmount { .. } => "金额字段格式错误",
            LayoutError::UnknownLayout(_) => "报文格式未定义",
            LayoutError::BadToml(_) => "报文格式配置错误",
            LayoutError::BadLayout { .. } => "报文格式定义不一致",
            LayoutError::NotNumber { .. } => "字段不是数值",
        }
    }
}

/// Hex of `bytes`, capped so that an error line stays readable.
pub(crate) fn hex_excerpt(bytes: &[u8]) -> String {
    match bytes.get(..MAX_HEX_BYTES_IN_ERROR) {
        Some(head) if bytes.len() > MAX_HEX_BYTES_IN_ERROR => {
            format!("{}...", hex::encode_upper(head))
        }
        _ => hex::encode_upper(bytes),
    }
}

/// Decodes strictly and also refuses bytes that decode but are not the charset's own form:
/// encoding_rs's GBK decoder is the GB18030 decoder, so four-byte GB18030 sequences (and `A2E3`
/// for `€`) would otherwise pass as GBK. Round-tripping the whole text catches them.
pub(crate) fn decode_exact(bytes: &[u8], charset: Charset) -> Result<String, TextError> {
    // text::decode refuses non-canonical sequences itself.
    text::decode(bytes, charset)
}

/// Where a group's count comes from while encoding or decoding.
fn group_counts(layout: &Layout) -> BTreeMap<&str, &GroupSpec> {
    layout
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Group(group) => Some((group.count_field.as_str(), group)),
            Item::Field(_) => None,
        })
        .collect()
}

impl Layout {
    /// Checks what the encoder and decoder rely on: unique names, a count field that is an
    /// earlier top-level N field wide enough for `max`, no field of zero width.
    pub fn validate(&self) -> Result<(), LayoutError> {
        let bad = |reason: String| LayoutError::BadLayout {
            layout: self.name.clone(),
            reason,
        };
        let mut seen = BTreeSet::new();
        let mut n_fields: BTreeMap<&str, usize> = BTreeMap::new();
        let mut counted = BTreeSet::new();
        for item in &self.items {
            match item {
                Item::Field(field) => {
                    if field.len == 0 {
                        return Err(bad(format!("field {} has zero width", field.name)));
                    }
                    if field.kind == FieldKind::M && field.len < MIN_M_LEN {
                        return Err(bad(format!("M field {} is narrower than 0.00", field.name)));
                    }
                    if !seen.insert(field.name.as_str()) {
                        return Err(bad(format!("name {} is used twice", field.name)));
                    }
                    if field.kind == FieldKind::N {
                        n_fields.insert(field.name.as_str(), field.len);
                    }
                }
                Item::Group(group) => {
                    if !seen.insert(group.group.as_str()) {
                        return Err(bad(format!("name {} is used twice", group.group)));
                    }
                    let Some(width) = n_fields.get(group.count_field.as_str()) else {
                        return Err(bad(format!(
                            "group {} is counted by {}, which is not an earlier N field",
                            group.group, group.count_field
                        )));
                    };
                    if !counted.insert(group.count_field.as_str()) {
                        return Err(bad(format!("{} counts two groups", group.count_field)));
                    }
                    if group.max.to_string().len() > *width {
                        return Err(bad(format!(
                            "max {} of group {} does not fit {}",
                            group.max, group.group, group.count_field
                        )));
                    }
                    let mut inner = BTreeSet::new();
                    for field in &group.fields {
                        if field.len == 0 {
                            return Err(bad(format!(
                                "field {}.{} has zero width",
                                group.group, field.name
                            )));
                        }
                        if field.kind == FieldKind::M && field.len < MIN_M_LEN {
                            return Err(bad(format!(
                                "M field {}.{} is narrower than 0.00",
                                group.group, field.name
                            )));
                        }
                        if !inner.insert(field.name.as_str()) {
                            return Err(bad(format!(
                                "name {}.{} is used twice",
                                group.group, field.name
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The record's length in bytes when it has no repeated group.
    pub fn fixed_len(&self) -> Option<usize> {
        self.items
            .iter()
            .try_fold(0usize, |total, item| match item {
                Item::Field(field) => total.checked_add(field.len),
                Item::Group(_) => None,
            })
    }

    /// A layout made of `parts` in order (e.g. a partner's common header and one body).
    pub fn concat(name: &str, parts: &[&Layout]) -> Layout {
        Layout {
            name: name.to_string(),
            items: parts
                .iter()
                .flat_map(|part| part.items.iter().cloned())
                .collect(),
        }
    }

    /// Encodes every field of the layout from `record`, in order. Values the layout does not name
    /// are ignored (a header record may carry more); a field the layout names must have a value,
    /// except a group's count field, which is written from the number of entries.
    pub fn encode(&self, record: &Record, charset: Charset) -> Result<Vec<u8>, LayoutError> {
        let counts = group_counts(self);
        let mut out = Vec::with_capacity(self.fixed_len().unwrap_or(256));
        for item in &self.items {
            match item {
                Item::Field(field) => {
                    if let Some(group) = counts.get(field.name.as_str()) {
                        let entries = record.group(&group.group).len();
                        let offset = out.len();
                        let bad_count = |count: String| LayoutError::BadCount {
                            layout: self.name.clone(),
                            group: group.group.clone(),
                            field: field.name.clone(),
                            offset,
                            count,
                            max: group.max,
                        };
                        if entries > group.max {
                            return Err(bad_count(entries.to_string()));
                        }
                        // A count the caller set must agree with the entries: a disagreement is a bug
                        // upstream, and the entries are what goes on the wire.
                        if let Some(stated) = record.get(&field.name) {
                            if stated.parse::<usize>().ok() != Some(entries) {
                                return Err(bad_count(format!("{stated} stated, {entries} given")));
                            }
                        }
                        self.encode_field(
                            &mut out,
                            field,
                            &field.name,
                            &entries.to_string(),
                            charset,
                        )?;
                    } else {
                        let value =
                            record
                                .get(&field.name)
                                .ok_or_else(|| LayoutError::Missing {
                                    layout: self.name.clone(),
                                    field: field.name.clone(),
                                })?;
                        self.encode_field(&mut out, field, &field.name, value, charset)?;
                    }
                }
                Item::Group(group) => {
                    for (index, entry) in record.group(&group.group).iter().enumerate() {
                        for field in &group.fields {
                            let label = format!("{}[{}].{}", group.group, index, field.name);
                            let value =
                                entry.get(&field.name).ok_or_else(|| LayoutError::Missing {
                                    layout: self.name.clone(),
                                    field: label.clone(),
                                })?;
                            self.encode_field(&mut out, field, &label, value, charset)?;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn encode_field(
        &self,
        out: &mut Vec<u8>,
        field: &FieldSpec,
        label: &str,
        value: &str,
        charset: Charset,
    ) -> Result<(), LayoutError> {
        let offset = out.len();
        let bytes = match field.kind {
            FieldKind::N => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(LayoutError::NotDigits {
                        layout: self.name.clone(),
                        field: label.to_string(),
                        offset,
                        found: hex_excerpt(value.as_bytes()),
                    });
                }
                value.as_bytes().to_vec()
            }
            FieldKind::AN => {
                if !value.bytes().all(is_printable_ascii) {
                    return Err(LayoutError::NotAscii {
                        layout: self.name.clone(),
                        field: label.to_string(),
                        offset,
                        found: hex_excerpt(value.as_bytes()),
                    });
                }
                value.as_bytes().to_vec()
            }
            FieldKind::M => {
                let not_amount = || LayoutError::NotAmount {
                    layout: self.name.clone(),
                    field: label.to_string(),
                    offset,
                    found: hex_excerpt(value.as_bytes()),
                };
                // Yuan text as decoded, or the fen digits `Record::set_money` stores.
                let amount = if value.contains('.') {
                    parse_m_yuan(value)
                } else {
                    Money::parse_fen_digits(value).ok()
                };
                amount.ok_or_else(not_amount)?.to_yuan().into_bytes()
            }
            FieldKind::C => text::encode(value, charset).map_err(|e| LayoutError::BadText {
                layout: self.name.clone(),
                field: label.to_string(),
                offset,
                charset,
                detail: e.to_string(),
                found: String::new(),
            })?,
        };
        if bytes.len() > field.len {
            return Err(LayoutError::TooLong {
                layout: self.name.clone(),
                field: label.to_string(),
                offset,
                width_bytes: field.len,
                value_bytes: bytes.len(),
            });
        }
        let pad = field.len - bytes.len();
        match field.kind {
            FieldKind::N | FieldKind::M => {
                out.extend(std::iter::repeat_n(b'0', pad));
                out.extend_from_slice(&bytes);
            }
            FieldKind::AN | FieldKind::C => {
                out.extend_from_slice(&bytes);
                out.extend(std::iter::repeat_n(b' ', pad));
            }
        }
        Ok(())
    }

    /// Decodes a record that must take exactly all of `bytes`.
    pub fn decode(&self, bytes: &[u8], charset: Charset) -> Result<Record, LayoutError> {
        let (record, used) = self.decode_prefix(bytes, charset)?;
        if used != bytes.len() {
            let rest = bytes.get(used..).unwrap_or(&[]);
            return Err(LayoutError::Leftover {
                layout: self.name.clone(),
                offset: used,
                leftover: rest.len(),
                found: hex_excerpt(rest),
            });
        }
        Ok(record)
    }

    /// Decodes a record from the start of `bytes`; returns it with the number of bytes it took.
    pub fn decode_prefix(
        &self,
        bytes: &[u8],
        charset: Charset,
    ) -> Result<(Record, usize), LayoutError> {
        let counts = group_counts(self);
        let mut record = Record::new();
        let mut offset = 0usize;
        for item in &self.items {
            match item {
                Item::Field(field) => {
                    let value =
                        self.decode_field(bytes, &mut offset, field, &field.name, charset)?;
                    record.set(&field.name, value);
                }
                Item::Group(group) => {
                    let count_spec = counts.get(group.count_field.as_str()).copied();
                    let count_text = record
                        .get(&group.count_field)
                        .filter(|_| count_spec.is_some())
                        .ok_or_else(|| LayoutError::BadLayout {
                            layout: self.name.clone(),
                            reason: format!(
                                "group {} is counted by {}, which is not an earlier field",
                                group.group, group.count_field
                            ),
                        })?;
                    let count_offset = self.offset_of(&group.count_field).unwrap_or(0);
                    let bad_count = || LayoutError::BadCount {
                        layout: self.name.clone(),
                        group: group.group.clone(),
                        field: group.count_field.clone(),
                        offset: count_offset,
                        count: count_text.to_string(),
                        max: group.max,
                    };
                    let count = count_text.parse::<usize>().map_err(|_| bad_count())?;
                    if count > group.max {
                        return Err(bad_count());
                    }
                    let mut entries = Vec::with_capacity(count);
                    for index in 0..count {
                        let mut entry = Record::new();
                        for field in &group.fields {
                            let label = format!("{}[{}].{}", group.group, index, field.name);
                            let value =
                                self.decode_field(bytes, &mut offset, field, &label, charset)?;
                            entry.set(&field.name, value);
                        }
                        entries.push(entry);
                    }
                    record.groups.insert(group.group.clone(), entries);
                }
            }
        }
        Ok((record, offset))
    }

    /// Byte offset of a top-level field that precedes every group (count fields do).
    fn offset_of(&self, name: &str) -> Option<usize> {
        let mut offset = 0usize;
        for item in &self.items {
            match item {
                Item::Field(field) if field.name == name => return Some(offset),
                Item::Field(field) => offset += field.len,
                Item::Group(_) => return None,
            }
        }
        None
    }

    fn decode_field(
        &self,
        bytes: &[u8],
        offset: &mut usize,
        field: &FieldSpec,
        label: &str,
        charset: Charset,
    ) -> Result<String, LayoutError> {
        let start = *offset;
        let Some(raw) = start
            .checked_add(field.len)
            .and_then(|end| bytes.get(start..end))
        else {
            let rest = bytes.get(start..).unwrap_or(&[]);
            return Err(LayoutError::Short {
                layout: self.name.clone(),
                field: label.to_string(),
                offset: start,
                needed: field.len,
                available: rest.len(),
                found: hex_excerpt(rest),
            });
        };
        let value = match field.kind {
            FieldKind::N => {
                if !raw.iter().all(u8::is_ascii_digit) {
                    return Err(LayoutError::NotDigits {
                        layout: self.name.clone(),
                        field: label.to_string(),
                        offset: start,
                        found: hex_excerpt(raw),
                    });
                }
                // All ASCII digits, so this is valid UTF-8.
                String::from_utf8_lossy(raw).into_owned()
            }
            FieldKind::AN => {
                if !raw.iter().copied().all(is_printable_ascii) {
                    return Err(LayoutError::NotAscii {
                        layout: self.name.clone(),
                        field: label.to_string(),
                        offset: start,
                        found: hex_excerpt(raw),
                    });
                }
                String::from_utf8_lossy(raw)
                    .trim_end_matches(' ')
                    .to_string()
            }
            FieldKind::M => {
                let text = std::str::from_utf8(raw).ok();
                text.and_then(parse_m_yuan)
                    .map(Money::to_yuan)
                    .ok_or_else(|| LayoutError::NotAmount {
                        layout: self.name.clone(),
                        field: label.to_string(),
                        offset: start,
                        found: hex_excerpt(raw),
                    })?
            }
            FieldKind::C => {
                let decoded = decode_exact(raw, charset).map_err(|e| LayoutError::BadText {
                    layout: self.name.clone(),
                    field: label.to_string(),
                    offset: start,
                    charset,
                    detail: e.to_string(),
                    found: hex_excerpt(raw),
                })?;
                decoded.trim_end_matches(' ').to_string()
            }
        };
        *offset = start + field.len;
        Ok(value)
    }
}

/// Reads an M value: digits, one point, exactly two decimals, no sign, leading zeros allowed
/// (zero padding). `None` for anything else, overflow included.
fn parse_m_yuan(text: &str) -> Option<Money> {
    let (int_part, dec_part) = text.split_once('.')?;
    if int_part.is_empty()
        || dec_part.len() != 2
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !dec_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let significant = int_part.trim_start_matches('0');
    let int_digits = if significant.is_empty() {
        "0"
    } else {
        significant
    };
    Money::parse_yuan(&format!("{int_digits}.{dec_part}")).ok()
}

fn is_printable_ascii(byte: u8) -> bool {
    (0x20..=0x7E).contains(&byte)
}

/// A TOML file of `[[layouts]]` tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutSet {
    pub layouts: Vec<Layout>,
}

impl LayoutSet {
    /// Parses and validates every layout; layout names must be unique.
    pub fn from_toml(text: &str) -> Result<LayoutSet, LayoutError> {
        let set: LayoutSet =
            toml::from_str(text).map_err(|e| LayoutError::BadToml(e.to_string()))?;
        let mut names = BTreeSet::new();
        for layout in &set.layouts {
            if !names.insert(layout.name.as_str()) {
                return Err(LayoutError::BadLayout {
                    layout: layout.name.clone(),
                    reason: "the name is used by two layouts".to_string(),
                });
            }
            layout.validate()?;
        }
        Ok(set)
    }

    pub fn get(&self, name: &str) -> Result<&Layout, LayoutError> {
        self.layouts
            .iter()
            .find(|layout| layout.name == name)
            .ok_or_else(|| LayoutError::UnknownLayout(name.to_string()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Spec 01's common header, 1001 response and 1002 request, typed from the spec's tables.
    const CDGJ_LAYOUTS: &str = r#"
[[layouts]]
name = "cdgj.header"
items = [
  { name = "TxCode", kind = "AN", len = 4 },
  { name = "BankCode", kind = "AN", len = 8 },
  { name = "BranchNo", kind = "AN", len = 6 },
  { name = "TellerNo", kind = "AN", len = 6 },
  { name = "Channel", kind = "N", len = 2 },
  { name = "TxDate", kind = "N", len = 8 },
  { name = "TxTime", kind = "N", len = 6 },
  { name = "BankSerial", kind = "AN", len = 20 },
  { name = "RspCode", kind = "AN", len = 4 },
  { name = "RspMsg", kind = "C", len = 40 },
]

[[layouts]]
name = "cdgj.1002.req"
items = [
  { name = "CustomerNo", kind = "AN", len = 16 },
  { name = "PayAmount", kind = "N", len = 12 },
  { name = "TotalDue", kind = "N", len = 12 },
  { name = "PayerAccount", kind = "AN", len = 32 },
]

[[layouts]]
name = "cdgj.1001.rsp"
items = [
  { name = "CustomerNo", kind = "AN", len = 16 },
  { name = "CustomerName", kind = "C", len = 60 },
  { name = "Address", kind = "C", len = 80 },
  { name = "TotalDue", kind = "N", len = 12 },
  { name = "Prepaid", kind = "N", len = 12 },
  { name = "ItemCount", kind = "N", len = 2 },
  { group = "Items", count_field = "ItemCount", max = 12, fields = [
    { name = "Period", kind = "N", len = 6 },
    { name = "Amount", kind = "N", len = 12 },
    { name = "Penalty", kind = "N", len = 12 },
  ] },
]
"#;

    fn set() -> LayoutSet {
        match LayoutSet::from_toml(CDGJ_LAYOUTS) {
            Ok(set) => set,
            Err(e) => panic!("spec 01 layouts do not load: {e}"),
        }
    }

    fn layout(name: &str) -> Layout {
        match set().get(name) {
            Ok(layout) => layout.clone(),
            Err(e) => panic!("{e}"),
        }
    }

    fn header_1002() -> Record {
        Record::new()
            .with("TxCode", "1002")
            .with("BankCode", "NSH43102")
            .with("BranchNo", "000101")
            .with("TellerNo", "MB0001")
            .with("Channel", "02")
            .with("TxDate", "20261203")
            .with("TxTime", "101010")
            .with("BankSerial", "B2026120300000000002")
            .with("RspCode", "")
            .with("RspMsg", "")
    }

    #[test]
    fn toml_layout_set_loads_with_the_spec_widths() {
        let set = set();
        assert_eq!(set.get("cdgj.header").map(|l| l.fixed_len()), Ok(Some(104)));
        assert_eq!(
            set.get("cdgj.1002.req").map(|l| l.fixed_len()),
            Ok(Some(72))
        );
        assert_eq!(set.get("cdgj.1001.rsp").map(|l| l.fixed_len()), Ok(None));
        assert_eq!(
            set.get("cdgj.9999").err().map(|e| e.code()),
            Some("LAYOUT_UNKNOWN")
        );
    }

    #[test]
    fn module_doc_sample_loads() {
        let sample = r#"
[[layouts]]
name = "cdgj.header"
items = [
  { name = "TxCode", kind = "AN", len = 4 },
  { name = "BankCode", kind = "AN", len = 8 },
  { name = "Channel", kind = "N", len = 2 },
  { name = "RspMsg", kind = "C", len = 40 },
]

[[layouts]]
name = "cdgj.1001.rsp"
items = [
  { name = "CustomerNo", kind = "AN", len = 16 },
  { name = "TotalDue", kind = "N", len = 12 },
  { name = "ItemCount", kind = "N", len = 2 },
  { group = "Items", count_field = "ItemCount", max = 12, fields = [
    { name = "Period", kind = "N", len = 6 },
    { name = "Amount", kind = "N", len = 12 },
  ] },
]
"#;
        let set = LayoutSet::from_toml(sample);
        assert_eq!(set.as_ref().map(|s| s.layouts.len()).ok(), Some(2));
    }

    #[test]
    fn spec01_worked_example_1002_body_bytes() {
        let body = Record::new()
            .with("CustomerNo", "4310020000000001")
            .with("PayAmount", "30000")
            .with("TotalDue", "22335")
            .with("PayerAccount", "6230901000000000011");
        let whole = Layout::concat(
            "cdgj.1002",
            &[&layout("cdgj.header"), &layout("cdgj.1002.req")],
        );
        let mut record = header_1002();
        for (name, value) in [
            ("CustomerNo", "4310020000000001"),
            ("PayerAccount", "6230901000000000011"),
        ] {
            record.set(name, value);
        }
        record.set_money("PayAmount", Money::from_fen(30000));
        record.set_money("TotalDue", Money::from_fen(22335));
        // Typed from the spec's worked example: 176 bytes before the MAC.
        let expected = format!(
            "{}{}{}{}{}{}{}",
            "1002NSH43102000101MB00010220261203101010B2026120300000000002",
            " ".repeat(44),
            "4310020000000001",
            "000000030000",
            "000000022335",
            "6230901000000000011",
            " ".repeat(13)
        );
        assert_eq!(expected.len(), 176);
        assert_eq!(
            whole.encode(&record, Charset::Gbk),
            Ok(expected.clone().into_bytes())
        );
        assert_eq!(
            layout("cdgj.1002.req").encode(&body, Charset::Gbk),
            Ok(expected.as_bytes().get(104..).unwrap_or(&[]).to_vec())
        );
        // And back.
        let decoded = whole.decode(expected.as_bytes(), Charset::Gbk);
        assert_eq!(
            decoded.as_ref().map(|r| r.get("PayerAccount")),
            Ok(Some("6230901000000000011"))
        );
        assert_eq!(decoded.as_ref().map(|r| r.get("RspMsg")), Ok(Some("")));
        assert_eq!(decoded.as_ref().map(|r| r.get("Channel")), Ok(Some("02")));
        assert_eq!(
            decoded.as_ref().map(|r| r.get_money("PayAmount")),
            Ok(Ok(Money::from_fen(30000)))
        );
    }

    /// The spec's 1001 response for 张三, built byte by byte from the spec text and the GBK chart.
    pub(crate) fn spec01_1001_response_body() -> Vec<u8> {
        let mut bytes = b"1001NSH43102000101MB00010220261203101010B2026120300000000001".to_vec();
        bytes.extend_from_slice(b"0000");
        bytes.extend_from_slice(&[0xB3, 0xC9, 0xB9, 0xA6]); // 成功
        bytes.extend_from_slice(&[b' '; 36]);
        bytes.extend_from_slice(b"4310020000000001");
        bytes.extend_from_slice(&[0xD5, 0xC5, 0xC8, 0xFD]); // 张三
        bytes.extend_from_slice(&[b' '; 56]);
        // 郴州市北湖区人民路1号
        bytes.extend_from_slice(&[
            0xB3, 0xBB, 0xD6, 0xDD, 0xCA, 0xD0, 0xB1, 0xB1, 0xBA, 0xFE, 0xC7, 0xF8, 0xC8, 0xCB,
            0xC3, 0xF1, 0xC2, 0xB7, 0x31, 0xBA, 0xC5,
        ]);
        bytes.extend_from_slice(&[b' '; 59]);
        bytes.extend_from_slice(b"000000022335000000000000");
        bytes.extend_from_slice(b"02");
        bytes.extend_from_slice(b"202610000000012345000000000000");
        bytes.extend_from_slice(b"202611000000009870000000000120");
        bytes
    }

    #[test]
    fn spec01_1001_response_decodes_and_is_346_bytes() {
        let bytes = spec01_1001_response_body();
        assert_eq!(bytes.len(), 346);
        let header = layout("cdgj.header");
        let (head, used) = match header.decode_prefix(&bytes, Charset::Gbk) {
            Ok(pair) => pair,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(used, 104);
        assert_eq!(head.get("RspCode"), Some("0000"));
        assert_eq!(head.get("RspMsg"), Some("成功"));
        assert_eq!(head.get("BankSerial"), Some("B2026120300000000001"));
        let body =
            match layout("cdgj.1001.rsp").decode(bytes.get(104..).unwrap_or(&[]), Charset::Gbk) {
                Ok(body) => body,
                Err(e) => panic!("{e}"),
            };
        assert_eq!(body.get("CustomerName"), Some("张三"));
        assert_eq!(body.get("Address"), Some("郴州市北湖区人民路1号"));
        assert_eq!(body.get_money("TotalDue"), Ok(Money::from_fen(22335)));
        assert_eq!(body.get_money("Prepaid"), Ok(Money::ZERO));
        assert_eq!(body.get_u32("ItemCount"), Ok(2));
        let items = body.group("Items");
        assert_eq!(items.len(), 2);
        assert_eq!(items.first().and_then(|i| i.get("Period")), Some("202610"));
        assert_eq!(
            items.first().map(|i| i.get_money("Amount")),
            Some(Ok(Money::from_fen(12345)))
        );
        assert_eq!(
            items.get(1).map(|i| i.get_money("Penalty")),
            Some(Ok(Money::from_fen(120)))
        );

        // Encoding the same content from fields gives the same bytes.
        let mut rebuilt = Record::new()
            .with("CustomerNo", "4310020000000001")
            .with("CustomerName", "张三")
            .with("Address", "郴州市北湖区人民路1号")
            .with("TotalDue", "22335")
            .with("Prepaid", "0");
        rebuilt.push_group(
            "Items",
            Record::new()
                .with("Period", "202610")
                .with("Amount", "12345")
                .with("Penalty", "0"),
        );
        rebuilt.push_group(
            "Items",
            Record::new()
                .with("Period", "202611")
                .with("Amount", "9870")
                .with("Penalty", "120"),
        );
        assert_eq!(
            layout("cdgj.1001.rsp").encode(&rebuilt, Charset::Gbk),
            Ok(bytes.get(104..).unwrap_or(&[]).to_vec())
        );
    }

    #[test]
    fn decode_errors_name_field_offset_and_bytes() {
        let header = layout("cdgj.header");
        let mut bytes = spec01_1001_response_body();
        // Channel (offset 24) with a letter in it.
        if let Some(b) = bytes.get_mut(25) {
            *b = b'X';
        }
        assert_eq!(
            header.decode_prefix(&bytes, Charset::Gbk).err(),
            Some(LayoutError::NotDigits {
                layout: "cdgj.header".into(),
                field: "Channel".into(),
                offset: 24,
                found: "3058".into(),
            })
        );

        // A high byte in BankCode (offset 4).
        let mut bytes = spec01_1001_response_body();
        if let Some(b) = bytes.get_mut(4) {
            *b = 0xD5;
        }
        let err = header.decode_prefix(&bytes, Charset::Gbk).err();
        assert_eq!(
            err.as_ref().map(LayoutError::code),
            Some("LAYOUT_NOT_ASCII")
        );
        assert!(
            matches!(err, Some(LayoutError::NotAscii { offset: 4, ref field, ref found, .. })
            if field == "BankCode" && found == "D553483433313032")
        );

        // Short: 100 bytes for a 104-byte header; RspMsg starts at 64 and 36 bytes remain.
        let bytes = spec01_1001_response_body();
        let err = header
            .decode(bytes.get(..100).unwrap_or(&[]), Charset::Gbk)
            .err();
        assert!(
            matches!(err, Some(LayoutError::Short { offset: 64, needed: 40, available: 36, ref field, .. }) if field == "RspMsg")
        );

        // Leftover: the whole response against the header alone.
        let err = header.decode(&bytes, Charset::Gbk).err();
        assert!(matches!(
            err,
            Some(LayoutError::Leftover {
                offset: 104,
                leftover: 242,
                ..
            })
        ));

        // Group entry error: the second item's Amount (104 + 182 + 30 + 6 = 322 in the whole,
        // 218 in the body) holds a space.
        let mut body = bytes.get(104..).unwrap_or(&[]).to_vec();
        if let Some(b) = body.get_mut(218) {
            *b = b' ';
        }
        let err = layout("cdgj.1001.rsp").decode(&body, Charset::Gbk).err();
        assert!(
            matches!(err, Some(LayoutError::NotDigits { offset: 218, ref field, .. }) if field == "Items[1].Amount")
        );

        // A count above max.
        let mut body = bytes.get(104..).unwrap_or(&[]).to_vec();
        if let Some(b) = body.get_mut(180..182) {
            b.copy_from_slice(b"13");
        }
        let err = layout("cdgj.1001.rsp").decode(&body, Charset::Gbk).err();
        assert!(matches!(
            err,
            Some(LayoutError::BadCount {
                offset: 180,
                max: 12,
                ..
            })
        ));
    }

    #[test]
    fn redacted_errors_keep_place_but_not_bytes() {
        let error = LayoutError::NotAscii {
            layout: "cdgj.1002.req".into(),
            field: "PayerAccount".into(),
            offset: 40,
            found: "D5C5".into(),
        };
        assert_eq!(
            error.redacted(),
            LayoutError::NotAscii {
                layout: "cdgj.1002.req".into(),
                field: "PayerAccount".into(),
                offset: 40,
                found: "<4 hex digits withheld>".into(),
            }
        );
        assert_eq!(error.redacted().code(), "LAYOUT_NOT_ASCII");
    }

    #[test]
    fn a_gbk_character_cut_at_the_field_end_is_an_error() {
        let layout = Layout {
            name: "t".into(),
            items: vec![
                Item::Field(FieldSpec {
                    name: "Name".into(),
                    kind: FieldKind::C,
                    len: 3,
                }),
                Item::Field(FieldSpec {
                    name: "Tail".into(),
                    kind: FieldKind::AN,
                    len: 1,
                }),
            ],
        };
        // 张 (D5 C5) then the lead byte of 三 (C8) ending the field, FD in the next field.
        let bytes = [0xD5, 0xC5, 0xC8, 0xFD];
        let err = layout.decode(&bytes, Charset::Gbk).err();
        assert!(
            matches!(err, Some(LayoutError::BadText { offset: 0, ref found, .. }) if found == "D5C5C8")
        );
        // And the encoder refuses to write 张三 into 3 bytes rather than cut it.
        let record = Record::new().with("Name", "张三").with("Tail", "x");
        assert_eq!(
            layout.encode(&record, Charset::Gbk).err(),
            Some(LayoutError::TooLong {
                layout: "t".into(),
                field: "Name".into(),
                offset: 0,
                width_bytes: 3,
                value_bytes: 4
            })
        );
        // A four-byte GB18030 sequence is not GBK even though the WHATWG GBK decoder reads it.
        let four = Layout {
            name: "t4".into(),
            items: vec![Item::Field(FieldSpec {
                name: "Name".into(),
                kind: FieldKind::C,
                len: 4,
            })],
        };
        assert!(matches!(
            four.decode(&[0x81, 0x30, 0x81, 0x30], Charset::Gbk),
            Err(LayoutError::BadText { .. })
        ));
        assert!(four
            .decode(&[0x81, 0x30, 0x81, 0x30], Charset::Gb18030)
            .is_ok());
    }

    #[test]
    fn encode_refuses_missing_bad_and_unmappable_values() {
        let body = layout("cdgj.1002.req");
        let full = Record::new()
            .with("CustomerNo", "4310020000000001")
            .with("PayAmount", "30000")
            .with("TotalDue", "22335")
            .with("PayerAccount", "6230901000000000011");
        let mut missing = full.clone();
        missing.fields.remove("TotalDue");
        assert_eq!(
            body.encode(&missing, Charset::Gbk).err().map(|e| e.code()),
            Some("LAYOUT_MISSING")
        );
        let negative = full.clone().with("PayAmount", "-1");
        assert!(matches!(
            body.encode(&negative, Charset::Gbk),
            Err(LayoutError::NotDigits { offset: 16, .. })
        ));
        let wide = full.clone().with("CustomerNo", "43100200000000011");
        assert!(matches!(
            body.encode(&wide, Charset::Gbk),
            Err(LayoutError::TooLong {
                value_bytes: 17,
                ..
            })
        ));
        let chinese = full.clone().with("PayerAccount", "账号");
        assert!(matches!(
            body.encode(&chinese, Charset::Gbk),
            Err(LayoutError::NotAscii { offset: 40, .. })
        ));
        let header = layout("cdgj.header");
        let unmappable = header_1002().with("RspMsg", "𠀀");
        assert!(matches!(
            header.encode(&unmappable, Charset::Gbk),
            Err(LayoutError::BadText { offset: 64, .. })
        ));
        // The C width is bytes: 20 Chinese characters fill 40 bytes, 21 do not fit.
        let twenty = header_1002().with("RspMsg", "成".repeat(20));
        assert_eq!(
            header.encode(&twenty, Charset::Gbk).map(|b| b.len()),
            Ok(104)
        );
        let twenty_one = header_1002().with("RspMsg", "成".repeat(21));
        assert!(matches!(
            header.encode(&twenty_one, Charset::Gbk),
            Err(LayoutError::TooLong {
                value_bytes: 42,
                ..
            })
        ));
    }

    #[test]
    fn group_count_is_written_from_entries_and_checked() {
        let body = layout("cdgj.1001.rsp");
        let base = Record::new()
            .with("CustomerNo", "4310020000000001")
            .with("CustomerName", "张三")
            .with("Address", "x")
            .with("TotalDue", "0")
            .with("Prepaid", "0");
        let encoded = body.encode(&base, Charset::Gbk);
        assert_eq!(encoded.as_ref().map(Vec::len), Ok(182));
        assert_eq!(
            encoded.as_ref().ok().and_then(|b| b.get(180..182)),
            Some(&b"00"[..])
        );
        let mut too_many = base.clone();
        for _ in 0..13 {
            too_many.push_group(
                "Items",
                Record::new()
                    .with("Period", "202601")
                    .with("Amount", "1")
                    .with("Penalty", "0"),
            );
        }
        assert!(matches!(
            body.encode(&too_many, Charset::Gbk),
            Err(LayoutError::BadCount { max: 12, .. })
        ));
        let stated_wrong = base.clone().with("ItemCount", "1");
        assert!(matches!(
            body.encode(&stated_wrong, Charset::Gbk),
            Err(LayoutError::BadCount { .. })
        ));
    }

    #[test]
    fn inconsistent_layouts_are_refused_at_load() {
        let count_after_group = r#"
[[layouts]]
name = "bad"
items = [
  { group = "G", count_field = "N", max = 2, fields = [ { name = "A", kind = "N", len = 1 } ] },
  { name = "N", kind = "N", len = 1 },
]
"#;
        assert_eq!(
            LayoutSet::from_toml(count_after_group)
                .err()
                .map(|e| e.code()),
            Some("LAYOUT_BAD_LAYOUT")
        );
        let typo = r#"
[[layouts]]
name = "bad"
items = [ { name = "A", kind = "N", lenght = 1 } ]
"#;
        assert_eq!(
            LayoutSet::from_toml(typo).err().map(|e| e.code()),
            Some("LAYOUT_BAD_TOML")
        );
        let bad_kind = r#"
[[layouts]]
name = "bad"
items = [ { name = "A", kind = "X", len = 1 } ]
"#;
        assert_eq!(
            LayoutSet::from_toml(bad_kind).err().map(|e| e.code()),
            Some("LAYOUT_BAD_TOML")
        );
    }

    fn m_layout() -> Layout {
        let text = r#"
[[layouts]]
name = "water.102.rsp"
items = [
  { name = "PartnerSerial", kind = "AN", len = 20 },
  { name = "AcctDate", kind = "N", len = 8 },
  { name = "Balance", kind = "M", len = 12 },
]
"#;
        match LayoutSet::from_toml(text).and_then(|set| set.get("water.102.rsp").cloned()) {
            Ok(layout) => layout,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn m_field_reads_spec_02_example_amount() {
        // Spec 02: "M ... 12 bytes: `000000035.20`".
        let wire = [&b"P0000000000000000001"[..], b"20261202", b"000000035.20"].concat();
        let record = m_layout().decode(&wire, Charset::Gbk).expect("decodes");
        assert_eq!(record.get("Balance"), Some("35.20"));
        assert_eq!(record.get_money("Balance"), Ok(Money::from_fen(3520)));
        let zero = m_layout()
            .decode(b"P000000000000000000120261202000000000.00", Charset::Gbk)
            .expect("decodes");
        assert_eq!(zero.get_money("Balance"), Ok(Money::ZERO));
    }

    #[test]
    fn m_field_writes_yuan_from_set_money_and_from_yuan_text() {
        let mut record = Record::new()
            .with("PartnerSerial", "P0000000000000000001")
            .with("AcctDate", "20261202");
        record.set_money("Balance", Money::from_fen(12640));
        let wire = m_layout().encode(&record, Charset::Gbk).expect("encodes");
        assert_eq!(&wire[28..], b"000000126.40");
        record.set("Balance", "4.90");
        let wire = m_layout().encode(&record, Charset::Gbk).expect("encodes");
        assert_eq!(&wire[28..], b"000000004.90");
        record.set_money("Balance", Money::ZERO);
        let wire = m_layout().encode(&record, Charset::Gbk).expect("encodes");
        assert_eq!(&wire[28..], b"000000000.00");
    }

    #[test]
    fn m_field_refuses_sign_third_decimal_and_overflow() {
        let layout = m_layout();
        for bad in [
            &b"-00000035.20"[..],
            b"+00000035.20",
            b"0000035.200 ",
            b"00000035.200",
            b"000000035.2 ",
            b"   000035.20",
            b"000000003520",
            b"0000000.3520",
        ] {
            let mut wire = b"P000000000000000000120261202".to_vec();
            wire.extend_from_slice(bad);
            let error = layout.decode(&wire, Charset::Gbk).expect_err("refused");
            assert_eq!(error.code(), "LAYOUT_NOT_AMOUNT", "{:?}", bad);
            assert!(error.to_string().contains("offset 28"), "{error}");
        }
        let base = Record::new()
            .with("PartnerSerial", "P1")
            .with("AcctDate", "20261202");
        for bad in ["-35.20", "35.205", "35.2", "35", "+1.00"] {
            let record = base.clone().with("Balance", bad);
            // "35" reads as fen digits (set_money's form): 0.35 yuan, which fits.
            if bad == "35" {
                let wire = layout.encode(&record, Charset::Gbk).expect("fen digits");
                assert_eq!(&wire[28..], b"000000000.35");
                continue;
            }
            let error = layout.encode(&record, Charset::Gbk).expect_err(bad);
            assert_eq!(error.code(), "LAYOUT_NOT_AMOUNT", "{bad}");
        }
        let mut negative = base.clone();
        negative.set_money("Balance", Money::from_fen(-1));
        assert_eq!(
            layout
                .encode(&negative, Charset::Gbk)
                .err()
                .map(|e| e.code()),
            Some("LAYOUT_NOT_AMOUNT")
        );
        let mut too_wide = base;
        too_wide.set_money("Balance", Money::from_fen(100_000_000_000));
        assert_eq!(
            layout
                .encode(&too_wide, Charset::Gbk)
                .err()
                .map(|e| e.code()),
            Some("LAYOUT_TOO_LONG")
        );
    }

    #[test]
    fn m_field_narrower_than_zero_amount_is_a_bad_layout() {
        let text = r#"
[[layouts]]
name = "narrow"
items = [ { name = "Amount", kind = "M", len = 3 } ]
"#;
        assert_eq!(
            LayoutSet::from_toml(text).err().map(|e| e.code()),
            Some("LAYOUT_BAD_LAYOUT")
        );
    }
}
