//! The Lua 5.1 scripting engine behind EVAL and FUNCTION.
//!
//! # Atomicity
//!
//! A script (EVAL/EVALSHA/FCALL and their `_RO` forms) runs atomically
//! against the whole keyspace: the dispatcher (and EXEC) lock every shard
//! for these commands (`Command::whole_keyspace`) before any Lua runs,
//! whether the script declared its keys or not,
//! so no other client observes a partial state of a script, and keys a
//! script did not declare are as safe as declared ones. Time is frozen
//! for the whole script (`ctx.ks.now_ms` does not move).
//!
//! # Locks
//!
//! The engine is process-wide, behind one mutex ([`engine`]): one Lua
//! state for EVAL scripts and one for function libraries (as Redis keeps
//! them apart: SCRIPT FLUSH resets the first, FUNCTION FLUSH the second).
//! Lock order: shards first, then the engine mutex. Code holding the
//! engine mutex never locks shards except through the `Ctx` of the
//! running command, which already holds every shard. Commands that only
//! need the engine (SCRIPT LOAD, FUNCTION ...) take no shard locks.
//!
//! # Long scripts
//!
//! A count hook runs every 100 000 VM instructions; once a script ran
//! longer than `busy-reply-threshold`, other clients get `-BUSY` (see
//! [`busy_error`], called by the dispatcher) and may stop the script with
//! SCRIPT KILL / FUNCTION KILL (a flag the hook polls), unless it already
//! wrote to the dataset. A script running for more than a few
//! milliseconds hands its runtime worker's other connections to a new
//! thread (`block_in_place`), so they keep being served meanwhile.

pub mod libs;
pub mod payload;
pub mod sha1;

use crate::dispatch::{Command, Ctx};
use kvik_protocol::value::Value as Reply;
use kvik_protocol::ReplyBuf;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Script flag `no-writes`.
pub const FLAG_NO_WRITES: u32 = 1;
/// Script flag `allow-oom`.
pub const FLAG_ALLOW_OOM: u32 = 2;
/// Script flag `allow-stale`.
pub const FLAG_ALLOW_STALE: u32 = 4;
/// Script flag `no-cluster`.
pub const FLAG_NO_CLUSTER: u32 = 8;
/// Script flag `allow-cross-slot-keys`.
pub const FLAG_ALLOW_CROSS_SLOT: u32 = 16;

/// Flag names in Redis's order.
pub const FLAG_NAMES: [(&str, u32); 5] = [
    ("no-writes", FLAG_NO_WRITES),
    ("allow-oom", FLAG_ALLOW_OOM),
    ("allow-stale", FLAG_ALLOW_STALE),
    ("no-cluster", FLAG_NO_CLUSTER),
    ("allow-cross-slot-keys", FLAG_ALLOW_CROSS_SLOT),
];

/// Most nested reply a script may return (deeper is an error, not a crash).
const MAX_REPLY_DEPTH: usize = 1000;
/// Memory cap of one VM.
const MEMORY_LIMIT: usize = 1 << 30;
/// FUNCTION LOAD may run the library body this long.
const LOAD_TIMEOUT_MS: u64 = 500;

const BOOT: &str = include_str!("boot.lua");

// ---------------------------------------------------------------------------
// Run state shared with other clients (atomics only: SCRIPT KILL and the
// BUSY check never wait for the engine mutex).

static RUNNING: AtomicBool = AtomicBool::new(false);
static RUNNING_FUNCTION: AtomicBool = AtomicBool::new(false);
static LOADING: AtomicBool = AtomicBool::new(false);
static BUSY: AtomicBool = AtomicBool::new(false);
static KILL: AtomicBool = AtomicBool::new(false);
static KILLED: AtomicBool = AtomicBool::new(false);
/// Elapsed milliseconds at which the next worker hand-off is tried.
static HANDED_OFF: AtomicU64 = AtomicU64::new(HANDOFF_MS);
static WROTE: AtomicBool = AtomicBool::new(false);
static START_US: AtomicU64 = AtomicU64::new(0);
static THRESHOLD_MS: AtomicI64 = AtomicI64::new(5000);
static LIB_COUNT: AtomicUsize = AtomicUsize::new(0);
static FUNC_COUNT: AtomicUsize = AtomicUsize::new(0);
/// FUNCTION STATS' `running_script`: name and arguments.
static RUNNING_INFO: Mutex<RunningInfo> = Mutex::new(RunningInfo {
    active: false,
    name: String::new(),
    args: Vec::new(),
});

/// FUNCTION STATS' `running_script`; the buffers are reused from run to
/// run.
struct RunningInfo {
    /// Whether a function is running (name and args are valid).
    active: bool,
    name: String,
    args: Vec<Vec<u8>>,
}

impl RunningInfo {
    /// Records the function `name` running for `cmdline`.
    fn start(&mut self, name: &str, cmdline: &[&[u8]]) {
        self.active = true;
        self.name.clear();
        self.name.push_str(name);
        self.args.truncate(cmdline.len());
        for (i, a) in cmdline.iter().enumerate() {
            match self.args.get_mut(i) {
                Some(v) => {
                    v.clear();
                    v.extend_from_slice(a);
                }
                None => self.args.push(a.to_vec()),
            }
        }
    }

    /// The run ended: keeps the buffers unless they grew unusually large.
    fn stop(&mut self) {
        self.active = false;
        let kept = self.name.capacity()
            + self.args.capacity() * std::mem::size_of::<Vec<u8>>()
            + self.args.iter().map(Vec::capacity).sum::<usize>();
        if kept > SCRATCH_KEEP {
            self.name = String::new();
            self.args = Vec::new();
        }
    }
}
/// `math.random` state (48-bit LCG as Redis's `redisLrand48`).
static RAND48: AtomicU64 = AtomicU64::new(0x330E);

fn clock_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

const BUSY_SCRIPT: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// The `-BUSY` error `cmd` gets while a script runs past the busy
/// threshold (commands flagged `allow_busy` pass).
pub fn busy_error(cmd: &Command) -> Option<&'static str> {
    if !BUSY.load(Ordering::Acquire) || cmd.has_flag("allow_busy") {
        return None;
    }
    Some(if RUNNING_FUNCTION.load(Ordering::Relaxed) {
        BUSY_FUNCTION
    } else {
        BUSY_SCRIPT
    })
}

/// What SCRIPT KILL / FUNCTION KILL replies.
pub fn kill(function: bool) -> Result<(), &'static str> {
    if !RUNNING.load(Ordering::Acquire) {
        return Err("NOTBUSY No scripts in execution right now.");
    }
    let running_function = RUNNING_FUNCTION.load(Ordering::Relaxed);
    if running_function != function {
        return Err(if running_function {
            BUSY_FUNCTION
        } else {
            BUSY_SCRIPT
        });
    }
    if WROTE.load(Ordering::Acquire) {
        return Err("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
    }
    KILL.store(true, Ordering::Release);
    Ok(())
}

/// The running function for FUNCTION STATS: name, command line and
/// milliseconds it has been running.
pub type RunningFunction = (String, Vec<Vec<u8>>, u64);

/// FUNCTION STATS data: the running function and the library / function
/// counts.
pub fn stats() -> (Option<RunningFunction>, usize, usize) {
    let running = if RUNNING.load(Ordering::Acquire) && RUNNING_FUNCTION.load(Ordering::Relaxed) {
        let info = RUNNING_INFO.lock();
        info.active.then(|| {
            let ms = clock_us().saturating_sub(START_US.load(Ordering::Relaxed)) / 1000;
            (info.name.clone(), info.args.clone(), ms)
        })
    } else {
        None
    };
    (
        running,
        LIB_COUNT.load(Ordering::Relaxed),
        FUNC_COUNT.load(Ordering::Relaxed),
    )
}

/// A script running this long gives its runtime worker away.
const HANDOFF_MS: u64 = 5;
/// Interval of hand-off retries.
const HANDOFF_RETRY_MS: u64 = 50;

/// Moves the other tasks of this runtime worker to a new thread, so the
/// connections it served keep being served (and can get `-BUSY` or send
/// SCRIPT KILL) while this thread keeps running the script.
fn hand_off_worker() {
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            // Give the new thread time to take the worker's core before
            // this one could reclaim it.
            tokio::task::block_in_place(|| std::thread::sleep(std::time::Duration::from_millis(2)));
        }
    }
}

/// The count hook's verdict: an error message to abort with, or nothing.
fn tick() -> Option<&'static str> {
    let elapsed_ms = clock_us().saturating_sub(START_US.load(Ordering::Relaxed)) / 1000;
    if LOADING.load(Ordering::Relaxed) {
        return (elapsed_ms > LOAD_TIMEOUT_MS).then_some("ERR FUNCTION LOAD timeout");
    }
    if elapsed_ms >= HANDED_OFF.load(Ordering::Relaxed) {
        // Retried now and then: the hand-off races with the thread that
        // should take the worker over.
        HANDED_OFF.store(elapsed_ms + HANDOFF_RETRY_MS, Ordering::Relaxed);
        hand_off_worker();
    }
    let threshold = THRESHOLD_MS.load(Ordering::Relaxed);
    if threshold > 0 && elapsed_ms >= threshold as u64 && !BUSY.load(Ordering::Relaxed) {
        tracing::warn!(
            "Slow script detected: still in execution after {elapsed_ms} milliseconds. You can try killing the script using the {} command.",
            if RUNNING_FUNCTION.load(Ordering::Relaxed) { "FUNCTION KILL" } else { "SCRIPT KILL" }
        );
        BUSY.store(true, Ordering::Release);
    }
    if KILL.load(Ordering::Acquire) {
        if !KILLED.swap(true, Ordering::AcqRel) {
            tracing::warn!("Lua script killed by user with SCRIPT KILL.");
        }
        return Some("ERR Script killed by user with SCRIPT KILL...");
    }
    None
}

// ---------------------------------------------------------------------------
// The engine.

/// One Lua state with its sandbox.
struct Vm {
    lua: Lua,
    /// Entry points defined by the sandbox set-up (`boot.lua`).
    k: Table,
    /// `k.run_eval` and `k.run_func`, looked up once.
    run_eval: Function,
    run_func: Function,
}

/// A cached EVAL script.
struct Script {
    f: Function,
    flags: u32,
    shebang: bool,
}

/// A registered function.
pub struct FuncDef {
    f: Function,
    /// `description`, if given.
    pub desc: Option<Vec<u8>>,
    /// Flags (`FLAG_*`).
    pub flags: u32,
}

/// A function library.
pub struct Library {
    /// The library code as loaded.
    pub code: Vec<u8>,
    /// Functions by name.
    pub funcs: BTreeMap<String, FuncDef>,
}

/// Every piece of scripting state: the VMs, the script cache and the
/// function libraries.
pub struct Engine {
    eval: Vm,
    func: Vm,
    scripts: HashMap<String, Script, foldhash::fast::RandomState>,
    /// The SHA1 of every cached script body, so EVAL finds a cached
    /// script without hashing its body with SHA1 again. Holds the same
    /// scripts as `scripts`.
    bodies: HashMap<Vec<u8>, [u8; 40], foldhash::fast::RandomState>,
    /// Libraries by name.
    pub libs: BTreeMap<String, Library>,
    /// Function name -> library name.
    funcs: HashMap<String, String, foldhash::fast::RandomState>,
}

static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);

/// Locks the engine (creating it on first use). Lock order: shards first.
pub fn engine() -> parking_lot::MappedMutexGuard<'static, Engine> {
    parking_lot::MutexGuard::map(ENGINE.lock(), |e| {
        e.get_or_insert_with(|| Engine {
            eval: new_vm("eval").expect("scripting VM set-up"),
            func: new_vm("function").expect("scripting VM set-up"),
            scripts: HashMap::default(),
            bodies: HashMap::default(),
            libs: BTreeMap::new(),
            funcs: HashMap::default(),
        })
    })
}

fn lrand48() -> u64 {
    let mut x = RAND48.load(Ordering::Relaxed);
    x = (x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & ((1 << 48) - 1);
    RAND48.store(x, Ordering::Relaxed);
    x >> 17
}

fn srand48(seed: i32) {
    RAND48.store((((seed as u32) as u64) << 16) | 0x330E, Ordering::Relaxed);
}

fn version_num() -> f64 {
    let mut n = 0u32;
    for part in crate::server::REDIS_VERSION.split('.').take(3) {
        n = (n << 8) | part.parse::<u32>().unwrap_or(0);
    }
    n as f64
}

/// The C side of API functions: calls the implementation (upvalue 1)
/// with the arguments; it returns `ok, results...`. A false `ok` raises
/// the next value as the error, from this C frame, so the error handler
/// locates it in the calling user code (as for Redis's C API functions,
/// and unlike a Lua wrapper, which a tail call would hide).
unsafe extern "C-unwind" fn raise_trampoline(l: *mut mlua::ffi::lua_State) -> std::os::raw::c_int {
    use mlua::ffi;
    let n = ffi::lua_gettop(l);
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
    ffi::lua_insert(l, 1);
    ffi::lua_call(l, n, ffi::LUA_MULTRET);
    let nres = ffi::lua_gettop(l);
    if nres == 0 {
        return 0;
    }
    if ffi::lua_toboolean(l, 1) == 0 {
        if nres < 2 {
            ffi::lua_pushnil(l);
        }
        ffi::lua_settop(l, 2);
        ffi::lua_error(l);
    }
    nres - 1
}

fn new_vm(mode: &str) -> mlua::Result<Vm> {
    // SAFETY: the debug library is used only by the set-up chunk, which
    // keeps `getinfo`/`sethook` in locals and never exposes `debug`.
    let lua = unsafe {
        Lua::unsafe_new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS | StdLib::DEBUG,
            LuaOptions::new(),
        )
    };
    let rt = lua.create_table()?;
    rt.set(
        "tick",
        lua.create_function(|_, ()| Ok(tick().map(|s| s.to_string())))?,
    )?;
    rt.set(
        "log",
        lua.create_function(|_, (level, msg): (i64, mlua::String)| {
            let msg = String::from_utf8_lossy(&msg.as_bytes()).into_owned();
            match level {
                0 => tracing::debug!("{msg}"),
                1 => tracing::debug!("{msg}"),
                2 => tracing::info!("{msg}"),
                _ => tracing::warn!("{msg}"),
            }
            Ok(())
        })?,
    )?;
    rt.set(
        "sha1hex",
        lua.create_function(|_, s: mlua::String| Ok(sha1::hex(&s.as_bytes())))?,
    )?;
    rt.set("rand48", lua.create_function(|_, ()| Ok(lrand48() as f64))?)?;
    rt.set(
        "srand48",
        lua.create_function(|_, seed: f64| {
            srand48(seed as i64 as i32);
            Ok(())
        })?,
    )?;
    rt.set(
        "acl_check",
        lua.create_function(|_, args: MultiValue| {
            let name = match args.front() {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                Some(Value::Number(n)) => n.to_string().into_bytes(),
                Some(Value::Integer(n)) => n.to_string().into_bytes(),
                _ => return Ok(None),
            };
            let known =
                crate::commands::spec::find(&String::from_utf8_lossy(&name).to_ascii_lowercase())
                    .is_some();
            Ok(known.then_some(true))
        })?,
    )?;
    rt.set(
        "cwrap",
        lua.create_function(|lua, f: Function| {
            // SAFETY: pushes a C closure over the one argument (the
            // implementation function) that `exec_raw` placed on the stack.
            unsafe {
                lua.exec_raw::<Function>(f, |state| {
                    mlua::ffi::lua_pushcclosure(state, raise_trampoline, 1);
                })
            }
        })?,
    )?;
    rt.set(
        "call",
        lua.create_function(|lua, args: MultiValue| with_run(lua, args))?,
    )?;
    rt.set(
        "pcall",
        lua.create_function(|lua, args: MultiValue| with_run(lua, args).map(|(_, v)| (true, v)))?,
    )?;
    rt.set(
        "setresp",
        lua.create_function(|_, v: u8| {
            RESP.set(v);
            Ok(())
        })?,
    )?;
    rt.set("version", crate::server::REDIS_VERSION)?;
    rt.set("version_num", version_num())?;
    let libs = lua.create_table()?;
    register_libs(&lua, &libs)?;
    rt.set("libs", libs)?;
    let k: Table = lua.load(BOOT).set_name("=kvik").call((rt, mode))?;
    lua.set_memory_limit(MEMORY_LIMIT)?;
    let run_eval = k.get("run_eval")?;
    let run_func = k.get("run_func")?;
    Ok(Vm {
        lua,
        k,
        run_eval,
        run_func,
    })
}

/// Extra libraries (cjson, cmsgpack, bit, struct) when they are built in:
/// they are registered as globals of a scratch state, then moved into
/// `libs` so the sandbox protects them like the standard ones.
fn register_libs(lua: &Lua, libs: &Table) -> mlua::Result<()> {
    let globals = lua.globals();
    let before: Vec<String> = globals
        .pairs::<String, Value>()
        .filter_map(|p| p.ok().map(|(k, _)| k))
        .collect();
    register_extra(lua)?;
    for pair in globals.clone().pairs::<String, Value>() {
        let (k, v) = pair?;
        if !before.contains(&k) {
            if let Value::Table(t) = v {
                libs.set(k.as_str(), t)?;
            }
        }
    }
    Ok(())
}

fn register_extra(lua: &Lua) -> mlua::Result<()> {
    libs::register_all(lua)
}

// ---------------------------------------------------------------------------
// Shebangs and library metadata.

/// Parses an EVAL script's `#!lua` line: (flags, code to compile) or the
/// error reply.
fn parse_shebang(body: &[u8]) -> Result<Option<u32>, String> {
    if !body.starts_with(b"#!") {
        return Ok(None);
    }
    let Some(line_end) = body.iter().position(|&c| c == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..line_end]).into_owned();
    let mut parts = line.split(' ').filter(|s| !s.is_empty());
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = 0;
    for opt in parts {
        let Some(list) = opt.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {opt}"));
        };
        for f in list.split(',').filter(|s| !s.is_empty()) {
            match FLAG_NAMES.iter().find(|(n, _)| *n == f) {
                Some((_, bit)) => flags |= bit,
                None => return Err(format!("ERR Unexpected flag in script shebang: {f}")),
            }
        }
    }
    Ok(Some(flags))
}

/// The code given to Lua: the shebang line blanked (line numbers kept).
fn strip_first_line(body: &[u8]) -> Vec<u8> {
    match body.iter().position(|&c| c == b'\n') {
        Some(i) => body[i..].to_vec(),
        None => Vec::new(),
    }
}

/// Parses a library's `#!lua name=...` header: the library name.
fn parse_library_header(code: &[u8]) -> Result<String, String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(line_end) = code.iter().position(|&c| c == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[2..line_end]).into_owned();
    let mut parts = line.split(' ').filter(|s| !s.is_empty());
    let engine = parts.next().unwrap_or("");
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    let mut name = None;
    for opt in parts {
        match opt.strip_prefix("name=") {
            Some(n) => {
                if name.is_some() {
                    return Err(
                        "ERR Invalid metadata value, name argument was given multiple times".into(),
                    );
                }
                name = Some(n.to_string());
            }
            None => return Err(format!("ERR Invalid metadata value given: {opt}")),
        }
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    Ok(name)
}

// ---------------------------------------------------------------------------
// Reply conversion.

fn lua_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

/// A Lua number as Redis converts it to an integer reply (a C cast: out
/// of range and NaN give i64::MIN).
fn lua_number_to_i64(n: f64) -> i64 {
    // 2^63 as f64; the valid range is [-2^63, 2^63).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// Writes the reply of a script's return value.
fn lua_to_reply(out: &mut ReplyBuf, v: &Value, resp: u8, depth: usize) -> Result<(), ()> {
    if depth > MAX_REPLY_DEPTH {
        return Err(());
    }
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if resp == 2 {
                if *b {
                    out.int(1)
                } else {
                    out.null()
                }
            } else {
                out.boolean(*b)
            }
        }
        Value::Integer(i) => out.int(*i),
        Value::Number(n) => out.int(lua_number_to_i64(*n)),
        Value::Table(t) => return table_to_reply(out, t, resp, depth),
        _ => out.null(),
    }
    Ok(())
}

fn table_to_reply(out: &mut ReplyBuf, t: &Table, resp: u8, depth: usize) -> Result<(), ()> {
    let get = |k: &str| t.raw_get::<Value>(k).unwrap_or(Value::Nil);
    if let Some(e) = lua_bytes(&get("err")) {
        out.error_bytes(&e);
        return Ok(());
    }
    if let Some(s) = lua_bytes(&get("ok")) {
        out.simple_bytes(&s);
        return Ok(());
    }
    match get("double") {
        Value::Number(n) => {
            out.double_text(kvik_core::num::format_double(n).as_bytes());
            return Ok(());
        }
        Value::Integer(n) => {
            out.double_text(kvik_core::num::format_double(n as f64).as_bytes());
            return Ok(());
        }
        _ => {}
    }
    if let Some(s) = lua_bytes(&get("big_number")) {
        out.big_number(&s);
        return Ok(());
    }
    if let Value::Table(m) = get("map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(|p| p.ok()).collect();
        out.map(pairs.len());
        for (k, v) in &pairs {
            lua_to_reply(out, k, resp, depth + 1)?;
            lua_to_reply(out, v, resp, depth + 1)?;
        }
        return Ok(());
    }
    if let Value::Table(s) = get("set") {
        let keys: Vec<Value> = s
            .pairs::<Value, Value>()
            .filter_map(|p| p.ok().map(|(k, _)| k))
            .collect();
        out.set(keys.len());
        for k in &keys {
            lua_to_reply(out, k, resp, depth + 1)?;
        }
        return Ok(());
    }
    if let Value::Table(vt) = get("verbatim_string") {
        let format = lua_bytes(&vt.raw_get::<Value>("format").unwrap_or(Value::Nil));
        let text = lua_bytes(&vt.raw_get::<Value>("string").unwrap_or(Value::Nil));
        if let (Some(f), Some(s)) = (format, text) {
            if f.len() == 3 {
                let mut fmt = [0u8; 3];
                fmt.copy_from_slice(&f);
                out.verbatim(&fmt, &s);
                return Ok(());
            }
        }
    }
    let mut items = Vec::new();
    let mut i = 1;
    loop {
        let v: Value = t.raw_get(i).unwrap_or(Value::Nil);
        if v.is_nil() {
            break;
        }
        items.push(v);
        i += 1;
    }
    out.array(items.len());
    for v in &items {
        lua_to_reply(out, v, resp, depth + 1)?;
    }
    Ok(())
}

/// Converts a command reply into a Lua value, as Redis hands replies to
/// scripts.
fn reply_to_lua(lua: &Lua, r: Reply) -> mlua::Result<Value> {
    Ok(match r {
        Reply::Simple(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(&s)?)?;
            Value::Table(t)
        }
        Reply::Error(e) => Value::Table(error_table(lua, &e)?),
        Reply::Int(n) => Value::Number(n as f64),
        Reply::Bulk(b) => Value::String(lua.create_string(&b)?),
        Reply::NullBulk | Reply::NullArray => Value::Boolean(false),
        Reply::Null => Value::Nil,
        Reply::Array(items) | Reply::Push(items) => {
            let t = lua.create_table()?;
            for (i, v) in items.into_iter().enumerate() {
                t.raw_set(i + 1, reply_to_lua(lua, v)?)?;
            }
            Value::Table(t)
        }
        Reply::Map(pairs) => {
            let m = lua.create_table()?;
            for (k, v) in pairs {
                let k = reply_to_lua(lua, k)?;
                if !k.is_nil() {
                    m.raw_set(k, reply_to_lua(lua, v)?)?;
                }
            }
            let t = lua.create_table()?;
            t.raw_set("map", m)?;
            Value::Table(t)
        }
        Reply::Set(items) => {
            let s = lua.create_table()?;
            for v in items {
                let k = reply_to_lua(lua, v)?;
                if !k.is_nil() {
                    s.raw_set(k, true)?;
                }
            }
            let t = lua.create_table()?;
            t.raw_set("set", s)?;
            Value::Table(t)
        }
        Reply::Attribute(_, v) => reply_to_lua(lua, *v)?,
        Reply::Double(d) => {
            let n = std::str::from_utf8(&d)
                .ok()
                .and_then(|s| kvik_core::num::parse_f64(s.as_bytes()))
                .unwrap_or(0.0);
            let t = lua.create_table()?;
            t.raw_set("double", n)?;
            Value::Table(t)
        }
        Reply::Bool(b) => Value::Boolean(b),
        Reply::BigNumber(n) => {
            let t = lua.create_table()?;
            t.raw_set("big_number", lua.create_string(&n)?)?;
            Value::Table(t)
        }
        Reply::Verbatim(f, s) => {
            let v = lua.create_table()?;
            v.raw_set("format", lua.create_string(f)?)?;
            v.raw_set("string", lua.create_string(&s)?)?;
            let t = lua.create_table()?;
            t.raw_set("verbatim_string", v)?;
            Value::Table(t)
        }
    })
}

/// The `{err=...}` table of an error reply (`msg` without the leading
/// `-`), the way Redis words errors seen by scripts.
fn error_table(lua: &Lua, msg: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(msg))?)?;
    Ok(t)
}

/// `CODE rest` from an error reply body: a reply without a code gets ERR.
fn error_text(msg: &[u8]) -> Vec<u8> {
    let (code, rest): (&[u8], &[u8]) = match msg.iter().position(|&c| c == b' ') {
        Some(i) => (&msg[..i], &msg[i + 1..]),
        None => (b"ERR", msg),
    };
    let mut s = code.to_vec();
    s.push(b' ');
    let trimmed: &[u8] = {
        let mut a = 0;
        let mut b = rest.len();
        while a < b && matches!(rest[a], b'\r' | b'\n') {
            a += 1;
        }
        while b > a && matches!(rest[b - 1], b'\r' | b'\n') {
            b -= 1;
        }
        &rest[a..b]
    };
    s.extend_from_slice(trimmed);
    s
}

// ---------------------------------------------------------------------------
// Running commands from scripts.

/// State of one script run, reachable from `redis.call`.
struct RunCtx<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    read_only: bool,
}

thread_local! {
    /// The run `redis.call` reaches: a `RunCtx` on the stack of
    /// `run_code`, or null outside a run. It is published only for the
    /// duration of the run's Lua call (a [`CurrentRun`] guard clears it,
    /// also when unwinding), and taken out while one call is served, so a
    /// nested or late use finds nothing instead of a second reference.
    static CURRENT: Cell<*mut ()> = const { Cell::new(std::ptr::null_mut()) };
    /// The RESP version `redis.call` replies are converted from
    /// (`redis.setresp`); 2 at the start of every run.
    static RESP: Cell<u8> = const { Cell::new(2) };
}

/// Publishes a run in [`CURRENT`] while it lives; it keeps the run
/// mutably borrowed, so Rust code cannot touch the run meanwhile.
struct CurrentRun<'r>(std::marker::PhantomData<&'r mut ()>);

impl<'r> CurrentRun<'r> {
    fn set(run: &'r mut RunCtx<'_, '_>) -> Self {
        let p: *mut RunCtx<'_, '_> = run;
        CURRENT.with(|c| c.set(p.cast()));
        CurrentRun(std::marker::PhantomData)
    }
}

impl Drop for CurrentRun<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(std::ptr::null_mut()));
    }
}

/// `rt.call`, the persistent implementation of `redis.call` /
/// `redis.pcall`: serves the call against the running command.
fn with_run(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    /// Puts the run back once the call is served (also when unwinding).
    struct Restore(*mut ());
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let p = CURRENT.with(|c| c.replace(std::ptr::null_mut()));
    if p.is_null() {
        return script_error(
            lua,
            "redis.call can only be called inside a script invocation",
        );
    }
    let _restore = Restore(p);
    // SAFETY: `p` was published by `CurrentRun::set` from a `&mut RunCtx`
    // that stays borrowed, unused, and alive until the guard clears it
    // after the Lua call returns; it was taken out of CURRENT above, so
    // this is the only reference to the run while the call is served.
    let run = unsafe { &mut *p.cast::<RunCtx<'_, '_>>() };
    script_call(lua, run, args)
}

/// Pushes a new Lua array of `items` as strings (one stack slot).
///
/// # Safety
/// `state` must have a free stack slot plus one; a Lua error (out of
/// memory) may leave this function by `longjmp`, so it holds nothing that
/// needs dropping.
unsafe fn push_list(state: *mut mlua::ffi::lua_State, items: &[&[u8]]) {
    use mlua::ffi;
    ffi::lua_createtable(state, items.len().try_into().unwrap_or(0), 0);
    for (i, item) in items.iter().enumerate() {
        ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
        ffi::lua_rawseti(state, -2, (i + 1) as _);
    }
}

fn script_error(lua: &Lua, msg: &str) -> mlua::Result<(bool, Value)> {
    let t = lua.create_table()?;
    t.raw_set("err", format!("ERR {msg}"))?;
    Ok((false, Value::Table(t)))
}

/// `redis.call` / `redis.pcall`: (true, reply) or (false, error table).
fn script_call(
    lua: &Lua,
    run: &mut RunCtx<'_, '_>,
    args: MultiValue,
) -> mlua::Result<(bool, Value)> {
    let resp = RESP.get();
    // The arguments, packed into one buffer reused from call to call.
    let (mut buf, mut ends) = SCRATCH.take();
    buf.clear();
    ends.clear();
    for v in args {
        match &v {
            Value::String(s) => buf.extend_from_slice(&s.as_bytes()),
            Value::Number(n) => buf.extend_from_slice(kvik_core::num::format_double(*n).as_bytes()),
            Value::Integer(n) => kvik_core::num::append_i64(&mut buf, *n),
            _ => {
                SCRATCH.set((buf, ends));
                return script_error(
                    lua,
                    "Lua redis lib command arguments must be strings or integers",
                );
            }
        }
        ends.push(buf.len());
    }
    let r = run_call(lua, run, resp, &buf, &ends);
    // Keep the buffers, unless an unusually large call grew them.
    if buf.capacity() <= SCRATCH_KEEP && ends.capacity() <= SCRATCH_KEEP {
        SCRATCH.set((buf, ends));
    }
    r
}

/// Capacity above which the argument buffers are not kept between calls.
const SCRATCH_KEEP: usize = 64 << 10;

thread_local! {
    /// `script_call`'s argument bytes and argument end offsets.
    static SCRATCH: Cell<(Vec<u8>, Vec<usize>)> = const { Cell::new((Vec::new(), Vec::new())) };
}

/// Runs one command for `redis.call` with replies in RESP `resp`: `buf`
/// holds the arguments, each ending at the next offset of `ends`.
fn run_call(
    lua: &Lua,
    run: &mut RunCtx<'_, '_>,
    resp: u8,
    buf: &[u8],
    ends: &[usize],
) -> mlua::Result<(bool, Value)> {
    if ends.is_empty() {
        return script_error(
            lua,
            "Please specify at least one argument for this redis lib call",
        );
    }
    let mut args: smallvec::SmallVec<[&[u8]; 8]> = smallvec::SmallVec::with_capacity(ends.len());
    let mut start = 0;
    for &end in ends {
        args.push(&buf[start..end]);
        start = end;
    }
    let ctx = &mut *run.ctx;
    let srv = ctx.srv;
    let Some(cmd) = crate::cmd::multi::resolve(&srv.commands, &args) else {
        return script_error(lua, "Unknown Redis command called from script");
    };
    let Some(handler) = cmd.handler else {
        return script_error(
            lua,
            "Wrong number of args calling Redis command from script",
        );
    };
    if !cmd.spec.arity_ok(args.len()) {
        return script_error(
            lua,
            "Wrong number of args calling Redis command from script",
        );
    }
    if cmd.has_flag("noscript") {
        return script_error(lua, "This Redis command is not allowed from script");
    }
    let write = cmd.has_flag("write");
    if write && run.read_only {
        return script_error(
            lua,
            "Write commands are not allowed from read-only scripts.",
        );
    }
    if write {
        WROTE.store(true, Ordering::Release);
    }
    let mark = ctx.out.len();
    let was_resp3 = ctx.out.resp3();
    ctx.out.set_resp3(resp == 3);
    crate::dispatch::run_nested(ctx, cmd, handler, &args);
    let reply = match Reply::parse(&ctx.out.as_bytes()[mark..]) {
        Ok(Some((r, _))) => r,
        _ => Reply::Null,
    };
    ctx.out.truncate(mark);
    ctx.out.set_resp3(was_resp3);
    match reply {
        Reply::Error(e) => Ok((false, Value::Table(error_table(lua, &e)?))),
        r => Ok((true, reply_to_lua(lua, r)?)),
    }
}

/// What kind of code runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Eval,
    Function,
}

/// Runs `f` and writes its reply (or error) to `ctx.out`.
#[allow(clippy::too_many_arguments)]
fn run_code(
    vm: &Vm,
    ctx: &mut Ctx<'_>,
    f: &Function,
    kind: Kind,
    name: &str,
    keys: &[&[u8]],
    argv: &[&[u8]],
    read_only: bool,
    cmdline: Option<&[&[u8]]>,
) {
    let lua = &vm.lua;
    let threshold = ctx
        .srv
        .config
        .read()
        .get("busy-reply-threshold")
        .parse::<i64>()
        .unwrap_or(5000);
    THRESHOLD_MS.store(threshold, Ordering::Relaxed);
    START_US.store(clock_us(), Ordering::Relaxed);
    KILL.store(false, Ordering::Relaxed);
    KILLED.store(false, Ordering::Relaxed);
    HANDED_OFF.store(HANDOFF_MS, Ordering::Relaxed);
    WROTE.store(false, Ordering::Relaxed);
    RUNNING_FUNCTION.store(kind == Kind::Function, Ordering::Relaxed);
    if let Some(cmdline) = cmdline {
        RUNNING_INFO.lock().start(name, cmdline);
    }
    RUNNING.store(true, Ordering::Release);
    let saved_db = ctx.client.db;
    let saved_deny = ctx.client.deny_blocking;
    let saved_in_script = ctx.client.in_script;
    ctx.client.deny_blocking = true;
    ctx.client.in_script = true;

    let mut run = RunCtx { ctx, read_only };
    let entry = if kind == Kind::Eval {
        &vm.run_eval
    } else {
        &vm.run_func
    };
    let result: mlua::Result<(bool, Value, u8)> = {
        let _current = CurrentRun::set(&mut run);
        RESP.set(2);
        // SAFETY: the closure runs on the stack exec_raw prepared (the
        // entry point and `f`), pushes the KEYS and ARGV arrays and calls
        // the entry point with its three results; it holds only borrowed
        // slices, so a Lua error unwinding it by `longjmp` skips no drop.
        unsafe {
            lua.exec_raw((entry, f), |state| {
                push_list(state, keys);
                push_list(state, argv);
                mlua::ffi::lua_call(state, 3, 3);
            })
        }
    };
    let ctx = run.ctx;

    ctx.client.db = saved_db;
    ctx.ks.db = saved_db;
    ctx.client.deny_blocking = saved_deny;
    ctx.client.in_script = saved_in_script;
    let funcname = name;
    match result {
        Ok((true, v, resp)) => {
            let mark = ctx.out.len();
            if lua_to_reply(ctx.out, &v, resp, 0).is_err() {
                ctx.out.truncate(mark);
                ctx.out.error("ERR reached lua stack limit");
            }
        }
        Ok((false, v, _)) => {
            let (mut msg, source, line) = match &v {
                Value::Table(t) => (
                    lua_bytes(&t.raw_get::<Value>("err").unwrap_or(Value::Nil)),
                    t.raw_get::<Value>("source")
                        .ok()
                        .and_then(|s| lua_bytes(&s)),
                    match t.raw_get::<Value>("line").unwrap_or(Value::Nil) {
                        Value::Integer(n) => Some(n),
                        Value::Number(n) => Some(n as i64),
                        _ => None,
                    },
                ),
                // Errors that skip the handler (out of memory).
                Value::String(e) => {
                    let mut m = b"ERR ".to_vec();
                    m.extend_from_slice(&e.as_bytes());
                    (Some(m), None, None)
                }
                _ => (None, None, None),
            };
            if KILLED.load(Ordering::Acquire) {
                msg = Some(b"ERR Script killed by user with SCRIPT KILL...".to_vec());
            }
            let mut text = msg.unwrap_or_else(|| b"ERR unknown error".to_vec());
            if let (Some(src), Some(line)) = (source, line) {
                text.extend_from_slice(
                    format!(
                        " script: {funcname}, on {}:{line}.",
                        String::from_utf8_lossy(&src)
                    )
                    .as_bytes(),
                );
            }
            ctx.out.error_bytes(&text);
        }
        Err(e) => {
            let msg = if KILLED.load(Ordering::Acquire) {
                "Script killed by user with SCRIPT KILL...".to_string()
            } else {
                e.to_string()
            };
            let first = msg.lines().next().unwrap_or("").to_string();
            ctx.out.error(&format!(
                "ERR Error running script {funcname}, {first:.100}"
            ));
        }
    }
    RUNNING.store(false, Ordering::Release);
    BUSY.store(false, Ordering::Release);
    KILL.store(false, Ordering::Relaxed);
    if cmdline.is_some() {
        RUNNING_INFO.lock().stop();
    }
    // Keep the heap small between runs with a GC step every
    // GC_STEP_PERIOD runs, as Redis does: a step after every run costs more
    // than the script itself.
    const GC_STEP_PERIOD: u32 = 50;
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    if RUNS.fetch_add(1, Ordering::Relaxed) % GC_STEP_PERIOD == GC_STEP_PERIOD - 1 {
        let _ = lua.gc_step_kbytes(GC_STEP_PERIOD as i32);
    }
    if lua.used_memory() > 64 << 20 {
        // A script left a lot behind: give it back now.
        let _ = lua.gc_collect();
    }
}

// ---------------------------------------------------------------------------
// EVAL family.

impl Engine {
    /// Compiles and caches an EVAL script body; returns its SHA1.
    pub fn load_script(&mut self, body: &[u8]) -> Result<String, String> {
        if let Some(sha) = self.bodies.get(body) {
            return Ok(String::from_utf8_lossy(sha).into_owned());
        }
        let sha = sha1::hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let shebang = parse_shebang(body)?;
        let code = if shebang.is_some() {
            strip_first_line(body)
        } else {
            body.to_vec()
        };
        let f = compile(&self.eval, &code, "@user_script")
            .map_err(|e| format!("ERR Error compiling script (new function): {e}"))?;
        self.scripts.insert(
            sha.clone(),
            Script {
                f,
                flags: shebang.unwrap_or(0),
                shebang: shebang.is_some(),
            },
        );
        let mut key = [0u8; 40];
        key.copy_from_slice(sha.as_bytes());
        self.bodies.insert(body.to_vec(), key);
        Ok(sha)
    }

    /// Whether a script is cached.
    pub fn script_exists(&self, sha: &[u8]) -> bool {
        std::str::from_utf8(sha)
            .map(|s| self.scripts.contains_key(&s.to_ascii_lowercase()))
            .unwrap_or(false)
    }

    /// SCRIPT FLUSH: drops the cache and starts a fresh VM.
    pub fn flush_scripts(&mut self) {
        self.scripts.clear();
        self.bodies.clear();
        if let Ok(vm) = new_vm("eval") {
            self.eval = vm;
        }
    }

    /// Runs a cached script (EVALSHA) or `body` (EVAL) against the locked
    /// keyspace of `ctx`.
    pub fn eval(
        &mut self,
        ctx: &mut Ctx<'_>,
        script: ScriptRef<'_>,
        keys: &[&[u8]],
        argv: &[&[u8]],
        ro: bool,
    ) {
        const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
        // The script's SHA1 in lower-case hex.
        let mut key = [0u8; 40];
        match script {
            ScriptRef::Body(body) => match self.bodies.get(body) {
                Some(sha) => key = *sha,
                None => match self.load_script(body) {
                    Ok(sha) => key.copy_from_slice(sha.as_bytes()),
                    Err(e) => {
                        ctx.out.error(&e);
                        return;
                    }
                },
            },
            ScriptRef::Sha(sha) => {
                if sha.len() != key.len() {
                    ctx.out.error(NOSCRIPT);
                    return;
                }
                for (k, c) in key.iter_mut().zip(sha) {
                    *k = c.to_ascii_lowercase();
                }
            }
        }
        let Some((sha, s)) = std::str::from_utf8(&key)
            .ok()
            .and_then(|sha| self.scripts.get_key_value(sha))
        else {
            ctx.out.error(NOSCRIPT);
            return;
        };

        if ro && s.shebang && s.flags & FLAG_NO_WRITES == 0 {
            ctx.out
                .error("ERR Can not execute a script with write flag using *_ro command.");
            return;
        }
        let read_only = ro || (s.shebang && s.flags & FLAG_NO_WRITES != 0);
        run_code(
            &self.eval,
            ctx,
            &s.f,
            Kind::Eval,
            sha,
            keys,
            argv,
            read_only,
            None,
        );
    }

    // -----------------------------------------------------------------------
    // Functions.

    /// FUNCTION LOAD: the library name, or the error reply.
    pub fn load_library(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        let name = parse_library_header(code)?;
        if !replace && self.libs.contains_key(&name) {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let lib = self.compile_library(code)?;
        for fname in lib.funcs.keys() {
            if let Some(owner) = self.funcs.get(fname) {
                if *owner != name {
                    return Err(format!("ERR Function {fname} already exists"));
                }
            }
        }
        self.install(name.clone(), lib);
        Ok(name)
    }

    fn compile_library(&self, code: &[u8]) -> Result<Library, String> {
        let vm = &self.func;
        let body = strip_first_line(code);
        let f = compile(vm, &body, "@user_function")
            .map_err(|e| format!("ERR Error compiling function: {e}"))?;
        START_US.store(clock_us(), Ordering::Relaxed);
        LOADING.store(true, Ordering::Relaxed);
        let r: mlua::Result<(bool, Value)> =
            vm.k.get::<Function>("load_library").and_then(|l| l.call(f));
        LOADING.store(false, Ordering::Relaxed);
        let (ok, v) = r.map_err(|e| format!("ERR Error registering functions: {e}"))?;
        let Value::Table(t) = v else {
            return Err("ERR Error registering functions: unknown error".into());
        };
        if !ok {
            let msg = lua_bytes(&t.raw_get::<Value>("err").unwrap_or(Value::Nil))
                .unwrap_or_else(|| b"unknown error".to_vec());
            return Err(format!(
                "ERR Error registering functions: {}",
                String::from_utf8_lossy(&msg)
            ));
        }
        let mut funcs = BTreeMap::new();
        for entry in t.sequence_values::<Table>() {
            let entry = entry.map_err(|e| format!("ERR {e}"))?;
            let name: String = entry.get("name").map_err(|e| format!("ERR {e}"))?;
            let f: Function = entry.get("callback").map_err(|e| format!("ERR {e}"))?;
            let flags: u32 = entry.get("flags").unwrap_or(0);
            let desc: Option<mlua::String> = entry.get("description").unwrap_or(None);
            funcs.insert(
                name,
                FuncDef {
                    f,
                    desc: desc.map(|d| d.as_bytes().to_vec()),
                    flags,
                },
            );
        }
        if funcs.is_empty() {
            return Err("ERR No functions registered".into());
        }
        Ok(Library {
            code: code.to_vec(),
            funcs,
        })
    }

    fn install(&mut self, name: String, lib: Library) {
        self.delete_library(&name);
        for fname in lib.funcs.keys() {
            self.funcs.insert(fname.clone(), name.clone());
        }
        self.libs.insert(name, lib);
        self.recount();
    }

    fn recount(&self) {
        LIB_COUNT.store(self.libs.len(), Ordering::Relaxed);
        FUNC_COUNT.store(self.funcs.len(), Ordering::Relaxed);
    }

    /// FUNCTION DELETE: whether the library existed.
    pub fn delete_library(&mut self, name: &str) -> bool {
        let Some(lib) = self.libs.remove(name) else {
            return false;
        };
        for fname in lib.funcs.keys() {
            self.funcs.remove(fname);
        }
        self.recount();
        true
    }

    /// FUNCTION FLUSH: drops every library and starts a fresh VM.
    pub fn flush_functions(&mut self) {
        self.libs.clear();
        self.funcs.clear();
        if let Ok(vm) = new_vm("function") {
            self.func = vm;
        }
        self.recount();
    }

    /// FUNCTION DUMP payload.
    pub fn dump_functions(&self) -> Vec<u8> {
        payload::dump(self.libs.values().map(|l| l.code.as_slice()))
    }

    /// FUNCTION RESTORE with policy FLUSH / APPEND / REPLACE.
    pub fn restore_functions(&mut self, data: &[u8], policy: RestorePolicy) -> Result<(), String> {
        let codes = payload::parse(data).map_err(|e| e.to_string())?;
        let mut loaded: Vec<(String, Library)> = Vec::new();
        for code in &codes {
            let name = parse_library_header(code)?;
            if loaded.iter().any(|(n, _)| *n == name) {
                return Err(format!("ERR Library {name} already exists"));
            }
            let lib = self.compile_library(code)?;
            loaded.push((name, lib));
        }
        // Conflicts with what stays.
        let keep = |lib: &str| match policy {
            RestorePolicy::Flush => false,
            RestorePolicy::Append => true,
            RestorePolicy::Replace => !loaded.iter().any(|(n, _)| n == lib),
        };
        for (name, lib) in &loaded {
            if policy == RestorePolicy::Append && self.libs.contains_key(name) {
                return Err(format!("ERR Library {name} already exists"));
            }
            for fname in lib.funcs.keys() {
                if let Some(owner) = self.funcs.get(fname) {
                    if keep(owner) {
                        return Err(format!("ERR Function {fname} already exists"));
                    }
                }
                for (other, olib) in &loaded {
                    if other != name && olib.funcs.contains_key(fname) {
                        return Err(format!("ERR Function {fname} already exists"));
                    }
                }
            }
        }
        if policy == RestorePolicy::Flush {
            self.libs.clear();
            self.funcs.clear();
        }
        for (name, lib) in loaded {
            self.install(name, lib);
        }
        Ok(())
    }

    /// FCALL / FCALL_RO.
    pub fn fcall(
        &mut self,
        ctx: &mut Ctx<'_>,
        cmdline: &[&[u8]],
        name: &[u8],
        keys: &[&[u8]],
        argv: &[&[u8]],
        ro: bool,
    ) {
        // Function names are ASCII: other bytes name no function.
        let Some((name, lib)) = std::str::from_utf8(name)
            .ok()
            .and_then(|name| self.funcs.get_key_value(name))
        else {
            ctx.out.error("ERR Function not found");
            return;
        };
        let def = &self.libs[lib].funcs[name];
        if ro && def.flags & FLAG_NO_WRITES == 0 {
            ctx.out
                .error("ERR Can not execute a script with write flag using *_ro command.");
            return;
        }
        let read_only = ro || def.flags & FLAG_NO_WRITES != 0;
        run_code(
            &self.func,
            ctx,
            &def.f,
            Kind::Function,
            name,
            keys,
            argv,
            read_only,
            Some(cmdline),
        );
    }
}

/// FUNCTION RESTORE policies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RestorePolicy {
    /// Delete everything first.
    Flush,
    /// Fail on any existing library (the default).
    Append,
    /// Replace libraries of the same name.
    Replace,
}

/// The script an EVAL-family command names.
pub enum ScriptRef<'a> {
    /// EVAL: the script body.
    Body(&'a [u8]),
    /// EVALSHA: its SHA1.
    Sha(&'a [u8]),
}

/// Compiles user code in the VM's sandbox (the Lua error text on failure).
fn compile(vm: &Vm, code: &[u8], chunkname: &str) -> Result<Function, String> {
    let compile: Function = vm.k.get("compile").map_err(|e| e.to_string())?;
    let code = vm.lua.create_string(code).map_err(|e| e.to_string())?;
    let (f, err): (Option<Function>, Option<mlua::String>) =
        compile.call((code, chunkname)).map_err(|e| e.to_string())?;
    match f {
        Some(f) => Ok(f),
        None => Err(err
            .map(|e| String::from_utf8_lossy(&e.as_bytes()).into_owned())
            .unwrap_or_default()),
    }
}
