//! verify-chain: prove a rack-gateway audit log was not altered, truncated or reordered.

use clap::Parser;
use verify_chain::Cli;

#[tokio::main]
async fn main() {
    let mut cli = Cli::parse();
    if let Some(command) = cli.command.take() {
        std::process::exit(verify_chain::run_command(command).await);
    }
    let (as_json, list_objects) = (cli.json, cli.objects);
    let outcome = verify_chain::run(cli).await;
    std::process::exit(verify_chain::report(outcome, as_json, list_objects));
}
