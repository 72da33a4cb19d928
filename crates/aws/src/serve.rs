//! The one `main` of every function: init logging, build the handler once per cold start, then
//! hand each invocation to it.

use std::fmt::Debug;
use std::future::Future;

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Runs a function: logging, then `build` (an error is logged as `<name> cannot start` and
/// returned, so Lambda reports the failed cold start), then `handle` for every invocation with
/// the built handler and the whole event (payload and context).
pub async fn serve<H, A, R, E>(
    name: &str,
    build: impl Future<Output = Result<H, Error>>,
    handle: impl AsyncFn(&H, LambdaEvent<A>) -> Result<R, E>,
) -> Result<(), Error>
where
    A: DeserializeOwned,
    R: Serialize,
    E: Into<Diagnostic> + Debug,
{
    crate::logging::init();
    let handler = match build.await {
        Ok(handler) => handler,
        Err(err) => {
            tracing::error!(error = %err, "{name} cannot start");
            return Err(err);
        }
    };
    let (handler, handle) = (&handler, &handle);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<A>| {
        handle(handler, event)
    }))
    .await
}
