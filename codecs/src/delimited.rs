//! `|`-separated daily-file lines (partner and core T+1 files).
//!
//! The whole file is decoded strictly FIRST and split afterwards: in GBK a trail byte can be 0x7C
//! (`|`), e.g. 珅 is AB 7C, so splitting the bytes would cut a name in two. Decoding is exact: bytes
//! that are not the charset's own form are an error (with their offset and line), never U+FFFD.
//!
//! Line rules, from the specs ("GBK, CRLF after every line, the last too"):
//! - a UTF-8 BOM at the start is stripped (spreadsheets add one);
//! - lines end with CRLF; a bare LF is accepted by [`lines`] and reported by [`parse_file`], and
//!   refused by [`lines_strict_crlf`], as is a last line without any line end;
//! - a bare CR (not followed by LF) is always an error: it is a line end of another system;
//! - trailing blank lines (empty or spaces/tabs only) are dropped; a blank line in the middle is
//!   kept as a line of one empty field, so that its number shows up in the caller's error;
//! - fields are not trimmed; a line ending in `|` (the core's month-end extract) has a last empty
//!   field.
//!
//! Line numbers are 1-based physical lines of the file.

use crate::layout::{decode_exact, hex_excerpt};
use crate::text::{Charset, TextError};

const UTF8_BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the file.
    pub number: usize,
    pub fields: Vec<String>,
}

impl Line {
    /// The field at `index` (0-based), if the line has that many.
    pub fn field(&self, index: usize) -> Option<&str> {
        self.fields.get(index).map(String::as_str)
    }
}

/// A decoded file with what was seen about its line ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelimitedFile {
    pub lines: Vec<Line>,
    /// A UTF-8 BOM was stripped from the start.
    pub had_bom: bool,
    /// The last kept line ended with CRLF (false when it ended with a bare LF or nothing).
    pub last_line_crlf: bool,
    /// Numbers of the kept lines that did not end with CRLF.
    pub lines_without_crlf: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelimitedError {
    #[error("line {line}: bytes {bytes} at file offset {offset} are not valid {charset:?}")]
    Malformed {
        line: usize,
        offset: usize,
        bytes: String,
        charset: Charset,
    },
    #[error("line {line}: a bare carriage return (CR without LF)")]
    BareCr { line: usize },
    #[error("line {line} does not end with CRLF")]
    MissingCrlf { line: usize },
}

impl DelimitedError {
    pub fn code(&self) -> &'static str {
        match self {
            DelimitedError::Malformed { .. } => "FILE_MALFORMED_TEXT",
            DelimitedError::BareCr { .. } => "FILE_BARE_CR",
            DelimitedError::MissingCrlf { .. } => "FILE_MISSING_CRLF",
        }
    }

    /// The operator's text for this kind of error.
    pub fn message_zh(&self) -> &'static str {
        match self {
            DelimitedError::Malformed { .. } => "文件编码错误",
            DelimitedError::BareCr { .. } => "文件含单独的回车符",
            DelimitedError::MissingCrlf { .. } => "文件行未以回车换行结束",
        }
    }
}

/// The `|`-separated lines of a file; bare LF line ends are tolerated.
pub fn lines(bytes: &[u8], charset: Charset) -> Result<Vec<Line>, DelimitedError> {
    parse_file(bytes, charset, '|').map(|file| file.lines)
}

/// The `|`-separated lines of a file that must end every line, the last too, with CRLF.
pub fn lines_strict_crlf(bytes: &[u8], charset: Charset) -> Result<Vec<Line>, DelimitedError> {
    let file = parse_file(bytes, charset, '|')?;
    match file.lines_without_crlf.first() {
        Some(&line) => Err(DelimitedError::MissingCrlf { line }),
        None => Ok(file.lines),
    }
}

/// Decodes `bytes` whole, then splits it into lines and the lines into `separator`-separated fields.
pub fn parse_file(
    bytes: &[u8],
    charset: Charset,
    separator: char,
) -> Result<DelimitedFile, DelimitedError> {
    let (had_bom, body, body_offset) = match bytes.strip_prefix(UTF8_BOM) {
        Some(rest) => (true, rest, UTF8_BOM.len()),
        None => (false, bytes, 0),
    };
    let text = decode_exact(body, charset).map_err(|e| match e {
        TextError::Malformed {
            offset,
            bytes: found,
            charset,
        } => DelimitedError::Malformed {
            // 0x0A is never part of a GBK or GB18030 multi-byte character, so counting LF bytes
            // before the offset gives the line.
            line: 1 + body
                .get(..offset)
                .map_or(0, |head| head.iter().filter(|&&b| b == b'\n').count()),
            offset: offset + body_offset,
            bytes: found,
            charset,
        },
        // Decoding cannot meet an unmappable character; report it as malformed all the same.
        TextError::Unmappable { charset, .. } => DelimitedError::Malformed {
            line: 0,
            offset: body_offset,
            bytes: hex_excerpt(body),
            charset,
        },
    })?;

    struct Raw<'a> {
        content: &'a str,
        crlf: bool,
    }
    let mut raw_lines: Vec<Raw<'_>> = Vec::new();
    let mut segments = text.split('\n').peekable();
    while let Some(segment) = segments.next() {
        let terminated = segments.peek().is_some();
        if !terminated && segment.is_empty() {
            break;
        }
        let (content, crlf) = match segment.strip_suffix('\r') {
            Some(content) if terminated => (content, true),
            _ => (segment, false),
        };
        if content.contains('\r') {
            return Err(DelimitedError::BareCr {
                line: raw_lines.len() + 1,
            });
        }
        raw_lines.push(Raw { content, crlf });
    }
    while raw_lines
        .last()
        .is_some_and(|line| line.content.chars().all(|c| c == ' ' || c == '\t'))
    {
        raw_lines.pop();
    }

    let last_line_crlf = raw_lines.last().is_some_and(|line| line.crlf);
    let lines_without_crlf = raw_lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.crlf)
        .map(|(index, _)| index + 1)
        .collect();
    let lines = raw_lines
        .iter()
        .enumerate()
        .map(|(index, line)| Line {
            number: index + 1,
            fields: line.content.split(separator).map(str::to_string).collect(),
        })
        .collect();
    Ok(DelimitedFile {
        lines,
        had_bom,
        last_line_crlf,
        lines_without_crlf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &Line) -> Vec<&str> {
        line.fields.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_gbk_trail_byte_0x7c_does_not_split_a_field() {
        // 和珅 is BA CD AB 7C in GBK: the second character's trail byte is '|'.
        let mut bytes = b"20261203|1|35.20\r\nB001|".to_vec();
        bytes.extend_from_slice(&[0xBA, 0xCD, 0xAB, 0x7C]);
        bytes.extend_from_slice(b"|35.20\r\n");
        let lines = lines_strict_crlf(&bytes, Charset::Gbk);
        let lines = match lines {
            Ok(lines) => lines,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines.first().map(fields),
            Some(vec!["20261203", "1", "35.20"])
        );
        assert_eq!(
            lines.get(1).map(fields),
            Some(vec!["B001", "和珅", "35.20"])
        );
        assert_eq!(lines.get(1).map(|l| l.number), Some(2));
        assert_eq!(lines.get(1).and_then(|l| l.field(1)), Some("和珅"));
    }

    #[test]
    fn bom_crlf_and_trailing_blank_lines() {
        let bytes = b"\xEF\xBB\xBFa|b\r\nc|\r\n\r\n  \r\n";
        let file = parse_file(bytes, Charset::Gbk, '|');
        let file = match file {
            Ok(file) => file,
            Err(e) => panic!("{e}"),
        };
        assert!(file.had_bom);
        assert!(file.last_line_crlf);
        assert!(file.lines_without_crlf.is_empty());
        assert_eq!(
            file.lines,
            vec![
                Line {
                    number: 1,
                    fields: vec!["a".into(), "b".into()]
                },
                Line {
                    number: 2,
                    fields: vec!["c".into(), String::new()]
                },
            ]
        );
    }

    #[test]
    fn missing_crlf_is_reported_and_refused_in_strict_mode() {
        let no_final = b"a|b\r\nc|d";
        assert_eq!(lines(no_final, Charset::Gbk).map(|l| l.len()), Ok(2));
        assert_eq!(
            lines_strict_crlf(no_final, Charset::Gbk),
            Err(DelimitedError::MissingCrlf { line: 2 })
        );
        let bare_lf = b"a|b\nc|d\r\n";
        let file = parse_file(bare_lf, Charset::Gbk, '|');
        assert_eq!(
            file.as_ref().map(|f| f.lines_without_crlf.clone()),
            Ok(vec![1])
        );
        assert_eq!(file.as_ref().map(|f| f.last_line_crlf), Ok(true));
        assert_eq!(
            lines_strict_crlf(bare_lf, Charset::Gbk),
            Err(DelimitedError::MissingCrlf { line: 1 })
        );
    }

    #[test]
    fn a_bare_cr_is_an_error() {
        assert_eq!(
            lines(b"a|b\rc|d\r\n", Charset::Gbk),
            Err(DelimitedError::BareCr { line: 1 })
        );
        assert_eq!(
            lines(b"a|b\r\nc|d\r", Charset::Gbk),
            Err(DelimitedError::BareCr { line: 2 })
        );
    }

    #[test]
    fn malformed_text_names_line_and_file_offset() {
        // Line 2 ends with a lone lead byte D5 before CRLF; offset counts the BOM.
        let bytes = b"\xEF\xBB\xBFa|b\r\nc|\xD5\r\n";
        assert_eq!(
            lines(bytes, Charset::Gbk),
            Err(DelimitedError::Malformed {
                line: 2,
                offset: 10,
                bytes: "D5".into(),
                charset: Charset::Gbk
            })
        );
    }

    #[test]
    fn blank_middle_line_is_kept_and_empty_file_has_no_lines() {
        let bytes = b"a\r\n\r\nb\r\n";
        let got = lines(bytes, Charset::Gbk);
        assert_eq!(got.as_ref().map(|l| l.len()), Ok(3));
        assert_eq!(
            got.as_ref().ok().and_then(|l| l.get(1)).map(fields),
            Some(vec![""])
        );
        assert_eq!(lines(b"", Charset::Gbk), Ok(vec![]));
        assert_eq!(lines(b"\r\n\r\n", Charset::Gbk), Ok(vec![]));
    }

    #[test]
    fn other_separators() {
        let file = parse_file(b"a@b@c\r\n", Charset::Gbk, '@');
        assert_eq!(
            file.map(|f| f.lines.first().map(fields).unwrap_or_default().join(",")),
            Ok("a,b,c".to_string())
        );
    }
}
