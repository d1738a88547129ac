//! `mock-yubico`: the validation server of [`tools::mock_yubico`] as a process, or
//! (`mock-yubico mint …`) an OTP typed by one of its keys.
//!
//! Serving prints the API URL (`YUBICO_API_URL`) as the first line of stdout and stops
//! on Ctrl-C or SIGTERM.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use clap::{Parser, Subcommand};
use tools::mock_yubico::{MockYubico, TestKey};

#[derive(Debug, Parser)]
#[command(
    name = "mock-yubico",
    version,
    about = "A Yubico OTP validation server (protocol 2.0) for dev and tests"
)]
struct Args {
    /// Port to listen on; 0 picks a free one (the first stdout line tells which).
    #[arg(long, default_value_t = 3346)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// The client id (`YUBICO_CLIENT_ID`).
    #[arg(long, default_value = "1")]
    client_id: String,
    /// The client's API secret, base64 (`YUBICO_SECRET_KEY`).
    #[arg(
        long,
        env = "MOCK_YUBICO_SECRET",
        default_value = "ZGV2LXl1Ymljby1zZWNyZXQ=",
        hide_env_values = true
    )]
    secret: String,
    /// A key: PUBLICID:AESKEYHEX:PRIVATEIDHEX (repeatable). Without any, dev keys 0 and 1.
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Honour `mock_bad_signature=1` (an answer signed with the wrong key).
    #[arg(long)]
    test_controls: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print an OTP of dev key N (0–15), as pressing that key would type it; COUNT of them.
    Mint {
        #[arg(default_value_t = 0)]
        key: u8,
        /// How many, each with a higher counter.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let keys = if args.keys.is_empty() {
        vec![TestKey::dev(0), TestKey::dev(1)]
    } else {
        args.keys
            .iter()
            .map(|k| TestKey::parse(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?
    };
    if let Some(Command::Mint { key, count }) = args.command {
        let dev = TestKey::dev(key);
        let server = MockYubico::bind(
            "127.0.0.1:0".parse()?,
            &args.client_id,
            &args.secret,
            vec![dev.clone()],
        )
        .await?;
        for _ in 0..count {
            println!("{}", server.mint(&dev.public_id)?);
        }
        return Ok(());
    }
    let mut server = MockYubico::bind(
        SocketAddr::new(args.host, args.port),
        &args.client_id,
        &args.secret,
        keys,
    )
    .await?;
    if args.test_controls {
        server = server.with_test_controls();
    }
    println!("{}", server.url());
    server
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
