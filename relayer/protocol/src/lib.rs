//! The relayer protocol as a pure state machine (filled in by the relayer work).
