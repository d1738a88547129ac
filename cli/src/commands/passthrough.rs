//! Every command the CLI does not own: run by the real convox CLI against the
//! gateway's rack proxy, with convox's exit code passed back. A command whose
//! permission needs MFA gets its step-up first ([`crate::mfa::flow`]); a code
//! travels in `RACK_URL`'s password as `<token>.totp.<code>`.

use std::ffi::OsString;
use std::time::Duration;

use super::{refused, Context};
use crate::api::GatewayClient;
use crate::convox;
use crate::racks::{Credential, Selection};

/// How long the after-failure credential check may take before it is skipped.
const DIAGNOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(ctx: &Context, args: Vec<OsString>) -> anyhow::Result<i32> {
    let config = ctx.config()?;
    let selection = ctx.select(&config)?;
    // An unusable stored session stops here, before convox or the gateway hears of it.
    let credential = ctx.credential(&selection)?;
    let bin = convox::find_convox(&ctx.env)?;
    let code = if credential.is_api_token() {
        None
    } else {
        match crate::mfa::levels::for_command(&args) {
            Some(need) => {
                let client = GatewayClient::new(&selection.url, Some(&credential.secret))?;
                ctx.mfa_before(&selection, &credential, &client, need.level, need.strictest)
                    .await?
            }
            // A command the CLI does not know: a code given is sent as it is.
            None => ctx
                .globals
                .mfa_code
                .as_deref()
                .map(crate::mfa::prompt::normalise_code)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--mfa-code: {e}"))?,
        }
    };
    let password = match &code {
        Some(code) => convox::token_with_code(&credential.secret, code),
        None => credential.secret.clone(),
    };
    let rack_url = convox::rack_url(&selection.url, &password)?;
    let code = convox::run(&bin, &args, &rack_url).await?;
    if code != 0 {
        if let Some(hint) = refused_credential(&selection, &credential).await {
            eprintln!("Error: {hint:#}");
        }
    }
    Ok(code)
}

/// convox reports a 401 in its own words; when it failed, ask the gateway
/// whether the credential itself is refused, and if so say what to do about it.
async fn refused_credential(
    selection: &Selection,
    credential: &Credential,
) -> Option<anyhow::Error> {
    let client = GatewayClient::new(&selection.url, Some(&credential.secret)).ok()?;
    match tokio::time::timeout(DIAGNOSE_TIMEOUT, client.info()).await {
        Ok(Err(error)) if error.is_unauthorized() => Some(refused(error, selection, credential)),
        _ => None,
    }
}
