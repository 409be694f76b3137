//! streams commands.

use crate::dispatch::CommandTable;

/// Registers the streams commands.
pub fn register(_t: &mut CommandTable) {}
