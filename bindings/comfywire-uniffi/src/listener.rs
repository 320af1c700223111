//! Foreign listeners and their [`Subscription`] handles.
//!
//! A listener is registered with the host like any binding's callback, so it
//! runs in event order on the client's dispatcher thread (never a runtime
//! worker, never under a lock), and whatever it throws is contained: logged,
//! counted, and reported as a `callback_error` event. Registering returns a
//! [`Subscription`] that unregisters on `cancel()` or when the foreign
//! object is released, so a forgotten listener cannot outlive its owner.
//!
//! A listener may call back into its client (the host's rules): `cancel`,
//! `shutdown`, releasing the client, and any job call work from inside it.
//! The client holds its listeners strongly until they are cancelled or the
//! client shuts down, so a listener that holds its own `Client` keeps it
//! alive: `shutdown()` (or, in Kotlin, `close()` of the client) releases
//! every listener and so breaks that cycle.

use std::sync::Arc;

use comfywire_host::{CallbackHandle, EventCallback, HostEvent, HostStatus};

use crate::error::ListenerError;

/// Receives events. Implemented in Swift or Kotlin.
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// Called on the client's dispatcher thread, in event order. Throwing
    /// does not stop the client; it is reported as a `callback_error` event.
    fn on_event(&self, event: HostEvent) -> Result<(), ListenerError>;
}

/// Receives connection state changes. Implemented in Swift or Kotlin.
#[uniffi::export(with_foreign)]
pub trait StateListener: Send + Sync {
    /// Called on the dispatcher thread with each new state, in order.
    fn on_state(&self, status: HostStatus) -> Result<(), ListenerError>;
}

fn failure(error: ListenerError) -> String {
    error.to_string()
}

/// Feeds host events to a foreign [`EventListener`].
pub(crate) struct EventAdapter(pub(crate) Arc<dyn EventListener>);

impl EventCallback for EventAdapter {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        self.0.on_event(event.clone()).map_err(failure)
    }
}

/// Feeds `connection` events to a foreign [`StateListener`].
pub(crate) struct StateAdapter(pub(crate) Arc<dyn StateListener>);

impl EventCallback for StateAdapter {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        // The status the event carries, not whatever it is by the time the
        // listener runs. Registered for `connection` only, which always
        // has one.
        match &event.status {
            Some(status) => self.0.on_state(status.clone()).map_err(failure),
            None => Ok(()),
        }
    }
}

/// A registered listener. Unregisters on [`Subscription::cancel`] or when
/// released (Swift `deinit`, Kotlin `close()` / garbage collection).
#[derive(Debug, uniffi::Object)]
pub struct Subscription(CallbackHandle);

impl Subscription {
    pub(crate) fn new(handle: CallbackHandle) -> Arc<Subscription> {
        Arc::new(Subscription(handle))
    }
}

#[uniffi::export]
impl Subscription {
    /// Unregisters now; true if it was still registered. Idempotent. No
    /// call of the listener starts after this returns: a call running on
    /// the dispatcher thread is waited for (so the listener must not wait
    /// for the thread cancelling it), unless `cancel` is called from a
    /// listener, where it returns at once.
    pub fn cancel(&self) -> bool {
        self.0.cancel()
    }

    /// True until [`Subscription::cancel`] was called.
    pub fn is_active(&self) -> bool {
        self.0.is_active()
    }
}
