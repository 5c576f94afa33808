//! Events on the JS thread: the `'event'` face of `Manager` (an EventEmitter).
//!
//! The core calls the event callback on a runtime thread. It cannot call JS, so it
//! queues the event through a weak threadsafe function to `index.js`'s `deliver(event)`,
//! which emits it on the JS thread. The threadsafe function never keeps Node alive;
//! it is released when the last listener goes (`removeListener`) and by `close()`.

use std::sync::{Arc, Mutex};

use napi::Status;
use napi::bindgen_prelude::{FnArgs, Function};
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use switchboard_core::{Error, Event, Manager};

use crate::error::{Result, to_napi};
use crate::manager::NativeEvent;

/// What `deliver` gets: the event.
pub type DeliverArgs = FnArgs<(NativeEvent,)>;

type Tsfn = ThreadsafeFunction<Event, (), DeliverArgs, Status, false, true, 0>;

/// The way into JS of one manager's events; shared with the core callback.
pub struct Emitter {
    tsfn: Mutex<Option<Tsfn>>,
}

impl Emitter {
    fn new(deliver: &Function<'_, DeliverArgs, ()>) -> Result<Arc<Emitter>> {
        let tsfn: Tsfn = deliver
            .build_threadsafe_function::<Event>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(|ctx: ThreadsafeCallContext<Event>| {
                Ok(FnArgs::from((NativeEvent::from(ctx.value),)))
            })
            .map_err(|e| {
                to_napi(Error::internal(format!(
                    "create the threadsafe function for events: {e}"
                )))
            })?;
        Ok(Arc::new(Emitter {
            tsfn: Mutex::new(Some(tsfn)),
        }))
    }

    /// Queues `event` for the JS thread; dropped once released.
    fn emit(&self, event: &Event) {
        let guard = self.tsfn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = guard.as_ref() {
            let _ = t.call(event.clone(), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    /// Releases the threadsafe function: no event reaches JS afterwards.
    fn release(&self) {
        let t = self.tsfn.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(t);
    }
}

/// Sets `deliver` as the manager's event sink (events stop going to the queue), or
/// with `None` clears it (they go to the queue again). The previous sink is released.
pub fn set_listener(
    manager: &Manager,
    slot: &Mutex<Option<Arc<Emitter>>>,
    deliver: Option<&Function<'_, DeliverArgs, ()>>,
) -> Result<()> {
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    let previous = match deliver {
        Some(f) => {
            let emitter = Emitter::new(f)?;
            let theirs = emitter.clone();
            manager.set_event_callback(Some(Arc::new(move |e: &Event| theirs.emit(e))));
            slot.replace(emitter)
        }
        None => {
            manager.set_event_callback(None);
            slot.take()
        }
    };
    if let Some(p) = previous {
        p.release();
    }
    Ok(())
}

/// Releases the sink without touching the manager (closing, or closed).
pub fn release(slot: &Mutex<Option<Arc<Emitter>>>) {
    if let Some(p) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
        p.release();
    }
}
