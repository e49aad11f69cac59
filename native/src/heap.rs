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
use pyo3::ffi;
use pyo3::prelude::*;

const MAX_DEPTH: usize = 32;

unsafe fn atomic(obj: *mut ffi::PyObject) -> bool {
    let t = ffi::Py_TYPE(obj);
    obj == ffi::Py_None()
        || t == &raw mut ffi::PyUnicode_Type
        || t == &raw mut ffi::PyLong_Type
        || t == &raw mut ffi::PyFloat_Type
        || t == &raw mut ffi::PyBool_Type
        || t == &raw mut ffi::PyBytes_Type
}

/// Whether `obj` is plain data; its containers are untracked on the way (`count` of them).
/// Over raw borrowed pointers: a walk through PyO3's typed handles made a reference per item
/// and cost as much as the collector's own walk it saves.
unsafe fn plain(obj: *mut ffi::PyObject, depth: usize, count: &mut usize) -> bool {
    if atomic(obj) {
        return true;
    }
    if depth >= MAX_DEPTH {
        return false;
    }
    let t = ffi::Py_TYPE(obj);
    let mut ok = true;
    if t == &raw mut ffi::PyDict_Type {
        let mut pos: ffi::Py_ssize_t = 0;
        let mut key: *mut ffi::PyObject = std::ptr::null_mut();
        let mut value: *mut ffi::PyObject = std::ptr::null_mut();
        while ffi::PyDict_Next(obj, &mut pos, &mut key, &mut value) != 0 {
            ok &= atomic(key) && plain(value, depth + 1, count);
        }
    } else if t == &raw mut ffi::PyList_Type {
        // the list cannot change under the walk: nothing here runs Python code
        for i in 0..ffi::PyList_Size(obj) {
            ok &= plain(ffi::PyList_GetItem(obj, i), depth + 1, count);
        }
    } else if t == &raw mut ffi::PyTuple_Type {
        for i in 0..ffi::PyTuple_Size(obj) {
            ok &= plain(ffi::PyTuple_GetItem(obj, i), depth + 1, count);
        }
    } else {
        return false;
    }
    // a container is untracked only when it is tracked: untracking one that is not is a no-op
    // in CPython, but then it would not count
    if ok && ffi::PyObject_GC_IsTracked(obj) == 1 {
        ffi::PyObject_GC_UnTrack(obj.cast());
        *count += 1;
    }
    ok
}

/// Untrack the plain-data containers of each of `values` (see the module docs); returns how
/// many containers were untracked.
#[pyfunction]
pub fn untrack_data(values: &Bound<'_, PyAny>) -> PyResult<usize> {
    let mut count = 0;
    for value in values.try_iter()? {
        let value = value?;
        // SAFETY: `value` is held for the call and the GIL is held; every pointer the walk
        // reads is borrowed from a container that holds it, and nothing runs Python code (no
        // destructor, no comparison) while it walks, so none can be freed under it
        unsafe { plain(value.as_ptr(), 0, &mut count) };
    }
    Ok(count)
}
