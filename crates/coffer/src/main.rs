//! The `coffer` binary: `coffer server …` runs the server; every other command is the
//! Vault/OpenBao-compatible client.
#![forbid(unsafe_code)]

mod ha;
mod logging;
mod migrate;
mod plugin_init;
mod server;
mod verify;

/// mimalloc instead of glibc malloc: under sustained token creation glibc spent a quarter of
/// the CPU in `_int_malloc`/`malloc_consolidate` and stalled requests for 100+ ms at a time
/// (decision 0012).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("server") => server::main(&args[1..]),
        Some("plugin") if args.get(1).map(String::as_str) == Some("verify") => verify::main(&args[2..]),
        Some("plugin") if args.get(1).map(String::as_str) == Some("init") => plugin_init::main(&args[2..]),
        Some("operator") if args.get(1).map(String::as_str) == Some("migrate") => migrate::main(&args[2..]),
        _ => coffer_cli::run(&args, &coffer_builtins::registry().names()),
    };
    std::process::exit(code);
}
