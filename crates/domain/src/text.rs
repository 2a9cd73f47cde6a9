//! Free text that has been checked: names, reasons, notes.

use std::fmt;

use thiserror::Error;

/// Why a piece of text was refused. The messages omit the field name: the caller's field
/// violation names the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooManyChars { max: usize },
    #[error("must be at most {max} bytes")]
    TooManyBytes { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// Refuses blank text and control characters (line breaks and tabs too, unless
/// `allow_line_breaks`): a stray NUL or escape sequence in a name breaks CSV exports and
/// terminals long after it was accepted.
pub(crate) fn check_text(value: &str, allow_line_breaks: bool) -> Result<(), TextError> {
    if value.trim().is_empty() {
        return Err(TextError::Empty);
    }
    let allowed = |c: char| allow_line_breaks && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(TextError::ControlCharacter);
    }
    Ok(())
}

/// Text with something in it: trimmed, non-empty, at most `max_chars` characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NonEmptyText(String);

impl NonEmptyText {
    /// A single-line value such as a name: surrounding whitespace is trimmed (it is never
    /// meant), the rest must be 1..=`max_chars` characters without control characters.
    pub fn parse(value: &str, max_chars: usize) -> Result<NonEmptyText, TextError> {
        NonEmptyText::parse_with(value, max_chars, false)
    }

    /// Like [`NonEmptyText::parse`] but keeps line breaks and tabs inside the text, for
    /// notes, reasons and summaries.
    pub fn parse_multiline(value: &str, max_chars: usize) -> Result<NonEmptyText, TextError> {
        NonEmptyText::parse_with(value, max_chars, true)
    }

    fn parse_with(
        value: &str,
        max_chars: usize,
        allow_line_breaks: bool,
    ) -> Result<NonEmptyText, TextError> {
        let trimmed = value.trim();
        check_text(trimmed, allow_line_breaks)?;
        if trimmed.chars().count() > max_chars {
            return Err(TextError::TooManyChars { max: max_chars });
        }
        Ok(NonEmptyText(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for NonEmptyText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NonEmptyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_keeps_the_inside() {
        let name = NonEmptyText::parse("  Acme  Corp ", 20).unwrap();
        assert_eq!(name.as_str(), "Acme  Corp");
        assert_eq!(name.to_string(), "Acme  Corp");
        assert_eq!(name.clone().into_string(), "Acme  Corp");
        assert_eq!(name.as_ref(), "Acme  Corp");
    }

    #[test]
    fn refuses_blank_text() {
        for blank in ["", "   ", "\t\n"] {
            assert_eq!(
                NonEmptyText::parse(blank, 10),
                Err(TextError::Empty),
                "{blank:?}"
            );
        }
        assert_eq!(
            NonEmptyText::parse("", 10).unwrap_err().to_string(),
            "must not be empty"
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert!(NonEmptyText::parse("ação", 4).is_ok());
        let err = NonEmptyText::parse("ações", 4).unwrap_err();
        assert_eq!(err, TextError::TooManyChars { max: 4 });
        assert_eq!(err.to_string(), "must be at most 4 characters");
    }

    #[test]
    fn control_characters_are_refused_except_line_breaks_in_multiline() {
        assert_eq!(
            NonEmptyText::parse("a\nb", 10),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(
            NonEmptyText::parse("a\u{1b}[31mb", 20),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(
            NonEmptyText::parse_multiline("line one\r\n\tline two", 40)
                .unwrap()
                .as_str(),
            "line one\r\n\tline two"
        );
        assert_eq!(
            NonEmptyText::parse_multiline("a\u{0}b", 10),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(
            NonEmptyText::parse_multiline("a\u{7f}b", 10),
            Err(TextError::ControlCharacter)
        );
    }
}
