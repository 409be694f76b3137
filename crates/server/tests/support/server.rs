//! Starting and stopping server processes for integration tests.
//!
//! Every server gets its own free loopback port and its own temporary
//! directory (used as `--dir` and for its log), and is killed when the guard
//! is dropped, including while a test panics. Tests using these helpers can
//! run in parallel.

use std::fs::{self, File};
use std::io;
use std::net::TcpListener;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::resp::{Reply, RespConn};

/// How long a server may take to answer PING after being spawned.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Default read/write timeout of connections made by [`ServerProcess::connect`].
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a start is retried with a fresh port when the process
/// exits during startup (another process may have taken the port).
const START_ATTEMPTS: usize = 3;

/// Lines of the server log quoted in startup failure messages.
const LOG_TAIL_LINES: usize = 40;

/// A directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Create a fresh, uniquely named directory `<tmp>/<prefix>-<pid>-<n>-<nanos>`.
    pub fn new(prefix: &str) -> io::Result<TempDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A loopback port that was free a moment ago (found by binding port 0).
/// Never 6379, so a developer's own Redis is never touched.
pub fn free_port() -> io::Result<u16> {
    loop {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        if port != 6379 {
            return Ok(port);
        }
    }
}

/// The flags every test server is started with, redis-server style.
pub fn standard_flags(port: u16, dir: &Path) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--enable-debug-command",
        "yes",
        "--dir",
        &dir.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A running server process: killed (and its temp dir removed) on drop.
pub struct ServerProcess {
    name: String,
    child: Child,
    port: u16,
    log_path: PathBuf,
    dir: TempDir,
}

impl ServerProcess {
    /// Spawn `program` with the standard flags plus `extra`, on a free port,
    /// and wait until it answers PING. `name` labels messages and the temp dir.
    pub fn start(name: &str, program: &Path, extra: &[&str]) -> Result<ServerProcess, String> {
        let mut last_err = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(name, program, extra) {
                Ok(server) => return Ok(server),
                Err((retry, err)) => {
                    last_err = err;
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_err)
    }

    /// One start attempt; on error says whether a retry on another port makes sense.
    fn start_once(
        name: &str,
        program: &Path,
        extra: &[&str],
    ) -> Result<ServerProcess, (bool, String)> {
        let fail = |retry: bool, msg: String| (retry, msg);
        let dir = TempDir::new(&format!("kvik-test-{name}"))
            .map_err(|e| fail(false, format!("{name}: cannot create temp dir: {e}")))?;
        let port = free_port().map_err(|e| fail(false, format!("{name}: no free port: {e}")))?;
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path)
            .map_err(|e| fail(false, format!("{name}: cannot create log file: {e}")))?;
        let log_err = log
            .try_clone()
            .map_err(|e| fail(false, format!("{name}: cannot clone log file: {e}")))?;
        let mut args = standard_flags(port, dir.path());
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(program)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| {
                fail(
                    false,
                    format!("{name}: cannot spawn {}: {e}", program.display()),
                )
            })?;
        let mut server = ServerProcess {
            name: name.to_string(),
            child,
            port,
            log_path,
            dir,
        };
        match server.wait_ready() {
            Ok(()) => Ok(server),
            Err((retry, msg)) => Err((
                retry,
                format!(
                    "{name} ({} {}) did not start: {msg}\n--- last lines of {} ---\n{}",
                    program.display(),
                    args.iter()
                        .map(|a| if a.is_empty() {
                            "\"\"".to_string()
                        } else {
                            a.clone()
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                    server.log_path.display(),
                    server.log_tail(LOG_TAIL_LINES)
                ),
            )),
        }
    }

    /// Poll until the server answers PING with +PONG, it exits, or the
    /// startup timeout passes.
    fn wait_ready(&mut self) -> Result<(), (bool, String)> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.exit_status() {
                return Err((true, format!("process exited during startup ({status})")));
            }
            if let Ok(mut conn) = RespConn::connect(self.port, Duration::from_secs(1)) {
                let answered = match conn.call(&["PING"]) {
                    Ok(Reply::Simple(s)) => s == b"PONG",
                    // A server with requirepass is up when it asks for AUTH.
                    Ok(Reply::Error(e)) => e.starts_with(b"NOAUTH"),
                    _ => false,
                };
                {
                    if answered {
                        // Make sure the PONG came from our process and not
                        // from someone else holding the port we failed to bind.
                        thread::sleep(Duration::from_millis(30));
                        if let Some(status) = self.exit_status() {
                            return Err((
                                true,
                                format!("process exited during startup ({status})"),
                            ));
                        }
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err((
                    false,
                    format!("no PONG on port {} within {:?}", self.port, STARTUP_TIMEOUT),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot query process: {e}")),
        }
    }

    /// The label given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory (`--dir`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The file capturing the server's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The whole log so far (lossy UTF-8).
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("<cannot read log: {e}>"))
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Whether the process is still running; `Err` carries its exit status.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.exit_status() {
            None => Ok(()),
            Some(status) => Err(format!("{} exited: {status}", self.name)),
        }
    }

    /// A new connection with the default I/O timeout.
    pub fn connect(&self) -> io::Result<RespConn> {
        RespConn::connect(self.port, IO_TIMEOUT)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// kvik started from the binary Cargo built for this test run.
pub struct KvikServer(ServerProcess);

impl KvikServer {
    /// Path of the kvik-server binary under test.
    pub fn binary() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_kvik-server"))
    }

    /// Start kvik with the standard flags plus `extra`; panics (with the
    /// server log) if it does not answer PING in time.
    pub fn start(extra: &[&str]) -> KvikServer {
        Self::try_start(extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`KvikServer::start`] but returns the failure.
    pub fn try_start(extra: &[&str]) -> Result<KvikServer, String> {
        ServerProcess::start("kvik", &Self::binary(), extra).map(KvikServer)
    }
}

impl Deref for KvikServer {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.0
    }
}

impl std::ops::DerefMut for KvikServer {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.0
    }
}

/// The real redis-server, used as the oracle.
pub struct RedisServer(ServerProcess);

impl RedisServer {
    /// Locate redis-server: `$KVIK_REDIS_SERVER` if set, else `PATH`.
    pub fn binary() -> Result<PathBuf, String> {
        if let Some(path) = std::env::var_os("KVIK_REDIS_SERVER") {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!(
                    "KVIK_REDIS_SERVER={} does not name a file",
                    path.display()
                ))
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join("redis-server"))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                "redis-server not found: install it (e.g. `apt-get install redis-server`) \
                 or point KVIK_REDIS_SERVER at the binary"
                    .to_string()
            })
    }

    /// Start redis-server with the standard flags plus `extra`; panics if it
    /// is missing or does not answer PING in time.
    pub fn start(extra: &[&str]) -> RedisServer {
        Self::try_start(extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`RedisServer::start`] but returns the failure.
    pub fn try_start(extra: &[&str]) -> Result<RedisServer, String> {
        let binary = Self::binary()?;
        ServerProcess::start("redis", &binary, extra).map(RedisServer)
    }
}

impl Deref for RedisServer {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.0
    }
}

impl std::ops::DerefMut for RedisServer {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.0
    }
}
