//! Support shared by the end-to-end tests in `tests/` and the benchmarks in `benches/` (the
//! root package exists to host them): running the real contract `.wasm` in cosmwasm-vm with
//! storage accounting, so VM gas and the wasmd gas it implies can be reported.

pub mod vm;
