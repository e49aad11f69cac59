//! Comment moderation's per-text loops: the toxicity model's tokenizer, vocabulary lookup and
//! scoring (`pipeline.moderation.toxicity.ToxicityModel._py_score_many`), and the editors' word lists on word
//! boundaries (`pipeline.moderation.signals.WordMatcher._py_find`).
//!
//! Python's `str.lower`, `str.casefold` and the `re` module's `\w` are the reference. Rust's own
//! Unicode tables follow another Unicode version and define "alphanumeric" differently, so none
//! is used for a non-ASCII character: `CaseTables` holds the interpreter's own answers, computed
//! once in Python for every code point. The one context-dependent mapping (`str.lower` of a
//! capital sigma, final or not) is not reproduced: a text holding one gets `None`, and so does a
//! text Rust cannot borrow as UTF-8 (lone surrogates); the caller scores those in Python.
use crate::fxhash::FxMap;
use std::collections::HashMap;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

const CODE_POINTS: usize = 0x11_0000;
const CAPITAL_SIGMA: char = '\u{3a3}';

type Vocabulary = FxMap<Box<[u8]>, u32>;

pub(crate) struct Tables {
    word: Vec<u64>, // one bit per code point: `re`'s `\w` (str.isalnum() or "_")
    // FxHash: looked up per non-ASCII character of a text, where SipHash costs tens of cycles
    pub(crate) lower: FxMap<char, Box<str>>,
    fold: FxMap<char, Box<str>>,
}

impl Tables {
    fn is_word(&self, c: char) -> bool {
        let i = c as usize;
        self.word.get(i >> 6).is_some_and(|w| (w >> (i & 63)) & 1 == 1)
    }
}

/// Python's own character tables, built once per process (`pipeline.moderation.unicode`).
#[pyclass(frozen, module = "newspipe_native")]
pub struct CaseTables {
    inner: Arc<Tables>,
}

fn char_map(pairs: Vec<(u32, String)>) -> PyResult<FxMap<char, Box<str>>> {
    pairs
        .into_iter()
        .map(|(c, s)| match char::from_u32(c) {
            Some(c) => Ok((c, s.into_boxed_str())),
            None => Err(PyValueError::new_err(format!("not a character: {c:#x}"))),
        })
        .collect()
}

impl CaseTables {
    pub(crate) fn tables(&self) -> Arc<Tables> {
        self.inner.clone()
    }
}

#[pymethods]
impl CaseTables {
    /// `word`: (start, end) ranges of the code points `\w` matches; `lower` and `fold`: the code
    /// points whose `str.lower()` / `str.casefold()` is not themselves, with what it is.
    #[new]
    fn new(
        word: Vec<(u32, u32)>,
        lower: Vec<(u32, String)>,
        fold: Vec<(u32, String)>,
    ) -> PyResult<Self> {
        let mut bits = vec![0u64; CODE_POINTS / 64];
        for (start, end) in word {
            if start > end || end as usize > CODE_POINTS {
                return Err(PyValueError::new_err("word range out of the code space"));
            }
            for i in start as usize..end as usize {
                if let Some(w) = bits.get_mut(i >> 6) {
                    *w |= 1 << (i & 63);
                }
            }
        }
        let tables = Tables { word: bits, lower: char_map(lower)?, fold: char_map(fold)? };
        Ok(CaseTables { inner: Arc::new(tables) })
    }

    /// Whether `\w` matches code point `c` (the tests compare every one with Python's).
    fn is_word(&self, c: u32) -> bool {
        char::from_u32(c).is_some_and(|c| self.inner.is_word(c))
    }
}

fn f64s(raw: &[u8]) -> Vec<f64> {
    raw.chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            f64::from_le_bytes(b)
        })
        .collect()
}

/// The fitted toxicity model: vocabulary (term -> column), idf, idf-scaled SVM weights
/// (terms x models, row-major), and each model's intercept and sigmoid.
#[pyclass(frozen, module = "newspipe_native")]
pub struct ToxicityScorer {
    tables: Arc<Tables>,
    vocabulary: Vocabulary, // UTF-8 bytes of each term -> its column
    longest: usize,         // bytes of the longest term: a longer token is not looked up
    idf: Vec<f64>,
    weights: Vec<f64>,
    intercepts: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

#[pymethods]
impl ToxicityScorer {
    /// Float arrays as little-endian float64 bytes; `columns[i]` is `terms[i]`'s column.
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        tables: &Bound<'_, CaseTables>,
        terms: Vec<String>,
        columns: Vec<u32>,
        idf: &[u8],
        weights: &[u8],
        intercepts: &[u8],
        a: &[u8],
        b: &[u8],
    ) -> PyResult<Self> {
        let idf = f64s(idf);
        let (weights, intercepts, a, b) = (f64s(weights), f64s(intercepts), f64s(a), f64s(b));
        let k = intercepts.len();
        let sound = terms.len() == columns.len()
            && k > 0
            && a.len() == k
            && b.len() == k
            && weights.len() == idf.len() * k
            && columns.iter().all(|&c| (c as usize) < idf.len());
        if !sound {
            return Err(PyValueError::new_err("inconsistent toxicity model"));
        }
        let longest = terms.iter().map(String::len).max().unwrap_or(0);
        let vocabulary = terms
            .into_iter()
            .map(|t| t.into_bytes().into_boxed_slice())
            .zip(columns)
            .collect::<Vocabulary>();
        let tables = tables.get().inner.clone();
        Ok(ToxicityScorer { tables, vocabulary, longest, idf, weights, intercepts, a, b })
    }

    /// Each text's five (as many as models) sigmoid arguments `d * a + b`, row after row as
    /// native float64 bytes, and the indices of the texts left to the Python scorer (their rows
    /// are zeros). The caller applies numpy's `exp` and mean, as the Python scorer does: numpy's
    /// vectorised `exp` and the C library's differ in the last bit for some arguments.
    fn decisions<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<Bound<'py, PyString>>,
    ) -> (Bound<'py, PyBytes>, Vec<usize>) {
        let k = self.intercepts.len();
        let mut out: Vec<u8> = Vec::with_capacity(texts.len() * k * 8);
        let mut left = Vec::new();
        let mut ids = Vec::new();
        let mut token = Vec::new();
        let mut dots = vec![0f64; k];
        for (i, t) in texts.iter().enumerate() {
            let known =
                t.to_str().ok().and_then(|text| self.tokens_into(text, &mut ids, &mut token));
            if known.is_some() {
                self.dots(&mut ids, &mut dots);
                for (j, d) in dots.iter().enumerate() {
                    out.extend_from_slice(&self.sigmoid_argument(j, *d).to_ne_bytes());
                }
            } else {
                left.push(i);
                out.resize(out.len() + k * 8, 0);
            }
        }
        (PyBytes::new(py, &out), left)
    }

    /// The columns of `text`'s known tokens, in order, repeats kept; None for a text left to
    /// Python, as in `decisions`.
    fn term_columns(&self, text: &Bound<'_, PyString>) -> Option<Vec<u32>> {
        let mut ids = Vec::new();
        self.tokens_into(text.to_str().ok()?, &mut ids, &mut Vec::new())?;
        Some(ids)
    }
}

impl ToxicityScorer {
    /// sklearn's tokens of `text.lower()` (maximal runs of two or more `\w` characters), as
    /// vocabulary columns. `token` holds the current run's UTF-8 bytes.
    fn tokens_into(&self, text: &str, ids: &mut Vec<u32>, token: &mut Vec<u8>) -> Option<()> {
        ids.clear();
        token.clear();
        let mut chars = 0usize;
        let mut end = |token: &mut Vec<u8>, chars: &mut usize| {
            if *chars >= 2 && token.len() <= self.longest {
                if let Some(&col) = self.vocabulary.get(token.as_slice()) {
                    ids.push(col);
                }
            }
            token.clear();
            *chars = 0;
        };
        if text.is_ascii() {
            for &b in text.as_bytes() {
                if b.is_ascii_alphanumeric() || b == b'_' {
                    token.push(b.to_ascii_lowercase());
                    chars += 1;
                } else if chars > 0 {
                    end(token, &mut chars);
                }
            }
            end(token, &mut chars);
            return Some(());
        }
        let t = &*self.tables;
        let (mut one, mut two) = ([0u8; 4], [0u8; 4]);
        for ch in text.chars() {
            if ch.is_ascii() {
                // as the ASCII path above: Python lowers ASCII letters alone and `\w` is
                // [a-zA-Z0-9_] there, so no table lookup
                let b = ch as u8;
                if b.is_ascii_alphanumeric() || b == b'_' {
                    token.push(b.to_ascii_lowercase());
                    chars += 1;
                } else if chars > 0 {
                    end(token, &mut chars);
                }
                continue;
            }
            if ch == CAPITAL_SIGMA {
                return None; // final or not: str.lower looks at its neighbours
            }
            let lowered: &str = match t.lower.get(&ch) {
                Some(s) => s,
                None => ch.encode_utf8(&mut one),
            };
            for c in lowered.chars() {
                if t.is_word(c) {
                    token.extend_from_slice(c.encode_utf8(&mut two).as_bytes());
                    chars += 1;
                } else if chars > 0 {
                    end(token, &mut chars);
                }
            }
        }
        end(token, &mut chars);
        Some(())
    }

    /// The linear models on one text's term columns (l2-normalised tf-idf), in numpy's order of
    /// operations (toxicity.py): counts per term in column order, each sum from 0.0 in that
    /// order, the dot products divided by the norm.
    fn dots(&self, ids: &mut [u32], dots: &mut [f64]) {
        ids.sort_unstable();
        dots.fill(0.0);
        let k = dots.len();
        let mut norm2 = 0f64;
        let mut at = 0;
        while at < ids.len() {
            let term = ids[at];
            let mut end = at + 1;
            while end < ids.len() && ids[end] == term {
                end += 1;
            }
            let count = (end - at) as f64;
            let term = term as usize;
            let idf = self.idf.get(term).copied().unwrap_or(0.0);
            norm2 += count * count * (idf * idf);
            if let Some(row) = self.weights.get(term * k..term * k + k) {
                for (d, w) in dots.iter_mut().zip(row) {
                    *d += w * count;
                }
            }
            at = end;
        }
        let norm = if norm2 == 0.0 { 1.0 } else { norm2.sqrt() };
        for d in dots.iter_mut() {
            *d /= norm;
        }
    }

    /// Model `j`'s sigmoid argument: (dot + intercept) * a + b, unfused as numpy computes it.
    fn sigmoid_argument(&self, j: usize, dot: f64) -> f64 {
        let at = |v: &[f64]| v.get(j).copied().unwrap_or(0.0);
        (dot + at(&self.intercepts)) * at(&self.a) + at(&self.b)
    }
}

const BANNED: u8 = 0;
const SUSPECT: u8 = 1;

/// The banned and suspect entries as one Aho-Corasick automaton (all matches, overlapping, as
/// pyahocorasick's `iter`), kept on word boundaries of the casefolded text.
#[pyclass(frozen, module = "newspipe_native")]
pub struct WordLists {
    tables: Arc<Tables>,
    automaton: Option<AhoCorasick>,
    entries: Vec<(u8, Box<str>)>, // by pattern id
}

#[pymethods]
impl WordLists {
    /// An entry on both lists is banned (the stricter list wins); empty entries match nothing.
    #[new]
    fn new(
        tables: &Bound<'_, CaseTables>,
        banned: Vec<String>,
        suspect: Vec<String>,
    ) -> PyResult<Self> {
        let mut kinds: HashMap<String, u8> = HashMap::new();
        for e in suspect.into_iter().filter(|e| !e.is_empty()) {
            kinds.insert(e, SUSPECT);
        }
        for e in banned.into_iter().filter(|e| !e.is_empty()) {
            kinds.insert(e, BANNED);
        }
        let mut entries: Vec<(u8, Box<str>)> =
            kinds.into_iter().map(|(e, k)| (k, e.into_boxed_str())).collect();
        entries.sort_unstable();
        let automaton = if entries.is_empty() {
            None
        } else {
            let built = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(entries.iter().map(|(_, e)| e.as_bytes()))
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            Some(built)
        };
        Ok(WordLists { tables: tables.get().inner.clone(), automaton, entries })
    }

    /// (banned entries found, suspect entries found), each sorted, or None for a text left to
    /// the Python matcher.
    fn find(&self, text: &Bound<'_, PyString>) -> Option<(Vec<String>, Vec<String>)> {
        Some(self.found(text.to_str().ok()?))
    }
}

impl WordLists {
    /// `find` on a text Rust can read (also one step of `modsignals::TextSignals::scan`).
    pub(crate) fn found(&self, text: &str) -> (Vec<String>, Vec<String>) {
        let mut banned: Vec<String> = Vec::new();
        let mut suspect: Vec<String> = Vec::new();
        let Some(automaton) = &self.automaton else {
            return (banned, suspect);
        };
        let t = &*self.tables;
        let mut folded = String::with_capacity(text.len());
        for ch in text.chars() {
            if ch.is_ascii() {
                folded.push(ch.to_ascii_lowercase());
            } else {
                match t.fold.get(&ch) {
                    Some(s) => folded.push_str(s),
                    None => folded.push(ch),
                }
            }
        }
        let mut seen: Vec<usize> = Vec::new();
        for m in automaton.find_overlapping_iter(&folded) {
            let before = folded.get(..m.start()).and_then(|s| s.chars().next_back());
            let after = folded.get(m.end()..).and_then(|s| s.chars().next());
            if before.is_some_and(|c| t.is_word(c)) || after.is_some_and(|c| t.is_word(c)) {
                continue;
            }
            seen.push(m.pattern().as_usize());
        }
        seen.sort_unstable();
        seen.dedup();
        for id in seen {
            if let Some((kind, entry)) = self.entries.get(id) {
                let list = if *kind == BANNED { &mut banned } else { &mut suspect };
                list.push(entry.to_string());
            }
        }
        banned.sort_unstable();
        suspect.sort_unstable();
        (banned, suspect)
    }
}
