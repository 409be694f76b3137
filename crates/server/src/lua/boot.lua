-- Sandbox set-up of one scripting VM (chunk name "=kvik"; the frames of
-- this chunk are skipped when an error is located in user code).
-- Arguments: the Rust primitives, and the mode ("eval" or "function").
local rt, mode = ...
local cwrap = rt.cwrap

local type, tostring, tonumber, error, select = type, tostring, tonumber, error, select
local raw_next, raw_pairs, raw_ipairs = next, pairs, ipairs
local raw_rawget, raw_rawset, raw_rawequal = rawget, rawset, rawequal
local raw_setmetatable, raw_getmetatable = setmetatable, getmetatable
local raw_pcall, raw_xpcall, raw_unpack = pcall, xpcall, unpack
local raw_loadstring, setfenv = loadstring, setfenv
local ssub, sfind, sbyte = string.sub, string.find, string.byte
local tconcat, tinsert, tremove, tsort, tmaxn = table.concat, table.insert, table.remove, table.sort, table.maxn
local getinfo, sethook = debug.getinfo, debug.sethook
local co_create, co_resume, co_status = coroutine.create, coroutine.resume, coroutine.status
local os_clock = os.clock

local RO = 'Attempt to modify a readonly table'

-- proxy -> the table it protects
local real = raw_setmetatable({}, { __mode = 'k' })

local function ro_newindex()
    error(RO, 2)
end

local function ro(t)
    local p = {}
    real[p] = t
    raw_setmetatable(p, { __index = t, __newindex = ro_newindex, __metatable = false })
    return p
end

-- A protected table whose missing keys are errors (load-time API).
local function ro_strict(t)
    local p = {}
    real[p] = t
    raw_setmetatable(p, {
        __index = function(_, k)
            local v = t[k]
            if v == nil then
                error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
            end
            return v
        end,
        __newindex = ro_newindex,
        __metatable = false,
    })
    return p
end

local function unwrap(t)
    return real[t] or t
end

-- Builds the `{err=...}` table of an error message, as Redis does: a
-- leading "-CODE " gives the code, otherwise the code is ERR.
local function perr(msg)
    local code, rest
    if ssub(msg, 1, 1) == '-' then
        local sp = sfind(msg, ' ', 1, true)
        if sp then
            code, rest = ssub(msg, 2, sp - 1), ssub(msg, sp + 1)
        else
            code, rest = 'ERR', ssub(msg, 2)
        end
    else
        code, rest = 'ERR', msg
    end
    -- trim CR/LF at both ends
    local a, b = 1, #rest
    while a <= b and (sbyte(rest, a) == 13 or sbyte(rest, a) == 10) do a = a + 1 end
    while b >= a and (sbyte(rest, b) == 13 or sbyte(rest, b) == 10) do b = b - 1 end
    return { err = code .. ' ' .. ssub(rest, a, b) }
end

-- Raised from inside `cwrap` implementations.
local Fail = {}
local function raise(msg)
    error({ [Fail] = perr(msg) })
end

-- Wraps an API function as a C closure: errors it raises with `raise`
-- surface from the C frame (located in user code, as Redis's C API).
local function api(f)
    return cwrap(function(...)
        local r = { raw_pcall(f, ...) }
        if r[1] then
            return raw_unpack(r, 1, tmaxn(r))
        end
        local e = r[2]
        if type(e) == 'table' and raw_rawget(e, Fail) then
            return false, raw_rawget(e, Fail)
        end
        return false, e
    end)
end

-- The message handler of a script run: locates the user frame that raised
-- the error and turns the error into {err=, source=, line=}.
local function handler(err)
    local info
    local lvl = 2
    while true do
        info = getinfo(lvl, 'Sl')
        if not info then break end
        if info.what ~= 'C' and info.source ~= '=kvik' then break end
        lvl = lvl + 1
    end
    -- A protected (shared) table is not written to: it becomes a message.
    if type(err) ~= 'table' or real[err] then
        err = { err = 'ERR ' .. tostring(err) }
    end
    if info then
        raw_rawset(err, 'source', info.source)
        raw_rawset(err, 'line', info.currentline)
    end
    return err
end

-- ---------------------------------------------------------------------
-- Time limit / SCRIPT KILL: a count hook on every thread of the VM.
local tick, tick_line
-- `level` is the stack level of the code being run, seen from here.
local function check(level)
    local verdict = rt.tick()
    -- Abort only from user code, never from the sandbox's own frames
    -- (e.g. after the script returned).
    local info = verdict and getinfo(level, 'S')
    if info and info.source ~= '=kvik' and info.what ~= 'C' then
        -- Keep failing on every line, so pcall cannot swallow the kill.
        sethook(tick_line, 'l')
        error({ err = verdict })
    end
end
-- 1 = check, 2 = the hook, 3 = the code being run
tick_line = function() check(3) end
tick = function() check(3) end
local TICK_COUNT = 100000

-- ---------------------------------------------------------------------
-- Globals.
local G = {}      -- what the user environment resolves names to
local E = {}      -- the user environment (a protected proxy)
-- E resolves names in a table (G, or the load-time API during FUNCTION
-- LOAD) without a function call; a name missing there is an error.
local function missing_global(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
local emeta = {
    __index = G,
    __newindex = ro_newindex,
    __metatable = false,
}
raw_setmetatable(E, emeta)
raw_setmetatable(G, { __index = missing_global })
real[E] = G

local function guard(t)
    if real[t] then
        error(RO, 0)
    end
    return t
end

local function safe_next(t, k)
    return raw_next(unwrap(t), k)
end

-- "source:line: " of the user code calling a `cwrap` function.
local function where()
    -- 1 = where, 2 = the implementation, 3 = the C closure, 4 = the caller
    local info = getinfo(4, 'Sl')
    if info and info.currentline > 0 then
        return info.short_src .. ':' .. info.currentline .. ': '
    end
    return ''
end

local safe_pairs = cwrap(function(...)
    local t = ...
    if type(t) ~= 'table' then
        local got = select('#', ...) == 0 and 'no value' or type(t)
        return false, where() .. "bad argument #1 to 'pairs' (table expected, got " .. got .. ")"
    end
    return true, safe_next, t, nil
end)

local function safe_loadstring(s, name)
    if type(s) == 'string' and sbyte(s, 1) == 27 then
        return nil, 'bytecode is not supported'
    end
    local f, e = raw_loadstring(s, name)
    if f then
        setfenv(f, E)
    end
    return f, e
end

local function safe_load(fn, name)
    if type(fn) ~= 'function' then
        return safe_loadstring(fn, name)
    end
    local parts = {}
    while true do
        local piece = fn()
        if piece == nil or piece == '' then break end
        if type(piece) ~= 'string' then
            return nil, 'reader function must return a string'
        end
        parts[#parts + 1] = piece
    end
    return safe_loadstring(tconcat(parts), name)
end

-- Redis's pcall: an error table raised by redis.call is caught as its
-- message string.
local function redis_pcall(f, ...)
    local r = { raw_pcall(f, ...) }
    if not r[1] and type(r[2]) == 'table' then
        local m = raw_rawget(r[2], 'err')
        if type(m) == 'string' then
            r[2] = m
        end
    end
    return raw_unpack(r, 1, tmaxn(r))
end

local function co_wrap_create(f)
    local co = co_create(f)
    sethook(co, tick, '', TICK_COUNT)
    return co
end

local function co_wrap(f)
    local co = co_wrap_create(f)
    -- Errors propagate like coroutine.wrap's: strings get the position
    -- of the caller prepended.
    return cwrap(function(...)
        local r = { co_resume(co, ...) }
        if not r[1] then
            local e = r[2]
            if type(e) == 'string' then
                e = where() .. e
            end
            return false, e
        end
        return true, raw_unpack(r, 2, tmaxn(r))
    end)
end

local function copy(t)
    local c = {}
    for k, v in raw_pairs(t) do c[k] = v end
    return c
end

local string_ro = ro(string)
local math_t = copy(math)
local floor = math.floor
local function trunc(x)
    if x >= 0 then return floor(x) end
    return -floor(-x)
end
-- luaL_checkint: the integer, or nil and the error message.
local function checkint(loc, fname, n, argc, v)
    local x = tonumber(v)
    if x == nil then
        local got = n > argc and 'no value' or type(v)
        return nil, loc .. 'bad argument #' .. n .. " to '" .. fname .. "' (number expected, got " .. got .. ')'
    end
    return trunc(x)
end
-- Redis's math.random: Lua's algorithm over a portable 48-bit PRNG.
math_t.random = cwrap(function(...)
    local loc = where()
    local argc = select('#', ...)
    local r = (rt.rand48() % 2147483647) / 2147483647
    if argc == 0 then
        return true, r
    end
    local a, b = ...
    if argc == 1 then
        local u, e = checkint(loc, 'random', 1, argc, a)
        if not u then return false, e end
        if u < 1 then
            return false, loc .. "bad argument #1 to 'random' (interval is empty)"
        end
        return true, floor(r * u) + 1
    elseif argc == 2 then
        local l, e = checkint(loc, 'random', 1, argc, a)
        if not l then return false, e end
        local u, e2 = checkint(loc, 'random', 2, argc, b)
        if not u then return false, e2 end
        if l > u then
            return false, loc .. "bad argument #2 to 'random' (interval is empty)"
        end
        return true, floor(r * (u - l + 1)) + l
    end
    return false, loc .. 'wrong number of arguments'
end)
math_t.randomseed = cwrap(function(...)
    local loc = where()
    local seed, e = checkint(loc, 'randomseed', 1, select('#', ...), (...))
    if not seed then return false, e end
    rt.srand48(seed)
    return true
end)
local table_t = copy(table)
local co_t = copy(coroutine)
co_t.create = co_wrap_create
co_t.wrap = co_wrap

-- The string metatable stays usable for methods but cannot be changed.
local smeta = raw_getmetatable('')
smeta.__metatable = ro({ __index = string_ro })

G._G = E
G._VERSION = _VERSION
G.assert = assert
G.collectgarbage = collectgarbage
G.coroutine = ro(co_t)
G.error = error
G.gcinfo = gcinfo
G.getmetatable = raw_getmetatable
G.ipairs = raw_ipairs
G.load = safe_load
G.loadstring = safe_loadstring
G.math = ro(math_t)
G.next = safe_next
G.pairs = safe_pairs
G.pcall = redis_pcall
G.rawequal = raw_rawequal
G.rawget = raw_rawget
G.rawset = cwrap(function(...)
    local loc = where()
    local argc = select('#', ...)
    local t, k, v = ...
    if type(t) ~= 'table' then
        return false, loc .. "bad argument #1 to 'rawset' (table expected, got " .. (argc < 1 and 'no value' or type(t)) .. ')'
    end
    if argc < 2 then
        return false, loc .. "bad argument #2 to 'rawset' (value expected)"
    end
    if argc < 3 then
        return false, loc .. "bad argument #3 to 'rawset' (value expected)"
    end
    if real[t] or t == E then
        return false, RO
    end
    return true, raw_rawset(t, k, v)
end)
G.select = select
G.setmetatable = cwrap(function(...)
    local loc = where()
    local argc = select('#', ...)
    local t, m = ...
    if type(t) ~= 'table' then
        return false, loc .. "bad argument #1 to 'setmetatable' (table expected, got " .. (argc < 1 and 'no value' or type(t)) .. ')'
    end
    if m ~= nil and type(m) ~= 'table' then
        return false, loc .. "bad argument #2 to 'setmetatable' (nil or table expected)"
    end
    if real[t] or t == E then
        return false, RO
    end
    local old = raw_getmetatable(t)
    if old ~= nil and type(old) ~= 'table' or (type(old) == 'table' and raw_rawget(old, '__metatable') ~= nil) then
        return false, loc .. 'cannot change a protected metatable'
    end
    return true, raw_setmetatable(t, m)
end)
G.string = string_ro
G.table = ro(table_t)
G.tonumber = tonumber
G.tostring = tostring
G.type = type
G.unpack = raw_unpack
G.xpcall = xpcall
G.os = ro({ clock = os_clock })
for name, lib in raw_pairs(rt.libs) do
    G[name] = ro(lib)
end

-- ---------------------------------------------------------------------
-- The redis API.
local resp = 2
local writes_ok = true

local redis = {}
-- C closures (see `cwrap`) over the Rust implementations, which return
-- ok, value (pcall: always true); a false ok raises the value from the C
-- frame, so the error is located in the user's code even for
-- `return redis.call(...)`. Outside a run they return the error of a
-- call made outside a script invocation.
redis.call = cwrap(rt.call)
redis.pcall = cwrap(rt.pcall)

local function log(...)
    local argc = select('#', ...)
    if argc < 2 then
        raise('redis.log() requires two arguments or more.')
    end
    local level = ...
    if type(level) ~= 'number' then
        raise('First argument must be a number (log level).')
    end
    if level < 0 or level > 3 then
        raise('Invalid debug level.')
    end
    local parts = {}
    for i = 2, argc do
        local s = select(i, ...)
        if type(s) == 'string' or type(s) == 'number' then
            parts[#parts + 1] = tostring(s)
        end
    end
    rt.log(level, tconcat(parts, ' '))
end

local function add_common(r)
    r.log = api(log)
    r.LOG_DEBUG = 0
    r.LOG_VERBOSE = 1
    r.LOG_NOTICE = 2
    r.LOG_WARNING = 3
    r.REDIS_VERSION = rt.version
    r.REDIS_VERSION_NUM = rt.version_num
end
add_common(redis)

redis.setresp = api(function(...)
    if select('#', ...) ~= 1 then
        raise('redis.setresp() requires one argument.')
    end
    local v = tonumber((...))
    if v ~= 2 and v ~= 3 then
        raise('RESP version must be 2 or 3.')
    end
    resp = v
    rt.setresp(v)
end)

redis.sha1hex = api(function(...)
    if select('#', ...) ~= 1 then
        raise('wrong number of arguments')
    end
    local s = ...
    if type(s) ~= 'string' and type(s) ~= 'number' then
        s = ''
    end
    return rt.sha1hex(tostring(s))
end)

redis.error_reply = function(...)
    local s = ...
    if select('#', ...) ~= 1 or type(s) ~= 'string' then
        return perr('wrong number or type of arguments')
    end
    if ssub(s, 1, 1) ~= '-' then
        s = '-' .. s
    end
    return perr(s)
end

redis.status_reply = function(...)
    local s = ...
    if select('#', ...) ~= 1 or type(s) ~= 'string' then
        return perr('wrong number or type of arguments')
    end
    return { ok = s }
end

redis.REPL_NONE = 0
redis.REPL_AOF = 1
redis.REPL_SLAVE = 2
redis.REPL_REPLICA = 2
redis.REPL_ALL = 3
redis.set_repl = api(function(...)
    if select('#', ...) ~= 1 then
        raise('redis.set_repl() requires two arguments.')
    end
    local flags = tonumber((...))
    if not flags or flags < 0 or flags > 3 or flags ~= flags - flags % 1 then
        raise('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')
    end
end)

redis.acl_check_cmd = api(function(...)
    local argc = select('#', ...)
    if argc == 0 then
        raise('Please specify at least one argument for this redis lib call')
    end
    for i = 1, argc do
        local a = select(i, ...)
        if type(a) ~= 'string' and type(a) ~= 'number' then
            raise('Lua redis lib command arguments must be strings or integers')
        end
    end
    local ok = rt.acl_check(...)
    if ok == nil then
        raise('Invalid command passed to redis.acl_check_cmd()')
    end
    return ok
end)

if mode == 'eval' then
    redis.replicate_commands = function() return true end
    redis.breakpoint = function() return false end
    redis.debug = function() end
    G.__redis__err__handler = handler
end
G.redis = ro(redis)

-- ---------------------------------------------------------------------
-- FUNCTION LOAD support: the load-time globals.
local loading = nil  -- list of registered functions while loading
local LG = raw_setmetatable({}, { __index = missing_global })
local FLAG_NAMES = { ['no-writes'] = 1, ['allow-oom'] = 2, ['allow-stale'] = 4,
    ['no-cluster'] = 8, ['allow-cross-slot-keys'] = 16 }

local function valid_name(n)
    return type(n) == 'string' and #n > 0 and not sfind(n, '[^%w_]')
end

local function register_function(...)
    local argc = select('#', ...)
    local name, cb, flags, desc
    if argc == 1 then
        local t = ...
        if type(t) ~= 'table' then
            raise('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
        end
        for k, v in raw_pairs(t) do
            if k == 'function_name' then
                if type(v) ~= 'string' and type(v) ~= 'number' then
                    raise('function_name argument given to redis.register_function must be a string')
                end
                name = tostring(v)
            elseif k == 'description' then
                if type(v) ~= 'string' and type(v) ~= 'number' then
                    raise('description argument given to redis.register_function must be a string')
                end
                desc = tostring(v)
            elseif k == 'callback' then
                if type(v) ~= 'function' then
                    raise('callback argument given to redis.register_function must be a function')
                end
                cb = v
            elseif k == 'flags' then
                if type(v) ~= 'table' then
                    raise('flags argument to redis.register_function must be a table representing function flags')
                end
                flags = 0
                for _, f in raw_ipairs(v) do
                    local bit = type(f) == 'string' and FLAG_NAMES[f]
                    if not bit then
                        raise('unknown flag given')
                    end
                    if flags % (bit * 2) < bit then
                        flags = flags + bit
                    end
                end
            else
                raise('unknown argument given to redis.register_function')
            end
        end
        if not name then
            raise('redis.register_function must get a function name argument')
        end
        if not cb then
            raise('redis.register_function must get a callback argument')
        end
    elseif argc == 2 then
        name, cb = ...
        if type(cb) ~= 'function' then
            raise('second argument to redis.register_function must be a function')
        end
        if type(name) ~= 'string' and type(name) ~= 'number' then
            raise('first argument to redis.register_function must be a string')
        end
        name = tostring(name)
    else
        raise('wrong number of arguments to redis.register_function')
    end
    if not loading then
        raise('redis.register_function can only be called on FUNCTION LOAD command')
    end
    if not valid_name(name) then
        raise('Library names can only contain letters, numbers, or underscores(_) and must be at least one character long')
    end
    for _, f in raw_ipairs(loading) do
        if f.name == name then
            raise('Function already exists in the library')
        end
    end
    loading[#loading + 1] = { name = name, callback = cb, flags = flags or 0, description = desc }
end

if mode == 'function' then
    local lredis = { register_function = api(register_function) }
    add_common(lredis)
    -- The load-time globals hold the `redis` table only.
    LG.redis = ro_strict(lredis)
end

-- ---------------------------------------------------------------------
-- Entry points used by the engine.
local K = {}

-- Compiles user code in the sandbox: the function, or nil and the error.
function K.compile(code, chunkname)
    if sbyte(code, 1) == 27 then
        return nil, 'bytecode is not supported'
    end
    local f, e = raw_loadstring(code, chunkname)
    if not f then
        return nil, e
    end
    setfenv(f, E)
    return f
end

local function finish(ok, v)
    sethook()
    return ok, v, resp
end

-- Runs an EVAL script: ok, value-or-error-table, resp.
function K.run_eval(f, keys, argv)
    resp = 2
    G.KEYS = keys
    G.ARGV = argv
    sethook(tick, '', TICK_COUNT)
    return finish(raw_xpcall(f, handler))
end

-- The function a run_func call runs, and its arguments (set for the
-- duration of the run, so no closure is made per call).
local cur_f, cur_keys, cur_argv
local function run_cur()
    local f, keys, argv = cur_f, cur_keys, cur_argv
    cur_f, cur_keys, cur_argv = nil, nil, nil
    return f(keys, argv)
end

-- Runs a function: ok, value-or-error-table, resp.
function K.run_func(f, keys, argv)
    resp = 2
    cur_f, cur_keys, cur_argv = f, keys, argv
    sethook(tick, '', TICK_COUNT)
    return finish(raw_xpcall(run_cur, handler))
end

-- Runs a library body with the load-time API: true and the list of
-- registered functions, or false and the error table.
function K.load_library(f)
    loading = {}
    emeta.__index = LG
    sethook(tick, '', TICK_COUNT)
    local ok, e = raw_xpcall(f, handler)
    sethook()
    emeta.__index = G
    local list = loading
    loading = nil
    if not ok then
        return false, e
    end
    return true, list
end

return K
