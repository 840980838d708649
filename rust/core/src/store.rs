//! Frozen-feature store (see the cache issue). Filled in by its own change.
