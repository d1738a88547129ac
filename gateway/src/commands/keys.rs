//! `keygen`: a new Ed25519 checkpoint key.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Private key to `out` (mode 0600, never overwritten), verifier key on stdout.
pub fn keygen(name: &str, out: &Path) -> anyhow::Result<()> {
    let (skey, vkey) =
        events::note::generate_key(name).map_err(|e| anyhow::anyhow!("key name {name:?}: {e}"))?;
    write_private_key(out, &skey)?;
    println!("{vkey}");
    eprintln!(
        "wrote the private key to {} (mode 0600); publish the verifier key above to auditors",
        out.display()
    );
    Ok(())
}

pub fn write_private_key(path: &Path, skey: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("{} (refusing to overwrite an existing key)", path.display()))?;
    file.write_all(format!("{skey}\n").as_bytes())?;
    file.sync_all()?;
    Ok(())
}
