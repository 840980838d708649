//! mmlop-core: the pure-Rust half of mmlop.
//!
//! Nothing in this crate knows about Python; the `mmlop-native` crate is a thin pyo3
//! binding over it.
//!
//! - [`index`]: parallel scanning and parsing of few-shot dataset layouts into a compact index.
//! - [`store`]: the memory-mapped frozen-feature store.

mod atomic;
pub mod index;
pub mod store;

/// Version of the core crate, reported by `mmlop info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
