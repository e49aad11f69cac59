//! Every text-derived signal of comment moderation in one call per batch
//! (`pipeline.moderation.signals.SignalScanner`): the editors' words (`WordLists`, moderation.rs),
//! the link domains (`signals.link_domains`) and shouting (`signals.capitals` and the settings'
//! test), so that the Python policy only combines them with the author's and the dedup signals.
//!
//! The Python functions are the reference. `link_domains` splits `text.lower()` on Python's
//! whitespace and runs one regular expression per token; both are reproduced here: the
//! whitespace as the interpreter's own set of code points (handed in once), the lowering with
//! the interpreter's own table (`CaseTables`), and the regular expression `_LINK` as the one path
//! its backtracking can take to a match (see `host`). A text Rust cannot borrow as UTF-8 (a lone
//! surrogate) is left to the Python functions.
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::moderation::{CaseTables, Tables, WordLists};

/// What `strip` takes off a token's ends before the link pattern (`signals._EDGES`).
const EDGES: &[char] = &[
    '(', ')', '[', ']', '<', '>', '{', '}', '"', '\'', '`', '\u{201c}', '\u{201d}', '\u{2018}',
    '\u{2019}', ',', ';', '!', '?', '*',
];
/// The top-level domains of `_LINK`'s bare-host branch. Their order does not matter: after one of
/// them, the pattern needs the token's end or one of `/?#:`, which a longer one of which it is a
/// prefix cannot also have.
const TLDS: &[&[u8]] = &[
    b"com", b"net", b"org", b"info", b"biz", b"io", b"co", b"ly", b"me", b"gl", b"ru", b"cn",
    b"uk", b"de", b"us", b"tv", b"xyz", b"top", b"site", b"online", b"club", b"link", b"click",
    b"gov", b"edu",
];

type Words = Option<Vec<String>>;
/// (index in the batch, (banned words, suspect words, link domains, shouting (ratio, letters)))
type Hit = (usize, (Words, Words, Words, Option<(f64, i64)>));

/// The shouting settings and the tables the link scan needs; the word lists come per call.
#[pyclass(frozen, module = "newspipe_native")]
pub struct TextSignals {
    tables: Arc<Tables>,
    // the characters `str.split()` splits on (`str.isspace()`): the ASCII ones as bits, the
    // others (a couple of dozen) sorted
    ascii_spaces: u128,
    spaces: Vec<char>,
    min_capitals: i64,
    min_letters: i64,
    ratio: f64,
}

#[pymethods]
impl TextSignals {
    fn splits(&self, c: char) -> bool {
        if c.is_ascii() {
            (self.ascii_spaces >> (c as u32)) & 1 == 1
        } else {
            self.spaces.binary_search(&c).is_ok()
        }
    }

    /// `spaces`: the code points `str.isspace()` is true of; shouting is at least `ratio`
    /// capitals among at least `min_letters` ASCII letters, and `capitals` stops counting below
    /// `min_capitals` capitals (as the Python function does).
    #[new]
    fn new(
        tables: &Bound<'_, CaseTables>,
        spaces: Vec<u32>,
        min_capitals: i64,
        min_letters: i64,
        ratio: f64,
    ) -> Self {
        let mut spaces: Vec<char> = spaces.into_iter().filter_map(char::from_u32).collect();
        spaces.sort_unstable();
        let ascii_spaces =
            spaces.iter().filter(|c| c.is_ascii()).fold(0u128, |bits, &c| bits | 1 << (c as u32));
        spaces.retain(|c| !c.is_ascii());
        let tables = tables.get().tables();
        TextSignals { tables, ascii_spaces, spaces, min_capitals, min_letters, ratio }
    }

    /// The texts with any signal, each as (index, (banned, suspect, domains, shouting)) with
    /// None for a signal absent, and the indices of the texts left to Python.
    fn scan(
        &self,
        texts: Vec<Bound<'_, PyString>>,
        words: Option<&Bound<'_, WordLists>>,
    ) -> (Vec<Hit>, Vec<usize>) {
        let words = words.map(|w| w.get());
        let mut hits = Vec::new();
        let mut left = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let Ok(text) = t.to_str() else {
                left.push(i);
                continue;
            };
            let (banned, suspect) = match words {
                Some(w) => w.found(text),
                None => (Vec::new(), Vec::new()),
            };
            let domains = self.domains(text);
            let shouting = self.shouting(text);
            if banned.is_empty() && suspect.is_empty() && domains.is_empty() && shouting.is_none() {
                continue;
            }
            let some = |v: Vec<String>| if v.is_empty() { None } else { Some(v) };
            hits.push((i, (some(banned), some(suspect), some(domains), shouting)));
        }
        (hits, left)
    }

    /// `signals.link_domains(text)`, or None for a text left to Python (the tests compare them).
    fn link_domains(&self, text: &Bound<'_, PyString>) -> Option<Vec<String>> {
        Some(self.domains(text.to_str().ok()?))
    }

    /// `signals.capitals(text, min_capitals)`, or None for a text left to Python.
    fn capitals(&self, text: &Bound<'_, PyString>, min_capitals: i64) -> Option<(f64, i64)> {
        Some(capitals(text.to_str().ok()?, min_capitals))
    }

    /// Whether `str.split()` splits on code point `c` (the tests compare every one).
    fn is_space(&self, c: u32) -> bool {
        char::from_u32(c).is_some_and(|c| self.splits(c))
    }
}

impl TextSignals {
    /// (ratio, letters) when `text` shouts by the settings (`Moderator._one`'s test on
    /// `capitals`).
    fn shouting(&self, text: &str) -> Option<(f64, i64)> {
        let (ratio, letters) = capitals(text, self.min_capitals);
        (letters >= self.min_letters && ratio >= self.ratio).then_some((ratio, letters))
    }

    /// `link_domains`: the hosts of the links among the whitespace-separated tokens of the
    /// lowered text, rstripped of `.-`, each once, in order of first appearance.
    fn domains(&self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if !text.contains("://") && !has_url_hint(text.as_bytes()) {
            return out;
        }
        let mut lowered = String::with_capacity(text.len());
        for ch in text.chars() {
            if ch.is_ascii() {
                lowered.push(ch.to_ascii_lowercase());
            } else {
                // a capital sigma lowers to a final or a plain small sigma by its neighbours;
                // either is a character no link has, so the table's context-free one will do
                match self.tables.lower.get(&ch) {
                    Some(s) => lowered.push_str(s),
                    None => lowered.push(ch),
                }
            }
        }
        for token in lowered.split(|c: char| self.splits(c)) {
            if !token.contains('.') {
                continue;
            }
            let Some(host) = host(token.trim_matches(EDGES).as_bytes()) else {
                continue;
            };
            let Ok(host) = std::str::from_utf8(host) else {
                continue; // cannot happen: a host is ASCII
            };
            let host = host.trim_end_matches(['.', '-']);
            if !host.is_empty() && !out.iter().any(|h| h == host) {
                out.push(host.to_string());
            }
        }
        out
    }
}

/// `signals.capitals`: (capitals / letters, letters) over the ASCII letters of `text`, (0.0, 0)
/// with fewer than `min_capitals` capitals. The ratio is the same division as Python's.
fn capitals(text: &str, min_capitals: i64) -> (f64, i64) {
    // counted in byte lanes, a chunk at a time, which the compiler vectorises
    let (mut upper, mut lower) = (0i64, 0i64);
    for chunk in text.as_bytes().chunks(255) {
        let (mut u, mut l) = (0u8, 0u8);
        for &c in chunk {
            u += u8::from(c.is_ascii_uppercase());
            l += u8::from(c.is_ascii_lowercase());
        }
        upper += i64::from(u);
        lower += i64::from(l);
    }
    if upper < min_capitals {
        return (0.0, 0);
    }
    let letters = upper + lower;
    let ratio = if letters > 0 { upper as f64 / letters as f64 } else { 0.0 };
    (ratio, letters)
}

/// `_URL_HINT` (`\.[a-zA-Z]{2}`): a dot and two ASCII letters, on the text as written.
fn has_url_hint(b: &[u8]) -> bool {
    let mut rest = b;
    while let Some(dot) = rest.iter().position(|&c| c == b'.') {
        rest = rest.get(dot + 1..).unwrap_or_default();
        if let [x, y, ..] = rest {
            if x.is_ascii_alphabetic() && y.is_ascii_alphabetic() {
                return true;
            }
        }
    }
    false
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_label(b: u8) -> bool {
    is_alnum(b) || b == b'-'
}

fn at(b: &[u8], i: usize, test: fn(u8) -> bool) -> bool {
    b.get(i).is_some_and(|&c| test(c))
}

/// The end of the run of `[a-z0-9-]` from `p`.
fn run_end(b: &[u8], p: usize) -> usize {
    let mut q = p;
    while at(b, q, is_label) {
        q += 1;
    }
    q
}

/// `_LINK.match(token)`'s host group: the scheme (or `www.`) branch, and failing that the
/// bare-host branch, both at the token's start.
fn host(b: &[u8]) -> Option<&[u8]> {
    let prefix = [&b"http://"[..], b"https://", b"ftp://", b"www."]
        .into_iter()
        .find(|p| b.starts_with(p))
        .map(<[u8]>::len);
    if let Some(s) = prefix {
        // `(?:www\.)?` is greedy: with the second `www.` first, without it if that fails
        let rest = b.get(s..).unwrap_or_default();
        if rest.starts_with(b"www.") {
            if let Some(end) = dotted_host(b, s + 4) {
                return b.get(s + 4..end);
            }
        }
        if let Some(end) = dotted_host(b, s) {
            return b.get(s..end);
        }
    }
    bare_host(b)
}

/// `[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)+` at `p`, nothing required after it: its
/// end. The first label can only be the whole run of label characters from `p` (anything shorter
/// is followed by a label character, not the dot the pattern needs next), which must end with a
/// letter or digit and be followed by a dot and a label character; then the greedy repetition
/// takes every further `.label`.
fn dotted_host(b: &[u8], p: usize) -> Option<usize> {
    if !at(b, p, is_alnum) {
        return None;
    }
    let q = run_end(b, p);
    if !at(b, q - 1, is_alnum) || b.get(q) != Some(&b'.') || !at(b, q + 1, is_label) {
        return None;
    }
    let mut end = q;
    while b.get(end) == Some(&b'.') && at(b, end + 1, is_label) {
        end = run_end(b, end + 1);
    }
    Some(end)
}

/// `((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:com|...))(?![a-z0-9-])(?:[/?#:]|$)` at the start:
/// its group. Each `label.` can only be a whole run of label characters ending in a letter or
/// digit, followed by a dot; the greedy repetition takes all of them, and backtracking to fewer
/// never succeeds (the domain would then start a label that goes on with a label character or a
/// dot, where the pattern needs the end or one of `/?#:`).
fn bare_host(b: &[u8]) -> Option<&[u8]> {
    let mut e = 0;
    loop {
        if !at(b, e, is_alnum) {
            break;
        }
        let q = run_end(b, e);
        if !at(b, q - 1, is_alnum) || b.get(q) != Some(&b'.') {
            break;
        }
        e = q + 1;
    }
    if e == 0 {
        return None;
    }
    let rest = b.get(e..)?;
    TLDS.iter().find_map(|tld| {
        let end = e + tld.len();
        let ends = match b.get(end) {
            None => true,
            Some(c) => matches!(c, b'/' | b'?' | b'#' | b':'),
        };
        (rest.starts_with(tld) && ends).then(|| b.get(..end)).flatten()
    })
}

/// Scores at and above this are left to Python's `round`: below it, a score times 10^4 is an
/// integer of at most 53 bits, so the quotient below is exact before its one rounding.
const ROUND_LIMIT: f64 = (1u64 << 39) as f64;

/// `[round(x, 4) for x in values]` (Python's: the decimal with four places nearest to the exact
/// binary value, ties to even, then the double nearest to that decimal), and the indices of
/// the values left to Python (not finite, or too large for the exact integer arithmetic).
#[pyfunction]
pub fn round4(values: Vec<f64>) -> (Vec<f64>, Vec<usize>) {
    let mut left = Vec::new();
    let out = values
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if x.is_finite() && x.abs() < ROUND_LIMIT {
                round_decimal4(x)
            } else {
                left.push(i);
                x
            }
        })
        .collect();
    (out, left)
}

/// `round(x, 4)` for a finite `x` below `ROUND_LIMIT` in magnitude.
fn round_decimal4(x: f64) -> f64 {
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64;
    let fraction = bits & ((1u64 << 52) - 1);
    // |x| = mantissa * 2^-shift exactly
    let (mantissa, shift) = if exponent == 0 {
        (fraction, 1074i64)
    } else {
        (fraction | (1u64 << 52), 1075 - exponent)
    };
    let scaled = u128::from(mantissa) * 10_000; // |x| * 10^4 * 2^shift, below 2^67
    let n: u128 = if shift <= 0 {
        scaled << shift.unsigned_abs().min(60) // not reached below ROUND_LIMIT
    } else if shift >= 68 {
        0 // |x| * 10^4 < 2^67 / 2^68: nearer to 0 than to 1
    } else {
        let k = shift as u32;
        let whole = scaled >> k;
        let rest = scaled & ((1u128 << k) - 1);
        let half = 1u128 << (k - 1);
        if rest > half || (rest == half && whole & 1 == 1) {
            whole + 1
        } else {
            whole
        }
    };
    // n < 2^53: exact as a double, and one correctly rounded division gives the double nearest
    // to n / 10^4, as Python's strtod of the decimal does
    let r = n as f64 / 10_000.0;
    r.copysign(x)
}
