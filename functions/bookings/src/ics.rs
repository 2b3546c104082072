//! A minimal iCalendar (RFC 5545) writer: content lines with TEXT escaping, 75-octet folding and
//! CRLF, and UTC date-times. Only what one booking's VEVENT needs; no parsing. Hand-written
//! because these four rules are the whole of it (a crate would bring a data model and a
//! dependency for them); each rule below cites its section and has a test.

use shared::time::Timestamp;

/// §3.1: "Lines of text SHOULD NOT be longer than 75 octets, excluding the line break."
const MAX_LINE_OCTETS: usize = 75;

/// Content lines in order, written as they come.
#[derive(Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Writer {
        Writer { out: String::with_capacity(512) }
    }

    /// `NAME:value` with `value` written as given: for values whose type admits no character that
    /// needs escaping (§3.3.5 DATE-TIME, §3.3.8 INTEGER, enumerated values such as STATUS and
    /// METHOD, VERSION) and for `BEGIN`/`END`. Never for user text: that is [`Writer::text`].
    pub fn raw(&mut self, name: &str, value: &str) {
        self.line(&format!("{name}:{value}"));
    }

    /// `NAME:value` with a TEXT value (§3.3.11), escaped.
    pub fn text(&mut self, name: &str, value: &str) {
        self.line(&format!("{name}:{}", escape_text(value)));
    }

    /// `NAME:value` with a DATE-TIME value in UTC (§3.3.5, form #2).
    pub fn utc(&mut self, name: &str, at: &Timestamp) {
        self.raw(name, &utc(at));
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn line(&mut self, line: &str) {
        fold_into(&mut self.out, line);
    }
}

/// §3.3.11 TEXT: a backslash, semicolon and comma are escaped with a backslash, and a line break
/// is written `\n` ("An intentional formatted text line break MUST only be included in a TEXT
/// property value by representing the line break with the character sequence of BACKSLASH
/// followed by a LATIN SMALL LETTER N"). CRLF, a lone CR and a lone LF are each one line break.
/// Other control characters (`CONTROL` in §3.1's grammar: every one but HTAB) may not appear in
/// a value at all and are dropped: a raw CR or LF would otherwise end the content line and let a
/// title inject properties of its own.
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() && (c as u32) < 0x80 => {}
            c => out.push(c),
        }
    }
    out
}

/// §3.1 folding: a content line longer than 75 octets is split by inserting CRLF followed by one
/// space, and the space counts toward the next line's 75 octets. "Care should be taken to not
/// split a multi-octet UTF-8 character": splits fall on character boundaries only, so a line may
/// be shorter than 75 octets. Every line ends with CRLF (§3.1 `contentline`).
pub fn fold_into(out: &mut String, line: &str) {
    let mut rest = line;
    let mut limit = MAX_LINE_OCTETS;
    loop {
        if rest.len() <= limit {
            out.push_str(rest);
            out.push_str("\r\n");
            return;
        }
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        limit = MAX_LINE_OCTETS - 1;
    }
}

/// §3.3.5 DATE-TIME form #2, "date with UTC time": `YYYYMMDDTHHMMSSZ`.
/// Written from the API's own `YYYY-MM-DDTHH:MM:SSZ` (whole seconds, four-digit years).
pub fn utc(at: &Timestamp) -> String {
    shared::time::format(at).replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(line: &str) -> String {
        let mut out = String::new();
        fold_into(&mut out, line);
        out
    }

    /// Reverses §3.1 folding: "unfolding is accomplished by removing the CRLF and the linear
    /// white-space character that immediately follows".
    fn unfold(text: &str) -> String {
        text.replace("\r\n ", "")
    }

    #[test]
    fn every_line_ends_with_crlf_and_no_bare_lf_or_cr_remains() {
        // §3.1: "a content line is delimited by a line break, which is a CRLF sequence".
        let mut w = Writer::new();
        w.raw("BEGIN", "VCALENDAR");
        w.text("SUMMARY", "two\nlines\rand\r\nmore");
        w.raw("END", "VCALENDAR");
        let text = w.finish();
        assert_eq!(text, "BEGIN:VCALENDAR\r\nSUMMARY:two\\nlines\\nand\\nmore\r\nEND:VCALENDAR\r\n");
        assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
        assert_eq!(text.matches('\r').count(), text.matches("\r\n").count());
    }

    #[test]
    fn text_escapes_backslash_semicolon_comma_and_line_breaks() {
        // §3.3.11: ESCAPED-CHAR = ("\\" / "\;" / "\," / "\N" / "\n"); ":" and DQUOTE stay as is.
        assert_eq!(escape_text(r"a\b;c,d"), r"a\\b\;c\,d");
        assert_eq!(escape_text("x\r\ny\nz\r"), r"x\ny\nz\n");
        assert_eq!(escape_text("Yoga: \"flow\"\tà l'aube"), "Yoga: \"flow\"\tà l'aube");
        // A backslash already followed by `n` is text, not a line break: it is escaped too.
        assert_eq!(escape_text(r"C:\new"), r"C:\\new");
    }

    #[test]
    fn control_characters_are_dropped_so_no_property_can_be_injected() {
        // §3.1: TSAFE-CHAR and QSAFE-CHAR exclude CONTROL (%x00-08 / %x0A-1F / %x7F).
        assert_eq!(escape_text("a\u{0}b\u{7}c\u{1b}d\u{7f}e"), "abcde");
        let mut w = Writer::new();
        w.text("SUMMARY", "Yoga\r\nATTENDEE:mailto:x@example.com");
        let text = w.finish();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert_eq!(text, "SUMMARY:Yoga\\nATTENDEE:mailto:x@example.com\r\n");
    }

    #[test]
    fn long_lines_fold_at_75_octets_with_one_leading_space() {
        // §3.1: a line is split by inserting CRLF and one white-space character; the space is
        // part of the continuation line's octets.
        let line = format!("SUMMARY:{}", "a".repeat(200));
        let text = folded(&line);
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines[0].len(), 75);
        assert!(lines[1..].iter().all(|l| l.starts_with(' ') && !l.starts_with("  ")), "{lines:?}");
        assert!(lines.iter().all(|l| l.len() <= 75), "{lines:?}");
        assert_eq!(lines[1].len(), 75);
        assert_eq!(lines.len(), 3, "8 + 200 octets: 75 + 74 + 59");
        assert_eq!(unfold(&text), format!("{line}\r\n"));
        // Exactly 75 octets: not folded; 76: folded once.
        assert_eq!(folded(&"x".repeat(75)), format!("{}\r\n", "x".repeat(75)));
        assert_eq!(folded(&"x".repeat(76)), format!("{}\r\n x\r\n", "x".repeat(75)));
    }

    #[test]
    fn folding_never_splits_a_utf8_character() {
        // §3.1: "care should be taken to not split a multi-octet UTF-8 character". "é" is 2
        // octets, "€" 3, "🧘" 4: each offset makes some split land inside a character.
        for prefix in ["", "a", "ab", "abc"] {
            let line = format!("DESCRIPTION:{prefix}{}", "é€🧘".repeat(40));
            let text = folded(&line);
            let lines: Vec<&str> = text.split_terminator("\r\n").collect();
            assert!(lines.len() > 1);
            for l in &lines {
                assert!(l.len() <= 75, "{} octets: {l:?}", l.len());
            }
            for l in &lines[..lines.len() - 1] {
                assert!(l.len() >= 72, "folded earlier than needed: {} octets", l.len());
            }
            // `text` is a String, so each piece is valid UTF-8 by construction; unfolding must give
            // back exactly the line.
            assert_eq!(unfold(&text), format!("{line}\r\n"), "{prefix:?}");
        }
    }

    #[test]
    fn utc_times_are_basic_format_with_z() {
        // §3.3.5 form #2: "20250801T100000Z"; no separators, no fractional seconds.
        let t = shared::time::parse("2025-08-01T12:30:05+02:00").unwrap();
        assert_eq!(utc(&t), "20250801T103005Z");
        let mut w = Writer::new();
        w.utc("DTSTART", &t);
        assert_eq!(w.finish(), "DTSTART:20250801T103005Z\r\n");
    }
}
