//! `kvik-server [config-file] [--name value ...]`: starts the server with
//! redis-server's command-line conventions.

use kvik_server::config::Config;
use kvik_server::server::{KVIK_VERSION, REDIS_VERSION};

#[global_allocator]
static ALLOC: kvik_server::alloc::CountingAlloc = kvik_server::alloc::CountingAlloc;

fn usage() {
    eprintln!(
        "Usage: ./kvik-server [/path/to/redis.conf] [options] [-]\n       ./kvik-server - (read config from stdin)\n       ./kvik-server -v or --version\n       ./kvik-server -h or --help\n\nExamples:\n       ./kvik-server (run the server with default conf)\n       ./kvik-server /etc/redis/6379.conf\n       ./kvik-server --port 7777\n       ./kvik-server /etc/myredis.conf --loglevel verbose"
    );
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(|s| s.as_str()) {
        Some("-v") | Some("--version") => {
            println!(
                "kvik server v={REDIS_VERSION} sha=00000000:0 malloc=libc bits=64 build=0 kvik_version={KVIK_VERSION}"
            );
            return;
        }
        Some("-h") | Some("--help") => {
            usage();
            return;
        }
        _ => {}
    }
    // `-` as the first argument: read the configuration from stdin.
    if args.first().map(|s| s.as_str()) == Some("-") {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text);
        let path = std::env::temp_dir().join(format!("kvik-stdin-{}.conf", std::process::id()));
        if std::fs::write(&path, text).is_ok() {
            args[0] = path.display().to_string();
        }
    }
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if config.get_bool("daemonize") {
        daemonize();
    }
    if let Err(e) = kvik_server::logging::init(config.get("loglevel"), config.get("logfile")) {
        eprintln!("Can't open the log file: {e}");
        std::process::exit(1);
    }
    let pidfile = config.get("pidfile").to_string();
    let pidfile = if pidfile.is_empty() && config.get_bool("daemonize") {
        "/var/run/redis.pid".to_string()
    } else {
        pidfile
    };
    if !pidfile.is_empty() {
        let _ = std::fs::write(&pidfile, format!("{}\n", std::process::id()));
    }
    let threads = match config.get_i64("worker-threads") {
        n if n > 0 => n as usize,
        _ => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("kvik-worker")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Failed to start the event loop: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(kvik_server::run(config, threads));
    if !pidfile.is_empty() {
        let _ = std::fs::remove_file(&pidfile);
    }
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}

/// Detaches like redis-server's `daemonize yes`: fork, new session, stdio
/// to /dev/null.
fn daemonize() {
    // SAFETY: called before any thread is started, so fork() duplicates a
    // single-threaded process; the parent exits immediately.
    unsafe {
        match libc::fork() {
            -1 => {
                eprintln!("fork failed");
                std::process::exit(1);
            }
            0 => {}
            _ => libc::_exit(0),
        }
        libc::setsid();
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if devnull >= 0 {
            libc::dup2(devnull, 0);
            libc::dup2(devnull, 1);
            libc::dup2(devnull, 2);
            if devnull > 2 {
                libc::close(devnull);
            }
        }
    }
}
