//! Helpers shared by kvik-server's integration tests.
//!
//! - [`server`]: free ports, temp dirs, and [`KvikServer`] / [`RedisServer`]
//!   guards that start a server with redis-server style flags, wait for PING
//!   and kill it on drop.
//! - [`resp`]: a raw blocking RESP2/RESP3 client ([`RespConn`]) whose
//!   [`Reply`] keeps every reply type distinct, for exact comparisons.
//! - [`script`]: the differential script format (`tests/diff/*.txt`).
//!
//! Use from an integration test with `mod support;`.

// Each integration test binary uses a different subset of these helpers.
#![allow(dead_code, unused_imports)]

pub mod resp;
pub mod script;
pub mod server;

pub use resp::{Reply, RespConn};
pub use server::{free_port, KvikServer, RedisServer, ServerProcess, TempDir};
