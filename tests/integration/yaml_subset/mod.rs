//! A reader for the plain YAML subset the Kubernetes manifests in deploy/kubernetes are
//! written in: block mappings and sequences (indented or not under their key), plain and
//! quoted scalars, `[a, b]` / `[]` / `{}` flow collections of scalars, literal blocks (`|`,
//! `|-`, `|+`), comments and `---` between documents.
//!
//! Why not a YAML crate: none is in the dependency graph, and CI has only the Rust toolchain.
//! Anything outside the subset (tabs, anchors, tags, folded blocks, nested flow collections,
//! duplicate keys) is an error naming the line, so a manifest is never silently misread; and
//! where python3 with PyYAML exists, tests/integration/deploy.rs compares every document read here with
//! what a real YAML parser reads.

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    /// An unquoted scalar: YAML may resolve it to a number or a boolean.
    Plain(String),
    /// A quoted scalar or a literal block: always a string.
    Quoted(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a dotted path; a number steps into a sequence: `spec.containers.0.name`.
    pub fn at(&self, path: &str) -> Option<&Node> {
        path.split('.').try_fold(self, |node, step| match node {
            Node::Seq(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => node.get(step),
        })
    }

    pub fn str(&self) -> Option<&str> {
        match self {
            Node::Plain(s) | Node::Quoted(s) => Some(s),
            _ => None,
        }
    }

    pub fn items(&self) -> &[Node] {
        match self {
            Node::Seq(items) => items,
            _ => &[],
        }
    }

    /// The document as JSON the way YAML 1.1 (PyYAML, Kubernetes) resolves plain scalars:
    /// booleans and integers (`0400` is octal) become canonical text, `~` and `null` null.
    pub fn to_resolved_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Quoted(s) => Value::String(s.clone()),
            Node::Plain(s) => resolve_plain(s),
            Node::Seq(items) => Value::Array(items.iter().map(Node::to_resolved_json).collect()),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_resolved_json()))
                    .collect(),
            ),
        }
    }
}

fn resolve_plain(text: &str) -> serde_json::Value {
    use serde_json::Value;
    let lower = text.to_ascii_lowercase();
    if matches!(lower.as_str(), "~" | "null") {
        return Value::Null;
    }
    if matches!(lower.as_str(), "true" | "yes" | "on") {
        return Value::String("true".into());
    }
    if matches!(lower.as_str(), "false" | "no" | "off") {
        return Value::String("false".into());
    }
    let digits = text.trim_start_matches(['+', '-']);
    let negative = text.starts_with('-');
    let number = if digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(digits, 8).ok()
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i64>().ok()
    } else {
        None
    };
    match number {
        Some(n) => Value::String(if negative { -n } else { n }.to_string()),
        None => Value::String(text.to_string()),
    }
}

/// Every document of `text`; an empty document (only comments) is left out.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, String> {
    let mut docs = Vec::new();
    let mut current = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        if raw.trim_end() == "---" {
            docs.push(std::mem::take(&mut current));
        } else {
            current.push(Line::new(index + 1, raw)?);
        }
    }
    docs.push(current);
    let mut out = Vec::new();
    for lines in docs {
        let mut parser = Parser { lines, pos: 0 };
        if let Some(first) = parser.peek() {
            let indent = parser.lines[first].indent;
            if indent != 0 {
                return Err(parser.error(first, "a document must start at column 0"));
            }
            let node = parser.block(0)?;
            if let Some(rest) = parser.peek() {
                return Err(parser.error(rest, "unexpected content after the document"));
            }
            out.push(node);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
struct Line {
    number: usize,
    indent: usize,
    /// The line without its indentation (and without trailing spaces).
    text: String,
    raw: String,
}

impl Line {
    fn new(number: usize, raw: &str) -> Result<Self, String> {
        let body = raw.trim_start_matches(' ');
        if body.starts_with('\t') {
            return Err(format!("line {number}: a tab in the indentation"));
        }
        Ok(Self {
            number,
            indent: raw.len() - body.len(),
            text: body.trim_end().to_string(),
            raw: raw.to_string(),
        })
    }

    fn ignorable(&self) -> bool {
        self.text.is_empty() || self.text.starts_with('#')
    }
}

struct Parser {
    lines: Vec<Line>,
    pos: usize,
}

impl Parser {
    fn error(&self, index: usize, what: &str) -> String {
        format!("line {}: {what}", self.lines[index].number)
    }

    /// The index of the next line that is neither blank nor a comment.
    fn peek(&mut self) -> Option<usize> {
        while self.pos < self.lines.len() && self.lines[self.pos].ignorable() {
            self.pos += 1;
        }
        (self.pos < self.lines.len()).then_some(self.pos)
    }

    fn block(&mut self, indent: usize) -> Result<Node, String> {
        let Some(i) = self.peek() else {
            return Ok(Node::Null);
        };
        if is_item(&self.lines[i].text) {
            self.seq(indent)
        } else {
            self.map(indent)
        }
    }

    fn map(&mut self, indent: usize) -> Result<Node, String> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(i) = self.peek() {
            let line = self.lines[i].clone();
            if line.indent < indent || (line.indent == indent && is_item(&line.text)) {
                break;
            }
            if line.indent > indent {
                return Err(self.error(i, "unexpected indentation"));
            }
            let (key, rest) =
                split_key(&line.text).ok_or_else(|| self.error(i, "expected `key: value`"))?;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(self.error(i, &format!("duplicate key `{key}`")));
            }
            self.pos += 1;
            let value = self.value(i, indent, &rest)?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }

    fn seq(&mut self, indent: usize) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(i) = self.peek() {
            let line = self.lines[i].clone();
            if line.indent < indent || !is_item(&line.text) {
                if line.indent > indent {
                    return Err(self.error(i, "unexpected indentation in a sequence"));
                }
                break;
            }
            if line.indent > indent {
                return Err(self.error(i, "unexpected indentation in a sequence"));
            }
            let after_dash = &line.text[1..];
            let content = after_dash.trim_start_matches(' ');
            if content.is_empty() || content.starts_with('#') {
                self.pos += 1;
                items.push(self.nested(indent)?);
            } else if split_key(content).is_some() {
                // `- key: value`: a mapping whose first key sits after the dash.
                let column = line.indent + 1 + (after_dash.len() - content.len());
                self.lines[i].indent = column;
                self.lines[i].text = content.to_string();
                items.push(self.map(column)?);
            } else {
                self.pos += 1;
                items.push(inline(content).map_err(|e| self.error(i, &e))?);
            }
        }
        Ok(Node::Seq(items))
    }

    /// The value of a key or an item with nothing after it: a block indented deeper, or null.
    fn nested(&mut self, indent: usize) -> Result<Node, String> {
        match self.peek() {
            Some(i) if self.lines[i].indent > indent => {
                let deeper = self.lines[i].indent;
                self.block(deeper)
            }
            _ => Ok(Node::Null),
        }
    }

    fn value(&mut self, at: usize, indent: usize, rest: &str) -> Result<Node, String> {
        if rest.is_empty() || rest.starts_with('#') {
            return match self.peek() {
                // A sequence may sit at its key's own indentation.
                Some(i) if self.lines[i].indent == indent && is_item(&self.lines[i].text) => {
                    self.seq(indent)
                }
                _ => self.nested(indent),
            };
        }
        if let Some(chomp) = rest.strip_prefix('|') {
            return self.literal(at, indent, chomp);
        }
        inline(rest).map_err(|e| self.error(at, &e))
    }

    fn literal(&mut self, at: usize, indent: usize, chomp: &str) -> Result<Node, String> {
        if !matches!(chomp, "" | "-" | "+") {
            return Err(self.error(at, "only |, |- and |+ block scalars are read"));
        }
        let mut body: Vec<&str> = Vec::new();
        let mut block_indent = None;
        let start = self.pos;
        while self.pos < self.lines.len() {
            let line = &self.lines[self.pos];
            if line.text.is_empty() {
                body.push("");
            } else if line.indent > indent {
                let column = *block_indent.get_or_insert(line.indent);
                if line.indent < column {
                    break;
                }
                body.push(&line.raw[column..]);
            } else {
                break;
            }
            self.pos += 1;
        }
        if block_indent.is_none() && self.pos > start {
            return Err(self.error(at, "a block scalar with only blank lines"));
        }
        let mut text = body.join("\n");
        let kept = text.trim_end_matches('\n').len();
        match chomp {
            "-" => text.truncate(kept),
            "" => {
                text.truncate(kept);
                text.push('\n');
            }
            _ => text.push('\n'),
        }
        Ok(Node::Quoted(text))
    }
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `key: rest` (plain or quoted key); `None` when the text is not a mapping entry.
fn split_key(text: &str) -> Option<(String, String)> {
    let (key, after) = if let Some(quote @ ('"' | '\'')) = text.chars().next() {
        let end = text[1..].find(quote)? + 1;
        (text[1..end].to_string(), &text[end + 1..])
    } else {
        let colon = text
            .match_indices(':')
            .map(|(i, _)| i)
            .find(|&i| text[i + 1..].is_empty() || text[i + 1..].starts_with(' '))?;
        if text[..colon].contains(" #") {
            return None;
        }
        (text[..colon].to_string(), &text[colon..])
    };
    let rest = after.strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with(' ')) || key.is_empty() {
        return None;
    }
    Some((key, rest.trim().to_string()))
}

/// A value on the same line as its key or dash.
fn inline(text: &str) -> Result<Node, String> {
    if let Some(inner) = text.strip_prefix('[') {
        let (inner, after) = inner
            .split_once(']')
            .ok_or("a flow sequence must close on its line")?;
        no_trailing(after)?;
        if inner.trim().is_empty() {
            return Ok(Node::Seq(Vec::new()));
        }
        if inner.contains(['[', '{']) {
            return Err("nested flow collections are not read".into());
        }
        return inner
            .split(',')
            .map(|item| scalar(item.trim()))
            .collect::<Result<_, _>>()
            .map(Node::Seq);
    }
    if let Some(after) = text.strip_prefix("{}") {
        no_trailing(after)?;
        return Ok(Node::Map(Vec::new()));
    }
    scalar(text)
}

fn no_trailing(after: &str) -> Result<(), String> {
    let after = after.trim();
    if after.is_empty() || after.starts_with('#') {
        Ok(())
    } else {
        Err(format!("unexpected `{after}` after a flow collection"))
    }
}

fn scalar(text: &str) -> Result<Node, String> {
    match text.chars().next() {
        Some('"') => {
            let mut out = String::new();
            let mut chars = text[1..].char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        no_trailing(&text[i + 2..])?;
                        return Ok(Node::Quoted(out));
                    }
                    '\\' => match chars.next().map(|(_, e)| e) {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(e @ ('"' | '\\' | '/')) => out.push(e),
                        _ => return Err("an escape this reader does not know".into()),
                    },
                    c => out.push(c),
                }
            }
            Err("a double-quoted string must close on its line".into())
        }
        Some('\'') => {
            let body = &text[1..];
            let mut out = String::new();
            let mut rest = body;
            loop {
                let end = rest
                    .find('\'')
                    .ok_or("a single-quoted string must close on its line")?;
                out.push_str(&rest[..end]);
                if rest[end + 1..].starts_with('\'') {
                    out.push('\'');
                    rest = &rest[end + 2..];
                } else {
                    no_trailing(&rest[end + 1..])?;
                    return Ok(Node::Quoted(out));
                }
            }
        }
        Some('&' | '*' | '!' | '>' | '?' | '%' | '@' | '`' | '{' | '[' | '|') => Err(format!(
            "`{text}`: anchors, tags, folded blocks and such are not read"
        )),
        None => Ok(Node::Null),
        Some(_) => {
            let value = match text.find(" #") {
                Some(comment) => text[..comment].trim_end(),
                None => text,
            };
            if value.contains(": ") || value.ends_with(':') {
                return Err(format!("`{value}`: a colon in a plain scalar; quote it"));
            }
            Ok(Node::Plain(value.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_subset() {
        let docs = parse_documents(
            "# c\na: 1\nb:\n  - x\n  - k: v\n    n: \"q # not a comment\"\nc:\n- y\nd: |\n  l1\n\n  l2\ne: [a, 'b c']\nf: {}\n---\n---\ng: 0400 # octal\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d.at("b.1.n").and_then(Node::str), Some("q # not a comment"));
        assert_eq!(d.at("c.0").and_then(Node::str), Some("y"));
        assert_eq!(d.at("d").and_then(Node::str), Some("l1\n\nl2\n"));
        assert_eq!(d.at("e.1").and_then(Node::str), Some("b c"));
        assert_eq!(docs[1].to_resolved_json()["g"], "256");
    }

    #[test]
    fn refuses_what_it_does_not_read() {
        for bad in [
            "a: &x 1",
            "a: b: c",
            "a: >\n  x",
            "a: 1\na: 2",
            "a:\n\t- x",
            "a: [b, [c]]",
        ] {
            assert!(parse_documents(bad).is_err(), "{bad}");
        }
    }
}
