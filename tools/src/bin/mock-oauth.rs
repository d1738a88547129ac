//! `mock-oauth`: the OpenID Connect provider of [`tools::mock_oauth`] as a process.
//!
//! Prints the URL it serves on as the first line of stdout (scripts read it, so with
//! `--port 0` they learn the port), logs to stderr, and stops on Ctrl-C or SIGTERM.

use std::io::{IsTerminal as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context as _;
use clap::Parser;
use tools::mock_oauth::{
    MockOAuth, MockOAuthConfig, DEFAULT_PORT, DEV_CLIENT_ID, DEV_CLIENT_SECRET,
};

/// A small OpenID Connect provider standing in for Google sign-in in dev and tests.
#[derive(Debug, Parser)]
#[command(name = "mock-oauth", version)]
struct Args {
    /// Port to listen on; 0 picks a free one (the first stdout line tells which).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,

    /// Address to listen on. Loopback by default: the provider signs anyone in as anyone.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,

    /// Issuer URL for discovery and tokens [default: http://127.0.0.1:<port>].
    #[arg(long)]
    issuer: Option<String>,

    /// OAuth client id the relying party uses.
    #[arg(long, default_value = DEV_CLIENT_ID)]
    client_id: String,

    /// OAuth client secret the relying party uses.
    #[arg(long, default_value = DEV_CLIENT_SECRET)]
    client_secret: String,

    /// Allowed redirect URI (repeatable, exact match). Without any, every
    /// http://localhost… / http://127.0.0.1… URI is allowed.
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,

    /// Honour `mock_tamper=…` on the authorize URL, to issue deliberately defective ID tokens.
    #[arg(long)]
    test_controls: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal; scripts capture stderr into files.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let args = Args::parse();
    let test_controls = args.test_controls;
    // The id is public; the secret is never logged.
    let client_id = args.client_id.clone();
    let config = MockOAuthConfig {
        issuer: args.issuer,
        client_id: args.client_id,
        client_secret: args.client_secret,
        redirect_uris: args.redirect_uris,
        test_controls: args.test_controls,
        ..MockOAuthConfig::default()
    };
    let addr = SocketAddr::new(args.host, args.port);
    let provider = MockOAuth::bind(addr, config)
        .await
        .with_context(|| format!("start mock-oauth on {addr}"))?;

    // The first stdout line is a contract: scripts wait for it and take the URL from it.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", provider.url()).context("write URL to stdout")?;
    stdout.flush().context("flush stdout")?;
    drop(stdout);

    tracing::info!(
        url = %provider.url(),
        issuer = %provider.issuer(),
        client_id = %client_id,
        test_controls,
        "mock-oauth serving"
    );
    provider.run(shutdown_signal()).await?;
    tracing::info!("mock-oauth stopped");
    Ok(())
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what scripts and process supervisors send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
