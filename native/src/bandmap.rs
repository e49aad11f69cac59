//! The near-duplicate index's band entries (`b:<band>:<12 hex>` -> `[t, article_id]`) held in
//! memory, beside the RocksDB store that stays their record (`pipeline.dedup.state.
//! BandMirroredRocks`). Every article looks up all its bands and most lookups miss; through
//! RocksDB each costs a few microseconds (a hit reads and searches a table block), here a hash
//! probe. An entry is a 64-bit key (band number and the 48 hash bits the key spells), the
//! time and a reference to the article id string that the article's bands share: 35 to 70
//! bytes with the table's spare room, where a Python dict entry of the same key and list
//! would take about 200.
use crate::fxhash::FxMap;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use std::collections::HashMap;

/// A mirrored value: the usual `[t, article_id]`, or a mark that the key holds something else
/// (RocksDB answers for it, so the mirror never hands out an object a caller could change).
enum Slot {
    Entry(i64, Py<PyString>),
    Other,
}

/// `b:<band>:<12 lowercase hex>` as one u64 (band << 48 | hash); None for any other spelling,
/// which the Python side keeps in RocksDB only.
fn band_key(key: &str) -> Option<u64> {
    let rest = key.strip_prefix("b:")?;
    let (band, hex) = rest.split_once(':')?;
    if band.is_empty() || band.len() > 5 || !band.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if band.len() > 1 && band.starts_with('0') {
        return None; // "b:01:" is not what `for_each_band` writes: not the same key as "b:1:"
    }
    let band: u64 = band.parse().ok()?;
    if band > 0xFFFF || hex.len() != 12 {
        return None;
    }
    let mut h = 0u64;
    for b in hex.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        h = (h << 4) | u64::from(d);
    }
    Some((band << 48) | h)
}

/// The band entries of one near-dup index store.
#[pyclass(module = "newspipe_native")]
pub struct BandMap {
    map: FxMap<u64, Slot>,
}

#[pymethods]
impl BandMap {
    #[new]
    fn new() -> Self {
        BandMap { map: FxMap::default() }
    }

    /// Whether `key` is one this map holds (the canonical band key spelling).
    #[staticmethod]
    fn handles(key: &str) -> bool {
        band_key(key).is_some()
    }

    /// The value of a band key as a new list, `default` when absent. KeyError when the map
    /// cannot say: a key `handles` refuses, or one whose value is not `[int, str]`.
    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let k =
            band_key(key).ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(key.to_owned()))?;
        match self.map.get(&k) {
            Some(Slot::Entry(t, owner)) => Ok(PyList::new(
                py,
                [t.into_pyobject(py)?.into_any(), owner.bind(py).clone().into_any()],
            )?
            .into_any()),
            Some(Slot::Other) => Err(pyo3::exceptions::PyKeyError::new_err(key.to_owned())),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    /// Store each `(key, value)` whose key `handles` accepts (others are skipped: RocksDB
    /// alone holds them). Equal article ids within one call share one string object, so a
    /// store restored from RocksDB or a changelog costs one string per article, not per band.
    fn put_many(&mut self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut owners: HashMap<String, Py<PyString>> = HashMap::new();
        let mut last: Option<(Bound<'_, PyString>, Py<PyString>)> = None; // object -> shared one
        for item in items.try_iter()? {
            let item = item?;
            let key = item.get_item(0)?;
            let Some(k) = band_key(key.cast::<PyString>()?.to_str()?) else { continue };
            let value = item.get_item(1)?;
            let slot = match entry_of(&value) {
                Some((t, owner)) => {
                    // the bands of one article usually carry the very same string object
                    let shared = match &last {
                        Some((seen, shared)) if seen.is(&owner) => shared.clone_ref(py),
                        _ => {
                            let text = owner.to_str()?;
                            let shared = match owners.get(text) {
                                Some(s) => s.clone_ref(py),
                                None => {
                                    let s = owner.clone().unbind();
                                    owners.insert(text.to_owned(), s.clone_ref(py));
                                    s
                                }
                            };
                            last = Some((owner, shared.clone_ref(py)));
                            shared
                        }
                    };
                    Slot::Entry(t, shared)
                }
                None => Slot::Other,
            };
            self.map.insert(k, slot);
        }
        Ok(())
    }

    /// Forget a band key (the expiry sweep's delete); other keys are ignored.
    fn remove(&mut self, key: &str) {
        if let Some(k) = band_key(key) {
            self.map.remove(&k);
        }
    }

    fn clear(&mut self) {
        self.map.clear();
    }

    fn __len__(&self) -> usize {
        self.map.len()
    }
}

/// `[int, str]` with an int that fits i64: the usual band value.
fn entry_of<'py>(value: &Bound<'py, PyAny>) -> Option<(i64, Bound<'py, PyString>)> {
    let list = value.cast::<PyList>().ok()?;
    if !list.is_exact_instance_of::<PyList>() || list.len() != 2 {
        return None;
    }
    let t = list.get_item(0).ok()?;
    if !t.is_exact_instance_of::<pyo3::types::PyInt>() {
        return None; // a bool or float stays an object: the mirror must give back the same type
    }
    let t: i64 = t.extract().ok()?;
    let owner = list.get_item(1).ok()?;
    if !owner.is_exact_instance_of::<PyString>() {
        return None;
    }
    Some((t, owner.cast_into::<PyString>().ok()?))
}

#[cfg(test)]
mod tests {
    use super::band_key;

    #[test]
    fn band_keys_parse_only_in_their_canonical_spelling() {
        assert_eq!(band_key("b:0:000000000000"), Some(0));
        assert_eq!(band_key("b:3:00000000000f"), Some((3 << 48) | 15));
        assert_eq!(band_key("b:65535:ffffffffffff"), Some(u64::MAX));
        for bad in [
            "b:01:000000000000",
            "b:3:00000000000F",
            "b:3:0000000000",
            "g:3:000000000000",
            "b::000000000000",
            "b:65536:000000000000",
            "b:3:0000000000000",
            "b:+3:000000000000",
        ] {
            assert_eq!(band_key(bad), None, "{bad}");
        }
    }
}
