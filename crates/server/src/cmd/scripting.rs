//! scripting commands.

use crate::dispatch::CommandTable;

/// Registers the scripting commands.
pub fn register(_t: &mut CommandTable) {}
