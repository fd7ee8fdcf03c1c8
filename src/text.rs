//! Text from terminals and HTTP clients, made safe to store and to log.
//!
//! PostgreSQL refuses a NUL character in `text` (and in `jsonb`), and a raw
//! control character in a log line forges another line. Text is checked once
//! at the edge ([`first_control`], [`first_nul`]) and refused there with a
//! reason; what is kept of a refused message for inspection (dead letters,
//! log fields) goes through [`escaped`] or [`storable`] first.

use std::borrow::Cow;
use std::fmt::Write;

/// The first control character of `s` (C0, DEL, C1), with its char index.
pub fn first_control(s: &str) -> Option<(usize, char)> {
    s.chars().enumerate().find(|(_, c)| c.is_control())
}

/// The char index of the first NUL of `s`.
pub fn first_nul(s: &str) -> Option<usize> {
    s.chars().position(|c| c == '\0')
}

/// `s` with control characters written as escapes (`\n`, `\0`, `\u{1b}`) and cut to
/// `max_chars` (an ellipsis marks the cut): for log fields and the details
/// of refusals, so one terminal's bytes stay on one line.
pub fn escaped(s: &str, max_chars: usize) -> Cow<'_, str> {
    let clean = !s.chars().any(char::is_control);
    let short = s.chars().nth(max_chars).is_none();
    if clean && short {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(max_chars * 2));
    for (i, c) in s.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` with each NUL written as the six characters `\u0000`: the one
/// character a database refuses in text, in a payload kept for inspection
/// (its line breaks and layout stay as they came).
pub fn storable(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\\u0000"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_and_escaped() {
        assert_eq!(first_control("ab\ncd"), Some((2, '\n')));
        assert_eq!(first_control("苏J0001"), None);
        assert_eq!(first_nul("a\0b"), Some(1));
        assert_eq!(escaped("dev\nINFO forged", 64), "dev\\nINFO forged");
        assert_eq!(escaped("a\0b", 64), "a\\0b");
        assert_eq!(escaped("abcdef", 3), "abc…");
        assert!(matches!(escaped("plain", 64), Cow::Borrowed(_)));
        assert_eq!(storable("{\"a\":\"\0\"}\n"), "{\"a\":\"\\u0000\"}\n");
    }
}
