//! The expiry sweep's scan (`pipeline.dedup.state.expire_before`): each entry's time read as
//! `entry_time` and `raw_entry_time` read it in Python (the references), without a Python step
//! per entry, since the sweep walks every entry of a store: RocksDB's values from their first
//! bytes, a dict store's entries from their first element or `t`.
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyTuple};

/// The time an entry's orjson bytes start with: the number after `[` or `{"t":`, up to the `,`,
/// `]` or `}` that ends it. None for any other value: Python decodes those.
pub fn leading_time(raw: &[u8]) -> Option<f64> {
    let rest = match raw.strip_prefix(b"[") {
        Some(rest) => rest,
        None => raw.strip_prefix(b"{\"t\":")?,
    };
    let end = rest.iter().position(|&b| matches!(b, b',' | b']' | b'}'))?;
    let number = &rest[..end];
    let plain = |b: &u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    if number.is_empty() || !number.iter().all(plain) {
        return None;
    }
    std::str::from_utf8(number).ok()?.parse::<f64>().ok()
}

/// Of the `(key, value)` byte pairs `items` yields (RocksDB's item iterator), the keys whose
/// value's `leading_time` is before `cutoff`, and the pairs whose time it cannot read.
#[pyfunction]
pub fn stale_entries<'py>(
    items: &Bound<'py, PyAny>,
    cutoff: f64,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
    let py = items.py();
    let stale = PyList::empty(py);
    let unread = PyList::empty(py);
    for item in items.try_iter()? {
        let item = item?;
        let pair = item.cast::<PyTuple>()?;
        let value = pair.get_item(1)?;
        match leading_time(value.cast::<PyBytes>()?.as_bytes()) {
            Some(t) if t < cutoff => stale.append(pair.get_item(0)?)?,
            Some(_) => {}
            None => unread.append(&item)?,
        }
    }
    Ok((stale, unread))
}

/// The time of an entry held as Python objects: a tuple's or list's first element, a dict's
/// `t`, when that is an int or a float (`entry_time` reads the same); None for anything else.
fn object_time(value: &Bound<'_, PyAny>) -> Option<f64> {
    let first = if let Ok(t) = value.cast_exact::<PyTuple>() {
        t.get_item(0).ok()?
    } else if let Ok(l) = value.cast_exact::<PyList>() {
        l.get_item(0).ok()?
    } else if let Ok(d) = value.cast_exact::<PyDict>() {
        d.get_item("t").ok()??
    } else {
        return None;
    };
    if first.is_exact_instance_of::<PyInt>() || first.is_exact_instance_of::<PyFloat>() {
        first.extract::<f64>().ok()
    } else {
        None
    }
}

/// Of the entries of `data` (a dict store: key -> tuple, list or dict), the keys whose time is
/// before `cutoff`, and the keys whose time it cannot read (Python reads those, `entry_time`).
#[pyfunction]
pub fn stale_in_dict<'py>(
    data: &Bound<'py, PyDict>,
    cutoff: f64,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
    let py = data.py();
    let stale = PyList::empty(py);
    let unread = PyList::empty(py);
    for (key, value) in data.iter() {
        match object_time(&value) {
            Some(t) if t < cutoff => stale.append(key)?,
            Some(_) => {}
            None => unread.append(key)?,
        }
    }
    Ok((stale, unread))
}
