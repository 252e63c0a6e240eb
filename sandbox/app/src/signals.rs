//! The signals that ask kfbox to stop what it is doing.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Resolves at Ctrl-C, SIGTERM, or SIGHUP (the terminal closed). With `hangup_stops` false
/// (a server in the background has no terminal), SIGHUP is received and ignored rather than
/// left to its default action, which would kill the process. The signals are watched from this
/// call on, not from the first poll: one that arrives before the caller awaits still counts.
pub fn stop_requested(hangup_stops: bool) -> impl std::future::Future<Output = ()> {
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut hangup = signal(SignalKind::hangup()).ok();
    async move {
        loop {
            tokio::select! {
                _ = received(&mut interrupt) => return,
                _ = received(&mut terminate) => return,
                _ = received(&mut hangup) => {
                    if hangup_stops {
                        return;
                    }
                }
            }
        }
    }
}

/// The next delivery of a signal; never, when it could not be watched.
async fn received(stream: &mut Option<Signal>) {
    match stream.as_mut() {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
