//! The common case of `pipeline.normalize.records.normalize_comment` (its reference is
//! `_py_normalize_comment`): a comment whose fields all have their usual types, whose text needs
//! only the common passes of `normalize_text` (text.rs) and starts with no reply marker, and
//! that quotes nobody, is not removed and carries no notes. For it the clean record is built
//! here in one call: the text-derived fields (clean text, `len(text.split())`, the content hash
//! and the comment id, `pipeline.ids.short_hash` = xxh3_64 as 16 hex digits) share one borrow of
//! the text, and the 25-key record is filled without an interpreter step per field.
//!
//! The parts that are Python's own (article ids, author cleaning, mention lists, the
//! leading-mention regex, time parsing) are the cached Python functions the reference calls,
//! handed in once and called in the reference's order, so an exception they raise is the one
//! the reference raises. Anything else unusual answers `None` before any of them is called, and
//! the caller runs the reference: the two agree by construction.
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyString, PyTuple};
use xxhash_rust::xxh3::xxh3_64;

use crate::text::{clean, may_need_python};

/// `len(s.split())` of a text `clean` made: its words are separated by exactly one " ", "\n" or
/// "\n\n" and hold no other `str.isspace` character, with none before the first or after the
/// last, so it is one more than its separators (counted without a branch per byte).
fn word_count(s: &str) -> usize {
    if s.is_empty() {
        return 0;
    }
    let bytes = s.as_bytes();
    let breaks = bytes.iter().filter(|&&b| b == b' ' || b == b'\n').count();
    let paragraphs = bytes.windows(2).filter(|w| w == b"\n\n").count();
    (1 + breaks).saturating_sub(paragraphs)
}

/// `short_hash`: xxh3_64 of the UTF-8 bytes as 16 lowercase hex digits (`xxh3_64_hexdigest`).
fn hex64(bytes: &[u8]) -> String {
    let mut h = xxh3_64(bytes);
    let mut out = [0u8; 16];
    for slot in out.iter_mut().rev() {
        *slot = b"0123456789abcdef"[(h & 0xf) as usize];
        h >>= 4;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// The phrases `_REPLY_TO` starts with (matched ignoring case).
const REPLY_LEADS: [&[u8]; 2] = [b"in reply to", b"replying to"];

/// False only when `reply_marker(s)` is certainly None (`s` is non-empty): it does not start
/// with "(", nor with `_REPLY_TO`'s phrases, and its first 80 characters, lowercased, do not
/// hold " wrote:". A non-ASCII character lowercases to no ASCII character of " wrote:" (the
/// tests check this against Python's `str.lower` for every code point), so it can only break a
/// match, never make one; but `re.IGNORECASE` matches "i" with "ı" and "İ", so a non-ASCII
/// character among the phrase's first characters answers true.
fn may_be_marker(s: &str) -> bool {
    let bytes = s.as_bytes();
    match bytes.first() {
        None => return false,
        Some(b'(') => return true,
        Some(b'I' | b'i' | b'R' | b'r') => {
            let head = bytes.get(..11).unwrap_or(bytes);
            if !head.is_ascii()
                || REPLY_LEADS
                    .iter()
                    .any(|lead| head.len() == lead.len() && head.eq_ignore_ascii_case(lead))
            {
                return true;
            }
        }
        Some(_) => {}
    }
    // the bytes of the first 80 characters: without a ":" there, " wrote:" cannot be there
    let head = match bytes.get(..80) {
        Some(first) if !first.is_ascii() => {
            s.char_indices().nth(80).map_or(bytes, |(i, _)| bytes.get(..i).unwrap_or(bytes))
        }
        Some(first) => first,
        None => bytes,
    };
    if !head.contains(&b':') {
        return false;
    }
    if head.is_ascii() {
        return head.windows(7).any(|w| w.eq_ignore_ascii_case(b" wrote:"));
    }
    // the first 80 characters, ASCII lowercased, anything else as a byte no needle holds
    let mut low = [0u8; 80];
    for (slot, c) in low.iter_mut().zip(s.chars()) {
        *slot = if c.is_ascii() { (c as u8).to_ascii_lowercase() } else { 0 };
    }
    let n = s.chars().take(80).count();
    let needle = b" wrote:";
    low.get(..n).unwrap_or_default().windows(needle.len()).any(|w| w == needle)
}

/// The cached mention lists take at most this many names of at most this many characters,
/// and strings of at most `CACHED_CHARS` (records.py `_CACHED_CHARS`); others take the reference.
const CACHED_CHARS: usize = 1024;
const CACHED_NAMES: usize = 16;
const CACHED_NAME_CHARS: usize = 128;

/// `raw[key]` when present and not None.
fn field<'py>(
    raw: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(raw.get_item(key)?.filter(|v| !v.is_none()))
}

/// What a field of the common case holds: nothing (absent, None or ""), a str, or something
/// the reference must handle (`Other`).
enum Str<'py> {
    Empty,
    Text(Bound<'py, PyString>),
    Other,
}

fn str_field<'py>(raw: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> PyResult<Str<'py>> {
    Ok(match field(raw, key)? {
        None => Str::Empty,
        Some(v) => match v.cast_exact::<PyString>() {
            Ok(s) if s.is_empty()? => Str::Empty,
            Ok(s) => Str::Text(s.clone()),
            Err(_) => Str::Other,
        },
    })
}

/// The mentions of the common case: none (absent, None, "" or []), or the argument of the
/// cached `_cached_mentions` (a short str, or a short list of short strs as a tuple);
/// `mentions_arg` answers None for what the reference handles.
enum Mentions<'py> {
    None,
    Cached(Bound<'py, PyAny>),
}

fn mentions_arg<'py>(value: Option<Bound<'py, PyAny>>) -> PyResult<Option<Mentions<'py>>> {
    let Some(value) = value else {
        return Ok(Some(Mentions::None));
    };
    if let Ok(s) = value.cast_exact::<PyString>() {
        let n = s.len()?;
        return Ok(match n {
            0 => Some(Mentions::None),
            n if n <= CACHED_CHARS => Some(Mentions::Cached(value.clone())),
            _ => None,
        });
    }
    let Ok(list) = value.cast_exact::<PyList>() else {
        return Ok(None);
    };
    if list.is_empty() {
        return Ok(Some(Mentions::None));
    }
    if list.len() > CACHED_NAMES {
        return Ok(None);
    }
    for item in list.iter() {
        match item.cast_exact::<PyString>() {
            Ok(s) if s.len()? <= CACHED_NAME_CHARS => {}
            _ => return Ok(None),
        }
    }
    Ok(Some(Mentions::Cached(list.to_tuple().into_any())))
}

/// `"c-" + short_hash(f"{article}\x1f{local}")`.
fn comment_id(article: &str, local: &str) -> String {
    let mut key = Vec::with_capacity(article.len() + 1 + local.len());
    key.extend_from_slice(article.as_bytes());
    key.push(0x1f);
    key.extend_from_slice(local.as_bytes());
    let mut id = String::with_capacity(18);
    id.push_str("c-");
    id.push_str(&hex64(&key));
    id
}

/// The clean text of a raw text when the common passes are all it needs and it is not empty
/// (as `normalize_plain`), with whether it is the raw text unchanged; else None.
fn clean_text(raw: &Bound<'_, PyString>) -> Option<(String, bool)> {
    let text = raw.to_str().ok()?; // lone surrogates: not UTF-8, the reference handles them
    if may_need_python(text) {
        return None;
    }
    let (out, dropped) = clean(text)?;
    // dropping a character can join two into something a rare pass changes
    if dropped && may_need_python(&out) {
        return None;
    }
    if out.is_empty() {
        return None; // the reference rejects it
    }
    let same = out == text;
    Some((out, same))
}

/// The clean comment's fields, in the order of `_py_normalize_comment`'s record.
const RECORD_KEYS: [&str; 25] = [
    "schema_version",
    "comment_id",
    "article_id",
    "source",
    "source_comment_id",
    "number",
    "author",
    "text",
    "own_text",
    "quotes",
    "reply_to_author",
    "mentions",
    "removed",
    "language",
    "word_count",
    "content_hash",
    "posted_at",
    "event_time",
    "processed_at",
    "pipeline_version",
    "spam_suspect",
    "spam_cluster_size",
    "tags",
    "notes",
    "moderation",
];

#[pyclass(frozen, module = "newspipe_native")]
pub struct CommentBuilder {
    /// `_comment_article_id(raw, source)`
    article_id: Py<PyAny>,
    /// `_cached_article_id(url, source, source_id, title)`, the cached `make_article_id`
    cached_article_id: Py<PyAny>,
    /// `_author(raw_author)`: the clean author of a short str, or None
    author: Py<PyAny>,
    /// `_cached_mentions(value)`: a tuple of names
    mentions: Py<PyAny>,
    /// `_leading_mention(text)`: the name of a leading "@name", or None
    leading_mention: Py<PyAny>,
    /// `parse_time(value, field, now)`
    parse_time: Py<PyAny>,
    /// the key the caller finds the text to classify under (records.py `LANGUAGE_TEXT`)
    language_text: Py<PyAny>,
    /// the record's keys in the reference's order: a copy is a record with its final table
    /// size, so filling it never grows the table
    template: Py<PyDict>,
}

impl CommentBuilder {
    /// `_comment_article_id(raw, source)`: the raw `article_id` when it is a str, the cached id
    /// of a title when that is all the comment has of its article (Fox News), else the call.
    fn comment_article_id<'py>(
        &self,
        raw: &Bound<'py, PyDict>,
        source: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = raw.py();
        match str_field(raw, intern!(py, "article_id"))? {
            Str::Text(aid) => return Ok(aid.into_any()),
            Str::Other => return self.article_id.bind(py).call1((raw, source)),
            Str::Empty => {}
        }
        if let (Str::Empty, Str::Text(title)) = (
            str_field(raw, intern!(py, "article_url"))?,
            str_field(raw, intern!(py, "article_title"))?,
        ) {
            if title.len()? <= CACHED_CHARS {
                let none = py.None();
                return self.cached_article_id.bind(py).call1((&none, source, &none, title));
            }
        }
        self.article_id.bind(py).call1((raw, source))
    }
}

#[pymethods]
impl CommentBuilder {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        schema_version: Py<PyAny>,
        pipeline_version: Py<PyAny>,
        article_id: Py<PyAny>,
        cached_article_id: Py<PyAny>,
        author: Py<PyAny>,
        mentions: Py<PyAny>,
        leading_mention: Py<PyAny>,
        parse_time: Py<PyAny>,
        language_text: Py<PyAny>,
    ) -> PyResult<Self> {
        let template = PyDict::new(py);
        for key in RECORD_KEYS {
            template.set_item(key, py.None())?;
        }
        // the fields every record of the common case has the same immutable value for
        template.set_item("schema_version", &schema_version)?;
        template.set_item("removed", false)?;
        template.set_item("pipeline_version", &pipeline_version)?;
        template.set_item("spam_suspect", false)?;
        template.set_item("spam_cluster_size", 1)?;
        Ok(Self {
            article_id,
            cached_article_id,
            author,
            mentions,
            leading_mention,
            parse_time,
            language_text,
            template: template.unbind(),
        })
    }

    /// The clean record of `raw` (without language detection: a record whose language the
    /// caller must find holds its text under `language_text`), or None when `raw` is not the
    /// common case and the caller must run the reference.
    fn build<'py>(
        &self,
        raw: &Bound<'py, PyAny>,
        event_time: &Bound<'py, PyAny>,
        now: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let py = raw.py();
        let Ok(raw) = raw.cast_exact::<PyDict>() else {
            return Ok(None);
        };
        // Checks first (nothing here can raise for a dict with str keys): whatever is unusual
        // goes to the reference before any Python function has been called.
        let source = match str_field(raw, intern!(py, "source"))? {
            Str::Empty => intern!(py, "unknown").clone(),
            Str::Text(s) => s,
            Str::Other => return Ok(None),
        };
        if let Some(removed) = field(raw, intern!(py, "removed"))? {
            if removed.is_truthy()? {
                return Ok(None);
            }
        }
        let Some(raw_text) = field(raw, intern!(py, "text"))? else {
            return Ok(None);
        };
        let Ok(raw_text) = raw_text.cast_exact::<PyString>() else {
            return Ok(None);
        };
        let Some((text, same)) = clean_text(raw_text) else {
            return Ok(None);
        };
        if may_be_marker(&text) {
            return Ok(None);
        }
        let raw_author = match str_field(raw, intern!(py, "author"))? {
            Str::Empty => None,
            Str::Text(s) if s.len()? <= CACHED_CHARS => Some(s),
            _ => return Ok(None),
        };
        let number = field(raw, intern!(py, "number"))?;
        if let Some(n) = &number {
            if !n.is_exact_instance_of::<PyInt>() {
                return Ok(None);
            }
        }
        let source_comment_id = match str_field(raw, intern!(py, "source_comment_id"))? {
            Str::Empty => None,
            Str::Text(s) => Some(s),
            Str::Other => return Ok(None),
        };
        if !matches!(str_field(raw, intern!(py, "quotes"))?, Str::Empty) {
            return Ok(None);
        }
        let Some(mentions_arg) = mentions_arg(field(raw, intern!(py, "mentions"))?)? else {
            return Ok(None);
        };
        let language = match str_field(raw, intern!(py, "language"))? {
            Str::Empty => None,
            Str::Text(s) => Some(s),
            Str::Other => return Ok(None),
        };
        if let Some(notes) = field(raw, intern!(py, "notes"))? {
            match notes.cast_exact::<PyList>() {
                Ok(list) if list.is_empty() => {}
                _ => return Ok(None),
            }
        }
        let posted_raw = match field(raw, intern!(py, "posted_at"))? {
            Some(v) if !is_empty_str(&v) => Some(v),
            _ => None,
        };
        let captured_raw = match field(raw, intern!(py, "captured_at"))? {
            Some(v) if !is_empty_str(&v) => Some(v),
            _ => None,
        };

        // The Python parts, in the reference's order.
        let aid = self.comment_article_id(raw, &source)?;
        let author = match &raw_author {
            None => None,
            Some(a) => Some(self.author.bind(py).call1((a,))?).filter(|v| !v.is_none()),
        };
        let local_id: String = if let Some(s) = &source_comment_id {
            let Ok(s) = s.to_str() else {
                return Ok(None);
            };
            s.to_owned()
        } else if let Some(n) = &number {
            n.str()?.to_str()?.to_owned()
        } else {
            let name = match &author {
                None => "",
                Some(a) => match a.cast_exact::<PyString>().ok().and_then(|s| s.to_str().ok()) {
                    Some(s) => s,
                    None => return Ok(None),
                },
            };
            let mut key = Vec::with_capacity(name.len() + 1 + text.len());
            key.extend_from_slice(name.as_bytes());
            key.push(0x1f);
            key.extend_from_slice(text.as_bytes());
            hex64(&key)
        };
        let mentions = match mentions_arg {
            Mentions::None => PyList::empty(py),
            Mentions::Cached(arg) => {
                let names = self.mentions.bind(py).call1((arg,))?;
                let Ok(names) = names.cast_exact::<PyTuple>() else {
                    return Ok(None);
                };
                names.to_list()
            }
        };
        let text_obj = if same { raw_text.clone() } else { PyString::new(py, &text) };
        let mut reply_to: Option<Bound<'py, PyAny>> = None;
        if text.starts_with('@') {
            let name = self.leading_mention.bind(py).call1((&text_obj,))?;
            if !name.is_none() {
                if !mentions.contains(&name)? {
                    mentions.insert(0, &name)?;
                }
                reply_to = Some(name);
            }
        }
        let parse_time = self.parse_time.bind(py);
        let posted_at = match posted_raw {
            Some(v) => parse_time.call1((v, intern!(py, "posted_at"), now))?,
            None => py.None().into_bound(py),
        };
        let captured_at = match captured_raw {
            Some(v) => Some(parse_time.call1((v, intern!(py, "captured_at"), now))?),
            None => None,
        };
        let event = if posted_at.is_truthy()? {
            posted_at.clone()
        } else if let Some(c) = captured_at.filter(|c| c.is_truthy().unwrap_or(false)) {
            c
        } else if event_time.is_truthy()? {
            event_time.clone()
        } else {
            now.clone()
        };
        let Some(aid_str) = aid.cast_exact::<PyString>().ok().and_then(|s| s.to_str().ok()) else {
            return Ok(None);
        };
        let cid = comment_id(aid_str, &local_id);

        // the template holds the constant fields and None for the others
        let record = self.template.bind(py).copy()?;
        record.set_item(intern!(py, "comment_id"), cid)?;
        record.set_item(intern!(py, "article_id"), &aid)?;
        record.set_item(intern!(py, "source"), &source)?;
        if let Some(v) = &source_comment_id {
            record.set_item(intern!(py, "source_comment_id"), v)?;
        }
        if let Some(v) = &number {
            record.set_item(intern!(py, "number"), v)?;
        }
        if let Some(v) = &author {
            record.set_item(intern!(py, "author"), v)?;
        }
        record.set_item(intern!(py, "text"), &text_obj)?;
        record.set_item(intern!(py, "own_text"), &text_obj)?;
        if let Some(v) = &reply_to {
            record.set_item(intern!(py, "reply_to_author"), v)?;
        }
        record.set_item(intern!(py, "mentions"), &mentions)?;
        if let Some(v) = &language {
            record.set_item(intern!(py, "language"), v)?;
        }
        record.set_item(intern!(py, "word_count"), word_count(&text))?;
        record.set_item(intern!(py, "content_hash"), hex64(text.as_bytes()))?;
        if !posted_at.is_none() {
            record.set_item(intern!(py, "posted_at"), &posted_at)?;
        }
        record.set_item(intern!(py, "event_time"), &event)?;
        record.set_item(intern!(py, "processed_at"), now)?;
        record.set_item(intern!(py, "tags"), PyList::empty(py))?;
        record.set_item(intern!(py, "notes"), PyList::empty(py))?;
        let moderation = PyDict::new(py);
        moderation.set_item(intern!(py, "status"), intern!(py, "approved"))?;
        moderation.set_item(intern!(py, "toxicity"), 0.0)?;
        moderation.set_item(intern!(py, "flags"), PyList::empty(py))?;
        record.set_item(intern!(py, "moderation"), moderation)?;
        if language.is_none() {
            record.set_item(self.language_text.bind(py), &text_obj)?;
        }
        Ok(Some(record))
    }
}

fn is_empty_str(v: &Bound<'_, PyAny>) -> bool {
    v.cast_exact::<PyString>().map(|s| s.is_empty().unwrap_or(false)).unwrap_or(false)
}

/// The first second of the year 10000: from there on strftime's `%Y` has five digits.
const EPOCH_LIMIT: i64 = 253_402_300_800;

/// `time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))` for 0 <= seconds < the year
/// 10000 (epoch time has no leap seconds: a day is always 86,400 of them), else None (the
/// caller asks strftime). The date is Howard Hinnant's `civil_from_days`; the text is written
/// into a fixed buffer (a `format!` was most of the call).
#[pyfunction]
pub fn iso_utc<'py>(seconds: &Bound<'py, PyAny>) -> Option<Bound<'py, PyString>> {
    if !seconds.is_exact_instance_of::<PyInt>() {
        return None;
    }
    let py = seconds.py();
    let seconds: i64 = seconds.extract().ok()?;
    if !(0..EPOCH_LIMIT).contains(&seconds) {
        return None;
    }
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = *b"0000-00-00T00:00:00Z";
    let digits = |at: &mut [u8], mut v: i64| {
        for d in at.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(&mut out[0..4], year);
    digits(&mut out[5..7], month);
    digits(&mut out[8..10], day);
    digits(&mut out[11..13], rest / 3_600);
    digits(&mut out[14..16], rest / 60 % 60);
    digits(&mut out[17..19], rest % 60);
    // every byte written is an ASCII digit or one of the template's: valid UTF-8
    let text = std::str::from_utf8(&out).ok()?;
    Some(PyString::new(py, text))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch seconds of a time in the pipeline's one format, "YYYY-MM-DDTHH:MM:SSZ" (what
/// `iso_utc` writes and every clean record carries), as
/// `datetime.fromisoformat(text).timestamp()` gives them; None for any other text, a date
/// that does not exist or a year before 1970, which the caller parses in Python.
#[pyfunction]
pub fn epoch_of_iso(text: &Bound<'_, PyAny>) -> Option<f64> {
    let text = text.cast_exact::<PyString>().ok()?;
    let b = text.to_str().ok()?.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        b[from..to]
            .iter()
            .try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if year < 1970 || day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3_600 + minute * 60 + second) as f64)
}
