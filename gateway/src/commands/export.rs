//! `export --out PATH [--from-seq N] [--to-seq M]`: the auditor bundle
//! (see [`crate::archive::export`]) as a directory, or as a `.tar.gz` when
//! PATH ends in `.tar.gz` or `.tgz`. The export is recorded as `audit.exported`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use events::catalogue::EventPayload;
use events::Source;

use crate::archive::export::{self, DirSink, ExportError, ExportRange, TarGzSink};
use crate::audit::checkpoints::load_signer;
use crate::settings::{Env, Settings};
use crate::startup::{self, Core};

pub async fn export(
    out: PathBuf,
    from_seq: Option<u64>,
    to_seq: Option<u64>,
) -> anyhow::Result<i32> {
    let settings = Settings::from_env(&Env::load())?;
    let keys = match &settings.audit.checkpoint_signing_key_file {
        Some(path) => {
            let signer = load_signer(path).map_err(anyhow::Error::msg)?;
            vec![(signer.name().to_owned(), signer.verifier().to_vkey())]
        }
        None => {
            eprintln!(
                "note: CHECKPOINT_SIGNING_KEY_FILE is not set: the bundle carries only the verifier keys \
                 the chain published (gateway.started); auditors should pass their own --key to verify-chain"
            );
            Vec::new()
        }
    };
    let tarball = is_tarball(&out);
    if tarball && out.exists() {
        anyhow::bail!("{} exists; choose a new file name", out.display());
    }
    let core = Core::open(&settings, format!("cli-{}", uuid::Uuid::new_v4())).await?;
    let result = run(
        &core,
        &settings,
        &keys,
        &out,
        tarball,
        ExportRange { from_seq, to_seq },
    )
    .await;
    core.close().await;
    result
}

fn is_tarball(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

async fn run(
    core: &Core,
    settings: &Settings,
    keys: &[(String, String)],
    out: &Path,
    tarball: bool,
    range: ExportRange,
) -> anyhow::Result<i32> {
    let chain = core.appender.chain().to_owned();
    let keys = export::bundle_keys(&core.pool, &chain, keys)
        .await
        .context("read the published verifier keys")?;
    let keys = &keys[..];
    let plan = match export::plan(&core.pool, &chain, range).await {
        Ok(plan) => plan,
        Err(ExportError::Invalid(message)) => anyhow::bail!(message),
        Err(e) => return Err(e).context("plan the export"),
    };
    if let Some(to) = range.to_seq.filter(|&to| to != plan.last_seq) {
        eprintln!(
            "exporting up to seq {}, the newest signed checkpoint at or below {to}",
            plan.last_seq
        );
    }
    if plan.first_seq() != plan.requested_from {
        eprintln!(
            "starting at seq {} (right after the signed checkpoint of size {}), before the {} asked for",
            plan.first_seq(),
            plan.start_size,
            plan.requested_from
        );
    }
    core.appender
        .append(
            plan.exported("cli", if tarball { "tar.gz" } else { "directory" })
                .draft(crate::audit::operator_actor())
                .with_source(Source {
                    ip: None,
                    user_agent: Some(format!("rack-gateway-server/{}", startup::VERSION)),
                    request_id: None,
                    instance: Some(core.instance.clone()),
                }),
        )
        .await
        .context("record audit.exported (nothing was exported)")?;

    let started = std::time::Instant::now();
    let prefix = &settings.archive.prefix;
    let summary = if tarball {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(out)
            .await
            .with_context(|| format!("create {}", out.display()))?;
        let top = out
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let top = top
            .strip_suffix(".tar.gz")
            .or_else(|| top.strip_suffix(".tgz"))
            .unwrap_or(&top)
            .to_owned();
        let mut sink = TarGzSink::new(file, &top, chrono::Utc::now());
        let summary = export::write_bundle(&core.pool, &plan, prefix, keys, &mut sink).await;
        match summary {
            Ok(summary) => {
                let mut file = sink.finish().await?;
                use tokio::io::AsyncWriteExt;
                file.flush().await?;
                file.sync_all().await?;
                summary
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(out).await;
                return Err(e).context("write the bundle");
            }
        }
    } else {
        let mut sink = DirSink::create(out)?;
        export::write_bundle(&core.pool, &plan, prefix, keys, &mut sink)
            .await
            .context("write the bundle")?
    };
    let elapsed = started.elapsed();
    println!(
        "exported events {}..{} of chain {} ({} segments, {} checkpoints, {} bytes) to {} in {:.1}s",
        summary.plan.first_seq(),
        summary.plan.last_seq,
        summary.plan.chain,
        summary.segments,
        summary.checkpoints,
        summary.bytes,
        out.display(),
        elapsed.as_secs_f64()
    );
    println!(
        "verify with: verify-chain --dir {}{} --key '<verifier key>'",
        if tarball { "<extracted directory>" } else { "" },
        if tarball {
            String::new()
        } else {
            out.display().to_string()
        }
    );
    Ok(0)
}
