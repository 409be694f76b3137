//! blocking commands.

use crate::dispatch::CommandTable;

/// Registers the blocking commands.
pub fn register(_t: &mut CommandTable) {}
