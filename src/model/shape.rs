//! The shape of every constrained text field: keys (logins, names), team names and
//! paths, e-mail addresses, languages and user names. One home per shape.
//!
//! Each shape is one regular expression (the JSON Schema `pattern` of the field, put
//! there by the model types' `schemars` attributes, so the declaration schema and the
//! OpenAPI document carry this very text) and one longest length in characters (the
//! field's `maxLength`, which JSON Schema also counts in characters). [`Shape::problem`]
//! matches the same expression with the `regex` crate and counts the same characters:
//! the schema, the fast loader path (`config::fast`), the rules (`model::rules`, called
//! by the loader and the server) all reach one verdict. The patterns avoid every
//! construct whose meaning differs between ECMA-262 and Rust regular expressions
//! (`\s`, `\d`, `\w`, `.`): the characters they refuse are written out, so that a
//! validator's translation of ECMA-262 cannot move them.
//!
//! Display names (`first_name`, `last_name`, `name` of a person, `description`) are
//! free text and have no shape.

use std::sync::OnceLock;

use regex::Regex;

/// White space (Unicode `White_Space`, what `char::is_whitespace` takes) and control
/// characters (`Cc`, what `char::is_control` takes), as the inside of a character class.
macro_rules! blank {
    () => {
        r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// White space alone (Unicode `White_Space`, what `char::is_whitespace` and so `trim`
/// take), as the inside of a character class.
macro_rules! white {
    () => {
        r"\x09-\x0d\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// A text that is not blank (`trim` leaves something): one character that is not white
/// space, anywhere. (Not `\S`: in the schema's pattern dialect that also takes U+FEFF.)
pub const NOT_BLANK_PATTERN: &str = concat!("[^", white!(), "]");

/// Control characters (`Cc`), as the inside of a character class.
macro_rules! control {
    () => {
        r"\x00-\x1f\x7f-\x9f"
    };
}

/// A key (login, portal, campaign or contact group name): not blank, no control
/// character, no white space at either end.
pub const KEY_PATTERN: &str = concat!(
    "^[^",
    blank!(),
    "]([^",
    control!(),
    "]*[^",
    blank!(),
    "])?$"
);

/// A team's name (one segment of its path): a key without `/`.
pub const TEAM_NAME_PATTERN: &str = concat!(
    "^[^/",
    blank!(),
    "]([^/",
    control!(),
    "]*[^/",
    blank!(),
    "])?$"
);

/// A team path: team names joined by single `/`s.
pub const TEAM_PATH_PATTERN: &str = concat!(
    "^[^/",
    blank!(),
    "]([^/",
    control!(),
    "]*[^/",
    blank!(),
    "])?(/[^/",
    blank!(),
    "]([^/",
    control!(),
    "]*[^/",
    blank!(),
    "])?)*$"
);

/// An e-mail address (`local@domain.tld`): one `@`, a local part, a domain holding a
/// dot but neither starting nor ending with one, and no white space or control
/// character anywhere. Deliberately small: the console sends mail to it, the address's
/// owner proves it works.
pub const EMAIL_PATTERN: &str = concat!(
    "^[^@",
    blank!(),
    "]+@[^@.",
    blank!(),
    "][^@",
    blank!(),
    r"]*\.[^@",
    blank!(),
    "]*[^@.",
    blank!(),
    "]$"
);

/// An interface language: an ISO 639-1 code, optionally with a region (`en`, `pt-BR`).
pub const LANGUAGE_PATTERN: &str = "^[a-z]{2}(-[A-Z]{2})?$";

/// A console user name: typed at the sign-in, so no white space or control character.
pub const USERNAME_PATTERN: &str = concat!("^[^", blank!(), "]+$");

/// The longest key (login, name, team path), in characters.
pub const KEY_MAX_CHARS: usize = 512;
/// The longest e-mail address, in characters (RFC 5321's path limit).
pub const EMAIL_MAX_CHARS: usize = 254;
/// The longest user name, in characters.
pub const USERNAME_MAX_CHARS: usize = 100;

/// One field shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    Key,
    TeamName,
    TeamPath,
    Email,
    Language,
    Username,
}

impl Shape {
    pub const ALL: [Shape; 6] = [
        Shape::Key,
        Shape::TeamName,
        Shape::TeamPath,
        Shape::Email,
        Shape::Language,
        Shape::Username,
    ];

    /// The regular expression (the JSON Schema `pattern`).
    pub const fn pattern(self) -> &'static str {
        match self {
            Shape::Key => KEY_PATTERN,
            Shape::TeamName => TEAM_NAME_PATTERN,
            Shape::TeamPath => TEAM_PATH_PATTERN,
            Shape::Email => EMAIL_PATTERN,
            Shape::Language => LANGUAGE_PATTERN,
            Shape::Username => USERNAME_PATTERN,
        }
    }

    /// The longest value, in characters (the JSON Schema `maxLength`); the language's
    /// pattern bounds it already.
    pub const fn max_chars(self) -> Option<usize> {
        match self {
            Shape::Key | Shape::TeamName | Shape::TeamPath => Some(KEY_MAX_CHARS),
            Shape::Email => Some(EMAIL_MAX_CHARS),
            Shape::Username => Some(USERNAME_MAX_CHARS),
            Shape::Language => None,
        }
    }

    fn regex(self) -> &'static Regex {
        static RES: OnceLock<Vec<Regex>> = OnceLock::new();
        let all = RES.get_or_init(|| {
            Shape::ALL
                .iter()
                .map(|s| Regex::new(s.pattern()).expect("the shape patterns compile"))
                .collect()
        });
        &all[self as usize]
    }

    /// Whether `s` has the shape.
    pub fn holds(self, s: &str) -> bool {
        self.max_chars().is_none_or(|max| s.chars().count() <= max) && self.regex().is_match(s)
    }

    /// What is wrong with `s`, if anything, said after the field's name (`is empty`,
    /// `has 600 characters, more than 512`). `None` exactly when [`Shape::holds`].
    pub fn problem(self, s: &str) -> Option<String> {
        if self.holds(s) {
            return None;
        }
        let chars = s.chars().count();
        if let Some(max) = self.max_chars().filter(|max| chars > *max) {
            return Some(format!("has {chars} characters, more than {max}"));
        }
        let blank = |c: char| c.is_whitespace() || c.is_control();
        let why = match self {
            _ if s.is_empty() => "is empty".to_string(),
            Shape::Key | Shape::TeamName | Shape::TeamPath | Shape::Username
                if s.chars().all(blank) =>
            {
                "is blank".into()
            }
            _ if s.chars().any(char::is_control) => "holds a control character".into(),
            Shape::Key | Shape::TeamName | Shape::TeamPath
                if s.starts_with(blank) || s.ends_with(blank) =>
            {
                "starts or ends with white space".into()
            }
            Shape::TeamName => "holds a `/`".into(),
            Shape::TeamPath => "has an empty segment or one with outer white space".into(),
            Shape::Username => "holds a space".into(),
            Shape::Email => "is not an e-mail address".into(),
            Shape::Language => "is not an ISO 639-1 code".into(),
            Shape::Key => "is not a valid key".into(),
        };
        Some(why)
    }

    /// How to write a value of the shape.
    pub fn help(self) -> String {
        match self {
            Shape::Key => format!(
                "write 1 to {KEY_MAX_CHARS} characters, without control characters or white \
                 space at either end"
            ),
            Shape::TeamName => format!(
                "write 1 to {KEY_MAX_CHARS} characters without `/`, control characters or \
                 white space at either end; nest sub-teams under `teams:` instead of writing \
                 a path"
            ),
            Shape::TeamPath => format!(
                "write the path as `Parent/Child` (at most {KEY_MAX_CHARS} characters), \
                 team names separated by a single `/`"
            ),
            Shape::Email => format!(
                "write an address such as `name@example.com` (at most {EMAIL_MAX_CHARS} \
                 characters, a dot in the domain, no spaces)"
            ),
            Shape::Language => "use an ISO 639-1 code such as `en`, `fr` or `pt-BR`".into(),
            Shape::Username => format!(
                "write a user name of 1 to {USERNAME_MAX_CHARS} characters without spaces, \
                 or leave `username` out for the default (first letter of the first name \
                 and the last name)"
            ),
        }
    }
}

/// An e-mail address as [`EMAIL_PATTERN`] and [`EMAIL_MAX_CHARS`] take it.
pub fn is_email(s: &str) -> bool {
    Shape::Email.holds(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The character classes say exactly what `char::is_whitespace`/`is_control` say.
    #[test]
    fn the_classes_are_the_standard_library_predicates() {
        let blank = Regex::new(concat!("^[", blank!(), "]$")).unwrap();
        let control = Regex::new(concat!("^[", control!(), "]$")).unwrap();
        let mut buf = [0u8; 4];
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let s = c.encode_utf8(&mut buf);
            assert_eq!(
                blank.is_match(s),
                c.is_whitespace() || c.is_control(),
                "{c:?}"
            );
            assert_eq!(control.is_match(s), c.is_control(), "{c:?}");
        }
    }

    /// The JSON Schema validator (ECMA-262 patterns, `maxLength` in characters) and
    /// [`Shape::holds`] agree on every sample.
    #[test]
    fn the_schema_validator_agrees_with_the_functions() {
        let long = |n: usize| "a".repeat(n);
        let mut samples: Vec<String> = [
            "",
            " ",
            "a",
            "a b",
            " a",
            "a ",
            "a\u{a0}",
            "\u{feff}a",
            "a\u{feff}",
            "a\u{85}b",
            "a\u{2028}",
            "a\tb",
            "a\u{7}b",
            "é",
            "Zoë",
            "東京",
            "a/b",
            "a//b",
            "/a",
            "a/",
            "a/ b",
            "a /b",
            "Europe/Paris",
            "a@b",
            "a@b.c",
            "a@.b.c",
            "a@b.c.",
            "a@b..c",
            "@b.c",
            "a@@b.c",
            "a@b@c.d",
            "a b@c.d",
            "zoë@exämple.fr",
            "marie@acme.example",
            "en",
            "pt-BR",
            "pt-br",
            "EN",
            "eng",
            "e",
            "fr-",
            "jdoe",
            "j.doe-2_x",
            "j\u{3000}doe",
            "a\nb",
            "a\n",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in [99, 100, 101, 253, 254, 255, 511, 512, 513] {
            samples.push(long(n));
            samples.push(format!("{}@x.example", long(n - 10)));
            samples.push("é".repeat(n));
        }
        for shape in Shape::ALL {
            let mut schema = serde_json::json!({"type": "string", "pattern": shape.pattern()});
            if let Some(max) = shape.max_chars() {
                schema["maxLength"] = max.into();
            }
            let v = jsonschema::draft202012::new(&schema).unwrap();
            for s in &samples {
                let value = serde_json::Value::String(s.clone());
                assert_eq!(v.is_valid(&value), shape.holds(s), "{shape:?} {s:?}");
                assert_eq!(
                    shape.problem(s).is_none(),
                    shape.holds(s),
                    "{shape:?} {s:?}"
                );
            }
        }
    }

    #[test]
    fn shapes_say_what_is_wrong() {
        assert!(is_email("marie@acme.example"));
        assert!(!is_email("marie"));
        assert!(!is_email("marie@acme"));
        assert!(!is_email("a b@acme.example"));
        assert_eq!(Shape::Key.problem("Paris Nord"), None);
        assert_eq!(Shape::Key.problem("").as_deref(), Some("is empty"));
        assert_eq!(Shape::Key.problem("  ").as_deref(), Some("is blank"));
        assert_eq!(
            Shape::Key.problem(" a").as_deref(),
            Some("starts or ends with white space")
        );
        assert_eq!(
            Shape::Key.problem("a\u{1}b").as_deref(),
            Some("holds a control character")
        );
        assert_eq!(
            Shape::Key.problem(&"k".repeat(513)).as_deref(),
            Some("has 513 characters, more than 512")
        );
        assert_eq!(
            Shape::TeamName.problem("a/b").as_deref(),
            Some("holds a `/`")
        );
        assert!(Shape::TeamPath.problem("a//b").unwrap().contains("segment"));
        assert_eq!(
            Shape::Username.problem("j doe").as_deref(),
            Some("holds a space")
        );
        assert_eq!(
            Shape::Language.problem("pt-br").as_deref(),
            Some("is not an ISO 639-1 code")
        );
    }
}
