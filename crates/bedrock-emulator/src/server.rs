//! Binding and serving: the HTTP app (SDK routes + control routes + fallback) and a handle to a
//! running server, used by the binary and by in-process tests alike.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::emulator::Emulator;

/// The whole HTTP surface.
pub fn app(emulator: Emulator) -> Router {
    crate::api::router()
        .merge(crate::control::router())
        .fallback(crate::api::unknown_operation)
        .method_not_allowed_fallback(crate::api::unknown_operation)
        .with_state(emulator)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve_until(
    emulator: Emulator,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(emulator))
        .with_graceful_shutdown(shutdown)
        .await
}

/// An emulator serving in a background task; stops when shut down or dropped.
#[derive(Debug)]
pub struct RunningEmulator {
    local_addr: SocketAddr,
    emulator: Emulator,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningEmulator {
    /// Binds `addr` (port 0 picks a free port) and starts serving.
    pub async fn start(emulator: Emulator, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown, shutdown_requested) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_until(emulator.clone(), listener, async move {
            // A dropped sender also means "stop".
            let _ = shutdown_requested.await;
        }));
        Ok(Self {
            local_addr,
            emulator,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://IP:PORT`, what an SDK's endpoint_url wants.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|error| std::io::Error::other(format!("server task failed: {error}")))?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
