//! The frozen-feature store: fixed-width float16/float32 rows addressed by 128-bit content keys, in one
//! memory-mapped file per store.
//!
//! - [`Store`] opens a published file read-only (O(1) checks, optional full verification) and looks
//!   rows up by key through an on-disk bucket table, so opening never reads the body.
//! - [`merge`] publishes old + new rows atomically (temporary file, fsync, rename) under a writer lock.
//!
//! The layout is described in [`format`]. Errors are [`StoreError`], each naming the file.

mod error;
pub mod format;
mod reader;
mod writer;

pub use error::{Result, StoreError};
pub use format::{Dtype, Spec};
pub use reader::Store;
pub use writer::{merge, MergeReport};

#[cfg(test)]
mod tests;
