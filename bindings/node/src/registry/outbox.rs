//! A connection whose messages JS pulls: core's `Outbox` and its items.

use std::sync::Arc;

use napi::Env;
use napi::bindgen_prelude::{Buffer, Either, Object};
use napi_derive::napi;
use switchboard_core::registry::{Item, Outbox};

use super::convert::js_message;
use crate::error::{Result, guard};
use crate::settle::Settle;

/// One outbox item: kind 0 = a message (`data`), 1 = a ping, 2 = closed (`reason`).
#[napi(object)]
pub struct NativeItem {
    pub kind: u32,
    pub data: Option<Either<String, Buffer>>,
    pub reason: Option<String>,
}

impl From<Item> for NativeItem {
    fn from(item: Item) -> Self {
        match item {
            Item::Message(m) => NativeItem {
                kind: 0,
                data: Some(js_message(&m)),
                reason: None,
            },
            Item::Ping => NativeItem {
                kind: 1,
                data: None,
                reason: None,
            },
            Item::Closed(reason) => NativeItem {
                kind: 2,
                data: None,
                reason: Some(reason),
            },
        }
    }
}

/// A connection whose messages JS pulls (core's `Outbox`).
#[napi]
pub struct NativeOutbox {
    outbox: Arc<Outbox>,
    handle: tokio::runtime::Handle,
}

impl NativeOutbox {
    pub(super) fn new(outbox: Outbox, handle: tokio::runtime::Handle) -> NativeOutbox {
        NativeOutbox {
            outbox: Arc::new(outbox),
            handle,
        }
    }
}

#[napi]
impl NativeOutbox {
    /// The connection's id.
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.outbox.id() as f64
    }

    /// The next item if one is queued, else `null`.
    #[napi]
    pub fn try_next(&self) -> Option<NativeItem> {
        self.outbox.try_next().map(NativeItem::from)
    }

    /// The next item, awaited on the manager's runtime.
    #[napi]
    pub fn next<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        guard(|| {
            let (settle, promise) = Settle::<NativeItem>::new(env)?;
            let outbox = self.outbox.clone();
            drop(self.handle.spawn(async move {
                let item = outbox.next().await;
                drop(outbox);
                settle.resolve(move |_| NativeItem::from(item));
            }));
            Ok(promise)
        })
    }

    /// Records traffic from the client now.
    #[napi]
    pub fn touch(&self) {
        self.outbox.touch();
    }

    /// Closes the outbox: later deliveries fail.
    #[napi]
    pub fn close(&self) {
        self.outbox.close();
    }
}
