//! Callbacks as C knows them: a function, a `void *user_data`, and a
//! function that frees the user data once the subscription is gone.
//!
//! The host owns the subscription list and the dispatcher thread; this
//! module only adapts the C triple to its `EventCallback`. The free
//! function runs in `Drop`, which the host reaches exactly once per
//! subscription: on unsubscribe, on client close/free, or (when the
//! subscription was removed while its callback ran) after that call returns.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use comfywire_host::event::Event as ClientEvent;
use comfywire_host::{Delivered, EventCallback, HostEvent, LazyFlat, kind_list};

use crate::call::{with, with_out};
use crate::client::Client;
use crate::event::Event;
use crate::status::Status;
use crate::strings::{invalid, opt_str};

/// An event callback: gets the subscription's `user_data` and an event
/// that is only lent for the duration of the call (copy it with
/// comfywire_event_clone() to keep it). Runs on the client's dispatcher
/// thread. Must not unwind.
pub type EventFn = Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const Event)>;

/// Frees a subscription's `user_data`; called exactly once.
pub type FreeFn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// The C triple; it owns `user_data` from the moment comfywire_subscribe()
/// is called, so every path that ends it (a refused registration too)
/// frees it in `Drop`, once.
struct CCallback {
    call: EventFn,
    user_data: *mut c_void,
    free: FreeFn,
}

// SAFETY: the header's contract makes the caller responsible for
// `user_data` being usable from the dispatcher thread and from whichever
// thread ends the subscription; the function pointers themselves are plain
// code addresses.
unsafe impl Send for CCallback {}
// SAFETY: as above; the host calls `on_event` from one dispatcher thread at
// a time, and `Drop` has exclusive access.
unsafe impl Sync for CCallback {}

impl CCallback {
    fn deliver(&self, inner: HostEvent, source: Delivered) -> Result<(), String> {
        if let Some(call) = self.call {
            // SAFETY: `call` and `user_data` were supplied together by the C
            // caller for exactly this use; the event outlives the call.
            unsafe { call(self.user_data, &Event::new(inner, source)) };
        }
        Ok(())
    }
}

impl EventCallback for CCallback {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        self.deliver(event.clone(), Delivered::Report(Box::new(event.clone())))
    }

    fn on_client_event(&self, event: &ClientEvent, flat: &LazyFlat<'_>) -> Result<(), String> {
        self.deliver(flat.get().clone(), Delivered::Client(event.clone()))
    }
}

impl Drop for CCallback {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: the C caller supplied `free` for this `user_data`;
            // Drop runs once, so it is freed once.
            unsafe { free(self.user_data) };
        }
    }
}

/// Registers a callback for the event kinds in `kinds`, a comma-separated
/// list such as `"progress,finished"` (NULL or `""` for every kind), and
/// for one prompt when `prompt_id` is not NULL. Sets `*out_id` to the
/// subscription id for comfywire_unsubscribe().
///
/// Ownership: the library keeps `user_data` and calls
/// `free_user_data(user_data)` (when not NULL) exactly once: at
/// comfywire_unsubscribe(), comfywire_client_close() or
/// comfywire_client_free(). When registration fails (unknown kind, NULL
/// callback) it is called before this function returns, so the caller
/// never has to free `user_data` itself after handing it over.
///
/// # Safety
/// `callback` and `free_user_data` are valid functions for `user_data`
/// from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_subscribe(
    client: *const Client,
    kinds: *const c_char,
    prompt_id: *const c_char,
    callback: EventFn,
    user_data: *mut c_void,
    free_user_data: FreeFn,
    out_id: *mut u64,
) -> Status {
    let owned = CCallback {
        call: callback,
        user_data,
        free: free_user_data,
    };
    // SAFETY: the general contract; `owned` is dropped (freeing
    // `user_data`) on every path that does not register it.
    unsafe {
        with_out(client, out_id, 0, "out_id", move |c| {
            if owned.call.is_none() {
                return Err(invalid("callback is NULL"));
            }
            let kinds = opt_str(kinds, "kinds")?.map(kind_list);
            let prompt_id = opt_str(prompt_id, "prompt_id")?.map(str::to_owned);
            let handle = c
                .host
                .subscribe(kinds.as_deref(), prompt_id, Arc::new(owned))?;
            Ok(Some(handle.detach()))
        })
    }
}

/// Removes a subscription. No call of its callback starts after this
/// returns: a call running now on the dispatcher thread is waited for, and
/// `free_user_data` runs before this returns. The one exception is a call
/// from that callback itself (on the dispatcher thread): it returns at
/// once, and `free_user_data` runs when the callback returns.
/// COMFYWIRE_INVALID_ARGUMENT for an unknown (or already removed) id.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_unsubscribe(
    client: *const Client,
    subscription_id: u64,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        with(client, |c| match c.host.unsubscribe(subscription_id) {
            true => Ok(()),
            false => Err(invalid(format!("no subscription {subscription_id}"))),
        })
    }
}
