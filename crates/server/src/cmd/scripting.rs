//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT,
//! FCALL, FCALL_RO and FUNCTION. The engine is in `crate::lua`; every
//! script runs with all shards locked (see the module docs there).

use crate::cmd::is;
use crate::dispatch::{CommandTable, Ctx};
use crate::lua::{self, RestorePolicy, ScriptRef};

/// Registers the scripting commands.
pub fn register(t: &mut CommandTable) {
    t.add("eval", eval);
    t.add("evalsha", evalsha);
    t.add("eval_ro", eval_ro);
    t.add("evalsha_ro", evalsha_ro);
    t.add("fcall", fcall);
    t.add("fcall_ro", fcall_ro);
    t.add("script|load", script_load);
    t.add("script|exists", script_exists);
    t.add("script|flush", script_flush);
    t.add("script|kill", script_kill);
    t.add("script|help", script_help);
    t.add("function|load", function_load);
    t.add("function|list", function_list);
    t.add("function|delete", function_delete);
    t.add("function|flush", function_flush);
    t.add("function|dump", function_dump);
    t.add("function|restore", function_restore);
    t.add("function|stats", function_stats);
    t.add("function|kill", function_kill);
    t.add("function|help", function_help);
}

/// Splits `numkeys key... arg...` (args[2..]); `fcall` words the
/// non-integer error as FCALL does.
/// The keys and the other arguments of a script call.
type KeysArgs<'a> = (&'a [&'a [u8]], &'a [&'a [u8]]);

fn split_keys<'a>(ctx: &mut Ctx<'_>, args: &'a [&'a [u8]], fcall: bool) -> Option<KeysArgs<'a>> {
    let Some(n) = crate::util::parse_i64(args[2]) else {
        ctx.error(if fcall {
            "ERR Bad number of keys provided"
        } else {
            crate::dispatch::err::NOT_INT
        });
        return None;
    };
    if n < 0 {
        ctx.error("ERR Number of keys can't be negative");
        return None;
    }
    let rest = &args[3..];
    if n as u64 > rest.len() as u64 {
        ctx.error("ERR Number of keys can't be greater than number of args");
        return None;
    }
    Some(rest.split_at(n as usize))
}

fn eval_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], sha: bool, ro: bool) {
    let Some((keys, argv)) = split_keys(ctx, args, false) else {
        return;
    };
    // Atomic against every shard, declared keys or not: the dispatcher
    // locked them all (`Command::whole_keyspace`), so this is a no-op.
    ctx.ks.lock_all();
    let script = if sha {
        ScriptRef::Sha(args[1])
    } else {
        ScriptRef::Body(args[1])
    };
    lua::engine().eval(ctx, script, keys, argv, ro);
}

fn eval(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    eval_generic(ctx, args, false, false);
}

fn evalsha(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    eval_generic(ctx, args, true, false);
}

fn eval_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    eval_generic(ctx, args, false, true);
}

fn evalsha_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    eval_generic(ctx, args, true, true);
}

fn fcall_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], ro: bool) {
    let Some((keys, argv)) = split_keys(ctx, args, true) else {
        return;
    };
    ctx.ks.lock_all();
    lua::engine().fcall(ctx, args, args[1], keys, argv, ro);
}

fn fcall(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    fcall_generic(ctx, args, false);
}

fn fcall_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    fcall_generic(ctx, args, true);
}

fn script_load(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let r = lua::engine().load_script(args[2]);
    match r {
        Ok(sha) => ctx.out.bulk(sha.as_bytes()),
        Err(e) => ctx.out.error(&e),
    }
}

fn script_exists(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let found: Vec<bool> = {
        let eng = lua::engine();
        args[2..].iter().map(|s| eng.script_exists(s)).collect()
    };
    ctx.out.array(found.len());
    for f in found {
        ctx.out.int(f as i64);
    }
}

/// `[ASYNC|SYNC]` of the FLUSH subcommands; false on a bad argument.
fn flush_mode_ok(args: &[&[u8]]) -> bool {
    match args.len() {
        2 => true,
        3 => is(args[2], "async") || is(args[2], "sync"),
        _ => false,
    }
}

fn script_flush(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if !flush_mode_ok(args) {
        ctx.error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
        return;
    }
    lua::engine().flush_scripts();
    ctx.out.ok();
}

fn reply_kill(ctx: &mut Ctx<'_>, function: bool) {
    match lua::kill(function) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.error(e),
    }
}

fn script_kill(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    reply_kill(ctx, false);
}

fn function_kill(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    reply_kill(ctx, true);
}

const SCRIPT_HELP: &[&str] = &[
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
];

fn script_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    crate::cmd::server::reply_help(ctx.out, args[0], SCRIPT_HELP);
}

const FUNCTION_HELP: &[&str] = &[
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
];

fn function_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    crate::cmd::server::reply_help(ctx.out, args[0], FUNCTION_HELP);
}

fn function_load(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mut replace = false;
    let mut i = 2;
    while i < args.len() - 1 {
        if is(args[i], "replace") {
            replace = true;
            i += 1;
        } else {
            ctx.error(&format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(args[i])
            ));
            return;
        }
    }
    if i != args.len() - 1 {
        ctx.error("ERR Function code was not given");
        return;
    }
    let r = lua::engine().load_library(args[i], replace);
    match r {
        Ok(name) => ctx.out.bulk(name.as_bytes()),
        Err(e) => ctx.error(&e),
    }
}

fn function_list(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mut with_code = false;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        if is(args[i], "withcode") && !with_code {
            with_code = true;
            i += 1;
        } else if is(args[i], "libraryname") && pattern.is_none() {
            if i + 1 >= args.len() {
                ctx.error("ERR library name argument was not given");
                return;
            }
            pattern = Some(args[i + 1]);
            i += 2;
        } else {
            ctx.error(&format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(args[i])
            ));
            return;
        }
    }
    let eng = lua::engine();
    let libs: Vec<(&String, &lua::Library)> = eng
        .libs
        .iter()
        .filter(|(name, _)| {
            pattern.is_none_or(|p| kvik_core::glob::glob_match(p, name.as_bytes(), false))
        })
        .collect();
    let out = &mut *ctx.out;
    out.array(libs.len());
    for (name, lib) in libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.funcs.len());
        for (fname, def) in &lib.funcs {
            out.map(3);
            out.bulk(b"name");
            out.bulk(fname.as_bytes());
            out.bulk(b"description");
            match &def.desc {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names: Vec<&str> = lua::FLAG_NAMES
                .iter()
                .filter(|(_, bit)| def.flags & bit != 0)
                .map(|(n, _)| *n)
                .collect();
            out.set(names.len());
            for n in names {
                out.simple(n);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
}

fn function_delete(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let name = String::from_utf8_lossy(args[2]).into_owned();
    if lua::engine().delete_library(&name) {
        ctx.out.ok();
    } else {
        ctx.error("ERR Library not found");
    }
}

fn function_flush(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if !flush_mode_ok(args) {
        ctx.error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
        return;
    }
    lua::engine().flush_functions();
    ctx.out.ok();
}

fn function_dump(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    let payload = lua::engine().dump_functions();
    ctx.out.bulk(&payload);
}

fn function_restore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let policy = match args.len() {
        3 => RestorePolicy::Append,
        4 if is(args[3], "append") => RestorePolicy::Append,
        4 if is(args[3], "flush") => RestorePolicy::Flush,
        4 if is(args[3], "replace") => RestorePolicy::Replace,
        4 => {
            ctx.error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            );
            return;
        }
        _ => {
            crate::cmd::server::subcommand_syntax_error(ctx, args);
            return;
        }
    };
    let r = lua::engine().restore_functions(args[2], policy);
    match r {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.error(&e),
    }
}

fn function_stats(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    // Counters and the running function are kept outside the engine
    // mutex, so this answers while a function runs.
    let (running, libs, funcs) = lua::stats();
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    match running {
        None => out.null(),
        Some((name, fargs, ms)) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name.as_bytes());
            out.bulk(b"command");
            out.array(fargs.len());
            for a in &fargs {
                out.bulk(a);
            }
            out.bulk(b"duration_ms");
            out.int(ms as i64);
        }
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(libs as i64);
    out.bulk(b"functions_count");
    out.int(funcs as i64);
}
