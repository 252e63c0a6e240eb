//! Listening and serving until shutdown; then canceling the runs in progress and waiting
//! for them to record their end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kfbox_store::Store;
use tokio::net::TcpListener;

use crate::recurring;
use crate::router::router;
use crate::state::{Counts, Launcher, Server, ServerError, ServerOptions};

/// A bound, not yet serving, server.
pub struct Bound {
    listener: TcpListener,
    server: Arc<Server>,
}

/// What shutting down left.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    /// Runs that were executing and were canceled.
    pub canceled: usize,
}

impl Bound {
    /// Bind the listening socket; fails at once when the address is taken.
    pub async fn bind(
        options: ServerOptions,
        store: Arc<Store>,
        launcher: Arc<dyn Launcher>,
    ) -> Result<Self, ServerError> {
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let server = Server::new(options, store, launcher)?;
        Ok(Self { listener, server })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.server.options.listen)
    }

    /// A way to read the run counts while serving (for a status line).
    pub fn counts(&self) -> impl Fn() -> Counts + Send + Sync + 'static {
        let server = self.server.clone();
        move || server.counts()
    }

    /// Serve until `shutdown` completes, then cancel the runs in progress and wait (up to
    /// `grace`) until each has recorded its end.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> Result<Stopped, ServerError> {
        let server = self.server.clone();
        let scheduler = tokio::spawn(recurring::schedule(server.clone()));
        let stopping = server.stopping.clone();
        let app = router(server.clone());
        let serving = axum::serve(self.listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel();
        });
        let result = serving.await;
        server.stopping.cancel();
        scheduler.abort();
        let canceled = {
            let active = server.active();
            for token in active.values() {
                token.cancel();
            }
            active.len()
        };
        server.runs.close();
        let _ = tokio::time::timeout(grace, server.runs.wait()).await;
        result.map_err(ServerError::Serve)?;
        Ok(Stopped { canceled })
    }
}
