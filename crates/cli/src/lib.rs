//! The coffer command-line client.
#![forbid(unsafe_code)]

pub fn run(_args: &[String]) -> i32 {
    eprintln!("not yet");
    1
}
