//! kvik's value types and their compact encodings. Pure data structures:
//! nothing here knows about sockets, clients or locks.

pub mod bitops;
pub mod crc16;
pub mod entry;
pub mod geo;
pub mod glob;
pub mod hash;
pub mod hll;
pub mod lcs;
pub mod list;
pub mod num;
pub mod object;
pub mod set;
pub mod stream;
pub mod table;
pub mod zset;
