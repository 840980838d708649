//! `mmlop._native`: a thin pyo3 binding over `mmlop-core`.
//!
//! Each submodule only converts types and maps errors; all logic lives in the core crate.

use pyo3::prelude::*;

mod errors;
mod index;
mod store;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", mmlop_core::VERSION)?;
    errors::register(m)?;
    index::register(m)?;
    store::register(m)?;
    Ok(())
}
