//! Integration tests of `fraudops-data`, one binary with a module per part (faster to link).

mod reader;
mod roundtrip;
mod simulator;
