//! The progress bar on stderr while the tests run.

use std::io::{self, IsTerminal};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress bar: one bar over all tests, in milliseconds of planned time.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    done: Duration,
    step: Duration,
}

impl Progress {
    pub(super) fn new(enabled: bool, total: Duration) -> Self {
        let bar = (enabled && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total.as_millis() as u64),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                ProgressStyle::with_template("{msg:<22} [{bar:40}] {percent:>3}%  {eta} left")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress {
            bar,
            done: Duration::ZERO,
            step: Duration::ZERO,
        }
    }

    pub(super) fn begin(&mut self, label: &str, planned: Duration) {
        self.step = planned;
        if let Some(bar) = &self.bar {
            bar.set_message(label.to_owned());
        }
    }

    pub(super) fn tick(&self, elapsed: Duration) {
        if let Some(bar) = &self.bar {
            bar.set_position((self.done + elapsed.min(self.step)).as_millis() as u64);
        }
    }

    pub(super) fn end(&mut self, line: &str) {
        self.done += self.step;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done.as_millis() as u64);
            bar.println(line);
        }
    }

    pub(super) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
