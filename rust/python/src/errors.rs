//! The binding's exceptions: core errors are raised as `mmlop.errors.DatasetError` / `mmlop.errors.StoreError`.
//!
//! The types are defined in Python, so that they derive from the package's one base `MmlopError` (and from
//! `ValueError` / `Exception`, so existing `except` clauses keep working); each is looked up once, on first use,
//! and re-exported as `mmlop._native.DatasetError` / `StoreError`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static DATASET_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static STORE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn package_type<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, "mmlop.errors", name)
}

fn raise(cell: &'static PyOnceLock<Py<PyType>>, name: &str, message: String) -> PyErr {
    Python::attach(|py| match package_type(py, cell, name) {
        Ok(ty) => PyErr::from_type(ty.clone(), message),
        Err(import_error) => import_error, // mmlop.errors missing: say so rather than lose the message's type
    })
}

/// A `mmlop.errors.DatasetError` with `message`.
pub fn dataset_error(message: String) -> PyErr {
    raise(&DATASET_ERROR, "DatasetError", message)
}

/// A `mmlop.errors.StoreError` with `message`.
pub fn store_error(message: String) -> PyErr {
    raise(&STORE_ERROR, "StoreError", message)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("DatasetError", package_type(py, &DATASET_ERROR, "DatasetError")?)?;
    m.add("StoreError", package_type(py, &STORE_ERROR, "StoreError")?)?;
    Ok(())
}
