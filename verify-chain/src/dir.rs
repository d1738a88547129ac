//! `--dir PATH`: an export directory (or any directory in the archive
//! layout), found at any level of an extracted bundle, read as files.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncReadExt as _;

use crate::archive::{LineReader, Object, ObjectLock, Store, MAX_LINE};
use crate::RunError;

/// The export directory under `path` (which may be the bundle root, the
/// prefix directory or the chain directory itself): a store rooted at `path`
/// and the prefix of the chain directory (or of the directory holding it).
pub async fn open_dir(
    path: &std::path::Path,
    chain: Option<&str>,
) -> Result<(DirStore, String), RunError> {
    if !path.is_dir() {
        return Err(RunError::new(format!(
            "--dir {}: not a directory (extract a .tar.gz bundle first)",
            path.display()
        )));
    }
    // Chain directories: those holding segments/ or checkpoints/, at most three levels down.
    let mut found = Vec::new();
    let mut pending = vec![(path.to_path_buf(), String::new(), 0)];
    while let Some((dir, relative, depth)) = pending.pop() {
        if dir.join("segments").is_dir() || dir.join("checkpoints").is_dir() {
            found.push(relative);
            continue;
        }
        if depth == 3 {
            continue;
        }
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| RunError::new(format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let name = entry.file_name().to_string_lossy().into_owned();
                pending.push((entry.path(), format!("{relative}{name}/"), depth + 1));
            }
        }
    }
    if let Some(chain) = chain {
        found.retain(|relative| relative.trim_end_matches('/').rsplit('/').next() == Some(chain));
    }
    found.sort();
    let prefix = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(RunError::new(format!(
                "--dir {}: no chain directory (<chain>/segments/, <chain>/checkpoints/) found",
                path.display()
            )))
        }
        many => {
            return Err(RunError::new(format!(
                "--dir {}: several chains ({}); pass --chain",
                path.display(),
                many.join(", ")
            )))
        }
    };
    if prefix.is_empty() {
        // PATH is the chain directory itself: its name is the chain id.
        let path = path
            .canonicalize()
            .map_err(|e| RunError::new(format!("{}: {e}", path.display())))?;
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(RunError::new(format!(
                "--dir {}: no chain id",
                path.display()
            )));
        };
        return Ok((
            DirStore::new(parent),
            format!("{}/", name.to_string_lossy()),
        ));
    }
    Ok((DirStore::new(path), prefix))
}

/// An export directory (or any directory in the archive layout).
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: &Path) -> DirStore {
        DirStore {
            root: root.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

fn io_error(what: &str, e: std::io::Error) -> RunError {
    RunError::new(format!("{what}: {e}"))
}

fn file_lock(name: &str) -> ObjectLock {
    ObjectLock {
        key: name.to_owned(),
        lock_mode: None,
        retain_until: None,
        last_modified: None,
    }
}

#[async_trait]
impl Store for DirStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, RunError> {
        let path = self.path(dir);
        let mut names = Vec::new();
        let mut entries = match tokio::fs::read_dir(&path).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(io_error(&path.display().to_string(), e)),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| io_error(&path.display().to_string(), e))?
        {
            if entry
                .file_type()
                .await
                .map(|t| t.is_file())
                .unwrap_or(false)
            {
                names.push(format!("{dir}{}", entry.file_name().to_string_lossy()));
            }
        }
        names.sort();
        Ok(names)
    }

    async fn list_dirs(&self, dir: &str) -> Result<Vec<String>, RunError> {
        let path = self.path(dir);
        let mut names = Vec::new();
        let mut entries = tokio::fs::read_dir(&path)
            .await
            .map_err(|e| io_error(&path.display().to_string(), e))?;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| io_error(&path.display().to_string(), e))?
        {
            if entry.file_type().await.map(|t| t.is_dir()).unwrap_or(false) {
                names.push(format!("{dir}{}/", entry.file_name().to_string_lossy()));
            }
        }
        names.sort();
        Ok(names)
    }

    async fn read(&self, name: &str) -> Result<Option<Object>, RunError> {
        match tokio::fs::read(self.path(name)).await {
            Ok(bytes) => Ok(Some(Object {
                bytes,
                lock: file_lock(name),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(name, e)),
        }
    }

    async fn open_lines(&self, name: &str) -> Result<(Box<dyn LineReader>, ObjectLock), RunError> {
        let file = tokio::fs::File::open(self.path(name))
            .await
            .map_err(|e| io_error(name, e))?;
        Ok((
            Box::new(FileLines {
                reader: tokio::io::BufReader::with_capacity(1 << 20, file),
                name: name.to_owned(),
            }),
            file_lock(name),
        ))
    }

    fn has_locks(&self) -> bool {
        false
    }
}

struct FileLines {
    reader: tokio::io::BufReader<tokio::fs::File>,
    name: String,
}

#[async_trait]
impl LineReader for FileLines {
    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, RunError> {
        use tokio::io::AsyncBufReadExt;
        let mut line = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| io_error(&self.name, e))?;
        if read == 0 {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        Ok(Some(line))
    }
}
