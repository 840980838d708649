//! Python binding of `mmlop_core::index`: converts types and maps errors, nothing more.
//!
//! Indexes cross the boundary as one `bytes` path buffer plus int64 numpy arrays, never as one
//! Python object per item.

// See mmlop_core::index: errors are rare and cold, so their size is not worth boxing.
#![allow(clippy::result_large_err)]

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use mmlop_core::index::{self, FileOrder, IndexError, PathIndex};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

fn to_py(e: IndexError) -> PyErr {
    crate::errors::dataset_error(e.to_string())
}

type ScanResult<'py> = (Vec<OsString>, Bound<'py, PyBytes>, Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

type CachedScanResult<'py> =
    (Vec<OsString>, Bound<'py, PyBytes>, Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>, Bound<'py, PyDict>);

type PyIndex<'py> = (Bound<'py, PyBytes>, Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

fn index_to_py(py: Python<'_>, idx: PathIndex) -> PyIndex<'_> {
    (PyBytes::new(py, &idx.buf), PyArray1::from_vec(py, idx.offsets), PyArray1::from_vec(py, idx.labels))
}

/// Borrowed path slices `buf[starts[i]..ends[i]]`, with the bounds checked.
fn slices<'a>(buf: &'a [u8], starts: &[i64], ends: &[i64]) -> PyResult<Vec<&'a [u8]>> {
    if starts.len() != ends.len() {
        return Err(PyValueError::new_err(format!(
            "starts and ends must have the same length, got {} and {}",
            starts.len(),
            ends.len()
        )));
    }
    starts
        .iter()
        .zip(ends)
        .map(|(&s, &e)| {
            if 0 <= s && s <= e && (e as usize) <= buf.len() {
                Ok(&buf[s as usize..e as usize])
            } else {
                Err(PyValueError::new_err(format!("path span {s}..{e} lies outside the buffer of {} bytes", buf.len())))
            }
        })
        .collect()
}

/// Sorted names of the non-hidden sub-directories of `root`.
#[pyfunction]
fn list_class_dirs(py: Python<'_>, root: PathBuf) -> PyResult<Vec<OsString>> {
    let dirs = py.detach(|| index::list_class_dirs(&root)).map_err(to_py)?;
    Ok(dirs.iter().map(|d| index::bytes_to_path(d).into_os_string()).collect())
}

/// Scans `root/<class>/<file>` in parallel; returns `(classes, buf, offsets, labels)`.
#[pyfunction]
#[pyo3(signature = (root, classes=None, sort_files=true))]
fn scan_class_folders<'py>(
    py: Python<'py>,
    root: PathBuf,
    classes: Option<Vec<OsString>>,
    sort_files: bool,
) -> PyResult<ScanResult<'py>> {
    let classes = classes.map(|c| c.iter().map(|s| index::os_to_bytes(s)).collect());
    let order = if sort_files { FileOrder::Sorted } else { FileOrder::Filesystem };
    let scan = py.detach(|| index::scan_class_folders(&root, classes, order)).map_err(to_py)?;
    let names = scan.classes.iter().map(|d| index::bytes_to_path(d).into_os_string()).collect();
    let (buf, offsets, labels) = index_to_py(py, scan.index);
    Ok((names, buf, offsets, labels))
}

/// `scan_class_folders` through the persistent listing cache at `cache`: a class folder whose
/// identity and timestamps are unchanged (and older than `racy_window_s`) is not read again.
/// Returns `(classes, buf, offsets, labels, report)`; `report` holds `reused`, `listed`, `invalid`,
/// `written` and `write_error`. Cache problems are reported there, never raised.
#[pyfunction]
#[pyo3(signature = (root, cache, classes=None, sort_files=true, racy_window_s=3.0))]
fn scan_class_folders_cached<'py>(
    py: Python<'py>,
    root: PathBuf,
    cache: PathBuf,
    classes: Option<Vec<OsString>>,
    sort_files: bool,
    racy_window_s: f64,
) -> PyResult<CachedScanResult<'py>> {
    if !(racy_window_s.is_finite() && racy_window_s >= 0.0) {
        return Err(PyValueError::new_err(format!("racy_window_s must be a finite number >= 0, got {racy_window_s}")));
    }
    let classes = classes.map(|c| c.iter().map(|s| index::os_to_bytes(s)).collect());
    let order = if sort_files { FileOrder::Sorted } else { FileOrder::Filesystem };
    let opts = index::CacheOptions { path: cache, racy_window: Duration::from_secs_f64(racy_window_s) };
    let (scan, report) = py.detach(|| index::scan_class_folders_cached(&root, classes, order, &opts)).map_err(to_py)?;
    let names = scan.classes.iter().map(|d| index::bytes_to_path(d).into_os_string()).collect();
    let (buf, offsets, labels) = index_to_py(py, scan.index);
    let out = PyDict::new(py);
    out.set_item("reused", report.reused)?;
    out.set_item("listed", report.listed)?;
    out.set_item("invalid", report.invalid)?;
    out.set_item("written", report.written)?;
    out.set_item("write_error", report.write_error)?;
    Ok((names, buf, offsets, labels, out))
}

/// Parses a split file; returns `({split: (buf, offsets, labels)}, classnames)`.
#[pyfunction]
fn read_split_json<'py>(py: Python<'py>, path: PathBuf) -> PyResult<(Bound<'py, PyDict>, Vec<String>)> {
    let split = py.detach(|| index::read_split_json(&path)).map_err(to_py)?;
    let out = PyDict::new(py);
    for (name, idx) in split.splits {
        out.set_item(name, index_to_py(py, idx))?;
    }
    Ok((out, split.classnames))
}

/// Positions (ascending) of the paths `buf[starts[i]:ends[i]]` under `prefix` that are not files.
#[pyfunction]
fn missing_files<'py>(
    py: Python<'py>,
    prefix: PathBuf,
    buf: &[u8],
    starts: PyReadonlyArray1<'py, i64>,
    ends: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let paths = slices(buf, starts.as_slice()?, ends.as_slice()?)?;
    let missing = py.detach(|| index::missing_files(&prefix, &paths));
    Ok(PyArray1::from_vec(py, missing.into_iter().map(|i| i as i64).collect()))
}

/// For each query path, its position among the indexed paths, or -1.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn lookup_paths<'py>(
    py: Python<'py>,
    buf: &[u8],
    starts: PyReadonlyArray1<'py, i64>,
    ends: PyReadonlyArray1<'py, i64>,
    query_buf: &[u8],
    query_starts: PyReadonlyArray1<'py, i64>,
    query_ends: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let hay = slices(buf, starts.as_slice()?, ends.as_slice()?)?;
    let needles = slices(query_buf, query_starts.as_slice()?, query_ends.as_slice()?)?;
    let found = py.detach(|| index::lookup_paths(&hay, &needles));
    Ok(PyArray1::from_vec(py, found))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(list_class_dirs, m)?)?;
    m.add_function(wrap_pyfunction!(scan_class_folders, m)?)?;
    m.add_function(wrap_pyfunction!(scan_class_folders_cached, m)?)?;
    m.add_function(wrap_pyfunction!(read_split_json, m)?)?;
    m.add_function(wrap_pyfunction!(missing_files, m)?)?;
    m.add_function(wrap_pyfunction!(lookup_paths, m)?)?;
    Ok(())
}
