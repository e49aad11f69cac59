//! The topic tagger's matching and scoring: `pipeline.tagging.tagger`'s `_norm`, `_select`,
//! `_cs_ok`, `_score`, `_rank_tops`, `_tags` and `_make` for one comment or article a call. In
//! Python each automaton hit, entry and evidence term is an interpreter step and a tuple; here
//! they are loads over tables copied once from the Python tagger (its reference, compared in
//! tests/test_tagging_native.py).
//!
//! Matching works on words, not characters: every automaton key is a padded, normalised phrase
//! (" north korea "), so it occurs in the padded, normalised text exactly where its words are
//! consecutive words of the text. A trie over word ids finds those places; hits are then numbered
//! by word index (start inclusive, end exclusive), which orders and overlaps as the character
//! offsets the Python automaton reports do.
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use crate::fxhash::{fx_hash, FxMap};

const NONE: u32 = u32::MAX;

/// An insertion-ordered map (a Python dict's iteration order decides float sums and ties).
struct Ordered<K> {
    items: Vec<(K, f64)>,
    index: FxMap<K, usize>,
}

impl<K: std::hash::Hash + Eq + Copy> Ordered<K> {
    fn new() -> Self {
        Ordered { items: Vec::new(), index: FxMap::default() }
    }
    /// `d[k] = d.get(k, 0.0) + x`
    #[inline]
    fn add(&mut self, k: K, x: f64) {
        match self.index.get(&k) {
            Some(&at) => {
                if let Some(item) = self.items.get_mut(at) {
                    item.1 += x;
                }
            }
            None => {
                self.index.insert(k, self.items.len());
                self.items.push((k, 0.0 + x));
            }
        }
    }
}

struct Entry {
    term: String,
    weight: f64,
    cs: bool,
    ambiguous: bool,
    chain: Vec<u32>, // code ids, the entry's code first, its top-level topic last
}

struct Key {
    ids: Vec<u32>,
    has_cs: bool,
    most: f64,
}

struct Code {
    code: Py<PyString>,
    label: Py<PyString>,
    text: String,
    level: i64,
    top: u32,
}

/// The tagger's constants (pipeline/tagging/tagger.py), read once from Python.
struct Params {
    title: f64,
    standfirst: f64,
    body: f64,
    article_min_top: f64,
    comment_min_top: f64,
    comment_min_terms: usize,
    relative_top: f64,
    min_sub: f64,
    relative_sub: f64,
    max_top: usize,
    max_sub_per_top: usize,
    max_evidence: usize,
    score_scale: f64,
    section_prior: f64,
    lone_ambiguous: f64,
}

struct Contrib<'a> {
    term: &'a str,
    contrib: f64,
    chain: &'a [u32],
    ambiguous: bool,
    in_title: bool,
}

impl Contrib<'_> {
    fn top(&self) -> u32 {
        self.chain.last().copied().unwrap_or(NONE)
    }
}

struct Kept<'a> {
    start: u32,
    end: u32,
    ids: Cow<'a, [u32]>,
}

/// One own tag before it becomes a Python dict.
struct Made {
    code: u32,
    level: i64,
    score: f64,
    evidence: Vec<String>,
}

const BLOOM_BITS: usize = 1 << 17;

#[inline]
fn bloom_bits(h: u64) -> [usize; 2] {
    let again = h.rotate_left(23).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    [(h >> 47) as usize, (again >> 47) as usize]
}

/// One word of the keys: what a lookup compares and where the trie walk starts, in one row
/// (a text's words are looked up between the core's other stages, with the tables out of cache:
/// each row touched is a likely cache miss).
#[derive(Clone, Copy)]
struct WordRow {
    hash: u64,
    head: u64, // the word's first 8 bytes, zero-padded (all of it when it is that short)
    start: u32,
    len: u32,
    root: u32, // trie node of the one-word prefix, or NONE
}

/// The first 8 bytes of a word as a little-endian number (words hold no NUL byte).
#[inline]
fn head_of(word: &[u8]) -> u64 {
    let mut w = 0u64;
    for (n, &b) in word.iter().take(8).enumerate() {
        w |= u64::from(b) << (8 * n);
    }
    w
}

/// The words of the automaton's keys, by id: an open-addressing table of their hashes, so that
/// a word of a text (most are in no key) costs one hash and, mostly, one probe.
struct Vocab {
    // two bits per word in 2^17 (16 KiB, stays in cache): most words of a text that are in no
    // key stop here, before the slot table (ten times larger) is touched
    bloom: Vec<u64>,
    slots: Vec<u32>, // word id or NONE; a power of two long, at most a quarter full
    shift: u32,
    rows: Vec<WordRow>,
    text: String,
    longest: usize,
}

impl Vocab {
    fn new(words: &[&str]) -> Self {
        let size = (words.len() * 4).next_power_of_two().max(16);
        let mut v = Vocab {
            bloom: vec![0; BLOOM_BITS / 64],
            slots: vec![NONE; size],
            shift: 64 - size.trailing_zeros(),
            rows: Vec::new(),
            text: String::new(),
            longest: 0,
        };
        for w in words {
            if v.get(w.as_bytes()) != NONE {
                continue;
            }
            let h = fx_hash(w.as_bytes());
            let id = v.rows.len() as u32;
            let mask = v.slots.len() - 1;
            let mut at = (h >> v.shift) as usize & mask;
            while v.slots.get(at).is_some_and(|&s| s != NONE) {
                at = (at + 1) & mask;
            }
            if let Some(slot) = v.slots.get_mut(at) {
                *slot = id;
            }
            for bit in bloom_bits(h) {
                if let Some(word) = v.bloom.get_mut(bit / 64) {
                    *word |= 1 << (bit % 64);
                }
            }
            v.rows.push(WordRow {
                hash: h,
                head: head_of(w.as_bytes()),
                start: v.text.len() as u32,
                len: w.len() as u32,
                root: NONE,
            });
            v.text.push_str(w);
            v.longest = v.longest.max(w.len());
        }
        v
    }

    /// The id of `word` (lower-cased UTF-8), or NONE.
    #[inline]
    fn get(&self, word: &[u8]) -> u32 {
        self.row(word).map_or(NONE, |(id, _)| id)
    }

    /// The id and row of `word` (lower-cased UTF-8).
    #[inline]
    fn row(&self, word: &[u8]) -> Option<(u32, &WordRow)> {
        if word.len() > self.longest || word.is_empty() {
            return None;
        }
        let h = fx_hash(word);
        for bit in bloom_bits(h) {
            if self.bloom.get(bit / 64).is_none_or(|w| w & (1 << (bit % 64)) == 0) {
                return None;
            }
        }
        let head = head_of(word);
        let mask = self.slots.len() - 1;
        let mut at = (h >> self.shift) as usize & mask;
        loop {
            let id = *self.slots.get(at)?;
            if id == NONE {
                return None;
            }
            let row = self.rows.get(id as usize)?;
            if row.hash == h && row.head == head && row.len as usize == word.len() {
                if word.len() <= 8 {
                    return Some((id, row));
                }
                let (from, to) = (row.start as usize, (row.start + row.len) as usize);
                if self.text.as_bytes().get(from..to) == Some(word) {
                    return Some((id, row));
                }
            }
            at = (at + 1) & mask;
        }
    }
}

/// The lexicon's automaton keys as a trie over words, its entries and the taxonomy's codes.
#[pyclass(frozen, module = "newspipe_native")]
pub struct TagIndex {
    vocab: Vocab,
    trie: FxMap<(u32, u32), u32>, // (node, word id) -> child node, below the first word
    nodes: Vec<(u32, bool)>,      // per trie node: the key ending there (or NONE), has children
    keys: Vec<Key>,
    entries: Vec<Entry>,
    codes: Vec<Code>,
    breaks: Vec<char>, // sorted: the non-ASCII characters `_norm` turns into word breaks
    neumaier: bool,    // builtin sum() of floats compensates (CPython >= 3.12)
    p: Params,
}

fn param(params: &HashMap<String, f64>, name: &str) -> PyResult<f64> {
    match params.get(name) {
        Some(v) if v.is_finite() => Ok(*v),
        _ => Err(PyValueError::new_err(format!("tagger parameter {name} missing or not finite"))),
    }
}

fn count(params: &HashMap<String, f64>, name: &str) -> PyResult<usize> {
    let v = param(params, name)?;
    if v < 0.0 || v.fract() != 0.0 || v > 1e6 {
        return Err(PyValueError::new_err(format!("tagger parameter {name} is not a count")));
    }
    Ok(v as usize)
}

/// Python's `round(x, ndigits)`: the correctly rounded decimal (ties to even), read back.
///
/// Fast path: while x * 10^ndigits is small and not within 1e-3 of a tie, its nearest integer
/// n is the decimal's digits, and n / 10^ndigits (one correctly rounded division of exact
/// operands) is the double nearest that decimal, which is what CPython reads back. Otherwise
/// the exact decimal expansion (Rust's formatting also rounds ties to even).
fn py_round(x: f64, ndigits: i32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if (0..=15).contains(&ndigits) {
        let scale = 10f64.powi(ndigits);
        let y = x * scale;
        if y.abs() < 4_398_046_511_104.0 && ((y - y.trunc()).abs() - 0.5).abs() > 1e-3 {
            return y.round() / scale;
        }
    }
    let digits = ndigits.max(0) as usize;
    format!("{x:.digits$}").parse().unwrap_or(x)
}

/// `x ** 0.5` as CPython computes it: libm's pow. The opaque exponent keeps the compiler from
/// turning it into sqrt, which can differ from pow in the last bit.
#[inline]
fn pow_half(x: f64) -> f64 {
    x.powf(std::hint::black_box(0.5))
}

/// `_stem`: one key for a word's forms, by characters as Python counts them.
fn stem(term: &str) -> &str {
    for suffix in ["ies", "es", "ed", "s", "d"] {
        if let Some(rest) = term.strip_suffix(suffix) {
            if rest.chars().count() >= 3 {
                return rest;
            }
        }
    }
    term
}

fn distinct_stems<'a>(terms: impl Iterator<Item = &'a str>) -> usize {
    let mut seen: Vec<&str> = Vec::new();
    for t in terms {
        let s = stem(t);
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen.len()
}

/// A top-level topic while ranked: (rounded evidence, code, ranked evidence, whole evidence).
type Ranked = (f64, u32, f64, f64);
/// The tie-break of `_rank_tops`: (rounded evidence, headline evidence, distinct terms, strongest).
type TieKey = (f64, f64, usize, f64);

fn cmp_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Python's `str.isalnum()` for one character (what `re`'s `[^\W_]` means).
fn is_alnum(py: Python<'_>, c: char) -> PyResult<bool> {
    if c.is_ascii() {
        return Ok(c.is_ascii_alphanumeric());
    }
    let mut buf = [0u8; 4];
    PyString::new(py, c.encode_utf8(&mut buf))
        .call_method0(intern!(py, "isalnum"))?
        .extract::<bool>()
}

#[pymethods]
impl TagIndex {
    /// codes: (code, label, level, index of its top-level code); entries: (term, weight,
    /// case-sensitive, ambiguous, chain as code indices); keys: (padded normalised key, entry
    /// ids, any case-sensitive entry, most evidence of one hit); breaks: the non-ASCII
    /// characters at which `_norm` splits words; params: the tagger's constants by name.
    #[new]
    fn new(
        py: Python<'_>,
        codes: Vec<(String, String, i64, usize)>,
        entries: Vec<(String, f64, bool, bool, Vec<usize>)>,
        keys: Vec<(String, Vec<usize>, bool, f64)>,
        breaks: String,
        neumaier: bool,
        params: HashMap<String, f64>,
    ) -> PyResult<Self> {
        let bad = |what: &str| PyValueError::new_err(format!("inconsistent tagger tables: {what}"));
        let n_codes = codes.len();
        let mut code_rows = Vec::with_capacity(n_codes);
        for (code, label, level, top) in codes {
            if top >= n_codes {
                return Err(bad("top-level code index"));
            }
            code_rows.push(Code {
                code: PyString::new(py, &code).unbind(),
                label: PyString::new(py, &label).unbind(),
                text: code,
                level,
                top: top as u32,
            });
        }
        let mut entry_rows = Vec::with_capacity(entries.len());
        for (term, weight, cs, ambiguous, chain) in entries {
            if !weight.is_finite() {
                return Err(bad("a term weight is not finite"));
            }
            if chain.is_empty() || chain.iter().any(|&c| c >= n_codes) {
                return Err(bad("an entry's code chain"));
            }
            let chain: Vec<u32> = chain.into_iter().map(|c| c as u32).collect();
            entry_rows.push(Entry { term, weight, cs, ambiguous, chain });
        }
        let all_words: Vec<&str> = keys
            .iter()
            .flat_map(|(key, _, _, _)| key.split(' ').filter(|w| !w.is_empty()))
            .collect();
        let mut vocab = Vocab::new(&all_words);
        let mut trie: FxMap<(u32, u32), u32> = FxMap::default();
        let mut node_key: Vec<u32> = vec![NONE];
        let mut node_children: Vec<bool> = vec![true];
        let mut key_rows = Vec::with_capacity(keys.len());
        for (key, ids, has_cs, most) in keys {
            if ids.is_empty() || ids.iter().any(|&i| i >= entry_rows.len()) {
                return Err(bad("a key's entry ids"));
            }
            let mut node = 0u32;
            for word in key.split(' ').filter(|w| !w.is_empty()) {
                let w = vocab.get(word.as_bytes());
                let next_node = node_key.len() as u32;
                let child = if node == 0 {
                    let row = vocab.rows.get_mut(w as usize).ok_or_else(|| bad("a key's word"))?;
                    if row.root == NONE {
                        row.root = next_node;
                    }
                    row.root
                } else {
                    *trie.entry((node, w)).or_insert(next_node)
                };
                if let Some(has) = node_children.get_mut(node as usize) {
                    *has = true;
                }
                if child == next_node {
                    node_key.push(NONE);
                    node_children.push(false);
                }
                node = child;
            }
            let at = node as usize;
            if node == 0 || node_key.get(at) != Some(&NONE) {
                return Err(bad("an empty or repeated key"));
            }
            node_key[at] = key_rows.len() as u32;
            let ids = ids.into_iter().map(|i| i as u32).collect();
            key_rows.push(Key { ids, has_cs, most });
        }
        let mut breaks: Vec<char> = breaks.chars().filter(|c| !c.is_ascii()).collect();
        breaks.sort_unstable();
        breaks.dedup();
        let p = Params {
            title: param(&params, "TITLE_WEIGHT")?,
            standfirst: param(&params, "STANDFIRST_WEIGHT")?,
            body: param(&params, "BODY_WEIGHT")?,
            article_min_top: param(&params, "ARTICLE_MIN_TOP")?,
            comment_min_top: param(&params, "COMMENT_MIN_TOP")?,
            comment_min_terms: count(&params, "COMMENT_MIN_TERMS")?,
            relative_top: param(&params, "RELATIVE_TOP")?,
            min_sub: param(&params, "MIN_SUB")?,
            relative_sub: param(&params, "RELATIVE_SUB")?,
            max_top: count(&params, "MAX_TOP")?,
            max_sub_per_top: count(&params, "MAX_SUB_PER_TOP")?,
            max_evidence: count(&params, "MAX_EVIDENCE")?,
            score_scale: param(&params, "SCORE_SCALE")?,
            section_prior: param(&params, "SECTION_PRIOR")?,
            lone_ambiguous: param(&params, "LONE_AMBIGUOUS")?,
        };
        Ok(TagIndex {
            vocab,
            trie,
            nodes: node_key.into_iter().zip(node_children).collect(),
            keys: key_rows,
            entries: entry_rows,
            codes: code_rows,
            breaks,
            neumaier,
            p,
        })
    }

    /// Python's `round(x, ndigits)` as the tagger computes it (exposed for the tests).
    #[staticmethod]
    fn round(x: f64, ndigits: i32) -> f64 {
        py_round(x, ndigits)
    }

    /// `Tagger.tag_comment`'s own tags: None where the Python path returns before scoring
    /// (no hit, or no topic can reach the comment threshold), else `_tags`' list (maybe empty).
    fn tag_comment<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyString>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let original = text.to_str()?;
        let hits = self.hits(py, text, original)?;
        if hits.is_empty() {
            return Ok(None);
        }
        let mut most = 0.0;
        for &(_, _, k) in &hits {
            most += self.key(k).map_or(0.0, |k| k.most);
        }
        if most * self.p.body < self.p.comment_min_top {
            return Ok(None);
        }
        let mut mass = Ordered::new();
        for kept in self.select(py, &hits, original)? {
            for &i in kept.ids.iter() {
                mass.add(i, self.p.body);
            }
        }
        // the exact pre-test of tag_comment, summed in _score's order
        let mut per_top: Ordered<u32> = Ordered::new();
        let mut terms: FxMap<u32, usize> = FxMap::default();
        for &(i, m) in &mass.items {
            let Some(e) = self.entries.get(i as usize) else { continue };
            if e.weight != 0.0 {
                let top = e.chain.last().copied().unwrap_or(NONE);
                per_top.add(top, e.weight * pow_half(m));
                *terms.entry(top).or_insert(0) += 1;
            }
        }
        let reaches = per_top.items.iter().any(|&(top, v)| {
            v >= self.p.comment_min_top
                && terms.get(&top).copied().unwrap_or(0) >= self.p.comment_min_terms
        });
        if !reaches {
            return Ok(None);
        }
        let (mut raw, contribs) = self.score(&mass, &[]);
        let made = self.tags(&mut raw, &contribs, self.p.comment_min_top, self.p.comment_min_terms);
        self.to_python(py, made).map(Some)
    }

    /// `Tagger.tag_article` (a missing field counts as empty, as there); section: the prior's evidence term and its code's chain (code
    /// indices), when the section is mapped.
    #[pyo3(signature = (title, standfirst, body, section=None))]
    fn tag_article<'py>(
        &self,
        py: Python<'py>,
        title: Option<&Bound<'py, PyString>>,
        standfirst: Option<&Bound<'py, PyString>>,
        body: Option<&Bound<'py, PyString>>,
        section: Option<(String, Vec<usize>)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut mass = self.accumulate(py, &[(title, self.p.title)])?;
        let in_title: Vec<u32> = mass.items.iter().map(|&(i, _)| i).collect();
        let rest = self.accumulate(py, &[(standfirst, self.p.standfirst), (body, self.p.body)])?;
        for &(i, m) in &rest.items {
            mass.add(i, m);
        }
        let (mut raw, mut contribs) = self.score(&mass, &in_title);
        let section_chain: Vec<u32>;
        if let Some((term, chain)) = &section {
            if chain.is_empty() || chain.iter().any(|&c| c >= self.codes.len()) {
                return Err(PyValueError::new_err("section chain out of range"));
            }
            section_chain = chain.iter().map(|&c| c as u32).collect();
            contribs.push(Contrib {
                term: term.as_str(),
                contrib: self.p.section_prior,
                chain: &section_chain,
                ambiguous: false,
                in_title: false,
            });
            for &c in &section_chain {
                raw.add(c, self.p.section_prior);
            }
        }
        let made = self.tags(&mut raw, &contribs, self.p.article_min_top, 1);
        self.to_python(py, made)
    }
}

impl TagIndex {
    fn key(&self, k: u32) -> Option<&Key> {
        self.keys.get(k as usize)
    }

    fn level(&self, code: u32) -> i64 {
        self.codes.get(code as usize).map_or(0, |c| c.level)
    }

    fn top_of(&self, code: u32) -> u32 {
        self.codes.get(code as usize).map_or(NONE, |c| c.top)
    }

    fn code_text(&self, code: u32) -> &str {
        self.codes.get(code as usize).map_or("", |c| c.text.as_str())
    }

    /// Word ids of `_norm(text)`: lower case (Python's, for non-ASCII text), words split at ASCII
    /// non-alphanumerics and at the listed non-ASCII breaks.
    fn word_ids(
        &self,
        py: Python<'_>,
        text: &Bound<'_, PyString>,
        original: &str,
    ) -> PyResult<Vec<u32>> {
        let mut ids = Vec::with_capacity(original.len() / 4);
        if original.is_ascii() {
            let low = original.as_bytes().to_ascii_lowercase();
            let mut start: Option<usize> = None;
            for (at, b) in low.iter().enumerate() {
                match (b.is_ascii_alphanumeric(), start) {
                    (false, Some(s)) => {
                        ids.push(self.vocab.get(low.get(s..at).unwrap_or(&[])));
                        start = None;
                    }
                    (true, None) => start = Some(at),
                    _ => {}
                }
            }
            if let Some(s) = start {
                ids.push(self.vocab.get(low.get(s..).unwrap_or(&[])));
            }
            return Ok(ids);
        }
        let lowered = text.call_method0(intern!(py, "lower"))?;
        let low = lowered.cast::<PyString>().map_err(PyErr::from)?.to_str()?;
        let bytes = low.as_bytes();
        let mut start: Option<usize> = None;
        for (at, c) in low.char_indices() {
            let split = if c.is_ascii() {
                !c.is_ascii_alphanumeric()
            } else {
                self.breaks.binary_search(&c).is_ok()
            };
            match (split, start) {
                (true, Some(s)) => {
                    ids.push(self.vocab.get(bytes.get(s..at).unwrap_or(&[])));
                    start = None;
                }
                (false, None) => start = Some(at),
                _ => {}
            }
        }
        if let Some(s) = start {
            ids.push(self.vocab.get(bytes.get(s..).unwrap_or(&[])));
        }
        Ok(ids)
    }

    /// Every key occurrence as (start word, end word exclusive, key), ordered as the automaton
    /// reports them: by end, the longest first.
    fn hits(
        &self,
        py: Python<'_>,
        text: &Bound<'_, PyString>,
        original: &str,
    ) -> PyResult<Vec<(u32, u32, u32)>> {
        let ids = self.word_ids(py, text, original)?;
        let mut hits = Vec::new();
        for (j, &first) in ids.iter().enumerate() {
            let mut node = self.vocab.rows.get(first as usize).map_or(NONE, |r| r.root);
            let mut k = j + 1;
            while let Some(&(key, children)) = self.nodes.get(node as usize) {
                if key != NONE {
                    hits.push((j as u32, k as u32, key));
                }
                if !children {
                    break;
                }
                let Some(&w) = ids.get(k) else { break };
                if w == NONE {
                    break;
                }
                node = self.trie.get(&(node, w)).copied().unwrap_or(NONE);
                k += 1;
            }
        }
        hits.sort_unstable_by_key(|&(s, e, _)| (e, s));
        Ok(hits)
    }

    /// `_cs_ok`: the exact form occurs in `text` with no alphanumeric character either side.
    fn cs_ok(&self, py: Python<'_>, term: &str, text: &str) -> PyResult<bool> {
        let mut from = 0;
        while let Some(found) = text.get(from..).and_then(|rest| rest.find(term)) {
            let at = from + found;
            let before = text.get(..at).and_then(|s| s.chars().next_back());
            let after = text.get(at + term.len()..).and_then(|s| s.chars().next());
            let free_before = match before {
                Some(c) => !is_alnum(py, c)?,
                None => true,
            };
            if free_before {
                let free_after = match after {
                    Some(c) => !is_alnum(py, c)?,
                    None => true,
                };
                if free_after {
                    return Ok(true);
                }
            }
            let step = text.get(at..).and_then(|s| s.chars().next()).map_or(1, char::len_utf8);
            from = at + step;
        }
        Ok(false)
    }

    /// `_select`: leftmost-longest whole-word matches, case-sensitive entries checked.
    fn select<'a>(
        &'a self,
        py: Python<'_>,
        hits: &[(u32, u32, u32)],
        text: &str,
    ) -> PyResult<Vec<Kept<'a>>> {
        let mut kept: Vec<Kept<'a>> = Vec::new();
        let mut cs_seen: Vec<(u32, bool)> = Vec::new();
        for &(start, end, k) in hits {
            let Some(key) = self.key(k) else { continue };
            let ids: Cow<'a, [u32]> = if key.has_cs {
                let mut ok = Vec::with_capacity(key.ids.len());
                for &i in &key.ids {
                    let Some(e) = self.entries.get(i as usize) else { continue };
                    let pass = if !e.cs {
                        true
                    } else if let Some(&(_, seen)) = cs_seen.iter().find(|(j, _)| *j == i) {
                        seen
                    } else {
                        let seen = self.cs_ok(py, &e.term, text)?;
                        cs_seen.push((i, seen));
                        seen
                    };
                    if pass {
                        ok.push(i);
                    }
                }
                if ok.is_empty() {
                    continue;
                }
                Cow::Owned(ok)
            } else {
                Cow::Borrowed(&key.ids)
            };
            if let Some(last) = kept.last() {
                if start >= last.end {
                    kept.push(Kept { start, end, ids });
                    continue;
                }
                if start > last.start {
                    continue;
                }
                while kept.last().is_some_and(|l| l.start >= start) {
                    kept.pop();
                }
                if kept.last().is_some_and(|l| l.end > start) {
                    continue;
                }
            }
            kept.push(Kept { start, end, ids });
        }
        Ok(kept)
    }

    /// `_accumulate`: field-weighted occurrence mass per entry id (empty fields skipped).
    fn accumulate(
        &self,
        py: Python<'_>,
        parts: &[(Option<&Bound<'_, PyString>>, f64)],
    ) -> PyResult<Ordered<u32>> {
        let mut mass = Ordered::new();
        for &(text, factor) in parts {
            let Some(text) = text else { continue };
            let original = text.to_str()?;
            if original.is_empty() {
                continue;
            }
            let hits = self.hits(py, text, original)?;
            for kept in self.select(py, &hits, original)? {
                for &i in kept.ids.iter() {
                    mass.add(i, factor);
                }
            }
        }
        Ok(mass)
    }

    /// `_score`: evidence per code (every ancestor too); repeats count sub-linearly.
    fn score<'a>(
        &'a self,
        mass: &Ordered<u32>,
        in_title: &[u32],
    ) -> (Ordered<u32>, Vec<Contrib<'a>>) {
        let mut raw = Ordered::new();
        let mut contribs = Vec::with_capacity(mass.items.len());
        for &(i, m) in &mass.items {
            let Some(e) = self.entries.get(i as usize) else { continue };
            if e.weight == 0.0 {
                continue;
            }
            let contrib = e.weight * pow_half(m);
            contribs.push(Contrib {
                term: &e.term,
                contrib,
                chain: &e.chain,
                ambiguous: e.ambiguous,
                in_title: in_title.contains(&i),
            });
            for &code in &e.chain {
                raw.add(code, contrib);
            }
        }
        (raw, contribs)
    }

    /// builtin `sum()` of floats as this CPython does it.
    fn py_sum(&self, xs: impl Iterator<Item = f64>) -> f64 {
        let mut total = 0.0;
        if !self.neumaier {
            for x in xs {
                total += x;
            }
            return total;
        }
        let mut c = 0.0f64;
        for x in xs {
            let t = total + x;
            if total.abs() >= x.abs() {
                c += (total - t) + x;
            } else {
                c += (x - t) + total;
            }
            total = t;
        }
        if c != 0.0 && c.is_finite() {
            total += c;
        }
        total
    }

    /// `_rank_tops`: top-level topics best first, as (ranked evidence, code, whole evidence).
    fn rank_tops(&self, raw: &mut Ordered<u32>, contribs: &[Contrib<'_>]) -> Vec<(f64, u32, f64)> {
        let mut evidence: FxMap<u32, Vec<usize>> = FxMap::default();
        for (n, c) in contribs.iter().enumerate() {
            evidence.entry(c.top()).or_default().push(n);
        }
        let own_of = |code: u32| -> Vec<&Contrib<'_>> {
            evidence
                .get(&code)
                .map(|v| v.iter().filter_map(|&n| contribs.get(n)).collect())
                .unwrap_or_default()
        };
        let mut ranked: Vec<Ranked> = Vec::new();
        for at in 0..raw.items.len() {
            let Some(&(code, value)) = raw.items.get(at) else { continue };
            if self.level(code) != 1 {
                continue;
            }
            let mut v = value;
            let whole = v;
            let own = own_of(code);
            if !own.is_empty()
                && own.iter().all(|c| c.ambiguous)
                && distinct_stems(own.iter().map(|c| c.term)) == 1
            {
                v *= self.p.lone_ambiguous;
                for item in raw.items.iter_mut() {
                    if self.top_of(item.0) == code {
                        item.1 *= self.p.lone_ambiguous;
                    }
                }
            }
            ranked.push((py_round(v, 9), code, v, whole));
        }
        ranked.sort_by(|a, b| cmp_f64(b.0, a.0));
        let tie =
            ranked.iter().enumerate().any(|(n, a)| ranked.iter().skip(n + 1).any(|b| a.0 == b.0));
        if tie {
            let keyed: Vec<(TieKey, Ranked)> = ranked
                .iter()
                .map(|&r| {
                    let own = own_of(r.1);
                    let title = py_round(
                        self.py_sum(own.iter().filter(|c| c.in_title).map(|c| c.contrib)),
                        9,
                    );
                    let stems = distinct_stems(own.iter().map(|c| c.term));
                    let mut strongest = 0.0;
                    for (n, c) in own.iter().enumerate() {
                        if n == 0 || c.contrib > strongest {
                            strongest = c.contrib;
                        }
                    }
                    ((r.0, title, stems, strongest), r)
                })
                .collect();
            let mut keyed = keyed;
            keyed.sort_by(|(ka, ra), (kb, rb)| {
                cmp_f64(kb.0, ka.0)
                    .then(cmp_f64(kb.1, ka.1))
                    .then(kb.2.cmp(&ka.2))
                    .then(cmp_f64(kb.3, ka.3))
                    .then_with(|| self.code_text(ra.1).cmp(self.code_text(rb.1)))
            });
            ranked = keyed.into_iter().map(|(_, r)| r).collect();
        }
        ranked.into_iter().map(|(_, code, v, whole)| (v, code, whole)).collect()
    }

    /// `_tags`: the top-level topics that pass and their best-supported sub-topics.
    fn tags(
        &self,
        raw: &mut Ordered<u32>,
        contribs: &[Contrib<'_>],
        min_top: f64,
        min_terms: usize,
    ) -> Vec<Made> {
        let tops = self.rank_tops(raw, contribs);
        let Some(&(best, _, first_whole)) = tops.first() else { return Vec::new() };
        if first_whole < min_top {
            return Vec::new();
        }
        let mut out = Vec::new();
        for &(v, top, whole) in tops.iter().take(self.p.max_top) {
            if whole < min_top || v < self.p.relative_top * best {
                break;
            }
            if min_terms > 1 && contribs.iter().filter(|c| c.top() == top).count() < min_terms {
                continue;
            }
            out.push(self.make(top, v, best, contribs));
            let relative = self.p.relative_sub * v;
            let floor = if relative > self.p.min_sub { relative } else { self.p.min_sub };
            let mut subs: Vec<(f64, u32)> = raw
                .items
                .iter()
                .filter(|&&(c, sv)| sv >= floor && self.level(c) >= 2 && self.top_of(c) == top)
                .map(|&(c, sv)| (sv, c))
                .collect();
            subs.sort_by(|a, b| {
                cmp_f64(b.0, a.0)
                    .then(self.level(a.1).cmp(&self.level(b.1)))
                    .then_with(|| self.code_text(a.1).cmp(self.code_text(b.1)))
            });
            for &(sv, c) in subs.iter().take(self.p.max_sub_per_top) {
                out.push(self.make(c, sv, best, contribs));
            }
        }
        out.sort_by(|a, b| cmp_f64(b.score, a.score).then(a.level.cmp(&b.level)));
        out
    }

    /// `_make`: score and evidence (strongest terms whose chain passes through `code`).
    fn make(&self, code: u32, raw: f64, best: f64, contribs: &[Contrib<'_>]) -> Made {
        let mut ev: Vec<(&str, f64)> = Vec::new();
        let mut at: FxMap<&str, usize> = FxMap::default();
        for c in contribs {
            if c.chain.contains(&code) {
                match at.get(c.term) {
                    Some(&n) => {
                        if let Some(item) = ev.get_mut(n) {
                            item.1 += c.contrib;
                        }
                    }
                    None => {
                        at.insert(c.term, ev.len());
                        ev.push((c.term, 0.0 + c.contrib));
                    }
                }
            }
        }
        ev.sort_by(|a, b| cmp_f64(b.1, a.1).then_with(|| a.0.cmp(b.0)));
        let share = raw / best;
        let share = if share < 1.0 { share } else { 1.0 };
        let strength = 1.0 - (-best / self.p.score_scale).exp();
        Made {
            code,
            level: self.level(code),
            score: py_round(strength * share, 4),
            evidence: ev.iter().take(self.p.max_evidence).map(|(t, _)| (*t).to_owned()).collect(),
        }
    }

    fn to_python<'py>(&self, py: Python<'py>, made: Vec<Made>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for m in made {
            let Some(code) = self.codes.get(m.code as usize) else { continue };
            let tag = PyDict::new(py);
            tag.set_item(intern!(py, "code"), code.code.bind(py))?;
            tag.set_item(intern!(py, "label"), code.label.bind(py))?;
            tag.set_item(intern!(py, "level"), m.level)?;
            tag.set_item(intern!(py, "score"), m.score)?;
            tag.set_item(intern!(py, "evidence"), PyList::new(py, m.evidence)?)?;
            tag.set_item(intern!(py, "inherited"), false)?;
            out.append(tag)?;
        }
        Ok(out)
    }
}
