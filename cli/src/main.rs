//! `rack-gateway`: see the library for everything it does.

fn main() -> std::process::ExitCode {
    cli::main_entry()
}
