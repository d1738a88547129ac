use clap::Parser;
use gateway::commands::{self, Cli};
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = Cli::parse();
    // JSON lines on stderr; stdout is kept for command output and the per-request audit line.
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_env("LOG_LEVEL")
                .or_else(|_| EnvFilter::try_new("info,sqlx=warn"))
                .unwrap_or_default(),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("Error: {error:#}");
            1
        }
    };
    std::process::exit(code);
}
