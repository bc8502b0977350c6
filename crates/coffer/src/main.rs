//! The `coffer` binary: `coffer server …` runs the server; every other command is the
//! Vault/OpenBao-compatible client.
#![forbid(unsafe_code)]

mod seals;
mod server;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("server") => server::main(&args[1..]),
        _ => coffer_cli::run(&args),
    };
    std::process::exit(code);
}
