//! Errors shared by several domain types, and the helper that quotes user input in messages.
//!
//! Every error in this crate renders as a sentence an end user can act on: the service
//! crates put these messages, unchanged, into gRPC field violations.

use std::fmt;

/// Longest slice of user input echoed back in an error message: enough to recognise the
/// value, not enough to turn an error into a megabyte of reflected input.
const MAX_QUOTED_CHARS: usize = 64;

/// Quotes user input for an error message: escaped (so control characters stay visible)
/// and truncated.
pub(crate) fn quote(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// A name that is not one of an enum's values, e.g. stage `"WON"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEnumError {
    kind: &'static str,
    value: String,
    expected: &'static [&'static str],
}

impl ParseEnumError {
    pub(crate) fn new(kind: &'static str, value: &str, expected: &'static [&'static str]) -> Self {
        Self {
            kind,
            value: value.to_owned(),
            expected,
        }
    }

    /// What was being parsed, e.g. `"stage"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The names that would have been accepted.
    pub fn expected(&self) -> &'static [&'static str] {
        self.expected
    }
}

impl fmt::Display for ParseEnumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{} must not be empty", self.kind)?;
        } else {
            write!(f, "unknown {} {}", self.kind, quote(&self.value))?;
        }
        write!(f, "; expected one of {}", self.expected.join(", "))
    }
}

impl std::error::Error for ParseEnumError {}

/// Defines a closed set of named values: the enum, `ALL`, `as_str`, `Display` and `FromStr`
/// (exact upper-case names, the same spelling as the proto values without their prefix).
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            const NAMES: &'static [&'static str] = &[$($text),+];

            /// The canonical upper-case name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::error::ParseEnumError::new($kind, s, Self::NAMES)),
                }
            }
        }
    };
}

pub(crate) use named_enum;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_and_truncates() {
        assert_eq!(quote("abc"), "\"abc\"");
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        let long = "x".repeat(100);
        let quoted = quote(&long);
        assert!(quoted.ends_with('…'));
        assert_eq!(
            quoted.chars().filter(|c| *c == 'x').count(),
            MAX_QUOTED_CHARS
        );
    }

    #[test]
    fn parse_enum_error_lists_the_expected_names() {
        let err = ParseEnumError::new("colour", "PINK", &["RED", "BLUE"]);
        assert_eq!(
            err.to_string(),
            "unknown colour \"PINK\"; expected one of RED, BLUE"
        );
        let err = ParseEnumError::new("colour", "", &["RED", "BLUE"]);
        assert_eq!(
            err.to_string(),
            "colour must not be empty; expected one of RED, BLUE"
        );
    }
}
