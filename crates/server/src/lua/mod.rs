//! The Lua 5.1 scripting engine behind EVAL and FUNCTION.
