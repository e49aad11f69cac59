//! State entries out of the cyclic garbage collector's sight.
//!
//! An in-memory store (`memory://`) keeps every committed entry as Python objects for as long as
//! the horizon. An article's tags are a dict holding a list of dicts that hold lists, and such
//! containers stay tracked: every young, middle and full collection walks them again, and a
//! full collection's pause grows with the state. CPython untracks a tuple of plain values at
//! its next collection, but never a list, and a dict only in a full collection.
//!
//! Plain JSON-like data (dicts, lists and tuples down to str, int, float, bool, None and bytes)
//! cannot be part of a reference cycle, so the collector has nothing to find in it: untracking
//! it is what CPython does for such tuples itself. Reference counting still frees it. Anything
//! else inside (another type, or nesting deeper than `MAX_DEPTH`) leaves the containers above
//! it tracked, as they were.
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

const MAX_DEPTH: usize = 32;

fn atomic(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_none()
        || obj.is_exact_instance_of::<PyString>()
        || obj.is_exact_instance_of::<PyInt>()
        || obj.is_exact_instance_of::<PyFloat>()
        || obj.is_exact_instance_of::<PyBool>()
        || obj.is_exact_instance_of::<PyBytes>()
}

/// Whether `obj` is plain data; its containers are untracked on the way (`count` of them).
fn plain(obj: &Bound<'_, PyAny>, depth: usize, count: &mut usize) -> bool {
    if atomic(obj) {
        return true;
    }
    if depth >= MAX_DEPTH {
        return false;
    }
    let mut ok = true;
    if let Ok(d) = obj.cast_exact::<PyDict>() {
        for (k, v) in d.iter() {
            ok &= atomic(&k) && plain(&v, depth + 1, count);
        }
    } else if let Ok(l) = obj.cast_exact::<PyList>() {
        for v in l.iter() {
            ok &= plain(&v, depth + 1, count);
        }
    } else if let Ok(t) = obj.cast_exact::<PyTuple>() {
        for v in t.iter() {
            ok &= plain(&v, depth + 1, count);
        }
    } else {
        return false;
    }
    if ok {
        // SAFETY: `obj` is a live dict, list or tuple (GC-capable types); untracking one that
        // is not tracked is a no-op (CPython checks)
        unsafe {
            if pyo3::ffi::PyObject_GC_IsTracked(obj.as_ptr()) == 1 {
                pyo3::ffi::PyObject_GC_UnTrack(obj.as_ptr().cast());
                *count += 1;
            }
        }
    }
    ok
}

/// Untrack the plain-data containers of each of `values` (see the module docs); returns how
/// many containers were untracked.
#[pyfunction]
pub fn untrack_data(values: &Bound<'_, PyAny>) -> PyResult<usize> {
    let mut count = 0;
    for value in values.try_iter()? {
        plain(&value?, 0, &mut count);
    }
    Ok(count)
}
