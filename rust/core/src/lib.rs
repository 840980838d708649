//! mmlop-core: the pure-Rust half of mmlop.
//!
//! Nothing in this crate knows about Python; the `mmlop-native` crate is a thin pyo3
//! binding over it.

/// Version of the core crate, reported by `mmlop info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
