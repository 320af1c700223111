//! Live progress of one prompt on stderr: a redrawn bar on a terminal,
//! plain lines when piped, JSON lines on stdout with `--json`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use crate::output::{self, NodeNames};
use crate::polling::ConnectionNotes;
use comfywire_client::{ConnectionStatus, Event};

const BAR_WIDTH: usize = 28;

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bar redrawn in place (stderr is a terminal).
    Bar,
    /// One line per milestone (stderr is piped).
    Plain,
    /// JSON lines on stdout, nothing on stderr but errors.
    Json,
}

impl Mode {
    /// `Json` when asked, else `Bar` on a terminal and `Plain` otherwise.
    pub fn detect(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Plain
        }
    }
}

/// The progress view of one prompt.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    names: NodeNames,
    prompt_id: String,
    started: Instant,
    node_started: HashMap<String, Instant>,
    current: Option<(String, f64, f64)>,
    overall: f64,
    eta: Option<std::time::Duration>,
    previews_dir: Option<PathBuf>,
    previews: usize,
    last_quarter: Option<(String, u64)>,
    done_nodes: usize,
    bar_shown: bool,
    connection: ConnectionNotes,
}

impl Progress {
    /// A view of `prompt_id`, naming nodes with `names`; previews are saved
    /// into `previews_dir` when given.
    pub fn new(
        mode: Mode,
        names: NodeNames,
        prompt_id: &str,
        previews_dir: Option<PathBuf>,
    ) -> Progress {
        Progress {
            mode,
            names,
            prompt_id: prompt_id.to_owned(),
            started: Instant::now(),
            node_started: HashMap::new(),
            current: None,
            overall: 0.0,
            eta: None,
            previews_dir,
            previews: 0,
            last_quarter: None,
            done_nodes: 0,
            bar_shown: false,
            connection: ConnectionNotes::default(),
        }
    }

    /// The connection as it was when the view started (polling already
    /// announced is not announced again).
    pub fn connection_from(&mut self, status: &ConnectionStatus) {
        self.connection = ConnectionNotes::from_status(status);
    }

    /// Previews seen so far.
    pub fn previews(&self) -> usize {
        self.previews
    }

    /// A line for people (above the bar on a terminal); nothing in JSON mode.
    pub fn note(&mut self, text: &str) {
        if self.mode == Mode::Json {
            return;
        }
        self.clear_bar();
        eprintln!("{text}");
        self.draw_bar();
    }

    /// Shows one event. Events of other prompts are ignored, except
    /// connection changes, which matter to every prompt.
    pub fn handle(&mut self, event: &Event) {
        let ours = event.prompt_id() == Some(self.prompt_id.as_str());
        if !ours && !matches!(event, Event::Connection(_)) {
            return;
        }
        let preview_file = match event {
            Event::Preview(p) => {
                self.previews += 1;
                self.save_preview(&p.mime, &p.image)
            }
            _ => None,
        };
        if self.mode == Mode::Json {
            output::emit(&output::event_json(
                event,
                &self.names,
                preview_file.as_deref(),
            ));
            return;
        }
        match event {
            // The first connect is not news; later changes are.
            Event::Connection(status) if status.last_error.is_some() => {
                if let Some(line) = self.connection.line(status) {
                    self.note(line.trim_start_matches("connection   "));
                }
            }
            Event::PromptQueued { number, .. } => {
                let n = number.map(|n| format!(" as #{n}")).unwrap_or_default();
                self.note(&format!("queued{n} (prompt {})", self.prompt_id));
            }
            Event::ExecutionStarted { .. } => {
                self.started = Instant::now();
                self.note("started");
            }
            Event::NodesCached { nodes, .. } if !nodes.is_empty() => {
                let list: Vec<String> = nodes.iter().map(|n| self.names.label(n)).collect();
                self.note(&format!("  cached     {}", list.join(", ")));
            }
            Event::NodeStarted {
                node, display_node, ..
            } => {
                let shown = display_node.as_deref().unwrap_or(node).to_owned();
                self.node_started.insert(node.to_string(), Instant::now());
                self.current = Some((shown.clone(), 0.0, 0.0));
                if self.mode == Mode::Plain {
                    eprintln!("  node       {}", self.names.label(&shown));
                }
                self.draw_bar();
            }
            Event::Progress(p) => {
                let shown = p.display_node.as_deref().unwrap_or(&p.node).to_owned();
                self.overall = p.overall;
                self.eta = p.eta;
                self.current = Some((shown.clone(), p.value, p.max));
                if self.mode == Mode::Plain && p.max > 0.0 {
                    // A line per quarter of the node's steps is enough in a log.
                    let quarter = ((p.value / p.max) * 4.0).floor().clamp(0.0, 4.0) as u64;
                    let key = (shown.clone(), quarter);
                    if self.last_quarter.as_ref() != Some(&key) {
                        self.last_quarter = Some(key);
                        eprintln!(
                            "  progress   {} {}/{} ({:.0}% of prompt){}",
                            self.names.label(&shown),
                            p.value,
                            p.max,
                            p.overall * 100.0,
                            eta_text(p.eta)
                        );
                    }
                }
                self.draw_bar();
            }
            Event::Preview(p) => {
                if self.mode == Mode::Plain && self.previews == 1 {
                    eprintln!(
                        "  preview    {} ({} bytes){}",
                        p.mime,
                        p.image.len(),
                        self.previews_dir
                            .as_ref()
                            .map(|d| format!(" -> {}", d.display()))
                            .unwrap_or_default()
                    );
                }
                self.draw_bar();
            }
            Event::ProgressText { node, text, .. } => {
                self.note(&format!("  text       {}: {text}", self.names.label(node)));
            }
            Event::Output {
                node,
                display_node,
                output,
                recovered,
                ..
            } => {
                let shown = display_node.as_deref().unwrap_or(node);
                self.note(&format!(
                    "  output     {}: {}{}",
                    self.names.label(shown),
                    output::describe_output(&output.to_value()),
                    if *recovered {
                        " (recovered from history)"
                    } else {
                        ""
                    }
                ));
            }
            Event::NodeFinished { node, .. } => {
                // Progress events only come from nodes with steps; finished
                // nodes move the bar too.
                self.done_nodes += 1;
                if !self.names.is_empty() {
                    let done = self.done_nodes as f64 / self.names.len() as f64;
                    self.overall = self.overall.max(done.min(1.0));
                }
                let took = self
                    .node_started
                    .get(&**node)
                    .map(|at| format!("{:>7.2}s", at.elapsed().as_secs_f64()))
                    .unwrap_or_else(|| "       -".into());
                self.note(&format!("  done  {took}  {}", self.names.label(node)));
            }
            Event::Blocked(e) => self.note(&format!(
                "  blocked    node {}: {}",
                e.node_id.as_deref().unwrap_or("?"),
                e.exception_message.trim_end()
            )),
            Event::Finished(_) => self.clear_bar(),
            _ => {}
        }
    }

    /// Removes the bar so the summary starts on a clean line.
    pub fn finish(&mut self) {
        self.clear_bar();
    }

    fn save_preview(&self, mime: &str, image: &[u8]) -> Option<String> {
        let dir = self.previews_dir.as_ref()?;
        let ext = match mime {
            "image/png" => "png",
            "image/jpeg" => "jpg",
            "image/webp" => "webp",
            _ => "bin",
        };
        let path = dir.join(format!("preview-{:04}.{ext}", self.previews));
        // A preview that cannot be saved is not worth stopping the run for.
        std::fs::create_dir_all(dir).ok()?;
        std::fs::write(&path, image).ok()?;
        Some(path.display().to_string())
    }

    fn clear_bar(&mut self) {
        if self.bar_shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.bar_shown = false;
        }
    }

    fn draw_bar(&mut self) {
        if self.mode != Mode::Bar {
            return;
        }
        let Some((node, value, max)) = &self.current else {
            return;
        };
        let filled = ((self.overall.clamp(0.0, 1.0)) * BAR_WIDTH as f64).round() as usize;
        let bar: String = "█".repeat(filled) + &"░".repeat(BAR_WIDTH - filled.min(BAR_WIDTH));
        let steps = if *max > 0.0 {
            format!("  {value}/{max}")
        } else {
            String::new()
        };
        let previews = if self.previews > 0 {
            format!("  {} previews", self.previews)
        } else {
            String::new()
        };
        let eta = eta_text(self.eta);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K  {bar} {:>3.0}%  {}{steps}{eta}{previews}  {:.1}s",
            self.overall * 100.0,
            self.names.label(node),
            self.started.elapsed().as_secs_f64()
        );
        let _ = err.flush();
        self.bar_shown = true;
    }
}

/// `"  ETA 12s"` (the node's, at its pace so far), or nothing.
fn eta_text(eta: Option<std::time::Duration>) -> String {
    match eta {
        Some(d) if d.as_secs() >= 60 => {
            format!("  ETA {}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
        }
        Some(d) => format!("  ETA {:.1}s", d.as_secs_f64()),
        None => String::new(),
    }
}

#[cfg(test)]
mod eta_tests {
    use super::eta_text;
    use std::time::Duration;

    #[test]
    fn eta_reads_as_seconds_or_minutes() {
        assert_eq!(eta_text(Some(Duration::from_millis(2_500))), "  ETA 2.5s");
        assert_eq!(eta_text(Some(Duration::from_secs(125))), "  ETA 2m05s");
        assert_eq!(eta_text(None), "");
    }
}
