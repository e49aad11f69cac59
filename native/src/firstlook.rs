//! The part of `pipeline.normalize.language._first_look` before the classifier, for ASCII texts
//! (the common case): a stopword count over the first words, then the text without links,
//! mentions, hashtags and numbers, and its letter counts. Non-ASCII texts get `None` and take
//! the Python reference (`_py_first_look`), whose `str.lower`, `str.split` and regex classes
//! have Unicode meanings; for ASCII they are the ones below.
use std::collections::{HashMap, HashSet};

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

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

/// Python's `str.isspace` on ASCII (what `str.split()` and the regex `\s` take for spaces).
fn space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | 0x1C..=0x20)
}

fn word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
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

fn ascii_string(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// The stopword index of `language.py` (word -> language, unambiguous words only).
#[pyclass(frozen, module = "newspipe_native")]
pub struct FirstLook {
    index: HashMap<Vec<u8>, usize>,
    langs: Vec<Py<PyString>>,
    und: Py<PyString>,
}

#[pymethods]
impl FirstLook {
    #[new]
    fn new(py: Python<'_>, index: HashMap<String, usize>, langs: Vec<String>) -> PyResult<Self> {
        if index.values().any(|&k| k >= langs.len()) {
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
        let text = text.cast_exact::<PyString>().ok()?.to_str().ok()?;
        if !text.is_ascii() {
            return None;
        }
        let raw = text.as_bytes();
        let (guess, sure) = self.stopwords(raw);
        if sure {
            let lang = guess.and_then(|k| self.langs.get(k))?;
            return Some(lang.bind(py).clone().into_any());
        }
        let long = noise_free(raw.get(..MORE_CHARS + 200).unwrap_or(raw));
        let long = long.get(..MORE_CHARS).unwrap_or(&long);
        let clean = long.get(..MODEL_CHARS).unwrap_or(long);
        let letters = clean.iter().filter(|c| c.is_ascii_alphabetic()).count();
        let distinct: HashSet<u8> = clean
            .iter()
            .filter(|c| c.is_ascii_alphabetic())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if letters < MIN_LETTERS || distinct.len() < MIN_DISTINCT_LETTERS {
            return Some(self.und.bind(py).clone().into_any());
        }
        let guess = guess.and_then(|k| self.langs.get(k)).map(|l| l.bind(py).clone());
        let items = (guess, ascii_string(clean), ascii_string(long));
        PyTuple::new(
            py,
            [
                items.0.map_or_else(|| py.None().into_bound(py), |g| g.into_any()),
                PyString::new(py, &items.1).into_any(),
                PyString::new(py, &items.2).into_any(),
            ],
        )
        .ok()
        .map(|t| t.into_any())
    }
}

impl FirstLook {
    /// `_stopwords`: (best stopword language, whether it is sure).
    fn stopwords(&self, raw: &[u8]) -> (Option<usize>, bool) {
        let head: Vec<u8> = raw.iter().take(MAX_CHARS).map(|c| c.to_ascii_lowercase()).collect();
        let mut words: Vec<&[u8]> = head.split(|&c| space(c)).filter(|w| !w.is_empty()).collect();
        if raw.len() > MAX_CHARS {
            words.pop(); // probably cut in the middle
        }
        let found: Vec<(&[u8], usize)> =
            words.iter().filter_map(|w| self.index.get(*w).map(|&k| (*w, k))).collect();
        if found.len() < MIN_HITS {
            return (None, false);
        }
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for &(_, k) in &found {
            *counts.entry(k).or_default() += 1;
        }
        let n = words.len();
        if counts.len() == 1 {
            let distinct: HashSet<&[u8]> = found.iter().map(|&(w, _)| w).collect();
            let distinct = distinct.len();
            let hits = found.len();
            let sure = (distinct >= SURE_DISTINCT && hits as f64 >= SURE_SHARE * n as f64)
                || (distinct >= SURE_DISTINCT_MANY && hits as f64 >= SURE_SHARE_MANY * n as f64);
            return (found.first().map(|&(_, k)| k), sure);
        }
        let mut ranked: Vec<(usize, usize)> = counts.into_iter().map(|(k, c)| (c, k)).collect();
        ranked.sort_unstable();
        match ranked.as_slice() {
            [.., (second, _), (top, lang)] if second != top && top * 10 >= n => {
                (Some(*lang), false)
            }
            _ => (None, false),
        }
    }
}
