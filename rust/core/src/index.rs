//! Dataset indexing (see the data issue). Filled in by its own change.
