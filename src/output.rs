//! Everything that decides how text reaches a person or a script: terminal checks,
//! color, tables, JSON, and escaping of strings that came from outside (names, file
//! contents, server replies) so they cannot inject terminal escapes.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use comfy_table::{Cell, Color, ColumnConstraint, ContentArrangement, Table, presets};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
/// `--color`: when stderr gets color.
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Settings for everything printed, resolved once from flags and environment.
#[derive(Clone, Debug)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub color: bool,
    pub stdout_tty: bool,
    /// Tables on stdout are colored (a terminal, and color not turned off).
    pub color_stdout: bool,
    /// Spinners and progress bars are drawn (stderr is a terminal, no `-q`, no `--json`).
    pub animate: bool,
    /// Claimed by the one spinner or progress bar on screen (clones share it), so
    /// concurrent waits never draw over each other.
    indicator: Arc<AtomicBool>,
    /// The bar or spinner on screen, so notes printed meanwhile do not tear it.
    shown: Arc<Mutex<Option<indicatif::ProgressBar>>>,
    /// Set for work started before the command line is read ([`Output::holding`]): its
    /// lines are kept here until the run's own output says whether to print them.
    held: Option<Held>,
}

/// Lines kept by an output that holds them.
type Held = Arc<Mutex<Vec<(Level, String)>>>;

/// Which kind of line a held line is.
#[derive(Clone, Copy, Debug)]
enum Level {
    Note,
    Warn,
    Debug,
}

impl Output {
    /// `no_color` is whether the `NO_COLOR` environment variable asks for no color
    /// (honored under `--color auto`).
    pub fn new(json: bool, quiet: bool, verbose: u8, color: ColorChoice, no_color: bool) -> Self {
        let on = |tty: bool| match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color && tty,
        };
        let stdout_tty = std::io::stdout().is_terminal();
        Output {
            json,
            quiet,
            verbose,
            color: on(std::io::stderr().is_terminal()),
            stdout_tty,
            // Piped output is TSV for scripts: never colored, whatever --color says.
            color_stdout: stdout_tty && on(true),
            animate: !quiet && !json && std::io::stderr().is_terminal(),
            indicator: Arc::default(),
            shown: Arc::default(),
            held: None,
        }
    }

    /// Prints nothing but keeps every note, warning and debug line, for [`Output::replay`]
    /// by the run's output once the command line has said what to show.
    pub fn holding() -> Self {
        Output {
            verbose: u8::MAX,
            quiet: false,
            held: Some(Arc::default()),
            ..Output::silent()
        }
    }

    /// Prints, as this output would, the lines `held` kept (see [`Output::holding`]).
    pub fn replay(&self, held: &Output) {
        let Some(lines) = &held.held else { return };
        let lines = std::mem::take(&mut *lines.lock().expect("held lines"));
        for (level, msg) in lines {
            match level {
                Level::Note => self.note(&msg),
                Level::Warn => self.warn(&msg),
                Level::Debug => self.debug(&msg),
            }
        }
    }

    /// True (the line kept) when this output holds its lines.
    fn hold(&self, level: Level, msg: &str) -> bool {
        match &self.held {
            Some(lines) => {
                lines
                    .lock()
                    .expect("held lines")
                    .push((level, msg.to_string()));
                true
            }
            None => false,
        }
    }

    /// Prints nothing on stderr (for library use and tests).
    pub fn silent() -> Self {
        Output {
            json: false,
            quiet: true,
            verbose: 0,
            color: false,
            stdout_tty: false,
            color_stdout: false,
            animate: false,
            indicator: Arc::default(),
            shown: Arc::default(),
            held: None,
        }
    }

    /// Says on stderr what keyctl waits for, once the wait passes [`WAIT_SHOWN_AFTER`]:
    /// a spinner with `msg` and the time so far, cleared when the returned guard drops.
    /// Nothing on a pipe, with `-q` or `--json`, or while another indicator is shown.
    pub fn wait(&self, msg: impl Into<String>) -> Wait {
        if !self.animate || self.indicator.swap(true, Ordering::AcqRel) {
            return Wait { shared: None };
        }
        let shared = Arc::new(WaitShared {
            state: Mutex::new((false, msg.into())),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let claim = self.indicator.clone();
        let on_screen = self.shown.clone();
        let thread = std::thread::spawn(move || {
            let bar = {
                let g = s.state.lock().expect("wait lock");
                let (g, _) = s
                    .wake
                    .wait_timeout_while(g, WAIT_SHOWN_AFTER, |(done, _)| !*done)
                    .expect("wait lock");
                if g.0 {
                    claim.store(false, Ordering::Release);
                    return;
                }
                let bar = indicatif::ProgressBar::with_draw_target(
                    None,
                    indicatif::ProgressDrawTarget::stderr(),
                );
                if let Ok(style) =
                    indicatif::ProgressStyle::with_template("{spinner} {wide_msg} {elapsed}")
                {
                    bar.set_style(style);
                }
                bar.set_message(sanitize(&g.1));
                bar.enable_steady_tick(Duration::from_millis(100));
                *on_screen.lock().expect("indicator lock") = Some(bar.clone());
                bar
            };
            let mut shown = String::new();
            loop {
                let g = s.state.lock().expect("wait lock");
                let (g, _) = s
                    .wake
                    .wait_timeout_while(g, Duration::from_millis(100), |(done, _)| !*done)
                    .expect("wait lock");
                if g.0 {
                    break;
                }
                if g.1 != shown {
                    shown = g.1.clone();
                    bar.set_message(sanitize(&shown));
                }
            }
            on_screen.lock().expect("indicator lock").take();
            bar.finish_and_clear();
            claim.store(false, Ordering::Release);
        });
        Wait {
            shared: Some((shared, thread)),
        }
    }

    /// A progress bar for `total` steps of a bulk operation (`what` in its template,
    /// e.g. "revoking"), or None where nothing is drawn or there is a single step.
    pub fn progress(&self, total: usize, what: &str) -> Option<Progress> {
        if total < 2 || !self.animate || self.indicator.swap(true, Ordering::AcqRel) {
            return None;
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        let template = format!("{what} {{bar:30}} {{pos}}/{{len}} {{per_sec}}");
        if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        *self.shown.lock().expect("indicator lock") = Some(bar.clone());
        Some(Progress {
            bar,
            claim: self.indicator.clone(),
            shown: self.shown.clone(),
        })
    }

    /// A note for people on stderr; silenced by `--quiet`.
    pub fn note(&self, msg: &str) {
        if !self.hold(Level::Note, msg) && !self.quiet {
            self.line(&format!("{} {msg}", self.paint("keyctl:", "1")));
        }
    }

    /// One line on stderr, above any spinner or progress bar rather than through it.
    fn line(&self, text: &str) {
        let shown = self.shown.lock().expect("indicator lock").clone();
        match shown {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// A warning on stderr; `--quiet` is the user's explicit wish, so it obeys that too.
    pub fn warn(&self, msg: &str) {
        if !self.hold(Level::Warn, msg) && !self.quiet {
            self.line(&format!("{} {msg}", self.paint("keyctl: warning:", "33")));
        }
    }

    /// Details for `-v`.
    pub fn debug(&self, msg: &str) {
        if !self.hold(Level::Debug, msg) && self.verbose > 0 {
            self.line(&format!("{} {msg}", self.paint("keyctl: debug:", "2")));
        }
    }

    pub fn paint(&self, text: &str, sgr: &str) -> String {
        if self.color {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// How long a wait goes unannounced: shorter waits would only flicker.
pub(crate) const WAIT_SHOWN_AFTER: Duration = Duration::from_millis(300);

struct WaitShared {
    /// Done, and the message to show.
    state: Mutex<(bool, String)>,
    wake: Condvar,
}

/// A wait in progress ([`Output::wait`]); the spinner goes when this drops.
pub struct Wait {
    shared: Option<(Arc<WaitShared>, std::thread::JoinHandle<()>)>,
}

impl Wait {
    /// Changes what the spinner says ("retrying 2/3 in 1 s: connection refused").
    pub fn set_message(&self, msg: impl Into<String>) {
        if let Some((s, _)) = &self.shared {
            s.state.lock().expect("wait lock").1 = msg.into();
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some((s, thread)) = self.shared.take() {
            s.state.lock().expect("wait lock").0 = true;
            s.wake.notify_all();
            let _ = thread.join();
        }
    }
}

/// A progress bar on screen ([`Output::progress`]), cleared when dropped.
pub struct Progress {
    bar: indicatif::ProgressBar,
    claim: Arc<AtomicBool>,
    shown: Arc<Mutex<Option<indicatif::ProgressBar>>>,
}

impl Progress {
    pub fn inc(&self) {
        self.bar.inc(1);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.shown.lock().expect("indicator lock").take();
        self.bar.finish_and_clear();
        self.claim.store(false, Ordering::Release);
    }
}

/// Prints one JSON value (pretty on a terminal, compact otherwise) and a newline.
pub(crate) fn print_json<T: Serialize + ?Sized>(out: &Output, value: &T) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    if out.stdout_tty {
        serde_json::to_writer_pretty(&mut w, value)?;
    } else {
        serde_json::to_writer(&mut w, value)?;
    }
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(())
}

/// How a table cell reads at a glance, colored on a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tone {
    Plain,
    /// Active: green.
    Good,
    /// Expiring, superseded: yellow.
    Warn,
    /// Expired, revoked: red.
    Bad,
}

/// One column of a table for people.
pub(crate) struct Column {
    pub header: &'static str,
    /// Never wrapped and never dropped (IDs and names people copy).
    pub keep: bool,
    /// When the terminal is too narrow, droppable columns go in rising order of this.
    pub drop_rank: u8,
    /// Kept, but cut short with `…` when the table is still too wide once every
    /// droppable column is gone (a long key name, where the ID identifies the key).
    pub shrink: bool,
}

impl Column {
    pub(crate) const fn keep(header: &'static str) -> Column {
        Column {
            header,
            keep: true,
            drop_rank: u8::MAX,
            shrink: false,
        }
    }

    /// Kept whole when it fits; cut short (never wrapped) when nothing else can go.
    pub(crate) const fn shrinkable(header: &'static str) -> Column {
        Column {
            header,
            keep: true,
            drop_rank: u8::MAX,
            shrink: true,
        }
    }

    pub(crate) const fn droppable(header: &'static str, drop_rank: u8) -> Column {
        Column {
            header,
            keep: false,
            drop_rank,
            shrink: false,
        }
    }
}

/// The narrowest a shrinkable column is cut to.
const MIN_SHRUNK: usize = 12;

/// `s` cut to `max` characters, the last one an ellipsis.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A table: boxed on a terminal; tab-separated without a header when piped, so that
/// `cut -f` and `while read` keep working whatever the terminal width. The first column
/// identifies the row and is always shown; on a narrow terminal the others go from the
/// last one leftwards (tables put their least useful columns last).
pub(crate) fn print_table(
    out: &Output,
    header: &[&'static str],
    rows: Vec<Vec<String>>,
) -> anyhow::Result<()> {
    let n = header.len();
    let cols: Vec<Column> = header
        .iter()
        .enumerate()
        .map(|(i, h)| match i {
            0 => Column::keep(h),
            _ => Column::droppable(h, u8::try_from(n - i).unwrap_or(u8::MAX)),
        })
        .collect();
    let rows = rows
        .into_iter()
        .map(|r| r.into_iter().map(|c| (c, Tone::Plain)).collect())
        .collect();
    print_columns(out, &cols, rows, None)
}

/// A table whose key columns are never wrapped: on a terminal narrower than the table,
/// low-value columns are dropped first (as gh does), then the rest may wrap. Cells are
/// colored by tone where color is on. Piped, the TSV rows are `tsv` when given (stable
/// values such as dates), else the cells.
pub(crate) fn print_columns(
    out: &Output,
    cols: &[Column],
    rows: Vec<Vec<(String, Tone)>>,
    tsv: Option<Vec<Vec<String>>>,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    if !out.stdout_tty {
        let plain: Vec<Vec<String>> = tsv.unwrap_or_else(|| {
            rows.into_iter()
                .map(|r| r.into_iter().map(|(c, _)| c).collect())
                .collect()
        });
        for r in plain {
            let cells: Vec<String> = r.iter().map(|c| sanitize(c).replace('\t', " ")).collect();
            writeln!(w, "{}", cells.join("\t"))?;
        }
        w.flush()?;
        return Ok(());
    }
    let mut rows: Vec<Vec<(String, Tone)>> = rows
        .into_iter()
        .map(|r| r.into_iter().map(|(c, t)| (sanitize(&c), t)).collect())
        .collect();
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].0.chars().count())
                .chain([cols[i].header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let width = |i: usize| widths[i];
    let mut shown: Vec<usize> = (0..cols.len()).collect();
    let mut t = Table::new();
    if let Some(term) = t.width().map(usize::from) {
        // Borders and padding take three columns per column, plus one.
        let total = |shown: &[usize]| shown.iter().map(|&i| width(i) + 3).sum::<usize>() + 1;
        while total(&shown) > term {
            let Some(pos) = shown
                .iter()
                .enumerate()
                .filter(|(_, i)| !cols[**i].keep)
                .min_by_key(|(_, i)| cols[**i].drop_rank)
                .map(|(p, _)| p)
            else {
                break;
            };
            shown.remove(pos);
        }
        // Still too wide: cut the shrinkable columns (a long name) rather than wrap.
        let excess = total(&shown).saturating_sub(term);
        if excess > 0 {
            for &i in shown.iter().filter(|&&i| cols[i].shrink) {
                let w = width(i);
                let to = w
                    .saturating_sub(excess)
                    .max(MIN_SHRUNK)
                    .max(cols[i].header.len());
                if to < w {
                    for r in rows.iter_mut() {
                        r[i].0 = shorten(&r[i].0, to);
                    }
                }
            }
        }
    }
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(shown.iter().map(|&i| cols[i].header).collect::<Vec<_>>());
    if out.color_stdout {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    for r in &rows {
        t.add_row(shown.iter().map(|&i| {
            let (text, tone) = &r[i];
            let cell = Cell::new(text);
            match (out.color_stdout, tone) {
                (true, Tone::Good) => cell.fg(Color::Green),
                (true, Tone::Warn) => cell.fg(Color::Yellow),
                (true, Tone::Bad) => cell.fg(Color::Red),
                _ => cell,
            }
        }));
    }
    for (pos, &i) in shown.iter().enumerate() {
        if cols[i].keep
            && let Some(c) = t.column_mut(pos)
        {
            c.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    writeln!(w, "{t}")?;
    w.flush()?;
    Ok(())
}

/// `label  value` lines for one record (`show`, `doctor`), sanitized.
pub(crate) fn print_fields(rows: &[(&str, String)]) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    for (label, value) in rows {
        writeln!(w, "{label:<12} {}", sanitize(value))?;
    }
    w.flush()?;
    Ok(())
}

/// Replaces control characters (escapes, newlines) with visible `\u{..}` forms.
pub(crate) fn sanitize(s: &str) -> String {
    if !s.chars().any(unsafe_on_screen) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if unsafe_on_screen(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Control characters, and the invisible and bidirectional formatting characters that
/// make text read differently from what it is (U+202E turns `txt.exe` into `exe.txt`).
fn unsafe_on_screen(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// A string from outside, quoted and sanitized for an error message.
pub(crate) fn quoted(s: &str) -> String {
    const MAX: usize = 80;
    let clean = sanitize(s);
    if clean.chars().count() > MAX {
        let cut: String = clean.chars().take(MAX).collect();
        format!("'{cut}...'")
    } else {
        format!("'{clean}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(o: &Output) -> Vec<String> {
        let lines = o.held.as_ref().expect("a holding output");
        let lines = lines.lock().unwrap();
        lines.iter().map(|(l, m)| format!("{l:?} {m}")).collect()
    }

    #[test]
    fn held_lines_wait_for_the_run_and_are_replayed_once_in_order() {
        let early = Output::holding();
        early.debug("GET http://127.0.0.1:8200/v1/secret/data/keyctl/team -> 200 in 2 ms");
        early.warn("w");
        early.note("n");
        let run = Output::holding();
        run.replay(&early);
        assert_eq!(
            held(&run),
            [
                "Debug GET http://127.0.0.1:8200/v1/secret/data/keyctl/team -> 200 in 2 ms",
                "Warn w",
                "Note n"
            ]
        );
        assert!(held(&early).is_empty());
        run.replay(&early);
        assert_eq!(held(&run).len(), 3);
        // An output that holds nothing has nothing to replay.
        Output::silent().replay(&Output::silent());
    }
}
