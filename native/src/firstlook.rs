//! The part of `pipeline.normalize.language._first_look` before the classifier, for ASCII texts
//! (the common case): a stopword count over the first words, then the text without links,
//! mentions, hashtags and numbers, and its letter counts. Non-ASCII texts get `None` and take
//! the Python reference (`_py_first_look`), whose `str.lower`, `str.split` and regex classes
//! have Unicode meanings; for ASCII they are the ones below.
use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::fxhash::FxMap;

// the constants of pipeline/normalize/language.py
const MAX_CHARS: usize = 300;
const MORE_CHARS: usize = 900;
const MODEL_CHARS: usize = 300;
const SURE_DISTINCT: usize = 3;
const SURE_SHARE: f64 = 0.2;
const SURE_DISTINCT_MANY: usize = 4;
const SURE_SHARE_MANY: f64 = 0.1;
const MIN_HITS: usize = 2;
const MIN_LETTERS: usize = 8;
const MIN_DISTINCT_LETTERS: usize = 5;
/// most stopword languages the fixed-size tallies hold (language.py has seven)
const MAX_LANGS: usize = 16;

/// Python's `str.isspace` on ASCII (what `str.split()` and the regex `\s` take for spaces).
fn space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | 0x1C..=0x20)
}

fn word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `_NOISE` can match anywhere in `s` (most comments: no link, tag or number).
fn may_have_noise(s: &[u8]) -> bool {
    s.iter().enumerate().any(|(i, &c)| match c {
        b'0'..=b'9' | b'@' | b'#' => true,
        b'h' => s[i..].starts_with(b"http"),
        b'w' => s[i..].starts_with(b"www."),
        _ => false,
    })
}

/// `_NOISE.sub(" ", s)`: `https?://\S+|www\.\S+|[@#][\w.\-]+|\d+`, leftmost first.
fn noise_free(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let rest = &s[i..];
        let non_space_after = |skip: usize| {
            let n = rest.get(skip..).map_or(0, |r| r.iter().take_while(|&&c| !space(c)).count());
            (n > 0).then_some(skip + n)
        };
        let found = if rest.starts_with(b"https://") {
            non_space_after(8)
        } else if rest.starts_with(b"http://") {
            non_space_after(7)
        } else {
            None
        }
        .or_else(|| if rest.starts_with(b"www.") { non_space_after(4) } else { None })
        .or_else(|| {
            if b == b'@' || b == b'#' {
                let n = rest[1..]
                    .iter()
                    .take_while(|&&c| word_char(c) || c == b'.' || c == b'-')
                    .count();
                (n > 0).then_some(1 + n)
            } else {
                None
            }
        })
        .or_else(|| {
            let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            (n > 0).then_some(n)
        });
        match found {
            Some(len) => {
                out.push(b' ');
                i += len;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// An ASCII slice as the `str` it is (every byte < 0x80 is its own UTF-8 character).
fn ascii_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// The stopword index of `language.py` (word -> language, unambiguous words only).
#[pyclass(frozen, module = "newspipe_native")]
pub struct FirstLook {
    index: FxMap<Vec<u8>, usize>,
    langs: Vec<Py<PyString>>,
    und: Py<PyString>,
}

#[pymethods]
impl FirstLook {
    #[new]
    fn new(py: Python<'_>, index: HashMap<String, usize>, langs: Vec<String>) -> PyResult<Self> {
        if index.values().any(|&k| k >= langs.len()) || langs.len() > MAX_LANGS {
            return Err(pyo3::exceptions::PyValueError::new_err("stopword language out of range"));
        }
        Ok(FirstLook {
            index: index.into_iter().map(|(w, k)| (w.into_bytes(), k)).collect(),
            langs: langs.iter().map(|l| PyString::new(py, l).unbind()).collect(),
            und: PyString::new(py, "und").unbind(),
        })
    }

    /// `_first_look(text)` for an ASCII text: the language when stopwords or shape decide it,
    /// else (stopword guess or None, cleaned head, longer cleaned text); None for other texts.
    fn look<'py>(&self, py: Python<'py>, text: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
        let text_obj = text.cast_exact::<PyString>().ok()?;
        let text = text_obj.to_str().ok()?;
        if !text.is_ascii() {
            return None;
        }
        let raw = text.as_bytes();
        let (guess, sure) = self.stopwords(raw);
        if sure {
            let lang = guess.and_then(|k| self.langs.get(k))?;
            return Some(lang.bind(py).clone().into_any());
        }
        let window = raw.get(..MORE_CHARS + 200).unwrap_or(raw);
        let cleaned;
        let noisy = may_have_noise(window);
        let long = if noisy {
            cleaned = noise_free(window);
            &cleaned[..]
        } else {
            window
        };
        let long = long.get(..MORE_CHARS).unwrap_or(long);
        let clean = long.get(..MODEL_CHARS).unwrap_or(long);
        let mut letters = 0;
        let mut seen = 0u32; // one bit per letter, case ignored
        for &c in clean {
            if c.is_ascii_alphabetic() {
                letters += 1;
                seen |= 1 << (c.to_ascii_lowercase() - b'a');
            }
        }
        if letters < MIN_LETTERS || (seen.count_ones() as usize) < MIN_DISTINCT_LETTERS {
            return Some(self.und.bind(py).clone().into_any());
        }
        let guess = match guess.and_then(|k| self.langs.get(k)) {
            Some(lang) => lang.bind(py).clone().into_any(),
            None => py.None().into_bound(py),
        };
        // the text itself when nothing was cut or cleaned out of it, and one string for both
        // when the longer text is no longer (equal strings: the reference cannot tell)
        let clean_obj = if !noisy && clean.len() == raw.len() {
            text_obj.clone().into_any()
        } else {
            PyString::new(py, ascii_str(clean)).into_any()
        };
        let long_obj = if long.len() == clean.len() {
            clean_obj.clone()
        } else {
            PyString::new(py, ascii_str(long)).into_any()
        };
        PyTuple::new(py, [guess, clean_obj, long_obj]).ok().map(|t| t.into_any())
    }
}

impl FirstLook {
    /// `_stopwords`: (best stopword language, whether it is sure). Tallies in fixed arrays:
    /// 300 characters hold at most 150 words, and there are a handful of languages.
    fn stopwords(&self, raw: &[u8]) -> (Option<usize>, bool) {
        let mut head = [0u8; MAX_CHARS];
        let head_len = raw.len().min(MAX_CHARS);
        for (d, s) in head.iter_mut().zip(&raw[..head_len]) {
            *d = s.to_ascii_lowercase();
        }
        let head = &head[..head_len];
        // the words, as (start, end) in `head`: 300 characters hold at most 150
        let mut spans = [(0u16, 0u16); MAX_CHARS / 2 + 1];
        let mut n = 0;
        let mut start = None;
        for (i, &c) in head.iter().chain(std::iter::once(&b' ')).enumerate() {
            match (space(c), start) {
                (true, Some(s0)) => {
                    spans[n] = (s0 as u16, i as u16);
                    n += 1;
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        if raw.len() > MAX_CHARS && n > 0 {
            n -= 1; // the last word, probably cut in the middle
        }
        let mut found: [(&[u8], usize); MAX_CHARS / 2 + 1] = [(&[], 0); MAX_CHARS / 2 + 1];
        let mut hits = 0;
        for &(s0, e) in &spans[..n] {
            let w = &head[s0 as usize..e as usize];
            if let Some(&k) = self.index.get(w) {
                found[hits] = (w, k);
                hits += 1;
            }
        }
        let found = &found[..hits];
        if hits < MIN_HITS {
            return (None, false);
        }
        let mut counts = [0usize; MAX_LANGS];
        for &(_, k) in found {
            counts[k] += 1;
        }
        let kinds = counts.iter().filter(|&&c| c > 0).count();
        if kinds == 1 {
            let distinct =
                (0..hits).filter(|&i| found[..i].iter().all(|&(w, _)| w != found[i].0)).count();
            let sure = (distinct >= SURE_DISTINCT && hits as f64 >= SURE_SHARE * n as f64)
                || (distinct >= SURE_DISTINCT_MANY && hits as f64 >= SURE_SHARE_MANY * n as f64);
            return (Some(found[0].1), sure);
        }
        // the most hits; a tie for the most is no clear winner
        let top = counts.iter().copied().max().unwrap_or(0);
        let mut leaders = counts.iter().enumerate().filter(|&(_, &c)| c == top);
        match (leaders.next(), leaders.next()) {
            (Some((lang, _)), None) if top * 10 >= n => (Some(lang), false),
            _ => (None, false),
        }
    }
}
