//! The binding's exception types. Each derives from both `mmlop.errors.MmlopError` (the package's one
//! exception base) and a built-in (`ValueError`, `Exception`), so `except MmlopError` catches native
//! errors and existing `except ValueError` callers keep working. The types are built once, at import.

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

static DATASET_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static STORE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn make_type<'py>(py: Python<'py>, name: &str, builtin: Bound<'py, PyType>, doc: &str) -> PyResult<Py<PyType>> {
    let base = py.import("mmlop.errors")?.getattr("MmlopError")?;
    let ns = PyDict::new(py);
    ns.set_item("__module__", "mmlop._native")?;
    ns.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, [base, builtin.into_any()])?;
    let ty = py.import("builtins")?.getattr("type")?.call1((name, bases, ns))?;
    Ok(ty.cast_into::<PyType>()?.unbind())
}

fn raise(cell: &PyOnceLock<Py<PyType>>, message: String) -> PyErr {
    Python::attach(|py| match cell.get(py) {
        Some(ty) => PyErr::from_type(ty.bind(py).clone(), message),
        // Unreachable once the module is imported (register builds both types); keep the message anyway.
        None => PyValueError::new_err(message),
    })
}

/// A `DatasetError` (an `MmlopError` and a `ValueError`) with `message`.
pub fn dataset_error(message: String) -> PyErr {
    raise(&DATASET_ERROR, message)
}

/// A `StoreError` (an `MmlopError` and an `Exception`) with `message`.
pub fn store_error(message: String) -> PyErr {
    raise(&STORE_ERROR, message)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let dataset = DATASET_ERROR.get_or_try_init(py, || {
        make_type(
            py,
            "DatasetError",
            py.get_type::<PyValueError>(),
            "A dataset is missing, malformed or inconsistent; the message names the file and what was expected.",
        )
    })?;
    let store = STORE_ERROR.get_or_try_init(py, || {
        make_type(
            py,
            "StoreError",
            py.get_type::<PyException>(),
            "A feature store file is missing, corrupt, truncated, or holds other rows than expected. The message names the file.",
        )
    })?;
    m.add("DatasetError", dataset.bind(py))?;
    m.add("StoreError", store.bind(py))?;
    Ok(())
}
