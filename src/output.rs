//! Everything that decides how text reaches a person or a script: terminal checks,
//! color, tables, JSON, and escaping of strings that came from outside (names, file
//! contents, server replies) so they cannot inject terminal escapes.

use std::io::{IsTerminal, Write};

use comfy_table::{ContentArrangement, Table, presets};
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
}

impl Output {
    /// `no_color` is whether the `NO_COLOR` environment variable asks for no color
    /// (honored under `--color auto`).
    pub fn new(json: bool, quiet: bool, verbose: u8, color: ColorChoice, no_color: bool) -> Self {
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color && std::io::stderr().is_terminal(),
        };
        Output {
            json,
            quiet,
            verbose,
            color,
            stdout_tty: std::io::stdout().is_terminal(),
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
        }
    }

    /// A note for people on stderr; silenced by `--quiet`.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{} {msg}", self.paint("keyctl:", "1"));
        }
    }

    /// A warning on stderr; `--quiet` is the user's explicit wish, so it obeys that too.
    pub fn warn(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{} {msg}", self.paint("keyctl: warning:", "33"));
        }
    }

    /// Details for `-v`.
    pub fn debug(&self, msg: &str) {
        if self.verbose > 0 {
            eprintln!("{} {msg}", self.paint("keyctl: debug:", "2"));
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

/// Prints one JSON value (pretty on a terminal, compact otherwise) and a newline.
pub fn print_json<T: Serialize + ?Sized>(out: &Output, value: &T) -> anyhow::Result<()> {
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

/// A table: boxed on a terminal; tab-separated without a header when piped, so that
/// `cut -f` and `while read` keep working whatever the terminal width.
pub fn print_table(out: &Output, header: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    if out.stdout_tty {
        let mut t = Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(header.to_vec());
        for r in rows {
            t.add_row(r.into_iter().map(|c| sanitize(&c)).collect::<Vec<_>>());
        }
        writeln!(w, "{t}")?;
    } else {
        for r in rows {
            let cells: Vec<String> = r.iter().map(|c| sanitize(c).replace('\t', " ")).collect();
            writeln!(w, "{}", cells.join("\t"))?;
        }
    }
    w.flush()?;
    Ok(())
}

/// `label  value` lines for one record (`show`, `doctor`), sanitized.
pub fn print_fields(rows: &[(&str, String)]) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    for (label, value) in rows {
        writeln!(w, "{label:<12} {}", sanitize(value))?;
    }
    w.flush()?;
    Ok(())
}

/// Replaces control characters (escapes, newlines) with visible `\u{..}` forms.
pub fn sanitize(s: &str) -> String {
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
pub fn quoted(s: &str) -> String {
    const MAX: usize = 80;
    let clean = sanitize(s);
    if clean.chars().count() > MAX {
        let cut: String = clean.chars().take(MAX).collect();
        format!("'{cut}...'")
    } else {
        format!("'{clean}'")
    }
}
