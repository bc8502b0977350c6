//! `coffer plugin init -config=FILE [-directory=DIR]`: downloads and checks the plugins the
//! configuration declares, as `bao plugin init` does, without starting a server (for
//! `plugin_auto_download = false`, OpenBao's default). Registering stays with the server
//! (`plugin_auto_register`) or `bao plugin register`.

use clap::Parser;
use coffer_config::ServerConfig;

#[derive(Parser, Debug)]
#[command(name = "coffer plugin init", about = "Download and check the plugins declared in the server configuration")]
struct Args {
    /// Configuration file or directory (HCL or JSON); may be repeated.
    #[arg(long = "config", required = true)]
    config: Vec<String>,
    /// Plugin directory (default: plugin_directory from the configuration).
    #[arg(long = "directory")]
    directory: Option<String>,
}

pub fn main(raw: &[String]) -> i32 {
    let mut argv = vec!["coffer plugin init".to_string()];
    argv.extend(crate::server::normalize_flags(raw));
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let cfg = match ServerConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error loading configuration: {e}");
            return 1;
        }
    };
    match coffer::declared_plugins::init(&cfg, args.directory.as_deref()) {
        Ok(lines) => {
            for l in lines {
                println!("Success! {l}");
            }
            0
        }
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}
