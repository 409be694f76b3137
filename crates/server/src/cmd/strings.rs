//! String commands (Redis's `t_string.c`).

use super::reply_str;
use crate::dispatch::{err, CommandTable, Ctx};
use kvik_core::entry::{Entry, NewValue};

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("get", get);
    t.add("set", set);
}

fn get(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match ctx.ks.lookup_read(args[1]) {
        None => ctx.out.null(),
        Some(e) if super::is_string(e) => reply_str(ctx.out, e),
        Some(_) => ctx.out.error(err::WRONGTYPE),
    }
}

fn set(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if args.len() != 3 {
        ctx.error(err::SYNTAX);
        return;
    }
    ctx.ks.insert(Entry::new(args[1], NewValue::Str(args[2]), None));
    ctx.out.ok();
}
