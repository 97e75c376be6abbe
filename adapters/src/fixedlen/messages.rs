//! Pure encode and decode of a profile's messages: the request frame (length header, header,
//! body, MAC) and the checks on an answer (length, MAC, echoed header, the empty-body rule of
//! error answers, the layouts). No I/O here.

use codecs::clock::{hhmmss, yyyymmdd};
use codecs::layout::{FieldKind, Item, LayoutError, Record};
use codecs::mac;

use super::profile::{Codes, MacCoverage, MacScheme, Profile, Trade};
use crate::spi::{AdapterError, RequestContext};

/// Why an answer cannot be trusted. Every one of them leaves a money-moving call's outcome
/// unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("应答长度头错误：{0}")]
    Length(String),
    #[error("应答MAC校验失败")]
    BadMac,
    #[error("应答报文格式错误：{0}")]
    Layout(LayoutError),
    #[error("应答未原样返回请求的{field}")]
    Echo { field: String },
    #[error("应答码{rsp_code}的报文不应有报文体（{extra_bytes}字节）")]
    UnexpectedBody {
        rsp_code: String,
        extra_bytes: usize,
    },
}

impl ResponseError {
    pub fn code(&self) -> &'static str {
        match self {
            ResponseError::Length(_) => "ADP_RSP_LENGTH",
            ResponseError::BadMac => "ADP_RSP_MAC",
            ResponseError::Layout(_) => "ADP_RSP_LAYOUT",
            ResponseError::Echo { .. } => "ADP_RSP_ECHO",
            ResponseError::UnexpectedBody { .. } => "ADP_RSP_BODY",
        }
    }
}

impl From<LayoutError> for ResponseError {
    fn from(error: LayoutError) -> Self {
        // Field bytes may be a name or an account: keep them out of logs.
        ResponseError::Layout(error.redacted())
    }
}

/// A checked answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub header: Record,
    pub rsp_code: String,
    pub rsp_msg: String,
    /// Present only on success answers of trades whose answer has a body.
    pub body: Option<Record>,
}

/// The messages of one instance: its profile, CompanyCode and MAC key.
pub struct Codec {
    profile: Profile,
    company_code: String,
    key: [u8; 16],
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("profile", &self.profile.name)
            .field("company_code", &self.company_code)
            .field("key", &"<hidden>")
            .finish()
    }
}

impl Codec {
    pub fn new(profile: Profile, company_code: &str, key: [u8; 16]) -> Codec {
        Codec {
            profile,
            company_code: company_code.to_string(),
            key,
        }
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn company_code(&self) -> &str {
        &self.company_code
    }

    fn request_header(&self, ctx: &RequestContext, trade: &Trade) -> Record {
        let h = &self.profile.header;
        Record::new()
            .with(&h.trade_code, trade.code.as_str())
            .with(&h.company_code, self.company_code.as_str())
            .with(&h.branch_no, ctx.branch_no.as_str())
            .with(&h.teller_no, ctx.teller_no.as_str())
            .with(&h.channel, self.profile.channels.code(&ctx.channel))
            .with(&h.tx_date, yyyymmdd(ctx.tx_date))
            .with(&h.tx_time, hhmmss(ctx.tx_date.and_time(ctx.tx_time)))
            .with(&h.bank_serial, ctx.bank_serial.as_str())
            .with(&h.rsp_code, "")
            .with(&h.rsp_msg, "")
    }

    fn mac_hex(&self, data: &[u8]) -> String {
        match self.profile.mac.scheme {
            MacScheme::Cdgj => mac::cdgj_mac_hex(&self.key, data),
            MacScheme::Iso9797M2 => mac::iso9797_m2_mac_hex(&self.key, data),
        }
    }

    fn verify_mac(&self, data: &[u8], mac_field: &[u8]) -> bool {
        match self.profile.mac.scheme {
            MacScheme::Cdgj => mac::verify_cdgj_mac(&self.key, data, mac_field),
            MacScheme::Iso9797M2 => mac::verify_iso9797_m2_mac(&self.key, data, mac_field),
        }
    }

    /// The whole request frame, length header and MAC included. Nothing that fails here has
    /// left the hub.
    pub fn encode_request(
        &self,
        ctx: &RequestContext,
        trade: &Trade,
        body: &Record,
    ) -> Result<Vec<u8>, AdapterError> {
        let charset = self.profile.charset;
        let header = self.request_header(ctx, trade);
        if self.profile.require_filled_fields {
            self.check_filled(&header, &self.profile.header.layout)?;
            self.check_filled(body, &trade.request)?;
        }
        let invalid = |e: LayoutError| AdapterError::InvalidInput {
            field: "request",
            reason: e.redacted().to_string(),
        };
        let mut payload = self
            .profile
            .header_layout()?
            .encode(&header, charset)
            .map_err(invalid)?;
        let body_bytes = self
            .profile
            .layout(&trade.request)?
            .encode(body, charset)
            .map_err(invalid)?;
        payload.extend_from_slice(&body_bytes);
        let framing = &self.profile.framing;
        let mac_len = self.profile.mac_len();
        let length = if framing.length_covers_mac {
            payload.len() + mac_len
        } else {
            payload.len()
        };
        if length > framing.max_length {
            return Err(AdapterError::Encode(format!(
                "报文长度{length}超过上限{}",
                framing.max_length
            )));
        }
        let mut frame = format!("{length:0width$}", width = framing.length_digits).into_bytes();
        frame.extend_from_slice(&payload);
        let mac = match self.profile.mac.covers {
            MacCoverage::Frame => self.mac_hex(&frame),
            MacCoverage::Body => self.mac_hex(&payload),
        };
        frame.extend_from_slice(mac.as_bytes());
        Ok(frame)
    }

    /// Refuses a blank AN or C field of a request, naming it (never its value).
    fn check_filled(&self, record: &Record, layout: &str) -> Result<(), AdapterError> {
        let h = &self.profile.header;
        for item in &self.profile.layout(layout)?.items {
            let Item::Field(field) = item else {
                continue;
            };
            if !matches!(field.kind, FieldKind::AN | FieldKind::C)
                || field.name == h.rsp_code
                || field.name == h.rsp_msg
            {
                continue;
            }
            if record
                .get(&field.name)
                .is_none_or(|value| value.trim().is_empty())
            {
                return Err(AdapterError::InvalidInput {
                    field: "request",
                    reason: format!("{}不能为空", field.name),
                });
            }
        }
        Ok(())
    }

    /// Checks and decodes an answer frame (length header included) to a request sent with `ctx`
    /// and `trade`.
    pub fn decode_response(
        &self,
        ctx: &RequestContext,
        trade: &Trade,
        frame: &[u8],
    ) -> Result<Response, ResponseError> {
        let profile = &self.profile;
        let charset = profile.charset;
        let digits = profile.framing.length_digits;
        let mac_len = profile.mac_len();
        let (length_text, rest) = frame
            .split_at_checked(digits)
            .ok_or_else(|| ResponseError::Length(format!("仅{}字节", frame.len())))?;
        if !length_text.iter().all(u8::is_ascii_digit) {
            return Err(ResponseError::Length("长度头不是数字".into()));
        }
        let stated: usize = std::str::from_utf8(length_text)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| ResponseError::Length("长度头不是数字".into()))?;
        let expected = if profile.framing.length_covers_mac {
            rest.len()
        } else {
            rest.len().saturating_sub(mac_len)
        };
        if stated != expected {
            return Err(ResponseError::Length(format!(
                "长度头{stated}与实际{expected}不符"
            )));
        }
        let payload_len = rest
            .len()
            .checked_sub(mac_len)
            .ok_or_else(|| ResponseError::Length(format!("{}字节容不下MAC", rest.len())))?;
        let (payload, mac_field) = rest
            .split_at_checked(payload_len)
            .ok_or_else(|| ResponseError::Length("容不下MAC".into()))?;
        let header_layout = profile
            .header_layout()
            .map_err(|e| ResponseError::Length(e.to_string()))?;
        let (header, used) = header_layout.decode_prefix(payload, charset)?;
        let h = &profile.header;
        let rsp_code = header.get(&h.rsp_code).unwrap_or_default().to_string();
        let rsp_msg = header.get(&h.rsp_msg).unwrap_or_default().to_string();
        let body_bytes = payload.get(used..).unwrap_or(&[]);
        let sent = self.request_header(ctx, trade);

        if Codes::is(&profile.mac.unverified_codes, &rsp_code) {
            // Answered without a MAC and "nothing was done": the partner may not have read our
            // header, so it may echo fields blank; any serial it did echo must still be ours.
            let echoed = header.get(&h.bank_serial).unwrap_or_default();
            if !echoed.is_empty() && echoed != ctx.bank_serial {
                return Err(ResponseError::Echo {
                    field: h.bank_serial.clone(),
                });
            }
            if !body_bytes.is_empty() {
                return Err(ResponseError::UnexpectedBody {
                    rsp_code,
                    extra_bytes: body_bytes.len(),
                });
            }
            return Ok(Response {
                header,
                rsp_code,
                rsp_msg,
                body: None,
            });
        }

        let mac_input = match profile.mac.covers {
            MacCoverage::Frame => frame.get(..digits + payload_len),
            MacCoverage::Body => Some(payload),
        }
        .unwrap_or(&[]);
        if !self.verify_mac(mac_input, mac_field) {
            return Err(ResponseError::BadMac);
        }
        // Compare on the canonical form: what our own header decodes to.
        let sent_bytes = header_layout
            .encode(&sent, charset)
            .map_err(ResponseError::from)?;
        let sent = header_layout.decode(&sent_bytes, charset)?;
        for field in &h.echo {
            if header.get(field) != sent.get(field) {
                return Err(ResponseError::Echo {
                    field: field.clone(),
                });
            }
        }
        let body = match (
            &trade.response,
            Codes::is(&profile.codes.success, &rsp_code),
        ) {
            (Some(layout), true) => {
                let layout = profile
                    .layout(layout)
                    .map_err(|e| ResponseError::Length(e.to_string()))?;
                Some(layout.decode(body_bytes, charset)?)
            }
            _ if body_bytes.is_empty() => None,
            _ => {
                return Err(ResponseError::UnexpectedBody {
                    rsp_code,
                    extra_bytes: body_bytes.len(),
                })
            }
        };
        Ok(Response {
            header,
            rsp_code,
            rsp_msg,
            body,
        })
    }
}
