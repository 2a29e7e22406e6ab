//! Handlers that run to the end even when nobody waits for their answer any more.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};

use crate::AppError;

type Handler = Pin<Box<dyn Future<Output = Response> + Send>>;

/// A handler polled in the connection's own task, which is finished in a task of its own if
/// that task lets go of it early (the client hung up, the request timed out): a handler dropped
/// between two awaits could otherwise leave a database connection inside a transaction it never
/// finishes (sqlx's `Pool::begin` is not cancel-safe on PostgreSQL, sqlx issue 4393), and a
/// citizen whose connection dropped would not know whether the submission was recorded.
///
/// Spawning every handler gave the same guarantee, but each spawn woke the other worker thread
/// to offer it the task: 8 % of the form page's throughput at concurrency 64 on two cores. The
/// handler is boxed, so what remains of it can move to a new task when this one is dropped.
/// A panic is caught and answered as an internal error, as a spawned task's was.
pub(crate) struct ToCompletion(Option<Handler>);

impl ToCompletion {
    pub(crate) fn new(handler: impl Future<Output = Response> + Send + 'static) -> Self {
        Self(Some(Box::pin(handler)))
    }
}

impl Future for ToCompletion {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let Some(handler) = self.0.as_mut() else {
            // Polled again after its answer: a bug of the caller, answered rather than panicking.
            return Poll::Ready(internal("request handler polled after completion".to_owned()));
        };
        match catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(response)) => {
                self.0 = None;
                Poll::Ready(response)
            }
            Err(panic) => {
                self.0 = None;
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_owned());
                tracing::error!(error = %message, "request handler panicked");
                Poll::Ready(internal(format!("request handler failed: {message}")))
            }
        }
    }
}

impl Drop for ToCompletion {
    fn drop(&mut self) {
        // Without a runtime (it is shutting down), the handler goes with it, as spawned
        // tasks do.
        if let (Some(handler), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current())
        {
            drop(runtime.spawn(handler));
        }
    }
}

fn internal(message: String) -> Response {
    AppError::Internal(anyhow::anyhow!(message)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_as_an_internal_error() {
        let response = ToCompletion::new(async { panic!("boom") }).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_handler_let_go_halfway_still_runs_to_its_end() {
        let (done, finished) = tokio::sync::oneshot::channel();
        let mut handler = ToCompletion::new(async move {
            tokio::task::yield_now().await;
            let _ = done.send(());
            Response::new(axum::body::Body::empty())
        });
        let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut handler).poll(cx))).await;
        assert!(first.is_pending(), "the handler waits at its first await");
        drop(handler);
        let waited = tokio::time::timeout(std::time::Duration::from_secs(5), finished).await;
        assert!(matches!(waited, Ok(Ok(()))), "the rest of the handler ran in a task of its own");
    }

    #[tokio::test]
    async fn a_finished_handler_is_not_run_again() {
        let mut handler = ToCompletion::new(async { Response::new(axum::body::Body::empty()) });
        assert_eq!((&mut handler).await.status(), StatusCode::OK);
        drop(handler);
    }
}
