//! YAML text → `serde_json::Value`, and the reverse question: where is this JSON pointer?
//!
//! Two passes over saphyr-parser's event API, never a YAML DOM and never serde_yaml:
//!
//! - [`parse`] builds a `Value` directly from the events with YAML 1.2 core-schema scalar
//!   resolution, detects duplicate keys, bounds alias expansion (billion laughs) and
//!   refuses a second document. It keeps no spans: the happy path of a 100,000-object
//!   declaration must not pay for them.
//! - [`locate_many`] re-reads one file when a diagnostic needs a line:column (rare), and
//!   finds the key and value positions of the requested JSON pointers. The same walk can
//!   collect the spans of every `password` value so a snippet can mask them.
//!
//! Positions are 1-based lines and 1-based columns counted in characters.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::{Map, Number, Value};

use crate::model::rules::RuleCode;

/// At most this many nodes may be created by expanding aliases in one file, on top of
/// the nodes the text itself holds. Legitimate sharing stays far below; a billion-laughs
/// file hits it after a few thousand cheap steps.
pub const ALIAS_EXPANSION_LIMIT: usize = 1_000_000;
/// Deepest nesting accepted (a defence against stack-hungry pathological input).
pub const MAX_DEPTH: usize = 256;

/// A 1-based line and column.
pub type Pos = (usize, usize);

fn pos(m: &Marker) -> Pos {
    (m.line(), m.col() + 1)
}

/// A problem found while reading the text, already positioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseProblem {
    pub rule: RuleCode,
    pub pos: Pos,
    pub message: String,
    pub help: String,
    /// For a duplicate key: the JSON pointer of the first occurrence (located later).
    pub first: Option<String>,
}

impl ParseProblem {
    fn syntax(e: &ScanError) -> Self {
        ParseProblem {
            rule: RuleCode::YamlSyntax,
            pos: pos(e.marker()),
            message: format!("invalid YAML: {}", e.info()),
            help: "fix the YAML syntax at this place (indentation, quotes, `:` and `-`)".into(),
            first: None,
        }
    }
}

/// Escapes one JSON-pointer segment (RFC 6901).
pub fn escape_segment(s: &str) -> Cow<'_, str> {
    if s.contains(['~', '/']) {
        Cow::Owned(s.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(s)
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
pub fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => {
            // JSON has no infinities; keep the text so the schema reports a clear type error.
            return Value::String(s.to_owned());
        }
        _ => {}
    }
    if let Some(v) = resolve_int(s) {
        return v;
    }
    if is_core_float(s) {
        if let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_owned())
}

fn resolve_int(s: &str) -> Option<Value> {
    let b = s.as_bytes();
    let (radix, digits) = if let Some(d) = s.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = s.strip_prefix("0o") {
        (8, d)
    } else {
        let d = s.strip_prefix(['-', '+']).unwrap_or(s);
        if d.is_empty() || !d.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if b[0] == b'-' {
            return match s.parse::<i64>() {
                Ok(n) => Some(Value::from(n)),
                Err(_) => s
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number),
            };
        }
        return match d.parse::<u64>() {
            Ok(n) => Some(Value::from(n)),
            Err(_) => d
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number),
        };
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok().map(Value::from)
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_core_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - f;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == b.len()
}

fn scalar_value(text: Cow<'_, str>, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(t) = tag {
        if t.is_yaml_core_schema() && t.suffix == "str" {
            return Value::String(text.into_owned());
        }
    }
    match style {
        ScalarStyle::Plain => resolve_plain(&text),
        _ => Value::String(text.into_owned()),
    }
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        nodes: usize,
    },
    Map {
        map: Map<String, Value>,
        anchor: usize,
        nodes: usize,
        key: Option<String>,
    },
}

/// Parses one file's text into a `Value`.
///
/// `Ok(None)` means the file holds no document or only a null one (empty or comments).
pub fn parse(src: &str) -> Result<Option<Value>, ParseProblem> {
    let mut parser = Parser::new_from_str(src);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, (Value, usize)> = HashMap::new();
    let mut expanded = 0usize;
    let mut root: Option<Value> = None;
    let mut documents = 0usize;
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Err(e)) => return Err(ParseProblem::syntax(&e)),
            Some(Ok(x)) => x,
        };
        let (node, anchor, count) = match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(ParseProblem {
                        rule: RuleCode::YamlSyntax,
                        pos: pos(&span.start),
                        message: "a second YAML document in one file".into(),
                        help: "keep one document per file: remove the `---` separator or split \
                               the file in two"
                            .into(),
                        first: None,
                    });
                }
                continue;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _)
                if stack.len() >= MAX_DEPTH =>
            {
                let _ = anchor;
                return Err(limit(
                    span,
                    format!("nesting deeper than {MAX_DEPTH} levels"),
                ));
            }
            Event::SequenceStart(anchor, _) => {
                if let Some(Frame::Map { key: None, .. }) = stack.last() {
                    return Err(complex_key(span));
                }
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    nodes: 1,
                });
                continue;
            }
            Event::MappingStart(anchor, _) => {
                if let Some(Frame::Map { key: None, .. }) = stack.last() {
                    return Err(complex_key(span));
                }
                stack.push(Frame::Map {
                    map: Map::new(),
                    anchor,
                    nodes: 1,
                    key: None,
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    items,
                    anchor,
                    nodes,
                }) => (Value::Array(items), anchor, nodes),
                _ => continue,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    map, anchor, nodes, ..
                }) => (Value::Object(map), anchor, nodes),
                _ => continue,
            },
            Event::Alias(id) => {
                let Some((value, count)) = anchors.get(&id) else {
                    return Err(ParseProblem {
                        rule: RuleCode::YamlSyntax,
                        pos: pos(&span.start),
                        message: "an alias to an unknown anchor".into(),
                        help: "define the anchor (`&name`) before using it (`*name`)".into(),
                        first: None,
                    });
                };
                expanded = expanded.saturating_add(*count);
                if expanded > ALIAS_EXPANSION_LIMIT {
                    return Err(limit(
                        span,
                        format!(
                            "aliases expand to more than {ALIAS_EXPANSION_LIMIT} nodes \
                             (a \"billion laughs\" document?)"
                        ),
                    ));
                }
                (value.clone(), 0, *count)
            }
            Event::Scalar(text, style, anchor, tag) => {
                // A scalar in key position becomes the key, as written.
                if let Some(Frame::Map {
                    map,
                    key: key @ None,
                    ..
                }) = stack.last_mut()
                {
                    let k = text.into_owned();
                    if map.contains_key(&k) {
                        let first = format!("{}/{}", stack_pointer(&stack), escape_segment(&k));
                        return Err(ParseProblem {
                            rule: RuleCode::DuplicateKey,
                            pos: pos(&span.start),
                            message: format!("key `{k}` appears twice in the same mapping"),
                            help: "remove one of the two, or merge their values".into(),
                            first: Some(first),
                        });
                    }
                    *key = Some(k);
                    if anchor != 0 {
                        anchors.insert(anchor, (Value::String(key.clone().unwrap_or_default()), 1));
                    }
                    continue;
                }
                (scalar_value(text, style, tag.as_deref()), anchor, 1)
            }
        };
        if anchor != 0 {
            anchors.insert(anchor, (node.clone(), count));
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, nodes, .. }) => {
                items.push(node);
                *nodes = nodes.saturating_add(count);
            }
            Some(Frame::Map {
                map, key, nodes, ..
            }) => match key.take() {
                Some(k) => {
                    map.insert(k, node);
                    *nodes = nodes.saturating_add(count);
                }
                // An alias in key position.
                None => return Err(complex_key(span)),
            },
        }
    }
    Ok(match root {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    })
}

/// The JSON pointer of the innermost open frame (only on the error path).
fn stack_pointer(stack: &[Frame]) -> String {
    let mut p = String::new();
    for (i, f) in stack.iter().enumerate() {
        if i + 1 == stack.len() {
            break;
        }
        p.push('/');
        match f {
            Frame::Seq { items, .. } => p.push_str(&items.len().to_string()),
            Frame::Map { key, .. } => p.push_str(&escape_segment(key.as_deref().unwrap_or(""))),
        }
    }
    p
}

fn limit(span: Span, message: String) -> ParseProblem {
    ParseProblem {
        rule: RuleCode::InputLimit,
        pos: pos(&span.start),
        message,
        help: "write the values out instead of nesting aliases or deep structures".into(),
        first: None,
    }
}

fn complex_key(span: Span) -> ParseProblem {
    ParseProblem {
        rule: RuleCode::YamlSyntax,
        pos: pos(&span.start),
        message: "a mapping key that is not plain text".into(),
        help: "use a plain name as the key (`name: value`)".into(),
        first: None,
    }
}

/// Where a node sits: the key's position (for a mapping member) and the value's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePos {
    pub key: Option<Pos>,
    pub value: Pos,
    /// Character offset of the value's start and end (for snippets).
    pub value_span: (usize, usize),
}

/// What a locate pass looks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A JSON pointer (`/representatives/3/login`), compared ignoring ASCII case.
    Pointer(String),
    /// The element of the sequence at this pointer whose scalar equals the text
    /// (ignoring ASCII case); used for set-valued fields whose order was lost.
    Item(String, String),
}

/// Result of a locate pass.
#[derive(Debug, Default)]
pub struct Located {
    pub found: HashMap<Target, NodePos>,
    /// Character spans of every value whose key is `password`.
    pub password_spans: Vec<(usize, usize)>,
}

enum LFrame {
    Seq { index: usize },
    Map { key: Option<(String, Pos)> },
}

/// Re-reads a file's text and finds the position of each target.
///
/// A target that does not exist (it sits inside an alias, say) falls back to its nearest
/// existing ancestor. On a syntax error the walk stops and keeps what it found so far.
pub fn locate_many(src: &str, targets: &[Target], want_passwords: bool) -> Located {
    let mut out = Located::default();
    let mut wanted: HashMap<String, Vec<usize>> = HashMap::new();
    let mut items: HashMap<String, Vec<(usize, String)>> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        match t {
            Target::Pointer(p) => {
                // The pointer and its ancestors, for the fallback.
                let mut p = p.to_ascii_lowercase();
                loop {
                    wanted.entry(p.clone()).or_default().push(i);
                    match p.rfind('/') {
                        Some(at) => p.truncate(at),
                        None => break,
                    }
                }
            }
            Target::Item(seq, text) => {
                let seq = seq.to_ascii_lowercase();
                items
                    .entry(seq.clone())
                    .or_default()
                    .push((i, text.to_ascii_lowercase()));
                let mut p = seq;
                loop {
                    wanted.entry(p.clone()).or_default().push(i);
                    match p.rfind('/') {
                        Some(at) => p.truncate(at),
                        None => break,
                    }
                }
            }
        }
    }
    let mut seen: HashMap<String, NodePos> = HashMap::new();
    let mut item_hits: HashMap<usize, NodePos> = HashMap::new();
    let mut stack: Vec<LFrame> = Vec::new();
    let mut path = String::new();
    let mut lens: Vec<usize> = Vec::new();
    let mut password_depth: Option<usize> = None;
    let mut password_start = 0usize;
    let mut parser = Parser::new_from_str(src);
    let mut documents = 0;
    while let Some(Ok((event, span))) = parser.next_event() {
        // Work out whether this event starts a node, and under which segment.
        let starts_node = matches!(
            event,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Alias(_)
        );
        if let Event::DocumentStart(_) = event {
            documents += 1;
            if documents > 1 {
                break;
            }
            continue;
        }
        if !starts_node {
            match event {
                Event::SequenceEnd | Event::MappingEnd => {
                    stack.pop();
                    close_node(&mut stack, &mut path, &mut lens);
                    if password_depth == Some(stack.len()) {
                        out.password_spans.push((password_start, span.end.index()));
                        password_depth = None;
                    }
                }
                Event::StreamEnd => break,
                _ => {}
            }
            continue;
        }
        // A scalar in key position.
        if let Some(LFrame::Map { key: key @ None }) = stack.last_mut() {
            if let Event::Scalar(text, ..) = &event {
                *key = Some((text.to_string(), pos(&span.start)));
            }
            continue;
        }
        let mut key_pos = None;
        let mut is_password = false;
        match stack.last_mut() {
            None => {}
            Some(LFrame::Seq { index }) => {
                lens.push(path.len());
                path.push('/');
                path.push_str(&index.to_string());
                *index += 1;
            }
            Some(LFrame::Map { key }) => {
                let (k, kp) = key.clone().unwrap_or_default();
                is_password = k == "password";
                key_pos = Some(kp);
                lens.push(path.len());
                path.push('/');
                path.push_str(&escape_segment(&k).to_ascii_lowercase());
            }
        }
        let np = NodePos {
            key: key_pos,
            value: pos(&span.start),
            value_span: (span.start.index(), span.end.index()),
        };
        if wanted.contains_key(&path) && !seen.contains_key(&path) {
            seen.insert(path.clone(), np);
        }
        // Items: the parent path is the sequence.
        if let Event::Scalar(text, ..) = &event {
            if let Some(LFrame::Seq { .. }) = stack.last() {
                let parent = &path[..lens.last().copied().unwrap_or(0)];
                if let Some(list) = items.get(parent) {
                    for (i, t) in list {
                        if text.eq_ignore_ascii_case(t) && !item_hits.contains_key(i) {
                            item_hits.insert(*i, np);
                        }
                    }
                }
            }
        }
        if want_passwords && is_password && password_depth.is_none() {
            password_start = span.start.index();
            password_depth = Some(stack.len());
        }
        match event {
            Event::SequenceStart(..) => stack.push(LFrame::Seq { index: 0 }),
            Event::MappingStart(..) => stack.push(LFrame::Map { key: None }),
            _ => {
                if password_depth == Some(stack.len()) {
                    out.password_spans.push((password_start, span.end.index()));
                    password_depth = None;
                }
                close_node(&mut stack, &mut path, &mut lens)
            }
        }
    }
    for (i, t) in targets.iter().enumerate() {
        if let Some(np) = item_hits.get(&i) {
            out.found.insert(t.clone(), *np);
            continue;
        }
        let mut p = match t {
            Target::Pointer(p) | Target::Item(p, _) => p.to_ascii_lowercase(),
        };
        loop {
            if let Some(np) = seen.get(&p) {
                out.found.insert(t.clone(), *np);
                break;
            }
            match p.rfind('/') {
                Some(at) => p.truncate(at),
                None => break,
            }
        }
    }
    out
}

/// Ends the current node: drop its segment and, in a mapping, expect the next key.
fn close_node(stack: &mut [LFrame], path: &mut String, lens: &mut Vec<usize>) {
    match stack.last_mut() {
        None => {}
        Some(LFrame::Seq { .. }) => {
            if let Some(l) = lens.pop() {
                path.truncate(l);
            }
        }
        Some(LFrame::Map { key }) => {
            *key = None;
            if let Some(l) = lens.pop() {
                path.truncate(l);
            }
        }
    }
}

/// Replaces every character of the given character spans with `*`, keeping line breaks,
/// so a snippet keeps its shape but never shows a password.
pub fn mask(src: &str, spans: &[(usize, usize)]) -> String {
    if spans.is_empty() {
        return src.to_owned();
    }
    let mut out = String::with_capacity(src.len());
    let mut spans = spans.to_vec();
    spans.sort_unstable();
    let mut si = 0;
    for (ci, ch) in src.chars().enumerate() {
        while si < spans.len() && spans[si].1 <= ci {
            si += 1;
        }
        let inside = si < spans.len() && spans[si].0 <= ci && ci < spans[si].1;
        if inside && ch != '\n' && ch != '\r' {
            out.push('*');
        } else {
            out.push(ch);
        }
    }
    out
}

/// A last line of defence for text that does not parse: masks the rest of any line with a
/// `password` key and the more-indented lines below it.
pub fn mask_password_lines(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut masking_below: Option<usize> = None;
    for line in src.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start().len();
        if let Some(ind) = masking_below {
            if body.trim().is_empty() || indent > ind {
                out.push_str(&mask_all(line));
                continue;
            }
            masking_below = None;
        }
        let trimmed = body.trim_start().trim_start_matches("- ");
        let lower = trimmed.to_ascii_lowercase();
        let key_at = lower
            .find("password")
            .filter(|&i| lower[i + 8..].trim_start().starts_with(':'));
        match key_at {
            Some(i) => {
                let colon = trimmed[i..]
                    .find(':')
                    .map(|c| c + i)
                    .unwrap_or(trimmed.len());
                let prefix_len = body.len() - trimmed.len() + colon + 1;
                out.push_str(&body[..prefix_len]);
                out.push_str(&mask_all(&line[prefix_len..]));
                masking_below = Some(indent);
            }
            None => out.push_str(line),
        }
    }
    out
}

fn mask_all(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == ' ' {
                c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Value {
        parse(s).expect("parses").expect("not empty")
    }

    #[test]
    fn core_schema_scalars() {
        let v = p(
            "a: no\nb: ~\nc:\nd: true\ne: 0x1F\nf: 0o17\ng: 1.5\nh: '12'\ni: -3\nj: 1e3\nk: yes\nl: \"true\"\nm: 007\n",
        );
        assert_eq!(
            v,
            json!({"a":"no","b":null,"c":null,"d":true,"e":31,"f":15,"g":1.5,"h":"12","i":-3,"j":1000.0,"k":"yes","l":"true","m":7})
        );
    }

    #[test]
    fn explicit_str_tag_keeps_text() {
        assert_eq!(p("a: !!str 12\n"), json!({"a": "12"}));
    }

    #[test]
    fn duplicate_key_is_reported_at_the_second() {
        let e = parse("a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
        assert_eq!(e.rule, RuleCode::DuplicateKey);
        assert_eq!(e.pos, (4, 3));
        // Same key in two different mappings is fine.
        assert!(parse("a: {c: 1}\nb: {c: 1}\n").is_ok());
    }

    #[test]
    fn billion_laughs_is_stopped() {
        let mut s = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let mut prev = 'a';
        for c in 'b'..='j' {
            s.push_str(&format!(
                "{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
            prev = c;
        }
        let e = parse(&s).unwrap_err();
        assert_eq!(e.rule, RuleCode::InputLimit);
        // A modest alias is fine.
        assert_eq!(p("a: &x [1, 2]\nb: *x\n"), json!({"a":[1,2],"b":[1,2]}));
    }

    #[test]
    fn empty_and_comment_only() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# nothing\n\n").unwrap(), None);
        assert_eq!(parse("---\n").unwrap(), None);
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(e.rule, RuleCode::YamlSyntax);
        assert!(e.pos.0 >= 1);
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.rule, RuleCode::YamlSyntax);
        assert_eq!(e.pos.0, 2);
    }

    #[test]
    fn locate_keys_values_and_items() {
        let src = "representatives:\n  - login: a@x.example\n    features: [reports, admin_center_access]\n  - login: B@x.example\n";
        let t = [
            Target::Pointer("/representatives/1/login".into()),
            Target::Pointer("/representatives/0/nope".into()),
            Target::Item(
                "/representatives/0/features".into(),
                "admin_center_access".into(),
            ),
        ];
        let l = locate_many(src, &t, false);
        let a = l.found[&t[0]];
        assert_eq!(a.key, Some((4, 5)));
        assert_eq!(a.value, (4, 12));
        // Falls back to the object.
        assert_eq!(l.found[&t[1]].value.0, 2);
        assert_eq!(l.found[&t[2]].value, (3, 25));
    }

    #[test]
    fn password_values_are_masked() {
        let src = "m:\n  - password: hunter2\n    name: x\n  - password: {env: X}\n";
        let l = locate_many(src, &[], true);
        let masked = mask(src, &l.password_spans);
        assert!(!masked.contains("hunter2"));
        assert!(!masked.contains("env: X"));
        assert!(masked.contains("name: x"));
        let lines =
            mask_password_lines("a:\n  password: hunter2\n  password:\n    env: X\n  b: 1\n");
        assert!(!lines.contains("hunter2") && !lines.contains("env: X"));
        assert!(lines.contains("b: 1"));
    }
}
