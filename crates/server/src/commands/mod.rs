//! Command metadata (generated from Redis's command table).

pub mod spec;
