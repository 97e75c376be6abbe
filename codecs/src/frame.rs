//! Length-prefixed frames: N ASCII digits giving the byte length of the body that follows (header
//! not counted, as specs 01 and core-banking say), then the body. A tokio-util codec, so split and
//! coalesced TCP reads are handled by construction.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("length header {found:?} is not {digits} ASCII digits")]
    NonDigitLength { found: String, digits: usize },
    #[error("frame length {length} exceeds the maximum {max}")]
    TooLong { length: usize, max: usize },
    #[error("body of {length} bytes does not fit a {digits}-digit header")]
    BodyTooLong { length: usize, digits: usize },
    #[error("connection closed with {buffered} bytes of an unfinished frame")]
    Truncated { buffered: usize },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// `digits` ASCII digits of body length, then the body; frames over `max_body` are refused.
#[derive(Debug, Clone, Copy)]
pub struct LengthPrefixed {
    pub digits: usize,
    pub max_body: usize,
}

impl LengthPrefixed {
    pub const fn new(digits: usize, max_body: usize) -> Self {
        LengthPrefixed { digits, max_body }
    }

    /// Encodes one frame into a fresh buffer (for short-connection clients).
    pub fn frame(&self, body: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = BytesMut::with_capacity(self.digits + body.len());
        let mut me = *self;
        me.encode(Bytes::copy_from_slice(body), &mut out)?;
        Ok(out.to_vec())
    }
}

impl Decoder for LengthPrefixed {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if src.len() < self.digits {
            return Ok(None);
        }
        let header = &src[..self.digits];
        if !header.iter().all(|b| b.is_ascii_digit()) {
            return Err(FrameError::NonDigitLength {
                found: String::from_utf8_lossy(header).into_owned(),
                digits: self.digits,
            });
        }
        let length = header.iter().fold(0usize, |acc, b| {
            acc.saturating_mul(10).saturating_add((b - b'0') as usize)
        });
        if length > self.max_body {
            return Err(FrameError::TooLong {
                length,
                max: self.max_body,
            });
        }
        if src.len() < self.digits + length {
            src.reserve(self.digits + length - src.len());
            return Ok(None);
        }
        src.advance(self.digits);
        Ok(Some(src.split_to(length).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<Bytes> for LengthPrefixed {
    type Error = FrameError;

    fn encode(&mut self, body: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        if body.len() > self.max_body {
            return Err(FrameError::TooLong {
                length: body.len(),
                max: self.max_body,
            });
        }
        let header = format!("{:0width$}", body.len(), width = self.digits);
        if header.len() != self.digits {
            return Err(FrameError::BodyTooLong {
                length: body.len(),
                digits: self.digits,
            });
        }
        dst.reserve(self.digits + body.len());
        dst.put_slice(header.as_bytes());
        dst.put_slice(&body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_coalesced_reads() {
        let mut codec = LengthPrefixed::new(6, 1024);
        let mut buf = BytesMut::from(&b"0000"[..]);
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        buf.extend_from_slice(b"03ab");
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        buf.extend_from_slice(b"c000002xy");
        assert_eq!(
            codec.decode(&mut buf).ok().flatten().as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(
            codec.decode(&mut buf).ok().flatten().as_deref(),
            Some(&b"xy"[..])
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn bad_headers_are_errors() {
        let mut codec = LengthPrefixed::new(6, 1024);
        assert!(matches!(
            codec.decode(&mut BytesMut::from(&b"00a003abc"[..])),
            Err(FrameError::NonDigitLength { .. })
        ));
        assert!(matches!(
            codec.decode(&mut BytesMut::from(&b"001025"[..])),
            Err(FrameError::TooLong { length: 1025, .. })
        ));
        let mut lying = BytesMut::from(&b"000010abc"[..]);
        assert!(matches!(codec.decode(&mut lying), Ok(None)));
        assert!(matches!(
            codec.decode_eof(&mut lying),
            Err(FrameError::Truncated { buffered: 9 })
        ));
    }

    #[test]
    fn encode_writes_zero_padded_header() {
        let codec = LengthPrefixed::new(8, 1 << 20);
        assert_eq!(
            codec.frame(b"<x/>").ok().as_deref(),
            Some(&b"00000004<x/>"[..])
        );
        assert!(LengthPrefixed::new(2, 1000).frame(&[0u8; 100]).is_err());
    }
}
