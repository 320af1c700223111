//! The journal: an optional file that lets an app killed mid-run get, when
//! started again, the one terminal event of every prompt it had in flight.
//!
//! JSON Lines, append-only:
//!
//! ```text
//! {"client_id":"7f0c…"}     the client id prompts are submitted under
//! {"submit":"a1b2…"}        written and synced before the POST leaves
//! {"done":"a1b2…"}          written once the driver has handed the
//!                           prompt's terminal event to the fan-out
//! ```
//!
//! A prompt is *unfinished* while it has a `submit` and no `done`. Opening
//! a journal reads it, rewrites it with only the unfinished prompts
//! (written to a sibling file, synced, renamed over it: it never grows
//! past the prompts in flight), and hands those back for the client to
//! attach. Only the `submit` line is synced on its own: a `done` lost to a
//! power cut makes the prompt's terminal event come once more after the
//! restart, never go missing; the file is synced again at close.
//!
//! One client per journal: a sibling `<file>.lock` is held with an
//! exclusive advisory lock (`flock` on Unix, an unshared handle on
//! Windows) for the client's life. The operating system drops it when the
//! process dies, so a crash never leaves the journal locked.
//!
//! A torn last line (no newline: the process died inside the write) is
//! ignored; any other line that is not one of the three forms is a
//! [`Error::Config`] naming the file and line, and an unreadable file is
//! an [`Error::Io`]. Neither ever panics.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One line of the journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    submit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    done: Option<String>,
}

impl Line {
    fn text(self) -> String {
        // A struct of strings always serialises.
        serde_json::to_string(&self).unwrap_or_default() + "\n"
    }
}

/// What an opened journal says about the last run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// The client id the last run used.
    pub(crate) client_id: Option<String>,
    /// Prompts submitted and not finished, in submission order.
    pub(crate) unfinished: Vec<String>,
}

struct Open {
    file: File,
    /// Held for the client's life; dropping it releases the lock.
    _lock: File,
    /// Prompts with a `submit` and no `done` yet.
    ids: HashSet<String>,
}

/// An open journal, locked for this client.
pub(crate) struct Journal {
    path: PathBuf,
    open: Mutex<Option<Open>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("journal {}: {e}", path.display()))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Takes the exclusive lock of the journal at `path`.
fn lock(path: &Path) -> Result<File, Error> {
    let lock_path = sibling(path, ".lock");
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        options.share_mode(0);
    }
    let in_use = || {
        Error::Config(format!(
            "journal {} is in use by another client (two clients cannot share a journal)",
            path.display()
        ))
    };
    let file = match options.open(&lock_path) {
        Ok(file) => file,
        #[cfg(windows)]
        Err(e) if e.raw_os_error() == Some(32) => return Err(in_use()),
        Err(e) => return Err(io(&lock_path, e)),
    };
    #[cfg(unix)]
    {
        use rustix::fs::{FlockOperation, flock};
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(in_use()),
            Err(e) => return Err(io(&lock_path, e.into())),
        }
    }
    #[cfg(not(any(unix, windows)))]
    let _ = in_use;
    Ok(file)
}

/// Reads a journal's text: the last client id and the unfinished prompts.
fn parse(path: &Path, text: &str) -> Result<Recovered, Error> {
    let mut recovered = Recovered::default();
    let mut open: HashSet<String> = HashSet::new();
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    for (n, raw) in text[..complete].lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let bad = |why: String| {
            Error::Config(format!(
                "journal {} line {}: {why} (expected {{\"client_id\"|\"submit\"|\"done\": \"…\"}})",
                path.display(),
                n + 1
            ))
        };
        let line: Line = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
        match line {
            Line {
                client_id: Some(id),
                submit: None,
                done: None,
            } => recovered.client_id = Some(id),
            Line {
                client_id: None,
                submit: Some(id),
                done: None,
            } if !id.is_empty() => {
                if open.insert(id.clone()) {
                    recovered.unfinished.push(id);
                }
            }
            Line {
                client_id: None,
                submit: None,
                done: Some(id),
            } => {
                if open.remove(&id) {
                    recovered.unfinished.retain(|u| *u != id);
                }
            }
            _ => return Err(bad("not one of the three line forms".into())),
        }
    }
    Ok(recovered)
}

impl Journal {
    /// Opens (or creates) the journal at `path` for a client whose id is
    /// `client_id` when given (else the journal's own, else `fresh`), and
    /// compacts it. Returns the journal, the client id to use and the
    /// unfinished prompts of the last run.
    pub(crate) fn open(
        path: &Path,
        client_id: Option<String>,
        fresh: impl FnOnce() -> String,
    ) -> Result<(Journal, String, Vec<String>), Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let lock = lock(path)?;
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
                Error::Config(format!("journal {} is not UTF-8 text", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(path, e)),
        };
        let recovered = parse(path, &text)?;
        let client_id = client_id.or(recovered.client_id).unwrap_or_else(fresh);
        // Compact: the header and the unfinished prompts, synced, then
        // renamed over the journal.
        let mut compact = Line {
            client_id: Some(client_id.clone()),
            submit: None,
            done: None,
        }
        .text();
        for id in &recovered.unfinished {
            compact.push_str(
                &Line {
                    client_id: None,
                    submit: Some(id.clone()),
                    done: None,
                }
                .text(),
            );
        }
        let tmp = sibling(path, ".tmp");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(compact.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            #[cfg(unix)]
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| io(path, e))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| io(path, e))?;
        let journal = Journal {
            path: path.to_owned(),
            open: Mutex::new(Some(Open {
                file,
                _lock: lock,
                ids: recovered.unfinished.iter().cloned().collect(),
            })),
        };
        Ok((journal, client_id, recovered.unfinished))
    }

    fn append(&self, line: Line, sync: bool) -> Result<(), Error> {
        let mut open = self.open.lock();
        let Some(open) = open.as_mut() else {
            return Err(Error::Closed);
        };
        open.file
            .write_all(line.text().as_bytes())
            .and_then(|()| if sync { open.file.sync_data() } else { Ok(()) })
            .map_err(|e| io(&self.path, e))
    }

    /// Records a prompt about to be sent (or attached), synced before it
    /// returns. Nothing is written for one already open.
    pub(crate) fn submit(&self, prompt_id: &str) -> Result<(), Error> {
        {
            let mut open = self.open.lock();
            let Some(open) = open.as_mut() else {
                return Err(Error::Closed);
            };
            if !open.ids.insert(prompt_id.to_owned()) {
                return Ok(());
            }
        }
        let written = self.append(
            Line {
                client_id: None,
                submit: Some(prompt_id.to_owned()),
                done: None,
            },
            true,
        );
        if written.is_err() {
            if let Some(open) = self.open.lock().as_mut() {
                open.ids.remove(prompt_id);
            }
        }
        written
    }

    /// Records that a prompt's terminal event was delivered (or that the
    /// server certainly never got it). Not synced; nothing is written for
    /// a prompt the journal does not hold. A write failure is logged: the
    /// prompt is then only attached once more after a restart.
    pub(crate) fn done(&self, prompt_id: &str) {
        let held = self
            .open
            .lock()
            .as_mut()
            .is_some_and(|open| open.ids.remove(prompt_id));
        if !held {
            return;
        }
        let line = Line {
            client_id: None,
            submit: None,
            done: Some(prompt_id.to_owned()),
        };
        if let Err(error) = self.append(line, false) {
            tracing::warn!(target: "comfywire::journal", %prompt_id, %error, "cannot mark done");
        }
    }

    /// Records a new client id (the server chose another one).
    pub(crate) fn client_id(&self, client_id: &str) {
        let line = Line {
            client_id: Some(client_id.to_owned()),
            submit: None,
            done: None,
        };
        if let Err(error) = self.append(line, true) {
            tracing::warn!(target: "comfywire::journal", %error, "cannot record the client id");
        }
    }

    /// True while the prompt is recorded as unfinished.
    #[cfg(test)]
    fn holds(&self, prompt_id: &str) -> bool {
        self.open
            .lock()
            .as_ref()
            .is_some_and(|o| o.ids.contains(prompt_id))
    }

    /// Syncs and closes the file and releases the lock. Idempotent; later
    /// writes fail with [`Error::Closed`].
    pub(crate) fn close(&self) {
        if let Some(open) = self.open.lock().take() {
            if let Err(e) = open.file.sync_all() {
                tracing::warn!(target: "comfywire::journal", error = %e, "cannot sync at close");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("comfywire-journal-{}", crate::new_uuid()));
        dir.join(name)
    }

    fn fresh() -> String {
        "fresh".into()
    }

    #[test]
    fn unfinished_prompts_survive_and_the_file_is_compacted() {
        let path = temp("j.jsonl");
        {
            let (j, id, unfinished) = Journal::open(&path, None, fresh).unwrap();
            assert_eq!((id.as_str(), unfinished.len()), ("fresh", 0));
            for p in ["a", "b", "c"] {
                j.submit(p).unwrap();
            }
            j.submit("a").unwrap(); // once only
            j.done("b");
            j.done("zzz"); // never submitted: nothing written
            assert!(j.holds("a") && !j.holds("b"));
            // Dropped without close, as a crash would.
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5, "{text}");
        let (j, id, unfinished) = Journal::open(&path, None, fresh).unwrap();
        assert_eq!(id, "fresh");
        assert_eq!(unfinished, ["a", "c"]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"client_id\":\"fresh\"}\n{\"submit\":\"a\"}\n{\"submit\":\"c\"}\n"
        );
        j.close();
        // An explicit client id wins over the journal's.
        let (_j, id, _) = Journal::open(&path, Some("mine".into()), fresh).unwrap();
        assert_eq!(id, "mine");
    }

    #[test]
    fn two_clients_cannot_share_a_journal() {
        let path = temp("j.jsonl");
        let (first, _, _) = Journal::open(&path, None, fresh).unwrap();
        match Journal::open(&path, None, fresh) {
            Err(Error::Config(m)) => assert!(m.contains("in use"), "{m}"),
            other => panic!("expected a Config error, got {other:?}"),
        }
        first.close();
        Journal::open(&path, None, fresh).unwrap();
    }

    #[test]
    fn a_corrupt_journal_is_a_config_error_and_a_torn_last_line_is_ignored() {
        let path = temp("j.jsonl");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"client_id\":\"c\"}\n{\"submit\":\"a\"}\n{\"sub").unwrap();
        let (j, id, unfinished) = Journal::open(&path, None, fresh).unwrap();
        assert_eq!((id.as_str(), unfinished), ("c", vec!["a".to_owned()]));
        j.close();
        for bad in [
            "not json\n",
            "{\"submit\":\"a\",\"done\":\"a\"}\n",
            "{\"other\":1}\n",
            "{\"submit\":\"\"}\n",
            "[]\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            match Journal::open(&path, None, fresh) {
                Err(Error::Config(m)) => assert!(m.contains("line 1"), "{bad}: {m}"),
                other => panic!("{bad}: expected a Config error, got {other:?}"),
            }
        }
        std::fs::write(&path, [0xff, 0xfe, b'\n']).unwrap();
        assert!(matches!(
            Journal::open(&path, None, fresh),
            Err(Error::Config(_))
        ));
        // A journal that is a folder cannot be read.
        let dir = temp("folder");
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(
            Journal::open(&dir, None, fresh),
            Err(Error::Io(_))
        ));
    }
}
