//! keyctl in a pseudo-terminal of fixed size, the way a person runs it: what it writes is
//! fed to a terminal emulator (vt100), so a test can assert on the screen itself
//! (wrapping, colors) and on the raw bytes (a spinner that came and went).

use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// A finished run in a terminal.
pub(crate) struct Run {
    pub code: u32,
    /// Everything written to the terminal, escapes included.
    pub raw: String,
    pub screen: vt100::Parser,
}

impl Run {
    /// The screen's text, one string per row, trailing blanks trimmed.
    pub(crate) fn rows(&self) -> Vec<String> {
        self.screen
            .screen()
            .rows(0, self.screen.screen().size().1.get())
            .map(|r| r.trim_end().to_string())
            .collect()
    }

    /// The foreground color of the first cell where `text` starts on the screen.
    pub(crate) fn color_of(&self, text: &str) -> Option<vt100::Color> {
        let s = self.screen.screen();
        let (rows, cols) = s.size();
        let (rows, cols) = (rows.get(), cols.get());
        for (r, line) in self.rows().iter().enumerate() {
            if let Some(byte) = line.find(text) {
                let col = line[..byte].chars().count() as u16;
                if r as u16 >= rows || col >= cols {
                    return None;
                }
                return s.cell(r as u16, col).map(|c| c.fgcolor());
            }
        }
        None
    }
}

/// Runs `args` (program first) in a `cols`x`rows` terminal with `env` (nothing else from
/// the parent's environment), answering `answer` to the first prompt that ends in
/// `[y/N] `. Gives up after `limit`.
pub(crate) fn run(
    args: &[&str],
    env: &[(&str, &Path)],
    extra_env: &[(&str, &str)],
    size: (u16, u16),
    answer: Option<&str>,
    limit: Duration,
) -> Run {
    let line = answer.map(|a| format!("{a}\r"));
    let answer = line.as_deref().map(|l| Typing {
        marker: "[y/N] ",
        bytes: l.as_bytes(),
        hidden_prompt: false,
    });
    run_typing(args, env, extra_env, size, answer, limit)
}

/// What to type, and when.
#[derive(Clone, Copy)]
pub(crate) struct Typing<'a> {
    /// Typed once the terminal shows this.
    pub marker: &'a str,
    /// Ctrl-D is `\x04`, Enter `\r`.
    pub bytes: &'a [u8],
    /// A hidden prompt reads key by key: wait until the program has switched the terminal
    /// out of line mode, or a Ctrl-D typed before the switch is lost in the line buffer.
    pub hidden_prompt: bool,
}

/// Like [`run`], typing what `answer` says.
pub(crate) fn run_typing(
    args: &[&str],
    env: &[(&str, &Path)],
    extra_env: &[(&str, &str)],
    (cols, rows): (u16, u16),
    answer: Option<Typing>,
    limit: Duration,
) -> Run {
    let pair = native_pty_system()
        .openpty(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut cmd = CommandBuilder::new(args[0]);
    cmd.args(&args[1..]);
    cmd.env_clear();
    cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd.env("TERM", "xterm-256color");
    for (k, v) in env {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = pair.slave.spawn_command(cmd).expect("spawn in pty");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("pty reader");
    let mut writer = pair.master.take_writer().expect("pty writer");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut raw = Vec::new();
    let mut answered = answer.is_none();
    let deadline = Instant::now() + limit;
    let code = loop {
        while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(20)) {
            raw.extend_from_slice(&chunk);
        }
        if let (false, Some(t)) = (answered, answer)
            && String::from_utf8_lossy(&raw).contains(t.marker)
            && (!t.hidden_prompt || !line_mode(pair.master.as_ref()))
        {
            writer.write_all(t.bytes).expect("answer");
            answered = true;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status.exit_code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "{args:?} did not finish in {limit:?}; the terminal showed: {}",
                String::from_utf8_lossy(&raw)
            );
        }
    };
    // What was still in flight.
    while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
        raw.extend_from_slice(&chunk);
    }
    let nz = |n: u16| std::num::NonZeroU16::new(n).expect("a terminal has a size");
    let mut screen = vt100::Parser::new(nz(rows), nz(cols), 0);
    screen.process(&raw);
    Run {
        code,
        raw: String::from_utf8_lossy(&raw).into_owned(),
        screen,
    }
}

/// Whether the terminal is in line mode (ICANON), as a shell leaves it.
fn line_mode(master: &dyn portable_pty::MasterPty) -> bool {
    let Some(fd) = master.as_raw_fd() else {
        return true;
    };
    // SAFETY: tcgetattr fills a plain struct from a descriptor the pty owns.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        libc::tcgetattr(fd, &mut t) != 0 || t.c_lflag & libc::ICANON != 0
    }
}
