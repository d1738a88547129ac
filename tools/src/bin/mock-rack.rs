//! `mock-rack [--port 5443] [--password PW] [--record FILE] [--tls]`: an in-memory Convox v3
//! rack API for dev and tests. The first line of stdout is the URL it serves on; with `--tls`
//! the second line is the SHA-256 fingerprint (hex) of its self-signed certificate.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tools::mock_rack::{MockRack, MockRackConfig, DEFAULT_PASSWORD};

#[derive(Parser, Debug)]
#[command(
    name = "mock-rack",
    about = "In-memory stand-in for a Convox v3 rack API"
)]
struct Args {
    /// Port to listen on (0 picks a free one; the real port is printed).
    #[arg(long, default_value_t = 5443)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The rack password (HTTP Basic, any username). Empty turns auth off, as on a real rack.
    #[arg(long, env = "MOCK_RACK_PASSWORD", default_value = DEFAULT_PASSWORD, hide_env_values = true)]
    password: String,
    /// Append one JSON line per request received to FILE.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate generated at start.
    #[arg(long)]
    tls: bool,
    /// With --tls, also write the certificate (PEM) to FILE, for CA-file trust.
    #[arg(long, value_name = "FILE", requires = "tls")]
    tls_cert_out: Option<PathBuf>,
    /// The version GET /system reports.
    #[arg(long, default_value = tools::mock_rack::DEFAULT_VERSION)]
    version: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let args = Args::parse();
    let config = MockRackConfig {
        password: args.password,
        record: args.record,
        tls: args.tls,
        version: args.version,
        ..MockRackConfig::default()
    };
    let rack = MockRack::bind(SocketAddr::new(args.host, args.port), config).await?;

    if let (Some(path), Some(pem)) = (&args.tls_cert_out, rack.tls_cert_pem()) {
        std::fs::write(path, pem)
            .with_context(|| format!("writing the certificate to {}", path.display()))?;
    }

    // Scripts read the first line to learn the port; flush so they never wait on a buffer.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", rack.url())?;
    if let Some(fingerprint) = rack.tls_fingerprint_sha256() {
        writeln!(stdout, "{fingerprint}")?;
    }
    stdout.flush()?;
    drop(stdout);

    tracing::info!(
        url = %rack.url(),
        tls_sha256 = rack.tls_fingerprint_sha256().as_deref().unwrap_or("-"),
        "mock rack serving"
    );
    rack.run(shutdown_signal()).await?;
    tracing::info!("mock rack stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
