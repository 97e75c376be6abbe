//! GBK XML documents, as the core banking gateway speaks them (`<Service><Head>..</Head><Body>..`).
//!
//! quick-xml parses UTF-8 only, so a document is decoded WHOLE and strictly first (never per
//! chunk: a GBK trail byte can be `<`-free but still split by a chunk boundary), then parsed.
//! Writing builds UTF-8 text with the charset's declaration and encodes it strictly: a character
//! the charset lacks is an error, never `&#NNNN;`.
//!
//! The tree is deliberately small: elements, their text and children. Attributes are checked for
//! well-formedness and otherwise ignored (no spec here uses them). A `DOCTYPE` is refused outright
//! (no external entities, no entity expansion), as is any entity reference other than the five
//! predefined ones and numeric character references. The text of an element is the
//! concatenation of its text and CDATA pieces with XML whitespace trimmed at both ends (mixed
//! content keeps the pieces, in order, without the child elements). Depth and element count are
//! limited, so a hostile document fails with an error rather than a stack overflow or a memory
//! blow-up.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::layout::decode_exact;
use crate::text::{self, Charset, TextError};

/// Deepest nesting accepted by [`parse`]; the core's deepest document has 4 levels.
pub const MAX_DEPTH: usize = 32;
/// Most elements accepted by [`parse`]: an 8006 page of 100 items has about 1 600.
pub const MAX_ELEMENTS: usize = 50_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn new(name: &str) -> Self {
        Element {
            name: name.to_string(),
            ..Element::default()
        }
    }

    /// `<name>text</name>`
    pub fn text_node(name: &str, text: impl Into<String>) -> Self {
        Element {
            name: name.to_string(),
            text: text.into(),
            children: Vec::new(),
        }
    }

    pub fn push(&mut self, child: Element) -> &mut Self {
        self.children.push(child);
        self
    }

    pub fn with(mut self, child: Element) -> Self {
        self.children.push(child);
        self
    }

    /// The first child of that name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// The text of the first child of that name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|child| child.text.as_str())
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }
}

/// Why a document could not be read or written. Offsets are byte offsets in the encoded document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("document bytes {bytes} at offset {offset} are not valid {charset:?}")]
    Malformed {
        offset: usize,
        bytes: String,
        charset: Charset,
    },
    #[error("character {ch:?} (char {index} of the document) has no {charset:?} form")]
    Unmappable {
        ch: char,
        index: usize,
        charset: Charset,
    },
    #[error("DOCTYPE at offset {offset} refused (no DTDs, no external entities)")]
    DocType { offset: usize },
    #[error("entity reference refused at offset {offset}: {detail}")]
    Entity { offset: usize, detail: String },
    #[error("malformed XML at offset {offset}: {detail}")]
    Syntax { offset: usize, detail: String },
    #[error("nesting deeper than {max_depth} at offset {offset}")]
    TooDeep { offset: usize, max_depth: usize },
    #[error("more than {max_elements} elements (at offset {offset})")]
    TooManyElements { offset: usize, max_elements: usize },
    #[error("content after the root element at offset {offset}")]
    Trailing { offset: usize },
    #[error("the document has no root element")]
    NoRoot,
    #[error("XML declaration refused: {detail}")]
    Declaration { detail: String },
    #[error("{name:?} is not a valid element name")]
    BadName { name: String },
    #[error("element {element} holds {ch:?}, which XML 1.0 cannot carry")]
    BadChar { element: String, ch: char },
}

impl XmlError {
    pub fn code(&self) -> &'static str {
        match self {
            XmlError::Malformed { .. } => "XML_MALFORMED_TEXT",
            XmlError::Unmappable { .. } => "XML_UNMAPPABLE",
            XmlError::DocType { .. } => "XML_DOCTYPE",
            XmlError::Entity { .. } => "XML_ENTITY",
            XmlError::Syntax { .. } => "XML_SYNTAX",
            XmlError::TooDeep { .. } => "XML_TOO_DEEP",
            XmlError::TooManyElements { .. } => "XML_TOO_MANY_ELEMENTS",
            XmlError::Trailing { .. } => "XML_TRAILING",
            XmlError::NoRoot => "XML_NO_ROOT",
            XmlError::Declaration { .. } => "XML_DECLARATION",
            XmlError::BadName { .. } => "XML_BAD_NAME",
            XmlError::BadChar { .. } => "XML_BAD_CHAR",
        }
    }

    /// The operator's text for this kind of error.
    pub fn message_zh(&self) -> &'static str {
        match self {
            XmlError::Malformed { .. } => "XML报文编码错误",
            XmlError::Unmappable { .. } => "含有GBK字符集之外的字符",
            XmlError::DocType { .. } => "XML报文含DOCTYPE，拒绝处理",
            XmlError::Entity { .. } => "XML报文含未定义实体引用",
            XmlError::Syntax { .. } => "XML报文格式错误",
            XmlError::TooDeep { .. } => "XML报文嵌套层次过深",
            XmlError::TooManyElements { .. } => "XML报文元素过多",
            XmlError::Trailing { .. } => "XML根元素之后有多余内容",
            XmlError::NoRoot => "XML报文无根元素",
            XmlError::Declaration { .. } => "XML声明错误",
            XmlError::BadName { .. } => "XML元素名非法",
            XmlError::BadChar { .. } => "XML内容含非法字符",
        }
    }
}

impl XmlError {
    /// The same error with its offset (if it has one) mapped through `map`.
    fn map_offset(self, map: impl Fn(usize) -> usize) -> XmlError {
        match self {
            XmlError::DocType { offset } => XmlError::DocType {
                offset: map(offset),
            },
            XmlError::Entity { offset, detail } => XmlError::Entity {
                offset: map(offset),
                detail,
            },
            XmlError::Syntax { offset, detail } => XmlError::Syntax {
                offset: map(offset),
                detail,
            },
            XmlError::TooDeep { offset, max_depth } => XmlError::TooDeep {
                offset: map(offset),
                max_depth,
            },
            XmlError::TooManyElements {
                offset,
                max_elements,
            } => XmlError::TooManyElements {
                offset: map(offset),
                max_elements,
            },
            XmlError::Trailing { offset } => XmlError::Trailing {
                offset: map(offset),
            },
            other => other,
        }
    }
}

fn from_text_error(error: TextError) -> XmlError {
    match error {
        TextError::Malformed {
            offset,
            bytes,
            charset,
        } => XmlError::Malformed {
            offset,
            bytes,
            charset,
        },
        TextError::Unmappable { ch, index, charset } => XmlError::Unmappable { ch, index, charset },
    }
}

/// Parses a document and returns its root element, with the default limits.
pub fn parse(bytes: &[u8], charset: Charset) -> Result<Element, XmlError> {
    parse_with_limits(bytes, charset, MAX_DEPTH, MAX_ELEMENTS)
}

/// [`parse`] with explicit limits on nesting depth and element count.
pub fn parse_with_limits(
    bytes: &[u8],
    charset: Charset,
    max_depth: usize,
    max_elements: usize,
) -> Result<Element, XmlError> {
    let document = decode_exact(bytes, charset).map_err(from_text_error)?;
    // quick-xml reports offsets in the UTF-8 text; errors carry offsets in the wire bytes. The
    // conversion re-encodes the prefix, so it runs once, for the error, not per event.
    build_tree(&document, charset, max_depth, max_elements).map_err(|error| {
        error.map_offset(|position| {
            document
                .get(..position)
                .and_then(|prefix| text::byte_len(prefix, charset).ok())
                .unwrap_or(position)
        })
    })
}

/// Builds the tree from decoded text; error offsets are byte offsets in `document` (UTF-8).
fn build_tree(
    document: &str,
    charset: Charset,
    max_depth: usize,
    max_elements: usize,
) -> Result<Element, XmlError> {
    let utf8_offset = |position: u64| usize::try_from(position).unwrap_or(usize::MAX);
    let mut reader = Reader::from_str(document);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let mut first_event = true;
    loop {
        // Where this event starts: errors point at the start of the offending markup.
        let offset = utf8_offset(reader.buffer_position());
        let event = reader.read_event().map_err(|e| {
            let offset = utf8_offset(reader.error_position());
            match e {
                quick_xml::Error::Escape(escape) => XmlError::Entity {
                    offset,
                    detail: escape.to_string(),
                },
                other => XmlError::Syntax {
                    offset,
                    detail: other.to_string(),
                },
            }
        })?;
        let was_first = std::mem::replace(&mut first_event, false);
        match event {
            Event::Decl(decl) => {
                if !was_first {
                    return Err(XmlError::Syntax {
                        offset,
                        detail: "XML declaration not at the start".into(),
                    });
                }
                check_declaration(decl.encoding(), charset)?;
            }
            Event::DocType(_) => return Err(XmlError::DocType { offset }),
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(XmlError::Trailing { offset })
            }
            Event::Start(start) => {
                let element = open_element(
                    &start,
                    offset,
                    stack.len(),
                    &mut elements,
                    max_depth,
                    max_elements,
                )?;
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = open_element(
                    &start,
                    offset,
                    stack.len(),
                    &mut elements,
                    max_depth,
                    max_elements,
                )?;
                close_element(element, &mut stack, &mut root);
            }
            Event::End(_) => {
                // check_end_names guarantees the name matches the open element.
                let Some(element) = stack.pop() else {
                    return Err(XmlError::Syntax {
                        offset,
                        detail: "end tag without a start tag".into(),
                    });
                };
                close_element(element, &mut stack, &mut root);
            }
            Event::Text(text) => {
                let unescaped = text.unescape().map_err(|e| XmlError::Entity {
                    offset,
                    detail: e.to_string(),
                })?;
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&unescaped),
                    None if is_xml_whitespace(&unescaped) => {}
                    None if root.is_some() => return Err(XmlError::Trailing { offset }),
                    None => {
                        return Err(XmlError::Syntax {
                            offset,
                            detail: "text before the root element".into(),
                        })
                    }
                }
            }
            Event::CData(cdata) => {
                let raw = String::from_utf8_lossy(&cdata.into_inner()).into_owned();
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&raw),
                    None if root.is_some() => return Err(XmlError::Trailing { offset }),
                    None => {
                        return Err(XmlError::Syntax {
                            offset,
                            detail: "CDATA outside the root element".into(),
                        })
                    }
                }
            }
            // Comments and processing instructions carry nothing this tree keeps.
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return Err(XmlError::Syntax {
                        offset,
                        detail: format!("element {} is not closed", open.name),
                    });
                }
                return root.ok_or(XmlError::NoRoot);
            }
        }
    }
}

fn check_declaration(
    encoding: Option<Result<Cow<'_, [u8]>, quick_xml::events::attributes::AttrError>>,
    charset: Charset,
) -> Result<(), XmlError> {
    let Some(encoding) = encoding else {
        return Ok(());
    };
    let encoding = encoding.map_err(|e| XmlError::Declaration {
        detail: e.to_string(),
    })?;
    let name = String::from_utf8_lossy(&encoding).to_ascii_uppercase();
    // A GBK document may be labelled with GBK's older names; GB18030 is a superset of all of them.
    let accepted: &[&str] = match charset {
        Charset::Gbk => &["GBK", "GB2312", "CP936"],
        Charset::Gb18030 => &["GB18030", "GBK", "GB2312", "CP936"],
    };
    if accepted.contains(&name.as_str()) {
        Ok(())
    } else {
        Err(XmlError::Declaration {
            detail: format!("declared encoding {name} where {charset:?} is expected"),
        })
    }
}

fn open_element(
    start: &BytesStart<'_>,
    offset: usize,
    depth: usize,
    elements: &mut usize,
    max_depth: usize,
    max_elements: usize,
) -> Result<Element, XmlError> {
    if depth >= max_depth {
        return Err(XmlError::TooDeep { offset, max_depth });
    }
    *elements += 1;
    if *elements > max_elements {
        return Err(XmlError::TooManyElements {
            offset,
            max_elements,
        });
    }
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| XmlError::Syntax {
            offset,
            detail: e.to_string(),
        })?;
        attribute.unescape_value().map_err(|e| XmlError::Entity {
            offset,
            detail: e.to_string(),
        })?;
    }
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    Ok(Element::new(&name))
}

fn close_element(mut element: Element, stack: &mut [Element], root: &mut Option<Element>) {
    element.text = element
        .text
        .trim_matches(is_xml_whitespace_char)
        .to_string();
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn is_xml_whitespace_char(ch: char) -> bool {
    matches!(ch, ' ' | '\t' | '\n' | '\r')
}

fn is_xml_whitespace(text: &str) -> bool {
    text.chars().all(is_xml_whitespace_char)
}

/// Writes `root` as a document in `charset`: the declaration, then the tree without
/// pretty-printing, text escaped (`&`, `<`, `>`; a carriage return as `&#13;` so that it
/// survives end-of-line normalisation).
pub fn write(root: &Element, charset: Charset) -> Result<Vec<u8>, XmlError> {
    let label = match charset {
        Charset::Gbk => "GBK",
        Charset::Gb18030 => "GB18030",
    };
    let mut out = format!("<?xml version=\"1.0\" encoding=\"{label}\"?>");
    write_element(root, &mut out, 0)?;
    text::encode(&out, charset).map_err(from_text_error)
}

fn write_element(element: &Element, out: &mut String, depth: usize) -> Result<(), XmlError> {
    if depth >= MAX_DEPTH {
        return Err(XmlError::TooDeep {
            offset: out.len(),
            max_depth: MAX_DEPTH,
        });
    }
    if !is_valid_name(&element.name) {
        return Err(XmlError::BadName {
            name: element.name.clone(),
        });
    }
    out.push('<');
    out.push_str(&element.name);
    out.push('>');
    for ch in element.text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(ch),
            c if is_xml_char(c) => out.push(c),
            c => {
                return Err(XmlError::BadChar {
                    element: element.name.clone(),
                    ch: c,
                })
            }
        }
    }
    for child in &element.children {
        write_element(child, out, depth + 1)?;
    }
    out.push_str("</");
    out.push_str(&element.name);
    out.push('>');
    Ok(())
}

/// Characters XML 1.0 allows (tab, newline and carriage return are handled by the caller).
fn is_xml_char(ch: char) -> bool {
    matches!(ch, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// A conservative XML name: ASCII letters, digits, `_`, `-`, `.`, `:`; not starting with a digit,
/// `-` or `.`; not starting with `xml` in any case (reserved).
fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        && !name
            .get(..3)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("xml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Element {
        Element::new("Service")
            .with(
                Element::new("Head")
                    .with(Element::text_node("TranCode", "8002"))
                    .with(Element::text_node("ChannelId", "MBP"))
                    .with(Element::text_node("SeqNo", "H2026120300000001"))
                    .with(Element::text_node("TranDate", "20261203"))
                    .with(Element::text_node("TranTime", "101010"))
                    .with(Element::text_node("BranchId", "000101"))
                    .with(Element::text_node("TellerId", "MB0001")),
            )
            .with(
                Element::new("Body")
                    .with(Element::text_node("DebitAcct", "6230901000000000011"))
                    .with(Element::text_node("CreditAcct", "9003100000000001"))
                    .with(Element::text_node("Amount", "300.00"))
                    .with(Element::text_node("Summary", "电费4310020000000001"))
                    .with(Element::text_node("Purpose", "CDGJ")),
            )
    }

    #[test]
    fn core_service_round_trips() {
        let tree = service();
        let bytes = match write(&tree, Charset::Gbk) {
            Ok(bytes) => bytes,
            Err(e) => panic!("{e}"),
        };
        assert!(bytes.starts_with(
            b"<?xml version=\"1.0\" encoding=\"GBK\"?><Service><Head><TranCode>8002</TranCode>"
        ));
        // 电费 in GBK is B5 E7 B7 D1.
        let summary: &[u8] = b"<Summary>\xB5\xE7\xB7\xD14310020000000001</Summary>";
        assert!(bytes.windows(summary.len()).any(|w| w == summary));
        assert_eq!(parse(&bytes, Charset::Gbk), Ok(tree));
    }

    #[test]
    fn hand_built_gbk_answer_parses() {
        // An 8002 answer with RetMsg 成功 (B3 C9 B9 A6), pretty-printed with CRLF, an empty
        // element and a comment.
        let mut bytes = b"<?xml version=\"1.0\" encoding=\"GBK\"?>\r\n<Service>\r\n  <Head>\r\n    <TranCode>8002</TranCode>\r\n    <RetCode>000000</RetCode>\r\n    <RetMsg>".to_vec();
        bytes.extend_from_slice(&[0xB3, 0xC9, 0xB9, 0xA6]);
        bytes.extend_from_slice(b"</RetMsg>\r\n    <ErrSide/>\r\n    <CoreDate> 20261203 </CoreDate>\r\n  </Head>\r\n  <!-- no body -->\r\n  <Body></Body>\r\n</Service>\r\n");
        let root = match parse(&bytes, Charset::Gbk) {
            Ok(root) => root,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(root.name, "Service");
        assert_eq!(root.text, "");
        let head = root.child("Head");
        assert_eq!(head.and_then(|h| h.child_text("RetMsg")), Some("成功"));
        assert_eq!(head.and_then(|h| h.child_text("ErrSide")), Some(""));
        assert_eq!(
            head.and_then(|h| h.child_text("CoreDate")),
            Some("20261203")
        );
        assert_eq!(root.child("Body").map(|b| b.children.len()), Some(0));
    }

    #[test]
    fn repeated_items_are_all_kept() {
        let bytes = b"<Service><Body><TotalCount>2</TotalCount><Item><Amount>1.00</Amount></Item><Item><Amount>2.00</Amount></Item></Body></Service>";
        let root = parse(bytes, Charset::Gbk);
        let amounts: Vec<String> = root
            .iter()
            .flat_map(|r| r.child("Body"))
            .flat_map(|b| b.children_named("Item"))
            .filter_map(|i| i.child_text("Amount").map(str::to_string))
            .collect();
        assert_eq!(amounts, vec!["1.00".to_string(), "2.00".to_string()]);
    }

    #[test]
    fn xxe_and_unknown_entities_are_refused() {
        let xxe = b"<?xml version=\"1.0\" encoding=\"GBK\"?><!DOCTYPE Service [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><Service><Head>&xxe;</Head></Service>";
        assert_eq!(
            parse(xxe, Charset::Gbk).err().map(|e| e.code()),
            Some("XML_DOCTYPE")
        );
        let unknown = b"<Service><Head>&xxe;</Head></Service>";
        assert_eq!(
            parse(unknown, Charset::Gbk).err().map(|e| e.code()),
            Some("XML_ENTITY")
        );
        let predefined = b"<a>&lt;&amp;&gt;&quot;&apos;&#20013;&#x6587;</a>";
        assert_eq!(
            parse(predefined, Charset::Gbk).map(|e| e.text),
            Ok("<&>\"'中文".to_string())
        );
    }

    #[test]
    fn escaping_of_markup_characters() {
        let tree = Element::text_node("Summary", "a<b & c>d");
        let bytes = write(&tree, Charset::Gbk);
        assert_eq!(
            bytes.as_deref().ok(),
            Some(
                &b"<?xml version=\"1.0\" encoding=\"GBK\"?><Summary>a&lt;b &amp; c&gt;d</Summary>"
                    [..]
            )
        );
        assert_eq!(bytes.and_then(|b| parse(&b, Charset::Gbk)), Ok(tree));
    }

    #[test]
    fn characters_gbk_lacks_are_refused_not_entities() {
        let tree = Element::text_node("AcctName", "王𠀀");
        assert_eq!(
            write(&tree, Charset::Gbk).err().map(|e| e.code()),
            Some("XML_UNMAPPABLE")
        );
        let bullet = Element::text_node("AcctName", "a•b");
        assert_eq!(
            write(&bullet, Charset::Gbk).err().map(|e| e.code()),
            Some("XML_UNMAPPABLE")
        );
        // GB18030 has them, and labels itself.
        let written = write(&tree, Charset::Gb18030);
        assert!(written
            .as_ref()
            .is_ok_and(|b| b.starts_with(b"<?xml version=\"1.0\" encoding=\"GB18030\"?>")));
        assert_eq!(written.and_then(|b| parse(&b, Charset::Gb18030)), Ok(tree));
    }

    #[test]
    fn malformed_gbk_is_refused_with_its_offset() {
        // <a> then a lone lead byte D5 followed by '<'.
        let bytes = b"<a>\xD5</a>";
        assert_eq!(
            parse(bytes, Charset::Gbk),
            Err(XmlError::Malformed {
                offset: 3,
                bytes: "D5".into(),
                charset: Charset::Gbk
            })
        );
        // A four-byte GB18030 sequence is not GBK.
        let four = b"<a>\x81\x30\x81\x30</a>";
        assert_eq!(
            parse(four, Charset::Gbk).err().map(|e| e.code()),
            Some("XML_MALFORMED_TEXT")
        );
    }

    #[test]
    fn structure_errors() {
        assert_eq!(
            parse(b"<a></a><b></b>", Charset::Gbk)
                .err()
                .map(|e| e.code()),
            Some("XML_TRAILING")
        );
        assert_eq!(
            parse(b"<a></a>junk", Charset::Gbk).err().map(|e| e.code()),
            Some("XML_TRAILING")
        );
        assert!(parse(b"<a></a>\r\n<!-- ok -->\r\n", Charset::Gbk).is_ok());
        assert_eq!(
            parse(b"<a><b></a>", Charset::Gbk).err().map(|e| e.code()),
            Some("XML_SYNTAX")
        );
        assert_eq!(
            parse(b"<a><b>", Charset::Gbk).err().map(|e| e.code()),
            Some("XML_SYNTAX")
        );
        assert_eq!(
            parse(b"", Charset::Gbk).err().map(|e| e.code()),
            Some("XML_NO_ROOT")
        );
        assert_eq!(
            parse(
                b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><a/>",
                Charset::Gbk
            )
            .err()
            .map(|e| e.code()),
            Some("XML_DECLARATION")
        );
        assert!(parse(
            b"<?xml version=\"1.0\" encoding=\"gbk\"?><a/>",
            Charset::Gbk
        )
        .is_ok());
    }

    #[test]
    fn depth_and_count_limits_are_errors() {
        let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
        assert_eq!(
            parse(deep.as_bytes(), Charset::Gbk).err().map(|e| e.code()),
            Some("XML_TOO_DEEP")
        );
        let exactly = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(exactly.as_bytes(), Charset::Gbk).is_ok());
        let wide = format!("<r>{}</r>", "<i/>".repeat(10));
        assert_eq!(
            parse_with_limits(wide.as_bytes(), Charset::Gbk, 4, 5).err(),
            Some(XmlError::TooManyElements {
                offset: 19,
                max_elements: 5
            })
        );
    }

    #[test]
    fn error_offsets_count_gbk_bytes() {
        // <a>张三</a> then a second root: 张三 is 4 GBK bytes (6 in UTF-8), so <b> starts at 11.
        let bytes = b"<a>\xD5\xC5\xC8\xFD</a><b/>";
        assert_eq!(
            parse(bytes, Charset::Gbk),
            Err(XmlError::Trailing { offset: 11 })
        );
    }

    #[test]
    fn mixed_content_and_cdata_text() {
        let bytes = b"<a>  one <b>x</b> two <![CDATA[<raw>]]>  </a>";
        let root = parse(bytes, Charset::Gbk);
        assert_eq!(root.as_ref().map(|r| r.text.as_str()), Ok("one  two <raw>"));
        assert_eq!(root.as_ref().map(|r| r.child_text("b")), Ok(Some("x")));
        // Full-width spaces are content, not XML whitespace.
        let ideographic = "<a>\u{3000}x\u{3000}</a>";
        let encoded = text::encode(ideographic, Charset::Gbk).unwrap_or_default();
        assert_eq!(
            parse(&encoded, Charset::Gbk).map(|r| r.text),
            Ok("\u{3000}x\u{3000}".to_string())
        );
    }

    #[test]
    fn bad_names_and_characters_are_refused_on_write() {
        assert_eq!(
            write(&Element::new("1a"), Charset::Gbk)
                .err()
                .map(|e| e.code()),
            Some("XML_BAD_NAME")
        );
        assert_eq!(
            write(&Element::new(""), Charset::Gbk)
                .err()
                .map(|e| e.code()),
            Some("XML_BAD_NAME")
        );
        let control = Element::text_node("a", "x\u{1}y");
        assert_eq!(
            write(&control, Charset::Gbk).err().map(|e| e.code()),
            Some("XML_BAD_CHAR")
        );
    }
}
