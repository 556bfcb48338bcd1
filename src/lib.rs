//! Helpers shared by the end-to-end tests in `tests/` (the root package exists to host them).
