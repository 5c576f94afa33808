//! A promise settled from any thread: the bridge between the manager's runtime and JS.

use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::{Env, JsDeferred};
use switchboard_core::Error;

use crate::error::{Result, js_error, to_napi};

type Resolver<D> = Box<dyn FnOnce(Env) -> napi::Result<D> + Send>;

/// The settling half of a JS promise. It can be moved to any thread; the value is made
/// on the JS thread. Dropped without being settled (a task dropped by the runtime's
/// shutdown, a task that could not be spawned, a panic) it rejects the promise, so no
/// promise is left pending forever and no threadsafe function keeps the process alive.
pub struct Settle<D: ToNapiValue + 'static> {
    deferred: Option<JsDeferred<D, Resolver<D>>>,
}

impl<D: ToNapiValue + 'static> Settle<D> {
    /// A new promise and its settling half. The promise is returned to JS.
    pub fn new(env: &Env) -> Result<(Self, Object<'_>)> {
        let (deferred, promise) = env
            .create_deferred::<D, Resolver<D>>()
            .map_err(|e| to_napi(Error::internal(format!("create a promise: {e}"))))?;
        Ok((
            Settle {
                deferred: Some(deferred),
            },
            promise,
        ))
    }

    /// Resolves with the value `make` builds on the JS thread.
    pub fn resolve(mut self, make: impl FnOnce(Env) -> D + Send + 'static) {
        if let Some(d) = self.deferred.take() {
            d.resolve(Box::new(move |env| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| make(env)))
                    .map_err(|p| js_error(env, &Error::from_panic(p.as_ref())))
            }));
        }
    }

    /// Rejects with an `Error` whose `code` is `e`'s `SB_*` name.
    pub fn reject(mut self, e: Error) {
        if let Some(d) = self.deferred.take() {
            reject(d, e);
        }
    }

    /// Resolves with the value or rejects with the error.
    pub fn settle<T: Send + 'static>(
        self,
        r: std::result::Result<T, Error>,
        make: impl FnOnce(Env, T) -> D + Send + 'static,
    ) {
        match r {
            Ok(v) => self.resolve(move |env| make(env, v)),
            Err(e) => self.reject(e),
        }
    }
}

fn reject<D: ToNapiValue + 'static>(d: JsDeferred<D, Resolver<D>>, e: Error) {
    d.resolve(Box::new(move |env| Err(js_error(env, &e))));
}

impl<D: ToNapiValue + 'static> Drop for Settle<D> {
    fn drop(&mut self) {
        if let Some(d) = self.deferred.take() {
            let e = if std::thread::panicking() {
                Error::internal("internal error (a bug in switchboard): a task panicked")
            } else {
                Error::unavailable("the manager is closed")
            };
            reject(d, e);
        }
    }
}
