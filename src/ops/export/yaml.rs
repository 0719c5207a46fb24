//! A small YAML 1.2 writer for JSON values, for `roster export`.
//!
//! Block mappings and sequences; sequences of scalars in flow style (`[a, b]`) when they
//! fit on a line. A string is written plain only when no YAML reader (1.2, nor the 1.1
//! habits of other tools) could take it for anything but that string: everything else is
//! double-quoted with escapes (`"no"`, `"123"`, `"a: b"`, `" lead"`, `""`).

use serde_json::{Map, Value};

/// Longest flow sequence kept on one line.
const FLOW_WIDTH: usize = 100;

/// The YAML document for a mapping (the top level of a declaration file).
pub fn document(map: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_map(&mut out, map, 0);
    out
}

/// Words some YAML reader resolves to null or a boolean (1.2 core schema and 1.1).
const RESERVED: &[&str] = &[
    "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n",
];

/// Whether `s` must be quoted to read back as this exact string.
pub fn needs_quotes(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    if s.trim() != s {
        return true;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return true;
    }
    // Numbers (ints, floats, 0x/0o, signs, .5, .inf, .nan) and 1.1 sexagesimals/dates.
    if first.is_ascii_digit() || first == '+' || first == '.' {
        return true;
    }
    if RESERVED.contains(&s.to_ascii_lowercase().as_str()) {
        return true;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return true;
    }
    s.chars()
        .any(|c| matches!(c, ',' | '[' | ']' | '{' | '}') || c.is_control() || !printable(c))
}

/// YAML's printable set (c-printable), minus the byte-order mark.
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7E}' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && c != '\u{FEFF}'
}

/// A double-quoted scalar with every character that needs it escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || !printable(c) => {
                let n = c as u32;
                if n <= 0xFFFF {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn string(s: &str) -> String {
    if needs_quotes(s) {
        quote(s)
    } else {
        s.to_string()
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        // Only reached for nested collections inside a flow sequence.
        other => serde_json::to_string(other).expect("json serializes"),
    }
}

fn is_scalar(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => true,
    }
}

fn flow(a: &[Value]) -> Option<String> {
    if !a.iter().all(is_scalar) {
        return None;
    }
    let s = format!("[{}]", a.iter().map(scalar).collect::<Vec<_>>().join(", "));
    (s.len() <= FLOW_WIDTH).then_some(s)
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize) {
    let mut first = true;
    for (k, v) in map {
        if !first {
            pad(out, indent);
        }
        first = false;
        write_entry(out, k, v, indent);
    }
}

/// `key: value` where the cursor already sits at the key's column.
fn write_entry(out: &mut String, k: &str, v: &Value, indent: usize) {
    out.push_str(&string(k));
    out.push(':');
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            pad(out, indent + 2);
            write_map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => match flow(a) {
            Some(f) => {
                out.push(' ');
                out.push_str(&f);
                out.push('\n');
            }
            None => {
                out.push('\n');
                write_seq(out, a, indent + 2);
            }
        },
        v => {
            out.push(' ');
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, a: &[Value], indent: usize) {
    for item in a {
        pad(out, indent);
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => write_map(out, m, indent + 2),
            Value::Array(inner) if !inner.is_empty() => match flow(inner) {
                Some(f) => {
                    out.push_str(&f);
                    out.push('\n');
                }
                None => {
                    out.push('\n');
                    write_seq(out, inner, indent + 2);
                }
            },
            v => {
                out.push_str(&scalar(v));
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saphyr_parser::{Event, Parser, ScalarStyle};
    use serde_json::json;

    /// Reads YAML back with the same parser `config` uses, resolving plain scalars as the
    /// YAML 1.2 core schema does.
    fn read_back(text: &str) -> Value {
        let mut events = Parser::new_from_str(text).map(|e| e.expect("valid yaml").0);
        fn node<'a>(ev: Event<'a>, events: &mut impl Iterator<Item = Event<'a>>) -> Value {
            match ev {
                Event::Scalar(s, style, _, _) => {
                    if style != ScalarStyle::Plain {
                        return Value::String(s.into_owned());
                    }
                    match s.as_ref() {
                        "null" | "~" => Value::Null,
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        t => t
                            .parse::<i64>()
                            .map(Value::from)
                            .or_else(|_| t.parse::<f64>().map(Value::from))
                            .unwrap_or_else(|_| Value::String(t.to_string())),
                    }
                }
                Event::SequenceStart(..) => {
                    let mut a = Vec::new();
                    loop {
                        match events.next().unwrap() {
                            Event::SequenceEnd => return Value::Array(a),
                            e => a.push(node(e, events)),
                        }
                    }
                }
                Event::MappingStart(..) => {
                    let mut m = Map::new();
                    loop {
                        match events.next().unwrap() {
                            Event::MappingEnd => return Value::Object(m),
                            e => {
                                let Value::String(k) = node(e, events) else {
                                    panic!("non-string key")
                                };
                                let v = node(events.next().unwrap(), events);
                                m.insert(k, v);
                            }
                        }
                    }
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
        loop {
            match events.next().unwrap() {
                Event::StreamStart | Event::DocumentStart(_) => continue,
                ev => return node(ev, &mut events),
            }
        }
    }

    #[test]
    fn tricky_strings_read_back_as_the_same_strings() {
        let tricky = [
            "",
            "no",
            "No",
            "yes",
            "on",
            "off",
            "y",
            "true",
            "False",
            "null",
            "~",
            "123",
            "1.5",
            "0x1F",
            "+1",
            "-1",
            ".5",
            ".inf",
            "2026-11",
            "1:30",
            "a: b",
            "a:b",
            "trailing:",
            "x #y",
            "#hash",
            " lead",
            "trail ",
            "-dash",
            "- item",
            "?q",
            "[x]",
            "{y}",
            "a,b",
            "it's",
            "\"q\"",
            "back\\slash",
            "line\nbreak",
            "tab\there",
            "@at",
            "`tick",
            "%p",
            "&a",
            "*b",
            "!t",
            "|l",
            ">f",
            "Zürich",
            "日本",
            "bom\u{FEFF}",
            "bell\u{7}",
            "c1\u{85}x",
            "jdoe@acme.example",
            "Europe/Paris",
            "web-support",
        ];
        let mut m = Map::new();
        for (i, s) in tricky.iter().enumerate() {
            m.insert(format!("k{i}"), json!(s));
            m.insert(s.to_string(), json!(i));
        }
        m.insert("list".into(), json!(tricky.to_vec()));
        let text = document(&m);
        assert_eq!(read_back(&text), Value::Object(m), "{text}");
    }

    #[test]
    fn nested_layout_is_block_with_flow_scalar_lists() {
        let doc = json!({
            "version": 1,
            "teams": [
                {"name": "Europe", "teams": [{"name": "Paris", "max_active_logins": 12}]},
                {"name": "Empty", "tags": [], "meta": {}}
            ],
            "representatives": [
                {"login": "jdoe@acme.example", "sign_in": {"force_password_change": true},
                 "features": ["admin_center_access", "reports"]}
            ]
        });
        let text = document(doc.as_object().unwrap());
        let expected = "\
version: 1
teams:
  - name: Europe
    teams:
      - name: Paris
        max_active_logins: 12
  - name: Empty
    tags: []
    meta: {}
representatives:
  - login: jdoe@acme.example
    sign_in:
      force_password_change: true
    features: [admin_center_access, reports]
";
        assert_eq!(text, expected);
        assert_eq!(read_back(&text), doc);
    }

    #[test]
    fn long_lists_go_in_block_style() {
        let items: Vec<String> = (0..30)
            .map(|i| format!("member-{i}@acme.example"))
            .collect();
        let doc = json!({ "representatives": items });
        let text = document(doc.as_object().unwrap());
        assert!(text.contains("\n  - member-0@acme.example\n"), "{text}");
        assert_eq!(read_back(&text), doc);
    }
}
