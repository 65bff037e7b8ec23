//! Prometheus' text exposition format (version 0.0.4): writing a metric
//! family, and reading samples back (what the Lab 4 checks scrape from a
//! student's service — any client library's output).

use std::fmt::Write;

/// Appends one family: its HELP and TYPE lines, then `name{labels} value`
/// for each sample (`labels` written in full, `{a="b"}`, or empty).
pub fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: impl IntoIterator<Item = (String, i64)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// A label value in the text format: backslash, double quote and newline escaped.
pub fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One sample read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// The samples of `text`; a line that is not a sample, comment or blank is
/// an error naming its number.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        samples.push(sample(line).ok_or_else(|| format!("line {} is not a metric sample: {line:?}", n + 1))?);
    }
    Ok(samples)
}

fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inside) = rest.strip_prefix('{') {
        let mut chars = inside.char_indices();
        let mut key = String::new();
        let close = loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => break i,
                ',' | ' ' => {}
                '=' => {
                    let (_, '"') = chars.next()? else { return None };
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                other => key.push(other),
            }
        };
        rest = &inside[close + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    (!name.is_empty()).then(|| Sample { name: name.to_string(), labels, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_read_back_with_escaped_labels_and_timestamps() {
        let text = "# HELP x_total help\n# TYPE x_total counter\nx_total 3\n\
            lag{group=\"a \\\"b\\\"\",partition=\"0\"} 12 1700000000000\nup +Inf\n";
        let s = parse(text).unwrap();
        assert_eq!(s[0], Sample { name: "x_total".into(), labels: vec![], value: 3.0 });
        assert_eq!(s[1].labels, [("group".to_string(), "a \"b\"".to_string()), ("partition".into(), "0".into())]);
        assert_eq!(s[1].value, 12.0);
        assert_eq!(s[2].value, f64::INFINITY);
        assert!(parse("lag{group=\"a\" 1\n").unwrap_err().contains("line 1"));
    }

    #[test]
    fn what_family_writes_parses_back() {
        let mut out = String::new();
        family(&mut out, "m", "gauge", "h", [(format!("{{k=\"{}\"}}", label("a\"b")), 5)]);
        let s = parse(&out).unwrap();
        assert_eq!((s[0].labels[0].1.as_str(), s[0].value), ("a\"b", 5.0));
    }
}
