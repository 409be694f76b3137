//! The Lua libraries Redis bundles for scripts: `cjson`, `cmsgpack`, `bit`
//! and `struct`, reproducing the behaviour of the C libraries Redis 7.2
//! ships (lua-cjson 2.1.0, lua-cmsgpack 0.4.0, LuaBitOp 1.0.2 and
//! Roberto Ierusalimschy's struct library).
//!
//! Every library function is a small C trampoline around a Rust closure.
//! The trampoline gives the closure its arguments in a table (so numbers
//! keep their exact value), and turns the closure's failures into plain Lua
//! string errors raised the way the C libraries raise them: `luaL_error`
//! (prefixed with the calling script's position) or `luaL_argerror`
//! (`bad argument #N to 'name' (...)`).

mod bit;
mod cjson;
mod cmsgpack;
mod structlib;

use std::os::raw::c_int;

use mlua::{ffi, Function, Lua, Table, Value};

/// Installs the globals `cjson`, `cmsgpack`, `bit` and `struct`.
pub fn register_all(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.raw_set("cjson", cjson::create(lua)?)?;
    globals.raw_set("cmsgpack", cmsgpack::create(lua)?)?;
    globals.raw_set("bit", bit::create(lua)?)?;
    globals.raw_set("struct", structlib::create(lua)?)?;
    Ok(())
}

/// Why a library call failed.
pub(crate) enum Fail {
    /// Like `luaL_error`: the message is prefixed with the caller's position.
    Msg(Vec<u8>),
    /// Like `luaL_argerror(L, narg, extramsg)`.
    Arg(i64, Vec<u8>),
    /// Like `lua_error` with a string: the message is raised as is.
    Raw(Vec<u8>),
    /// An interpreter error (out of memory...), propagated unchanged.
    Lua(mlua::Error),
}

impl From<mlua::Error> for Fail {
    fn from(e: mlua::Error) -> Self {
        Fail::Lua(e)
    }
}

/// Shorthand for a `luaL_error` failure.
pub(crate) fn fail<T>(msg: impl Into<Vec<u8>>) -> Res<T> {
    Err(Fail::Msg(msg.into()))
}

/// Shorthand for a `luaL_argerror` failure.
pub(crate) fn arg_fail<T>(narg: i64, msg: impl Into<Vec<u8>>) -> Res<T> {
    Err(Fail::Arg(narg, msg.into()))
}

/// Result of a library function body.
pub(crate) type Res<T> = Result<T, Fail>;

/// Lua 5.1's `LUAI_MAXCSTACK`: the most stack slots a C function may use.
pub(crate) const MAX_C_STACK: usize = 8000;

/// The arguments of a library call (1-based, like the Lua C API).
pub(crate) struct Args {
    table: Table,
    n: usize,
}

impl Args {
    /// Number of arguments passed (`lua_gettop`).
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Argument `i`, numbers with their exact value; `Nil` when absent.
    pub(crate) fn get(&self, i: usize) -> mlua::Result<Value> {
        if i == 0 || i > self.n {
            return Ok(Value::Nil);
        }
        exact(&self.table, i, self.table.raw_get(i)?)
    }

    /// Whether argument `i` was not passed at all (`lua_isnone`).
    pub(crate) fn is_none(&self, i: usize) -> bool {
        i > self.n
    }

    /// `luaL_typename` of argument `i` ("no value" when absent).
    pub(crate) fn type_name(&self, i: usize) -> mlua::Result<&'static str> {
        if self.is_none(i) {
            return Ok("no value");
        }
        Ok(type_name(&self.get(i)?))
    }

    /// The `<expected> expected, got <type>` error for argument `i`
    /// (`luaL_typerror`), a missing argument read as `absent`'s type.
    pub(crate) fn type_error<T>(
        &self,
        i: usize,
        absent: Option<&'static str>,
        expected: &str,
    ) -> Res<T> {
        let got = match absent {
            Some(t) if self.is_none(i) => t,
            _ => self.type_name(i)?,
        };
        arg_fail(i as i64, format!("{expected} expected, got {got}"))
    }

    /// `luaL_checknumber`.
    pub(crate) fn check_number(&self, lua: &Lua, i: usize) -> Res<f64> {
        self.check_number_or(lua, i, None)
    }

    /// `luaL_checknumber` where a missing argument reads as `absent`'s type
    /// (the struct library pushes a nil mark after its arguments).
    pub(crate) fn check_number_or(
        &self,
        lua: &Lua,
        i: usize,
        absent: Option<&'static str>,
    ) -> Res<f64> {
        let v = self.get(i)?;
        if let Some(n) = to_number(lua, &v)? {
            return Ok(n);
        }
        self.type_error(i, absent, "number")
    }

    /// `luaL_checkinteger` (truncates like a C cast on x86-64).
    pub(crate) fn check_integer(&self, lua: &Lua, i: usize) -> Res<i64> {
        Ok(c_f64_to_i64(self.check_number(lua, i)?))
    }

    /// `luaL_optinteger`.
    pub(crate) fn opt_integer(&self, lua: &Lua, i: usize, default: i64) -> Res<i64> {
        match self.get(i)? {
            Value::Nil => Ok(default),
            _ => self.check_integer(lua, i),
        }
    }

    /// `luaL_checklstring` (numbers are converted like `lua_tolstring`).
    pub(crate) fn check_bytes(&self, lua: &Lua, i: usize) -> Res<Vec<u8>> {
        self.check_bytes_or(lua, i, None)
    }

    /// `luaL_checklstring` with the type name reported for a missing argument.
    pub(crate) fn check_bytes_or(
        &self,
        lua: &Lua,
        i: usize,
        absent: Option<&'static str>,
    ) -> Res<Vec<u8>> {
        let v = self.get(i)?;
        if let Some(s) = to_bytes(lua, &v)? {
            return Ok(s);
        }
        self.type_error(i, absent, "string")
    }
}

/// Re-reads a number stored under `key` so that it keeps its exact value.
///
/// The generic value conversion turns numbers within `f64::EPSILON` of an
/// integer into that integer; only `0` can result from a value that was not
/// an integer (a tiny number, or `-0`), so only that case is re-read.
pub(crate) fn exact<K: mlua::IntoLua>(t: &Table, key: K, v: Value) -> mlua::Result<Value> {
    match v {
        Value::Integer(0) => match t.raw_get::<Option<f64>>(key) {
            Ok(Some(n)) => Ok(Value::Number(n)),
            _ => Ok(v),
        },
        v => Ok(v),
    }
}

/// `lua_tonumber` semantics: numbers, and strings that convert to one.
pub(crate) fn to_number(lua: &Lua, v: &Value) -> mlua::Result<Option<f64>> {
    Ok(match v {
        Value::Number(n) => Some(*n),
        Value::Integer(i) => Some(*i as f64),
        Value::String(_) => lua.coerce_number(v.clone())?,
        _ => None,
    })
}

/// `lua_tolstring` semantics: strings, and numbers formatted with `%.14g`.
pub(crate) fn to_bytes(lua: &Lua, v: &Value) -> mlua::Result<Option<Vec<u8>>> {
    Ok(match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Number(_) | Value::Integer(_) => {
            lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec())
        }
        _ => None,
    })
}

/// `lua_typename` of a value.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// A C `(int64_t)d` cast as x86-64 performs it (out of range gives `INT64_MIN`).
pub(crate) fn c_f64_to_i64(d: f64) -> i64 {
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// A C `(int)d` cast as x86-64 performs it (out of range gives `INT_MIN`).
pub(crate) fn c_f64_to_i32(d: f64) -> i32 {
    if !(-2_147_483_648.0..2_147_483_648.0).contains(&d) {
        i32::MIN
    } else {
        d as i32
    }
}

/// Formats `d` like C's `printf("%.<prec>g", d)`.
pub(crate) fn format_g(d: f64, prec: usize) -> String {
    let fmt = format!("%.{}g\0", prec.clamp(1, 40));
    let mut buf = [0u8; 64];
    // SAFETY: the buffer size is passed, the format is NUL-terminated and
    // consumes exactly one double.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            fmt.as_ptr() as *const libc::c_char,
            d,
        )
    };
    let n = (n.max(0) as usize).min(buf.len() - 1);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The results of a library call. A single result is kept as is; more are
/// stored straight into a Lua table so that no Rust-side references pile up
/// (mlua can hold only ~8000 at once).
pub(crate) struct Out<'a> {
    lua: &'a Lua,
    first: Value,
    table: Option<Table>,
    count: usize,
}

impl Out<'_> {
    /// Appends a result.
    pub(crate) fn push(&mut self, v: Value) -> mlua::Result<()> {
        if self.count == 0 {
            self.first = v;
        } else {
            if self.table.is_none() {
                let t = self.lua.create_table()?;
                t.raw_set(1, std::mem::replace(&mut self.first, Value::Nil))?;
                self.table = Some(t);
            }
            if let Some(t) = &self.table {
                t.raw_set(self.count + 1, v)?;
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Replaces result `i` (1-based, already pushed).
    pub(crate) fn set(&mut self, i: usize, v: Value) -> mlua::Result<()> {
        match &self.table {
            Some(t) => t.raw_set(i, v),
            None => {
                self.first = v;
                Ok(())
            }
        }
    }

    /// Number of results so far.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The last result (exact numbers), `None` when there is none.
    pub(crate) fn last(&self) -> mlua::Result<Option<Value>> {
        if self.count == 0 {
            return Ok(None);
        }
        match &self.table {
            Some(t) => {
                let v = t.raw_get(self.count)?;
                Ok(Some(exact(t, self.count, v)?))
            }
            None => Ok(Some(self.first.clone())),
        }
    }

    /// Removes the last result.
    pub(crate) fn pop(&mut self) -> mlua::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        match &self.table {
            Some(t) => t.raw_set(self.count, Value::Nil)?,
            None => self.first = Value::Nil,
        }
        self.count -= 1;
        Ok(())
    }
}

/// Creates a library function from `body`, which returns its results.
pub(crate) fn func<F>(lua: &Lua, body: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, &Args) -> Res<Vec<Value>> + mlua::MaybeSend + 'static,
{
    func_out(lua, move |lua, args, out| {
        for v in body(lua, args)? {
            out.push(v)?;
        }
        Ok(())
    })
}

/// Creates a library function from `body`, which pushes its results.
pub(crate) fn func_out<F>(lua: &Lua, body: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, &Args, &mut Out<'_>) -> Res<()> + mlua::MaybeSend + 'static,
{
    let inner = lua.create_function(move |lua, (n, table): (usize, Table)| {
        let args = Args { table, n };
        let mut out = Out {
            lua,
            first: Value::Nil,
            table: None,
            count: 0,
        };
        match body(lua, &args, &mut out) {
            Ok(()) => match out.table {
                Some(t) => Ok((0i64, Value::Table(t), Value::Integer(out.count as i64))),
                None => Ok((4, out.first, Value::Integer(out.count as i64))),
            },
            Err(Fail::Msg(m)) => Ok((1, Value::String(lua.create_string(m)?), Value::Nil)),
            Err(Fail::Raw(m)) => Ok((3, Value::String(lua.create_string(m)?), Value::Nil)),
            Err(Fail::Arg(narg, m)) => Ok((
                2,
                Value::Integer(narg),
                Value::String(lua.create_string(m)?),
            )),
            Err(Fail::Lua(e)) => Err(e),
        }
    })?;
    // SAFETY: the closure only receives the inner function as upvalue and
    // leaves the new C closure as the single result.
    unsafe { lua.exec_raw(inner, |state| ffi::lua_pushcclosure(state, trampoline, 1)) }
}

/// `lua_next`: the entry after `key` in `t` (`None` at the end). Numbers
/// (keys and values) keep their exact value.
pub(crate) fn next_entry(lua: &Lua, t: &Table, key: Value) -> mlua::Result<Option<(Value, Value)>> {
    // SAFETY: the stack holds the table and the key; lua_next replaces the
    // key by the next pair (or pops it at the end), then numeric copies of
    // the key and value (or nils) are pushed and the table is removed.
    let (k, v, kn, vn): (Value, Value, Option<f64>, Option<f64>) = unsafe {
        lua.exec_raw((t, key), |state| {
            if ffi::lua_next(state, 1) == 0 {
                ffi::lua_pushnil(state);
                ffi::lua_pushnil(state);
            }
            for idx in [2, 3] {
                if ffi::lua_type(state, idx) == ffi::LUA_TNUMBER {
                    ffi::lua_pushvalue(state, idx);
                } else {
                    ffi::lua_pushnil(state);
                }
            }
            ffi::lua_remove(state, 1);
        })?
    };
    if k.is_nil() {
        return Ok(None);
    }
    let k = kn.map(Value::Number).unwrap_or(k);
    let v = vn.map(Value::Number).unwrap_or(v);
    Ok(Some((k, v)))
}

/// Summary of a table's keys, computed in one pass over `lua_next`.
pub(crate) struct KeyScan {
    /// Whether every key passed the `accept` test.
    pub(crate) all: bool,
    /// Largest accepted key, converted like a C `(int)` cast.
    pub(crate) max: i32,
    /// Number of keys (all of them, when `all`).
    pub(crate) items: i32,
}

/// Scans the keys of `t`: stops at the first key that is not a number `k`
/// with `accept(k)`.
pub(crate) fn scan_keys(lua: &Lua, t: &Table, accept: fn(f64) -> bool) -> mlua::Result<KeyScan> {
    let mut scan = KeyScan {
        all: true,
        max: 0,
        items: 0,
    };
    // SAFETY: the table is at index 1; the loop only uses stack operations
    // that cannot raise errors (lua_next on keys it produced itself), and
    // leaves an empty result.
    unsafe {
        lua.exec_raw::<()>(t, |state| {
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, 1) != 0 {
                let ok = ffi::lua_type(state, -2) == ffi::LUA_TNUMBER && {
                    let k = ffi::lua_tonumber(state, -2);
                    accept(k) && {
                        if k > scan.max as f64 {
                            scan.max = c_f64_to_i32(k);
                        }
                        true
                    }
                };
                if !ok {
                    scan.all = false;
                    break;
                }
                scan.items = scan.items.wrapping_add(1);
                ffi::lua_pop(state, 1);
            }
            ffi::lua_settop(state, 0);
        })?;
    }
    Ok(scan)
}

/// The C side of every library function: see the module documentation.
unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
    let n = ffi::lua_gettop(state);
    if ffi::lua_checkstack(state, 2) == 0 {
        ffi::luaL_error(state, c"stack overflow".as_ptr());
    }
    ffi::lua_createtable(state, n, 0);
    for i in 1..=n {
        ffi::lua_pushvalue(state, i);
        ffi::lua_rawseti(state, -2, i as ffi::lua_Integer);
    }
    // Keep only the argument table (at index 1).
    if n > 0 {
        ffi::lua_replace(state, 1);
        ffi::lua_settop(state, 1);
    }
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_pushinteger(state, n as ffi::lua_Integer);
    ffi::lua_pushvalue(state, 1);
    ffi::lua_call(state, 2, 3);
    // Stack: argument table, code, a, b.
    let code = ffi::lua_tointeger(state, -3);
    match code {
        0 => {
            let count = ffi::lua_tointeger(state, -1).max(0) as c_int;
            ffi::lua_pushvalue(state, -2);
            ffi::lua_replace(state, 1);
            ffi::lua_settop(state, 1);
            if ffi::lua_checkstack(state, count) == 0 {
                ffi::luaL_error(state, c"stack overflow (too many results)".as_ptr());
            }
            for i in 1..=count {
                ffi::lua_rawgeti(state, 1, i as ffi::lua_Integer);
            }
            count
        }
        1 => {
            ffi::luaL_where(state, 1);
            ffi::lua_pushvalue(state, -3);
            ffi::lua_concat(state, 2);
            ffi::lua_error(state)
        }
        3 => {
            ffi::lua_pushvalue(state, -2);
            ffi::lua_error(state)
        }
        4 => {
            // Zero or one result, held directly.
            if ffi::lua_tointeger(state, -1) == 0 {
                0
            } else {
                ffi::lua_pushvalue(state, -2);
                1
            }
        }
        _ => {
            let narg = ffi::lua_tointeger(state, -2) as c_int;
            let msg = ffi::lua_tolstring(state, -1, std::ptr::null_mut());
            ffi::luaL_argerror(state, narg, msg)
        }
    }
}

/// Shared helpers for the unit tests of the libraries.
#[cfg(test)]
pub(crate) mod testutil {
    use mlua::Lua;

    /// A Lua state with all libraries registered.
    pub(crate) fn lua() -> Lua {
        let lua = Lua::new();
        super::register_all(&lua).unwrap();
        lua
    }

    /// Evaluates `code` and returns its single result as bytes (strings) or
    /// its `tostring` form.
    pub(crate) fn eval(lua: &Lua, code: &str) -> Vec<u8> {
        let v: mlua::Value = lua
            .load(format!("return tostring((function() {code} end)())"))
            .set_name("=user_script")
            .eval()
            .unwrap_or_else(|e| panic!("{code}: {e}"));
        match v {
            mlua::Value::String(s) => s.as_bytes().to_vec(),
            other => format!("{other:?}").into_bytes(),
        }
    }

    /// Evaluates `code` and returns its result as a string.
    pub(crate) fn s(lua: &Lua, code: &str) -> String {
        String::from_utf8_lossy(&eval(lua, code)).into_owned()
    }

    /// Runs `code` (an expression) under pcall and returns the error text.
    pub(crate) fn err(lua: &Lua, code: &str) -> String {
        s(
            lua,
            &format!(
                "local ok, e = pcall(function() return {code} end) \
                 if ok then return 'NO ERROR' end return e"
            ),
        )
    }

    /// Checks each `(code, result)` pair with [`s`].
    pub(crate) fn check(lua: &Lua, cases: &[(&str, &str)]) {
        for &(code, want) in cases {
            assert_eq!(s(lua, code), want, "{code}");
        }
    }

    /// Checks each `(expression, error)` pair with [`err`].
    pub(crate) fn check_errs(lua: &Lua, cases: &[(&str, &str)]) {
        for &(code, want) in cases {
            assert_eq!(err(lua, code), want, "{code}");
        }
    }
}
