//! verify-chain: prove a rack-gateway audit log was not altered, truncated or reordered.

use clap::Parser;
use tools::verify_chain::{self, Cli};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let as_json = cli.json;
    let outcome = verify_chain::run(cli).await;
    std::process::exit(verify_chain::report(outcome, as_json));
}
