//! The differential script format (documented in `tests/diff/README.md`):
//! a redis-cli compatible tokenizer and the parser for commands and
//! `@directives`.

/// How a command's replies from the two servers are compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The full reply tree must be identical (the default).
    Exact,
    /// `@sorted`: elements of the top-level aggregate are sorted first.
    Sorted,
    /// `@type`: only the shape must match (see `Reply::shape`).
    Type,
    /// `@skip-compare`: sent to both, not compared.
    Skip,
    /// `@differs-7.0 REASON`: sent to both, not compared, listed as a note.
    Differs(String),
    /// `@range LO HI`: both replies must be integers within `LO..=HI`.
    Range(i64, i64),
}

/// One executable step of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `@sleep MS`
    Sleep(u64),
    /// `@conn NAME`
    Conn(String),
    /// `@read N`: read N more replies (pushed messages) on the current
    /// connection of both servers, without sending, and compare them.
    Read(usize),
    /// A command line plus the directives that preceded it.
    Command(CommandStep),
}

/// A command and its comparison settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandStep {
    /// The arguments, after tokenizing.
    pub args: Vec<Vec<u8>>,
    /// The source line as written (for reports).
    pub text: String,
    /// How to compare.
    pub compare: Compare,
    /// `@expect`: the Redis reply must render (compactly) to this.
    pub expect: Option<String>,
    /// `@scan-all`: iterate a SCAN-family cursor to 0 and compare the
    /// sorted union of everything returned.
    pub scan_all: bool,
}

/// A step with the 1-based line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// 1-based line number.
    pub line: usize,
    /// The step.
    pub step: Step,
}

/// Split a line into arguments exactly like redis-cli (`sdssplitargs`):
/// whitespace separates; `"..."` understands `\n \r \t \b \a \\ \"` and
/// `\xHH`; `'...'` understands only `\'`; a closing quote must be followed
/// by whitespace or the end of the line.
pub fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = line.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                let Some(&c) = bytes.get(i) else {
                    return Err("unbalanced double quotes".to_string());
                };
                if c == b'\\' && i + 3 < bytes.len() && bytes[i + 1] == b'x' {
                    let hex = &bytes[i + 2..i + 4];
                    if hex.iter().all(u8::is_ascii_hexdigit) {
                        let s = std::str::from_utf8(hex).expect("hex digits are ASCII");
                        current.push(u8::from_str_radix(s, 16).expect("checked hex"));
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < bytes.len() {
                    let e = bytes[i + 1];
                    current.push(match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    i += 2;
                } else if c == b'"' {
                    if i + 1 < bytes.len() && !bytes[i + 1].is_ascii_whitespace() {
                        return Err("closing quote must be followed by a space".to_string());
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                    i += 1;
                }
            } else if in_single {
                let Some(&c) = bytes.get(i) else {
                    return Err("unbalanced single quotes".to_string());
                };
                if c == b'\\' && bytes.get(i + 1) == Some(&b'\'') {
                    current.push(b'\'');
                    i += 2;
                } else if c == b'\'' {
                    if i + 1 < bytes.len() && !bytes[i + 1].is_ascii_whitespace() {
                        return Err("closing quote must be followed by a space".to_string());
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                    i += 1;
                }
            } else {
                match bytes.get(i) {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(&c) => current.push(c),
                }
                i += 1;
            }
        }
        args.push(current);
    }
}

/// Directives that apply to the next command, collected until it comes.
#[derive(Default)]
struct Pending {
    compare: Option<(usize, Compare)>,
    expect: Option<String>,
    scan_all: bool,
    first_line: Option<usize>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.first_line.is_none()
    }

    fn set_compare(&mut self, line: usize, compare: Compare) -> Result<(), String> {
        if let Some((prev, _)) = &self.compare {
            return Err(format!(
                "a comparison directive was already given on line {prev} for the same command"
            ));
        }
        self.compare = Some((line, compare));
        Ok(())
    }
}

/// Parse a whole script. Errors carry the 1-based line number.
pub fn parse_script(text: &str) -> Result<Vec<Located>, (usize, String)> {
    let mut steps = Vec::new();
    let mut pending = Pending::default();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(directive) = line.strip_prefix('@') {
            let (name, rest) = match directive.split_once(char::is_whitespace) {
                Some((n, r)) => (n, r.trim()),
                None => (directive, ""),
            };
            let err = |msg: String| (line_no, msg);
            let no_arg = |what: &str| -> Result<(), (usize, String)> {
                if rest.is_empty() {
                    Ok(())
                } else {
                    Err((line_no, format!("@{what} takes no argument")))
                }
            };
            match name {
                "sleep" | "conn" | "read" => {
                    if !pending.is_empty() {
                        return Err(err(format!(
                            "@{name} between a directive and its command (line {})",
                            pending.first_line.unwrap_or(0)
                        )));
                    }
                    let step = if name == "sleep" {
                        let ms: u64 = rest
                            .parse()
                            .map_err(|_| err("@sleep needs milliseconds".to_string()))?;
                        Step::Sleep(ms)
                    } else if name == "read" {
                        let n: usize = rest
                            .parse()
                            .map_err(|_| err("@read needs a count".to_string()))?;
                        Step::Read(n)
                    } else {
                        if rest.is_empty() || rest.contains(char::is_whitespace) {
                            return Err(err("@conn needs one NAME".to_string()));
                        }
                        Step::Conn(rest.to_string())
                    };
                    steps.push(Located {
                        line: line_no,
                        step,
                    });
                    continue;
                }
                "sorted" => {
                    no_arg(name)?;
                    pending.set_compare(line_no, Compare::Sorted).map_err(err)?;
                }
                "type" => {
                    no_arg(name)?;
                    pending.set_compare(line_no, Compare::Type).map_err(err)?;
                }
                "skip-compare" => {
                    no_arg(name)?;
                    pending.set_compare(line_no, Compare::Skip).map_err(err)?;
                }
                "differs-7.0" => {
                    if rest.is_empty() {
                        return Err(err("@differs-7.0 needs a reason".to_string()));
                    }
                    pending
                        .set_compare(line_no, Compare::Differs(rest.to_string()))
                        .map_err(err)?;
                }
                "range" => {
                    let bounds: Vec<i64> = rest
                        .split_whitespace()
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .map_err(|_| err("@range needs two integers LO HI".to_string()))?;
                    let [lo, hi] = bounds[..] else {
                        return Err(err("@range needs two integers LO HI".to_string()));
                    };
                    if lo > hi {
                        return Err(err("@range: LO is greater than HI".to_string()));
                    }
                    pending
                        .set_compare(line_no, Compare::Range(lo, hi))
                        .map_err(err)?;
                }
                "expect" => {
                    if rest.is_empty() {
                        return Err(err("@expect needs a reply literal".to_string()));
                    }
                    if pending.expect.is_some() {
                        return Err(err("@expect given twice for one command".to_string()));
                    }
                    pending.expect = Some(rest.to_string());
                }
                "scan-all" => {
                    no_arg(name)?;
                    pending.scan_all = true;
                }
                _ => return Err(err(format!("unknown directive @{name}"))),
            }
            pending.first_line.get_or_insert(line_no);
            continue;
        }
        let args = split_args(line).map_err(|e| (line_no, e))?;
        let (compare, expect, scan_all) = {
            let p = std::mem::take(&mut pending);
            (
                p.compare.map(|(_, c)| c).unwrap_or(Compare::Exact),
                p.expect,
                p.scan_all,
            )
        };
        if scan_all {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
            let cursor_at = if name == "SCAN" { 1 } else { 2 };
            if !name.ends_with("SCAN") || args.len() <= cursor_at {
                return Err((
                    line_no,
                    "@scan-all needs SCAN/SSCAN/HSCAN/ZSCAN with a cursor".to_string(),
                ));
            }
        }
        steps.push(Located {
            line: line_no,
            step: Step::Command(CommandStep {
                args,
                text: line.to_string(),
                compare,
                expect,
                scan_all,
            }),
        });
    }
    if let Some(line) = pending.first_line {
        return Err((line, "directive not followed by a command".to_string()));
    }
    Ok(steps)
}
