//! Progress of slow environment work, as typed updates a front end shows as it likes.

/// What slow work is doing, for progress bars and logs. `env` names the environment as a user
/// knows it ("Python environment with the kfp SDK").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update<'a> {
    /// A step begins: fetching the installer, creating the environment, resolving.
    Step { env: &'a str, message: &'a str },
    /// Packages fetched and unpacked so far (`total` 0: not known yet), or bytes of a download.
    Packages {
        env: &'a str,
        done: usize,
        total: usize,
        bytes: u64,
    },
    /// The environment is ready, after `seconds` of work.
    Ready { env: &'a str, seconds: u64 },
}

impl Update<'_> {
    /// How far an install has come (0 to 1), when the number of packages is known.
    pub fn fraction(&self) -> Option<f64> {
        match *self {
            Update::Packages { done, total, .. } if total > 0 => Some(done as f64 / total as f64),
            _ => None,
        }
    }
}

impl std::fmt::Display for Update<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Update::Step { env, message } => write!(f, "{env}: {message}"),
            Update::Packages { env, total: 0, .. } => {
                write!(f, "{env}: installing what is already downloaded")
            }
            Update::Packages {
                env,
                done,
                total,
                bytes,
            } => write!(
                f,
                "{env}: {done}/{total} packages, {:.1} MiB",
                *bytes as f64 / 1_048_576.0
            ),
            Update::Ready { env, seconds } => write!(f, "{env}: ready ({seconds} s)"),
        }
    }
}

/// Where updates go.
pub type Progress<'a> = &'a (dyn Fn(Update) + Sync);
