//! The part of Prometheus' Go templates that alert annotations in community rule sets use,
//! rendered by hand: `{{ $labels.node }}`, `{{ $value }}`, `{{ index $labels "x" }}`, the
//! `humanize*` functions, `printf`, `toUpper`/`toLower`, pipelines (`{{ $value | humanize }}`),
//! `{{-`/`-}}` whitespace trimming and comments. `.Labels` and `.Value` work as `$labels` and
//! `$value`. A missing label renders empty, as in Prometheus.
//!
//! Anything else (`if`, `range`, `query`, `$externalLabels`, parentheses) is left in the text
//! verbatim, action by action: an annotation that uses it reads oddly, but the rule still loads
//! and fires.

use super::gofmt;
use std::collections::BTreeMap;

/// What a template sees of one alert.
#[derive(Debug, Clone, Copy)]
pub struct Data<'a> {
    /// The labels of the result element (`$labels`).
    pub labels: &'a BTreeMap<String, String>,
    /// Its value (`$value`).
    pub value: f64,
}

/// Renders `template`; actions it does not know stay as written.
pub fn render(template: &str, data: &Data) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let inside = &rest[open + 2..];
        let Some(close) = closing(inside) else {
            break;
        };
        let action = &inside[..close];
        let verbatim = &rest[open..open + 2 + close + 2];
        let after = &inside[close + 2..];
        let (action, trim_before) = match action.strip_prefix('-') {
            Some(a) if a.starts_with(char::is_whitespace) => (a, true),
            _ => (action, false),
        };
        let (action, trim_after) = match action.strip_suffix('-') {
            Some(a) if a.ends_with(char::is_whitespace) => (a, true),
            _ => (action, false),
        };
        let before = &rest[..open];
        match evaluate(action.trim(), data) {
            Some(text) => {
                out.push_str(if trim_before {
                    before.trim_end()
                } else {
                    before
                });
                out.push_str(&text);
                rest = if trim_after {
                    after.trim_start()
                } else {
                    after
                };
            }
            None => {
                out.push_str(before);
                out.push_str(verbatim);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where the action's `}}` is, outside string literals.
fn closing(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (Some(b'"'), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (None, c @ (b'"' | b'`')) => quote = Some(c),
            (None, b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// A value inside a pipeline.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Num(f64),
    Str(String),
    /// `$labels` itself, for `index`.
    Labels,
}

/// One word of a command.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// `$value`, `$labels.node`, `.Labels.node`.
    Variable(String),
    Text(String),
    Number(f64),
    /// A function name.
    Name(String),
}

/// The action's text, or `None` when it is not one this renderer knows.
fn evaluate(action: &str, data: &Data) -> Option<String> {
    if action.starts_with("/*") && action.ends_with("*/") {
        return Some(String::new());
    }
    let mut piped: Option<Val> = None;
    for command in split_pipeline(action) {
        let tokens = tokenize(command)?;
        piped = Some(run(&tokens, piped, data)?);
    }
    match piped? {
        Val::Num(v) => Some(gofmt::value(v)),
        Val::Str(s) => Some(s),
        Val::Labels => None,
    }
}

/// The commands of a pipeline (`a | b | c`), split outside string literals.
fn split_pipeline(action: &str) -> Vec<&str> {
    let mut commands = Vec::new();
    let (mut start, mut quote) = (0, None::<char>);
    let mut escaped = false;
    for (i, c) in action.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '`') => quote = Some(c),
            (None, '|') => {
                commands.push(&action[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        escaped = false;
    }
    commands.push(&action[start..]);
    commands
}

fn tokenize(command: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = command.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = || {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
            w
        };
        let token = match c {
            '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => text.push(match chars.next()? {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        }),
                        other => text.push(other),
                    }
                }
                Token::Text(text)
            }
            '`' => {
                chars.next();
                let text: String = chars.by_ref().take_while(|&c| c != '`').collect();
                Token::Text(text)
            }
            '$' | '.' => Token::Variable(word()),
            '-' | '+' | '0'..='9' => Token::Number(word().parse().ok()?),
            c if c.is_ascii_alphabetic() => {
                let name = word();
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric())
                    .then_some(Token::Name(name))?
            }
            _ => return None,
        };
        tokens.push(token);
    }
    (!tokens.is_empty()).then_some(tokens)
}

/// The value of a variable, `None` for those not supported.
fn variable(name: &str, data: &Data) -> Option<Val> {
    match name {
        "$value" | ".Value" => Some(Val::Num(data.value)),
        "$labels" | ".Labels" => Some(Val::Labels),
        _ => {
            let label = name
                .strip_prefix("$labels.")
                .or_else(|| name.strip_prefix(".Labels."))?;
            Some(Val::Str(
                data.labels.get(label).cloned().unwrap_or_default(),
            ))
        }
    }
}

fn operand(token: &Token, data: &Data) -> Option<Val> {
    match token {
        Token::Variable(name) => variable(name, data),
        Token::Text(text) => Some(Val::Str(text.clone())),
        Token::Number(n) => Some(Val::Num(*n)),
        Token::Name(_) => None,
    }
}

/// One command of a pipeline, given what the previous one produced.
fn run(tokens: &[Token], piped: Option<Val>, data: &Data) -> Option<Val> {
    let Token::Name(function) = &tokens[0] else {
        // An operand starts a pipeline and stands alone.
        return match (tokens, piped) {
            ([only], None) => operand(only, data),
            _ => None,
        };
    };
    let mut args = tokens[1..]
        .iter()
        .map(|t| operand(t, data))
        .collect::<Option<Vec<Val>>>()?;
    args.extend(piped);
    let number = |args: &[Val]| match args {
        [Val::Num(v)] => Some(*v),
        [Val::Str(s)] => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let text = |args: &[Val]| match args {
        [Val::Str(s)] => Some(s.clone()),
        _ => None,
    };
    match function.as_str() {
        "humanize" => Some(Val::Str(gofmt::humanize(number(&args)?))),
        "humanize1024" => Some(Val::Str(gofmt::humanize1024(number(&args)?))),
        "humanizePercentage" => Some(Val::Str(gofmt::humanize_percentage(number(&args)?))),
        "humanizeDuration" => Some(Val::Str(gofmt::humanize_duration(number(&args)?))),
        "toUpper" => Some(Val::Str(text(&args)?.to_uppercase())),
        "toLower" => Some(Val::Str(text(&args)?.to_lowercase())),
        "index" => match args.as_slice() {
            [Val::Labels, Val::Str(key)] => {
                Some(Val::Str(data.labels.get(key).cloned().unwrap_or_default()))
            }
            _ => None,
        },
        "printf" => match args.split_first() {
            Some((Val::Str(format), rest)) => printf(format, rest).map(Val::Str),
            _ => None,
        },
        _ => None,
    }
}

/// Go's `printf` for the verbs annotations use (`%f %e %g %s %v %%`, with flags `-+0`, width
/// and precision); `None` when an argument is missing, left over or of the wrong kind.
fn printf(format: &str, args: &[Val]) -> Option<String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let (mut left, mut plus, mut zero) = (false, false, false);
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => left = true,
                '+' => plus = true,
                '0' => zero = true,
                _ => break,
            }
            chars.next();
        }
        let digits = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0) * 10 + d as usize);
                chars.next();
            }
            n
        };
        let width = digits(&mut chars).unwrap_or(0);
        let precision = match chars.peek() {
            Some('.') => {
                chars.next();
                Some(digits(&mut chars).unwrap_or(0))
            }
            _ => None,
        };
        let verb = chars.next()?;
        let arg = args.next()?;
        let (mut text, numeric) = match (verb, arg) {
            ('f' | 'F', Val::Num(v)) => (gofmt::f(*v, precision.unwrap_or(6)), true),
            ('e', Val::Num(v)) => (gofmt::e(*v, precision.unwrap_or(6)), true),
            ('g', Val::Num(v)) => (
                precision.map_or_else(|| gofmt::value(*v), |p| gofmt::g(*v, p)),
                true,
            ),
            ('v', Val::Num(v)) => (gofmt::value(*v), true),
            ('s' | 'v', Val::Str(s)) => (
                precision.map_or(s.clone(), |p| s.chars().take(p).collect()),
                false,
            ),
            _ => return None,
        };
        if numeric && plus && !text.starts_with(['-', '+']) {
            text.insert(0, '+');
        }
        let pad = width.saturating_sub(text.chars().count());
        if left {
            text.push_str(&" ".repeat(pad));
        } else if zero && numeric && text.chars().any(|c| c.is_ascii_digit()) {
            let sign = usize::from(text.starts_with(['-', '+']));
            text.insert_str(sign, &"0".repeat(pad));
        } else {
            text.insert_str(0, &" ".repeat(pad));
        }
        out.push_str(&text);
    }
    args.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(template: &str, expected: &str) {
        let labels = BTreeMap::from([
            ("instance".to_owned(), "nas:9100".to_owned()),
            ("node".to_owned(), "nas".to_owned()),
        ]);
        let data = Data {
            labels: &labels,
            value: 0.8512,
        };
        assert_eq!(render(template, &data), expected, "{template}");
    }

    #[test]
    fn labels_and_value() {
        check("no templates", "no templates");
        check("{{ $labels.node }} is down", "nas is down");
        check("{{$labels.instance}}", "nas:9100");
        check("{{ .Labels.node }} at {{ .Value }}", "nas at 0.8512");
        check("VALUE = {{ $value }}", "VALUE = 0.8512");
        check("missing: [{{ $labels.nothing }}]", "missing: []");
        check("{{ index $labels \"node\" }}", "nas");
        check("{{ $labels.node | toUpper }}", "NAS");
    }

    #[test]
    fn functions_and_pipelines() {
        check("{{ humanize $value }}", "851.2m");
        check("{{ $value | humanizePercentage }}", "85.12%");
        check("{{ humanizePercentage $value }} used", "85.12% used");
        check("{{ printf \"%.2f\" $value }}%", "0.85%");
        check("{{ $value | printf \"%.1f\" }}", "0.9");
        check("{{ printf \"%.0f%%\" 42.4 }}", "42%");
        check(
            "{{ printf \"%s has %5.1f\" $labels.node $value }}",
            "nas has   0.9",
        );
        check("{{ printf \"%-4s|\" $labels.node }}", "nas |");
        check("{{ printf \"%06.2f\" $value }}", "000.85");
        check("{{ humanizeDuration 3661 }}", "1h 1m 1s");
        check("{{ humanize1024 2048 }}B", "2kiB");
        check("{{ humanize \"1500\" }}", "1.5k");
    }

    #[test]
    fn trimming_and_comments() {
        check("a   {{- $labels.node -}}   b", "anasb");
        check("a {{/* a comment */}}b", "a b");
        check("{{-3}}", "-3");
    }

    #[test]
    fn unknown_actions_stay_verbatim() {
        check(
            "{{ if gt $value 0.5 }}high{{ end }}",
            "{{ if gt $value 0.5 }}high{{ end }}",
        );
        check(
            "{{ $externalLabels.cluster }}/{{ $labels.node }}",
            "{{ $externalLabels.cluster }}/nas",
        );
        check("{{ printf \"%d\" $value }}", "{{ printf \"%d\" $value }}");
        check(
            "{{ printf \"%.2f %.2f\" $value }}",
            "{{ printf \"%.2f %.2f\" $value }}",
        );
        check("{{ $value $value }}", "{{ $value $value }}");
        check(
            "{{ with query \"up\" }}x{{ end }}",
            "{{ with query \"up\" }}x{{ end }}",
        );
        check("unclosed {{ $value", "unclosed {{ $value");
        check("{{ printf \"}}\" }}", "}}");
        check("{{ humanize $labels.node }}", "{{ humanize $labels.node }}");
    }
}
