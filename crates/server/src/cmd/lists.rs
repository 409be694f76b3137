//! (being written)

use crate::dispatch::CommandTable;

/// Registers the family.
pub fn register(_t: &mut CommandTable) {}
